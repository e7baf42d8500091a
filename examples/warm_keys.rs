//! Sends every key of a file exactly once to `GET /v1/auth/check` and checks each status: the
//! warm-up of `bench/auth_check.sh` (wrk cannot stop after one pass over a file). Plain
//! blocking HTTP/1.1 keep-alive over `std::net`, `--connections` threads, each taking every
//! `connections`-th key; no dependency beyond std and clap.
//!
//! Prints one line, e.g.
//! `warm_keys requests=100000 seconds=9.8 rate=10204.1 unexpected=0 first_unexpected=0`
//! and exits 0 only if every key got `--expect` before `--timeout` seconds.
//!
//! ```text
//! cargo run --release --example warm_keys -- --addr 127.0.0.1:8080 --keys /tmp/kp/hot_keys.txt
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Send each key of a file once to /v1/auth/check")]
struct Args {
    /// Server address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// Request path.
    #[arg(long, default_value = "/v1/auth/check")]
    path: String,
    /// Key file, one key per line.
    #[arg(long)]
    keys: PathBuf,
    /// The only acceptable status.
    #[arg(long, default_value_t = 204)]
    expect: u16,
    /// Concurrent connections (one thread each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("warm_keys: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads one response; returns its status. Handles `Content-Length` bodies (keyplane sends
/// no chunked responses on these paths).
fn read_response(r: &mut BufReader<TcpStream>, line: &mut String) -> anyhow::Result<u16> {
    line.clear();
    if r.read_line(line)? == 0 {
        bail!("the server closed the connection");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if r.read_line(line)? == 0 {
            bail!("the server closed the connection mid-response");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().context("bad content-length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not supported");
            }
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    Ok(status)
}

fn run(args: Args) -> anyhow::Result<bool> {
    if args.connections == 0 || args.connections > 1024 {
        bail!("--connections must be in 1..=1024");
    }
    let text = std::fs::read_to_string(&args.keys)
        .with_context(|| format!("cannot read {}", args.keys.display()))?;
    let keys: Arc<Vec<String>> = Arc::new(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.timeout);
    let done = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let first_unexpected = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..args.connections.min(keys.len().max(1)) {
        let (keys, done, unexpected, first_unexpected) = (
            keys.clone(),
            done.clone(),
            unexpected.clone(),
            first_unexpected.clone(),
        );
        let (addr, path, expect, step) =
            (args.addr, args.path.clone(), args.expect, args.connections);
        handles.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.set_write_timeout(Some(Duration::from_secs(10)))?;
            let mut w = stream.try_clone()?;
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            let mut req = Vec::with_capacity(256);
            for key in keys.iter().skip(t).step_by(step) {
                if Instant::now() > deadline {
                    bail!("timed out");
                }
                req.clear();
                write!(
                    req,
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n"
                )?;
                w.write_all(&req)?;
                let status = read_response(&mut r, &mut line)?;
                if status != expect {
                    unexpected.fetch_add(1, Ordering::Relaxed);
                    let _ = first_unexpected.compare_exchange(
                        0,
                        status.into(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(anyhow::anyhow!("a worker thread panicked"))),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    let unexpected = unexpected.load(Ordering::Relaxed);
    println!(
        "warm_keys requests={done} seconds={secs:.1} rate={:.1} unexpected={unexpected} first_unexpected={}",
        done as f64 / secs,
        first_unexpected.load(Ordering::Relaxed)
    );
    if let Some(e) = failure {
        return Err(e.context(format!("only {done} of {} keys sent", keys.len())));
    }
    Ok(unexpected == 0 && done == keys.len() as u64)
}

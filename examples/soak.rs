//! Bounded soak of mixed traffic against a real `keyplane serve`: 90% key verification
//! (`/v1/auth/check`), 9% lists, 1% creates and deletes of service accounts. Reports throughput,
//! p50/p99 per kind, errors and the server's RSS over time, and fails (exit 1) on any error or
//! on RSS growth beyond a bound. Driven by `bench/soak.sh`; see bench/README.md.
//!
//!   soak --bin target/release/keyplane --backend sqlite --seconds 600
//!   soak --bin … --backend postgres --database-url postgres://…/db --seconds 600
//!
//! Everything talks to 127.0.0.1 only and stops by itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

type Http = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Verify,
    List,
    Create,
    Delete,
}

const KINDS: [Kind; 4] = [Kind::Verify, Kind::List, Kind::Create, Kind::Delete];

struct Args {
    bin: PathBuf,
    backend: String,
    database_url: Option<String>,
    seconds: u64,
    concurrency: usize,
    interval: u64,
    keys: usize,
    max_rss_growth_pct: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bin: PathBuf::from("target/release/keyplane"),
        backend: "sqlite".into(),
        database_url: None,
        seconds: 600,
        concurrency: 16,
        interval: 10,
        keys: 200,
        max_rss_growth_pct: 20.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: not a number"));
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(value()?),
            "--backend" => a.backend = value()?,
            "--database-url" => a.database_url = Some(value()?),
            "--seconds" => a.seconds = num(value()?)?,
            "--concurrency" => a.concurrency = num(value()?)? as usize,
            "--interval" => a.interval = num(value()?)?,
            "--keys" => a.keys = num(value()?)? as usize,
            "--max-rss-growth-pct" => {
                a.max_rss_growth_pct = value()?.parse().map_err(|_| "bad percentage")?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !(1..=3600).contains(&a.seconds) || a.interval == 0 || a.concurrency == 0 {
        return Err("--seconds 1..3600, --interval and --concurrency > 0".into());
    }
    if a.backend == "postgres" && a.database_url.is_none() {
        return Err("--backend postgres needs --database-url".into());
    }
    Ok(a)
}

/// xorshift64*: the soak only needs cheap, decent spreading of operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Server {
    child: Child,
    base: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A scratch directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM for a graceful stop; SIGKILL if it does not go within 15 s.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..150 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn keyplane(args: &Args, dir: &std::path::Path, listen: &str) -> Command {
    let mut c = Command::new(&args.bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("KEYPLANE_") {
            c.env_remove(k);
        }
    }
    c.env("KEYPLANE_LISTEN", listen)
        .env("KEYPLANE_LOG", "warn")
        .env("KEYPLANE_DATA_DIR", dir);
    if let Some(url) = &args.database_url {
        c.env("KEYPLANE_DATABASE_URL", url);
    }
    c
}

fn start(args: &Args) -> Result<(Server, String), String> {
    let dir = std::env::temp_dir().join(format!("keyplane-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = tempdir::Dir(dir);
    let listen = format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?);
    let out = keyplane(args, &dir.0, &listen)
        .args(["admin-key", "create"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.bin.display()))?;
    let admin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !admin.starts_with("sk-admin-") {
        return Err("`keyplane admin-key create` failed".into());
    }
    let child = keyplane(args, &dir.0, &listen)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let server = Server {
        child,
        base: format!("http://{listen}"),
        _dir: dir,
    };
    for _ in 0..300 {
        if std::net::TcpStream::connect(&listen).is_ok() {
            return Ok((server, admin));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("the server did not start listening within 15 s".into())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn call(
    http: &Http,
    method: Method,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Bytes), String> {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let req = req.body(body).map_err(|e| e.to_string())?;
    let res = http.request(req).await.map_err(|e| format!("{e}"))?;
    let status = res.status();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes))
}

async fn json_call(http: &Http, method: Method, url: &str, key: &str, body: Value) -> Value {
    match call(http, method, url, key, Some(body)).await {
        Ok((s, b)) if s.is_success() => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Ok((s, b)) => panic!("setup call {url} answered {s}: {}", String::from_utf8_lossy(&b)),
        Err(e) => panic!("setup call {url} failed: {e}"),
    }
}

#[derive(Default)]
struct Samples {
    /// Microseconds per request, by kind, for the whole run.
    all: [Vec<u32>; 4],
    /// Requests completed in the current interval.
    interval: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(args));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let (server, admin) = match start(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: {e}");
            return 1;
        }
    };
    let pid = server.child.id();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let base = server.base.clone();

    // Setup: a project and a pool of keys to verify.
    let project = json_call(
        &http,
        Method::POST,
        &format!("{base}/v1/organization/projects"),
        &admin,
        json!({"name": "soak"}),
    )
    .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let accounts = format!("{base}/v1/organization/projects/{project}/service_accounts");
    let mut keys = Vec::with_capacity(args.keys);
    for i in 0..args.keys {
        let created = json_call(
            &http,
            Method::POST,
            &accounts,
            &admin,
            json!({"name": format!("verify-{i}")}),
        )
        .await;
        keys.push(created["api_key"]["value"].as_str().unwrap_or("").to_owned());
    }
    let keys = Arc::new(keys);
    eprintln!(
        "soak: {} for {} s, {} connections, {} keys, server pid {pid}",
        args.backend, args.seconds, args.concurrency, args.keys
    );

    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (http, keys, samples, stop, done) = (
            http.clone(),
            keys.clone(),
            samples.clone(),
            stop.clone(),
            done.clone(),
        );
        let (base, admin, accounts) = (base.clone(), admin.clone(), accounts.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) << 17));
            let mut mine: Vec<String> = Vec::new();
            let mut local: Vec<(Kind, u32)> = Vec::with_capacity(256);
            while !stop.load(Ordering::Relaxed) {
                let roll = rng.next() % 1000;
                let t = Instant::now();
                let (kind, outcome) = if roll < 900 {
                    let key = &keys[(rng.next() % keys.len() as u64) as usize];
                    let r = call(&http, Method::GET, &format!("{base}/v1/auth/check"), key, None)
                        .await;
                    (Kind::Verify, r.map(|(s, b)| (s == StatusCode::NO_CONTENT, s, b)))
                } else if roll < 990 {
                    let r = call(&http, Method::GET, &format!("{accounts}?limit=20"), &admin, None)
                        .await;
                    (Kind::List, r.map(|(s, b)| (s == StatusCode::OK, s, b)))
                } else if roll < 995 || mine.is_empty() {
                    let body = json!({"name": "churn"});
                    let r = call(&http, Method::POST, &accounts, &admin, Some(body)).await;
                    if let Ok((StatusCode::OK, b)) = &r {
                        let v: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
                        if let Some(id) = v["id"].as_str() {
                            mine.push(id.to_owned());
                        }
                    }
                    (Kind::Create, r.map(|(s, b)| (s == StatusCode::OK, s, b)))
                } else {
                    let id = mine.pop().unwrap_or_default();
                    let r = call(&http, Method::DELETE, &format!("{accounts}/{id}"), &admin, None)
                        .await;
                    (Kind::Delete, r.map(|(s, b)| (s == StatusCode::OK, s, b)))
                };
                let micros = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                done.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Ok((true, _, _)) => local.push((kind, micros)),
                    Ok((false, status, body)) => {
                        let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                        s.errors += 1;
                        s.first_error.get_or_insert_with(|| {
                            format!("{kind:?}: {status} {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                        s.errors += 1;
                        s.first_error.get_or_insert_with(|| format!("{kind:?}: {e}"));
                    }
                }
                if local.len() == local.capacity() {
                    flush(&samples, &mut local);
                }
            }
            flush(&samples, &mut local);
        }));
    }

    // Sampler: throughput and RSS every interval.
    let mut series: Vec<(u64, u64, f64, f64)> = Vec::new(); // (t, rss KiB, req/s, p99 ms)
    let mut last = 0u64;
    let rss0 = rss_kib(pid).unwrap_or(0);
    println!("| t (s) | RSS (MiB) | req/s | p99 (ms) |");
    println!("|---:|---:|---:|---:|");
    println!("| 0 | {:.1} | - | - |", rss0 as f64 / 1024.0);
    let mut t = 0;
    while t < args.seconds {
        let step = args.interval.min(args.seconds - t);
        tokio::time::sleep(Duration::from_secs(step)).await;
        t += step;
        let now = done.load(Ordering::Relaxed);
        let mut interval = {
            let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut s.interval)
        };
        interval.sort_unstable();
        let rss = rss_kib(pid).unwrap_or(0);
        let rate = (now - last) as f64 / step as f64;
        last = now;
        let p99 = percentile(&interval, 0.99);
        println!("| {t} | {:.1} | {rate:.0} | {p99:.2} |", rss as f64 / 1024.0);
        series.push((t, rss, rate, p99));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(server);

    let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
    let total = done.load(Ordering::Relaxed);
    println!();
    println!("| kind | requests | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|");
    for (i, kind) in KINDS.iter().enumerate() {
        s.all[i].sort_unstable();
        println!(
            "| {kind:?} | {} | {:.2} | {:.2} |",
            s.all[i].len(),
            percentile(&s.all[i], 0.5),
            percentile(&s.all[i], 0.99)
        );
    }
    // RSS growth: from the first sample after a fifth of the run (caches and pools warmed) to
    // the last.
    let warm = series
        .iter()
        .find(|(t, ..)| *t * 5 >= args.seconds)
        .map_or(rss0, |x| x.1);
    let end = series.last().map_or(rss0, |x| x.1);
    let growth = if warm > 0 {
        (end as f64 - warm as f64) * 100.0 / warm as f64
    } else {
        0.0
    };
    println!();
    println!(
        "- total: {total} requests in {elapsed:.1} s = {:.0} req/s; errors: {}; RSS after warm-up {:.1} MiB, at the end {:.1} MiB ({growth:+.1}%)",
        total as f64 / elapsed,
        s.errors,
        warm as f64 / 1024.0,
        end as f64 / 1024.0
    );
    if let Some(e) = &s.first_error {
        println!("- first error: {e}");
    }
    let mut code = 0;
    if s.errors > 0 {
        eprintln!("soak: FAIL: {} errors", s.errors);
        code = 1;
    }
    if growth > args.max_rss_growth_pct {
        eprintln!(
            "soak: FAIL: RSS grew {growth:.1}% after warm-up (bound {}%)",
            args.max_rss_growth_pct
        );
        code = 1;
    }
    code
}

fn flush(samples: &Mutex<Samples>, local: &mut Vec<(Kind, u32)>) {
    let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
    for (kind, micros) in local.drain(..) {
        let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        s.all[i].push(micros);
        s.interval.push(micros);
    }
}

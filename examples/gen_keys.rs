//! Test data for `bench/auth_check.sh`: a big installation as a `keyplane import` stream, plus
//! plaintext key files for the load generator.
//!
//! Writes into `--out DIR`:
//!
//! - `export.jsonl`: a `keyplane export` stream (format 1, this build's schema version) with
//!   one organization (label `default`) and its default project, one admin key, `--projects`
//!   further projects, and `--keys` service accounts spread evenly over them, each with one key.
//!   Load it with `keyplane import --input DIR/export.jsonl` into an empty store.
//! - `admin_key.txt`: the admin key's plaintext (for admin calls against the imported store).
//! - `hot_keys.txt`: `--hot` of the stored service-account keys, one per line, spread evenly
//!   over the whole set (every `keys / hot`-th key in creation order, so every project).
//! - `bogus_checksum.txt`: half of `--bogus`: `sk-svcacct-` + 49 random base62 characters whose
//!   last 6 are not the CRC32 of the first 43. `keyplane` rejects them before any lookup.
//! - `bogus_unknown.txt`: the other half: well-formed keys (valid checksum, minted like real
//!   ones) that are not in the export. They pass the checksum and need a cache or store lookup.
//! - `fresh_unknown.txt`: `--fresh` more well-formed unknown keys, for a run that never repeats
//!   a key (every request misses the negative cache and reads the store). `--fresh 0` skips it.
//!
//! Prints one line, e.g.
//! `gen_keys keys=1000000 projects=100 hot=100000 bogus_checksum=50000 bogus_unknown=50000 fresh=400000 records=1000203 schema_version=1 seconds=3.1`
//!
//! ```text
//! cargo run --release --example gen_keys -- --out /tmp/kp-keys
//! cargo run --release --example gen_keys -- --out /tmp/kp-keys --keys 10000 --hot 1000 --bogus 1000
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use keyplane::domain::ids::Id;
use keyplane::domain::keys::{self, KeyKind, MalformedKey, PlainKey};
use keyplane::domain::random;
use keyplane::domain::time::Clock;
use keyplane::store::schema_version;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters after the prefix: 43 random + 6 checksum.
const BODY_CHARS: usize = 49;
/// The key name the service gives a service account's first key.
const FIRST_KEY_NAME: &str = "Secret Key";

#[derive(Parser)]
#[command(about = "Generate a large keyplane export and key files for the auth/check benchmark")]
struct Args {
    /// Directory to write into (created if missing; existing files are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Service-account keys to store (one service account per key).
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Projects the service accounts are spread over (besides the default project).
    #[arg(long, default_value_t = 100)]
    projects: usize,
    /// Stored keys written to hot_keys.txt, spread over the whole set.
    #[arg(long, default_value_t = 100_000)]
    hot: usize,
    /// Bogus keys: half bad-checksum (bogus_checksum.txt), half well-formed unknown
    /// (bogus_unknown.txt).
    #[arg(long, default_value_t = 100_000)]
    bogus: usize,
    /// Well-formed unknown keys for the never-repeating run (fresh_unknown.txt).
    #[arg(long, default_value_t = 400_000)]
    fresh: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("gen_keys: {e:#}");
        std::process::exit(1);
    }
}

fn create(dir: &Path, name: &str) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(name);
    let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// JSON string literal (the values written here are ASCII plus '…', but escape properly anyway).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A random `sk-svcacct-` string of the right shape whose checksum does not match.
fn bad_checksum_key(buf: &mut Vec<u8>) -> anyhow::Result<String> {
    loop {
        let mut body = String::with_capacity(BODY_CHARS);
        while body.len() < BODY_CHARS {
            if buf.is_empty() {
                buf.resize(4096, 0);
                random::fill(buf)?;
            }
            let b = buf.pop().unwrap_or(0);
            // Rejection sampling keeps characters uniform: 248 = 4 * 62.
            if b < 248 {
                body.push(BASE62[(b % 62) as usize] as char);
            }
        }
        let key = format!("{}{body}", KeyKind::ServiceAccount.prefix());
        // 1 in 62^6 random strings has a matching checksum by chance: skip those.
        if keys::parse(&key) == Err(MalformedKey::Checksum) {
            return Ok(key);
        }
    }
}

fn unknown_key() -> anyhow::Result<String> {
    let k = PlainKey::generate(KeyKind::ServiceAccount)?;
    debug_assert_eq!(keys::parse(k.expose()), Ok(KeyKind::ServiceAccount));
    Ok(k.expose().to_owned())
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.keys == 0 || args.projects == 0 {
        bail!("--keys and --projects must be at least 1");
    }
    if args.hot > args.keys {
        bail!("--hot ({}) cannot exceed --keys ({})", args.hot, args.keys);
    }
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let clock = Clock::system();
    let now = clock.now();
    let version = schema_version();

    let mut export = create(&args.out, "export.jsonl")?;
    let mut hot = create(&args.out, "hot_keys.txt")?;
    let mut records: u64 = 0;

    writeln!(
        export,
        r#"{{"type":"keyplane_export","format":1,"schema_version":{version}}}"#
    )?;

    // The organization `keyplane serve` would bootstrap, so the store counts as initialised.
    let org = Id::generate()?;
    writeln!(
        export,
        r#"{{"type":"organization","id":"{org}","label":"default","name":"Default organization","created_at":{now}}}"#
    )?;
    records += 1;
    let project_line = |id: &Id, name: &str, is_default: bool| {
        format!(
            r#"{{"type":"project","id":"{id}","organization_id":"{org}","name":{},"external_key_id":null,"is_default":{is_default},"created_at":{now},"archived_at":null}}"#,
            js(name)
        )
    };
    let default_project = Id::generate()?;
    writeln!(
        export,
        "{}",
        project_line(&default_project, "Default project", true)
    )?;
    records += 1;
    let mut projects = Vec::with_capacity(args.projects);
    for p in 0..args.projects {
        let id = Id::generate()?;
        writeln!(
            export,
            "{}",
            project_line(&id, &format!("bench-{p:03}"), false)
        )?;
        records += 1;
        projects.push(id);
    }

    // Service accounts first (keys reference them), project by project. Their ids are kept
    // for the key lines that follow.
    let mut accounts: Vec<(Id, usize)> = Vec::with_capacity(args.keys);
    for i in 0..args.keys {
        // Even spread: account i belongs to project i * projects / keys (contiguous runs).
        let p = i * args.projects / args.keys;
        let id = Id::generate()?;
        writeln!(
            export,
            r#"{{"type":"service_account","id":"{id}","organization_id":"{org}","project_id":"{}","name":"bench-{i}","description":null,"role":"member","created_at":{now},"updated_at":{now},"deleted_at":null}}"#,
            projects[p]
        )?;
        records += 1;
        accounts.push((id, p));
    }

    let key_line = |id: &Id,
                    kind: KeyKind,
                    project: Option<&Id>,
                    account: Option<&Id>,
                    name: &str,
                    value: &PlainKey| {
        let opt = |x: Option<&Id>| x.map_or("null".to_owned(), |i| format!("\"{i}\""));
        format!(
            r#"{{"type":"api_key","id":"{id}","organization_id":"{org}","kind":"{}","project_id":{},"service_account_id":{},"name":{},"scopes":[],"key_hash":"{}","redacted_value":{},"created_at":{now},"expires_at":null,"last_used_at":null,"revoked_at":null}}"#,
            kind.as_str(),
            opt(project),
            opt(account),
            js(name),
            hex(value.hash().as_bytes()),
            js(&value.redacted()),
        )
    };

    let admin = PlainKey::generate(KeyKind::Admin)?;
    writeln!(
        export,
        "{}",
        key_line(
            &Id::generate()?,
            KeyKind::Admin,
            None,
            None,
            "Bench admin key",
            &admin
        )
    )?;
    records += 1;
    let mut admin_file = create(&args.out, "admin_key.txt")?;
    writeln!(admin_file, "{}", admin.expose())?;
    admin_file.flush()?;

    // Every `stride`-th key (offset to the middle of each stride) is hot: an even spread.
    let stride = args.keys.checked_div(args.hot).unwrap_or(usize::MAX);
    let mut hot_written = 0usize;
    for (i, (account, p)) in accounts.iter().enumerate() {
        let value = PlainKey::generate(KeyKind::ServiceAccount)?;
        writeln!(
            export,
            "{}",
            key_line(
                &Id::generate()?,
                KeyKind::ServiceAccount,
                Some(&projects[*p]),
                Some(account),
                FIRST_KEY_NAME,
                &value
            )
        )?;
        records += 1;
        if hot_written < args.hot && i % stride == stride / 2 {
            writeln!(hot, "{}", value.expose())?;
            hot_written += 1;
        }
    }
    writeln!(export, r#"{{"type":"end","records":{records}}}"#)?;
    export.flush()?;
    hot.flush()?;
    if hot_written != args.hot {
        bail!("wrote {hot_written} hot keys instead of {}", args.hot);
    }

    let n_checksum = args.bogus / 2;
    let n_unknown = args.bogus - n_checksum;
    let mut buf = Vec::new();
    let mut f = create(&args.out, "bogus_checksum.txt")?;
    for _ in 0..n_checksum {
        writeln!(f, "{}", bad_checksum_key(&mut buf)?)?;
    }
    f.flush()?;
    let mut f = create(&args.out, "bogus_unknown.txt")?;
    for _ in 0..n_unknown {
        writeln!(f, "{}", unknown_key()?)?;
    }
    f.flush()?;
    if args.fresh > 0 {
        let mut f = create(&args.out, "fresh_unknown.txt")?;
        for _ in 0..args.fresh {
            writeln!(f, "{}", unknown_key()?)?;
        }
        f.flush()?;
    }

    println!(
        "gen_keys keys={} projects={} hot={hot_written} bogus_checksum={n_checksum} bogus_unknown={n_unknown} fresh={} records={records} schema_version={version} seconds={:.1}",
        args.keys,
        args.projects,
        args.fresh,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! Raw rate of creating service accounts through the store alone (no HTTP, no service layer).
//!
//! Opens a store, creates an organization and a project directly on it, then runs
//! `--concurrency` tokio tasks that each keep building a service account plus its first key —
//! the same rows `Service::create_project_service_account` builds for
//! `POST /v1/organization/projects/{id}/service_accounts` (role `member`, one key named
//! "Secret Key" minted from a fresh `PlainKey`) — and call
//! `Store::insert_service_account(&account, Some(&key))` until `--seconds` have passed.
//!
//! Prints one machine-readable line on stdout, e.g.
//! `store_insert_rate backend=sqlite concurrency=16 seconds=10.0 inserts=12345 errors=0 rate=1234.5/s`
//!
//! Pool settings are the server's: `PoolSettings::default()` overridden by the same
//! `KEYPLANE_DB_POOL_SIZE` / `KEYPLANE_DB_ACQUIRE_TIMEOUT_MS` / `KEYPLANE_DB_STATEMENT_TIMEOUT_MS`
//! variables `keyplane serve` reads. The tokio runtime is the server's too (multi-threaded,
//! one worker per core).
//!
//! ```text
//! cargo run --release --example store_insert_rate -- --data-dir /tmp/kp --seconds 10
//! cargo run --release --example store_insert_rate -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/kp_bench --concurrency 16
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use keyplane::domain::ids::Id;
use keyplane::domain::keys::{KeyKind, PlainKey};
use keyplane::domain::model::{ApiKey, Organization, Project, Role, ServiceAccount};
use keyplane::domain::time::Clock;
use keyplane::store::{PoolSettings, PostgresStore, SqliteStore, Store};

/// The key name the service gives a service account's first key
/// (`service::api_keys::DEFAULT_KEY_NAME`, which is not public).
const FIRST_KEY_NAME: &str = "Secret Key";
/// Grace after the deadline for inserts already in flight before the run counts as hung.
const DRAIN_GRACE: Duration = Duration::from_secs(15);

#[derive(Parser)]
#[command(about = "Raw service-account insert rate through keyplane's store")]
struct Args {
    /// `sqlite://path/to/file.db` or `postgres://…`.
    #[arg(long, conflicts_with = "data_dir")]
    database_url: Option<String>,
    /// SQLite data directory (the database is `<dir>/keyplane.db`, as for `keyplane serve`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Concurrent inserting tasks.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to insert for (no new insert starts after this).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Name given to every account (the HTTP benchmark posts `{"name":"bench"}`).
    #[arg(long, default_value = "bench")]
    name: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("store_insert_rate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("store_insert_rate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The pool settings `keyplane serve` would use with the current environment.
fn pool_settings() -> anyhow::Result<PoolSettings> {
    let d = PoolSettings::default();
    let num = |name: &str, default: u64| -> anyhow::Result<u64> {
        match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .with_context(|| format!("{name}={v:?} must be a positive whole number")),
        }
    };
    Ok(PoolSettings {
        size: num("KEYPLANE_DB_POOL_SIZE", d.size.into())? as u32,
        acquire_timeout: Duration::from_millis(num(
            "KEYPLANE_DB_ACQUIRE_TIMEOUT_MS",
            d.acquire_timeout.as_millis() as u64,
        )?),
        statement_timeout: Duration::from_millis(num(
            "KEYPLANE_DB_STATEMENT_TIMEOUT_MS",
            d.statement_timeout.as_millis() as u64,
        )?),
    })
}

async fn open(args: &Args, pool: &PoolSettings) -> anyhow::Result<(&'static str, Arc<dyn Store>)> {
    match (&args.database_url, &args.data_dir) {
        (Some(url), _) if url.starts_with("sqlite:") => {
            Ok(("sqlite", Arc::new(SqliteStore::open_url(url, pool).await?)))
        }
        (Some(url), _) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(("postgres", Arc::new(PostgresStore::open(url, pool).await?)))
        }
        (Some(url), _) => bail!(
            "--database-url must start with sqlite:// or postgres:// (got scheme {:?})",
            url.split(':').next().unwrap_or("")
        ),
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join("keyplane.db");
            Ok((
                "sqlite",
                Arc::new(SqliteStore::open_file(&path, pool).await?),
            ))
        }
        (None, None) => bail!("give --database-url or --data-dir"),
    }
}

/// A fresh organization (uniquely labelled, so a used store works too) and one project in it.
async fn setup(store: &Arc<dyn Store>, clock: &Clock) -> anyhow::Result<Project> {
    let now = clock.now();
    let suffix = Id::generate()?;
    let label = format!("bench-{}", &suffix.as_str()[..12]);
    let org = Organization {
        id: Id::generate()?,
        label: label.clone(),
        name: label,
        created_at: now,
    };
    let default_project = Project {
        id: Id::generate()?,
        organization_id: org.id.clone(),
        name: "Default project".into(),
        external_key_id: None,
        is_default: true,
        created_at: now,
        archived_at: None,
        allowed_ips: None,
    };
    let admin_value = PlainKey::generate(KeyKind::Admin)?;
    let admin = ApiKey {
        id: Id::generate()?,
        organization_id: org.id.clone(),
        kind: KeyKind::Admin,
        project_id: None,
        service_account_id: None,
        name: "Bench admin key".into(),
        scopes: Vec::new(),
        hash: admin_value.hash(),
        redacted_value: admin_value.redacted(),
        created_at: now,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        allowed_ips: None,
        limits: Default::default(),
        disabled: None,
    };
    store
        .create_organization(&org, &default_project, &admin, false, &[])
        .await
        .context("creating the benchmark organization")?;
    let project = Project {
        id: Id::generate()?,
        organization_id: org.id.clone(),
        name: "bench".into(),
        external_key_id: None,
        is_default: false,
        created_at: clock.now(),
        archived_at: None,
        allowed_ips: None,
    };
    store
        .insert_project(&project, &[])
        .await
        .context("creating the benchmark project")?;
    Ok(project)
}

/// The account and first key exactly as `create_project_service_account` (with
/// `mint_service_account_key`) builds them for a plain `{"name": …}` request. The plaintext key
/// is generated, hashed and redacted as there, then dropped.
fn build_rows(
    project: &Project,
    name: &str,
    clock: &Clock,
) -> anyhow::Result<(ServiceAccount, ApiKey)> {
    let now = clock.now();
    let account = ServiceAccount {
        id: Id::generate()?,
        organization_id: project.organization_id.clone(),
        project_id: Some(project.id.clone()),
        name: name.to_owned(),
        description: None,
        role: Role::Member,
        created_at: now,
        updated_at: now,
    };
    let value = PlainKey::generate(KeyKind::ServiceAccount)?;
    let now = clock.now();
    let key = ApiKey {
        id: Id::generate()?,
        organization_id: account.organization_id.clone(),
        kind: KeyKind::ServiceAccount,
        project_id: account.project_id.clone(),
        service_account_id: Some(account.id.clone()),
        name: FIRST_KEY_NAME.to_owned(),
        scopes: Vec::new(),
        hash: value.hash(),
        redacted_value: value.redacted(),
        created_at: now,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        allowed_ips: None,
        limits: Default::default(),
        disabled: None,
    };
    Ok((account, key))
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    if args.concurrency == 0 || args.concurrency > 10_000 {
        bail!("--concurrency must be in 1..=10000");
    }
    let pool = pool_settings()?;
    let (backend, store) = open(&args, &pool).await?;
    let clock = Clock::system();
    let project = Arc::new(setup(&store, &clock).await?);

    let inserts = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (store, project, clock) = (store.clone(), project.clone(), clock.clone());
        let (inserts, errors, first_error) = (inserts.clone(), errors.clone(), first_error.clone());
        let name = args.name.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let outcome = match build_rows(&project, &name, &clock) {
                    Ok((account, key)) => store
                        .insert_service_account(&account, Some(&key), &[])
                        .await
                        .map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => {
                        inserts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_error.lock().unwrap();
                        if first.is_none() {
                            *first = Some(format!("{e:#}"));
                        }
                    }
                }
            }
        });
    }
    // Hard bound: inserts still in flight DRAIN_GRACE after the deadline are abandoned.
    let drained = tokio::time::timeout_at((deadline + DRAIN_GRACE).into(), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        tasks.abort_all();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let inserts = inserts.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    if drained {
        store.close().await;
    }

    println!(
        "store_insert_rate backend={backend} concurrency={} seconds={elapsed:.1} inserts={inserts} errors={errors} rate={:.1}/s",
        args.concurrency,
        inserts as f64 / elapsed,
    );
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("store_insert_rate: {errors} inserts failed; first error: {e}");
    }
    if !drained {
        eprintln!("store_insert_rate: inserts still running {DRAIN_GRACE:?} after the deadline; abandoned");
    }
    Ok(drained && errors == 0)
}

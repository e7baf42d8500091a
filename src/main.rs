//! The `keyplane` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyplane::config::{Config, ConfigError, Sources};
use keyplane::domain::time::Clock;
use keyplane::service::Service;

// glibc malloc showed up as ~13% of the verification hot path (free-list walks in a heap
// fragmented by a large key cache); mimalloc keeps per-thread pages and has no such walks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "keyplane",
    version,
    about = "Service accounts and API keys, self-hosted"
)]
struct Cli {
    /// TOML configuration file: keys are the KEYPLANE_* names without the prefix, lowercased;
    /// KEYPLANE_* environment variables override it.
    #[arg(long, global = true, env = "KEYPLANE_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (KEYPLANE_LISTEN, default 127.0.0.1:8080). Applies pending migrations.
    Serve,
    /// Apply pending migrations and exit (for deploy pipelines).
    Migrate,
    /// Write the whole installation as JSON lines (stdout, or --output FILE).
    Export {
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Load an export (stdin, or --input FILE) into an empty store, all or nothing.
    Import {
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
    /// Manage admin API keys directly on the store (recovery, scripting).
    #[command(name = "admin-key", subcommand)]
    AdminKey(AdminKeyCommand),
    /// Manage organizations directly on the store.
    #[command(subcommand)]
    Organization(OrganizationCommand),
    /// Manage the keys that sign access tokens.
    #[command(name = "signing-key", subcommand)]
    SigningKey(SigningKeyCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(flatten)]
    Client(keyplane::cli::ClientCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate every setting (and read the TLS files), print the effective values; exit 2 on
    /// any problem.
    Check,
}

#[derive(Subcommand)]
enum SigningKeyCommand {
    /// Start signing with a new key. The old ones stay in the JWKS until their tokens expire;
    /// running nodes switch within a minute. Prints the new key's `kid`.
    Rotate,
}

#[derive(Subcommand)]
enum OrganizationCommand {
    /// Create an organization (with its default project) and print its first admin key.
    Create {
        /// DNS-label style handle, e.g. `acme`.
        label: String,
    },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin key and print it (only the key) on stdout.
    Create {
        /// Label of the organization the key belongs to.
        #[arg(long, default_value = "default")]
        organization: String,
        /// Only `api.management.read`: lists and retrievals, no changes.
        #[arg(long)]
        read_only: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sources = match Sources::load(cli.config.as_deref()) {
        Ok(sources) => sources,
        Err(e) => return config_error(&e),
    };
    // Still single-threaded here, which setting environment variables requires.
    sources.export_logging_settings();
    keyplane::telemetry::init();
    match cli.command {
        Command::Config(ConfigCommand::Check) => match keyplane::cli::config_check::check(&sources)
        {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Command::Client(command) => match keyplane::cli::run(command, &sources) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                e.report();
                ExitCode::from(e.exit_code())
            }
        },
        command => on_the_store(command, &sources),
    }
}

/// Exit status 2, as for any usage error.
fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("keyplane: invalid configuration:");
    for problem in &e.0 {
        eprintln!("  {problem}");
    }
    ExitCode::from(2)
}

/// `serve` and the commands that work on the store directly.
fn on_the_store(command: Command, sources: &Sources) -> ExitCode {
    let config = match Config::load(sources) {
        Ok(config) => config,
        Err(e) => return config_error(&e),
    };
    if let (Command::Serve, Some(files)) = (&command, &config.tls) {
        if let Err(e) = keyplane::tls::load_certified_key(files) {
            return config_error(&ConfigError::one(format!("{e:#}")));
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyplane: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyplane: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A service for a one-off command on the store. With a webhook configured its audit events
/// are queued for delivery too (a running server sends them).
fn operator_service(config: &Config, store: std::sync::Arc<dyn keyplane::store::Store>) -> Service {
    let service = Service::new(store, Clock::system());
    match &config.audit_webhook {
        Some(webhook) => service.with_audit_webhook(webhook.delivery()),
        None => service,
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Every other command works on the store directly and prints one new admin key.
    let (is_org, label, read_only) = match command {
        Command::Serve => return keyplane::app::serve(config).await,
        Command::Migrate => {
            // Opening a store migrates it (or refuses a schema newer than this build).
            let store = keyplane::app::open_store(&config).await?;
            store.close().await;
            eprintln!("keyplane: the database schema is up to date");
            return Ok(());
        }
        Command::Export { output } => {
            let store = keyplane::app::open_store(&config).await?;
            let mut out: Box<dyn std::io::Write + Send> = match output {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let result = keyplane::transfer::export(store.as_ref(), &mut out).await;
            store.close().await;
            eprintln!("keyplane: exported {} records", result?);
            return Ok(());
        }
        Command::Import { input } => {
            let store = keyplane::app::open_store(&config).await?;
            let reader: Box<dyn std::io::BufRead + Send> = match input {
                Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path)?)),
                None => Box::new(std::io::BufReader::new(std::io::stdin())),
            };
            let result = keyplane::transfer::import(store.as_ref(), reader).await;
            store.close().await;
            eprintln!("keyplane: imported {} records", result?);
            return Ok(());
        }
        Command::SigningKey(SigningKeyCommand::Rotate) => {
            let store = keyplane::app::open_store(&config).await?;
            let service =
                operator_service(&config, store.clone()).with_token_settings(config.tokens.clone());
            let kid = service.rotate_signing_key().await;
            store.close().await;
            println!("{}", kid.map_err(|e| anyhow::anyhow!("{e}"))?);
            return Ok(());
        }
        Command::AdminKey(AdminKeyCommand::Create {
            organization,
            read_only,
        }) => (false, organization, read_only),
        Command::Organization(OrganizationCommand::Create { label }) => (true, label, false),
        Command::Config(_) | Command::Client(_) => anyhow::bail!("not a command on the store"),
    };
    let store = keyplane::app::open_store(&config).await?;
    let service = operator_service(&config, store.clone());
    let key = if is_org {
        service
            .create_organization(&label)
            .await
            .map(|(_, key)| key)
    } else {
        service.create_admin_key_for_label(&label, read_only).await
    };
    store.close().await;
    // Only the key on stdout, so `KEY=$(keyplane admin-key create)` works.
    println!("{}", key.map_err(|e| anyhow::anyhow!("{e}"))?.expose());
    Ok(())
}

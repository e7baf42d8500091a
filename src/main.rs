//! The `keyplane` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyplane::config::Config;
use keyplane::domain::time::Clock;
use keyplane::service::Service;

#[derive(Parser)]
#[command(
    name = "keyplane",
    version,
    about = "Service accounts and API keys, self-hosted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (KEYPLANE_LISTEN, default 127.0.0.1:8080).
    Serve,
    /// Manage admin API keys directly on the store (recovery, scripting).
    #[command(name = "admin-key", subcommand)]
    AdminKey(AdminKeyCommand),
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin key and print it (only the key) on stdout.
    Create {
        /// Label of the organization the key belongs to.
        #[arg(long, default_value = "default")]
        organization: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    keyplane::telemetry::init();
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyplane: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => keyplane::app::serve(config).await,
        Command::AdminKey(AdminKeyCommand::Create { organization }) => {
            let store = keyplane::app::open_store(&config).await?;
            let service = Service::new(store.clone(), Clock::system());
            let key = service.create_admin_key_for_label(&organization).await;
            store.close().await;
            println!("{}", key?.expose());
            Ok(())
        }
    }
}

//! The operator CLI: commands that talk to a running server over its HTTP API, and
//! `keyplane config check`.
//!
//! Exit codes: 0 ok, 1 the API answered an error, 2 usage or configuration, 3 the server cannot
//! be reached.

mod audit;
mod client;
pub mod config_check;
mod keys;
mod projects;
mod service_accounts;
pub mod table;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::config::{ClientSettings, Sources};

pub use audit::AuditCommand;
pub use client::CliError;
pub use keys::KeysCommand;
pub use projects::ProjectsCommand;
pub use service_accounts::ServiceAccountsCommand;

/// How to reach the server; the admin key comes only from `KEYPLANE_ADMIN_KEY` (or the config
/// file), never a flag, because flags are visible to every user in `ps`.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server base URL [default: KEYPLANE_URL, else http://127.0.0.1:8080]
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// PEM CA certificate to trust for an HTTPS server [default: KEYPLANE_CA_CERT]
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Projects of the organization (via a running server).
    Projects {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: ProjectsCommand,
    },
    /// Service accounts of a project (via a running server).
    #[command(name = "service-accounts")]
    ServiceAccounts {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: ServiceAccountsCommand,
    },
    /// API keys of a project's service accounts (via a running server).
    Keys {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The organization's audit log (via a running server).
    Audit {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// Table or JSON, chosen by `--json`.
#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn list(self, list: &Value, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) {
        if self.json {
            println!("{}", table::json(list));
        } else {
            print!("{}", table::render(headers, &table::rows(list, row)));
        }
    }

    pub fn one(self, item: &Value, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) {
        if self.json {
            println!("{}", table::json(item));
        } else {
            print!("{}", table::render(headers, &[row(item)]));
        }
    }

    /// A new key's value, which exists only in this response (the JSON already holds it).
    pub fn secret(self, what: &str, key: &Value) {
        if let (false, Some(value)) = (self.json, key["value"].as_str()) {
            println!("\n{what} (shown only once, store it now):\n{value}");
        }
    }

    pub fn deleted(self, answer: &Value, verb: &str) {
        if self.json {
            println!("{}", table::json(answer));
        } else {
            println!("{verb} {}", table::text(answer, "/id"));
        }
    }
}

pub fn run(command: ClientCommand, sources: &Sources) -> Result<(), CliError> {
    let args = match &command {
        ClientCommand::Projects { args, .. }
        | ClientCommand::ServiceAccounts { args, .. }
        | ClientCommand::Keys { args, .. }
        | ClientCommand::Audit { args, .. } => args.clone(),
    };
    let mut settings = ClientSettings::load(sources).map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(url) = args.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--url {url:?} must be an http:// or https:// URL"
            )));
        }
        settings.url = url;
    }
    if args.ca_cert.is_some() {
        settings.ca_cert = args.ca_cert;
    }
    let client = client::Client::new(&settings)?;
    let out = Output { json: args.json };
    match command {
        ClientCommand::Projects { command, .. } => projects::run(&client, out, command),
        ClientCommand::ServiceAccounts { command, .. } => {
            service_accounts::run(&client, out, command)
        }
        ClientCommand::Keys { command, .. } => keys::run(&client, out, command),
        ClientCommand::Audit { command, .. } => audit::run(&client, out, command),
    }
}

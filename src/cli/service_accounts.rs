//! `keyplane service-accounts …` (project service accounts).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{encode, list_all, CliError, Client};
use super::table::{text, time};
use super::Output;

#[derive(Subcommand)]
pub enum ServiceAccountsCommand {
    /// List a project's service accounts.
    List {
        #[arg(long)]
        project: String,
    },
    /// Create a service account with its first API key (the key is printed once).
    Create {
        #[arg(long)]
        project: String,
        name: String,
    },
    /// Delete a service account and revoke all its keys.
    Delete {
        #[arg(long)]
        project: String,
        id: String,
    },
}

const HEADERS: &[&str] = &["ID", "NAME", "ROLE", "CREATED"];

fn row(a: &Value) -> Vec<String> {
    vec![
        text(a, "/id"),
        text(a, "/name"),
        text(a, "/role"),
        time(a, "/created_at"),
    ]
}

fn base(project: &str) -> String {
    format!(
        "/v1/organization/projects/{}/service_accounts",
        encode(project)
    )
}

pub fn run(client: &Client, out: Output, command: ServiceAccountsCommand) -> Result<(), CliError> {
    match command {
        ServiceAccountsCommand::List { project } => {
            out.list(&list_all(client, &base(&project))?, HEADERS, row);
        }
        ServiceAccountsCommand::Create { project, name } => {
            let created = client.post(&base(&project), json!({ "name": name }))?;
            out.one(&created, HEADERS, row);
            out.secret("API key", &created["api_key"]);
        }
        ServiceAccountsCommand::Delete { project, id } => {
            let deleted = client.delete(&format!("{}/{}", base(&project), encode(&id)))?;
            out.deleted(&deleted, "deleted");
        }
    }
    Ok(())
}

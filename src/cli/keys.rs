//! `keyplane keys …` (project API keys, all owned by service accounts).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{encode, list_all, CliError, Client};
use super::table::{text, time};
use super::Output;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List a project's API keys.
    List {
        #[arg(long)]
        project: String,
    },
    /// Issue another key for a service account (for rotation); the value is printed once.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        service_account: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke one key at once.
    Revoke {
        #[arg(long)]
        project: String,
        key_id: String,
    },
}

const HEADERS: &[&str] = &[
    "ID",
    "NAME",
    "SERVICE ACCOUNT",
    "KEY",
    "CREATED",
    "LAST USED",
    "EXPIRES",
];

fn row(k: &Value) -> Vec<String> {
    vec![
        text(k, "/id"),
        text(k, "/name"),
        text(k, "/owner/service_account/id"),
        text(k, "/redacted_value"),
        time(k, "/created_at"),
        time(k, "/last_used_at"),
        time(k, "/expires_at"),
    ]
}

fn project_path(project: &str) -> String {
    format!("/v1/organization/projects/{}", encode(project))
}

pub fn run(client: &Client, out: Output, command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::List { project } => {
            let path = format!("{}/api_keys", project_path(&project));
            out.list(&list_all(client, &path)?, HEADERS, row);
        }
        KeysCommand::Create {
            project,
            service_account,
            name,
        } => {
            let path = format!(
                "{}/service_accounts/{}/api_keys",
                project_path(&project),
                encode(&service_account)
            );
            let body = match name {
                Some(name) => json!({ "name": name }),
                None => json!({}),
            };
            let created = client.post(&path, body)?;
            out.one(&created, &["ID", "NAME", "CREATED"], |k| {
                vec![text(k, "/id"), text(k, "/name"), time(k, "/created_at")]
            });
            out.secret("API key", &created);
        }
        KeysCommand::Revoke { project, key_id } => {
            let path = format!("{}/api_keys/{}", project_path(&project), encode(&key_id));
            out.deleted(&client.delete(&path)?, "revoked");
        }
    }
    Ok(())
}

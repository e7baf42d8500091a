//! `keyplane projects …`

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{encode, list_all, CliError, Client};
use super::table::{text, time};
use super::Output;

#[derive(Subcommand)]
pub enum ProjectsCommand {
    /// List the organization's projects.
    List {
        /// Include archived projects.
        #[arg(long)]
        include_archived: bool,
    },
    /// Create a project.
    Create { name: String },
    /// Archive a project (its keys stop working).
    Archive { id: String },
}

const BASE: &str = "/v1/organization/projects";
const HEADERS: &[&str] = &["ID", "NAME", "STATUS", "CREATED"];

fn row(p: &Value) -> Vec<String> {
    vec![
        text(p, "/id"),
        text(p, "/name"),
        text(p, "/status"),
        time(p, "/created_at"),
    ]
}

pub fn run(client: &Client, out: Output, command: ProjectsCommand) -> Result<(), CliError> {
    match command {
        ProjectsCommand::List { include_archived } => {
            let path = format!("{BASE}?include_archived={include_archived}");
            out.list(&list_all(client, &path)?, HEADERS, row);
        }
        ProjectsCommand::Create { name } => {
            out.one(&client.post(BASE, json!({ "name": name }))?, HEADERS, row);
        }
        ProjectsCommand::Archive { id } => {
            let archived = client.post(&format!("{BASE}/{}/archive", encode(&id)), json!({}))?;
            out.one(&archived, HEADERS, row);
        }
    }
    Ok(())
}

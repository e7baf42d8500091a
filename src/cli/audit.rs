//! `keyplane audit tail`: recent audit events, optionally following new ones.

use std::collections::HashSet;
use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

use super::client::{encode, CliError, Client};
use super::table::{self, text, time};
use super::Output;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest events, newest first; with --follow, oldest first and then new ones as they
    /// happen (checked every 2 s), like `tail -f`.
    Tail {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        #[arg(long)]
        follow: bool,
    },
}

const BASE: &str = "/v1/organization/audit_logs";
const POLL: Duration = Duration::from_secs(2);
const HEADERS: &[&str] = &["ID", "TIME", "TYPE", "ACTOR", "PROJECT"];

fn actor(e: &Value) -> String {
    ["/actor/api_key/id", "/actor/id", "/actor/type"]
        .iter()
        .map(|p| text(e, p))
        .find(|t| t != "-")
        .unwrap_or_else(|| "-".to_owned())
}

fn row(e: &Value) -> Vec<String> {
    vec![
        text(e, "/id"),
        time(e, "/effective_at"),
        text(e, "/type"),
        actor(e),
        text(e, "/project/id"),
    ]
}

/// A page's events, oldest first.
fn chronological(page: &Value) -> Vec<Value> {
    let mut events = page["data"].as_array().cloned().unwrap_or_default();
    // The API lists newest first; a stable sort keeps that order's tie-breaks reversed.
    events.reverse();
    events.sort_by_key(|e| e["effective_at"].as_i64().unwrap_or(0));
    events
}

pub fn run(client: &Client, out: Output, command: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::Tail { limit, follow } = command;
    let first = client.get(&format!("{BASE}?limit={limit}"))?;
    if !follow {
        out.list(&first, HEADERS, row);
        return Ok(());
    }
    let mut seen = HashSet::new();
    let mut newest: Option<String> = None;
    let mut header = true;
    let mut page = first;
    loop {
        let fresh: Vec<Value> = chronological(&page)
            .into_iter()
            .filter(|e| seen.insert(text(e, "/id")))
            .collect();
        if let Some(last) = fresh.last() {
            newest = Some(text(last, "/id"));
        }
        if out.json {
            for e in &fresh {
                println!("{e}");
            }
        } else if !fresh.is_empty() || header {
            let rows: Vec<Vec<String>> = fresh.iter().map(row).collect();
            let rendered = table::render(HEADERS, &rows);
            // The header once; later batches continue the same listing.
            let body = if header {
                rendered.as_str()
            } else {
                rendered.split_once('\n').map_or("", |(_, rest)| rest)
            };
            print!("{body}");
            header = false;
        }
        let more = page["has_more"].as_bool().unwrap_or(false) && !fresh.is_empty();
        if !more {
            std::thread::sleep(POLL);
        }
        page = match &newest {
            Some(id) => client.get(&format!("{BASE}?limit=100&before={}", encode(id)))?,
            None => client.get(&format!("{BASE}?limit=100"))?,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_newest_first_page_is_replayed_oldest_first() {
        let page = json!({"data": [
            {"id": "c", "effective_at": 3, "type": "project.created", "actor": {"type": "api_key", "api_key": {"id": "key_1"}}},
            {"id": "b", "effective_at": 2, "type": "x", "actor": {"type": "session"}, "project": {"id": "proj_1"}},
            {"id": "a", "effective_at": 2, "type": "x", "actor": {}},
        ]});
        let ids: Vec<String> = chronological(&page)
            .iter()
            .map(|e| text(e, "/id"))
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(actor(&page["data"][0]), "key_1");
        assert_eq!(row(&page["data"][1])[3..], ["session", "proj_1"]);
        assert_eq!(actor(&page["data"][2]), "-");
    }
}

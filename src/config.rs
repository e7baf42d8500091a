//! Configuration from `KEYPLANE_*` environment variables (documented in the README).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::domain::keys::PlainKey;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./keyplane-data";

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// `KEYPLANE_DATA_DIR/keyplane.db` (the default).
    SqliteFile(PathBuf),
    /// `KEYPLANE_DATABASE_URL=sqlite://…`.
    SqliteUrl(String),
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    pub pool_size: u32,
    /// `KEYPLANE_BOOTSTRAP_ADMIN_KEY`, checked for format at load time.
    pub bootstrap_admin_key: Option<PlainKey>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = var("KEYPLANE_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen.parse().with_context(|| {
            format!("KEYPLANE_LISTEN={listen:?} is not an address like 127.0.0.1:8080")
        })?;
        let database = match var("KEYPLANE_DATABASE_URL") {
            Some(url) if url.starts_with("sqlite:") => Database::SqliteUrl(url),
            Some(url) => bail!(
                "KEYPLANE_DATABASE_URL must start with sqlite:// (got scheme {:?})",
                url.split(':').next().unwrap_or("")
            ),
            None => {
                let dir = var("KEYPLANE_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned());
                Database::SqliteFile(PathBuf::from(dir).join("keyplane.db"))
            }
        };
        let pool_size = match var("KEYPLANE_DB_POOL_SIZE") {
            None => 8,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .with_context(|| format!("KEYPLANE_DB_POOL_SIZE={v:?} must be 1..=1000"))?,
        };
        let bootstrap_admin_key = match var("KEYPLANE_BOOTSTRAP_ADMIN_KEY") {
            None => None,
            Some(v) => {
                let key = PlainKey::from_supplied(v.trim()).map_err(|why| {
                    anyhow::anyhow!(
                        "KEYPLANE_BOOTSTRAP_ADMIN_KEY is not a well-formed sk-admin- key: {why}"
                    )
                })?;
                if key.kind() != crate::domain::keys::KeyKind::Admin {
                    bail!("KEYPLANE_BOOTSTRAP_ADMIN_KEY must be an admin key (sk-admin-…)");
                }
                Some(key)
            }
        };
        Ok(Self {
            listen,
            database,
            pool_size,
            bootstrap_admin_key,
        })
    }
}

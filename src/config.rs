//! Configuration from `KEYPLANE_*` environment variables (documented in the README).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::domain::keys::PlainKey;
use crate::store::PoolSettings;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./keyplane-data";

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// `KEYPLANE_DATA_DIR/keyplane.db` (the default).
    SqliteFile(PathBuf),
    /// `KEYPLANE_DATABASE_URL=sqlite://…`.
    SqliteUrl(String),
    /// `KEYPLANE_DATABASE_URL=postgres://…` (or `postgresql://…`).
    Postgres(String),
}

pub use crate::service::{TokenSettings, WebhookSettings};

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    pub pool: PoolSettings,
    /// `KEYPLANE_BOOTSTRAP_ADMIN_KEY`, checked for format at load time.
    pub bootstrap_admin_key: Option<PlainKey>,
    /// Access tokens: issuer (`KEYPLANE_PUBLIC_URL`), audience, lifetime.
    pub tokens: TokenSettings,
    /// `KEYPLANE_AUDIT_WEBHOOK_URL` / `_SECRET`: where audit events are delivered, if anywhere.
    pub audit_webhook: Option<WebhookSettings>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, default: u64, min: u64, max: u64) -> anyhow::Result<u64> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .with_context(|| format!("{name}={v:?} must be a whole number in {min}..={max}")),
    }
}

fn millis(name: &str, default: Duration) -> anyhow::Result<Duration> {
    number(name, default.as_millis() as u64, 1, 3_600_000).map(Duration::from_millis)
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = var("KEYPLANE_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen.parse().with_context(|| {
            format!("KEYPLANE_LISTEN={listen:?} is not an address like 127.0.0.1:8080")
        })?;
        let database = match var("KEYPLANE_DATABASE_URL") {
            Some(url) if url.starts_with("sqlite:") => Database::SqliteUrl(url),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url)
            }
            // Only the scheme is quoted: the rest may hold a password.
            Some(url) => bail!(
                "KEYPLANE_DATABASE_URL must start with sqlite:// or postgres:// (got scheme {:?})",
                url.split(':').next().unwrap_or("")
            ),
            None => {
                let dir = var("KEYPLANE_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned());
                Database::SqliteFile(PathBuf::from(dir).join("keyplane.db"))
            }
        };
        let defaults = PoolSettings::default();
        let pool = PoolSettings {
            size: number("KEYPLANE_DB_POOL_SIZE", defaults.size.into(), 1, 1000)? as u32,
            acquire_timeout: millis("KEYPLANE_DB_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
            statement_timeout: millis(
                "KEYPLANE_DB_STATEMENT_TIMEOUT_MS",
                defaults.statement_timeout,
            )?,
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
        let issuer = match var("KEYPLANE_PUBLIC_URL") {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!("KEYPLANE_PUBLIC_URL={url:?} must be an http:// or https:// URL");
                }
                url
            }
            None => format!("http://{listen}"),
        };
        let tokens = TokenSettings {
            audience: var("KEYPLANE_TOKEN_AUDIENCE").unwrap_or_else(|| issuer.clone()),
            issuer,
            ttl_seconds: number("KEYPLANE_TOKEN_TTL_SECONDS", 3600, 60, 86_400)? as i64,
        };
        let audit_webhook = match (
            var("KEYPLANE_AUDIT_WEBHOOK_URL"),
            var("KEYPLANE_AUDIT_WEBHOOK_SECRET"),
        ) {
            (None, None) => None,
            (Some(url), Some(secret)) => {
                let url = url.trim().to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!("KEYPLANE_AUDIT_WEBHOOK_URL must be an http:// or https:// URL");
                }
                if secret.chars().count() < 16 {
                    bail!("KEYPLANE_AUDIT_WEBHOOK_SECRET must be at least 16 characters");
                }
                Some(WebhookSettings::new(url, secret))
            }
            (Some(_), None) => {
                bail!("KEYPLANE_AUDIT_WEBHOOK_URL is set but KEYPLANE_AUDIT_WEBHOOK_SECRET is not")
            }
            (None, Some(_)) => {
                bail!("KEYPLANE_AUDIT_WEBHOOK_SECRET is set but KEYPLANE_AUDIT_WEBHOOK_URL is not")
            }
        };
        Ok(Self {
            listen,
            database,
            pool,
            bootstrap_admin_key,
            tokens,
            audit_webhook,
        })
    }
}

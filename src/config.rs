//! Configuration: `KEYPLANE_*` environment variables over an optional TOML file
//! (`--config FILE`). Every setting is listed once in [`settings::SETTINGS`]; this module is the
//! one place their values are parsed. Problems are collected, not stopped at, so
//! `keyplane config check` can report them all.

mod models;
pub mod settings;
pub mod sources;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::connections::ReadTimeouts;
use crate::domain::catalogue::ModelCatalogue;
use crate::domain::keys::{KeyKind, PlainKey};
use crate::service::federation::FederationSettings;
use crate::service::key_cache::CacheSettings;
use crate::service::throttle::ThrottleSettings;
use crate::service::ConsoleSettings;
use crate::store::PoolSettings;

pub use sources::Sources;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./keyplane-data";
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

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

pub use crate::service::TokenSettings;

/// `KEYPLANE_TLS_CERT` and `KEYPLANE_TLS_KEY`: PEM files, read at start and on SIGHUP.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `KEYPLANE_AUDIT_WEBHOOK_URL` and `KEYPLANE_AUDIT_WEBHOOK_SECRET`.
#[derive(Clone)]
pub struct AuditWebhookConfig {
    pub url: String,
    pub secret: String,
}

impl fmt::Debug for AuditWebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditWebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl AuditWebhookConfig {
    /// The delivery settings the service runs with (default backoff and timeout).
    pub fn delivery(&self) -> crate::service::WebhookSettings {
        crate::service::WebhookSettings::new(self.url.clone(), self.secret.clone())
    }
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    pub pool: PoolSettings,
    /// `KEYPLANE_BOOTSTRAP_ADMIN_KEY`, checked for format at load time.
    pub bootstrap_admin_key: Option<PlainKey>,
    /// Access tokens: issuer (`KEYPLANE_PUBLIC_URL`), audience, lifetime.
    pub tokens: TokenSettings,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    pub audit_webhook: Option<AuditWebhookConfig>,
    /// How long slow clients may take to send a request (slowloris).
    pub read_timeouts: ReadTimeouts,
    /// Brute-force throttling of failed authentications, and the proxies trusted to name
    /// the client.
    pub throttle: ThrottleSettings,
    /// The verification cache (`KEYPLANE_KEY_CACHE_CAPACITY`).
    pub key_cache: CacheSettings,
    /// The models rate limits exist for (`[models]` in the file).
    pub models: ModelCatalogue,
    /// Workload identity federation (`KEYPLANE_FEDERATION_ALLOW_HTTP`).
    pub federation: FederationSettings,
    /// Console sessions (`KEYPLANE_CONSOLE_*`).
    pub console: ConsoleSettings,
}

/// What the operator CLI needs to reach a running server.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub url: String,
    /// `KEYPLANE_ADMIN_KEY`; never a flag, since flags are visible in `ps`.
    pub admin_key: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

/// One or more configuration problems, each naming the variable or the key and file.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl ConfigError {
    pub fn one(problem: String) -> Self {
        Self(vec![problem])
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while the rest of the settings are still parsed.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn take<T>(&mut self, r: Result<T, String>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            fallback
        })
    }

    fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.0))
        }
    }
}

fn number(src: &Sources, key: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
    match src.get(key) {
        None => Ok(default),
        Some(raw) => raw
            .text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                format!(
                    "{}={:?} must be a whole number in {min}..={max}",
                    raw.origin, raw.text
                )
            }),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), `default` when unset.
fn flag(src: &Sources, key: &str, default: bool) -> Result<bool, String> {
    match src.get(key) {
        None => Ok(default),
        Some(raw) => match raw.text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!(
                "{}={:?} must be true or false",
                raw.origin, raw.text
            )),
        },
    }
}

fn millis(src: &Sources, key: &str, default: Duration) -> Result<Duration, String> {
    number(src, key, default.as_millis() as u64, 1, 3_600_000).map(Duration::from_millis)
}

fn http_url(src: &Sources, key: &str) -> Result<Option<String>, String> {
    match src.get(key) {
        None => Ok(None),
        Some(raw) => {
            let url = raw.text.trim().trim_end_matches('/').to_owned();
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() => Ok(Some(url)),
                _ => Err(format!(
                    "{}={url:?} must be an http:// or https:// URL",
                    raw.origin
                )),
            }
        }
    }
}

fn database(src: &Sources) -> Result<Database, String> {
    match src.get("database_url") {
        Some(raw) if raw.text.starts_with("sqlite:") => Ok(Database::SqliteUrl(raw.text)),
        Some(raw)
            if raw.text.starts_with("postgres://") || raw.text.starts_with("postgresql://") =>
        {
            Ok(Database::Postgres(raw.text))
        }
        // Only the scheme is quoted: the rest may hold a password.
        Some(raw) => Err(format!(
            "{} must start with sqlite:// or postgres:// (got scheme {:?})",
            raw.origin,
            raw.text.split(':').next().unwrap_or("")
        )),
        None => {
            let dir = src
                .get("data_dir")
                .map_or_else(|| DEFAULT_DATA_DIR.to_owned(), |r| r.text);
            Ok(Database::SqliteFile(PathBuf::from(dir).join("keyplane.db")))
        }
    }
}

fn bootstrap_admin_key(src: &Sources) -> Result<Option<PlainKey>, String> {
    let Some(raw) = src.get("bootstrap_admin_key") else {
        return Ok(None);
    };
    let key = PlainKey::from_supplied(raw.text.trim())
        .map_err(|why| format!("{} is not a well-formed sk-admin- key: {why}", raw.origin))?;
    if key.kind() != KeyKind::Admin {
        return Err(format!("{} must be an admin key (sk-admin-…)", raw.origin));
    }
    Ok(Some(key))
}

fn tls(src: &Sources) -> Result<Option<TlsFiles>, String> {
    match (src.get("tls_cert"), src.get("tls_key")) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert.text),
            key: PathBuf::from(key.text),
        })),
        (Some(set), None) | (None, Some(set)) => Err(format!(
            "{} is set but not its pair: KEYPLANE_TLS_CERT and KEYPLANE_TLS_KEY go together",
            set.origin
        )),
    }
}

fn audit_webhook(src: &Sources) -> Result<Option<AuditWebhookConfig>, String> {
    let url = http_url(src, "audit_webhook_url")?;
    let secret = src.get("audit_webhook_secret");
    match (url, secret) {
        (None, None) => Ok(None),
        (None, Some(s)) => Err(format!(
            "{} is set without KEYPLANE_AUDIT_WEBHOOK_URL",
            s.origin
        )),
        (Some(_), None) => Err(
            "KEYPLANE_AUDIT_WEBHOOK_URL needs KEYPLANE_AUDIT_WEBHOOK_SECRET (at least 16 characters)"
                .to_owned(),
        ),
        (Some(_), Some(s)) if s.text.chars().count() < 16 => Err(format!(
            "{} must be at least 16 characters",
            s.origin
        )),
        (Some(url), Some(s)) => Ok(Some(AuditWebhookConfig {
            url,
            secret: s.text,
        })),
    }
}

/// `log` and `log_format` are applied by `telemetry` from the environment; checked here so a
/// typo is an error rather than a silently different log.
fn throttle(src: &Sources) -> Result<ThrottleSettings, String> {
    let defaults = ThrottleSettings::default();
    let seconds = |key, default: Duration| {
        number(src, key, default.as_secs(), 1, 86_400).map(Duration::from_secs)
    };
    let trusted_proxies = match src.get("trusted_proxies") {
        None => Vec::new(),
        Some(raw) => crate::service::throttle::parse_cidrs(&raw.text).map_err(|bad| {
            format!(
                "{}: {bad:?} is not an address or CIDR like 10.0.0.0/8",
                raw.origin
            )
        })?,
    };
    Ok(ThrottleSettings {
        max_failures: number(
            src,
            "auth_failure_limit",
            defaults.max_failures.into(),
            0,
            1_000_000,
        )? as u32,
        window: seconds("auth_failure_window_seconds", defaults.window)?,
        cooldown: seconds("auth_failure_cooldown_seconds", defaults.cooldown)?,
        trusted_proxies,
        ..defaults
    })
}

fn logging(src: &Sources) -> Result<(), String> {
    if let Some(raw) = src.get("log") {
        tracing_subscriber::EnvFilter::try_new(raw.text.trim())
            .map_err(|e| format!("{}={:?} is not a log filter: {e}", raw.origin, raw.text))?;
    }
    match src.get("log_format") {
        Some(raw) if !matches!(raw.text.trim(), "human" | "json") => Err(format!(
            "{}={:?} must be human or json",
            raw.origin, raw.text
        )),
        _ => Ok(()),
    }
}

impl Config {
    /// The environment alone (no file).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(&Sources::load(None)?)
    }

    pub fn load(src: &Sources) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let fallback_listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let listen = match src.get("listen") {
            None => Ok(fallback_listen),
            Some(raw) => raw.text.trim().parse().map_err(|_| {
                format!(
                    "{}={:?} is not an address like 127.0.0.1:8080",
                    raw.origin, raw.text
                )
            }),
        };
        let listen = p.take(listen, fallback_listen);
        let database = p.take(
            database(src),
            Database::SqliteFile(PathBuf::from(DEFAULT_DATA_DIR)),
        );
        let defaults = PoolSettings::default();
        let pool = PoolSettings {
            size: p.take(
                number(src, "db_pool_size", defaults.size.into(), 1, 1000),
                1,
            ) as u32,
            acquire_timeout: p.take(
                millis(src, "db_acquire_timeout_ms", defaults.acquire_timeout),
                defaults.acquire_timeout,
            ),
            statement_timeout: p.take(
                millis(src, "db_statement_timeout_ms", defaults.statement_timeout),
                defaults.statement_timeout,
            ),
        };
        let read_defaults = ReadTimeouts::default();
        let read_timeouts = ReadTimeouts {
            header: p.take(
                millis(src, "header_read_timeout_ms", read_defaults.header),
                read_defaults.header,
            ),
            body: p.take(
                millis(src, "body_read_timeout_ms", read_defaults.body),
                read_defaults.body,
            ),
        };
        let bootstrap_admin_key = p.take(bootstrap_admin_key(src), None);
        let tls = p.take(tls(src), None);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = p
            .take(http_url(src, "public_url"), None)
            .unwrap_or_else(|| format!("{scheme}://{listen}"));
        let tokens = TokenSettings {
            audience: src
                .get("token_audience")
                .map_or_else(|| issuer.clone(), |r| r.text),
            issuer,
            ttl_seconds: p.take(number(src, "token_ttl_seconds", 3600, 60, 86_400), 3600) as i64,
        };
        let audit_webhook = p.take(audit_webhook(src), None);
        let throttle = p.take(throttle(src), ThrottleSettings::default());
        let cache_defaults = CacheSettings::default();
        let key_cache = CacheSettings {
            capacity: p.take(
                number(
                    src,
                    "key_cache_capacity",
                    cache_defaults.capacity as u64,
                    100,
                    100_000_000,
                ),
                cache_defaults.capacity as u64,
            ) as usize,
            ..cache_defaults
        };
        let federation = FederationSettings {
            allow_http: p.take(flag(src, "federation_allow_http", false), false),
        };
        let console_defaults = ConsoleSettings::default();
        let console = ConsoleSettings {
            idle_timeout: Duration::from_secs(p.take(
                number(
                    src,
                    "console_idle_timeout_seconds",
                    console_defaults.idle_timeout.as_secs(),
                    60,
                    86_400,
                ),
                console_defaults.idle_timeout.as_secs(),
            )),
            lifetime: Duration::from_secs(p.take(
                number(
                    src,
                    "console_session_lifetime_seconds",
                    console_defaults.lifetime.as_secs(),
                    300,
                    2_592_000,
                ),
                console_defaults.lifetime.as_secs(),
            )),
            // The browser reaches keyplane over HTTPS: served so, or behind a proxy that
            // terminates TLS for the public URL.
            secure_cookie: tls.is_some() || tokens.issuer.starts_with("https://"),
        };
        p.take(logging(src), ());
        let shown = src
            .file()
            .map_or_else(String::new, |f| f.display().to_string());
        let models = match models::catalogue(src.models(), &shown) {
            Ok(c) => c,
            Err(problems) => {
                p.0.extend(problems);
                ModelCatalogue::default()
            }
        };
        p.finish(Self {
            console,
            federation,
            models,
            listen,
            database,
            pool,
            bootstrap_admin_key,
            tokens,
            tls,
            audit_webhook,
            read_timeouts,
            throttle,
            key_cache,
        })
    }
}

impl ClientSettings {
    pub fn load(src: &Sources) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let url = p
            .take(http_url(src, "url"), None)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let admin_key = src.get("admin_key").map(|r| r.text.trim().to_owned());
        let ca_cert = src.get("ca_cert").map(|r| PathBuf::from(r.text));
        p.finish(Self {
            url,
            admin_key,
            ca_cert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str, vars: &[(&str, &str)]) -> Result<Sources, ConfigError> {
        Sources::parse(text, Path::new("/etc/kp.toml"), env(vars))
    }

    #[test]
    fn file_values_apply_and_the_environment_overrides_them() {
        let src = file(
            "listen = \"0.0.0.0:9000\"\ntoken_ttl_seconds = 900\ndb_pool_size = 3\n",
            &[("KEYPLANE_DB_POOL_SIZE", "5")],
        )
        .unwrap();
        let c = Config::load(&src).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.tokens.ttl_seconds, 900);
        assert_eq!(c.pool.size, 5);
        assert_eq!(c.tokens.issuer, "http://0.0.0.0:9000");
    }

    #[test]
    fn throttling_settings_and_trusted_proxies() {
        let src = file(
            "auth_failure_limit = 5\ntrusted_proxies = \"10.0.0.0/8, ::1\"\n",
            &[("KEYPLANE_AUTH_FAILURE_COOLDOWN_SECONDS", "30")],
        )
        .unwrap();
        let c = Config::load(&src).unwrap();
        assert_eq!(c.throttle.max_failures, 5);
        assert_eq!(c.throttle.cooldown, Duration::from_secs(30));
        assert_eq!(c.throttle.window, Duration::from_secs(60));
        assert_eq!(c.throttle.trusted_proxies.len(), 2);
        let e = Config::load(&file("trusted_proxies = \"10.0.0.0/8,proxy.local\"\n", &[]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("trusted_proxies in /etc/kp.toml") && e.contains("proxy.local"),
            "{e}"
        );
    }

    #[test]
    fn federation_allow_http_is_a_boolean() {
        let c = Config::load(&file("", &[]).unwrap()).unwrap();
        assert!(!c.federation.allow_http);
        let c = Config::load(&file("federation_allow_http = true\n", &[]).unwrap()).unwrap();
        assert!(c.federation.allow_http);
        let src = file("", &[("KEYPLANE_FEDERATION_ALLOW_HTTP", "no")]).unwrap();
        assert!(!Config::load(&src).unwrap().federation.allow_http);
        let src = file("", &[("KEYPLANE_FEDERATION_ALLOW_HTTP", "sure")]).unwrap();
        let e = Config::load(&src).unwrap_err().to_string();
        assert!(e.contains("KEYPLANE_FEDERATION_ALLOW_HTTP"), "{e}");
        assert!(file("federation_allow_http = \"yes\"\n", &[]).is_err());
    }

    #[test]
    fn the_key_cache_capacity() {
        let c = Config::load(&file("", &[]).unwrap()).unwrap();
        assert_eq!(c.key_cache.capacity, CacheSettings::default().capacity);
        let c = Config::load(&file("key_cache_capacity = 5000\n", &[]).unwrap()).unwrap();
        assert_eq!(c.key_cache.capacity, 5000);
        let e = Config::load(&file("", &[("KEYPLANE_KEY_CACHE_CAPACITY", "10")]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEYPLANE_KEY_CACHE_CAPACITY"), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_the_file() {
        let e = file("lisen = \"x\"\ntoken_ttl_seconds = \"900\"\n", &[]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("lisen in /etc/kp.toml: unknown setting"),
            "{text}"
        );
        assert!(
            text.contains("token_ttl_seconds in /etc/kp.toml: must be an integer"),
            "{text}"
        );
    }

    #[test]
    fn every_invalid_value_is_reported_at_once() {
        let src = file(
            "token_ttl_seconds = 5\nlog_format = \"xml\"\ntls_cert = \"c.pem\"\n",
            &[("KEYPLANE_LISTEN", "nowhere")],
        )
        .unwrap();
        let e = Config::load(&src).unwrap_err();
        assert_eq!(e.0.len(), 4, "{e}");
        assert!(e.0[0].starts_with("KEYPLANE_LISTEN="), "{e}");
        assert!(e.to_string().contains("token_ttl_seconds in /etc/kp.toml"));
        assert!(e.to_string().contains("log_format in /etc/kp.toml"));
        assert!(e
            .to_string()
            .contains("tls_cert in /etc/kp.toml is set but not its pair"));
    }

    #[test]
    fn the_webhook_needs_a_long_secret() {
        let url = ("KEYPLANE_AUDIT_WEBHOOK_URL", "https://hooks.example/kp");
        let short = Sources::parse(
            "",
            Path::new("f"),
            env(&[url, ("KEYPLANE_AUDIT_WEBHOOK_SECRET", "short")]),
        );
        assert!(Config::load(&short.unwrap()).is_err());
        let missing = Sources::parse("", Path::new("f"), env(&[url]));
        assert!(Config::load(&missing.unwrap()).is_err());
        let good = file(
            "audit_webhook_url = \"https://hooks.example/kp\"\naudit_webhook_secret = \"0123456789abcdef\"\n",
            &[],
        )
        .unwrap();
        let hook = Config::load(&good).unwrap().audit_webhook.unwrap();
        assert_eq!(hook.url, "https://hooks.example/kp");
        assert!(!format!("{hook:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn tls_makes_the_default_issuer_https_and_secrets_are_hidden() {
        let src = file(
            "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ndatabase_url = \"postgres://u:pw@h/db\"\n",
            &[],
        )
        .unwrap();
        let c = Config::load(&src).unwrap();
        assert_eq!(c.tokens.issuer, "https://127.0.0.1:8080");
        let shown = src.effective();
        let db = shown
            .iter()
            .find(|(s, _, _)| s.key == "database_url")
            .unwrap();
        assert_eq!((db.1.as_str(), db.2), ("<set>", "file"));
    }
}

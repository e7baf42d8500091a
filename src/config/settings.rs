//! The one list of every setting: loading, `config check` and the README table follow it.

/// What a TOML value must be; environment variables are always text and parsed the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Integer,
    Boolean,
}

#[derive(Debug)]
pub struct Setting {
    /// The TOML key; the environment variable is `KEYPLANE_` + this in upper case.
    pub key: &'static str,
    pub kind: ValueKind,
    /// Shown by `config check` when the setting is unset.
    pub default: &'static str,
    pub meaning: &'static str,
    /// Never printed: `config check` shows `<set>`.
    pub secret: bool,
}

impl Setting {
    pub fn env_var(&self) -> String {
        format!("KEYPLANE_{}", self.key.to_ascii_uppercase())
    }
}

const fn text(key: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        kind: ValueKind::Text,
        default,
        meaning,
        secret: false,
    }
}

const fn integer(key: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        kind: ValueKind::Integer,
        default,
        meaning,
        secret: false,
    }
}

const fn boolean(key: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        kind: ValueKind::Boolean,
        default,
        meaning,
        secret: false,
    }
}

const fn secret(key: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        kind: ValueKind::Text,
        default: "-",
        meaning,
        secret: true,
    }
}

pub const SETTINGS: &[Setting] = &[
    text("listen", "127.0.0.1:8080", "address to serve on"),
    text(
        "data_dir",
        "./keyplane-data",
        "directory of the SQLite database (keyplane.db)",
    ),
    secret(
        "database_url",
        "overrides data_dir: sqlite:///abs/path/keyplane.db or postgres://user:pass@host:5432/db",
    ),
    integer(
        "db_pool_size",
        "8",
        "PostgreSQL: connections per node; SQLite: read connections",
    ),
    integer(
        "db_acquire_timeout_ms",
        "5000",
        "wait for a free connection before answering 503",
    ),
    integer(
        "db_statement_timeout_ms",
        "5000",
        "PostgreSQL statement_timeout; longer statements are cancelled (503)",
    ),
    integer(
        "header_read_timeout_ms",
        "10000",
        "a request line and headers must arrive within this; also how long a keep-alive connection may idle",
    ),
    integer(
        "body_read_timeout_ms",
        "30000",
        "a request body must arrive within this of its headers (else 408)",
    ),
    secret(
        "bootstrap_admin_key",
        "first start of an empty store: register this sk-admin- key instead of printing a new one",
    ),
    text(
        "log",
        "info,sqlx=warn",
        "log filter (tracing EnvFilter syntax); logs go to stderr",
    ),
    text("log_format", "human", "log line format: human or json"),
    text(
        "public_url",
        "http(s):// + listen",
        "the URL clients reach keyplane at: token issuer",
    ),
    text(
        "token_audience",
        "the public URL",
        "the aud of access tokens",
    ),
    integer(
        "token_ttl_seconds",
        "3600",
        "access token lifetime (60-86400)",
    ),
    text(
        "tls_cert",
        "-",
        "PEM certificate chain: serve HTTPS (with tls_key); reloaded on SIGHUP",
    ),
    text("tls_key", "-", "PEM private key of tls_cert"),
    text(
        "audit_webhook_url",
        "-",
        "http(s) URL that receives every audit event",
    ),
    secret(
        "audit_webhook_secret",
        "signs webhook deliveries; at least 16 characters, required with the URL",
    ),
    integer(
        "auth_failure_limit",
        "20",
        "failed authentications per source and window before it gets 429 (0: off)",
    ),
    integer(
        "auth_failure_window_seconds",
        "60",
        "the window auth_failure_limit counts in",
    ),
    integer(
        "auth_failure_cooldown_seconds",
        "60",
        "how long a source over the limit gets 429 (Retry-After)",
    ),
    integer(
        "key_cache_capacity",
        "250000",
        "verified keys one node keeps in memory (about 2 KB each)",
    ),
    text(
        "trusted_proxies",
        "-",
        "comma-separated CIDRs of proxies whose X-Forwarded-For / X-Real-IP names the client",
    ),
    boolean(
        "federation_allow_http",
        "false",
        "accept http:// workload identity issuers and discovery URLs (loopback tests only)",
    ),
    integer(
        "console_idle_timeout_seconds",
        "1800",
        "a console session ends after this long without use (60 to 86400)",
    ),
    integer(
        "console_session_lifetime_seconds",
        "43200",
        "a console session ends this long after sign-in, however active (300 to 2592000)",
    ),
    text(
        "url",
        "http://127.0.0.1:8080",
        "CLI client: base URL of the server",
    ),
    secret(
        "admin_key",
        "CLI client: the admin key it authenticates with",
    ),
    text(
        "ca_cert",
        "-",
        "CLI client: PEM CA certificate to trust instead of the public roots",
    ),
];

pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

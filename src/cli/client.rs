//! A small blocking client for the server's own HTTP API (OpenAI dialect).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use crate::config::ClientSettings;

/// Why a command failed; each maps to one documented exit code.
#[derive(Debug)]
pub enum CliError {
    /// Usage or configuration (exit 2).
    Usage(String),
    /// The server answered with an error (exit 1).
    Api {
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// No answer at all: refused, DNS, TLS, timeout (exit 3).
    Unreachable(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api { .. } => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) => 3,
        }
    }

    pub fn report(&self) {
        match self {
            Self::Usage(m) => eprintln!("keyplane: {m}"),
            Self::Unreachable(m) => eprintln!("keyplane: cannot reach the server: {m}"),
            Self::Api {
                status,
                message,
                request_id,
            } => {
                eprintln!("keyplane: the server answered {status}: {message}");
                if let Some(id) = request_id {
                    eprintln!("x-request-id: {id}");
                }
            }
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: String,
}

impl Client {
    pub fn new(settings: &ClientSettings) -> Result<Self, CliError> {
        let key = settings.admin_key.as_deref().ok_or_else(|| {
            CliError::Usage(
                "KEYPLANE_ADMIN_KEY is not set (in the environment or the config file)".to_owned(),
            )
        })?;
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60));
        if let Some(ca) = &settings.ca_cert {
            builder = builder.tls_config(Arc::new(trusting(ca)?));
        }
        Ok(Self {
            agent: builder.build(),
            base: settings.url.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {key}"),
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(self.request("GET", path).call())
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(self.request("POST", path).send_json(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(self.request("DELETE", path).call())
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base))
            .set("authorization", &self.authorization)
    }

    fn call(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Value, CliError> {
        match result {
            Ok(response) => response
                .into_json()
                .map_err(|e| CliError::Unreachable(format!("unreadable response: {e}"))),
            Err(ureq::Error::Status(status, response)) => {
                let request_id = response.header("x-request-id").map(str::to_owned);
                let body: Value = response.into_json().unwrap_or(Value::Null);
                // The OpenAI envelope, else the Keycard one, else just the status.
                let message = body["error"]["message"]
                    .as_str()
                    .or_else(|| body["message"].as_str())
                    .unwrap_or("no error message")
                    .to_owned();
                Err(CliError::Api {
                    status,
                    message,
                    request_id,
                })
            }
            Err(ureq::Error::Transport(t)) => {
                Err(CliError::Unreachable(format!("{} ({t})", self.base)))
            }
        }
    }
}

/// A TLS configuration trusting only the CA certificate(s) in `path`.
fn trusting(path: &std::path::Path) -> Result<rustls::ClientConfig, CliError> {
    let bad = |e: String| CliError::Usage(format!("KEYPLANE_CA_CERT {}: {e}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".to_owned()));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// Percent-encodes one path segment or query value.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Every item of a paginated list (`after` = the previous page's `last_id`), as one list object.
pub fn list_all(client: &Client, path: &str) -> Result<Value, CliError> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut data = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = match &after {
            None => client.get(&format!("{path}{sep}limit=100"))?,
            Some(a) => client.get(&format!("{path}{sep}limit=100&after={}", encode(a)))?,
        };
        let items = page["data"].as_array().cloned().unwrap_or_default();
        let more = page["has_more"].as_bool().unwrap_or(false);
        after = page["last_id"].as_str().map(str::to_owned);
        let empty = items.is_empty();
        data.extend(items);
        if !more || empty || after.is_none() {
            break;
        }
    }
    Ok(serde_json::json!({
        "object": "list",
        "first_id": data.first().map(|d| d["id"].clone()),
        "last_id": data.last().map(|d| d["id"].clone()),
        "has_more": false,
        "data": data,
    }))
}

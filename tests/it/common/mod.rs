//! Test harness: an app on a fresh store, requests through the router in-process, and a tiny
//! HTTP/1.1 client for the tests that use a real socket.

pub mod backends;
pub mod loopback;
pub mod oidc;
pub mod prometheus;
pub mod server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use keyplane::domain::time::Clock;
use keyplane::http::{router, AppState};
use keyplane::service::{Bootstrapped, Service};
use keyplane::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

pub use backends::{Backend, TestStore};

pub struct TestApp {
    pub router: axum::Router,
    pub service: Service,
    pub store: Arc<dyn Store>,
    pub admin_key: String,
    pub backing: TestStore,
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the OpenAI error envelope with all four keys and returns `error`.
    pub fn error(&self) -> &Value {
        let e = &self.body["error"];
        for k in ["message", "type", "param", "code"] {
            assert!(
                e.get(k).is_some(),
                "error envelope lacks {k}: {}",
                self.text
            );
        }
        assert!(
            e["message"].is_string() && e["type"].is_string(),
            "{}",
            self.text
        );
        e
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .expect("response has an id")
            .to_owned()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_clock(Clock::system()).await
    }

    pub async fn with_clock(clock: Clock) -> Self {
        Self::build(TestStore::from_env().await, clock).await
    }

    /// An app on a given store (bootstrapped if it is empty).
    pub async fn with_store(backing: TestStore) -> Self {
        Self::build(backing, Clock::system()).await
    }

    async fn build(backing: TestStore, clock: Clock) -> Self {
        let store = backing.store.clone();
        let service = Service::new(store.clone(), clock);
        let key = match service.bootstrap(None).await.unwrap() {
            Bootstrapped::Created { key, .. } => key.expose().to_owned(),
            // An existing installation: tests that use it authenticate with their own keys.
            Bootstrapped::AlreadyInitialised => String::new(),
        };
        wait_until_trusted(&service).await;
        let router = router(AppState::new(service.clone()));
        Self {
            router,
            service,
            store,
            admin_key: key,
            backing,
        }
    }

    /// The same app with a model catalogue (`[models]`), counts loaded and shared once.
    pub async fn with_models(
        mut self,
        models: keyplane::domain::catalogue::ModelCatalogue,
    ) -> Self {
        self.service = self.service.clone().with_models(models);
        self.service.load_admission().await.unwrap();
        self.service.sync_admission().await.unwrap();
        self.router = router(AppState::new(self.service.clone()));
        self
    }

    /// Another organization on the same store; returns its admin key.
    pub async fn other_org(&self, label: &str) -> String {
        let (_, key) = self.service.create_organization(label).await.unwrap();
        key.expose().to_owned()
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b)
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, Some(&self.admin_key), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(&self.admin_key), Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, Some(&self.admin_key), None).await
    }

    pub async fn create_project(&self, name: &str) -> String {
        let r = self
            .post("/v1/organization/projects", json!({ "name": name }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.id()
    }

    /// Creates a service account with a key; returns (account id, key value, key id).
    pub async fn create_account(&self, project: &str, name: &str) -> (String, String, String) {
        let r = self
            .post(
                &format!("/v1/organization/projects/{project}/service_accounts"),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let key = &r.body["api_key"];
        (
            r.id(),
            key["value"].as_str().unwrap().to_owned(),
            key["id"].as_str().unwrap().to_owned(),
        )
    }
}

/// A model catalogue (`[models]`) of `(model, requests a minute, tokens a minute)`.
pub fn catalogue(models: &[(&str, i64, i64)]) -> keyplane::domain::catalogue::ModelCatalogue {
    let entries = models
        .iter()
        .map(|&(model, rpm, tpm)| {
            let limits = keyplane::domain::limits::RateLimitFields {
                max_requests_per_1_minute: Some(rpm),
                max_tokens_per_1_minute: Some(tpm),
                ..Default::default()
            };
            (model.to_owned(), limits)
        })
        .collect();
    keyplane::domain::catalogue::ModelCatalogue::new(entries).unwrap()
}

/// On a multi-node store the verification cache is trusted only once the change feed is
/// listening; tests that exercise the cache start from there.
pub async fn wait_until_trusted(service: &Service) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !service.cache().is_trusted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the change feed never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A minimal blocking HTTP/1.1 client (`Connection: close`) for real-socket tests.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    http_with(addr, method, path, key, &[], body)
}

/// [`http`] with extra request headers.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut all: Vec<(&str, &str)> = Vec::new();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/json"));
    }
    if let Some(auth) = &auth {
        all.push(("Authorization", auth));
    }
    all.extend_from_slice(headers);
    try_request(addr, method, path, &all, body.unwrap_or("")).unwrap()
}

/// `http` with any headers, returning I/O errors instead of panicking: for tests whose server
/// may die mid-request.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_owned(), rest.to_owned()))
}

/// `token` with one signature character changed (not the last, whose low bits may be padding
/// a lenient decoder ignores).
pub fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// For a test that needs process-global state (the global log subscriber): the whole test
/// binary shares one process, so the test reruns itself alone in a child process of this
/// binary and asserts that it passed there. Returns whether the caller is that child, and so
/// should run its body; `module` is the caller's `module_path!()`, `test` its function name.
pub fn in_own_process(module: &str, test: &str) -> bool {
    const CHILD: &str = "KEYPLANE_TEST_OWN_PROCESS";
    // The libtest name: the module path without the crate name.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{test}");
    if std::env::var_os(CHILD).is_some_and(|v| v == name.as_str()) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([&name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{name} in its own process:\n{stdout}\n{stderr}");
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name} failed in its own process ({}):\n{stdout}\n{stderr}",
        out.status
    );
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Keycard dialect helpers.

/// The TestApp's organization in Keycard paths: bootstrap labels it `default`.
pub const KC_ORG: &str = "default";

/// `/organizations/{org}/service-accounts`.
pub fn kc_accounts(org: &str) -> String {
    format!("/organizations/{org}/service-accounts")
}

/// `/organizations/{org}/service-accounts/{account}/credentials`.
pub fn kc_credentials(org: &str, account: &str) -> String {
    format!("/organizations/{org}/service-accounts/{account}/credentials")
}

/// Whether `s` is a Keycard ID: 26 characters of `[0-9a-z]`.
pub fn is_kc_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Whether `s` is RFC 3339 UTC with milliseconds: `2019-12-27T18:11:19.117Z`.
pub fn is_rfc3339_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

impl Resp {
    /// Asserts the Keycard error envelope `{message, code, status}` with `status` matching the
    /// HTTP status and `x-should-retry: false`; returns `code`.
    pub fn kc_error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let b = &self.body;
        assert!(b["message"].is_string(), "no message: {}", self.text);
        assert!(
            !b["message"].as_str().unwrap().is_empty(),
            "empty message: {}",
            self.text
        );
        assert_eq!(b["status"], status, "{}", self.text);
        assert_eq!(
            self.header("x-should-retry"),
            Some("false"),
            "x-should-retry on {}: {:?}",
            status,
            self.headers
        );
        assert!(
            b.as_object().is_some_and(|o| o.len() == 3),
            "envelope has exactly message, code, status: {}",
            self.text
        );
        b["code"].as_str().expect("code is a string")
    }

    /// The RFC 6749 error of the token endpoint (`{"error", "error_description"}`).
    pub fn oauth_error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{:?}",
            self.headers
        );
        self.body["error"].as_str().expect("error is a string")
    }
}

impl TestApp {
    /// Any request with extra headers; `body` is sent as-is with `content_type` when given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send("PATCH", path, Some(&self.admin_key), Some(body.to_string()))
            .await
    }

    /// The ID of the organization of `key` (an admin key).
    pub async fn org_id_of(&self, key: &str) -> String {
        let p = self.service.authenticate_admin(Some(key)).await.unwrap();
        p.organization_id.as_str().to_owned()
    }

    /// Creates a service account through the Keycard dialect in the TestApp's organization;
    /// returns the response body.
    pub async fn kc_create_account(&self, name: &str) -> Value {
        let r = self
            .post(&kc_accounts(KC_ORG), json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// Creates a credential on `account`; returns the body (with `client_secret`).
    pub async fn kc_create_credential(&self, account: &str, name: &str) -> Value {
        let r = self
            .post(&kc_credentials(KC_ORG, account), json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// `POST /service-account-token` with a form body and optional HTTP Basic credentials.
    pub async fn token_request(&self, form: &str, basic: Option<(&str, &str)>) -> Resp {
        use base64::Engine;
        let mut req = Request::builder()
            .method("POST")
            .uri("/service-account-token")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header("authorization", format!("Basic {encoded}"));
        }
        self.raw(req.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// An access token for the credential (HTTP Basic).
    pub async fn kc_token(&self, client_id: &str, client_secret: &str) -> String {
        let r = self
            .token_request(
                "grant_type=client_credentials",
                Some((client_id, client_secret)),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }
}

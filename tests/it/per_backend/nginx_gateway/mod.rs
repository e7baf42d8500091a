//! keyplane behind a real nginx: `auth_request` asks `/v1/auth/check` about every request, a
//! valid key reaches the upstream with its identity in `X-Keyplane-*` headers (and without the
//! key), every refused key stops at nginx with 401 before the upstream sees anything, and a
//! throttled or rate-limited client gets 429 with `Retry-After` (keyplane answers nginx 403
//! with the reason, since `auth_request` turns a 429 into 500; the snippet turns it back), and
//! admitted requests carry OpenAI's `x-ratelimit-*` headers back to the client. One file a
//! subject: `identity.rs`, `throttle.rs`, `admission.rs`.
//!
//! Needs `/usr/sbin/nginx` (or `nginx` on PATH) built with the auth_request module (Debian's
//! `nginx` package). Without it the test is skipped, with the reason printed, except under
//! `CI=true`, where it fails.
//!
//! What keyplane sees from nginx (1.22): the auth subrequest is always `GET /v1/auth/check`
//! over HTTP/1.0 with `Connection: close`, whatever the client's method, with no body but the
//! client's other headers (`Authorization`, `Content-Type`, ...) and `X-Original-URI`. On a
//! refusal nginx answers with its own 401 page, passing on only keyplane's `WWW-Authenticate`.

mod admission;
mod identity;
mod throttle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::loopback::{send, send_from};
use crate::common::{self, TestApp};
use axum::extract::{Request, State};
use axum::Router;
use http_body_util::BodyExt;
use keyplane::domain::time::Clock;
use keyplane::service::throttle::{parse_cidrs, ThrottleSettings};
use serde_json::json;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    /// Lower-cased names, in arrival order.
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(State(log): State<Log>, req: Request) -> &'static str {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    "upstream ok"
}

/// The nginx binary, or why there is none usable.
fn find_nginx() -> Result<PathBuf, String> {
    let candidates = std::iter::once(PathBuf::from("/usr/sbin/nginx")).chain(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.join("nginx")),
    );
    let bin = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or("nginx is not installed (no /usr/sbin/nginx, none on PATH)")?;
    // `nginx -V` prints its configure arguments on stderr.
    let out = Command::new(&bin)
        .arg("-V")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !text.contains("with-http_auth_request_module") {
        return Err(format!(
            "{} lacks the auth_request module:\n{text}",
            bin.display()
        ));
    }
    Ok(bin)
}

/// nginx as a child process, killed (and reaped) when dropped, also when a test panics.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(bin: &Path, keyplane: SocketAddr, upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = common::free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 64;
}}

http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;

    server {{
        listen 127.0.0.1:{port};

        location / {{
            auth_request /_keyplane_auth;
            auth_request_set $kp_org $upstream_http_x_keyplane_organization;
            auth_request_set $kp_project $upstream_http_x_keyplane_project;
            auth_request_set $kp_sa $upstream_http_x_keyplane_service_account;
            auth_request_set $kp_key $upstream_http_x_keyplane_key_id;
            auth_request_set $kp_scopes $upstream_http_x_keyplane_scopes;
            auth_request_set $kp_reason $upstream_http_x_keyplane_reason;
            auth_request_set $kp_retry_after $upstream_http_retry_after;
            auth_request_set $kp_rl_limit_requests $upstream_http_x_ratelimit_limit_requests;
            auth_request_set $kp_rl_remaining_requests $upstream_http_x_ratelimit_remaining_requests;
            auth_request_set $kp_rl_reset_requests $upstream_http_x_ratelimit_reset_requests;
            auth_request_set $kp_rl_limit_tokens $upstream_http_x_ratelimit_limit_tokens;
            auth_request_set $kp_rl_remaining_tokens $upstream_http_x_ratelimit_remaining_tokens;
            auth_request_set $kp_rl_reset_tokens $upstream_http_x_ratelimit_reset_tokens;
            error_page 403 = @keyplane_refused;
            # Admission: OpenAI's rate-limit headers back to the client (empty ones are left out).
            add_header x-ratelimit-limit-requests $kp_rl_limit_requests always;
            add_header x-ratelimit-remaining-requests $kp_rl_remaining_requests always;
            add_header x-ratelimit-reset-requests $kp_rl_reset_requests always;
            add_header x-ratelimit-limit-tokens $kp_rl_limit_tokens always;
            add_header x-ratelimit-remaining-tokens $kp_rl_remaining_tokens always;
            add_header x-ratelimit-reset-tokens $kp_rl_reset_tokens always;
            proxy_set_header X-Keyplane-Organization $kp_org;
            proxy_set_header X-Keyplane-Project $kp_project;
            proxy_set_header X-Keyplane-Service-Account $kp_sa;
            proxy_set_header X-Keyplane-Key-Id $kp_key;
            proxy_set_header X-Keyplane-Scopes $kp_scopes;
            # The key does not travel upstream.
            proxy_set_header Authorization "";
            proxy_pass http://{upstream};
        }}

        location @keyplane_refused {{
            add_header X-Keyplane-Reason $kp_reason always;
            if ($kp_retry_after) {{
                add_header Retry-After $kp_retry_after always;
                add_header X-Keyplane-Reason $kp_reason always;
                return 429;
            }}
            return 403;
        }}

        location = /_keyplane_auth {{
            internal;
            proxy_pass http://{keyplane}/v1/auth/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Keyplane-Gateway nginx;
            proxy_set_header X-Keyplane-Model $http_x_keyplane_model;
        }}

        # Not part of the documented setup: a check that refuses with a plain 403, for the
        # snippet's other branch.
        location /forbidden {{
            auth_request /_forbid;
            error_page 403 = @keyplane_refused;
            proxy_pass http://{upstream};
        }}

        location = /_forbid {{
            internal;
            return 403;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            // Errors before the config is read would otherwise go to the compiled-in log path.
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut nginx = Nginx {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        nginx.wait_ready();
        nginx
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("nginx exited early ({status}):\n{}", self.error_log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not accept connections on {} within 10 s:\n{}",
                self.addr,
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx binary, or `None` when there is none (the test is then skipped, except under
/// `CI=true`, where it fails).
fn nginx_or_skip() -> Option<PathBuf> {
    match find_nginx() {
        Ok(bin) => Some(bin),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("nginx is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// keyplane serving `service` and the upstream (which records everything it is sent) on
/// loopback sockets, and nginx in front of the upstream, asking keyplane.
struct Stack {
    nginx: Nginx,
    log: Log,
    stop_keyplane: tokio::sync::oneshot::Sender<()>,
    keyplane: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop_upstream: tokio::sync::oneshot::Sender<()>,
    upstream: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stack {
    async fn start(bin: &Path, service: keyplane::service::Service) -> Stack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let keyplane_addr = listener.local_addr().unwrap();
        let (stop_keyplane, keyplane_stopped) = tokio::sync::oneshot::channel::<()>();
        let keyplane = tokio::spawn(keyplane::app::serve_on(listener, service, async {
            let _ = keyplane_stopped.await;
        }));

        let log: Log = Arc::default();
        let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream_listener.local_addr().unwrap();
        let (stop_upstream, upstream_stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new().fallback(record).with_state(log.clone());
        let upstream = tokio::spawn(async move {
            axum::serve(upstream_listener, router)
                .with_graceful_shutdown(async {
                    let _ = upstream_stopped.await;
                })
                .await
        });

        let nginx = Nginx::start(bin, keyplane_addr, upstream_addr);
        Stack {
            nginx,
            log,
            stop_keyplane,
            keyplane,
            stop_upstream,
            upstream,
        }
    }

    async fn stop(self) {
        drop(self.nginx);
        self.stop_upstream.send(()).unwrap();
        self.stop_keyplane.send(()).unwrap();
        self.upstream.await.unwrap().unwrap();
        self.keyplane.await.unwrap().unwrap();
    }
}

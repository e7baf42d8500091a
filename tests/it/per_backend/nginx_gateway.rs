//! keyplane behind a real nginx: `auth_request` asks `/v1/auth/check` about every request, a
//! valid key reaches the upstream with its identity in `X-Keyplane-*` headers (and without the
//! key), every refused key stops at nginx with 401 before the upstream sees anything, and a
//! throttled client gets 429 with `Retry-After` (keyplane answers nginx 403 with the reason,
//! since `auth_request` turns a 429 into 500; the snippet turns it back).
//!
//! Needs `/usr/sbin/nginx` (or `nginx` on PATH) built with the auth_request module (Debian's
//! `nginx` package). Without it the test is skipped, with the reason printed, except under
//! `CI=true`, where it fails.
//!
//! What keyplane sees from nginx (1.22): the auth subrequest is always `GET /v1/auth/check`
//! over HTTP/1.0 with `Connection: close`, whatever the client's method, with no body but the
//! client's other headers (`Authorization`, `Content-Type`, ...) and `X-Original-URI`. On a
//! refusal nginx answers with its own 401 page, passing on only keyplane's `WWW-Authenticate`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            error_page 403 = @keyplane_refused;
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

/// The answer nginx gave: status, head (status line and headers), body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request (`Connection: close`) from 127.0.0.1, bounded in time.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    send_from(
        Ipv4Addr::LOCALHOST.into(),
        addr,
        method,
        path,
        key,
        extra,
        body,
    )
    .await
}

/// [`send`] from another loopback address (all of 127.0.0.0/8 is loopback on Linux), so that
/// nginx sees distinct clients.
async fn send_from(
    from: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(key) = key {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (n, v) in extra {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut stream: TcpStream = stream;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    })
    .await
    .unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_keys_through_with_identity_and_stops_the_rest() {
    let Some(bin) = nginx_or_skip() else {
        return;
    };
    let started = Instant::now();

    let app = TestApp::new().await;
    let stack = Stack::start(&bin, app.service.clone()).await;
    let (nginx, log) = (&stack.nginx, stack.log.clone());
    let seen = |log: &Log| log.lock().unwrap().clone();
    let gw = nginx.addr;

    // Keys: one to use, one to revoke, one that expires, one in a project that gets archived.
    let p = app.create_project("gateway").await;
    let (svc, value, key_id) = app.create_account(&p, "svc").await;
    let (_, revoked, revoked_id) = app.create_account(&p, "to-revoke").await;
    let doomed = app.create_project("doomed").await;
    let (_, archived, _) = app.create_account(&doomed, "svc").await;
    let expiring = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({"expires_in_seconds": 2}),
        )
        .await;
    assert_eq!(expiring.status, 200, "{}", expiring.text);
    // The key expires at most 2 s after this instant.
    let expiring_created = Instant::now();
    let expiring = expiring.body["value"].as_str().unwrap().to_owned();
    let org = app
        .send("GET", "/v1/auth/check", Some(&value), None)
        .await
        .header("x-keyplane-organization")
        .expect("keyplane names the organization")
        .to_owned();
    assert!(org.starts_with("org-"), "{org}");

    // Every key works through nginx before it is refused (so each 401 below is the refusal).
    for k in [&value, &revoked, &archived, &expiring] {
        let r = send(gw, "GET", "/ping", Some(k), &[], None).await;
        assert_eq!(r.status, 200, "{}\n{}", r.head, nginx.error_log());
        assert_eq!(r.body, "upstream ok");
    }
    assert_eq!(seen(&log).len(), 4);

    // No scopes yet: the (empty) scopes header is not sent, and a forged one is not passed on.
    let r = send(
        gw,
        "GET",
        "/forged",
        Some(&value),
        &[
            ("X-Keyplane-Scopes", "admin"),
            ("X-Keyplane-Project", "proj-forged"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let s = seen(&log).pop().unwrap();
    assert_eq!(s.uri, "/forged");
    assert_eq!(s.header("x-keyplane-scopes"), None, "{s:?}");
    assert_eq!(s.header("x-keyplane-project"), Some(p.as_str()), "{s:?}");

    // With scopes: the full identity reaches the upstream, the key does not; method, path,
    // query and body pass through untouched.
    let r = app
        .post(
            &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
            json!({"scopes": ["a.read"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        gw,
        "POST",
        "/v1/things/42?x=1&y=two",
        Some(&value),
        &[("X-Keyplane-Key-Id", "key-forged")],
        Some(r#"{"hello":"world"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, nginx.error_log());
    assert_eq!(r.body, "upstream ok");
    let s = seen(&log).pop().unwrap();
    assert_eq!(s.method, "POST");
    assert_eq!(s.uri, "/v1/things/42?x=1&y=two");
    assert_eq!(s.body, r#"{"hello":"world"}"#);
    assert_eq!(s.header("x-keyplane-organization"), Some(org.as_str()));
    assert_eq!(s.header("x-keyplane-project"), Some(p.as_str()));
    assert_eq!(s.header("x-keyplane-service-account"), Some(svc.as_str()));
    assert_eq!(s.header("x-keyplane-key-id"), Some(key_id.as_str()));
    assert_eq!(s.header("x-keyplane-scopes"), Some("a.read"));
    assert_eq!(
        s.header("authorization"),
        None,
        "the key leaked upstream: {s:?}"
    );
    assert!(
        s.headers.iter().all(|(_, v)| !v.contains(&value)),
        "the key leaked upstream: {s:?}"
    );
    for name in [
        "x-keyplane-organization",
        "x-keyplane-project",
        "x-keyplane-service-account",
        "x-keyplane-key-id",
        "x-keyplane-scopes",
    ] {
        let n = s.headers.iter().filter(|(h, _)| h == name).count();
        assert_eq!(n, 1, "{name} sent {n} times: {s:?}");
    }

    // Refusals stop at nginx: 401, keyplane's challenge passed on, nothing reaches upstream.
    let r = app
        .delete(&format!(
            "/v1/organization/projects/{p}/api_keys/{revoked_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &format!("/v1/organization/projects/{doomed}/archive"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = seen(&log).len();
    let bogus = format!("sk-svcacct-{}", "Zq9".repeat(20));
    let refusals: [(&str, Option<&str>); 5] = [
        ("no key", None),
        ("bogus key", Some(&bogus)),
        ("garbage", Some("not a key at all")),
        ("revoked key", Some(&revoked)),
        ("archived project's key", Some(&archived)),
    ];
    for (what, key) in refusals {
        for (method, body) in [("GET", None), ("POST", Some("{}"))] {
            let r = send(gw, method, "/secret?q=1", key, &[], body).await;
            assert_eq!(r.status, 401, "{what} ({method}): {}\n{}", r.head, r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
            assert!(!r.body.contains("upstream ok"), "{what}");
        }
    }
    // The expired key: wait (only) until it has expired.
    let expired_at = expiring_created + Duration::from_millis(2_100);
    tokio::time::sleep_until(expired_at.into()).await;
    let r = send(gw, "GET", "/secret", Some(&expiring), &[], None).await;
    assert_eq!(r.status, 401, "expired key: {}\n{}", r.head, r.body);
    let after = seen(&log);
    assert_eq!(
        after.len(),
        before,
        "refused requests reached the upstream: {:?}",
        &after[before..]
    );

    // The valid key still passes after all that.
    let r = send(gw, "GET", "/still", Some(&value), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(seen(&log).len(), before + 1);

    stack.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A client that keeps guessing gets 429 with `Retry-After` through nginx (not the 500 nginx
/// makes of any status but 2xx, 401 and 403 from the check), for its valid key too, until the
/// cool-down ends; other clients' refusals stay 401 (and a plain 403 stays 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_answers_a_throttled_client_429_with_retry_after() {
    const LIMIT: u32 = 3;
    const COOLDOWN: Duration = Duration::from_secs(3);
    let Some(bin) = nginx_or_skip() else {
        return;
    };
    // A fixed clock, advanced past the cool-down at the end instead of sleeping through it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let clock = Clock::fixed(now.as_millis() as i64);
    let app = TestApp::with_clock(clock.clone()).await;
    let p = app.create_project("throttled").await;
    let (_, valid, _) = app.create_account(&p, "svc").await;
    // nginx (127.0.0.1) is the trusted proxy and forwards its clients' addresses.
    let service = app.service.clone().with_auth_throttle(ThrottleSettings {
        max_failures: LIMIT,
        window: Duration::from_secs(60),
        cooldown: COOLDOWN,
        trusted_proxies: parse_cidrs("127.0.0.1/32").unwrap(),
        ..Default::default()
    });
    let stack = Stack::start(&bin, service).await;
    let gw = stack.nginx.addr;
    let upstream_saw = || stack.log.lock().unwrap().len();
    let x: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let y: IpAddr = Ipv4Addr::new(127, 0, 0, 3).into();
    let bogus = format!("sk-svcacct-{}", "Zq9".repeat(20));

    // X's key works; then X guesses, and each guess is refused by keyplane: 401.
    let r = send_from(x, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, stack.nginx.error_log());
    for i in 0..LIMIT {
        let r = send_from(x, gw, "GET", "/api", Some(&bogus), &[], None).await;
        assert_eq!(r.status, 401, "guess {i}: {}", r.head);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let before = upstream_saw();

    // X is blocked: 429 with Retry-After, whatever key, method or headers it sends (neither
    // the mode nor the address counted against is the client's to choose).
    let forged = [
        ("X-Keyplane-Gateway", "none"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Real-IP", "198.51.100.8"),
    ];
    let no_headers: &[(&str, &str)] = &[];
    let cases = [
        ("GET", bogus.as_str(), no_headers, None),
        ("GET", valid.as_str(), no_headers, None),
        ("POST", valid.as_str(), no_headers, Some(r#"{"a":1}"#)),
        ("GET", valid.as_str(), &forged[..], None),
    ];
    let mut wait = 0;
    for (i, (method, key, extra, body)) in cases.into_iter().enumerate() {
        let r = send_from(x, gw, method, "/api?q=1", Some(key), extra, body).await;
        assert_eq!(
            r.status,
            429,
            "case {i}: {}\n{}\n{}",
            r.head,
            r.body,
            stack.nginx.error_log()
        );
        wait = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("case {i}: no Retry-After: {}", r.head));
        assert!((1..=COOLDOWN.as_secs()).contains(&wait), "{}", r.head);
        assert_eq!(r.header("x-keyplane-reason"), Some("rate_limited"));
        assert_eq!(r.header("www-authenticate"), None, "{}", r.head);
        assert!(!r.body.contains("upstream ok"), "case {i}");
    }
    assert_eq!(
        upstream_saw(),
        before,
        "a blocked client reached the upstream"
    );
    let log = stack.nginx.error_log();
    assert!(!log.contains("auth request unexpected status"), "{log}");

    // Y, behind the same nginx, is not blocked: refusals are 401, its key passes.
    for key in [None, Some(bogus.as_str())] {
        let r = send_from(y, gw, "GET", "/api", key, &[], None).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.head);
        assert_eq!(r.header("retry-after"), None);
    }
    let r = send_from(y, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    // A check's 403 without Retry-After stays a plain 403 (the snippet's other branch).
    let r = send_from(y, gw, "GET", "/forbidden", Some(&valid), &[], None).await;
    assert_eq!(r.status, 403, "{}\n{}", r.head, stack.nginx.error_log());
    assert_eq!(r.header("retry-after"), None);

    // After the cool-down X's key passes again.
    clock.advance((Duration::from_secs(wait) + Duration::from_millis(100)).as_millis() as i64);
    let r = send_from(x, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(upstream_saw(), before + 2);
    stack.stop().await;
}

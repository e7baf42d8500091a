//! keyplane behind a real nginx: `auth_request` asks `/v1/auth/check` about every request, a
//! valid key reaches the upstream with its identity in `X-Keyplane-*` headers (and without the
//! key), and every refused key stops at nginx with 401 before the upstream sees anything.
//!
//! Needs `/usr/sbin/nginx` (or `nginx` on PATH) built with the auth_request module (Debian's
//! `nginx` package). Without it the test is skipped, with the reason printed, except under
//! `CI=true`, where it fails.
//!
//! What keyplane sees from nginx (1.22): the auth subrequest is always `GET /v1/auth/check`
//! over HTTP/1.0 with `Connection: close`, whatever the client's method, with no body but the
//! client's other headers (`Authorization`, `Content-Type`, ...) and `X-Original-URI`. On a
//! refusal nginx answers with its own 401 page, passing on only keyplane's `WWW-Authenticate`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::Router;
use common::TestApp;
use http_body_util::BodyExt;
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
            proxy_set_header X-Keyplane-Organization $kp_org;
            proxy_set_header X-Keyplane-Project $kp_project;
            proxy_set_header X-Keyplane-Service-Account $kp_sa;
            proxy_set_header X-Keyplane-Key-Id $kp_key;
            proxy_set_header X-Keyplane-Scopes $kp_scopes;
            # The key does not travel upstream.
            proxy_set_header Authorization "";
            proxy_pass http://{upstream};
        }}

        location = /_keyplane_auth {{
            internal;
            proxy_pass http://{keyplane}/v1/auth/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
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

/// One HTTP/1.1 request (`Connection: close`) on a blocking thread, bounded in time.
async fn send(
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
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_keys_through_with_identity_and_stops_the_rest() {
    let bin = match find_nginx() {
        Ok(bin) => bin,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("nginx is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let started = Instant::now();

    // keyplane on a real loopback socket.
    let app = TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keyplane_addr = listener.local_addr().unwrap();
    let (stop_keyplane, keyplane_stopped) = tokio::sync::oneshot::channel::<()>();
    let keyplane = tokio::spawn(keyplane::app::serve_on(
        listener,
        app.service.clone(),
        async {
            let _ = keyplane_stopped.await;
        },
    ));

    // The upstream nginx protects: records everything it is sent.
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
    let seen = |log: &Log| log.lock().unwrap().clone();

    let nginx = Nginx::start(&bin, keyplane_addr, upstream_addr);
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

    drop(nginx);
    stop_upstream.send(()).unwrap();
    stop_keyplane.send(()).unwrap();
    upstream.await.unwrap().unwrap();
    keyplane.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

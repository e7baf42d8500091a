//! The `keyplane` binary and a real socket: first start, bootstrap key, CLI, shutdown, logs.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::common::server::{empty_db, keyplane_cmd, Server, BIN};
use crate::common::{self, free_port, http};
use keyplane::domain::keys::{self, KeyKind, PlainKey};

fn printed_admin_key(stderr: &str) -> Option<String> {
    stderr
        .split_whitespace()
        .find(|w| w.starts_with("sk-admin-") && keys::parse(w).is_ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn first_start_prints_one_admin_key_and_later_starts_do_not() {
    let db = empty_db().await;
    let s = Server::start(&db, None);
    let key = printed_admin_key(&s.stderr()).expect("first start prints the admin key");
    assert!(
        s.stderr().contains("Authorization: Bearer"),
        "with a usage hint"
    );
    let (status, _, body) = http(s.addr, "GET", "/v1/organization/projects", Some(&key), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Default project"));
    let (clean, stderr) = s.stop();
    assert!(clean, "SIGTERM is a clean exit");
    // Shutting down is not trouble (PostgreSQL's change feed used to report "connection lost").
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "a clean start and stop warns about nothing:\n{stderr}"
    );

    let s = Server::start(&db, None);
    assert_eq!(
        printed_admin_key(&s.stderr()),
        None,
        "a second start prints nothing"
    );
    assert_eq!(
        http(s.addr, "GET", "/v1/organization/projects", Some(&key), None).0,
        200
    );
    s.stop();
}

#[tokio::test]
async fn a_supplied_bootstrap_key_is_registered_silently_and_no_secret_is_logged() {
    let db = empty_db().await;
    let supplied = PlainKey::generate(KeyKind::Admin).unwrap();
    let s = Server::start(&db, Some(supplied.expose()));
    let (status, _, body) = http(
        s.addr,
        "GET",
        "/v1/organization/projects",
        Some(supplied.expose()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let project = body
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, head, body) = http(
        s.addr,
        "POST",
        &format!("/v1/organization/projects/{project}/service_accounts"),
        Some(supplied.expose()),
        Some(r#"{"name":"over-a-socket"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(head.to_ascii_lowercase().contains("x-request-id: req_"));
    let svc_key = body
        .split("\"value\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // A refused key must not be logged either.
    let bogus = PlainKey::generate(KeyKind::Admin).unwrap();
    assert_eq!(
        http(
            s.addr,
            "GET",
            "/v1/organization/projects",
            Some(bogus.expose()),
            None
        )
        .0,
        401
    );
    let (clean, logs) = s.stop();
    assert!(clean);
    assert!(
        logs.contains("over-a-socket") || logs.contains("service_accounts"),
        "debug logs were captured"
    );
    for secret in [supplied.expose(), svc_key.as_str(), bogus.expose()] {
        assert!(!logs.contains(secret), "a key appeared in the logs");
    }
    assert_eq!(printed_admin_key(&logs), None);
}

#[test]
fn malformed_configuration_fails_fast_without_echoing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "sk-admin-0000000000000000000000000000000000000000000000000";
    let out = Command::new(BIN)
        .arg("serve")
        .env("KEYPLANE_DATA_DIR", dir.path())
        .env("KEYPLANE_BOOTSTRAP_ADMIN_KEY", bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYPLANE_BOOTSTRAP_ADMIN_KEY"), "{err}");
    assert!(!err.contains(bad));
    let out = Command::new(BIN)
        .arg("serve")
        .env("KEYPLANE_DATA_DIR", dir.path())
        .env("KEYPLANE_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYPLANE_LISTEN"));
}

#[tokio::test]
async fn admin_key_create_prints_only_a_working_key() {
    let db = empty_db().await;
    let run = |args: &[&str]| keyplane_cmd(&db).args(args).output().unwrap();
    // Before any serve: the store is initialised around the new key.
    let first = run(&["admin-key", "create"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first = String::from_utf8(first.stdout).unwrap();
    assert_eq!(first.lines().count(), 1);
    let first = first.trim().to_owned();
    assert_eq!(keys::parse(&first), Ok(KeyKind::Admin));
    let second =
        String::from_utf8(run(&["admin-key", "create", "--organization", "default"]).stdout)
            .unwrap();
    let second = second.trim().to_owned();
    assert_ne!(first, second);
    let missing = run(&["admin-key", "create", "--organization", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    let acme = run(&["organization", "create", "acme"]);
    assert!(acme.status.success());
    let acme = String::from_utf8(acme.stdout).unwrap().trim().to_owned();
    assert!(
        !run(&["organization", "create", "acme"]).status.success(),
        "labels are unique"
    );
    assert!(!run(&["organization", "create", "Bad_Label"])
        .status
        .success());

    let s = Server::start(&db, None);
    assert_eq!(
        printed_admin_key(&s.stderr()),
        None,
        "already initialised: nothing printed"
    );
    for k in [&first, &second, &acme] {
        assert_eq!(
            http(s.addr, "GET", "/v1/organization/projects", Some(k), None).0,
            200
        );
    }
    s.stop();
}

#[tokio::test]
async fn in_process_server_on_a_real_socket_drains_on_shutdown() {
    let app = common::TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(keyplane::app::serve_on(
        listener,
        app.service.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let key = app.admin_key.clone();
    let (status, head, body) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST",
            "/v1/organization/projects",
            Some(&key),
            Some(r#"{"name":"sock"}"#),
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn signing_key_rotate_publishes_a_new_key_and_the_issuer_follows_the_public_url() {
    let db = empty_db().await;
    let admin = keyplane_cmd(&db)
        .args(["admin-key", "create"])
        .output()
        .unwrap();
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_owned();
    let s = {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stderr_path = db.dir.path().join("stderr-rotate.log");
        let child = keyplane_cmd(&db)
            .arg("serve")
            .env("KEYPLANE_LISTEN", addr.to_string())
            .env("KEYPLANE_PUBLIC_URL", "https://keys.example.test/")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let s = Server {
            child,
            addr,
            stderr_path,
        };
        s.wait_ready();
        s
    };
    let (status, _, meta) = http(
        s.addr,
        "GET",
        "/.well-known/oauth-authorization-server",
        None,
        None,
    );
    assert_eq!(status, 200);
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["issuer"], "https://keys.example.test");
    assert_eq!(
        meta["token_endpoint"],
        "https://keys.example.test/service-account-token"
    );
    let kids = |body: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(&http(s.addr, "GET", "/.well-known/jwks.json", None, None).2);
    assert_eq!(before.len(), 1, "the first key is made on first use");

    let out = keyplane_cmd(&db)
        .args(["signing-key", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!kid.is_empty() && !before.contains(&kid));
    // The running node reloads its keys within a minute; a fresh node at once. Here, read the
    // store through a second server on the same database.
    s.stop();
    let s = Server::start(&db, None);
    let after = kids(&http(s.addr, "GET", "/.well-known/jwks.json", None, None).2);
    assert!(after.contains(&kid), "the new key is published");
    assert!(
        after.contains(&before[0]),
        "the old key stays until its tokens expire"
    );
    assert_eq!(
        http(
            s.addr,
            "GET",
            "/organizations/default/service-accounts",
            Some(&admin),
            None
        )
        .0,
        200
    );
    s.stop();
}

//! `keyplane --config FILE serve`: the file's settings apply, the environment overrides them.

use std::process::Stdio;

use crate::common::server::{empty_db, keyplane_cmd, Server};
use crate::common::{free_port, http};

#[tokio::test]
async fn serve_takes_listen_and_log_from_the_file_unless_the_environment_says_otherwise() {
    let db = empty_db().await;
    let port = free_port();
    let file = db.dir.path().join("keyplane.toml");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:{port}\"\nlog = \"debug\"\ntoken_ttl_seconds = 600\n"),
    )
    .unwrap();
    let stderr_path = db.dir.path().join("stderr-config.log");
    let child = keyplane_cmd(&db)
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("KEYPLANE_LISTEN")
        .env_remove("KEYPLANE_LOG")
        .env("KEYPLANE_TOKEN_TTL_SECONDS", "120")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        stderr_path,
    };
    server.wait_ready();
    assert_eq!(http(server.addr, "GET", "/healthz", None, None).0, 200);
    let (clean, stderr) = server.stop();
    assert!(clean, "{stderr}");
    assert!(
        stderr.contains("DEBUG"),
        "log = \"debug\" from the file: {stderr}"
    );

    let check = keyplane_cmd(&db)
        .args(["config", "check"])
        .env("KEYPLANE_CONFIG", &file)
        .env("KEYPLANE_TOKEN_TTL_SECONDS", "120")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    let ttl = out
        .lines()
        .find(|l| l.starts_with("token_ttl_seconds"))
        .unwrap();
    assert!(ttl.contains("120") && ttl.ends_with("env"), "{out}");
    let listen = out.lines().find(|l| l.starts_with("listen ")).unwrap();
    assert!(listen.ends_with("file"), "{out}");

    std::fs::write(&file, "listen = 8080\n").unwrap();
    let bad = keyplane_cmd(&db)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("listen in ") && err.contains("keyplane.toml") && err.contains("a string"),
        "{err}"
    );
}

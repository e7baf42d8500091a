//! `keyplane export` / `import`: SQLite → PostgreSQL → SQLite through the real binary, and
//! every key still authenticates at the end.

use std::path::Path;
use std::process::Command;

use crate::common::{TestApp, TestStore};
use keyplane::domain::keys::KeyHash;
use keyplane::domain::time::Clock;
use keyplane::service::Service;
use keyplane::store::{PoolSettings, SqliteStore, Store};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_keyplane");

fn keyplane(env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("KEYPLANE_DATABASE_URL")
        .env_remove("KEYPLANE_DATA_DIR")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn data_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn round_trip_sqlite_postgres_sqlite_keeps_every_key_working() {
    let Some(pg) = TestStore::postgres().await else {
        return;
    };
    pg.store.close().await;
    let pg_env = pg.binary_env();

    // A realistic SQLite installation, built through the API (SQLite whatever the backend
    // selected for the other suites).
    let source = TestApp::with_store(TestStore::sqlite().await).await;
    let p = source.create_project("kept").await;
    let archived = source.create_project("archived").await;
    let (_, live_key, _) = source.create_account(&p, "live").await;
    let (doomed, doomed_key, _) = source.create_account(&p, "doomed").await;
    let (rotated, first_key, _) = source.create_account(&p, "rotated").await;
    let second = source
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{rotated}/api_keys"),
            json!({"name": "second", "scopes": ["a.read"], "expires_in_seconds": 3600}),
        )
        .await;
    let second_key = second.body["value"].as_str().unwrap().to_owned();
    source.create_account(&archived, "frozen").await;
    source
        .post(
            &format!("/v1/organization/projects/{archived}/archive"),
            json!({}),
        )
        .await;
    source
        .delete(&format!(
            "/v1/organization/projects/{p}/service_accounts/{doomed}"
        ))
        .await;
    let other_admin = source.other_org("other").await;
    let before = source
        .get(&format!("/v1/organization/projects/{p}/service_accounts"))
        .await
        .body;
    let admin = source.admin_key.clone();
    source.store.close().await;
    let sqlite_env = vec![(
        "KEYPLANE_DATA_DIR",
        source.backing.dir.path().display().to_string(),
    )];

    let work = tempfile::tempdir().unwrap();
    let (one, two, three) = (
        work.path().join("1.jsonl"),
        work.path().join("2.jsonl"),
        work.path().join("3.jsonl"),
    );
    ok(keyplane(
        &sqlite_env,
        &["export", "--output", one.to_str().unwrap()],
    ));
    assert!(
        !std::fs::read_to_string(&one).unwrap().contains(&live_key),
        "no plaintext in exports"
    );
    ok(keyplane(
        &pg_env,
        &["import", "--input", one.to_str().unwrap()],
    ));
    // Importing twice is refused: the target is no longer empty.
    let again = keyplane(&pg_env, &["import", "--input", one.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    ok(keyplane(
        &pg_env,
        &["export", "--output", two.to_str().unwrap()],
    ));
    let back = tempfile::tempdir().unwrap();
    let back_env = vec![("KEYPLANE_DATA_DIR", back.path().display().to_string())];
    ok(keyplane(
        &back_env,
        &["import", "--input", two.to_str().unwrap()],
    ));
    ok(keyplane(
        &back_env,
        &["export", "--output", three.to_str().unwrap()],
    ));
    assert_eq!(
        data_lines(&one),
        data_lines(&two),
        "SQLite → PostgreSQL changes nothing"
    );
    assert_eq!(
        data_lines(&one),
        data_lines(&three),
        "and back again changes nothing"
    );

    // The final SQLite store: every key still does what it did.
    let store = SqliteStore::open_file(&back.path().join("keyplane.db"), &PoolSettings::default())
        .await
        .unwrap();
    let service = Service::new(std::sync::Arc::new(store), Clock::system());
    for k in [&admin, &other_admin] {
        assert!(
            service.authenticate_admin(Some(k)).await.is_ok(),
            "admin key lost"
        );
    }
    let now = Clock::system().now();
    let back_store =
        SqliteStore::open_file(&back.path().join("keyplane.db"), &PoolSettings::default())
            .await
            .unwrap();
    for (k, usable) in [
        (&live_key, true),
        (&first_key, true),
        (&second_key, true),
        (&doomed_key, false),
    ] {
        let stored = back_store
            .api_key_by_hash(&KeyHash::of(k))
            .await
            .unwrap()
            .expect("key moved");
        assert_eq!(stored.is_usable_at(now), usable);
    }
    let moved = back_store
        .api_key_by_hash(&KeyHash::of(&second_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.scopes, vec!["a.read"]);
    assert!(moved.expires_at.is_some());
    // And the API answers the same on the destination.
    let mut app = TestApp::with_store(TestStore::at_sqlite_dir(back).await).await;
    app.admin_key = admin.clone();
    let after = app
        .get(&format!("/v1/organization/projects/{p}/service_accounts"))
        .await
        .body;
    assert_eq!(after, before);
    let arch = app
        .get(&format!("/v1/organization/projects/{archived}"))
        .await;
    assert_eq!(arch.body["status"], "archived");
}

#[tokio::test]
async fn truncated_or_foreign_streams_import_nothing() {
    let src = TestApp::with_store(TestStore::sqlite().await).await;
    src.create_project("p").await;
    src.store.close().await;
    let env = vec![(
        "KEYPLANE_DATA_DIR",
        src.backing.dir.path().display().to_string(),
    )];
    let work = tempfile::tempdir().unwrap();
    let full = work.path().join("full.jsonl");
    ok(keyplane(
        &env,
        &["export", "--output", full.to_str().unwrap()],
    ));
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cases = [
        ("truncated", lines[..lines.len() - 1].join("\n")),
        (
            "count mismatch",
            format!(
                "{}\n{{\"type\":\"end\",\"records\":999}}",
                lines[..lines.len() - 1].join("\n")
            ),
        ),
        (
            "garbage line",
            format!("{}\nnot json\n{}", lines[0], lines[1..].join("\n")),
        ),
        ("no header", lines[1..].join("\n")),
        (
            "future format",
            text.replacen("\"format\":1", "\"format\":99", 1),
        ),
        ("empty", String::new()),
    ];
    for (what, body) in cases {
        let dest = tempfile::tempdir().unwrap();
        let input = work
            .path()
            .join(format!("{}.jsonl", what.replace(' ', "_")));
        std::fs::write(&input, body).unwrap();
        let denv = vec![("KEYPLANE_DATA_DIR", dest.path().display().to_string())];
        let out = keyplane(&denv, &["import", "--input", input.to_str().unwrap()]);
        assert!(!out.status.success(), "{what} was accepted");
        let store =
            SqliteStore::open_file(&dest.path().join("keyplane.db"), &PoolSettings::default())
                .await
                .unwrap();
        assert!(store.is_empty().await.unwrap(), "{what} left data behind");
    }
}

//! Migrations: the same versions on both backends, a newer schema refused with a clear
//! message, and several nodes migrating one PostgreSQL database at once.

use crate::common::backends::PgDatabase;
use crate::common::TestStore;
use keyplane::store::{PoolSettings, PostgresStore, SqliteStore};

#[test]
fn both_backends_have_the_same_migration_versions() {
    let sqlite = SqliteStore::migration_versions();
    let postgres = PostgresStore::migration_versions();
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "every migration needs a twin with the same version and name"
    );
}

/// Records a migration no build of keyplane has (yet): what a newer keyplane would leave behind.
const FUTURE_SQLITE: &str =
    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
     VALUES (99990101000000, 'from the future', TRUE, X'00', 0)";
const FUTURE_PG: &str =
    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
     VALUES (99990101000000, 'from the future', TRUE, '\\x00'::bytea, 0)";

#[tokio::test]
async fn sqlite_refuses_a_schema_newer_than_it_understands() {
    let db = TestStore::sqlite().await;
    db.store.close().await;
    let path = db.dir.path().join("keyplane.db");
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(FUTURE_SQLITE).execute(&mut c).await.unwrap();
    }
    let err = SqliteStore::open_file(&path, &PoolSettings::default())
        .await
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("newer than this keyplane"), "{msg}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyplane"))
        .arg("serve")
        .env("KEYPLANE_DATA_DIR", db.dir.path())
        .env_remove("KEYPLANE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this keyplane"));
}

#[tokio::test]
async fn postgres_refuses_a_newer_schema_and_migrate_is_idempotent() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    db.store.close().await;
    let url = db.pg.as_ref().unwrap().url.clone();
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyplane"))
            .arg("migrate")
            .env("KEYPLANE_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    assert!(
        migrate().status.success(),
        "migrate on a migrated database is a no-op"
    );
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(FUTURE_PG).execute(&mut c).await.unwrap();
    }
    let out = migrate();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer than this keyplane"), "{err}");
    assert!(
        !err.contains("postgres://"),
        "the URL (and any password) is not echoed"
    );
}

#[tokio::test]
async fn nodes_starting_together_migrate_one_database_safely() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = pg.url.clone();
            tokio::spawn(async move { PostgresStore::open(&url, &PoolSettings::default()).await })
        })
        .collect();
    for h in handles {
        let store = h.await.unwrap().expect("every concurrent start succeeds");
        keyplane::store::Store::close(&store).await;
    }
}

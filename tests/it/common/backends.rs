//! The stores every suite runs against. Each test gets its own empty database: a temporary
//! directory for SQLite, a uniquely named database (created, then force-dropped) for
//! PostgreSQL.
//!
//! `KEYPLANE_TEST_BACKEND=postgres` makes `TestApp` and the binary tests use PostgreSQL;
//! `KEYPLANE_TEST_POSTGRES_URL` points at the server (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When PostgreSQL cannot be reached, tests
//! that need it fail under `CI=true` and are skipped, with the reason printed, elsewhere.

use std::sync::Arc;
use std::time::Duration;

use keyplane::domain::ids::Id;
use keyplane::store::{PoolSettings, PostgresStore, SqliteStore, Store};
use sqlx::{Connection, PgConnection, Row};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_env() -> Self {
        match std::env::var("KEYPLANE_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    /// The SQLite directory (also scratch space for any backend).
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

impl TestStore {
    pub async fn from_env() -> Self {
        match Backend::from_env() {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres()
                .await
                .expect("KEYPLANE_TEST_BACKEND=postgres but PostgreSQL is unreachable"),
        }
    }

    pub async fn sqlite() -> Self {
        Self::at_sqlite_dir(tempfile::tempdir().unwrap()).await
    }

    /// The SQLite store in `dir` (created if missing).
    pub async fn at_sqlite_dir(dir: tempfile::TempDir) -> Self {
        let store =
            SqliteStore::open_file(&dir.path().join("keyplane.db"), &PoolSettings::default())
                .await
                .unwrap();
        Self {
            store: Arc::new(store),
            backend: Backend::Sqlite,
            dir,
            pg: None,
        }
    }

    /// `None` (after printing why) when PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<Self> {
        let pg = PgDatabase::create().await?;
        let store = PostgresStore::open(&pg.url, &PoolSettings::default())
            .await
            .unwrap();
        Some(Self {
            store: Arc::new(store),
            backend: Backend::Postgres,
            dir: tempfile::tempdir().unwrap(),
            pg: Some(pg),
        })
    }

    /// Another, independent store on the same database: a second node.
    pub async fn another_node(&self) -> Arc<dyn Store> {
        match &self.pg {
            Some(pg) => Arc::new(
                PostgresStore::open(&pg.url, &PoolSettings::default())
                    .await
                    .unwrap(),
            ),
            None => Arc::new(
                SqliteStore::open_file(
                    &self.dir.path().join("keyplane.db"),
                    &PoolSettings::default(),
                )
                .await
                .unwrap(),
            ),
        }
    }

    /// Runs `sql` on a connection of its own, as another process would.
    pub async fn execute_raw(&self, sql: &str) {
        match &self.pg {
            Some(pg) => {
                let mut c = PgConnection::connect(&pg.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            None => {
                let path = self.dir.path().join("keyplane.db");
                let url = format!("sqlite://{}", path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// Environment that points a `keyplane` process at this database.
    pub fn binary_env(&self) -> Vec<(&'static str, String)> {
        match &self.pg {
            Some(pg) => vec![("KEYPLANE_DATABASE_URL", pg.url.clone())],
            None => vec![("KEYPLANE_DATA_DIR", self.dir.path().display().to_string())],
        }
    }

    /// Every byte the store holds: the SQLite files, or every row of every PostgreSQL table
    /// as text. Used to prove secrets are not stored.
    pub async fn dump(&self) -> Vec<u8> {
        match &self.pg {
            None => {
                let mut all = vec![];
                for entry in std::fs::read_dir(self.dir.path()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_none_or(|e| e != "log") {
                        all.extend(std::fs::read(path).unwrap());
                    }
                }
                all
            }
            Some(pg) => {
                let mut conn = PgConnection::connect(&pg.url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                let mut all = vec![];
                for t in tables {
                    let rows = sqlx::query(&format!("SELECT t::text AS r FROM \"{t}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    for r in rows {
                        let text: String = r.get("r");
                        all.extend(text.into_bytes());
                        all.push(b'\n');
                    }
                }
                all
            }
        }
    }
}

pub fn postgres_server_url() -> String {
    std::env::var("KEYPLANE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG.to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A database of its own on the test PostgreSQL server, dropped (with force) on drop.
pub struct PgDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Option<Self> {
        let server = postgres_server_url();
        let connect = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&server));
        let mut conn = match connect.await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return unreachable_pg(&server, &e.to_string()),
            Err(_) => return unreachable_pg(&server, "timed out"),
        };
        let name = format!("keyplane_test_{}", Id::generate().unwrap());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&format!("/{name}"));
        Some(Self {
            server,
            name,
            url: url.to_string(),
        })
    }
}

fn unreachable_pg<T>(server: &str, why: &str) -> Option<T> {
    if in_ci() {
        panic!("PostgreSQL is required under CI=true but {server} is unreachable: {why}");
    }
    eprintln!(
        "SKIPPED: PostgreSQL at {server} is unreachable ({why}); set KEYPLANE_TEST_POSTGRES_URL"
    );
    None
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any async context we can rely on (even while panicking), so the
        // cleanup gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer task on a pool of exactly one connection, so keyplane's own writers
//! queue in memory instead of contending for SQLite's file lock, and concurrent writes share
//! one commit (group commit, see `writer`); reads use a separate read-only pool and run
//! concurrently with the writer (WAL).
//!
//! The `Store` methods live in a file per aggregate (organizations, projects,
//! service_accounts, keys, credentials, signing, audit, transfer) as inherent methods, which
//! `store/delegate.rs` forwards the trait to. What both backends share is generated or called
//! from `store/`: row decoding (`rows`), pagination (`pages`), statement arguments, row values
//! and the read shapes (`binds`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::binds::Arg;
use super::dialect::SQLITE as DIALECT;
use super::rows::{corrupt, expect_one};
use super::{schema, Change, PoolSettings, StoreError, StoreEvent, StoreResult};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind};
use crate::domain::model::{
    ApiKey, Credential, Organization, Project, Role, ServiceAccount, SigningKey,
};
use crate::domain::page::{Window, WindowPage};
use audit::insert_audit;
use writer::{WorkFuture, Writer};

mod admission;
mod audit;
mod console_sessions;
mod credentials;
mod federation;
mod keys;
mod organizations;
mod projects;
mod service_accounts;
mod signing;
mod transfer;
mod writer;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const PROJECT_COLS: &str =
    "id, organization_id, name, external_key_id, is_default, created_at, archived_at, allowed_ips";

const ACCOUNT_COLS: &str =
    "id, organization_id, project_id, name, description, role, created_at, updated_at";

const KEY_COLS: &str = "id, organization_id, kind, project_id, service_account_id, name, scopes, \
     key_hash, redacted_value, created_at, expires_at, last_used_at, revoked_at, allowed_ips, \
     max_requests_per_1_minute, max_requests_per_1_day, max_tokens_per_1_minute, disabled_at, \
     disabled_reason";

/// `KEY_COLS` qualified for queries that join `api_keys k`.
const KEY_COLS_K: &str = "k.id, k.organization_id, k.kind, k.project_id, k.service_account_id, \
     k.name, k.scopes, k.key_hash, k.redacted_value, k.created_at, k.expires_at, k.last_used_at, \
     k.revoked_at, k.allowed_ips, k.max_requests_per_1_minute, k.max_requests_per_1_day, \
     k.max_tokens_per_1_minute, k.disabled_at, k.disabled_reason";

/// In the order `binds::rate_limit_values` binds.
const RATE_LIMIT_COLS: &str = "organization_id, project_id, model, max_requests_per_1_minute, \
     max_tokens_per_1_minute, max_images_per_1_minute, max_audio_megabytes_per_1_minute, \
     max_requests_per_1_day, batch_1_day_max_input_tokens, updated_at";

const CREDENTIAL_COLS: &str = "id, organization_id, service_account_id, client_id, secret_hash, \
     name, description, created_at, updated_at, last_used_at, deleted_at, provider_id, subject";

const PROVIDER_COLS: &str = "id, organization_id, name, description, issuer, audience, enabled, \
     attribute_transformations, verification, created_at, updated_at, \
     deleted_at";

const RULE_COLS: &str = "id, organization_id, provider_id, project_id, service_account_id, name, \
     description, enabled, attribute_matchers, permissions, created_at, \
     updated_at, deleted_at";

const SIGNING_KEY_COLS: &str = "kid, algorithm, private_key, public_key, created_at, retired_at";

pub struct SqliteStore {
    writer: Writer,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database named by a `sqlite://path` URL.
    pub async fn open_url(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL {url:?}"))?;
        Self::open(options, settings).await
    }

    /// Opens (creating if needed) the database file at `path`.
    pub async fn open_file(path: &Path, settings: &PoolSettings) -> anyhow::Result<Self> {
        Self::open(SqliteConnectOptions::new().filename(path), settings).await
    }

    pub fn migration_versions() -> Vec<(i64, String)> {
        schema::versions(&MIGRATOR)
    }

    /// Refuses a newer schema, then applies the embedded migrations before any read
    /// connection opens.
    async fn open(options: SqliteConnectOptions, settings: &PoolSettings) -> anyhow::Result<Self> {
        let shown = options.get_filename().display().to_string();
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open SQLite database {shown:?}"))?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&writer)
                .await
                .unwrap_or(None);
        schema::check_not_newer(applied, &MIGRATOR)?;
        MIGRATOR.run(&writer).await.map_err(schema::explain)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.size.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .context("opening SQLite read connections")?;
        let writer = Writer::start(writer, settings.acquire_timeout);
        Ok(Self { writer, reader })
    }
}

super::rows::decode_rows!(SqliteRow, scopes_col);
super::pages::paging_fns!(SqliteStore, reader, SqliteRow, DIALECT);

/// SQLite keeps scopes as a JSON array in a text column.
fn scopes_col(row: &SqliteRow) -> StoreResult<Vec<String>> {
    let raw: String = row.try_get("scopes")?;
    serde_json::from_str(&raw).map_err(|_| corrupt("scopes"))
}

/// How a list (scopes) is stored: a JSON array in a text column.
fn json_array(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

super::binds::query_fns!(SqliteStore, SqliteRow, reader, DIALECT, |v: Vec<String>| {
    json_array(&v)
});

/// The shapes the aggregates' writes take.
impl SqliteStore {
    /// Runs `work` as one job of the writer (group commit, see `writer`). What it needs goes
    /// in `input`, owned: the job runs on the writer task, after the caller's borrows.
    async fn write<I, R, F>(&self, input: I, work: F) -> StoreResult<R>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, I) -> WorkFuture<'c, R> + Send + 'static,
    {
        self.writer.write(move |conn| work(conn, input)).await
    }

    /// A guarded single-row write and its audit events, as one job: when `sql` touches no row
    /// its guard failed, and the answer is `Conflict(why)` with nothing written.
    async fn update_one(
        &self,
        sql: &'static str,
        args: Vec<Arg>,
        why: &'static str,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.write((args, audit.to_vec()), move |conn, (args, audit)| {
            Box::pin(async move {
                let sql = DIALECT.spell(sql);
                let done = bind_args(sqlx::query(&sql), args)
                    .execute(&mut *conn)
                    .await?;
                expect_one(done.rows_affected(), why)?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }
}

impl SqliteStore {
    pub(super) async fn applied_schema_version(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.reader)
        .await?)
    }

    pub(super) fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![
            super::pool_stats("read", &self.reader),
            super::pool_stats("write", self.writer.pool()),
        ]
    }

    pub(super) async fn close(&self) {
        self.reader.close().await;
        self.writer.pool().close().await;
    }

    /// One process owns a SQLite file: its own cache is the only one to invalidate.
    pub(super) async fn publish(&self, _change: &Change) -> StoreResult<()> {
        Ok(())
    }

    /// Nor does it hear of changes from anyone else.
    pub(super) fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
        None
    }
}

super::delegate::impl_store!(SqliteStore);

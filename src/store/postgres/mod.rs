//! The multi-node store: PostgreSQL (or a compatible distributed database).
//!
//! Same contract as the SQLite store; differences are PostgreSQL-native: `timestamptz` columns
//! converted to milliseconds by `kp_ms`/`kp_ts` at the SQL boundary, `bytea` hashes, `text[]`
//! scopes, row locks (`FOR SHARE`) where SQLite's single writer gave serialisation for free,
//! and a statement timeout on every connection so a stuck database yields 503s, not hung
//! requests.
//!
//! The `Store` methods live in a file per aggregate (organizations, projects,
//! service_accounts, keys, credentials, signing, audit, transfer) as inherent methods, which
//! `store/delegate.rs` forwards the trait to. What both backends share is generated or called
//! from `store/`: row decoding (`rows`), pagination (`pages`), statement arguments, row values
//! and the read shapes (`binds`).

use std::str::FromStr;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use super::binds::Arg;
use super::dialect::POSTGRES as DIALECT;
use super::rows::expect_one;
use super::{postgres_notify, schema, Change, PoolSettings, StoreError, StoreEvent, StoreResult};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind};
use crate::domain::model::{
    ApiKey, Credential, Organization, Project, Role, ServiceAccount, SigningKey,
};
use crate::domain::page::{Window, WindowPage};
use audit::insert_audit;

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

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const PROJECT_COLS: &str = "id, organization_id, name, external_key_id, is_default, \
     kp_ms(created_at) AS created_at, kp_ms(archived_at) AS archived_at, allowed_ips";

const ACCOUNT_COLS: &str = "id, organization_id, project_id, name, description, role, \
     kp_ms(created_at) AS created_at, kp_ms(updated_at) AS updated_at";

const KEY_COLS: &str = "id, organization_id, kind, project_id, service_account_id, name, scopes, \
     key_hash, redacted_value, kp_ms(created_at) AS created_at, kp_ms(expires_at) AS expires_at, \
     kp_ms(last_used_at) AS last_used_at, kp_ms(revoked_at) AS revoked_at, allowed_ips, \
     max_requests_per_1_minute, max_requests_per_1_day, max_tokens_per_1_minute, \
     kp_ms(disabled_at) AS disabled_at, disabled_reason";

/// `KEY_COLS` qualified for queries that join `api_keys k`.
const KEY_COLS_K: &str = "k.id, k.organization_id, k.kind, k.project_id, k.service_account_id, \
     k.name, k.scopes, k.key_hash, k.redacted_value, kp_ms(k.created_at) AS created_at, \
     kp_ms(k.expires_at) AS expires_at, kp_ms(k.last_used_at) AS last_used_at, \
     kp_ms(k.revoked_at) AS revoked_at, k.allowed_ips, k.max_requests_per_1_minute, \
     k.max_requests_per_1_day, k.max_tokens_per_1_minute, kp_ms(k.disabled_at) AS disabled_at, \
     k.disabled_reason";

/// In the order `binds::rate_limit_values` binds.
const RATE_LIMIT_COLS: &str = "organization_id, project_id, model, max_requests_per_1_minute, \
     max_tokens_per_1_minute, max_images_per_1_minute, max_audio_megabytes_per_1_minute, \
     max_requests_per_1_day, batch_1_day_max_input_tokens, kp_ms(updated_at) AS updated_at";

const CREDENTIAL_COLS: &str = "id, organization_id, service_account_id, client_id, secret_hash, \
     name, description, kp_ms(created_at) AS created_at, kp_ms(updated_at) AS updated_at, \
     kp_ms(last_used_at) AS last_used_at, kp_ms(deleted_at) AS deleted_at, provider_id, subject";

const PROVIDER_COLS: &str = "id, organization_id, name, description, issuer, audience, enabled, \
     attribute_transformations, verification, kp_ms(created_at) AS created_at, kp_ms(updated_at) AS updated_at, \
     kp_ms(deleted_at) AS deleted_at";

const RULE_COLS: &str = "id, organization_id, provider_id, project_id, service_account_id, name, \
     description, enabled, attribute_matchers, permissions, kp_ms(created_at) AS created_at, \
     kp_ms(updated_at) AS updated_at, kp_ms(deleted_at) AS deleted_at";

const SIGNING_KEY_COLS: &str = "kid, algorithm, private_key, public_key, \
     kp_ms(created_at) AS created_at, kp_ms(retired_at) AS retired_at";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, refuses a schema newer than this build, and applies pending migrations
    /// (sqlx holds an advisory lock meanwhile, so nodes starting together take turns).
    pub async fn open(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let pool = Self::connect(url, settings).await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
                .unwrap_or(None);
        schema::check_not_newer(applied, &MIGRATOR)?;
        MIGRATOR.run(&pool).await.map_err(schema::explain)?;
        Ok(Self { pool })
    }

    async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<PgPool> {
        let options = PgConnectOptions::from_str(url)
            .context("invalid PostgreSQL URL")?
            .application_name("keyplane")
            .options([(
                "statement_timeout",
                settings.statement_timeout.as_millis().to_string(),
            )]);
        PgPoolOptions::new()
            .max_connections(settings.size)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .context("cannot connect to PostgreSQL")
    }

    pub fn migration_versions() -> Vec<(i64, String)> {
        schema::versions(&MIGRATOR)
    }
}

super::rows::decode_rows!(PgRow, scopes_col);

super::pages::paging_fns!(PostgresStore, pool, PgRow, DIALECT);

fn scopes_col(row: &PgRow) -> StoreResult<Vec<String>> {
    Ok(row.try_get("scopes")?)
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

super::binds::query_fns!(PostgresStore, PgRow, pool, DIALECT, std::convert::identity);

/// The shapes the aggregates' writes take.
impl PostgresStore {
    /// A guarded single-row write and its audit events, in one transaction: when `sql`
    /// touches no row its guard failed, and the answer is `Conflict(why)` with nothing
    /// written.
    async fn update_one(
        &self,
        sql: &str,
        args: Vec<Arg>,
        why: &'static str,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let sql = DIALECT.spell(sql);
        let done = bind_args(sqlx::query(&sql), args).execute(&mut *tx).await?;
        expect_one(done.rows_affected(), why)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PostgresStore {
    pub(super) async fn applied_schema_version(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![super::pool_stats("main", &self.pool)]
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn publish(&self, change: &Change) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(postgres_notify::CHANNEL)
            .bind(postgres_notify::encode(change))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
        Some(postgres_notify::spawn_listener(self.pool.clone()))
    }
}

super::delegate::impl_store!(PostgresStore);

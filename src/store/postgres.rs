//! The multi-node store: PostgreSQL (or a compatible distributed database).
//!
//! Same contract as the SQLite store; differences are PostgreSQL-native: `timestamptz` columns
//! converted to milliseconds by `kp_ms`/`kp_ts` at the SQL boundary, `bytea` hashes, `text[]`
//! scopes, row locks (`FOR SHARE`) where SQLite's single writer gave serialisation for free,
//! and a statement timeout on every connection so a stuck database yields 503s, not hung
//! requests.

use std::str::FromStr;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};

use super::audit_sql::{self, Bind, RawAudit};
use super::rows::{attach_owners, corrupt, expect_one, window_direction, with_revoked_keys};
use super::sqlx_error::duplicate_on;
use super::{postgres_notify, Change, StoreEvent};
use super::{
    schema, PoolSettings, Record, RecordSink, RecordSource, Store, StoreError, StoreResult,
};
use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::model::{
    ApiKey, Credential, Organization, OwnerAccess, Project, Role, ServiceAccount, SigningKey,
};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Serialises organization creation across nodes (first start on an empty database).
const ORG_CREATION_LOCK: i64 = 0x6b65_7970_6c61_6e65; // "keyplane"
/// Serialises signing-key inserts across nodes, so racing first starts make exactly one key
/// and concurrent rotations leave exactly one unretired.
const SIGNING_KEY_LOCK: i64 = 0x6b70_7369_676e_6b79; // "kpsignky"

const PROJECT_COLS: &str = "id, organization_id, name, external_key_id, is_default, \
     kp_ms(created_at) AS created_at, kp_ms(archived_at) AS archived_at";
const ACCOUNT_COLS: &str = "id, organization_id, project_id, name, description, role, \
     kp_ms(created_at) AS created_at, kp_ms(updated_at) AS updated_at";
const KEY_COLS: &str = "id, organization_id, kind, project_id, service_account_id, name, scopes, \
     key_hash, redacted_value, kp_ms(created_at) AS created_at, kp_ms(expires_at) AS expires_at, \
     kp_ms(last_used_at) AS last_used_at, kp_ms(revoked_at) AS revoked_at";
/// `KEY_COLS` qualified for queries that join `api_keys k`.
const KEY_COLS_K: &str = "k.id, k.organization_id, k.kind, k.project_id, k.service_account_id, \
     k.name, k.scopes, k.key_hash, k.redacted_value, kp_ms(k.created_at) AS created_at, \
     kp_ms(k.expires_at) AS expires_at, kp_ms(k.last_used_at) AS last_used_at, \
     kp_ms(k.revoked_at) AS revoked_at";
const CREDENTIAL_COLS: &str = "id, organization_id, service_account_id, client_id, secret_hash, \
     name, description, kp_ms(created_at) AS created_at, kp_ms(updated_at) AS updated_at, \
     kp_ms(last_used_at) AS last_used_at, kp_ms(deleted_at) AS deleted_at";
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

fn scopes_col(row: &PgRow) -> StoreResult<Vec<String>> {
    Ok(row.try_get("scopes")?)
}

async fn cursor_seq(
    pool: &PgPool,
    table: &str,
    scope_sql: &str,
    after: &Option<Id>,
    binds: &[&str],
) -> StoreResult<i64> {
    let Some(after) = after else { return Ok(0) };
    let sql = format!("SELECT seq FROM {table} WHERE id = $1 AND {scope_sql}");
    let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(after.as_str());
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownCursor)
}

/// One window of a two-way list over the live rows of `table` in `scope_sql` (a trusted
/// fragment whose parameters are `$2`, `$3`, ... bound from `binds`), in creation order. The
/// cursor may name a deleted row of the scope: a client paging while another deletes the row
/// it stands on carries on.
async fn window_rows<T>(
    pool: &PgPool,
    (table, cols): (&str, &str),
    scope_sql: &str,
    binds: &[&str],
    window: &Window,
    decode: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<WindowPage<T>> {
    let (cursor, forward) = window_direction(window)?;
    let cursor = match cursor {
        None => None,
        Some(_) => Some(cursor_seq(pool, table, scope_sql, cursor, binds).await?),
    };
    let (cmp, from, order) = match forward {
        true => (">", cursor.unwrap_or(0), "ASC"),
        false => ("<", cursor.unwrap_or(i64::MAX), "DESC"),
    };
    let limit_param = binds.len() + 2;
    let sql = format!(
        "SELECT {cols}, seq FROM {table} WHERE {scope_sql} AND deleted_at IS NULL \
         AND seq {cmp} $1 ORDER BY seq {order} LIMIT ${limit_param}"
    );
    let mut q = sqlx::query(&sql).bind(from);
    for b in binds {
        q = q.bind(*b);
    }
    let mut rows = q.bind(i64::from(window.limit) + 1).fetch_all(pool).await?;
    let overfetched = rows.len() > window.limit as usize;
    rows.truncate(window.limit as usize);
    if !forward {
        rows.reverse();
    }
    // Whether anything lies beyond the end the window started from: only a cursor can leave
    // rows behind it. Checked against the nearest returned row (or the cursor itself when the
    // page is empty), never guessed.
    let behind = match cursor {
        None => false,
        Some(cursor) => {
            let (cmp, edge) = match forward {
                true => (
                    "<",
                    rows.first()
                        .map(|r| r.try_get("seq"))
                        .transpose()?
                        .unwrap_or(cursor + 1),
                ),
                false => (
                    ">",
                    rows.last()
                        .map(|r| r.try_get("seq"))
                        .transpose()?
                        .unwrap_or(cursor - 1),
                ),
            };
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE {scope_sql} \
                 AND deleted_at IS NULL AND seq {cmp} $1)"
            );
            let mut q = sqlx::query_scalar::<_, bool>(&sql).bind(edge);
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_one(pool).await?
        }
    };
    let items = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
    let (has_next, has_prev) = match forward {
        true => (overfetched, behind),
        false => (behind, overfetched),
    };
    Ok(WindowPage {
        items,
        has_next,
        has_prev,
    })
}

/// Inserts a credential. Guarded, it first locks the live account (`FOR SHARE`) so a
/// concurrent account delete either waits for this insert, and then deletes the new credential
/// too, or commits first and makes this insert fail. Import passes `guarded: false` to bring
/// credentials of deleted accounts along.
async fn insert_credential(
    conn: &mut PgConnection,
    c: &Credential,
    guarded: bool,
) -> StoreResult<()> {
    if guarded {
        let live: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM service_accounts \
             WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR SHARE",
        )
        .bind(c.service_account_id.as_str())
        .bind(c.organization_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if live.is_none() {
            return Err(StoreError::Conflict("service account is gone"));
        }
    }
    sqlx::query(
        "INSERT INTO credentials (id, organization_id, service_account_id, client_id, secret_hash, \
         name, description, created_at, updated_at, last_used_at, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, kp_ts($8), kp_ts($9), kp_ts($10), kp_ts($11))",
    )
    .bind(c.id.as_str())
    .bind(c.organization_id.as_str())
    .bind(c.service_account_id.as_str())
    .bind(&c.client_id)
    .bind(c.secret_hash.as_bytes())
    .bind(&c.name)
    .bind(&c.description)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.last_used_at)
    .bind(c.deleted_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| duplicate_on(e, "client_id"))?;
    Ok(())
}

async fn insert_project(conn: &mut PgConnection, p: &Project) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, organization_id, name, external_key_id, is_default, created_at, archived_at) \
         VALUES ($1, $2, $3, $4, $5, kp_ts($6), kp_ts($7))",
    )
    .bind(p.id.as_str())
    .bind(p.organization_id.as_str())
    .bind(&p.name)
    .bind(&p.external_key_id)
    .bind(p.is_default)
    .bind(p.created_at)
    .bind(p.archived_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts a key. For a guarded service-account key, first locks the account (and its
/// project) so a concurrent delete or archive cannot commit between the check and the insert.
/// Import passes `guarded: false` to bring revoked keys of deleted accounts along.
async fn insert_key(conn: &mut PgConnection, key: &ApiKey, guarded: bool) -> StoreResult<()> {
    if guarded && key.kind == KeyKind::ServiceAccount {
        let project: Option<Option<String>> = sqlx::query_scalar(
            "SELECT project_id FROM service_accounts \
             WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR SHARE",
        )
        .bind(key.service_account_id.as_ref().map(Id::as_str))
        .bind(key.organization_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        match project {
            None => return Err(StoreError::Conflict("service account is not live")),
            Some(Some(project)) => {
                let project = Id::parse(&project).ok_or_else(|| corrupt("project_id"))?;
                lock_active_project(conn, &key.organization_id, &project).await?;
            }
            Some(None) => {}
        }
    }
    sqlx::query(
        "INSERT INTO api_keys (id, organization_id, kind, project_id, service_account_id, name, scopes, \
         key_hash, redacted_value, created_at, expires_at, last_used_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, kp_ts($10), kp_ts($11), kp_ts($12), kp_ts($13))",
    )
    .bind(key.id.as_str())
    .bind(key.organization_id.as_str())
    .bind(key.kind.as_str())
    .bind(key.project_id.as_ref().map(Id::as_str))
    .bind(key.service_account_id.as_ref().map(Id::as_str))
    .bind(&key.name)
    .bind(&key.scopes)
    .bind(key.hash.as_bytes())
    .bind(&key.redacted_value)
    .bind(key.created_at)
    .bind(key.expires_at)
    .bind(key.last_used_at)
    .bind(key.revoked_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks an active project of the organization for the rest of the transaction.
async fn lock_active_project(conn: &mut PgConnection, org: &Id, project: &Id) -> StoreResult<()> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM projects WHERE id = $1 AND organization_id = $2 AND archived_at IS NULL FOR SHARE",
    )
    .bind(project.as_str())
    .bind(org.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    found
        .map(|_| ())
        .ok_or(StoreError::Conflict("project is not active"))
}

async fn insert_record(conn: &mut PgConnection, record: &Record) -> StoreResult<()> {
    match record {
        Record::Organization(org) => {
            sqlx::query("INSERT INTO organizations (id, label, name, created_at) VALUES ($1, $2, $3, kp_ts($4))")
                .bind(org.id.as_str())
                .bind(&org.label)
                .bind(&org.name)
                .bind(org.created_at)
                .execute(&mut *conn)
                .await?;
        }
        Record::Project(p) => insert_project(conn, p).await?,
        Record::ServiceAccount {
            account: a,
            deleted_at,
        } => {
            sqlx::query(
                "INSERT INTO service_accounts (id, organization_id, project_id, name, description, role, \
                 created_at, updated_at, deleted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, kp_ts($7), kp_ts($8), kp_ts($9))",
            )
            .bind(a.id.as_str())
            .bind(a.organization_id.as_str())
            .bind(a.project_id.as_ref().map(Id::as_str))
            .bind(&a.name)
            .bind(&a.description)
            .bind(a.role.as_str())
            .bind(a.created_at)
            .bind(a.updated_at)
            .bind(deleted_at)
            .execute(&mut *conn)
            .await?;
        }
        Record::ApiKey(k) => insert_key(conn, k, false).await?,
        Record::Credential(c) => insert_credential(conn, c, false).await?,
        Record::AuditEvent(e) => insert_audit(conn, std::slice::from_ref(e)).await?,
    }
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn applied_schema_version(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![super::pool_stats("main", &self.pool)]
    }

    async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
        let row = sqlx::query(
            "SELECT id, label, name, kp_ms(created_at) AS created_at FROM organizations WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(organization_row).transpose()
    }

    async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1 AND organization_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    async fn list_project_api_keys(
        &self,
        org: &Id,
        project: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
        let after = cursor_seq(
            &self.pool,
            "api_keys",
            "organization_id = $2 AND project_id = $3",
            &page.after,
            &[org.as_str(), project.as_str()],
        )
        .await?;
        let role = match access {
            OwnerAccess::Active => " AND s.role <> 'none'",
            OwnerAccess::Inactive => " AND s.role = 'none'",
            OwnerAccess::Any => "",
        };
        let sql = format!(
            "SELECT {KEY_COLS_K} FROM api_keys k JOIN service_accounts s ON s.id = k.service_account_id \
             WHERE k.project_id = $1 AND k.organization_id = $2 AND k.revoked_at IS NULL \
             AND s.deleted_at IS NULL{role} AND k.seq > $3 ORDER BY k.seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(org.as_str())
            .bind(after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let keys = rows.iter().map(key_row).collect::<StoreResult<Vec<_>>>()?;
        let page = Page::from_overfetch(keys, page.limit);
        let owner_ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|k| k.service_account_id.as_ref().map(Id::to_string))
            .collect();
        let sql = format!("SELECT {ACCOUNT_COLS} FROM service_accounts WHERE id = ANY($1)");
        let owners = sqlx::query(&sql)
            .bind(&owner_ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_row)
            .collect::<StoreResult<Vec<_>>>()?;
        attach_owners(page, owners)
    }

    async fn list_admin_keys(&self, org: &Id, page: &PageRequest) -> StoreResult<Page<ApiKey>> {
        let cursor = match &page.after {
            None => None,
            Some(_) => Some(
                cursor_seq(
                    &self.pool,
                    "api_keys",
                    "organization_id = $2 AND kind = 'admin'",
                    &page.after,
                    &[org.as_str()],
                )
                .await?,
            ),
        };
        let (cmp, from, order) = page.keyset(cursor);
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE organization_id = $1 AND kind = 'admin' \
             AND revoked_at IS NULL AND seq {cmp} $2 ORDER BY seq {order} LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(from)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(key_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn update_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET scopes = $1, expires_at = kp_ts($2) \
             WHERE id = $3 AND organization_id = $4 AND revoked_at IS NULL",
        )
        .bind(&key.scopes)
        .bind(key.expires_at)
        .bind(key.id.as_str())
        .bind(key.organization_id.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "key is deleted")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_api_key(
        &self,
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND kind = 'service_account' AND revoked_at IS NULL",
        )
        .bind(effective)
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "key is deleted")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // Deletes of one organization's admin keys take turns, so two concurrent deletes of
        // its last two write-capable keys cannot both see "another key remains". Read-only
        // keys do not count: with only those left, the organization could change nothing.
        sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE")
            .bind(org.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND kind = 'admin' AND revoked_at IS NULL AND EXISTS (\
               SELECT 1 FROM api_keys o WHERE o.organization_id = $3 AND o.kind = 'admin' \
               AND o.id <> $2 AND (o.revoked_at IS NULL OR o.revoked_at > kp_ts($1)) \
               AND (o.expires_at IS NULL OR o.expires_at > kp_ts($1)) \
               AND (cardinality(o.scopes) = 0 OR $4 = ANY(o.scopes)))",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(SCOPE_WRITE)
        .execute(&mut *tx)
        .await?;
        expect_one(
            done.rows_affected(),
            "no other usable write-capable admin key",
        )?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let ids: Vec<&str> = usage.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = usage.iter().map(|(_, at)| *at).collect();
        // GREATEST ignores NULL and never moves backwards: batches from any node, in any
        // order, leave the latest use.
        sqlx::query(
            "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, kp_ts(u.at)) \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at) WHERE k.id = u.id",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn publish(&self, change: &Change) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(postgres_notify::CHANNEL)
            .bind(postgres_notify::encode(change))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
        Some(postgres_notify::spawn_listener(self.pool.clone()))
    }

    async fn list_audit_events(
        &self,
        org: &Id,
        query: &AuditQuery,
    ) -> StoreResult<Page<AuditEntry>> {
        let cursor = match query.before.as_ref().or(query.after.as_ref()) {
            None => None,
            Some(id) => Some(
                sqlx::query_scalar::<_, i64>(
                    "SELECT seq FROM audit_events WHERE id = $1 \
                     AND (organization_id = $2 OR organization_id IS NULL)",
                )
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::UnknownCursor)?,
            ),
        };
        let (clause, binds) = audit_sql::list_clause(&AUDIT_DIALECT, org, query, cursor);
        let sql = format!("{AUDIT_SELECT}{clause}");
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(audit_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut page = Page::from_overfetch(items, query.limit);
        // A `before` page was read oldest first; the list is newest first.
        if query.before.is_some() {
            page.items.reverse();
        }
        Ok(page)
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>> {
        // SKIP LOCKED: nodes claiming at the same moment take disjoint batches instead of
        // queueing behind each other.
        let sql = format!(
            "WITH due AS (SELECT seq FROM audit_events WHERE webhook_pending \
               AND webhook_next_at <= kp_ts($1) ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE audit_events SET webhook_next_at = kp_ts($3) \
               FROM due WHERE audit_events.seq = due.seq RETURNING audit_events.seq) \
             {AUDIT_SELECT} JOIN claimed c ON c.seq = e.seq ORDER BY e.seq"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let attempts: i32 = row.try_get("webhook_attempts")?;
            claimed.push((audit_row(row)?, u32::try_from(attempts).unwrap_or(0)));
        }
        Ok(claimed)
    }

    async fn finish_webhook_delivery(&self, id: &Id, outcome: &DeliveryOutcome) -> StoreResult<()> {
        let q = match outcome {
            DeliveryOutcome::Delivered { at } => sqlx::query(
                "UPDATE audit_events SET webhook_pending = false, webhook_next_at = NULL, \
                 webhook_delivered_at = kp_ts($1), webhook_error = NULL WHERE id = $2",
            )
            .bind(*at),
            DeliveryOutcome::Failed {
                next_attempt_at, ..
            } => sqlx::query(
                "UPDATE audit_events SET webhook_attempts = webhook_attempts + 1, \
                 webhook_next_at = kp_ts($1), webhook_error = $3 WHERE id = $2",
            )
            .bind(*next_attempt_at),
        };
        let q = q.bind(id.as_str());
        let q = match outcome {
            DeliveryOutcome::Failed { error, .. } => q.bind(error.as_str()),
            DeliveryOutcome::Delivered { .. } => q,
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE webhook_pending")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
            .fetch_one(&self.pool)
            .await?;
        Ok(!any)
    }

    async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64> {
        use futures_util::TryStreamExt;
        let mut tx = self.pool.begin().await?;
        // One snapshot for every table, without blocking writers. Exports of big
        // installations may outlive the request statement timeout; lift it here only.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let mut n = 0u64;
        let mut emit = |r: Record| -> StoreResult<()> {
            n += 1;
            sink(r).map_err(StoreError::Other)
        };
        let tables: [(&str, String); 5] = [
            (
                "organizations",
                "id, label, name, kp_ms(created_at) AS created_at".to_owned(),
            ),
            ("projects", PROJECT_COLS.to_owned()),
            (
                "service_accounts",
                format!("{ACCOUNT_COLS}, kp_ms(deleted_at) AS deleted_at"),
            ),
            ("api_keys", KEY_COLS.to_owned()),
            ("credentials", CREDENTIAL_COLS.to_owned()),
        ];
        for (table, cols) in &tables {
            let sql = format!("SELECT {cols} FROM {table} ORDER BY seq");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                emit(match *table {
                    "organizations" => Record::Organization(organization_row(&row)?),
                    "projects" => Record::Project(project_row(&row)?),
                    "service_accounts" => Record::ServiceAccount {
                        account: account_row(&row)?,
                        deleted_at: row.try_get("deleted_at")?,
                    },
                    "api_keys" => Record::ApiKey(key_row(&row)?),
                    _ => Record::Credential(credential_row(&row)?),
                })?;
            }
        }
        {
            let sql = format!("{AUDIT_SELECT} ORDER BY e.seq");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                emit(Record::AuditEvent(audit_row(&row)?.event))?;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn import(&self, source: &mut RecordSource<'_>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let mut n = 0u64;
        for record in source {
            insert_record(&mut tx, &record.map_err(StoreError::Other)?).await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ORG_CREATION_LOCK)
            .execute(&mut *tx)
            .await?;
        if only_if_empty {
            let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
                .fetch_one(&mut *tx)
                .await?;
            if any {
                return Ok(false);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO organizations (id, label, name, created_at) VALUES ($1, $2, $3, kp_ts($4)) \
             ON CONFLICT (label) DO NOTHING",
        )
        .bind(org.id.as_str())
        .bind(&org.label)
        .bind(&org.name)
        .bind(org.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate("organization label"));
        }
        insert_project(&mut tx, default_project).await?;
        insert_key(&mut tx, admin_key, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn organization_by_label(&self, label: &str) -> StoreResult<Option<Organization>> {
        // PostgreSQL text cannot hold NUL (binding it is an error); no label contains one.
        if label.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, label, name, kp_ms(created_at) AS created_at FROM organizations WHERE label = $1",
        )
        .bind(label)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(organization_row).transpose()
    }

    async fn insert_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_project(&mut tx, project).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        let sql =
            format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1 AND organization_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_row).transpose()
    }

    async fn list_projects(
        &self,
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>> {
        let after = cursor_seq(
            &self.pool,
            "projects",
            "organization_id = $2",
            &page.after,
            &[org.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = $1 AND seq > $2 \
             AND ($3 OR archived_at IS NULL) ORDER BY seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(after)
            .bind(include_archived)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(project_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn update_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE projects SET name = $1, external_key_id = $2 \
             WHERE id = $3 AND organization_id = $4 AND archived_at IS NULL",
        )
        .bind(&project.name)
        .bind(&project.external_key_id)
        .bind(project.id.as_str())
        .bind(project.organization_id.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "project is not active")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE projects SET archived_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND archived_at IS NULL AND NOT is_default",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "project is not archivable")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(project) = &account.project_id {
            lock_active_project(&mut tx, &account.organization_id, project).await?;
        }
        sqlx::query(
            "INSERT INTO service_accounts (id, organization_id, project_id, name, description, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, kp_ts($7), kp_ts($8))",
        )
        .bind(account.id.as_str())
        .bind(account.organization_id.as_str())
        .bind(account.project_id.as_ref().map(Id::as_str))
        .bind(&account.name)
        .bind(&account.description)
        .bind(account.role.as_str())
        .bind(account.created_at)
        .bind(account.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = first_key {
            insert_key(&mut tx, key, true).await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn service_account(&self, org: &Id, id: &Id) -> StoreResult<Option<ServiceAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts \
             WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_row).transpose()
    }

    async fn list_project_service_accounts(
        &self,
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>> {
        let after = cursor_seq(
            &self.pool,
            "service_accounts",
            "organization_id = $2 AND project_id = $3",
            &page.after,
            &[org.as_str(), project.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts WHERE project_id = $1 \
             AND organization_id = $2 AND deleted_at IS NULL AND seq > $3 ORDER BY seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(org.as_str())
            .bind(after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(account_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn update_service_account(
        &self,
        account: &ServiceAccount,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE service_accounts SET name = $1, description = $2, role = $3, updated_at = kp_ts($4) \
             WHERE id = $5 AND organization_id = $6 AND deleted_at IS NULL",
        )
        .bind(&account.name)
        .bind(&account.description)
        .bind(account.role.as_str())
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .bind(account.organization_id.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "service account is not live")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE service_accounts SET deleted_at = kp_ts($1), updated_at = kp_ts($1) \
             WHERE id = $2 AND organization_id = $3 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "service account is not live")?;
        // Keys still in a grace period stop now too: the account they act for is gone.
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = kp_ts($1) WHERE service_account_id = $2 \
             AND (revoked_at IS NULL OR revoked_at > kp_ts($1)) RETURNING id",
        )
        .bind(at)
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        // The account row is locked by the update above, so a credential insert racing this
        // delete (it takes `FOR SHARE` on the account) has either committed, and is seen
        // here, or will find the account deleted.
        sqlx::query(
            "UPDATE credentials SET deleted_at = kp_ts($1) WHERE service_account_id = $2 \
             AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let audit = with_revoked_keys(audit, &revoked)?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_key(&mut tx, key, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = $1");
        let row = sqlx::query(&sql)
            .bind(hash.as_bytes())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    async fn list_org_service_accounts(
        &self,
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>> {
        window_rows(
            &self.pool,
            ("service_accounts", ACCOUNT_COLS),
            "organization_id = $2",
            &[org.as_str()],
            window,
            account_row,
        )
        .await
    }

    async fn insert_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_credential(&mut tx, credential, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credential(&self, org: &Id, account: &Id, id: &Id) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = $1 AND organization_id = $2 \
             AND service_account_id = $3 AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(credential_row).transpose()
    }

    async fn credential_by_client_id(&self, client_id: &str) -> StoreResult<Option<Credential>> {
        if client_id.contains('\0') {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE client_id = $1 AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(credential_row).transpose()
    }

    async fn list_credentials(
        &self,
        org: &Id,
        account: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<Credential>> {
        window_rows(
            &self.pool,
            ("credentials", CREDENTIAL_COLS),
            "organization_id = $2 AND service_account_id = $3",
            &[org.as_str(), account.as_str()],
            window,
            credential_row,
        )
        .await
    }

    async fn update_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE credentials SET name = $1, description = $2, updated_at = kp_ts($3) \
             WHERE id = $4 AND organization_id = $5 AND service_account_id = $6 \
             AND deleted_at IS NULL",
        )
        .bind(&credential.name)
        .bind(&credential.description)
        .bind(credential.updated_at)
        .bind(credential.id.as_str())
        .bind(credential.organization_id.as_str())
        .bind(credential.service_account_id.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "credential is not live")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE credentials SET deleted_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND service_account_id = $4 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "credential is not live")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let ids: Vec<&str> = usage.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = usage.iter().map(|(_, at)| *at).collect();
        // GREATEST ignores NULL and never moves backwards: batches from any node, in any
        // order, leave the latest use.
        sqlx::query(
            "UPDATE credentials c SET last_used_at = GREATEST(c.last_used_at, kp_ts(u.at)) \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at) WHERE c.id = u.id",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {SIGNING_KEY_COLS} FROM signing_keys ORDER BY signing_keys.created_at, kid"
        );
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(signing_key_row)
            .collect()
    }

    async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_others_at: Option<Millis>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Taken before any read: under READ COMMITTED, every statement after it sees what the
        // previous holder committed, so the "no unretired key" check and the retirement below
        // cover keys inserted by other nodes a moment ago.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNING_KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        if let Some(at) = retire_others_at {
            sqlx::query("UPDATE signing_keys SET retired_at = kp_ts($1) WHERE retired_at IS NULL")
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        let guard = match retire_others_at {
            Some(_) => "",
            None => " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        };
        let sql = format!(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at) \
             SELECT $1, $2, $3, $4, kp_ts($5), kp_ts($6){guard}"
        );
        let done = sqlx::query(&sql)
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at)
            .bind(key.retired_at)
            .execute(&mut *tx)
            .await?;
        let inserted = done.rows_affected() == 1;
        if inserted {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // ON CONFLICT waits for a racing insert of the same name to commit (or roll back), so
        // the read below always finds the one value every node agrees on.
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, now()) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("server secret {name:?} vanished")))
    }
}

const AUDIT_SELECT: &str = "SELECT e.id, e.organization_id, e.event_type, \
     kp_ms(e.effective_at) AS effective_at, e.project_id, p.name AS project_name, e.resource_id, \
     e.actor_type, e.actor_id, e.request_id, e.client_request_id, e.ip_address, \
     e.details::text AS details, e.webhook_pending, e.webhook_attempts \
     FROM audit_events e LEFT JOIN projects p ON p.id = e.project_id";

const AUDIT_DIALECT: audit_sql::Dialect = audit_sql::Dialect {
    placeholder: |n| format!("${n}"),
    ts: |p| format!("kp_ts({p})"),
};

fn bind_all(
    mut q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(n) => q.bind(n),
        };
    }
    q
}

fn audit_row(row: &PgRow) -> StoreResult<AuditEntry> {
    RawAudit {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        event_type: row.try_get("event_type")?,
        effective_at: row.try_get("effective_at")?,
        project_id: row.try_get("project_id")?,
        project_name: row.try_get("project_name")?,
        resource_id: row.try_get("resource_id")?,
        actor_type: row.try_get("actor_type")?,
        actor_id: row.try_get("actor_id")?,
        request_id: row.try_get("request_id")?,
        client_request_id: row.try_get("client_request_id")?,
        ip_address: row.try_get("ip_address")?,
        details: row.try_get("details")?,
        webhook_pending: row.try_get("webhook_pending")?,
    }
    .into_entry()
}

/// Writes audit events inside the caller's transaction, so they commit or vanish with the
/// change they describe.
async fn insert_audit(conn: &mut PgConnection, events: &[AuditEvent]) -> StoreResult<()> {
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events (id, organization_id, event_type, effective_at, \
             project_id, resource_id, actor_type, actor_id, request_id, client_request_id, \
             ip_address, details, webhook_pending, webhook_next_at) \
             VALUES ($1, $2, $3, kp_ts($4), $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, kp_ts($14))",
        )
        .bind(e.id.as_str())
        .bind(e.organization_id.as_ref().map(Id::as_str))
        .bind(e.event_type.as_str())
        .bind(e.effective_at)
        .bind(e.project_id.as_ref().map(Id::as_str))
        .bind(&e.resource_id)
        .bind(e.actor.type_str())
        .bind(e.actor.rendered_id())
        .bind(&e.origin.request_id)
        .bind(&e.origin.client_request_id)
        .bind(e.origin.ip_address.map(|ip| ip.to_string()))
        .bind(e.details.to_string())
        .bind(e.notify_webhook)
        .bind(e.notify_webhook.then_some(e.effective_at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

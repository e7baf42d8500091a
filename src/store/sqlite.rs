//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer task on a pool of exactly one connection, so keyplane's own writers
//! queue in memory instead of contending for SQLite's file lock, and concurrent writes share
//! one commit (group commit, see `writer`); reads use a separate read-only pool and run
//! concurrently with the writer (WAL).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use super::audit_sql::{self, Bind, RawAudit};
use super::rows::{attach_owners, corrupt, expect_one, window_direction, with_revoked_keys};
use super::sqlx_error::duplicate_on;
use super::{
    schema, Change, PoolSettings, Record, RecordSink, RecordSource, Store, StoreError, StoreResult,
};
use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::model::{
    ApiKey, Credential, Organization, OwnerAccess, Project, Role, ServiceAccount, SigningKey,
};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;

mod writer;

use writer::Writer;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const PROJECT_COLS: &str =
    "id, organization_id, name, external_key_id, is_default, created_at, archived_at";
const ACCOUNT_COLS: &str =
    "id, organization_id, project_id, name, description, role, created_at, updated_at";
const KEY_COLS: &str = "id, organization_id, kind, project_id, service_account_id, name, scopes, \
     key_hash, redacted_value, created_at, expires_at, last_used_at, revoked_at";
/// `KEY_COLS` qualified for queries that join `api_keys k`.
const KEY_COLS_K: &str = "k.id, k.organization_id, k.kind, k.project_id, k.service_account_id, \
     k.name, k.scopes, k.key_hash, k.redacted_value, k.created_at, k.expires_at, k.last_used_at, \
     k.revoked_at";
const CREDENTIAL_COLS: &str = "id, organization_id, service_account_id, client_id, secret_hash, \
     name, description, created_at, updated_at, last_used_at, deleted_at";
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

/// SQLite keeps scopes as a JSON array in a text column.
fn scopes_col(row: &SqliteRow) -> StoreResult<Vec<String>> {
    let raw: String = row.try_get("scopes")?;
    serde_json::from_str(&raw).map_err(|_| corrupt("scopes"))
}

fn scopes_json(key: &ApiKey) -> String {
    serde_json::to_string(&key.scopes).unwrap_or_else(|_| "[]".to_owned())
}

/// Resolves an `after` cursor to its creation sequence number within the listed scope.
/// `scope_sql` is a trusted fragment binding the same parameters as `binds`.
async fn cursor_seq(
    pool: &SqlitePool,
    table: &str,
    scope_sql: &str,
    after: &Option<Id>,
    binds: &[&str],
) -> StoreResult<i64> {
    let Some(after) = after else { return Ok(0) };
    let sql = format!("SELECT seq FROM {table} WHERE id = ? AND {scope_sql}");
    let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(after.as_str());
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownCursor)
}

/// One window of a two-way list over the live rows of `table` in `scope_sql` (a trusted
/// fragment binding `binds`), in creation order. The cursor may name a deleted row of the
/// scope: a client paging while another deletes the row it stands on carries on.
async fn window_rows<T>(
    pool: &SqlitePool,
    (table, cols): (&str, &str),
    scope_sql: &str,
    binds: &[&str],
    window: &Window,
    decode: fn(&SqliteRow) -> StoreResult<T>,
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
    let sql = format!(
        "SELECT {cols}, seq FROM {table} WHERE {scope_sql} AND deleted_at IS NULL \
         AND seq {cmp} ? ORDER BY seq {order} LIMIT ?"
    );
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    let mut rows = q
        .bind(from)
        .bind(i64::from(window.limit) + 1)
        .fetch_all(pool)
        .await?;
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
                 AND deleted_at IS NULL AND seq {cmp} ?)"
            );
            let mut q = sqlx::query_scalar::<_, bool>(&sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.bind(edge).fetch_one(pool).await?
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

/// `guarded`: insert only while the service account is live and in the credential's
/// organization (import skips the guard to bring credentials of deleted accounts along).
async fn insert_credential(
    conn: &mut sqlx::SqliteConnection,
    c: &Credential,
    guarded: bool,
) -> StoreResult<u64> {
    let guard = match guarded {
        false => "",
        true => {
            " WHERE EXISTS (SELECT 1 FROM service_accounts \
               WHERE id = ? AND organization_id = ? AND deleted_at IS NULL)"
        }
    };
    let sql =
        format!("INSERT INTO credentials ({CREDENTIAL_COLS}) SELECT ?,?,?,?,?,?,?,?,?,?,?{guard}");
    let mut q = sqlx::query(&sql)
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
        .bind(c.deleted_at);
    if guarded {
        q = q
            .bind(c.service_account_id.as_str())
            .bind(c.organization_id.as_str());
    }
    let done = q
        .execute(&mut *conn)
        .await
        .map_err(|e| duplicate_on(e, "client_id"))?;
    Ok(done.rows_affected())
}

/// `guarded`: for a service-account key, insert only while the account is live (import skips
/// the guard to bring revoked keys of deleted accounts along).
async fn insert_key(
    conn: &mut sqlx::SqliteConnection,
    key: &ApiKey,
    guarded: bool,
) -> StoreResult<u64> {
    let guarded = guarded && key.kind == KeyKind::ServiceAccount;
    let guard = match guarded {
        false => "",
        // The account must be live and, if it has a project, that project active.
        true => {
            " WHERE EXISTS (SELECT 1 FROM service_accounts s \
               LEFT JOIN projects p ON p.id = s.project_id \
               WHERE s.id = ? AND s.organization_id = ? AND s.deleted_at IS NULL \
               AND (s.project_id IS NULL OR p.archived_at IS NULL))"
        }
    };
    let sql = format!("INSERT INTO api_keys ({KEY_COLS}) SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?{guard}");
    let mut q = sqlx::query(&sql)
        .bind(key.id.as_str())
        .bind(key.organization_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.project_id.as_ref().map(Id::as_str))
        .bind(key.service_account_id.as_ref().map(Id::as_str))
        .bind(&key.name)
        .bind(scopes_json(key))
        .bind(key.hash.as_bytes())
        .bind(&key.redacted_value)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.last_used_at)
        .bind(key.revoked_at);
    if guarded {
        q = q
            .bind(key.service_account_id.as_ref().map(Id::as_str))
            .bind(key.organization_id.as_str());
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

async fn insert_record(conn: &mut sqlx::SqliteConnection, record: &Record) -> StoreResult<()> {
    match record {
        Record::Organization(org) => {
            sqlx::query("INSERT INTO organizations (id, label, name, created_at) VALUES (?,?,?,?)")
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
            let sql = format!("INSERT INTO service_accounts ({ACCOUNT_COLS}, deleted_at) VALUES (?,?,?,?,?,?,?,?,?)");
            sqlx::query(&sql)
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
        Record::ApiKey(k) => {
            insert_key(conn, k, false).await?;
        }
        Record::Credential(c) => {
            insert_credential(conn, c, false).await?;
        }
        Record::AuditEvent(e) => insert_audit(conn, std::slice::from_ref(e)).await?,
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn applied_schema_version(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.reader)
        .await?)
    }

    fn pool_stats(&self) -> Vec<super::PoolStats> {
        vec![
            super::pool_stats("read", &self.reader),
            super::pool_stats("write", self.writer.pool()),
        ]
    }

    async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
        let row = sqlx::query("SELECT id, label, name, created_at FROM organizations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(organization_row).transpose()
    }

    async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ? AND organization_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
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
            &self.reader,
            "api_keys",
            "organization_id = ? AND project_id = ?",
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
             WHERE k.project_id = ? AND k.organization_id = ? AND k.revoked_at IS NULL \
             AND s.deleted_at IS NULL{role} AND k.seq > ? ORDER BY k.seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(org.as_str())
            .bind(after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let keys = rows.iter().map(key_row).collect::<StoreResult<Vec<_>>>()?;
        let page = Page::from_overfetch(keys, page.limit);
        // The owners, in one query.
        let owner_ids: Vec<&str> = page
            .items
            .iter()
            .filter_map(|k| k.service_account_id.as_ref().map(Id::as_str))
            .collect();
        let mut owners = Vec::with_capacity(owner_ids.len());
        if !owner_ids.is_empty() {
            let marks = vec!["?"; owner_ids.len()].join(",");
            let sql = format!("SELECT {ACCOUNT_COLS} FROM service_accounts WHERE id IN ({marks})");
            let mut q = sqlx::query(&sql);
            for id in &owner_ids {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.reader).await? {
                owners.push(account_row(&row)?);
            }
        }
        attach_owners(page, owners)
    }

    async fn list_admin_keys(&self, org: &Id, page: &PageRequest) -> StoreResult<Page<ApiKey>> {
        let cursor = match &page.after {
            None => None,
            Some(_) => Some(
                cursor_seq(
                    &self.reader,
                    "api_keys",
                    "organization_id = ? AND kind = 'admin'",
                    &page.after,
                    &[org.as_str()],
                )
                .await?,
            ),
        };
        let (cmp, from, order) = page.keyset(cursor);
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE organization_id = ? AND kind = 'admin' \
             AND revoked_at IS NULL AND seq {cmp} ? ORDER BY seq {order} LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(from)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let items = rows.iter().map(key_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn update_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let (key, audit) = (key.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (key, audit) = (&key, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE api_keys SET scopes = ?, expires_at = ? \
             WHERE id = ? AND organization_id = ? AND revoked_at IS NULL",
                    )
                    .bind(scopes_json(key))
                    .bind(key.expires_at)
                    .bind(key.id.as_str())
                    .bind(key.organization_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "key is deleted")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn revoke_api_key(
        &self,
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (org, id, audit) = (org.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, id, audit) = (&org, &id, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND organization_id = ? \
             AND kind = 'service_account' AND revoked_at IS NULL",
                    )
                    .bind(effective)
                    .bind(id.as_str())
                    .bind(org.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "key is deleted")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        // One statement on the single writer: the "another usable write-capable key remains"
        // check and the revocation cannot interleave with a concurrent delete. Read-only keys
        // do not count: with only those left, the organization could change nothing.
        let (org, id, audit) = (org.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, id, audit) = (&org, &id, &audit[..]);
                    let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND organization_id = ?3 \
             AND kind = 'admin' AND revoked_at IS NULL AND EXISTS (\
               SELECT 1 FROM api_keys o WHERE o.organization_id = ?3 AND o.kind = 'admin' \
               AND o.id <> ?2 AND (o.revoked_at IS NULL OR o.revoked_at > ?1) \
               AND (o.expires_at IS NULL OR o.expires_at > ?1) \
               AND (o.scopes = '[]' OR EXISTS (\
                 SELECT 1 FROM json_each(o.scopes) s WHERE s.value = ?4)))",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(SCOPE_WRITE)
        .execute(&mut *conn)
        .await?;
                    expect_one(
                        done.rows_affected(),
                        "no other usable write-capable admin key",
                    )?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let usage = usage.to_vec();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let usage = &usage[..];
                    for (id, at) in usage {
                        sqlx::query(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
            )
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// One process owns a SQLite file: its own cache is the only one to invalidate.
    async fn publish(&self, _change: &Change) -> StoreResult<()> {
        Ok(())
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
                    "SELECT seq FROM audit_events WHERE id = ? \
                     AND (organization_id = ? OR organization_id IS NULL)",
                )
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.reader)
                .await?
                .ok_or(StoreError::UnknownCursor)?,
            ),
        };
        let (clause, binds) = audit_sql::list_clause(&AUDIT_DIALECT, org, query, cursor);
        let sql = format!("{AUDIT_SELECT}{clause}");
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&self.reader)
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
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let sql = format!(
                        "{AUDIT_SELECT} WHERE e.webhook_pending = 1 AND e.webhook_next_at <= ? \
             ORDER BY e.seq LIMIT ?"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *conn)
                        .await?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let entry = audit_row(row)?;
                        let attempts: i64 = row.try_get("webhook_attempts")?;
                        sqlx::query("UPDATE audit_events SET webhook_next_at = ? WHERE id = ?")
                            .bind(lease_until)
                            .bind(entry.event.id.as_str())
                            .execute(&mut *conn)
                            .await?;
                        claimed.push((entry, u32::try_from(attempts).unwrap_or(u32::MAX)));
                    }
                    Ok(claimed)
                })
            })
            .await
    }

    async fn finish_webhook_delivery(&self, id: &Id, outcome: &DeliveryOutcome) -> StoreResult<()> {
        let (id, outcome) = (id.clone(), outcome.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let q = match &outcome {
                        DeliveryOutcome::Delivered { at } => sqlx::query(
                            "UPDATE audit_events SET webhook_pending = 0, webhook_next_at = NULL, \
                 webhook_delivered_at = ?, webhook_error = NULL WHERE id = ?",
                        )
                        .bind(*at),
                        DeliveryOutcome::Failed {
                            next_attempt_at,
                            error,
                        } => sqlx::query(
                            "UPDATE audit_events SET webhook_attempts = webhook_attempts + 1, \
                 webhook_next_at = ?, webhook_error = ? WHERE id = ?",
                        )
                        .bind(*next_attempt_at)
                        .bind(error.as_str()),
                    };
                    q.bind(id.as_str()).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE webhook_pending = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(n.max(0) as u64)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
            .fetch_one(&self.reader)
            .await?;
        Ok(!any)
    }

    async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64> {
        use futures_util::TryStreamExt;
        // One read transaction: every table comes from the same snapshot.
        let mut tx = self.reader.begin().await?;
        let mut n = 0u64;
        let mut emit = |r: Record| -> StoreResult<()> {
            n += 1;
            sink(r).map_err(StoreError::Other)
        };
        let tables: [(&str, String); 5] = [
            ("organizations", "id, label, name, created_at".to_owned()),
            ("projects", PROJECT_COLS.to_owned()),
            ("service_accounts", format!("{ACCOUNT_COLS}, deleted_at")),
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
        // Straight on the writer connection, not a job: the records stream in and cannot
        // move to the writer task. The writer waits for the connection meanwhile.
        let mut tx = self.writer.pool().begin().await?;
        let mut n = 0u64;
        for record in source {
            insert_record(&mut tx, &record.map_err(StoreError::Other)?).await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.pool().close().await;
    }

    async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let (org, default_project, admin_key, audit) = (
            org.clone(),
            default_project.clone(),
            admin_key.clone(),
            audit.to_vec(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, default_project, admin_key, audit) =
                        (&org, &default_project, &admin_key, &audit[..]);
                    if only_if_empty {
                        let existing: i64 =
                            sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
                                .fetch_one(&mut *conn)
                                .await?;
                        if existing > 0 {
                            return Ok(false);
                        }
                    }
                    sqlx::query(
                        "INSERT INTO organizations (id, label, name, created_at) VALUES (?,?,?,?)",
                    )
                    .bind(org.id.as_str())
                    .bind(&org.label)
                    .bind(&org.name)
                    .bind(org.created_at)
                    .execute(&mut *conn)
                    .await?;
                    insert_project(&mut *conn, default_project).await?;
                    insert_key(&mut *conn, admin_key, true).await?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(true)
                })
            })
            .await
    }

    async fn organization_by_label(&self, label: &str) -> StoreResult<Option<Organization>> {
        let row =
            sqlx::query("SELECT id, label, name, created_at FROM organizations WHERE label = ?")
                .bind(label)
                .fetch_optional(&self.reader)
                .await?;
        row.as_ref().map(organization_row).transpose()
    }

    async fn insert_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let (project, audit) = (project.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (project, audit) = (&project, &audit[..]);
                    insert_project(&mut *conn, project).await?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        let sql =
            format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ? AND organization_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
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
            &self.reader,
            "projects",
            "organization_id = ?",
            &page.after,
            &[org.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = ? AND seq > ? \
             AND (? OR archived_at IS NULL) ORDER BY seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(after)
            .bind(include_archived)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let items = rows
            .iter()
            .map(project_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn update_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let (project, audit) = (project.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (project, audit) = (&project, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE projects SET name = ?, external_key_id = ? \
             WHERE id = ? AND organization_id = ? AND archived_at IS NULL",
                    )
                    .bind(&project.name)
                    .bind(&project.external_key_id)
                    .bind(project.id.as_str())
                    .bind(project.organization_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "project is not active")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (org, id, audit) = (org.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, id, audit) = (&org, &id, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE projects SET archived_at = ? WHERE id = ? AND organization_id = ? \
             AND archived_at IS NULL AND is_default = 0",
                    )
                    .bind(at)
                    .bind(id.as_str())
                    .bind(org.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "project is not archivable")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (account, first_key, audit) = (account.clone(), first_key.cloned(), audit.to_vec());
        self.writer.write(move |conn| Box::pin(async move {
let (account, first_key, audit) = (&account, first_key.as_ref(), &audit[..]);
        let guard = if account.project_id.is_some() {
            " WHERE EXISTS (SELECT 1 FROM projects WHERE id = ? AND organization_id = ? \
               AND archived_at IS NULL)"
        } else {
            ""
        };
        let sql =
            format!("INSERT INTO service_accounts ({ACCOUNT_COLS}) SELECT ?,?,?,?,?,?,?,?{guard}");
        let mut q = sqlx::query(&sql)
            .bind(account.id.as_str())
            .bind(account.organization_id.as_str())
            .bind(account.project_id.as_ref().map(Id::as_str))
            .bind(&account.name)
            .bind(&account.description)
            .bind(account.role.as_str())
            .bind(account.created_at)
            .bind(account.updated_at);
        if let Some(project) = &account.project_id {
            q = q
                .bind(project.as_str())
                .bind(account.organization_id.as_str());
        }
        expect_one(
            q.execute(&mut *conn).await?.rows_affected(),
            "project is not active",
        )?;
        if let Some(key) = first_key {
            expect_one(
                insert_key(&mut *conn, key, true).await?,
                "service account is not live",
            )?;
        }
        insert_audit(&mut *conn, audit).await?;
        Ok(())
        })).await
    }

    async fn service_account(&self, org: &Id, id: &Id) -> StoreResult<Option<ServiceAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts \
             WHERE id = ? AND organization_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_row).transpose()
    }

    async fn list_project_service_accounts(
        &self,
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>> {
        // Deleted accounts still resolve as cursors, so a client paging while another deletes
        // the last account it saw carries on instead of failing.
        let after = cursor_seq(
            &self.reader,
            "service_accounts",
            "organization_id = ? AND project_id = ?",
            &page.after,
            &[org.as_str(), project.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts WHERE project_id = ? \
             AND organization_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(org.as_str())
            .bind(after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
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
        let (account, audit) = (account.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (account, audit) = (&account, &audit[..]);
                    let done = sqlx::query(
            "UPDATE service_accounts SET name = ?, description = ?, role = ?, updated_at = ? \
             WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
        )
        .bind(&account.name)
        .bind(&account.description)
        .bind(account.role.as_str())
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .bind(account.organization_id.as_str())
        .execute(&mut *conn)
        .await?;
                    expect_one(done.rows_affected(), "service account is not live")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (org, id, audit) = (org.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, id, audit) = (&org, &id, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE service_accounts SET deleted_at = ?, updated_at = ? \
             WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
                    )
                    .bind(at)
                    .bind(at)
                    .bind(id.as_str())
                    .bind(org.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "service account is not live")?;
                    // Keys still in a grace period stop now too: the account they act for is gone.
                    let revoked: Vec<String> = sqlx::query_scalar(
                        "UPDATE api_keys SET revoked_at = ?1 WHERE service_account_id = ?2 \
             AND (revoked_at IS NULL OR revoked_at > ?1) RETURNING id",
                    )
                    .bind(at)
                    .bind(id.as_str())
                    .fetch_all(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE credentials SET deleted_at = ? WHERE service_account_id = ? \
             AND deleted_at IS NULL",
                    )
                    .bind(at)
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    let audit = with_revoked_keys(audit, &revoked)?;
                    insert_audit(&mut *conn, &audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn insert_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let (key, audit) = (key.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (key, audit) = (&key, &audit[..]);
                    expect_one(
                        insert_key(&mut *conn, key, true).await?,
                        "service account is not live",
                    )?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = ?");
        let row = sqlx::query(&sql)
            .bind(hash.as_bytes())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    async fn list_org_service_accounts(
        &self,
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>> {
        window_rows(
            &self.reader,
            ("service_accounts", ACCOUNT_COLS),
            "organization_id = ?",
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
        let (credential, audit) = (credential.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (credential, audit) = (&credential, &audit[..]);
                    expect_one(
                        insert_credential(&mut *conn, credential, true).await?,
                        "service account is gone",
                    )?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn credential(&self, org: &Id, account: &Id, id: &Id) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = ? AND organization_id = ? \
             AND service_account_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .bind(account.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(credential_row).transpose()
    }

    async fn credential_by_client_id(&self, client_id: &str) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE client_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(client_id)
            .fetch_optional(&self.reader)
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
            &self.reader,
            ("credentials", CREDENTIAL_COLS),
            "organization_id = ? AND service_account_id = ?",
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
        let (credential, audit) = (credential.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (credential, audit) = (&credential, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE credentials SET name = ?, description = ?, updated_at = ? \
             WHERE id = ? AND organization_id = ? AND service_account_id = ? \
             AND deleted_at IS NULL",
                    )
                    .bind(&credential.name)
                    .bind(&credential.description)
                    .bind(credential.updated_at)
                    .bind(credential.id.as_str())
                    .bind(credential.organization_id.as_str())
                    .bind(credential.service_account_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "credential is not live")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn delete_credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (org, account, id, audit) = (org.clone(), account.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, account, id, audit) = (&org, &account, &id, &audit[..]);
                    let done = sqlx::query(
            "UPDATE credentials SET deleted_at = ? WHERE id = ? AND organization_id = ? \
             AND service_account_id = ? AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(account.as_str())
        .execute(&mut *conn)
        .await?;
                    expect_one(done.rows_affected(), "credential is not live")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let usage = usage.to_vec();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let usage = &usage[..];
                    for (id, at) in usage {
                        sqlx::query(
                "UPDATE credentials SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) \
                 WHERE id = ?",
            )
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let sql = format!("SELECT {SIGNING_KEY_COLS} FROM signing_keys ORDER BY created_at, kid");
        sqlx::query(&sql)
            .fetch_all(&self.reader)
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
        let (key, audit) = (key.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (key, audit) = (&key, &audit[..]);
                    if let Some(at) = retire_others_at {
                        sqlx::query(
                            "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL",
                        )
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    // One statement: even another process writing the same file (SQLite's file lock
                    // serialises writers) cannot slip a key in between the check and the insert.
                    let guard = match retire_others_at {
            Some(_) => "",
            None => " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        };
                    let sql = format!(
                        "INSERT INTO signing_keys ({SIGNING_KEY_COLS}) SELECT ?,?,?,?,?,?{guard}"
                    );
                    let done = sqlx::query(&sql)
                        .bind(&key.kid)
                        .bind(&key.algorithm)
                        .bind(&key.private_key)
                        .bind(&key.public_key)
                        .bind(key.created_at)
                        .bind(key.retired_at)
                        .execute(&mut *conn)
                        .await?;
                    let inserted = done.rows_affected() == 1;
                    if inserted {
                        insert_audit(&mut *conn, audit).await?;
                    }
                    Ok(inserted)
                })
            })
            .await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO server_secrets (name, value, created_at) \
             VALUES (?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) \
             ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(&name)
                    .bind(candidate)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?")
                        .bind(&name)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Other(anyhow::anyhow!("server secret {name:?} vanished"))
                        })
                })
            })
            .await
    }
}

async fn insert_project(conn: &mut sqlx::SqliteConnection, project: &Project) -> StoreResult<()> {
    let sql = format!("INSERT INTO projects ({PROJECT_COLS}) VALUES (?,?,?,?,?,?,?)");
    sqlx::query(&sql)
        .bind(project.id.as_str())
        .bind(project.organization_id.as_str())
        .bind(&project.name)
        .bind(&project.external_key_id)
        .bind(project.is_default)
        .bind(project.created_at)
        .bind(project.archived_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const AUDIT_SELECT: &str = "SELECT e.id, e.organization_id, e.event_type, e.effective_at, \
     e.project_id, p.name AS project_name, e.resource_id, e.actor_type, e.actor_id, \
     e.request_id, e.client_request_id, e.ip_address, e.details, e.webhook_pending, \
     e.webhook_attempts FROM audit_events e LEFT JOIN projects p ON p.id = e.project_id";

const AUDIT_DIALECT: audit_sql::Dialect = audit_sql::Dialect {
    placeholder: |_| "?".to_owned(),
    ts: |p| p.to_owned(),
};

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(n) => q.bind(n),
        };
    }
    q
}

fn audit_row(row: &SqliteRow) -> StoreResult<AuditEntry> {
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
async fn insert_audit(conn: &mut sqlx::SqliteConnection, events: &[AuditEvent]) -> StoreResult<()> {
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events (id, organization_id, event_type, effective_at, \
             project_id, resource_id, actor_type, actor_id, request_id, client_request_id, \
             ip_address, details, webhook_pending, webhook_next_at) \
             VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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

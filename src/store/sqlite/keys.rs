//! API keys: insert (guarded by the owning account), lookups by id and hash, the project and admin
//! lists, updates, revocation and usage times.

use super::audit::insert_audit;
use super::pages::cursor_seq;
use super::{account_row, key_row, SqliteStore, ACCOUNT_COLS, KEY_COLS, KEY_COLS_K};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::model::{ApiKey, OwnerAccess, ServiceAccount};
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::rows::{attach_owners, expect_one};
use crate::store::StoreResult;

fn scopes_json(key: &ApiKey) -> String {
    serde_json::to_string(&key.scopes).unwrap_or_else(|_| "[]".to_owned())
}

/// `guarded`: for a service-account key, insert only while the account is live (import skips
/// the guard to bring revoked keys of deleted accounts along).
pub(super) async fn insert_key(
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

impl SqliteStore {
    pub(super) async fn insert_api_key(
        &self,
        key: &ApiKey,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
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

    pub(super) async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = ?");
        let row = sqlx::query(&sql)
            .bind(hash.as_bytes())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    pub(super) async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ? AND organization_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_row).transpose()
    }

    pub(super) async fn list_project_api_keys(
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

    pub(super) async fn list_admin_keys(
        &self,
        org: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ApiKey>> {
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

    pub(super) async fn update_api_key(
        &self,
        key: &ApiKey,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
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

    pub(super) async fn revoke_api_key(
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

    pub(super) async fn revoke_admin_key(
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

    pub(super) async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
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
}

//! API keys: insert (guarded by the owning account), lookups by id and hash, the project and admin
//! lists, updates, revocation and usage times.

use super::audit::insert_audit;
use super::{account_row, bind_args, key_row, SqliteStore, ACCOUNT_COLS, KEY_COLS, KEY_COLS_K};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::model::{ApiKey, OwnerAccess, ServiceAccount};
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{args, key_values};
use crate::store::rows::{attach_owners, expect_one};
use crate::store::StoreResult;

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
    let mut args = key_values(key);
    if guarded {
        args.extend(args![key.service_account_id.as_ref(), &key.organization_id]);
    }
    let done = bind_args(sqlx::query(&sql), args)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

impl SqliteStore {
    pub(super) async fn insert_api_key(
        &self,
        key: &ApiKey,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.write((key.clone(), audit.to_vec()), |conn, (key, audit)| {
            Box::pin(async move {
                let inserted = insert_key(&mut *conn, &key, true).await?;
                expect_one(inserted, "service account is not live")?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = ?");
        self.fetch_opt(&sql, args![hash.as_bytes()], key_row).await
    }

    pub(super) async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ? AND organization_id = ?");
        self.fetch_opt(&sql, args![id, org], key_row).await
    }

    pub(super) async fn list_project_api_keys(
        &self,
        org: &Id,
        project: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
        let after = self
            .cursor_seq(
                "api_keys",
                "organization_id = ? AND project_id = ?",
                page.after.as_ref(),
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
        let args = args![project, org, after, i64::from(page.limit) + 1];
        let page = self.fetch_page(&sql, args, page.limit, key_row).await?;
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
                self.cursor_seq(
                    "api_keys",
                    "organization_id = ? AND kind = 'admin'",
                    page.after.as_ref(),
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
        let args = args![org, from, i64::from(page.limit) + 1];
        self.fetch_page(&sql, args, page.limit, key_row).await
    }

    pub(super) async fn update_api_key(
        &self,
        key: &ApiKey,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE api_keys SET scopes = ?, expires_at = ? \
             WHERE id = ? AND organization_id = ? AND revoked_at IS NULL",
            args![&key.scopes, key.expires_at, &key.id, &key.organization_id],
            "key is deleted",
            audit,
        )
        .await
    }

    pub(super) async fn revoke_api_key(
        &self,
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND organization_id = ? \
             AND kind = 'service_account' AND revoked_at IS NULL",
            args![effective, id, org],
            "key is deleted",
            audit,
        )
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
        self.update_one(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND organization_id = ?3 \
             AND kind = 'admin' AND revoked_at IS NULL AND EXISTS (\
               SELECT 1 FROM api_keys o WHERE o.organization_id = ?3 AND o.kind = 'admin' \
               AND o.id <> ?2 AND (o.revoked_at IS NULL OR o.revoked_at > ?1) \
               AND (o.expires_at IS NULL OR o.expires_at > ?1) \
               AND (o.scopes = '[]' OR EXISTS (\
                 SELECT 1 FROM json_each(o.scopes) s WHERE s.value = ?4)))",
            args![now, id, org, SCOPE_WRITE],
            "no other usable write-capable admin key",
            audit,
        )
        .await
    }

    pub(super) async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        self.write(usage.to_vec(), |conn, usage| {
            Box::pin(async move {
                for (id, at) in usage {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) \
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
}

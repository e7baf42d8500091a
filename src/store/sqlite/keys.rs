//! API keys: insert (guarded by the owning account), lookups by id and hash, the project and admin
//! lists, updates, revocation and usage times.

use super::audit::insert_audit;
use super::{account_row, bind_args, key_row, SqliteStore, ACCOUNT_COLS, KEY_COLS, KEY_COLS_K};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::limits::Disabled;
use crate::domain::model::{ApiKey, OwnerAccess, ServiceAccount};
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{allowlist_text, args, key_values};
use crate::store::rows::{attach_owners, expect_one};
use crate::store::StoreResult;

/// The guard of revoking or disabling an admin key (`?2` of organization `?3`) at `?1`:
/// another admin key stays usable (unrevoked, or revoked only later; unexpired), enabled and
/// write-capable (holding `?4`, the write scope, or no scopes at all). Read-only keys do not
/// count: with only those left, the organization could change nothing.
macro_rules! other_admin_key_remains {
    () => {
        "EXISTS (SELECT 1 FROM api_keys o WHERE o.organization_id = ?3 AND o.kind = 'admin' \
         AND o.id <> ?2 AND (o.revoked_at IS NULL OR o.revoked_at > ?1) \
         AND (o.expires_at IS NULL OR o.expires_at > ?1) AND o.disabled_at IS NULL \
         AND (o.scopes = '[]' OR EXISTS (SELECT 1 FROM json_each(o.scopes) s WHERE s.value = ?4)))"
    };
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
    let mut args = key_values(key);
    let marks = vec!["?"; args.len()].join(",");
    let sql = format!("INSERT INTO api_keys ({KEY_COLS}) SELECT {marks}{guard}");
    if guarded {
        args.extend(args![key.service_account_id.as_ref(), &key.organization_id]);
    }
    let done = bind_args(sqlx::query(&sql), args)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

impl SqliteStore {
    /// The service accounts with these IDs (live or deleted), in one query.
    async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<ServiceAccount>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(",");
        let sql = format!("SELECT {ACCOUNT_COLS} FROM service_accounts WHERE id IN ({marks})");
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(&self.reader)
            .await?
            .iter()
            .map(account_row)
            .collect()
    }

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

    pub(super) async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        // One statement on the single writer: the "another usable write-capable key remains"
        // check and the revocation cannot interleave with a concurrent delete or disable.
        self.update_one(
            concat!(
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND organization_id = ?3 \
                 AND kind = 'admin' AND revoked_at IS NULL AND ",
                other_admin_key_remains!()
            ),
            args![now, id, org, SCOPE_WRITE],
            "no other usable write-capable admin key",
            audit,
        )
        .await
    }

    pub(super) async fn set_api_key_disabled(
        &self,
        org: &Id,
        id: &Id,
        disabled: Option<&Disabled>,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        match disabled {
            // Like a revocation, one statement on the single writer: a disabled admin key no
            // longer counts as the one that remains, so concurrent disables (or a disable and
            // a revoke) of the last two cannot both pass.
            Some(d) => {
                self.update_one(
                    concat!(
                        "UPDATE api_keys SET disabled_at = ?5, disabled_reason = ?6 \
                         WHERE id = ?2 AND organization_id = ?3 AND revoked_at IS NULL \
                         AND (kind <> 'admin' OR ",
                        other_admin_key_remains!(),
                        ")"
                    ),
                    args![now, id, org, SCOPE_WRITE, d.at, d.reason.as_str()],
                    "key is deleted, or no other usable write-capable admin key",
                    audit,
                )
                .await
            }
            // Enabling can lock no one out: no guard beyond the key being undeleted.
            None => {
                self.update_one(
                    "UPDATE api_keys SET disabled_at = NULL, disabled_reason = NULL \
                     WHERE id = ? AND organization_id = ? AND revoked_at IS NULL",
                    args![id, org],
                    "key is deleted",
                    audit,
                )
                .await
            }
        }
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

crate::store::statements::key_statements!(SqliteStore);

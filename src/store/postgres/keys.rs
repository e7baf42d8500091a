//! API keys: insert (guarded by the owning account), lookups by id and hash, the project and admin
//! lists, updates, revocation and usage times.

use sqlx::PgConnection;

use super::audit::insert_audit;
use super::projects::lock_active_project;
use super::{account_row, bind_args, key_row, PostgresStore, ACCOUNT_COLS, KEY_COLS, KEY_COLS_K};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind, SCOPE_WRITE};
use crate::domain::limits::Disabled;
use crate::domain::model::{ApiKey, OwnerAccess, ServiceAccount};
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{allowlist_text, args, key_values};
use crate::store::rows::{attach_owners, corrupt, expect_one};
use crate::store::{StoreError, StoreResult};

/// The guard of revoking or disabling an admin key (`$2` of organization `$3`) at `$1`:
/// another admin key stays usable (unrevoked, or revoked only later; unexpired), enabled and
/// write-capable (holding `$4`, the write scope, or no scopes at all). Read-only keys do not
/// count: with only those left, the organization could change nothing. Sound only under the
/// organization's row lock ([`lock_organization`]).
macro_rules! other_admin_key_remains {
    () => {
        "EXISTS (SELECT 1 FROM api_keys o WHERE o.organization_id = $3 AND o.kind = 'admin' \
         AND o.id <> $2 AND (o.revoked_at IS NULL OR o.revoked_at > kp_ts($1)) \
         AND (o.expires_at IS NULL OR o.expires_at > kp_ts($1)) AND o.disabled_at IS NULL \
         AND (cardinality(o.scopes) = 0 OR $4 = ANY(o.scopes)))"
    };
}

/// Locks the organization's row for the rest of the transaction. Revocations and disables of
/// one organization's admin keys take turns under it, so two of them racing for its last two
/// write-capable keys cannot both see "another key remains": the second one's statement runs
/// after the first commits, on a fresh snapshot (READ COMMITTED).
async fn lock_organization(conn: &mut PgConnection, org: &Id) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE")
        .bind(org.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts a key. For a guarded service-account key, first locks the account (and its
/// project) so a concurrent delete or archive cannot commit between the check and the insert.
/// Import passes `guarded: false` to bring revoked keys of deleted accounts along.
pub(super) async fn insert_key(
    conn: &mut PgConnection,
    key: &ApiKey,
    guarded: bool,
) -> StoreResult<()> {
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
    let sql = "INSERT INTO api_keys (id, organization_id, kind, project_id, service_account_id, \
         name, scopes, key_hash, redacted_value, created_at, expires_at, last_used_at, revoked_at, \
         allowed_ips, max_requests_per_1_minute, max_requests_per_1_day, \
         max_tokens_per_1_minute, disabled_at, disabled_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, kp_ts($10), kp_ts($11), kp_ts($12), \
         kp_ts($13), $14, $15, $16, $17, kp_ts($18), $19)";
    bind_args(sqlx::query(sql), key_values(key))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl PostgresStore {
    /// The service accounts with these IDs (live or deleted), in one query.
    async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<ServiceAccount>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM service_accounts WHERE id = ANY($1)");
        sqlx::query(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        insert_key(&mut tx, key, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        lock_organization(&mut tx, org).await?;
        let done = sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND kind = 'admin' AND revoked_at IS NULL AND ",
            other_admin_key_remains!()
        ))
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

    pub(super) async fn set_api_key_disabled(
        &self,
        org: &Id,
        id: &Id,
        disabled: Option<&Disabled>,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = match disabled {
            Some(d) => {
                // Under the same lock as revocations, whatever the key's kind: finding the
                // kind out first would cost a round trip, and disabling is rare.
                lock_organization(&mut tx, org).await?;
                sqlx::query(concat!(
                    "UPDATE api_keys SET disabled_at = kp_ts($5), disabled_reason = $6 \
                     WHERE id = $2 AND organization_id = $3 AND revoked_at IS NULL \
                     AND (kind <> 'admin' OR ",
                    other_admin_key_remains!(),
                    ")"
                ))
                .bind(now)
                .bind(id.as_str())
                .bind(org.as_str())
                .bind(SCOPE_WRITE)
                .bind(d.at)
                .bind(d.reason.as_str())
                .execute(&mut *tx)
                .await?
            }
            // Enabling can lock no one out: no guard beyond the key being undeleted.
            None => {
                sqlx::query(
                    "UPDATE api_keys SET disabled_at = NULL, disabled_reason = NULL \
                     WHERE id = $1 AND organization_id = $2 AND revoked_at IS NULL",
                )
                .bind(id.as_str())
                .bind(org.as_str())
                .execute(&mut *tx)
                .await?
            }
        };
        expect_one(
            done.rows_affected(),
            "key is deleted, or no other usable write-capable admin key",
        )?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
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
}

crate::store::statements::key_statements!(PostgresStore);

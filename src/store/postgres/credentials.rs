//! Client credentials of service accounts (the Keycard dialect): insert, lookups, list, update,
//! delete and usage times.

use sqlx::PgConnection;

use super::audit::insert_audit;
use super::{bind_args, credential_row, PostgresStore, CREDENTIAL_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Credential;
use crate::domain::page::{Window, WindowPage};
use crate::domain::time::Millis;
use crate::store::binds::{args, credential_values};
use crate::store::sqlx_error::duplicate_on;
use crate::store::{StoreError, StoreResult};

/// Inserts a credential. Guarded, it first locks the live account (`FOR SHARE`) so a
/// concurrent account delete either waits for this insert, and then deletes the new credential
/// too, or commits first and makes this insert fail. Import passes `guarded: false` to bring
/// credentials of deleted accounts along.
pub(super) async fn insert_credential(
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
        // A federated credential holds its provider the same way: a concurrent provider
        // delete waits for this insert and then sees the credential.
        if let Some(f) = &c.federation {
            let provider: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM workload_identity_providers \
                 WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR SHARE",
            )
            .bind(f.provider_id.as_str())
            .bind(c.organization_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            if provider.is_none() {
                return Err(StoreError::Conflict("provider is gone"));
            }
        }
    }
    let sql = "INSERT INTO credentials (id, organization_id, service_account_id, client_id, \
         secret_hash, name, description, created_at, updated_at, last_used_at, deleted_at, \
         provider_id, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, kp_ts($8), kp_ts($9), kp_ts($10), kp_ts($11), \
         $12, $13)";
    bind_args(sqlx::query(sql), credential_values(c))
        .execute(&mut *conn)
        .await
        .map_err(|e| duplicate_on(e, "client_id"))?;
    Ok(())
}

impl PostgresStore {
    pub(super) async fn insert_credential(
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

    pub(super) async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
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
}

crate::store::statements::credential_statements!(PostgresStore);

//! Client credentials of service accounts (the Keycard dialect): insert, lookups, list, update,
//! delete and usage times.

use super::audit::insert_audit;
use super::{bind_args, credential_row, SqliteStore, CREDENTIAL_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Credential;
use crate::domain::page::{Window, WindowPage};
use crate::domain::time::Millis;
use crate::store::binds::{args, credential_values};
use crate::store::rows::expect_one;
use crate::store::sqlx_error::duplicate_on;
use crate::store::StoreResult;

/// `guarded`: insert only while the service account is live and in the credential's
/// organization (import skips the guard to bring credentials of deleted accounts along).
pub(super) async fn insert_credential(
    conn: &mut sqlx::SqliteConnection,
    c: &Credential,
    guarded: bool,
) -> StoreResult<u64> {
    let guard = match (guarded, c.federation.is_some()) {
        (false, _) => "",
        (true, false) => {
            " WHERE EXISTS (SELECT 1 FROM service_accounts \
               WHERE id = ? AND organization_id = ? AND deleted_at IS NULL)"
        }
        // A federated credential also needs its provider live (one writer: no race).
        (true, true) => {
            " WHERE EXISTS (SELECT 1 FROM service_accounts \
               WHERE id = ? AND organization_id = ? AND deleted_at IS NULL) \
               AND EXISTS (SELECT 1 FROM workload_identity_providers \
               WHERE id = ? AND organization_id = ? AND deleted_at IS NULL)"
        }
    };
    let sql = format!(
        "INSERT INTO credentials ({CREDENTIAL_COLS}) SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?{guard}"
    );
    let mut args = credential_values(c);
    if guarded {
        args.extend(args![&c.service_account_id, &c.organization_id]);
        if let Some(f) = &c.federation {
            args.extend(args![&f.provider_id, &c.organization_id]);
        }
    }
    let done = bind_args(sqlx::query(&sql), args)
        .execute(&mut *conn)
        .await
        .map_err(|e| duplicate_on(e, "client_id"))?;
    Ok(done.rows_affected())
}

impl SqliteStore {
    pub(super) async fn insert_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (credential.clone(), audit.to_vec());
        self.write(input, |conn, (credential, audit)| {
            Box::pin(async move {
                let inserted = insert_credential(&mut *conn, &credential, true).await?;
                if inserted == 0 && credential.federation.is_some() {
                    // Which guard failed: the provider's, or the account's below.
                    let provider: Option<i64> = sqlx::query_scalar(
                        "SELECT 1 FROM workload_identity_providers \
                         WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
                    )
                    .bind(
                        credential
                            .federation
                            .as_ref()
                            .map(|f| f.provider_id.as_str()),
                    )
                    .bind(credential.organization_id.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                    if provider.is_none() {
                        return Err(crate::store::StoreError::Conflict("provider is gone"));
                    }
                }
                expect_one(inserted, "service account is gone")?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        self.write(usage.to_vec(), |conn, usage| {
            Box::pin(async move {
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
}

crate::store::statements::credential_statements!(SqliteStore);

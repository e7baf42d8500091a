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
    let guard = match guarded {
        false => "",
        true => {
            " WHERE EXISTS (SELECT 1 FROM service_accounts \
               WHERE id = ? AND organization_id = ? AND deleted_at IS NULL)"
        }
    };
    let sql =
        format!("INSERT INTO credentials ({CREDENTIAL_COLS}) SELECT ?,?,?,?,?,?,?,?,?,?,?{guard}");
    let mut args = credential_values(c);
    if guarded {
        args.extend(args![&c.service_account_id, &c.organization_id]);
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
                expect_one(inserted, "service account is gone")?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
    ) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = ? AND organization_id = ? \
             AND service_account_id = ? AND deleted_at IS NULL"
        );
        self.fetch_opt(&sql, args![id, org, account], credential_row)
            .await
    }

    pub(super) async fn credential_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE client_id = ? AND deleted_at IS NULL"
        );
        self.fetch_opt(&sql, args![client_id], credential_row).await
    }

    pub(super) async fn list_credentials(
        &self,
        org: &Id,
        account: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<Credential>> {
        self.window_rows(
            ("credentials", CREDENTIAL_COLS),
            "organization_id = ? AND service_account_id = ?",
            &[org.as_str(), account.as_str()],
            window,
            credential_row,
        )
        .await
    }

    pub(super) async fn update_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let c = credential;
        self.update_one(
            "UPDATE credentials SET name = ?, description = ?, updated_at = ? \
             WHERE id = ? AND organization_id = ? AND service_account_id = ? \
             AND deleted_at IS NULL",
            args![
                &c.name,
                &c.description,
                c.updated_at,
                &c.id,
                &c.organization_id,
                &c.service_account_id,
            ],
            "credential is not live",
            audit,
        )
        .await
    }

    pub(super) async fn delete_credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE credentials SET deleted_at = ? WHERE id = ? AND organization_id = ? \
             AND service_account_id = ? AND deleted_at IS NULL",
            args![at, id, org, account],
            "credential is not live",
            audit,
        )
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

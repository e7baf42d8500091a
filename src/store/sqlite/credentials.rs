//! Client credentials of service accounts (the Keycard dialect): insert, lookups, list, update,
//! delete and usage times.

use super::audit::insert_audit;
use super::pages::window_rows;
use super::{credential_row, SqliteStore, CREDENTIAL_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Credential;
use crate::domain::page::{Window, WindowPage};
use crate::domain::time::Millis;
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

impl SqliteStore {
    pub(super) async fn insert_credential(
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
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .bind(account.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(credential_row).transpose()
    }

    pub(super) async fn credential_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE client_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(credential_row).transpose()
    }

    pub(super) async fn list_credentials(
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

    pub(super) async fn update_credential(
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

    pub(super) async fn delete_credential(
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

    pub(super) async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
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
}

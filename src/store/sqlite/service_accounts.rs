//! Service accounts: insert (with a first key), read, the project and organization-wide lists,
//! update and delete (which revokes their keys and deletes their credentials).

use super::audit::insert_audit;
use super::keys::insert_key;
use super::{account_row, bind_args, SqliteStore, ACCOUNT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;
use crate::store::binds::{account_values, args};
use crate::store::rows::{expect_one, with_revoked_keys};
use crate::store::StoreResult;

impl SqliteStore {
    pub(super) async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (account.clone(), first_key.cloned(), audit.to_vec());
        self.write(input, |conn, (account, first_key, audit)| {
            Box::pin(async move {
                let guard = if account.project_id.is_some() {
                    " WHERE EXISTS (SELECT 1 FROM projects WHERE id = ? AND organization_id = ? \
                       AND archived_at IS NULL)"
                } else {
                    ""
                };
                let sql = format!(
                    "INSERT INTO service_accounts ({ACCOUNT_COLS}) SELECT ?,?,?,?,?,?,?,?{guard}"
                );
                let mut args = account_values(&account);
                if let Some(project) = &account.project_id {
                    args.extend(args![project, &account.organization_id]);
                }
                let done = bind_args(sqlx::query(&sql), args)
                    .execute(&mut *conn)
                    .await?;
                expect_one(done.rows_affected(), "project is not active")?;
                if let Some(key) = &first_key {
                    let inserted = insert_key(&mut *conn, key, true).await?;
                    expect_one(inserted, "service account is not live")?;
                }
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (org.clone(), id.clone(), audit.to_vec());
        self.write(input, move |conn, (org, id, audit)| {
            Box::pin(async move {
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
                let audit = with_revoked_keys(&audit, &revoked)?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }
}

crate::store::statements::account_statements!(SqliteStore);

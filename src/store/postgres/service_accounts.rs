//! Service accounts: insert (with a first key), read, the project and organization-wide lists,
//! update and delete (which revokes their keys and deletes their credentials).

use super::audit::insert_audit;
use super::keys::insert_key;
use super::projects::lock_active_project;
use super::{account_row, bind_args, PostgresStore, ACCOUNT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;
use crate::store::binds::{account_values, args};
use crate::store::rows::{expect_one, with_revoked_keys};
use crate::store::StoreResult;

impl PostgresStore {
    pub(super) async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(project) = &account.project_id {
            lock_active_project(&mut tx, &account.organization_id, project).await?;
        }
        let sql = "INSERT INTO service_accounts (id, organization_id, project_id, name, \
             description, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, kp_ts($7), kp_ts($8))";
        bind_args(sqlx::query(sql), account_values(account))
            .execute(&mut *tx)
            .await?;
        if let Some(key) = first_key {
            insert_key(&mut tx, key, true).await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE service_accounts SET deleted_at = kp_ts($1), updated_at = kp_ts($1) \
             WHERE id = $2 AND organization_id = $3 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "service account is not live")?;
        // Keys still in a grace period stop now too: the account they act for is gone.
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = kp_ts($1) WHERE service_account_id = $2 \
             AND (revoked_at IS NULL OR revoked_at > kp_ts($1)) RETURNING id",
        )
        .bind(at)
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        // The account row is locked by the update above, so a credential insert racing this
        // delete (it takes `FOR SHARE` on the account) has either committed, and is seen
        // here, or will find the account deleted.
        sqlx::query(
            "UPDATE credentials SET deleted_at = kp_ts($1) WHERE service_account_id = $2 \
             AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let audit = with_revoked_keys(audit, &revoked)?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

crate::store::statements::account_statements!(PostgresStore);

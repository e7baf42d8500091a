//! Service accounts: insert (with a first key), read, the project and organization-wide lists,
//! update and delete (which revokes their keys and deletes their credentials).

use super::audit::insert_audit;
use super::keys::insert_key;
use super::pages::{cursor_seq, window_rows};
use super::{account_row, SqliteStore, ACCOUNT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;
use crate::store::rows::{expect_one, with_revoked_keys};
use crate::store::StoreResult;

impl SqliteStore {
    pub(super) async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (account, first_key, audit) = (account.clone(), first_key.cloned(), audit.to_vec());
        self.writer.write(move |conn| Box::pin(async move {
let (account, first_key, audit) = (&account, first_key.as_ref(), &audit[..]);
        let guard = if account.project_id.is_some() {
            " WHERE EXISTS (SELECT 1 FROM projects WHERE id = ? AND organization_id = ? \
               AND archived_at IS NULL)"
        } else {
            ""
        };
        let sql =
            format!("INSERT INTO service_accounts ({ACCOUNT_COLS}) SELECT ?,?,?,?,?,?,?,?{guard}");
        let mut q = sqlx::query(&sql)
            .bind(account.id.as_str())
            .bind(account.organization_id.as_str())
            .bind(account.project_id.as_ref().map(Id::as_str))
            .bind(&account.name)
            .bind(&account.description)
            .bind(account.role.as_str())
            .bind(account.created_at)
            .bind(account.updated_at);
        if let Some(project) = &account.project_id {
            q = q
                .bind(project.as_str())
                .bind(account.organization_id.as_str());
        }
        expect_one(
            q.execute(&mut *conn).await?.rows_affected(),
            "project is not active",
        )?;
        if let Some(key) = first_key {
            expect_one(
                insert_key(&mut *conn, key, true).await?,
                "service account is not live",
            )?;
        }
        insert_audit(&mut *conn, audit).await?;
        Ok(())
        })).await
    }

    pub(super) async fn service_account(
        &self,
        org: &Id,
        id: &Id,
    ) -> StoreResult<Option<ServiceAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts \
             WHERE id = ? AND organization_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_row).transpose()
    }

    pub(super) async fn list_project_service_accounts(
        &self,
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>> {
        // Deleted accounts still resolve as cursors, so a client paging while another deletes
        // the last account it saw carries on instead of failing.
        let after = cursor_seq(
            &self.reader,
            "service_accounts",
            "organization_id = ? AND project_id = ?",
            &page.after,
            &[org.as_str(), project.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM service_accounts WHERE project_id = ? \
             AND organization_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(project.as_str())
            .bind(org.as_str())
            .bind(after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let items = rows
            .iter()
            .map(account_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    pub(super) async fn update_service_account(
        &self,
        account: &ServiceAccount,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (account, audit) = (account.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (account, audit) = (&account, &audit[..]);
                    let done = sqlx::query(
            "UPDATE service_accounts SET name = ?, description = ?, role = ?, updated_at = ? \
             WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
        )
        .bind(&account.name)
        .bind(&account.description)
        .bind(account.role.as_str())
        .bind(account.updated_at)
        .bind(account.id.as_str())
        .bind(account.organization_id.as_str())
        .execute(&mut *conn)
        .await?;
                    expect_one(done.rows_affected(), "service account is not live")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
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
        let (org, id, audit) = (org.clone(), id.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (org, id, audit) = (&org, &id, &audit[..]);
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
                    let audit = with_revoked_keys(audit, &revoked)?;
                    insert_audit(&mut *conn, &audit).await?;
                    Ok(())
                })
            })
            .await
    }

    pub(super) async fn list_org_service_accounts(
        &self,
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>> {
        window_rows(
            &self.reader,
            ("service_accounts", ACCOUNT_COLS),
            "organization_id = ?",
            &[org.as_str()],
            window,
            account_row,
        )
        .await
    }
}

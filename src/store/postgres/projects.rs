//! Projects: insert, read, list, rename and archive.

use sqlx::PgConnection;

use super::audit::insert_audit;
use super::pages::cursor_seq;
use super::{project_row, PostgresStore, PROJECT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Project;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::rows::expect_one;
use crate::store::{StoreError, StoreResult};

pub(super) async fn insert_project(conn: &mut PgConnection, p: &Project) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, organization_id, name, external_key_id, is_default, created_at, archived_at) \
         VALUES ($1, $2, $3, $4, $5, kp_ts($6), kp_ts($7))",
    )
    .bind(p.id.as_str())
    .bind(p.organization_id.as_str())
    .bind(&p.name)
    .bind(&p.external_key_id)
    .bind(p.is_default)
    .bind(p.created_at)
    .bind(p.archived_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks an active project of the organization for the rest of the transaction.
pub(super) async fn lock_active_project(
    conn: &mut PgConnection,
    org: &Id,
    project: &Id,
) -> StoreResult<()> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM projects WHERE id = $1 AND organization_id = $2 AND archived_at IS NULL FOR SHARE",
    )
    .bind(project.as_str())
    .bind(org.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    found
        .map(|_| ())
        .ok_or(StoreError::Conflict("project is not active"))
}

impl PostgresStore {
    pub(super) async fn insert_project(
        &self,
        project: &Project,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_project(&mut tx, project).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        let sql =
            format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1 AND organization_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_row).transpose()
    }

    pub(super) async fn list_projects(
        &self,
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>> {
        let after = cursor_seq(
            &self.pool,
            "projects",
            "organization_id = $2",
            &page.after,
            &[org.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = $1 AND seq > $2 \
             AND ($3 OR archived_at IS NULL) ORDER BY seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(after)
            .bind(include_archived)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(project_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    pub(super) async fn update_project(
        &self,
        project: &Project,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE projects SET name = $1, external_key_id = $2 \
             WHERE id = $3 AND organization_id = $4 AND archived_at IS NULL",
        )
        .bind(&project.name)
        .bind(&project.external_key_id)
        .bind(project.id.as_str())
        .bind(project.organization_id.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "project is not active")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE projects SET archived_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND archived_at IS NULL AND NOT is_default",
        )
        .bind(at)
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        expect_one(done.rows_affected(), "project is not archivable")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

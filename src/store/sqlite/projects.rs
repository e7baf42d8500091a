//! Projects: insert, read, list, rename and archive.

use super::audit::insert_audit;
use super::pages::cursor_seq;
use super::{project_row, SqliteStore, PROJECT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Project;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::rows::expect_one;
use crate::store::StoreResult;

pub(super) async fn insert_project(
    conn: &mut sqlx::SqliteConnection,
    project: &Project,
) -> StoreResult<()> {
    let sql = format!("INSERT INTO projects ({PROJECT_COLS}) VALUES (?,?,?,?,?,?,?)");
    sqlx::query(&sql)
        .bind(project.id.as_str())
        .bind(project.organization_id.as_str())
        .bind(&project.name)
        .bind(&project.external_key_id)
        .bind(project.is_default)
        .bind(project.created_at)
        .bind(project.archived_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqliteStore {
    pub(super) async fn insert_project(
        &self,
        project: &Project,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (project, audit) = (project.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (project, audit) = (&project, &audit[..]);
                    insert_project(&mut *conn, project).await?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    pub(super) async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        let sql =
            format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ? AND organization_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_optional(&self.reader)
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
            &self.reader,
            "projects",
            "organization_id = ?",
            &page.after,
            &[org.as_str()],
        )
        .await?;
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = ? AND seq > ? \
             AND (? OR archived_at IS NULL) ORDER BY seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(after)
            .bind(include_archived)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.reader)
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
        let (project, audit) = (project.clone(), audit.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (project, audit) = (&project, &audit[..]);
                    let done = sqlx::query(
                        "UPDATE projects SET name = ?, external_key_id = ? \
             WHERE id = ? AND organization_id = ? AND archived_at IS NULL",
                    )
                    .bind(&project.name)
                    .bind(&project.external_key_id)
                    .bind(project.id.as_str())
                    .bind(project.organization_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "project is not active")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }

    pub(super) async fn archive_project(
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
                        "UPDATE projects SET archived_at = ? WHERE id = ? AND organization_id = ? \
             AND archived_at IS NULL AND is_default = 0",
                    )
                    .bind(at)
                    .bind(id.as_str())
                    .bind(org.as_str())
                    .execute(&mut *conn)
                    .await?;
                    expect_one(done.rows_affected(), "project is not archivable")?;
                    insert_audit(&mut *conn, audit).await?;
                    Ok(())
                })
            })
            .await
    }
}

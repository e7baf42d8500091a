//! Projects: insert, read, list, rename and archive.

use super::audit::insert_audit;
use super::{bind_args, project_row, SqliteStore, PROJECT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Project;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{args, project_values};
use crate::store::StoreResult;

pub(super) async fn insert_project(
    conn: &mut sqlx::SqliteConnection,
    project: &Project,
) -> StoreResult<()> {
    let sql = format!("INSERT INTO projects ({PROJECT_COLS}) VALUES (?,?,?,?,?,?,?)");
    bind_args(sqlx::query(&sql), project_values(project))
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
        let input = (project.clone(), audit.to_vec());
        self.write(input, |conn, (project, audit)| {
            Box::pin(async move {
                insert_project(&mut *conn, &project).await?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        let sql =
            format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ? AND organization_id = ?");
        self.fetch_opt(&sql, args![id, org], project_row).await
    }

    pub(super) async fn list_projects(
        &self,
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>> {
        let after = self
            .cursor_seq(
                "projects",
                "organization_id = ?",
                page.after.as_ref(),
                &[org.as_str()],
            )
            .await?;
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = ? AND seq > ? \
             AND (? OR archived_at IS NULL) ORDER BY seq LIMIT ?"
        );
        let args = args![org, after, include_archived, i64::from(page.limit) + 1];
        self.fetch_page(&sql, args, page.limit, project_row).await
    }

    pub(super) async fn update_project(
        &self,
        project: &Project,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE projects SET name = ?, external_key_id = ? \
             WHERE id = ? AND organization_id = ? AND archived_at IS NULL",
            args![
                &project.name,
                &project.external_key_id,
                &project.id,
                &project.organization_id,
            ],
            "project is not active",
            audit,
        )
        .await
    }

    pub(super) async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE projects SET archived_at = ? WHERE id = ? AND organization_id = ? \
             AND archived_at IS NULL AND is_default = 0",
            args![at, id, org],
            "project is not archivable",
            audit,
        )
        .await
    }
}

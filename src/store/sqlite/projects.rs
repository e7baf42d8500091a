//! Projects: insert, read, list, rename and archive.

use super::audit::insert_audit;
use super::{bind_args, project_row, SqliteStore, PROJECT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Project;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{allowlist_text, args, project_values};
use crate::store::StoreResult;

pub(super) async fn insert_project(
    conn: &mut sqlx::SqliteConnection,
    project: &Project,
) -> StoreResult<()> {
    let sql = format!("INSERT INTO projects ({PROJECT_COLS}) VALUES (?,?,?,?,?,?,?,?)");
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

crate::store::statements::project_statements!(SqliteStore);

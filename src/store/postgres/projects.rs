//! Projects: insert, read, list, rename and archive.

use sqlx::PgConnection;

use super::audit::insert_audit;
use super::{bind_args, project_row, PostgresStore, PROJECT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::Project;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{allowlist_text, args, project_values};
use crate::store::{StoreError, StoreResult};

pub(super) async fn insert_project(conn: &mut PgConnection, p: &Project) -> StoreResult<()> {
    let sql = "INSERT INTO projects (id, organization_id, name, external_key_id, is_default, \
         created_at, archived_at, allowed_ips) \
         VALUES ($1, $2, $3, $4, $5, kp_ts($6), kp_ts($7), $8)";
    bind_args(sqlx::query(sql), project_values(p))
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

    pub(super) async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.update_one(
            "UPDATE projects SET archived_at = kp_ts($1) WHERE id = $2 AND organization_id = $3 \
             AND archived_at IS NULL AND NOT is_default",
            args![at, id, org],
            "project is not archivable",
            audit,
        )
        .await
    }
}

crate::store::statements::project_statements!(PostgresStore);

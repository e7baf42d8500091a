//! Organizations: creating one with its default project and first admin key, and finding them.

use super::audit::insert_audit;
use super::keys::insert_key;
use super::projects::insert_project;
use super::{bind_args, organization_row, SqliteStore};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::{ApiKey, Organization, Project};
use crate::store::binds::{args, organization_values};
use crate::store::StoreResult;

pub(super) const INSERT_ORGANIZATION: &str =
    "INSERT INTO organizations (id, label, name, created_at) VALUES (?,?,?,?)";

impl SqliteStore {
    pub(super) async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let input = (
            org.clone(),
            default_project.clone(),
            admin_key.clone(),
            audit.to_vec(),
        );
        self.write(
            input,
            move |conn, (org, default_project, admin_key, audit)| {
                Box::pin(async move {
                    if only_if_empty {
                        let existing: i64 =
                            sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
                                .fetch_one(&mut *conn)
                                .await?;
                        if existing > 0 {
                            return Ok(false);
                        }
                    }
                    bind_args(sqlx::query(INSERT_ORGANIZATION), organization_values(&org))
                        .execute(&mut *conn)
                        .await?;
                    insert_project(&mut *conn, &default_project).await?;
                    insert_key(&mut *conn, &admin_key, true).await?;
                    insert_audit(&mut *conn, &audit).await?;
                    Ok(true)
                })
            },
        )
        .await
    }

    pub(super) async fn organization_by_label(
        &self,
        label: &str,
    ) -> StoreResult<Option<Organization>> {
        let sql = "SELECT id, label, name, created_at FROM organizations WHERE label = ?";
        self.fetch_opt(sql, args![label], organization_row).await
    }

    pub(super) async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
        let sql = "SELECT id, label, name, created_at FROM organizations WHERE id = ?";
        self.fetch_opt(sql, args![id], organization_row).await
    }

    pub(super) async fn is_empty(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
            .fetch_one(&self.reader)
            .await?;
        Ok(!any)
    }
}

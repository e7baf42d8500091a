//! Organizations: creating one with its default project and first admin key, and finding them.

use super::audit::insert_audit;
use super::keys::insert_key;
use super::projects::insert_project;
use super::{bind_args, organization_row, PostgresStore};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::model::{ApiKey, Organization, Project};
use crate::store::binds::{args, organization_values};
use crate::store::{StoreError, StoreResult};

/// Serialises organization creation across nodes (first start on an empty database).
const ORG_CREATION_LOCK: i64 = 0x6b65_7970_6c61_6e65; // "keyplane"

pub(super) const INSERT_ORGANIZATION: &str =
    "INSERT INTO organizations (id, label, name, created_at) VALUES ($1, $2, $3, kp_ts($4))";

const SELECT_ORGANIZATION: &str =
    "SELECT id, label, name, kp_ms(created_at) AS created_at FROM organizations";

impl PostgresStore {
    pub(super) async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ORG_CREATION_LOCK)
            .execute(&mut *tx)
            .await?;
        if only_if_empty {
            let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
                .fetch_one(&mut *tx)
                .await?;
            if any {
                return Ok(false);
            }
        }
        let sql = format!("{INSERT_ORGANIZATION} ON CONFLICT (label) DO NOTHING");
        let inserted = bind_args(sqlx::query(&sql), organization_values(org))
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate("organization label"));
        }
        insert_project(&mut tx, default_project).await?;
        insert_key(&mut tx, admin_key, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn organization_by_label(
        &self,
        label: &str,
    ) -> StoreResult<Option<Organization>> {
        // PostgreSQL text cannot hold NUL (binding it is an error); no label contains one.
        if label.contains('\0') {
            return Ok(None);
        }
        let sql = format!("{SELECT_ORGANIZATION} WHERE label = $1");
        self.fetch_opt(&sql, args![label], organization_row).await
    }

    pub(super) async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
        let sql = format!("{SELECT_ORGANIZATION} WHERE id = $1");
        self.fetch_opt(&sql, args![id], organization_row).await
    }

    pub(super) async fn is_empty(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organizations)")
            .fetch_one(&self.pool)
            .await?;
        Ok(!any)
    }
}

//! Workload identity providers and federation rules: inserts and the provider delete. Their
//! guards take row locks first, so that concurrent writers on other nodes serialise on the
//! row that matters: the organization for the provider count, the provider for its rules
//! (inserting a rule and deleting its provider exclude each other). Reads, lists and the other
//! updates are the shared statements (`federation_statements.rs`).

use sqlx::PgConnection;

use super::audit::insert_audit;
use super::{bind_args, provider_row, rule_row, PostgresStore, PROVIDER_COLS, RULE_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::federation::{
    matchers_to_json, transformations_to_json, FederationRule, Provider,
    MAX_PROVIDERS_PER_ORGANIZATION, MAX_RULES_PER_PROVIDER,
};
use crate::domain::ids::Id;
use crate::domain::page::{Page, PageRequest};
use crate::domain::time::Millis;
use crate::store::binds::{args, provider_values, rule_values};
use crate::store::{StoreError, StoreResult};

/// Unguarded (import brings deleted rows along; the guarded paths lock and check first).
pub(super) async fn insert_provider(conn: &mut PgConnection, p: &Provider) -> StoreResult<()> {
    let sql = "INSERT INTO workload_identity_providers (id, organization_id, name, description, \
         issuer, audience, enabled, attribute_transformations, verification, created_at, \
         updated_at, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, kp_ts($10), kp_ts($11), kp_ts($12))";
    bind_args(sqlx::query(sql), provider_values(p))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn insert_rule(conn: &mut PgConnection, r: &FederationRule) -> StoreResult<()> {
    let sql = "INSERT INTO federation_rules (id, organization_id, provider_id, project_id, \
         service_account_id, name, description, enabled, attribute_matchers, permissions, \
         created_at, updated_at, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, kp_ts($11), kp_ts($12), kp_ts($13))";
    bind_args(sqlx::query(sql), rule_values(r))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn found(conn: &mut PgConnection, sql: &str, binds: &[&str]) -> StoreResult<i64> {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.fetch_optional(&mut *conn).await?.unwrap_or(0))
}

fn under(limit: usize, n: i64) -> bool {
    usize::try_from(n).is_ok_and(|n| n < limit)
}

/// Locks the live provider (`FOR UPDATE`): whether it exists.
async fn lock_provider(conn: &mut PgConnection, org: &Id, id: &Id) -> StoreResult<bool> {
    let n = found(
        conn,
        "SELECT 1::bigint FROM workload_identity_providers \
         WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR UPDATE",
        &[id.as_str(), org.as_str()],
    )
    .await?;
    Ok(n == 1)
}

async fn live_rules(conn: &mut PgConnection, provider: &Id) -> StoreResult<i64> {
    found(
        conn,
        "SELECT count(*) FROM federation_rules WHERE provider_id = $1 AND deleted_at IS NULL",
        &[provider.as_str()],
    )
    .await
}

impl PostgresStore {
    pub(super) async fn insert_provider(
        &self,
        provider: &Provider,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let org = provider.organization_id.as_str();
        found(
            &mut tx,
            "SELECT 1::bigint FROM organizations WHERE id = $1 FOR UPDATE",
            &[org],
        )
        .await?;
        let live = found(
            &mut tx,
            "SELECT count(*) FROM workload_identity_providers \
             WHERE organization_id = $1 AND deleted_at IS NULL",
            &[org],
        )
        .await?;
        if !under(MAX_PROVIDERS_PER_ORGANIZATION, live) {
            return Err(StoreError::Conflict("provider limit"));
        }
        insert_provider(&mut tx, provider).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delete_provider(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if !lock_provider(&mut tx, org, id).await? {
            return Err(StoreError::Conflict("provider is gone"));
        }
        // A new statement after the lock: it sees a rule whose insert held the lock first.
        // Its Keycard credentials count as rules: they too map its tokens to an account.
        let credentials = found(
            &mut tx,
            "SELECT count(*) FROM credentials WHERE provider_id = $1 AND deleted_at IS NULL",
            &[id.as_str()],
        )
        .await?;
        if live_rules(&mut tx, id).await? > 0 || credentials > 0 {
            return Err(StoreError::Conflict("provider has rules"));
        }
        sqlx::query("UPDATE workload_identity_providers SET deleted_at = kp_ts($1) WHERE id = $2")
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn insert_rule(
        &self,
        rule: &FederationRule,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if !lock_provider(&mut tx, &rule.organization_id, &rule.provider_id).await? {
            return Err(StoreError::Conflict("provider is gone"));
        }
        if !under(
            MAX_RULES_PER_PROVIDER,
            live_rules(&mut tx, &rule.provider_id).await?,
        ) {
            return Err(StoreError::Conflict("rule limit"));
        }
        // `FOR SHARE` on the account and its project, as credentials do: a concurrent delete
        // or archive waits for this insert, or commits first and makes it fail.
        let account = found(
            &mut tx,
            "SELECT 1::bigint FROM service_accounts s JOIN projects p ON p.id = s.project_id \
             WHERE s.id = $1 AND s.project_id = $2 AND s.organization_id = $3 \
             AND s.deleted_at IS NULL AND p.archived_at IS NULL FOR SHARE",
            &[
                rule.service_account_id.as_str(),
                rule.project_id.as_str(),
                rule.organization_id.as_str(),
            ],
        )
        .await?;
        if account == 0 {
            return Err(StoreError::Conflict("service account is gone"));
        }
        insert_rule(&mut tx, rule).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

crate::store::federation_statements::federation_statements!(PostgresStore);

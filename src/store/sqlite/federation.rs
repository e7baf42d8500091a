//! Workload identity providers and federation rules: inserts and the provider delete, whose
//! guards run inside one writer job (SQLite has one writer, so a check and the write it
//! guards cannot be separated by another write). Reads, lists and the other updates are the
//! shared statements (`federation_statements.rs`).

use sqlx::SqliteConnection;

use super::audit::insert_audit;
use super::{bind_args, provider_row, rule_row, SqliteStore, PROVIDER_COLS, RULE_COLS};
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

/// Unguarded (import brings deleted rows along; the guarded paths check first).
pub(super) async fn insert_provider(conn: &mut SqliteConnection, p: &Provider) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO workload_identity_providers ({PROVIDER_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    );
    bind_args(sqlx::query(&sql), provider_values(p))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn insert_rule(
    conn: &mut SqliteConnection,
    r: &FederationRule,
) -> StoreResult<()> {
    let sql =
        format!("INSERT INTO federation_rules ({RULE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    bind_args(sqlx::query(&sql), rule_values(r))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn count(conn: &mut SqliteConnection, sql: &str, binds: &[&str]) -> StoreResult<i64> {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.fetch_one(&mut *conn).await?)
}

fn under(limit: usize, n: i64) -> bool {
    usize::try_from(n).is_ok_and(|n| n < limit)
}

impl SqliteStore {
    pub(super) async fn insert_provider(
        &self,
        provider: &Provider,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (provider.clone(), audit.to_vec());
        self.write(input, |conn, (provider, audit)| {
            Box::pin(async move {
                let live = count(
                    &mut *conn,
                    "SELECT count(*) FROM workload_identity_providers \
                     WHERE organization_id = ? AND deleted_at IS NULL",
                    &[provider.organization_id.as_str()],
                )
                .await?;
                if !under(MAX_PROVIDERS_PER_ORGANIZATION, live) {
                    return Err(StoreError::Conflict("provider limit"));
                }
                insert_provider(&mut *conn, &provider).await?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn delete_provider(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (org.clone(), id.clone(), at, audit.to_vec());
        self.write(input, |conn, (org, id, at, audit)| {
            Box::pin(async move {
                let rules = count(
                    &mut *conn,
                    "SELECT count(*) FROM federation_rules \
                     WHERE provider_id = ? AND deleted_at IS NULL",
                    &[id.as_str()],
                )
                .await?;
                if rules > 0 {
                    return Err(StoreError::Conflict("provider has rules"));
                }
                let credentials = count(
                    &mut *conn,
                    "SELECT count(*) FROM credentials \
                     WHERE provider_id = ? AND deleted_at IS NULL",
                    &[id.as_str()],
                )
                .await?;
                if credentials > 0 {
                    return Err(StoreError::Conflict("provider has rules"));
                }
                let done = sqlx::query(
                    "UPDATE workload_identity_providers SET deleted_at = ? \
                     WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
                )
                .bind(at)
                .bind(id.as_str())
                .bind(org.as_str())
                .execute(&mut *conn)
                .await?;
                crate::store::rows::expect_one(done.rows_affected(), "provider is gone")?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn insert_rule(
        &self,
        rule: &FederationRule,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let input = (rule.clone(), audit.to_vec());
        self.write(input, |conn, (rule, audit)| {
            Box::pin(async move {
                let provider = count(
                    &mut *conn,
                    "SELECT count(*) FROM workload_identity_providers \
                     WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
                    &[rule.provider_id.as_str(), rule.organization_id.as_str()],
                )
                .await?;
                if provider == 0 {
                    return Err(StoreError::Conflict("provider is gone"));
                }
                let rules = count(
                    &mut *conn,
                    "SELECT count(*) FROM federation_rules \
                     WHERE provider_id = ? AND deleted_at IS NULL",
                    &[rule.provider_id.as_str()],
                )
                .await?;
                if !under(MAX_RULES_PER_PROVIDER, rules) {
                    return Err(StoreError::Conflict("rule limit"));
                }
                let account = count(
                    &mut *conn,
                    "SELECT count(*) FROM service_accounts s \
                     JOIN projects p ON p.id = s.project_id \
                     WHERE s.id = ? AND s.project_id = ? AND s.organization_id = ? \
                     AND s.deleted_at IS NULL AND p.archived_at IS NULL",
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
                insert_rule(&mut *conn, &rule).await?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }
}

crate::store::federation_statements::federation_statements!(SqliteStore);

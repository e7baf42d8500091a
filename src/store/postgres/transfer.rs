//! Export and import of every row (`keyplane export` / `import`).

use sqlx::PgConnection;

use super::admission::insert_rate_limit;
use super::audit::{insert_audit, AUDIT_SELECT};
use super::credentials::insert_credential;
use super::federation::{insert_provider, insert_rule};
use super::keys::insert_key;
use super::organizations::INSERT_ORGANIZATION;
use super::projects::insert_project;
use super::{
    bind_args, record_row, PostgresStore, ACCOUNT_COLS, CREDENTIAL_COLS, KEY_COLS, PROJECT_COLS,
    PROVIDER_COLS, RATE_LIMIT_COLS, RULE_COLS,
};
use crate::store::binds::{account_values, args, organization_values};
use crate::store::rows::export_queries;
use crate::store::{Record, RecordSink, RecordSource, StoreError, StoreResult};

async fn insert_record(conn: &mut PgConnection, record: &Record) -> StoreResult<()> {
    match record {
        Record::Organization(org) => {
            bind_args(sqlx::query(INSERT_ORGANIZATION), organization_values(org))
                .execute(&mut *conn)
                .await?;
        }
        Record::Project(p) => insert_project(conn, p).await?,
        Record::ProjectRateLimit(l) => insert_rate_limit(conn, l, false).await?,
        Record::ServiceAccount {
            account: a,
            deleted_at,
        } => {
            let sql = "INSERT INTO service_accounts (id, organization_id, project_id, name, \
                 description, role, created_at, updated_at, deleted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, kp_ts($7), kp_ts($8), kp_ts($9))";
            let mut args = account_values(a);
            args.extend(args![*deleted_at]);
            bind_args(sqlx::query(sql), args)
                .execute(&mut *conn)
                .await?;
        }
        Record::ApiKey(k) => insert_key(conn, k, false).await?,
        Record::Credential(c) => insert_credential(conn, c, false).await?,
        Record::Provider(p) => insert_provider(conn, p).await?,
        Record::FederationRule(r) => insert_rule(conn, r).await?,
        Record::AuditEvent(e) => insert_audit(conn, std::slice::from_ref(e)).await?,
    }
    Ok(())
}

impl PostgresStore {
    pub(super) async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64> {
        use futures_util::TryStreamExt;
        let mut tx = self.pool.begin().await?;
        // One snapshot for every table, without blocking writers. Exports of big
        // installations may outlive the request statement timeout; lift it here only.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let cols = [
            "id, label, name, kp_ms(created_at) AS created_at",
            PROJECT_COLS,
            RATE_LIMIT_COLS,
            &format!("{ACCOUNT_COLS}, kp_ms(deleted_at) AS deleted_at"),
            KEY_COLS,
            CREDENTIAL_COLS,
            PROVIDER_COLS,
            RULE_COLS,
        ];
        let mut n = 0u64;
        for (table, sql) in export_queries(cols, AUDIT_SELECT) {
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                n += 1;
                sink(record_row(table, &row)?).map_err(StoreError::Other)?;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn import(&self, source: &mut RecordSource<'_>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let mut n = 0u64;
        for record in source {
            insert_record(&mut tx, &record.map_err(StoreError::Other)?).await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }
}

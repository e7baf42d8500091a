//! Export and import of every row (`keyplane export` / `import`).

use sqlx::{PgConnection, Row};

use super::audit::{insert_audit, AUDIT_SELECT};
use super::credentials::insert_credential;
use super::keys::insert_key;
use super::organizations::INSERT_ORGANIZATION;
use super::projects::insert_project;
use super::{
    account_row, audit_row, bind_args, credential_row, key_row, organization_row, project_row,
    PostgresStore, ACCOUNT_COLS, CREDENTIAL_COLS, KEY_COLS, PROJECT_COLS,
};
use crate::store::binds::{account_values, args, organization_values};
use crate::store::{Record, RecordSink, RecordSource, StoreError, StoreResult};

async fn insert_record(conn: &mut PgConnection, record: &Record) -> StoreResult<()> {
    match record {
        Record::Organization(org) => {
            bind_args(sqlx::query(INSERT_ORGANIZATION), organization_values(org))
                .execute(&mut *conn)
                .await?;
        }
        Record::Project(p) => insert_project(conn, p).await?,
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
        let mut n = 0u64;
        let mut emit = |r: Record| -> StoreResult<()> {
            n += 1;
            sink(r).map_err(StoreError::Other)
        };
        let tables: [(&str, String); 5] = [
            (
                "organizations",
                "id, label, name, kp_ms(created_at) AS created_at".to_owned(),
            ),
            ("projects", PROJECT_COLS.to_owned()),
            (
                "service_accounts",
                format!("{ACCOUNT_COLS}, kp_ms(deleted_at) AS deleted_at"),
            ),
            ("api_keys", KEY_COLS.to_owned()),
            ("credentials", CREDENTIAL_COLS.to_owned()),
        ];
        for (table, cols) in &tables {
            let sql = format!("SELECT {cols} FROM {table} ORDER BY seq");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                emit(match *table {
                    "organizations" => Record::Organization(organization_row(&row)?),
                    "projects" => Record::Project(project_row(&row)?),
                    "service_accounts" => Record::ServiceAccount {
                        account: account_row(&row)?,
                        deleted_at: row.try_get("deleted_at")?,
                    },
                    "api_keys" => Record::ApiKey(key_row(&row)?),
                    _ => Record::Credential(credential_row(&row)?),
                })?;
            }
        }
        {
            let sql = format!("{AUDIT_SELECT} ORDER BY e.seq");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                emit(Record::AuditEvent(audit_row(&row)?.event))?;
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

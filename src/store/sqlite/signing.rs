//! Token signing keys and server-wide secrets.

use super::audit::insert_audit;
use super::{signing_key_row, SqliteStore, SIGNING_KEY_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::model::SigningKey;
use crate::domain::time::Millis;
use crate::store::{StoreError, StoreResult};

impl SqliteStore {
    pub(super) async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let sql = format!("SELECT {SIGNING_KEY_COLS} FROM signing_keys ORDER BY created_at, kid");
        sqlx::query(&sql)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(signing_key_row)
            .collect()
    }

    pub(super) async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_others_at: Option<Millis>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        self.write((key.clone(), audit.to_vec()), move |conn, (key, audit)| {
            Box::pin(async move {
                if let Some(at) = retire_others_at {
                    sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }
                // One statement: even another process writing the same file (SQLite's file lock
                // serialises writers) cannot slip a key in between the check and the insert.
                let guard = match retire_others_at {
                    Some(_) => "",
                    None => {
                        " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)"
                    }
                };
                let sql = format!(
                    "INSERT INTO signing_keys ({SIGNING_KEY_COLS}) SELECT ?,?,?,?,?,?{guard}"
                );
                let done = sqlx::query(&sql)
                    .bind(&key.kid)
                    .bind(&key.algorithm)
                    .bind(&key.private_key)
                    .bind(&key.public_key)
                    .bind(key.created_at)
                    .bind(key.retired_at)
                    .execute(&mut *conn)
                    .await?;
                let inserted = done.rows_affected() == 1;
                if inserted {
                    insert_audit(&mut *conn, &audit).await?;
                }
                Ok(inserted)
            })
        })
        .await
    }

    pub(super) async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let input = (name.to_owned(), candidate.to_vec());
        self.write(input, |conn, (name, candidate)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) \
                     VALUES (?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&name)
                .bind(candidate)
                .execute(&mut *conn)
                .await?;
                sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?")
                    .bind(&name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Other(anyhow::anyhow!("server secret {name:?} vanished"))
                    })
            })
        })
        .await
    }
}

//! Token signing keys and server-wide secrets.

use super::audit::insert_audit;
use super::{signing_key_row, PostgresStore, SIGNING_KEY_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::model::SigningKey;
use crate::domain::time::Millis;
use crate::store::{StoreError, StoreResult};

/// Serialises signing-key inserts across nodes, so racing first starts make exactly one key
/// and concurrent rotations leave exactly one unretired.
const SIGNING_KEY_LOCK: i64 = 0x6b70_7369_676e_6b79; // "kpsignky"

impl PostgresStore {
    pub(super) async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {SIGNING_KEY_COLS} FROM signing_keys ORDER BY signing_keys.created_at, kid"
        );
        sqlx::query(&sql)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // Taken before any read: under READ COMMITTED, every statement after it sees what the
        // previous holder committed, so the "no unretired key" check and the retirement below
        // cover keys inserted by other nodes a moment ago.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNING_KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        if let Some(at) = retire_others_at {
            sqlx::query("UPDATE signing_keys SET retired_at = kp_ts($1) WHERE retired_at IS NULL")
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        let guard = match retire_others_at {
            Some(_) => "",
            None => " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        };
        let sql = format!(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at) \
             SELECT $1, $2, $3, $4, kp_ts($5), kp_ts($6){guard}"
        );
        let done = sqlx::query(&sql)
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at)
            .bind(key.retired_at)
            .execute(&mut *tx)
            .await?;
        let inserted = done.rows_affected() == 1;
        if inserted {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub(super) async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // ON CONFLICT waits for a racing insert of the same name to commit (or roll back), so
        // the read below always finds the one value every node agrees on.
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, now()) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("server secret {name:?} vanished")))
    }
}

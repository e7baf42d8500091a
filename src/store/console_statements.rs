//! Console session statements, written once for both backends (see `statements.rs` for how
//! these macros work). Only the pruning of ended sessions, a write that may touch any number of
//! rows, is each backend's own (`sqlite/console_sessions.rs`, `postgres/console_sessions.rs`).

macro_rules! console_statements {
    ($store:ty, $row:ty) => {
        const SESSION_COLS: &str = "session_hash, organization_id, admin_key_id, key_hash, \
                                    created_at, last_seen_at, expires_at";

        fn session_row(row: &$row) -> StoreResult<ConsoleSession> {
            use sqlx::Row;
            let hash = |col: &'static str| -> StoreResult<KeyHash> {
                let raw: Vec<u8> = row.try_get(col)?;
                KeyHash::from_slice(&raw).ok_or_else(|| crate::store::rows::corrupt(col))
            };
            let id = |col: &'static str| -> StoreResult<Id> {
                let raw: String = row.try_get(col)?;
                Id::parse(&raw).ok_or_else(|| crate::store::rows::corrupt(col))
            };
            Ok(ConsoleSession {
                hash: hash("session_hash")?,
                organization_id: id("organization_id")?,
                admin_key_id: id("admin_key_id")?,
                key_hash: hash("key_hash")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        impl $store {
            pub(super) async fn insert_console_session(
                &self,
                s: &ConsoleSession,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "INSERT INTO console_sessions (session_hash, organization_id, admin_key_id, \
                     key_hash, created_at, last_seen_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                    args![
                        s.hash.as_bytes(),
                        &s.organization_id,
                        &s.admin_key_id,
                        s.key_hash.as_bytes(),
                        s.created_at,
                        s.last_seen_at,
                        s.expires_at,
                    ],
                    "session exists",
                    audit,
                )
                .await
            }

            pub(super) async fn console_session(
                &self,
                hash: &KeyHash,
            ) -> StoreResult<Option<ConsoleSession>> {
                let sql =
                    format!("SELECT {SESSION_COLS} FROM console_sessions WHERE session_hash = ?");
                self.fetch_opt(&sql, args![hash.as_bytes()], session_row)
                    .await
            }

            /// `Conflict` when the session is gone (ended meanwhile).
            pub(super) async fn touch_console_session(
                &self,
                hash: &KeyHash,
                at: Millis,
            ) -> StoreResult<()> {
                self.update_one(
                    "UPDATE console_sessions SET last_seen_at = ? \
                     WHERE session_hash = ? AND last_seen_at < ?",
                    args![at, hash.as_bytes(), at],
                    "session is gone",
                    &[],
                )
                .await
            }

            /// `Conflict` when there was no such session (nothing is recorded then).
            pub(super) async fn delete_console_session(
                &self,
                hash: &KeyHash,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "DELETE FROM console_sessions WHERE session_hash = ?",
                    args![hash.as_bytes()],
                    "session is gone",
                    audit,
                )
                .await
            }
        }
    };
}

pub(super) use console_statements;

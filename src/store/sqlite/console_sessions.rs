//! Console sessions: the shared statements (`console_statements.rs`) and pruning.

use super::{bind_args, SqliteStore};
use crate::domain::audit::AuditEvent;
use crate::domain::console::ConsoleSession;
use crate::domain::ids::Id;
use crate::domain::keys::KeyHash;
use crate::domain::time::Millis;
use crate::store::binds::args;
use crate::store::StoreResult;

crate::store::console_statements::console_statements!(SqliteStore, sqlx::sqlite::SqliteRow);

impl SqliteStore {
    /// Forgets sessions whose absolute end is before `before`.
    pub(super) async fn prune_console_sessions(&self, before: Millis) -> StoreResult<u64> {
        self.write(before, |conn, before| {
            Box::pin(async move {
                let done = bind_args(
                    sqlx::query("DELETE FROM console_sessions WHERE expires_at < ?"),
                    args![before],
                )
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}

//! Console sessions: the shared statements (`console_statements.rs`) and pruning.

use super::{bind_args, PostgresStore};
use crate::domain::audit::AuditEvent;
use crate::domain::console::ConsoleSession;
use crate::domain::ids::Id;
use crate::domain::keys::KeyHash;
use crate::domain::time::Millis;
use crate::store::binds::args;
use crate::store::StoreResult;

crate::store::console_statements::console_statements!(PostgresStore, sqlx::postgres::PgRow);

impl PostgresStore {
    /// Forgets sessions whose absolute end is before `before`.
    pub(super) async fn prune_console_sessions(&self, before: Millis) -> StoreResult<u64> {
        let done = bind_args(
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1"),
            args![before],
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

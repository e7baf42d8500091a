//! How driver errors become store errors, shared by every sqlx-based backend.

use super::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate("unique constraint")
            }
            // SQLite: SQLITE_BUSY / SQLITE_LOCKED. PostgreSQL: statement timeout or
            // cancellation (57014), server shutting down (57P0x), too many connections (53300),
            // lock timeout (55P03). All transient: callers answer 503 so clients retry.
            sqlx::Error::Database(db)
                if matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "57014" | "57P01" | "57P02" | "57P03" | "53300" | "55P03")
                ) =>
            {
                StoreError::Unavailable(err.into())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.into()),
            _ => StoreError::Other(err.into()),
        }
    }
}

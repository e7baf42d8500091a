//! How driver errors become store errors, shared by every sqlx-based backend.

use super::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate("unique constraint")
            }
            // SQLite's SQLITE_BUSY/SQLITE_LOCKED after the busy timeout: the store is
            // overloaded, not broken; callers answer 503 so clients retry.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
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

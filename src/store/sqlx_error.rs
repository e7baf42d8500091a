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

/// Like the `From` conversion, but names `column` when the unique violation is on it, so the
/// service can tell a taken client id from any other clash.
pub(super) fn duplicate_on(err: sqlx::Error, column: &'static str) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        // PostgreSQL names the constraint (`credentials_client_id_key`); SQLite only says
        // "UNIQUE constraint failed: credentials.client_id" in the message.
        let on_column =
            db.constraint().is_some_and(|c| c.contains(column)) || db.message().contains(column);
        if db.is_unique_violation() && on_column {
            return StoreError::Duplicate(column);
        }
    }
    err.into()
}

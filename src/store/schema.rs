//! Schema versions: both backends carry the same migration version numbers, and a store whose
//! schema is newer than this binary knows is refused rather than misread.

use anyhow::bail;
use sqlx::migrate::{MigrateError, Migrator};

/// The latest version a migrator knows.
pub fn latest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `(version, description)` of every migration, for comparing backends.
pub fn versions(migrator: &Migrator) -> Vec<(i64, String)> {
    migrator
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

/// Refuses a database migrated by a newer keyplane. `applied` is the highest version recorded
/// in the database (`None` for a fresh one).
pub fn check_not_newer(applied: Option<i64>, migrator: &Migrator) -> anyhow::Result<()> {
    let known = latest(migrator);
    match applied {
        Some(v) if v > known => bail!(
            "the database schema is at version {v}, newer than this keyplane understands \
             (up to {known}); run a newer keyplane, or restore a backup taken before the upgrade"
        ),
        _ => Ok(()),
    }
}

/// Turns sqlx's migration errors into messages an operator can act on.
pub fn explain(err: MigrateError) -> anyhow::Error {
    match err {
        MigrateError::VersionMissing(v) => anyhow::anyhow!(
            "the database has migration {v} applied, which this keyplane does not know; \
             it was written by a newer or different build"
        ),
        MigrateError::VersionMismatch(v) => anyhow::anyhow!(
            "migration {v} in the database differs from the one built into this keyplane"
        ),
        other => anyhow::Error::new(other).context("applying migrations"),
    }
}

//! The stores every suite runs against. Each test gets its own empty database.

use std::sync::Arc;

use keyplane::store::{SqliteStore, Store};

pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// Keeps the SQLite directory alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_file(&dir.path().join("keyplane.db"), 4)
            .await
            .unwrap();
        Self {
            store: Arc::new(store),
            dir,
        }
    }
}

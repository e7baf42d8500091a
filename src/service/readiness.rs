//! What `/readyz` and `/metrics` ask of the service: is the store answering, at the schema
//! this build expects, and the current metrics.

use std::time::Duration;

use super::Service;
use crate::metrics;
use crate::store;

/// Longer than this and the store counts as not answering.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready {
        schema_version: i64,
    },
    /// The store answered, at another schema version (a migration is pending or a newer
    /// build migrated it).
    WrongSchema {
        applied: i64,
        expected: i64,
    },
    /// The store did not answer in time or failed.
    StoreUnavailable(String),
}

impl Service {
    pub async fn readiness(&self) -> Readiness {
        let expected = store::schema_version();
        match tokio::time::timeout(READINESS_TIMEOUT, self.store.applied_schema_version()).await {
            Ok(Ok(v)) if v == expected => Readiness::Ready { schema_version: v },
            Ok(Ok(applied)) => Readiness::WrongSchema { applied, expected },
            Ok(Err(e)) => Readiness::StoreUnavailable(e.to_string()),
            Err(_) => Readiness::StoreUnavailable(format!(
                "no answer within {} ms",
                READINESS_TIMEOUT.as_millis()
            )),
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let (hits, negative_hits, misses) = self.cache.lookup_counts();
        let (positive_entries, negative_entries) = self.cache.len();
        let snapshot = metrics::Snapshot {
            cache: metrics::CacheCounts {
                hits,
                negative_hits,
                misses,
                positive_entries,
                negative_entries,
            },
            pools: self
                .store
                .pool_stats()
                .into_iter()
                .map(|p| metrics::PoolGauge {
                    pool: p.pool,
                    size: p.size,
                    idle: p.idle,
                    max: p.max,
                })
                .collect(),
        };
        metrics::render(&self.metrics, &snapshot)
    }
}

//! Prometheus metrics (text format 0.0.4), hand-written: the verification hot path records
//! into pre-allocated, thread-sharded atomics (see [`cells`]), and a scrape renders them.
//!
//! One [`Metrics`] per service, so in-process tests each see their own. A leaf: it uses the
//! domain and nothing else of ours; what a scrape needs from the cache and the store pools
//! arrives as a [`Snapshot`].

pub mod cells;
pub mod http;
mod text;

use cells::{Cells, HISTOGRAM_CELLS};

use crate::domain::outcomes::{ClientFailure, Reason, TokenFailure};

pub use text::render;

/// Each outcome family counts its success first, then every refusal in `ALL` order.
const KEY_CELLS: usize = 1 + Reason::ALL.len();
const TOKEN_CELLS: usize = 1 + TokenFailure::ALL.len();
const GRANT_CELLS: usize = 1 + ClientFailure::ALL.len();

/// What a scrape reads from outside the metrics: handed in by whoever renders, so the metrics
/// depend on nothing but the domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub cache: CacheCounts,
    pub pools: Vec<PoolGauge>,
}

/// The verification cache: lookups since start and entries now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub negative_hits: u64,
    pub misses: u64,
    pub positive_entries: usize,
    pub negative_entries: usize,
}

/// Connections of one database pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGauge {
    pub pool: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

pub struct Metrics {
    pub http: http::HttpMetrics,
    /// Key outcomes, then token outcomes, then grant outcomes.
    outcomes: Cells,
    /// One histogram per store operation, then one error counter per operation.
    store: Cells,
    /// The `operation` label of each store operation, by index.
    store_operations: &'static [&'static str],
}

impl Metrics {
    /// Metrics for a store whose operations are named `store_operations` (the index of a name
    /// is what [`Self::store_call`] takes).
    pub fn new(store_operations: &'static [&'static str]) -> Self {
        Self {
            http: http::HttpMetrics::default(),
            outcomes: Cells::new(KEY_CELLS + TOKEN_CELLS + GRANT_CELLS),
            store: Cells::new(store_operations.len() * (HISTOGRAM_CELLS + 1)),
            store_operations,
        }
    }

    /// A key verification: `None` when valid, else why not.
    #[inline]
    pub fn key_verified(&self, refusal: Option<Reason>) {
        self.outcomes.add(refusal.map_or(0, |r| 1 + r as usize), 1);
    }

    /// An access-token check: `None` when valid, else why not.
    pub fn token_checked(&self, refusal: Option<TokenFailure>) {
        let i = refusal.map_or(0, |r| 1 + r as usize);
        self.outcomes.add(KEY_CELLS + i, 1);
    }

    /// A client-credentials grant: `None` when a token was issued, else why not.
    pub fn token_granted(&self, refusal: Option<ClientFailure>) {
        let i = refusal.map_or(0, |r| 1 + r as usize);
        self.outcomes.add(KEY_CELLS + TOKEN_CELLS + i, 1);
    }

    /// `op` indexes the operation names given to [`Self::new`].
    pub fn store_call(&self, op: usize, micros: u64, failed: bool) {
        self.store.observe(op * HISTOGRAM_CELLS, micros);
        if failed {
            self.store.add(self.store_errors_base() + op, 1);
        }
    }

    fn store_errors_base(&self) -> usize {
        self.store_operations.len() * HISTOGRAM_CELLS
    }
}

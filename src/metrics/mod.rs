//! Prometheus metrics (text format 0.0.4), hand-written: the verification hot path records
//! into pre-allocated, thread-sharded atomics (see [`cells`]), and a scrape renders them.
//!
//! One [`Metrics`] per [`crate::service::Service`], so in-process tests each see their own.

pub mod cells;
pub mod http;
mod text;

use cells::{Cells, HISTOGRAM_CELLS};

pub use text::render;

/// Outcomes of key verification (`/v1/auth/check`, `/v1/keys/verify`), by reason.
pub const KEY_OUTCOMES: [&str; 6] = [
    "valid",
    "unknown",
    "malformed",
    "expired",
    "revoked",
    "project_archived",
];

/// Outcomes of access-token checks (auth/check, keys/verify and Keycard callers), by reason.
pub const TOKEN_OUTCOMES: [&str; 10] = [
    "valid",
    "malformed",
    "unknown_signing_key",
    "bad_signature",
    "wrong_issuer",
    "wrong_audience",
    "expired",
    "credential_deleted",
    "account_deleted",
    "project_archived",
];

/// Outcomes of the client-credentials grant.
pub const GRANT_OUTCOMES: [&str; 4] = [
    "issued",
    "unknown_client",
    "wrong_secret",
    "account_deleted",
];

pub struct Metrics {
    pub http: http::HttpMetrics,
    /// Key outcomes, then token outcomes, then grant outcomes.
    outcomes: Cells,
    /// One histogram per store operation, then one error counter per operation.
    store: Cells,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http: http::HttpMetrics::default(),
            outcomes: Cells::new(KEY_OUTCOMES.len() + TOKEN_OUTCOMES.len() + GRANT_OUTCOMES.len()),
            store: Cells::new(crate::store::metered::OPERATIONS.len() * (HISTOGRAM_CELLS + 1)),
        }
    }
}

impl Metrics {
    /// `outcome` indexes [`KEY_OUTCOMES`].
    #[inline]
    pub fn key_verified(&self, outcome: usize) {
        self.outcomes.add(outcome, 1);
    }

    /// `outcome` indexes [`TOKEN_OUTCOMES`].
    pub fn token_checked(&self, outcome: usize) {
        self.outcomes.add(KEY_OUTCOMES.len() + outcome, 1);
    }

    /// `outcome` indexes [`GRANT_OUTCOMES`].
    pub fn token_granted(&self, outcome: usize) {
        self.outcomes
            .add(KEY_OUTCOMES.len() + TOKEN_OUTCOMES.len() + outcome, 1);
    }

    /// `op` indexes [`crate::store::metered::OPERATIONS`].
    pub fn store_call(&self, op: usize, micros: u64, failed: bool) {
        self.store.observe(op * HISTOGRAM_CELLS, micros);
        if failed {
            self.store.add(self.store_errors_base() + op, 1);
        }
    }

    fn store_errors_base(&self) -> usize {
        crate::store::metered::OPERATIONS.len() * HISTOGRAM_CELLS
    }
}

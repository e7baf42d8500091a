//! Admission: per-key and per-project × model rate limits, counted in memory.
//!
//! # Windows
//!
//! * Requests and tokens per minute: a sliding window of 60 one-second buckets. At any time
//!   the window holds the current second and the 59 before it, so any 60 consecutive whole
//!   seconds admit at most the limit: no fixed-window edge admitting twice the limit, no
//!   GCRA-style burst on top of it. Precision is one second (the oldest bucket counts whole
//!   until the second it leaves).
//! * Requests per day: a sliding 24 h window of 288 five-minute buckets.
//! * Tokens are post-paid: [`Admission::add_tokens`] reports them after the fact, and a request
//!   is refused while the window's tokens are at or over the limit.
//!
//! A request is admitted only if every window of every subject it names has room, and then
//! counts against all of them; a refused request counts nowhere. Each window keeps a running
//! sum and expires buckets lazily, so a decision is O(1) (see `ring.rs`); subjects live in a
//! sharded table looked up without allocating (see `table.rs`).
//!
//! # Several nodes
//!
//! Each node counts its own admissions exactly, per bucket, and every sync round
//! ([`Admission::sync`]) pushes its absolute per-bucket counts (only the buckets that changed)
//! and pulls the other nodes' since its cursor; a pulled value replaces that node's previous
//! value of the bucket. A node decides on its own exact counts plus the others' as of its
//! last pull.
//!
//! **Error bound.** Let node A admit at time `t` the last request counted in some window, and
//! let `U_A(t)` be what the other nodes admitted (in that window) that A has not pulled yet:
//! what they admitted after their last push that A's last pull saw. A saw `true − U_A(t)` and
//! admitted only if that was below the limit `N`, so the window holds at most
//! `N + U_A(t)`. With a sync every `P` and a store round trip `L`, A's last pull is at most
//! `P` old and the pushes it saw at most `P + L` older, so `U_A(t)` is bounded by what the
//! other nodes admit in `2P + L`: at a cluster rate `r` spread over `k` nodes, about
//! `r · (k−1)/k · (2P + L)`. A node that cannot sync stops admitting once its last success is
//! older than `stale_after` (fail closed, below), so with failing syncs the bound is what the
//! others admit in `2 · stale_after + L`. Refusals are never spurious from sync lag: counts
//! only go missing, never double (values replace, and a node never pulls its own).
//!
//! Counts from an earlier run of this node arrive under that run's node id, as another node's:
//! they are; each run of the process is a new node.
//!
//! # Fail closed
//!
//! On a shared store ([`AdmissionSettings::shared`]), a decision that involves any limit
//! answers [`Decision::Unavailable`] (the caller answers 503) while this node's last
//! successful sync or load is older than `stale_after_ms`, and before the first one. A
//! single-node store has nothing to sync and is never stale.
//!
//! # Locking
//!
//! A decision locks the shards of its subjects in ascending shard order, each once, checks
//! every window of every subject, and only then counts: all or nothing, atomically, and
//! deadlock-free whatever order callers list subjects in (callers list the key before the
//! project × model). Sync takes each shard lock briefly; it never holds one across an await.

mod decide;
mod duration;
mod ring;
mod sync;
mod table;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sync;

use std::sync::atomic::{AtomicI64, Ordering};

pub use duration::{openai_duration, write_openai_duration};
pub use sync::CountStore;

/// What a limit applies to. Borrowed, so that checking a tracked subject allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectRef<'a> {
    /// An API key, by id.
    Key(&'a str),
    /// One model within one project.
    ProjectModel { project: &'a str, model: &'a str },
}

/// The limits of one subject (`None`: not limited).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: Option<i64>,
    pub requests_per_day: Option<i64>,
    pub tokens_per_minute: Option<i64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    RequestsPerMinute,
    RequestsPerDay,
    TokensPerMinute,
}

/// One window's standing, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge {
    pub limit: i64,
    pub remaining: i64,
    /// Milliseconds until the window is empty again ("resets to its initial state").
    pub reset_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `requests`: the most constraining request window (least remaining after this request;
    /// ties: the smaller limit) over all subjects; `tokens` likewise among token windows.
    /// `None` if no such limit applies.
    Admitted {
        requests: Option<Gauge>,
        tokens: Option<Gauge>,
    },
    /// `subject` indexes the caller's `checks`. When several windows refuse, the one that
    /// stays full longest is named: only after its `retry_after_ms` can a retry succeed.
    Refused {
        subject: usize,
        window: Window,
        limit: i64,
        retry_after_ms: i64,
    },
    /// The counts may be stale (see "Fail closed"): the caller answers 503.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// The store is shared by several nodes: counts are synced, and go stale.
    pub shared: bool,
    /// How old the last successful sync may be before decisions fail closed.
    pub stale_after_ms: i64,
}

/// One node's admission counts. `Send + Sync`: request handlers share one through an `Arc`.
pub struct Admission {
    node: String,
    settings: AdmissionSettings,
    table: table::Table,
    /// When the last sync (or load) succeeded, by the caller's clock; `i64::MIN`: never.
    last_sync_ms: AtomicI64,
    sync: tokio::sync::Mutex<sync::SyncState>,
}

impl Admission {
    /// `node` names this process in the stored counts: a fresh random id per start.
    pub fn new(node: String, settings: AdmissionSettings) -> Self {
        Self {
            node,
            settings,
            table: table::Table::new(),
            last_sync_ms: AtomicI64::new(i64::MIN),
            sync: tokio::sync::Mutex::new(sync::SyncState::default()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Subjects currently held in memory.
    pub fn tracked_subjects(&self) -> usize {
        self.table.len()
    }

    /// Whether decisions must fail closed at `now_ms`.
    fn stale(&self, now_ms: i64) -> bool {
        if !self.settings.shared {
            return false;
        }
        let last = self.last_sync_ms.load(Ordering::Acquire);
        last == i64::MIN || now_ms.saturating_sub(last) > self.settings.stale_after_ms
    }

    fn synced_at(&self, now_ms: i64) {
        self.last_sync_ms.fetch_max(now_ms, Ordering::AcqRel);
    }
}

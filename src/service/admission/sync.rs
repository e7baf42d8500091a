//! Sharing counts between nodes through the store: push own buckets, pull the others'.
//!
//! The other nodes' values are remembered per (node, subject, span, bucket) together with the
//! bucket they were applied to, so that a later value of the same bucket replaces the earlier
//! one exactly (the store holds absolute counts; adding them up would double count).

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::time::Millis;
use crate::store::{Count, CountsCursor, Store, StoreResult};

use super::ring::{DayRing, MinuteRing, FIVE_MINUTES_MS, REQUESTS, SECOND_MS, TOKENS};
use super::table::{Table, SHARDS};
use super::{Admission, SubjectRef};

/// Rows kept in the store beyond their window, so that a node whose clock lags a little
/// still finds the counts it needs.
const PRUNE_SLACK_MS: i64 = 60_000;

/// The three store methods sync uses. Every [`Store`] is one; tests use a small fake.
#[async_trait]
pub trait CountStore: Send + Sync {
    async fn push_counts(&self, counts: &[Count]) -> StoreResult<()>;
    async fn pull_counts(
        &self,
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)>;
    async fn prune_counts(&self, span: Millis, before: Millis) -> StoreResult<u64>;
}

#[async_trait]
impl<S: Store + ?Sized> CountStore for S {
    async fn push_counts(&self, counts: &[Count]) -> StoreResult<()> {
        Store::push_counts(self, counts).await
    }

    async fn pull_counts(
        &self,
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)> {
        Store::pull_counts(self, node, after, not_before).await
    }

    async fn prune_counts(&self, span: Millis, before: Millis) -> StoreResult<u64> {
        Store::prune_counts(self, span, before).await
    }
}

/// Sync's own state, behind an async mutex: one round at a time (two concurrent pushes of
/// one node could land in either order and leave an older absolute value in the store).
#[derive(Default)]
pub(super) struct SyncState {
    cursor: Option<CountsCursor>,
    /// Node ids, interned: one entry per process start of any node, a few bytes each.
    nodes: HashMap<String, u32>,
    remote: HashMap<RemoteKey, Applied>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RemoteKey {
    node: u32,
    subject: String,
    span: i64,
    bucket: i64,
}

/// Another node's last value of a bucket, and the bucket it was applied to (`None`: it had
/// already left the window).
#[derive(Debug, Clone, Copy)]
struct Applied {
    requests: i64,
    tokens: i64,
    at: Option<i64>,
}

/// A range of own buckets taken for a push, handed back if the push fails.
struct Taken {
    subject: Box<str>,
    day: bool,
    from: i64,
}

impl SyncState {
    fn intern(&mut self, node: String) -> u32 {
        let next = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        *self.nodes.entry(node).or_insert(next)
    }
}

impl Admission {
    /// One sync round: pushes this node's changed buckets (absolute values), pulls the other
    /// nodes' counts since the cursor and merges them (a node's value of a bucket replaces its
    /// previous one), then records the success. A failed push leaves the buckets to push
    /// again next round.
    pub async fn sync(&self, store: &dyn Store, now_ms: i64) -> StoreResult<()> {
        self.sync_with(store, now_ms).await
    }

    /// First load at start: every count of the other nodes (earlier runs of this one
    /// included) young enough to matter to the day window.
    pub async fn load(&self, store: &dyn Store, now_ms: i64) -> StoreResult<()> {
        self.load_from(store, now_ms).await
    }

    /// Drops subjects whose windows are empty (nothing to decide on, nothing to push) and
    /// other nodes' values that left their windows; asks the store to delete rows older than
    /// any window. Costs a walk over every subject: call it rarely (every few minutes).
    pub async fn prune(&self, store: &dyn Store, now_ms: i64) -> StoreResult<()> {
        self.prune_with(store, now_ms).await
    }

    /// [`Admission::sync`] against any [`CountStore`].
    pub async fn sync_with<C: CountStore + ?Sized>(
        &self,
        store: &C,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut state = self.sync.lock().await;
        let (rows, taken) = self.take_dirty();
        if !rows.is_empty() {
            if let Err(e) = store.push_counts(&rows).await {
                self.give_back(taken);
                return Err(e);
            }
        }
        self.pull(&mut state, store, now_ms).await?;
        self.synced_at(now_ms);
        Ok(())
    }

    /// [`Admission::load`] against any [`CountStore`].
    pub async fn load_from<C: CountStore + ?Sized>(
        &self,
        store: &C,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut state = self.sync.lock().await;
        // From scratch: merging replaces values, so pulling again what is known is harmless.
        state.cursor = None;
        self.pull(&mut state, store, now_ms).await?;
        self.synced_at(now_ms);
        Ok(())
    }

    /// [`Admission::prune`] against any [`CountStore`].
    pub async fn prune_with<C: CountStore + ?Sized>(
        &self,
        store: &C,
        now_ms: i64,
    ) -> StoreResult<()> {
        {
            // Holding the sync lock: merges rely on a subject holding what was applied to it,
            // so none may be dropped while a round is between reading and applying.
            let mut state = self.sync.lock().await;
            for shard in 0..SHARDS {
                self.table.lock(shard).table.retain(|s| {
                    s.advance(now_ms);
                    !s.is_empty()
                });
            }
            let minute = MinuteRing::bucket(now_ms) - MinuteRing::WINDOW_MS / SECOND_MS;
            let day = DayRing::bucket(now_ms) - DayRing::WINDOW_MS / FIVE_MINUTES_MS;
            state.remote.retain(|key, applied| {
                let oldest_gone = if key.span == SECOND_MS { minute } else { day };
                let live = applied.requests != 0 || applied.tokens != 0;
                live && applied.at.is_some_and(|at| at > oldest_gone)
            });
        }
        store
            .prune_counts(SECOND_MS, now_ms - MinuteRing::WINDOW_MS - PRUNE_SLACK_MS)
            .await?;
        store
            .prune_counts(
                FIVE_MINUTES_MS,
                now_ms - DayRing::WINDOW_MS - FIVE_MINUTES_MS - PRUNE_SLACK_MS,
            )
            .await?;
        Ok(())
    }

    async fn pull<C: CountStore + ?Sized>(
        &self,
        state: &mut SyncState,
        store: &C,
        now_ms: i64,
    ) -> StoreResult<()> {
        // The oldest bucket any window can still hold, with one bucket to spare.
        let not_before = now_ms - DayRing::WINDOW_MS - FIVE_MINUTES_MS;
        let (rows, cursor) = store
            .pull_counts(&self.node, state.cursor, not_before)
            .await?;
        for row in rows {
            self.merge(state, row, now_ms);
        }
        state.cursor = Some(cursor);
        Ok(())
    }

    /// Applies another node's absolute count of one bucket, replacing its previous value.
    fn merge(&self, state: &mut SyncState, row: Count, now_ms: i64) {
        // The store never hands back this node's own rows; counting them twice would be
        // wrong, so make sure.
        if row.node == self.node || (row.span != SECOND_MS && row.span != FIVE_MINUTES_MS) {
            return;
        }
        let key = RemoteKey {
            node: state.intern(row.node),
            subject: row.subject,
            span: row.span,
            bucket: row.bucket.div_euclid(row.span),
        };
        let old = state.remote.get(&key).copied();
        if old.is_some_and(|o| o.requests == row.requests && o.tokens == row.tokens) {
            return;
        }
        let Some(subject) = SubjectRef::parse(&key.subject) else {
            return;
        };
        let hash = self.table.hash(subject);
        let mut shard = self.table.lock(Table::shard_of(hash));
        let tracked = shard.get(hash, subject).is_some();
        if !tracked && row.requests == 0 && row.tokens == 0 {
            return;
        }
        let state_of = shard.get_or_insert(hash, subject, now_ms);
        state_of.advance(now_ms);
        // A subject made just now holds nothing of the old value to take back.
        let old = old.filter(|_| tracked).and_then(|o| o.at.map(|at| (at, o)));
        let at = if key.span == SECOND_MS {
            let minute = &mut state_of.minute;
            let at = minute.replace_remote(
                REQUESTS,
                old.map(|(at, o)| (at, o.requests)),
                key.bucket,
                row.requests,
            );
            minute.replace_remote(
                TOKENS,
                old.map(|(at, o)| (at, o.tokens)),
                key.bucket,
                row.tokens,
            );
            at
        } else {
            let day = match state_of.day.as_deref_mut() {
                Some(day) => Some(day),
                None if row.requests == 0 => None,
                None => Some(&mut **state_of.day.insert(Box::new(DayRing::new(now_ms)))),
            };
            day.and_then(|day| {
                day.replace_remote(
                    REQUESTS,
                    old.map(|(at, o)| (at, o.requests)),
                    key.bucket,
                    row.requests,
                )
            })
        };
        drop(shard);
        let applied = Applied {
            requests: row.requests,
            tokens: row.tokens,
            at,
        };
        state.remote.insert(key, applied);
    }

    /// This node's changed buckets as rows to push (zeros left out: local counts only grow
    /// within a bucket, so a zero was never pushed as anything else), each range marked
    /// pushed.
    fn take_dirty(&self) -> (Vec<Count>, Vec<Taken>) {
        let mut rows = Vec::new();
        let mut taken = Vec::new();
        for shard in 0..SHARDS {
            let mut shard = self.table.lock(shard);
            for s in shard.table.iter_mut() {
                if let Some((from, to)) = s.minute.take_dirty() {
                    for n in from..=to {
                        let [requests, tokens] = s.minute.local(n);
                        if requests != 0 || tokens != 0 {
                            rows.push(self.row(&s.name, n, SECOND_MS, requests, tokens));
                        }
                    }
                    taken.push(Taken {
                        subject: s.name.clone(),
                        day: false,
                        from,
                    });
                }
                if let Some(day) = s.day.as_deref_mut() {
                    if let Some((from, to)) = day.take_dirty() {
                        for n in from..=to {
                            let [requests] = day.local(n);
                            if requests != 0 {
                                rows.push(self.row(&s.name, n, FIVE_MINUTES_MS, requests, 0));
                            }
                        }
                        taken.push(Taken {
                            subject: s.name.clone(),
                            day: true,
                            from,
                        });
                    }
                }
            }
        }
        (rows, taken)
    }

    fn row(&self, subject: &str, bucket: i64, span: i64, requests: i64, tokens: i64) -> Count {
        Count {
            node: self.node.clone(),
            subject: subject.to_owned(),
            bucket: bucket * span,
            span,
            requests,
            tokens,
        }
    }

    /// Marks taken ranges to push again (after a failed push).
    fn give_back(&self, taken: Vec<Taken>) {
        for t in taken {
            let Some(subject) = SubjectRef::parse(&t.subject) else {
                continue;
            };
            let hash = self.table.hash(subject);
            let mut shard = self.table.lock(Table::shard_of(hash));
            // Still there: only prune drops subjects, and it waits for the sync lock.
            if let Some(s) = shard.get(hash, subject) {
                if t.day {
                    if let Some(day) = s.day.as_deref_mut() {
                        day.mark_dirty(t.from);
                    }
                } else {
                    s.minute.mark_dirty(t.from);
                }
            }
        }
    }
}

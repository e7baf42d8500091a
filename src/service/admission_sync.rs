//! The task that shares this node's rate-limit counts with the other nodes of a PostgreSQL
//! store and reads theirs: every [`SYNC_INTERVAL`], one push and one pull. It holds only weak
//! references, so it ends when the service (and its store) is dropped.

use std::sync::Weak;
use std::time::Duration;

use super::admission::Admission;
use crate::domain::time::Clock;
use crate::store::Store;

/// How often nodes sharing a store exchange counts. The multi-node error bound (README,
/// "Admission control") is what the other nodes admit within one interval plus a sync's round
/// trip.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// How often a single node writes its counts: only for restarts (nothing else reads them),
/// so a crash loses at most this much. Every write is an upsert per counted subject and window,
/// which with thousands of limited keys busy at once was a tenth of the server's CPU at 200 ms.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(1);
/// How often old counts are deleted from the store: every few minutes.
const PRUNE_AFTER: Duration = Duration::from_secs(60);

/// A fresh id per process start: counts of an earlier run of this node are then simply another
/// node's, which is what they are (they still count until their windows pass).
pub fn node_id() -> String {
    match crate::domain::ids::Id::generate() {
        Ok(id) => id.as_str().to_owned(),
        // Without the CSPRNG nothing else starts either; the pid and the time keep nodes apart.
        Err(_) => format!("p{}-{}", std::process::id(), Clock::system().now()),
    }
}

/// Syncs (or, on a single-node store, persists) every `interval` until the service is gone.
pub async fn run(
    admission: Weak<Admission>,
    store: Weak<dyn Store>,
    clock: Clock,
    interval: Duration,
) {
    let prune_every = (PRUNE_AFTER.as_millis() / interval.as_millis().max(1)).max(1) as u32;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded = false;
    let mut rounds: u32 = 0;
    loop {
        tick.tick().await;
        let (Some(admission), Some(store)) = (admission.upgrade(), store.upgrade()) else {
            return;
        };
        let now = clock.now();
        if !loaded {
            match admission.load(store.as_ref(), now).await {
                Ok(()) => loaded = true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load shared rate-limit counts; will retry");
                    continue;
                }
            }
        }
        if let Err(e) = admission.sync(store.as_ref(), now).await {
            tracing::warn!(error = %e, "could not share rate-limit counts; will retry");
        }
        rounds = rounds.wrapping_add(1);
        if rounds % prune_every == 0 {
            if let Err(e) = admission.prune(store.as_ref(), now).await {
                tracing::warn!(error = %e, "could not prune old rate-limit counts");
            }
        }
    }
}

//! Keeps a node's verification cache in step with the other nodes: applies the store's change
//! feed to it, and fails closed when the feed is gone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;

use super::key_cache::KeyCache;
use crate::store::StoreEvent;

/// How long to wait before starting a new change feed after one ended unexpectedly.
const FEED_RESTART: Duration = Duration::from_millis(200);

/// Applies a multi-node store's change feed to the cache. Fails closed: if the feed ends
/// for any reason but a deliberate close (its task panicked, or stopped), the cache is
/// distrusted at once and a new feed is started; trust returns only with that feed's
/// `Resynced`.
pub(super) async fn follow(
    mut events: Receiver<StoreEvent>,
    resubscribe: impl Fn() -> Option<Receiver<StoreEvent>>,
    cache: Arc<KeyCache>,
) {
    loop {
        while let Some(event) = events.recv().await {
            match event {
                StoreEvent::Changed(change) => cache.invalidate(&change),
                StoreEvent::Disconnected => cache.distrust(),
                StoreEvent::Resynced => cache.resync(),
                StoreEvent::Closed => {
                    cache.distrust();
                    return;
                }
            }
        }
        cache.distrust();
        tracing::warn!("change feed ended unexpectedly; cache untrusted until a new feed resyncs");
        tokio::time::sleep(FEED_RESTART).await;
        match resubscribe() {
            Some(next) => events = next,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::mpsc;

    use super::*;
    use crate::service::key_cache::CacheSettings;

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition never held");
    }

    #[tokio::test]
    async fn a_feed_that_ends_unexpectedly_is_replaced_and_the_cache_distrusted_meanwhile() {
        let cache = Arc::new(KeyCache::new(CacheSettings::default(), false));
        let (first_tx, first_rx) = mpsc::channel(8);
        let (second_tx, second_rx) = mpsc::channel(8);
        let spare = Mutex::new(Some(second_rx));
        let resubscribed = Arc::new(Mutex::new(0));
        let count = resubscribed.clone();
        let resubscribe = move || {
            *count.lock().unwrap() += 1;
            spare.lock().unwrap().take()
        };
        let task = tokio::spawn(follow(first_rx, resubscribe, cache.clone()));

        first_tx.send(StoreEvent::Resynced).await.unwrap();
        until(|| cache.is_trusted()).await;
        // The feed's task ends without a word (as when it panics).
        drop(first_tx);
        until(|| !cache.is_trusted()).await;
        until(|| *resubscribed.lock().unwrap() == 1).await;
        assert!(!cache.is_trusted(), "no trust before the new feed resyncs");
        second_tx.send(StoreEvent::Resynced).await.unwrap();
        until(|| cache.is_trusted()).await;
        // A deliberate close ends the follower for good, untrusted.
        second_tx.send(StoreEvent::Closed).await.unwrap();
        task.await.unwrap();
        assert!(!cache.is_trusted());
        assert_eq!(*resubscribed.lock().unwrap(), 1);
    }
}

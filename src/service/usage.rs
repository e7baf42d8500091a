//! `last_used_at`, kept off the request path: verifications note the time in memory, and a
//! background flush writes the batch. At most one write per key per minute; the store applies
//! them with `max`, so batches from several nodes lose nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::ids::Id;
use crate::domain::time::Millis;

pub const WRITE_INTERVAL: Millis = 60_000;

#[derive(Default)]
pub struct UsageTracker {
    inner: Mutex<Usage>,
}

#[derive(Default)]
struct Usage {
    /// Uses not written yet: the latest per key.
    pending: HashMap<Id, Millis>,
    /// When each key's use was last handed to the store, to skip keys written this minute.
    written: HashMap<Id, Millis>,
}

impl UsageTracker {
    pub fn touch(&self, key: &Id, now: Millis) {
        let mut u = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if u.written.get(key).is_some_and(|w| now - w < WRITE_INTERVAL) {
            return;
        }
        // `get_mut` first: the common case (already pending) must not allocate.
        match u.pending.get_mut(key) {
            Some(t) => *t = (*t).max(now),
            None => {
                u.pending.insert(key.clone(), now);
            }
        }
    }

    /// The batch to write now.
    pub fn take(&self, now: Millis) -> Vec<(Id, Millis)> {
        let mut u = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        u.written.retain(|_, w| now - *w < WRITE_INTERVAL);
        let batch: Vec<(Id, Millis)> = u.pending.drain().collect();
        for (id, at) in &batch {
            u.written.insert(id.clone(), *at);
        }
        batch
    }

    /// A batch the store did not take goes back, so nothing is lost.
    pub fn restore(&self, batch: Vec<(Id, Millis)>) {
        let mut u = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (id, at) in batch {
            u.written.remove(&id);
            let t = u.pending.entry(id).or_insert(at);
            *t = (*t).max(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_write_per_key_per_minute() {
        let t = UsageTracker::default();
        let k = Id::parse("aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        t.touch(&k, 1_000);
        t.touch(&k, 2_000);
        assert_eq!(t.take(2_500), vec![(k.clone(), 2_000)]);
        t.touch(&k, 30_000);
        assert!(t.take(30_500).is_empty(), "written less than a minute ago");
        t.touch(&k, 62_000);
        assert_eq!(t.take(62_500), vec![(k.clone(), 62_000)]);
    }

    #[test]
    fn a_failed_batch_is_kept() {
        let t = UsageTracker::default();
        let k = Id::parse("aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        t.touch(&k, 1_000);
        let batch = t.take(1_000);
        t.restore(batch);
        assert_eq!(t.take(1_500), vec![(k, 1_000)]);
    }
}

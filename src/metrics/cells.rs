//! Counters and histograms for hot paths: plain atomics, sharded by thread.
//!
//! Two worker threads bumping one shared counter make its cache line bounce between cores on
//! every request; each thread instead adds to its own shard (a separate allocation), and a
//! scrape sums the shards. No locks and no allocation when recording.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Enough for the worker threads of a small machine; more threads share shards, which is
/// still correct, only less contention-free.
const SHARDS: usize = 8;

/// Upper bounds (microseconds) of the latency buckets, shared by every histogram.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Cells of one histogram: count, sum (µs), then one per bucket (not cumulative).
pub const HISTOGRAM_CELLS: usize = 2 + LATENCY_BOUNDS_US.len();

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

/// A fixed number of u64 cells, sharded.
pub struct Cells {
    shards: Box<[Box<[AtomicU64]>]>,
}

impl Cells {
    pub fn new(len: usize) -> Self {
        // A cache line of unused cells after each shard: two shards' cells never share a line,
        // wherever the allocator puts them.
        let padded = len + 64 / std::mem::size_of::<AtomicU64>();
        Self {
            shards: (0..SHARDS)
                .map(|_| (0..padded).map(|_| AtomicU64::new(0)).collect())
                .collect(),
        }
    }

    #[inline]
    pub fn add(&self, cell: usize, n: u64) {
        if let Some(c) = self.shards[shard_index()].get(cell) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total of one cell over every shard.
    pub fn get(&self, cell: usize) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.get(cell))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Records one latency in the histogram whose cells start at `base`.
    #[inline]
    pub fn observe(&self, base: usize, micros: u64) {
        let shard = &self.shards[shard_index()];
        let Some(h) = shard.get(base..base + HISTOGRAM_CELLS) else {
            return;
        };
        h[0].fetch_add(1, Ordering::Relaxed);
        h[1].fetch_add(micros, Ordering::Relaxed);
        if let Some(b) = LATENCY_BOUNDS_US.iter().position(|&le| micros <= le) {
            h[2 + b].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The histogram at `base`, summed over shards.
    pub fn histogram(&self, base: usize) -> Histogram {
        let mut buckets = [0u64; LATENCY_BOUNDS_US.len()];
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = self.get(base + 2 + i);
        }
        Histogram {
            count: self.get(base),
            sum_us: self.get(base + 1),
            buckets,
        }
    }
}

/// A snapshot of one histogram (buckets not cumulative).
pub struct Histogram {
    pub count: u64,
    pub sum_us: u64,
    pub buckets: [u64; LATENCY_BOUNDS_US.len()],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up_and_buckets_take_the_first_bound_not_below() {
        let c = Cells::new(HISTOGRAM_CELLS * 2);
        let base = HISTOGRAM_CELLS;
        c.observe(base, 100);
        c.observe(base, 101);
        std::thread::scope(|s| {
            s.spawn(|| c.observe(base, 20_000_000));
        });
        let h = c.histogram(base);
        assert_eq!((h.count, h.sum_us), (3, 20_000_201));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(
            h.buckets.iter().sum::<u64>(),
            2,
            "above the last bound: only +Inf"
        );
        assert_eq!(c.histogram(0).count, 0);
    }
}

//! One sliding window: a ring of `B` buckets of `W` milliseconds, with running sums.
//!
//! Each bucket holds this node's own count (`local`, what it pushes) and the total over all
//! nodes (`total` = local + the other nodes' last pulled values, what it decides on). The sums
//! of `total` over the window are kept up to date on every change, and buckets are expired
//! lazily when the ring is next touched (`advance`), so a decision reads one number per window
//! instead of adding up 60 or 288 buckets. `advance` costs one step per elapsed bucket, at most
//! `B` after a long idle spell, so the work per request is O(1) amortised.
//!
//! Buckets are named by their number `n` (start `n * W` ms); the slot of bucket `n` is
//! `n mod B`. The window at bucket `head` holds buckets `head - B + 1 ..= head`.

/// Index of the requests series in every ring.
pub(super) const REQUESTS: usize = 0;
/// Index of the tokens series (minute rings only).
pub(super) const TOKENS: usize = 1;

/// Bucket width of the per-minute windows: one second, so the window slides by the second.
pub(super) const SECOND_MS: i64 = 1_000;
/// Bucket width of the per-day window: 288 buckets of five minutes make 24 hours.
pub(super) const FIVE_MINUTES_MS: i64 = 300_000;

/// Requests and tokens per minute: 60 one-second buckets.
pub(super) type MinuteRing = Ring<60, SECOND_MS, 2>;
/// Requests per day: 288 five-minute buckets (tokens per day are not limited, so not kept).
pub(super) type DayRing = Ring<288, FIVE_MINUTES_MS, 1>;

/// `dirty_from` when nothing waits to be pushed.
const CLEAN: i64 = i64::MAX;

#[derive(Clone)]
pub(super) struct Series<const B: usize> {
    /// Sum of `total` over the window.
    sum: i64,
    /// The newest bucket that received a positive count: the window is empty again once it
    /// leaves (for the reset gauge). May point at a bucket since emptied; then the reset is
    /// merely an overestimate.
    newest: i64,
    local: [i64; B],
    total: [i64; B],
}

impl<const B: usize> Series<B> {
    const EMPTY: Self = Self {
        sum: 0,
        newest: i64::MIN,
        local: [0; B],
        total: [0; B],
    };

    fn clear(&mut self) {
        *self = Self::EMPTY;
    }
}

pub(super) struct Ring<const B: usize, const W: i64, const S: usize> {
    /// The bucket the ring has been advanced to (never moves back).
    head: i64,
    /// Lowest bucket whose local count changed since the last push (`CLEAN`: none). Local
    /// counts only ever change in the head bucket, so what waits is `dirty_from ..= head`.
    dirty_from: i64,
    series: [Series<B>; S],
}

impl<const B: usize, const W: i64, const S: usize> Ring<B, W, S> {
    /// Buckets per window, as a bucket-number distance.
    const SPAN: i64 = B as i64;
    /// Length of the whole window.
    pub(super) const WINDOW_MS: i64 = W * B as i64;

    pub(super) fn new(now_ms: i64) -> Self {
        Self {
            head: Self::bucket(now_ms),
            dirty_from: CLEAN,
            series: [Series::EMPTY; S],
        }
    }

    pub(super) fn bucket(ms: i64) -> i64 {
        ms.div_euclid(W)
    }

    fn slot(bucket: i64) -> usize {
        // rem_euclid of a positive B is in 0..B, so the cast is lossless.
        bucket.rem_euclid(Self::SPAN) as usize
    }

    /// Whether bucket `n` is inside the current window.
    fn in_window(&self, n: i64) -> bool {
        n <= self.head && n > self.head - Self::SPAN
    }

    /// Expires the buckets that left the window by `now_ms`. A `now_ms` behind the head (a
    /// thread that read the clock a little earlier) changes nothing: the ring never moves back.
    pub(super) fn advance(&mut self, now_ms: i64) {
        let to = Self::bucket(now_ms);
        if to <= self.head {
            return;
        }
        if to - self.head >= Self::SPAN {
            self.series.iter_mut().for_each(Series::clear);
        } else {
            for n in self.head + 1..=to {
                let slot = Self::slot(n);
                for s in &mut self.series {
                    s.sum -= s.total[slot];
                    s.total[slot] = 0;
                    s.local[slot] = 0;
                }
            }
        }
        self.head = to;
        // What waited to be pushed but left the window no longer matters to anyone.
        if self.dirty_from != CLEAN {
            self.dirty_from = self.dirty_from.max(to - Self::SPAN + 1);
        }
    }

    /// The window's total of series `s` (call `advance` first).
    pub(super) fn used(&self, s: usize) -> i64 {
        self.series[s].sum
    }

    /// Counts `amount` of this node's own in the current bucket (or the head, if `now_ms` is
    /// behind it: counting late is conservative, counting in an expired bucket would not be).
    pub(super) fn add_local(&mut self, now_ms: i64, s: usize, amount: i64) {
        self.advance(now_ms);
        self.add_local_at_head(s, amount);
    }

    /// [`Self::add_local`] for a ring already advanced to now (a decision advances every ring
    /// it reads before it counts).
    pub(super) fn add_local_at_head(&mut self, s: usize, amount: i64) {
        let slot = Self::slot(self.head);
        let series = &mut self.series[s];
        series.local[slot] = series.local[slot].saturating_add(amount);
        series.total[slot] = series.total[slot].saturating_add(amount);
        series.sum = series.sum.saturating_add(amount);
        series.newest = self.head;
        self.dirty_from = self.dirty_from.min(self.head);
    }

    /// Replaces another node's contribution to one bucket: removes `old` (its value and the
    /// bucket it was applied to) and applies `value` of bucket `bucket`. Returns where the new
    /// value was applied, `None` if that bucket already left the window. A bucket ahead of the
    /// head (the other node's clock runs ahead) is applied to the head. Call `advance` first.
    pub(super) fn replace_remote(
        &mut self,
        s: usize,
        old: Option<(i64, i64)>,
        bucket: i64,
        value: i64,
    ) -> Option<i64> {
        let head = self.head;
        let in_window = |n: i64| n <= head && n > head - Self::SPAN;
        let series = &mut self.series[s];
        if let Some((at, old_value)) = old {
            if in_window(at) {
                let slot = Self::slot(at);
                series.total[slot] -= old_value;
                series.sum -= old_value;
            }
        }
        let at = bucket.min(head);
        if !in_window(at) {
            return None;
        }
        let slot = Self::slot(at);
        series.total[slot] = series.total[slot].saturating_add(value);
        series.sum = series.sum.saturating_add(value);
        if value > 0 {
            series.newest = series.newest.max(at);
        }
        Some(at)
    }

    /// Milliseconds until series `s` is empty (0 if it is).
    pub(super) fn reset_ms(&self, s: usize, now_ms: i64) -> i64 {
        let series = &self.series[s];
        if series.sum <= 0 || series.newest == i64::MIN {
            return 0;
        }
        ((series.newest + Self::SPAN) * W - now_ms).max(0)
    }

    /// Milliseconds until the window is empty if something is counted now.
    pub(super) fn reset_after_count(&self, now_ms: i64) -> i64 {
        Self::fresh_reset(self.head.max(Self::bucket(now_ms)), now_ms)
    }

    /// Milliseconds until a count made now in bucket `head` leaves the window.
    pub(super) fn fresh_reset(head: i64, now_ms: i64) -> i64 {
        ((head + Self::SPAN) * W - now_ms).max(1)
    }

    /// Milliseconds until series `s` drops below `limit`: buckets leave oldest first, so this
    /// is when the bucket that brings the rest under the limit leaves. Never 0; a limit no
    /// amount of waiting satisfies (0) answers a whole window. Call `advance` first.
    pub(super) fn retry_ms(&self, s: usize, limit: i64, now_ms: i64) -> i64 {
        if limit <= 0 {
            return Self::fresh_reset(self.head, now_ms);
        }
        let series = &self.series[s];
        let mut rest = series.sum;
        for n in self.head - Self::SPAN + 1..=self.head {
            rest -= series.total[Self::slot(n)];
            if rest < limit {
                return Self::fresh_reset(n, now_ms);
            }
        }
        Self::fresh_reset(self.head, now_ms)
    }

    /// True when every series is empty: nothing to decide on and nothing to push (local counts
    /// are part of the totals, and zero counts are never pushed).
    pub(super) fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.sum == 0)
    }

    /// The buckets whose local counts wait to be pushed, and marks them pushed. The caller
    /// hands the range back to [`Ring::mark_dirty`] if the push fails.
    pub(super) fn take_dirty(&mut self) -> Option<(i64, i64)> {
        if self.dirty_from == CLEAN {
            return None;
        }
        let from = self.dirty_from;
        self.dirty_from = CLEAN;
        Some((from, self.head))
    }

    pub(super) fn mark_dirty(&mut self, from: i64) {
        self.dirty_from = self.dirty_from.min(from).max(self.head - Self::SPAN + 1);
    }

    /// This node's own counts of bucket `n` in every series (zeros once it left the window).
    pub(super) fn local(&self, n: i64) -> [i64; S] {
        let in_window = self.in_window(n);
        std::array::from_fn(|s| {
            if in_window {
                self.series[s].local[Self::slot(n)]
            } else {
                0
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_follow_expiry_lazily() {
        let mut r = MinuteRing::new(0);
        r.add_local(0, REQUESTS, 2);
        r.add_local(30_500, REQUESTS, 3);
        r.advance(59_999);
        assert_eq!(r.used(REQUESTS), 5);
        r.advance(60_000); // bucket 0 leaves
        assert_eq!(r.used(REQUESTS), 3);
        r.advance(500_000); // a long gap clears everything at once
        assert_eq!(r.used(REQUESTS), 0);
        assert!(r.is_empty());
    }

    #[test]
    fn retry_points_at_the_bucket_that_makes_room() {
        let mut r = MinuteRing::new(0);
        r.add_local(0, REQUESTS, 2); // bucket 0
        r.add_local(10_000, REQUESTS, 2); // bucket 10
        r.advance(20_250);
        // limit 4: room once bucket 0 (2) leaves, at 60 s.
        assert_eq!(r.retry_ms(REQUESTS, 4, 20_250), 60_000 - 20_250);
        // limit 1: bucket 10 must leave too.
        assert_eq!(r.retry_ms(REQUESTS, 1, 20_250), 70_000 - 20_250);
        // limit 0: never; one whole window.
        assert!(r.retry_ms(REQUESTS, 0, 20_250) > 0);
    }

    #[test]
    fn remote_values_replace_and_clamp() {
        let mut r = MinuteRing::new(10_000);
        let at = r.replace_remote(REQUESTS, None, 5, 4);
        assert_eq!(at, Some(5));
        assert_eq!(r.used(REQUESTS), 4);
        let at2 = r.replace_remote(REQUESTS, at.map(|a| (a, 4)), 5, 6);
        assert_eq!(r.used(REQUESTS), 6);
        // From the future (clock skew): counted in the head bucket.
        assert_eq!(r.replace_remote(REQUESTS, None, 99, 1), Some(10));
        // Already expired: ignored.
        r.advance(64_000); // window 5..=64: bucket 5 (6) and the clamped 10 (1) still in
        assert_eq!(r.used(REQUESTS), 7);
        assert_eq!(r.replace_remote(REQUESTS, None, 3, 7), None);
        assert_eq!(r.used(REQUESTS), 7);
        r.advance(65_000); // bucket 5 leaves
        assert_eq!(r.used(REQUESTS), 1);
        assert_eq!(at2, Some(5));
        assert_eq!(r.local(10), [0, 0]);
    }

    #[test]
    fn dirty_range_covers_local_changes() {
        let mut r = MinuteRing::new(0);
        assert_eq!(r.take_dirty(), None);
        r.add_local(1_000, TOKENS, 7);
        r.add_local(3_000, REQUESTS, 1);
        assert_eq!(r.take_dirty(), Some((1, 3)));
        assert_eq!(r.local(1), [0, 7]);
        assert_eq!(r.take_dirty(), None);
        r.mark_dirty(1);
        assert_eq!(r.take_dirty(), Some((1, 3)));
    }
}

//! The hot path: one decision over a request's subjects, and token reports.

use std::cmp::Reverse;
use std::sync::MutexGuard;

use super::ring::{DayRing, MinuteRing, Ring, REQUESTS, TOKENS};
use super::table::{Shard, Subject, Table};
use super::{Admission, Decision, Gauge, Limits, SubjectRef, Window};

/// Subjects handled with stack storage only. Callers name two (key, project × model); more
/// than this takes the same code with heap storage.
const INLINE: usize = 4;

/// One limited subject of a decision: which check, its hash and shard, and which of the
/// held locks covers it.
#[derive(Clone, Copy, Default)]
struct Slot {
    check: usize,
    hash: u64,
    shard: usize,
    guard: usize,
}

impl Admission {
    /// Decides one request over `checks` (subject and its limits; the caller lists the key
    /// before the project × model). `consume: false` is a peek: it returns exactly what
    /// consuming would (gauges as after this request) and counts nothing. Subjects whose
    /// limits are all `None` are skipped and not tracked.
    pub fn decide(
        &self,
        now_ms: i64,
        checks: &[(SubjectRef<'_>, Limits)],
        consume: bool,
    ) -> Decision {
        let limited = checks.iter().filter(|(_, l)| !l.is_empty()).count();
        if limited == 0 {
            return Decision::Admitted {
                requests: None,
                tokens: None,
            };
        }
        if self.stale(now_ms) {
            return Decision::Unavailable;
        }
        if limited <= INLINE {
            let mut slots = [Slot::default(); INLINE];
            let mut guards: [Option<MutexGuard<'_, Shard>>; INLINE] = Default::default();
            self.decide_in(now_ms, checks, consume, &mut slots[..limited], &mut guards)
        } else {
            let mut slots = vec![Slot::default(); limited];
            let mut guards: Vec<Option<MutexGuard<'_, Shard>>> =
                (0..limited).map(|_| None).collect();
            self.decide_in(now_ms, checks, consume, &mut slots, &mut guards)
        }
    }

    /// `slots` has exactly one entry per limited check; `guards` at least as many.
    fn decide_in<'t>(
        &'t self,
        now_ms: i64,
        checks: &[(SubjectRef<'_>, Limits)],
        consume: bool,
        slots: &mut [Slot],
        guards: &mut [Option<MutexGuard<'t, Shard>>],
    ) -> Decision {
        let limited = checks
            .iter()
            .enumerate()
            .filter(|(_, (_, l))| !l.is_empty());
        for (slot, (check, (subject, _))) in slots.iter_mut().zip(limited) {
            let hash = self.table.hash(*subject);
            *slot = Slot {
                check,
                hash,
                shard: Table::shard_of(hash),
                guard: 0,
            };
        }
        // Lock each shard once, in ascending order: the global order that rules out deadlock.
        slots.sort_unstable_by_key(|s| (s.shard, s.check));
        let mut held = 0;
        for i in 0..slots.len() {
            if i == 0 || slots[i].shard != slots[i - 1].shard {
                guards[held] = Some(self.table.lock(slots[i].shard));
                held += 1;
            }
            slots[i].guard = held - 1;
        }

        // Check every window first…
        let mut verdict = Verdict::default();
        for slot in slots.iter() {
            let Some(shard) = guards[slot.guard].as_deref_mut() else {
                return Decision::Unavailable;
            };
            let (subject, limits) = &checks[slot.check];
            let state = if consume {
                let state = shard.get_or_insert(slot.hash, *subject, now_ms);
                if limits.requests_per_day.is_some() && state.day.is_none() {
                    state.day = Some(Box::new(DayRing::new(now_ms)));
                }
                Some(state)
            } else {
                shard.get(slot.hash, *subject)
            };
            verdict.evaluate(slot.check, state, limits, now_ms);
        }
        if let Some(r) = verdict.refusal {
            return Decision::Refused {
                subject: r.check,
                window: r.window,
                limit: r.limit,
                retry_after_ms: r.retry_after_ms,
            };
        }
        // …then count in all of them, under the same locks.
        if consume {
            for slot in slots.iter() {
                let Some(shard) = guards[slot.guard].as_deref_mut() else {
                    continue;
                };
                // Advanced to `now_ms` while its windows were read, under the same lock.
                if let Some(state) = shard.get(slot.hash, checks[slot.check].0) {
                    state.minute.add_local_at_head(REQUESTS, 1);
                    if let Some(day) = state.day.as_deref_mut() {
                        day.add_local_at_head(REQUESTS, 1);
                    }
                }
            }
        }
        Decision::Admitted {
            requests: verdict.requests,
            tokens: verdict.tokens,
        }
    }

    /// Reports tokens a request used (post-paid: they count from now, and refuse further
    /// requests while the window is at or over its limit). The caller passes only subjects a
    /// token limit applies to; one not tracked yet here (its requests were checked on another
    /// node, or before a restart) starts being tracked, so that no report is lost. Negative
    /// amounts are ignored.
    pub fn add_tokens(&self, now_ms: i64, subject: SubjectRef<'_>, tokens: i64) {
        if tokens <= 0 {
            return;
        }
        let hash = self.table.hash(subject);
        let mut shard = self.table.lock(Table::shard_of(hash));
        shard
            .get_or_insert(hash, subject, now_ms)
            .minute
            .add_local(now_ms, TOKENS, tokens);
    }
}

#[derive(Clone, Copy)]
struct Refusal {
    check: usize,
    window: Window,
    limit: i64,
    retry_after_ms: i64,
}

impl Refusal {
    /// Which refusal to report: the one that lasts longest (only then can a retry pass), ties
    /// by check and window order so that the answer does not depend on shard order.
    fn rank(&self) -> (Reverse<i64>, usize, u8) {
        let window = match self.window {
            Window::RequestsPerMinute => 0,
            Window::RequestsPerDay => 1,
            Window::TokensPerMinute => 2,
        };
        (Reverse(self.retry_after_ms), self.check, window)
    }
}

/// What the windows seen so far say.
#[derive(Default)]
struct Verdict {
    requests: Option<Gauge>,
    tokens: Option<Gauge>,
    refusal: Option<Refusal>,
}

impl Verdict {
    /// Reads one subject's windows (`None`: not tracked, so empty).
    fn evaluate(
        &mut self,
        check: usize,
        subject: Option<&mut Subject>,
        limits: &Limits,
        now_ms: i64,
    ) {
        let subject = subject.map(|s| {
            s.advance(now_ms);
            &*s
        });
        let minute = subject.map(|s| &s.minute);
        if let Some(limit) = limits.requests_per_minute {
            self.requests(check, Window::RequestsPerMinute, minute, limit, now_ms);
        }
        if let Some(limit) = limits.requests_per_day {
            let day = subject.and_then(|s| s.day.as_deref());
            self.requests(check, Window::RequestsPerDay, day, limit, now_ms);
        }
        if let Some(limit) = limits.tokens_per_minute {
            self.tokens(check, minute, limit, now_ms);
        }
    }

    /// A request window has room for one more request while it holds fewer than `limit`.
    fn requests<const B: usize, const W: i64, const S: usize>(
        &mut self,
        check: usize,
        window: Window,
        ring: Option<&Ring<B, W, S>>,
        limit: i64,
        now_ms: i64,
    ) {
        let used = ring.map_or(0, |r| r.used(REQUESTS));
        let fresh = || Ring::<B, W, S>::fresh_reset(Ring::<B, W, S>::bucket(now_ms), now_ms);
        if used >= limit {
            let retry_after_ms = ring.map_or_else(fresh, |r| r.retry_ms(REQUESTS, limit, now_ms));
            self.refuse(Refusal {
                check,
                window,
                limit,
                retry_after_ms,
            });
        } else {
            let reset_ms = ring.map_or_else(fresh, |r| r.reset_after_count(now_ms));
            self.requests = tighter(
                self.requests,
                Gauge {
                    limit,
                    remaining: limit - used - 1,
                    reset_ms,
                },
            );
        }
    }

    /// Tokens are post-paid: a request passes while the window holds fewer than `limit`, and
    /// costs nothing now.
    fn tokens(&mut self, check: usize, ring: Option<&MinuteRing>, limit: i64, now_ms: i64) {
        let used = ring.map_or(0, |r| r.used(TOKENS));
        if used >= limit {
            let retry_after_ms = ring.map_or_else(
                || MinuteRing::fresh_reset(MinuteRing::bucket(now_ms), now_ms),
                |r| r.retry_ms(TOKENS, limit, now_ms),
            );
            self.refuse(Refusal {
                check,
                window: Window::TokensPerMinute,
                limit,
                retry_after_ms,
            });
        } else {
            let reset_ms = ring.map_or(0, |r| r.reset_ms(TOKENS, now_ms));
            self.tokens = tighter(
                self.tokens,
                Gauge {
                    limit,
                    remaining: limit - used,
                    reset_ms,
                },
            );
        }
    }

    fn refuse(&mut self, refusal: Refusal) {
        if self.refusal.is_none_or(|r| refusal.rank() < r.rank()) {
            self.refusal = Some(refusal);
        }
    }
}

/// The more constraining gauge: least remaining, then the smaller limit, then the later
/// reset (whichever came first otherwise, so shard order cannot change the answer).
fn tighter(current: Option<Gauge>, candidate: Gauge) -> Option<Gauge> {
    let key = |g: &Gauge| (g.remaining, g.limit, Reverse(g.reset_ms));
    match current {
        Some(c) if key(&c) <= key(&candidate) => Some(c),
        _ => Some(candidate),
    }
}

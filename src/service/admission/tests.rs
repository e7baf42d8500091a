//! Single-node behaviour of the engine: windows, refusals, gauges, concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A minute boundary (and 5-minute boundary), so bucket numbers line up with the tests' seconds.
pub(super) const T0: i64 = 1_700_000_100_000;

pub(super) fn local() -> Admission {
    Admission::new(
        "n1".to_owned(),
        AdmissionSettings {
            shared: false,
            stale_after_ms: 5_000,
        },
    )
}

pub(super) fn rpm(n: i64) -> Limits {
    Limits {
        requests_per_minute: Some(n),
        ..Limits::default()
    }
}

pub(super) const KEY: SubjectRef<'static> = SubjectRef::Key("k1");
pub(super) const PM: SubjectRef<'static> = SubjectRef::ProjectModel {
    project: "p1",
    model: "gpt-4o",
};

pub(super) fn admitted(d: Decision) -> bool {
    matches!(d, Decision::Admitted { .. })
}

fn requests_gauge(d: Decision) -> Option<Gauge> {
    match d {
        Decision::Admitted { requests, .. } => requests,
        _ => None,
    }
}

fn tokens_gauge(d: Decision) -> Option<Gauge> {
    match d {
        Decision::Admitted { tokens, .. } => tokens,
        _ => None,
    }
}

#[test]
fn sliding_minute_admits_no_more_than_the_limit_in_any_60_seconds() {
    let a = local();
    let n = 60;
    // 2N a minute, evenly, for three minutes: one request every 500 ms.
    let mut admitted_at = Vec::new();
    for i in 0..(3 * 2 * n) {
        let t = i * 500;
        if admitted(a.decide(T0 + t, &[(KEY, rpm(n))], true)) {
            admitted_at.push(t);
        }
    }
    // Any 60 consecutive whole seconds hold at most N (a fixed window would let 2N through
    // around a minute boundary, GCRA with a burst of N about 2N in the first minute).
    for start in 0..=120 {
        let from = start * 1_000;
        let inside = admitted_at
            .iter()
            .filter(|t| **t >= from && **t < from + 60_000)
            .count();
        assert!(
            inside <= n as usize,
            "{inside} in the minute from {start} s"
        );
    }
    // And each minute gets its N: the window slides, it does not stall.
    for minute in 0..3 {
        let from = minute * 60_000;
        let inside = admitted_at
            .iter()
            .filter(|t| **t >= from && **t < from + 60_000)
            .count();
        assert!(
            inside >= (n as usize) * 95 / 100,
            "minute {minute}: {inside}"
        );
    }
}

#[test]
fn refusal_consumes_nothing() {
    let a = local();
    let limits = Limits {
        requests_per_minute: Some(2),
        requests_per_day: Some(100),
        tokens_per_minute: None,
    };
    assert!(admitted(a.decide(T0, &[(KEY, limits)], true)));
    assert!(admitted(a.decide(T0 + 1, &[(KEY, limits)], true)));
    for i in 0..50 {
        assert!(!admitted(a.decide(T0 + 2 + i, &[(KEY, limits)], true)));
    }
    // A minute later the two have left; the 50 refusals never counted anywhere.
    let d = a.decide(T0 + 60_000, &[(KEY, limits)], true);
    assert_eq!(requests_gauge(d).map(|g| g.remaining), Some(1));
    assert!(admitted(a.decide(T0 + 60_001, &[(KEY, limits)], true)));
    // The day window saw exactly the 4 admitted requests.
    let day_only = Limits {
        requests_per_day: Some(100),
        ..Limits::default()
    };
    let d = a.decide(T0 + 60_002, &[(KEY, day_only)], false);
    assert_eq!(requests_gauge(d).map(|g| g.remaining), Some(100 - 4 - 1));
}

#[test]
fn all_or_nothing_across_subjects() {
    let a = local();
    let checks = [(KEY, rpm(10)), (PM, rpm(1))];
    assert!(admitted(a.decide(T0, &checks, true)));
    let d = a.decide(T0 + 10, &checks, true);
    assert!(matches!(
        d,
        Decision::Refused {
            subject: 1,
            window: Window::RequestsPerMinute,
            limit: 1,
            ..
        }
    ));
    // The key did not count the refused request: 1 used, so 8 remain after one more.
    let d = a.decide(T0 + 20, &[(KEY, rpm(10))], false);
    assert_eq!(requests_gauge(d).map(|g| g.remaining), Some(8));
    // Given in the other order, the same subjects lock in the same order and refuse alike.
    let d = a.decide(T0 + 30, &[(PM, rpm(1)), (KEY, rpm(10))], true);
    assert!(matches!(d, Decision::Refused { subject: 0, .. }));
}

#[test]
fn peek_reports_the_decision_without_counting() {
    let a = local();
    for _ in 0..5 {
        let peek = a.decide(T0, &[(KEY, rpm(1))], false);
        assert!(admitted(peek));
    }
    // Untracked subjects stay untracked on a peek.
    assert_eq!(a.tracked_subjects(), 0);
    let peek = a.decide(T0 + 5, &[(KEY, rpm(1))], false);
    let real = a.decide(T0 + 5, &[(KEY, rpm(1))], true);
    assert_eq!(peek, real);
    let peek = a.decide(T0 + 6, &[(KEY, rpm(1))], false);
    let real = a.decide(T0 + 6, &[(KEY, rpm(1))], true);
    assert!(!admitted(peek));
    assert_eq!(peek, real);
    assert_eq!(a.tracked_subjects(), 1);
}

#[test]
fn unlimited_subjects_are_not_tracked() {
    let a = local();
    let d = a.decide(
        T0,
        &[(KEY, Limits::default()), (PM, Limits::default())],
        true,
    );
    assert_eq!(
        d,
        Decision::Admitted {
            requests: None,
            tokens: None
        }
    );
    assert_eq!(a.tracked_subjects(), 0);
}

#[test]
fn tokens_reported_before_any_check_here_still_count() {
    // The request was checked on another node (or before a restart); the report reaches this
    // one first. It must bind the next check all the same.
    let a = local();
    let tpm = Limits {
        tokens_per_minute: Some(100),
        ..Limits::default()
    };
    a.add_tokens(T0, KEY, 100);
    assert_eq!(a.tracked_subjects(), 1);
    let d = a.decide(T0 + 1_000, &[(KEY, tpm)], true);
    assert!(matches!(d, Decision::Refused { .. }), "{d:?}");
}

#[test]
fn tokens_are_post_paid() {
    let a = local();
    let tpm = Limits {
        tokens_per_minute: Some(100),
        ..Limits::default()
    };
    let d = a.decide(T0, &[(KEY, tpm)], true);
    assert_eq!(
        tokens_gauge(d),
        Some(Gauge {
            limit: 100,
            remaining: 100,
            reset_ms: 0
        })
    );
    assert_eq!(requests_gauge(d), None);
    a.add_tokens(T0 + 1_000, KEY, 60);
    let d = a.decide(T0 + 2_000, &[(KEY, tpm)], true);
    assert_eq!(
        tokens_gauge(d),
        Some(Gauge {
            limit: 100,
            remaining: 40,
            reset_ms: 59_000
        })
    );
    // One request may overshoot (its tokens are known only afterwards)…
    a.add_tokens(T0 + 3_000, KEY, 90);
    // …and then the window refuses while at or over the limit.
    let d = a.decide(T0 + 4_000, &[(KEY, tpm)], true);
    assert_eq!(
        d,
        Decision::Refused {
            subject: 0,
            window: Window::TokensPerMinute,
            limit: 100,
            // 150 used; under 100 once second 1 (60) leaves, at 61 s.
            retry_after_ms: 61_000 - 4_000,
        }
    );
    assert!(!admitted(a.decide(T0 + 60_999, &[(KEY, tpm)], true)));
    let d = a.decide(T0 + 61_000, &[(KEY, tpm)], true);
    assert_eq!(tokens_gauge(d).map(|g| g.remaining), Some(10));
    // Exactly at the limit refuses too.
    a.add_tokens(T0 + 61_000, KEY, 10);
    assert!(!admitted(a.decide(T0 + 61_001, &[(KEY, tpm)], true)));
    assert!(admitted(a.decide(T0 + 63_000, &[(KEY, tpm)], true)));
}

#[test]
fn retry_after_points_at_the_second_the_oldest_bucket_leaves() {
    let a = local();
    for t in [0, 10_200, 20_500] {
        assert!(admitted(a.decide(T0 + t, &[(KEY, rpm(3))], true)));
    }
    let d = a.decide(T0 + 30_700, &[(KEY, rpm(3))], true);
    assert_eq!(
        d,
        Decision::Refused {
            subject: 0,
            window: Window::RequestsPerMinute,
            limit: 3,
            retry_after_ms: 60_000 - 30_700,
        }
    );
    assert!(!admitted(a.decide(T0 + 59_999, &[(KEY, rpm(3))], true)));
    assert!(admitted(a.decide(T0 + 60_000, &[(KEY, rpm(3))], true)));
    let d = a.decide(T0 + 60_100, &[(KEY, rpm(3))], true);
    assert!(matches!(
        d,
        Decision::Refused {
            retry_after_ms: 9_900,
            ..
        }
    ));
    // A limit of zero refuses for a whole window at a time, never "retry in 0 ms".
    let d = a.decide(T0 + 60_100, &[(PM, rpm(0))], true);
    assert!(matches!(d, Decision::Refused { retry_after_ms, .. } if retry_after_ms > 0));
}

#[test]
fn the_longest_refusal_is_reported() {
    let a = local();
    let both = [(KEY, rpm(1)), (PM, rpm(1))];
    assert!(admitted(a.decide(T0, &[(KEY, rpm(1))], true)));
    assert!(admitted(a.decide(T0 + 30_000, &[(PM, rpm(1))], true)));
    // Both full; the project × model stays full 30 s longer.
    let d = a.decide(T0 + 40_000, &both, true);
    assert_eq!(
        d,
        Decision::Refused {
            subject: 1,
            window: Window::RequestsPerMinute,
            limit: 1,
            retry_after_ms: 50_000,
        }
    );
}

#[test]
fn gauges_pick_the_most_constraining_window() {
    let a = local();
    let key = Limits {
        requests_per_minute: Some(10),
        requests_per_day: Some(1_000),
        tokens_per_minute: Some(500),
    };
    let d = a.decide(T0 + 250, &[(KEY, key), (PM, rpm(5))], true);
    assert_eq!(
        requests_gauge(d),
        Some(Gauge {
            limit: 5,
            remaining: 4,
            reset_ms: 59_750
        })
    );
    assert_eq!(
        tokens_gauge(d),
        Some(Gauge {
            limit: 500,
            remaining: 500,
            reset_ms: 0
        })
    );
    // Equal remaining (key: 6 - 1 - 1, pm: 5 - 0 - 1... after its first 1): the smaller limit.
    let b = local();
    assert!(admitted(b.decide(T0, &[(KEY, rpm(6))], true)));
    let d = b.decide(T0 + 1_000, &[(KEY, rpm(6)), (PM, rpm(5))], true);
    assert_eq!(
        requests_gauge(d).map(|g| (g.limit, g.remaining)),
        Some((5, 4))
    );
    // The day window's reset is a day away once it counts.
    let day = Limits {
        requests_per_day: Some(3),
        ..Limits::default()
    };
    let d = b.decide(T0 + 2_000, &[(PM, day)], true);
    assert_eq!(
        requests_gauge(d),
        Some(Gauge {
            limit: 3,
            remaining: 2,
            reset_ms: 86_400_000 - 2_000
        })
    );
}

#[test]
fn day_window_slides_by_five_minutes() {
    let a = local();
    let day = Limits {
        requests_per_day: Some(3),
        ..Limits::default()
    };
    const HOUR: i64 = 3_600_000;
    for t in [0, HOUR, 2 * HOUR] {
        assert!(admitted(a.decide(T0 + t, &[(KEY, day)], true)));
    }
    let d = a.decide(T0 + 23 * HOUR, &[(KEY, day)], true);
    assert_eq!(
        d,
        Decision::Refused {
            subject: 0,
            window: Window::RequestsPerDay,
            limit: 3,
            retry_after_ms: HOUR,
        }
    );
    assert!(!admitted(a.decide(T0 + 24 * HOUR - 1, &[(KEY, day)], true)));
    assert!(admitted(a.decide(T0 + 24 * HOUR, &[(KEY, day)], true)));
    assert!(!admitted(a.decide(T0 + 24 * HOUR + 1, &[(KEY, day)], true)));
}

#[test]
fn concurrent_decides_never_admit_more_than_the_limit() {
    let a = local();
    let limit = 1_000;
    let shared = AtomicUsize::new(0);
    let own = AtomicUsize::new(0);
    let keys: Vec<String> = (0..8).map(|i| format!("key{i}")).collect();
    std::thread::scope(|scope| {
        for (i, key) in keys.iter().enumerate() {
            let (a, shared, own) = (&a, &shared, &own);
            scope.spawn(move || {
                for j in 0..2_000 {
                    let now = T0 + (j % 1_000) / 2; // all within one second
                                                    // Every thread shares the project × model limit; half of them list it
                                                    // first, so the lock order cannot come from the caller.
                    let key = (SubjectRef::Key(key), rpm(1_000_000));
                    let pm = (PM, rpm(limit));
                    let checks = if i % 2 == 0 { [key, pm] } else { [pm, key] };
                    if admitted(a.decide(now, &checks, true)) {
                        shared.fetch_add(1, Ordering::Relaxed);
                    }
                    // One key for everyone too: contention on a single subject.
                    if admitted(a.decide(now, &[(KEY, rpm(limit))], true)) {
                        own.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(shared.load(Ordering::Relaxed), limit as usize);
    assert_eq!(own.load(Ordering::Relaxed), limit as usize);
}

#[test]
fn many_subjects_in_one_decision() {
    let a = local();
    let ids: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
    let checks: Vec<_> = ids.iter().map(|id| (SubjectRef::Key(id), rpm(2))).collect();
    assert!(admitted(a.decide(T0, &checks, true)));
    assert!(admitted(a.decide(T0, &checks, true)));
    assert!(matches!(
        a.decide(T0, &checks, true),
        Decision::Refused { subject: 0, .. }
    ));
    assert_eq!(a.tracked_subjects(), 9);
}

#[test]
fn a_clock_read_a_little_late_counts_in_the_newest_bucket() {
    let a = local();
    assert!(admitted(a.decide(T0 + 5_000, &[(KEY, rpm(1))], true)));
    // Another thread's earlier `now`: still counted against the same window.
    assert!(!admitted(a.decide(T0 + 4_000, &[(KEY, rpm(1))], true)));
    assert!(admitted(a.decide(T0 + 65_000, &[(KEY, rpm(1))], true)));
}

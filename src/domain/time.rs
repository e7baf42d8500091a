//! Timestamps are Unix milliseconds everywhere below the wire: the OpenAI dialect renders whole
//! seconds, the Keycard dialect RFC 3339 with milliseconds, so the store keeps the finer one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Millis = i64;

/// Source of "now". Tests pin it to make expiry deterministic.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<Fixed>>,
}

#[derive(Debug)]
struct Fixed {
    now: AtomicI64,
    /// `now` when the clock was made, and the instant that stands for it.
    start: Millis,
    start_instant: Instant,
}

impl Clock {
    pub fn system() -> Self {
        Self { fixed: None }
    }

    pub fn fixed(at: Millis) -> Self {
        Self {
            fixed: Some(Arc::new(Fixed {
                now: AtomicI64::new(at),
                start: at,
                start_instant: Instant::now(),
            })),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.fixed {
            Some(f) => f.now.load(Ordering::Relaxed),
            None => system_now(),
        }
    }

    /// A monotonic reading, for measuring durations (the wall clock can be set back): the
    /// system clock's is `Instant::now()`; a fixed clock's moves only with its time (and not to
    /// before the clock was made).
    pub fn instant(&self) -> Instant {
        match &self.fixed {
            Some(f) => {
                let moved = f.now.load(Ordering::Relaxed).saturating_sub(f.start).max(0);
                f.start_instant + Duration::from_millis(moved as u64)
            }
            None => Instant::now(),
        }
    }

    /// Moves a fixed clock forward; a no-op on the system clock.
    pub fn advance(&self, by: Millis) {
        if let Some(f) = &self.fixed {
            f.now.fetch_add(by, Ordering::Relaxed);
        }
    }
}

fn system_now() -> Millis {
    // A clock before 1970 is a broken host; treating it as the epoch keeps requests working.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn to_unix_seconds(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

/// RFC 3339 in UTC with milliseconds, as the Keycard dialect writes every timestamp:
/// `2019-12-27T18:11:19.117Z`.
pub fn to_rfc3339_millis(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm), valid for the whole i64 range we use.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_millis() {
        assert_eq!(to_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            to_rfc3339_millis(1_577_470_279_117),
            "2019-12-27T18:11:19.117Z"
        );
        assert_eq!(
            to_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(to_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }
}

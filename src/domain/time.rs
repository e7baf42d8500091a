//! Timestamps are Unix milliseconds everywhere below the wire: the OpenAI dialect renders whole
//! seconds, the Keycard dialect RFC 3339 with milliseconds, so the store keeps the finer one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub type Millis = i64;

/// Source of "now". Tests pin it to make expiry deterministic.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { fixed: None }
    }

    pub fn fixed(at: Millis) -> Self {
        Self {
            fixed: Some(Arc::new(AtomicI64::new(at))),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.fixed {
            Some(t) => t.load(Ordering::Relaxed),
            None => system_now(),
        }
    }

    /// Moves a fixed clock forward; a no-op on the system clock.
    pub fn advance(&self, by: Millis) {
        if let Some(t) = &self.fixed {
            t.fetch_add(by, Ordering::Relaxed);
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

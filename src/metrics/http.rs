//! Request counts and latencies by route template, method and status.
//!
//! Series are created on first sight in a fixed-size open-addressing table claimed with one
//! compare-and-swap, so recording never locks. Labels come from the route *template* (never
//! the raw path, whose IDs would make a series per object) and a closed set of methods, so the
//! number of series stays small; should it ever exceed the table, the rest is counted under
//! `route="overflow"`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::http::Method;

use super::cells::{Cells, HISTOGRAM_CELLS};

const CAPACITY: usize = 1024;
const OVERFLOW: usize = CAPACITY;

pub struct Labels {
    pub route: Box<str>,
    pub method: &'static str,
    pub status: u16,
}

pub struct HttpMetrics {
    keys: Box<[AtomicU64]>,
    labels: Box<[OnceLock<Labels>]>,
    cells: Cells,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            keys: (0..CAPACITY).map(|_| AtomicU64::new(0)).collect(),
            labels: (0..=CAPACITY).map(|_| OnceLock::new()).collect(),
            cells: Cells::new((CAPACITY + 1) * HISTOGRAM_CELLS),
        }
    }
}

/// Methods outside this set share one label: clients choose methods, and must not choose
/// our series.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// FNV-1a over the route, then the method and status mixed in; never 0 (the empty slot).
fn key(route: &str, method: &'static str, status: u16) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes().chain([0xff]).chain(method.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= u64::from(status) << 48;
    h = h.wrapping_mul(0x0000_0100_0000_01b3);
    h.max(1)
}

impl HttpMetrics {
    #[inline]
    pub fn record(&self, route: &str, method: &'static str, status: u16, micros: u64) {
        let slot = self.slot(route, method, status);
        self.cells.observe(slot * HISTOGRAM_CELLS, micros);
    }

    fn slot(&self, route: &str, method: &'static str, status: u16) -> usize {
        let k = key(route, method, status);
        let mut i = (k as usize) & (CAPACITY - 1);
        for _ in 0..CAPACITY {
            let slot = &self.keys[i];
            match slot.load(Ordering::Acquire) {
                found if found == k => return i,
                0 => match slot.compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        let _ = self.labels[i].set(Labels {
                            route: route.into(),
                            method,
                            status,
                        });
                        return i;
                    }
                    // Another thread took it: for the same series, or probe on.
                    Err(found) if found == k => return i,
                    Err(_) => {}
                },
                _ => {}
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        let _ = self.labels[OVERFLOW].set(Labels {
            route: "overflow".into(),
            method: "OTHER",
            status: 0,
        });
        OVERFLOW
    }

    /// Every series seen so far, with its histogram.
    pub fn series(&self) -> impl Iterator<Item = (&Labels, super::cells::Histogram)> + '_ {
        self.labels.iter().enumerate().filter_map(|(i, l)| {
            // A slot just claimed may not have its labels yet: it shows up at the next scrape.
            l.get()
                .map(|l| (l, self.cells.histogram(i * HISTOGRAM_CELLS)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_route_method_and_status() {
        let m = HttpMetrics::default();
        m.record("/a/{id}", "GET", 200, 10);
        m.record("/a/{id}", "GET", 200, 10);
        m.record("/a/{id}", "GET", 404, 10);
        m.record("/a/{id}", "POST", 200, 10);
        let mut seen: Vec<_> = m
            .series()
            .map(|(l, h)| (l.route.to_string(), l.method, l.status, h.count))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("/a/{id}".into(), "GET", 200, 2),
                ("/a/{id}".into(), "GET", 404, 1),
                ("/a/{id}".into(), "POST", 200, 1),
            ]
        );
    }
}

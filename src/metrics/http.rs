//! Request counts and latencies by route template, method and status.
//!
//! Two fixed-size tables, each slot claimed with one compare-and-swap, so recording never
//! locks: (route, method) pairs, looked up before the handler runs while the route template
//! is at hand (so it is never cloned), then up to [`STATUSES`] statuses per pair. Labels come
//! from the route *template* (never the raw path, whose IDs would make a series per object) and
//! a closed set of methods, so series stay few; past the tables' size they are counted under
//! `route="overflow"` or `status="other"`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::http::Method;

use super::cells::{Cells, Histogram, HISTOGRAM_CELLS};

const ROUTES: usize = 128;
const STATUSES: usize = 12;
/// Series index of the pair that takes every pair beyond [`ROUTES`].
const OVERFLOW_ROUTE: usize = ROUTES;
/// Status slot that takes every status beyond [`STATUSES`] - 1 distinct ones.
const OTHER_STATUS: usize = STATUSES - 1;

pub struct Labels {
    pub route: Box<str>,
    pub method: &'static str,
}

/// A (route, method) pair's place in the tables.
#[derive(Clone, Copy)]
pub struct RouteSeries(usize);

pub struct HttpMetrics {
    keys: Box<[AtomicU64]>,
    labels: Box<[OnceLock<Labels>]>,
    /// Per pair, [`STATUSES`] status codes (0: free).
    statuses: Box<[AtomicU32]>,
    cells: Cells,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let pairs = ROUTES + 1;
        Self {
            keys: (0..ROUTES).map(|_| AtomicU64::new(0)).collect(),
            labels: (0..pairs).map(|_| OnceLock::new()).collect(),
            statuses: (0..pairs * STATUSES).map(|_| AtomicU32::new(0)).collect(),
            cells: Cells::new(pairs * STATUSES * HISTOGRAM_CELLS),
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

/// FNV-1a over route and method; never 0 (the free slot).
fn key(route: &str, method: &'static str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes().chain([0xff]).chain(method.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

impl HttpMetrics {
    /// The series of a (route, method) pair, created on first sight.
    pub fn route(&self, route: &str, method: &'static str) -> RouteSeries {
        let k = key(route, method);
        let mut i = (k as usize) % ROUTES;
        for _ in 0..ROUTES {
            let slot = &self.keys[i];
            let found = match slot.load(Ordering::Acquire) {
                0 => match slot.compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        let _ = self.labels[i].set(Labels {
                            route: route.into(),
                            method,
                        });
                        return RouteSeries(i);
                    }
                    Err(found) => found,
                },
                found => found,
            };
            if found == k {
                return RouteSeries(i);
            }
            i = (i + 1) % ROUTES;
        }
        let _ = self.labels[OVERFLOW_ROUTE].set(Labels {
            route: "overflow".into(),
            method: "OTHER",
        });
        RouteSeries(OVERFLOW_ROUTE)
    }

    #[inline]
    pub fn record(&self, series: RouteSeries, status: u16, micros: u64) {
        let base = series.0 * STATUSES;
        let status = u32::from(status).max(1);
        let mut slot = OTHER_STATUS;
        for (i, s) in self.statuses[base..base + OTHER_STATUS].iter().enumerate() {
            let found = match s.load(Ordering::Acquire) {
                0 => match s.compare_exchange(0, status, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => status,
                    Err(found) => found,
                },
                found => found,
            };
            if found == status {
                slot = i;
                break;
            }
        }
        if slot == OTHER_STATUS {
            self.statuses[base + OTHER_STATUS].store(u32::MAX, Ordering::Release);
        }
        self.cells.observe((base + slot) * HISTOGRAM_CELLS, micros);
    }

    /// Every series seen so far: labels, status (`None`: the "other" statuses), histogram.
    pub fn series(&self) -> impl Iterator<Item = (&Labels, Option<u16>, Histogram)> + '_ {
        self.labels
            .iter()
            .enumerate()
            .flat_map(move |(pair, labels)| {
                // A pair just claimed may not have its labels yet: it shows at the next scrape.
                let labels = labels.get();
                (0..STATUSES).filter_map(move |i| {
                    let labels = labels?;
                    let slot = pair * STATUSES + i;
                    let status = match self.statuses[slot].load(Ordering::Acquire) {
                        0 => return None,
                        u32::MAX => None,
                        s => Some(u16::try_from(s).unwrap_or(0)),
                    };
                    Some((labels, status, self.cells.histogram(slot * HISTOGRAM_CELLS)))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_route_method_and_status() {
        let m = HttpMetrics::default();
        let get = m.route("/a/{id}", "GET");
        let post = m.route("/a/{id}", "POST");
        m.record(get, 200, 10);
        m.record(m.route("/a/{id}", "GET"), 200, 10);
        m.record(get, 404, 10);
        m.record(post, 200, 10);
        let mut seen: Vec<_> = m
            .series()
            .map(|(l, s, h)| (l.route.to_string(), l.method, s, h.count))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("/a/{id}".into(), "GET", Some(200), 2),
                ("/a/{id}".into(), "GET", Some(404), 1),
                ("/a/{id}".into(), "POST", Some(200), 1),
            ]
        );
    }

    #[test]
    fn too_many_statuses_or_routes_fold_into_other_and_overflow() {
        let m = HttpMetrics::default();
        let r = m.route("/r", "GET");
        for s in 200..230 {
            m.record(r, s, 1);
        }
        let other: u64 = m
            .series()
            .filter(|(_, s, _)| s.is_none())
            .map(|(_, _, h)| h.count)
            .sum();
        assert_eq!(other, 30 - (STATUSES as u64 - 1));
        for i in 0..ROUTES + 5 {
            m.route(&format!("/r{i}"), "GET");
        }
        assert!(m.series().count() <= (ROUTES + 1) * STATUSES);
        let o = m.route("/one/more", "GET");
        m.record(o, 200, 1);
        assert!(m.series().any(|(l, _, _)| &*l.route == "overflow"));
    }
}

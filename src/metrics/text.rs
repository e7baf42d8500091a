//! Rendering in the Prometheus text exposition format 0.0.4.

use std::fmt::Write;

use super::cells::{Histogram, LATENCY_BOUNDS_US};
use super::{Metrics, Snapshot, KEY_CELLS, TOKEN_CELLS};
use crate::domain::outcomes::{ClientFailure, Reason, TokenFailure};

/// The whole exposition: HTTP, verification, cache, store and pools (the last two from
/// `snapshot`).
pub fn render(m: &Metrics, snapshot: &Snapshot) -> String {
    let (cache, pools) = (&snapshot.cache, &snapshot.pools);
    let mut out = String::with_capacity(16 * 1024);
    let o = &mut out;

    let http: Vec<_> = m.http.series().collect();
    header(
        o,
        "keyplane_http_requests_total",
        "counter",
        "Requests answered, by route template, method and status.",
    );
    for (l, status, h) in &http {
        let labels = http_labels(l, *status);
        let _ = writeln!(o, "keyplane_http_requests_total{{{labels}}} {}", h.count);
    }
    header(
        o,
        "keyplane_http_request_duration_seconds",
        "histogram",
        "Time from routing to the response head, by route template, method and status.",
    );
    for (l, status, h) in &http {
        histogram(
            o,
            "keyplane_http_request_duration_seconds",
            &http_labels(l, *status),
            h,
        );
    }

    header(
        o,
        "keyplane_key_verifications_total",
        "counter",
        "API key verifications (auth/check, keys/verify), by outcome.",
    );
    let key_outcomes = std::iter::once("valid").chain(Reason::ALL.map(Reason::as_str));
    for (i, r) in key_outcomes.enumerate() {
        let _ = writeln!(
            o,
            "keyplane_key_verifications_total{{outcome=\"{r}\"}} {}",
            m.outcomes.get(i)
        );
    }
    header(
        o,
        "keyplane_token_verifications_total",
        "counter",
        "Access token checks (auth/check, keys/verify, Keycard callers), by outcome.",
    );
    let token_outcomes =
        std::iter::once("valid").chain(TokenFailure::ALL.map(TokenFailure::as_str));
    for (i, r) in token_outcomes.enumerate() {
        let n = m.outcomes.get(KEY_CELLS + i);
        let _ = writeln!(
            o,
            "keyplane_token_verifications_total{{outcome=\"{r}\"}} {n}"
        );
    }
    header(
        o,
        "keyplane_token_grants_total",
        "counter",
        "Client-credentials token requests, by outcome.",
    );
    let grant_outcomes =
        std::iter::once("issued").chain(ClientFailure::ALL.map(ClientFailure::as_str));
    for (i, r) in grant_outcomes.enumerate() {
        let n = m.outcomes.get(KEY_CELLS + TOKEN_CELLS + i);
        let _ = writeln!(o, "keyplane_token_grants_total{{outcome=\"{r}\"}} {n}");
    }

    let (hits, negative_hits, misses) = (cache.hits, cache.negative_hits, cache.misses);
    header(o, "keyplane_verification_cache_lookups_total", "counter", "Verification cache lookups: hit (known key), negative_hit (known unknown), miss (store read).");
    let _ = writeln!(
        o,
        "keyplane_verification_cache_lookups_total{{result=\"hit\"}} {hits}"
    );
    let _ = writeln!(
        o,
        "keyplane_verification_cache_lookups_total{{result=\"negative_hit\"}} {negative_hits}"
    );
    let _ = writeln!(
        o,
        "keyplane_verification_cache_lookups_total{{result=\"miss\"}} {misses}"
    );
    let (positive, negative) = (cache.positive_entries, cache.negative_entries);
    header(
        o,
        "keyplane_verification_cache_entries",
        "gauge",
        "Entries in the verification cache.",
    );
    let _ = writeln!(
        o,
        "keyplane_verification_cache_entries{{cache=\"positive\"}} {positive}"
    );
    let _ = writeln!(
        o,
        "keyplane_verification_cache_entries{{cache=\"negative\"}} {negative}"
    );

    header(
        o,
        "keyplane_store_operation_duration_seconds",
        "histogram",
        "Store calls, by operation.",
    );
    for (i, op) in m.store_operations.iter().enumerate() {
        let h = m.store.histogram(i * super::HISTOGRAM_CELLS);
        if h.count > 0 {
            histogram(
                o,
                "keyplane_store_operation_duration_seconds",
                &format!("operation=\"{op}\""),
                &h,
            );
        }
    }
    header(
        o,
        "keyplane_store_errors_total",
        "counter",
        "Store calls that failed, by operation.",
    );
    for (i, op) in m.store_operations.iter().enumerate() {
        let n = m.store.get(m.store_errors_base() + i);
        if n > 0 {
            let _ = writeln!(o, "keyplane_store_errors_total{{operation=\"{op}\"}} {n}");
        }
    }

    header(
        o,
        "keyplane_store_pool_connections",
        "gauge",
        "Open database connections per pool, by state.",
    );
    for p in pools {
        let in_use = p.size.saturating_sub(p.idle);
        let _ = writeln!(
            o,
            "keyplane_store_pool_connections{{pool=\"{}\",state=\"in_use\"}} {in_use}",
            p.pool
        );
        let _ = writeln!(
            o,
            "keyplane_store_pool_connections{{pool=\"{}\",state=\"idle\"}} {}",
            p.pool, p.idle
        );
    }
    header(
        o,
        "keyplane_store_pool_max_connections",
        "gauge",
        "Most connections a pool opens.",
    );
    for p in pools {
        let _ = writeln!(
            o,
            "keyplane_store_pool_max_connections{{pool=\"{}\"}} {}",
            p.pool, p.max
        );
    }
    out
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn http_labels(l: &super::http::Labels, status: Option<u16>) -> String {
    let status = status.map_or_else(|| "other".to_owned(), |s| s.to_string());
    format!(
        "route=\"{}\",method=\"{}\",status=\"{status}\"",
        escape(&l.route),
        l.method,
    )
}

fn histogram(o: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (le, n) in LATENCY_BOUNDS_US.iter().zip(h.buckets) {
        cumulative += n;
        let _ = writeln!(
            o,
            "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
            seconds(*le)
        );
    }
    // Shards are read one after another while requests land: never let +Inf fall below a
    // finite bucket.
    let count = h.count.max(cumulative);
    let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum{{{labels}}} {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(o, "{name}_count{{{labels}}} {count}");
}

/// Microseconds as decimal seconds without float noise (`100` → `0.0001`).
fn seconds(us: u64) -> String {
    let frac = us % 1_000_000;
    if frac == 0 {
        return (us / 1_000_000).to_string();
    }
    let digits = format!("{frac:06}");
    format!("{}.{}", us / 1_000_000, digits.trim_end_matches('0'))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounds_print_as_exact_decimals() {
        assert_eq!(super::seconds(100), "0.0001");
        assert_eq!(super::seconds(2_500), "0.0025");
        assert_eq!(super::seconds(1_000_000), "1");
        assert_eq!(super::seconds(2_500_000), "2.5");
    }
}

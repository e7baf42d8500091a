//! OpenAI's `x-ratelimit-*` headers on an admitted check: the `-requests` trio (limit,
//! remaining, reset) and the `-tokens` trio when a token limit applies.
//!
//! Rendered per key into a ready map, like the identity headers (`check.rs`): the trios' names
//! come first, with the limit already rendered, then the identity's entries. A check clones it
//! and writes remaining and reset in place: no insert (each hashes its name), no growth of the
//! clone, no entry to step over, and the limit (the same on every request until it changes) is
//! neither formatted nor validated again.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::service::admission::{write_openai_duration, Gauge};

static LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
static LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
static REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
static RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

/// Each kind's names: limit, remaining, reset.
const TRIOS: [[&HeaderName; 3]; 2] = [
    [&LIMIT_REQUESTS, &REMAINING_REQUESTS, &RESET_REQUESTS],
    [&LIMIT_TOKENS, &REMAINING_TOKENS, &RESET_TOKENS],
];

/// Most headers a response carries here.
const MOST: usize = 6;

/// Which trios an admitted response carries: 0 none, 1 requests, 2 tokens, 3 both.
pub fn shape(requests: Option<Gauge>, tokens: Option<Gauge>) -> usize {
    usize::from(requests.is_some()) | usize::from(tokens.is_some()) << 1
}

/// The ready map of one shape for one key.
pub struct RateLimitHeaders {
    map: HeaderMap,
    /// The limit rendered into `map` for each kind (requests, tokens).
    limits: [Option<i64>; 2],
}

impl RateLimitHeaders {
    /// The trios of the gauges present (their limits rendered, the rest empty), then `rest`.
    pub fn new(rest: &HeaderMap, requests: Option<Gauge>, tokens: Option<Gauge>) -> Self {
        let mut map = HeaderMap::with_capacity(MOST + rest.len());
        let mut limits = [None; 2];
        for (kind, (gauge, [limit, remaining, reset])) in
            [requests, tokens].iter().zip(TRIOS).enumerate()
        {
            let Some(g) = gauge else { continue };
            map.insert(limit, HeaderValue::from(g.limit));
            map.insert(remaining, HeaderValue::from_static(""));
            map.insert(reset, HeaderValue::from_static(""));
            limits[kind] = Some(g.limit);
        }
        for (name, value) in rest {
            map.insert(name.clone(), value.clone());
        }
        Self { map, limits }
    }

    /// A response's headers: a clone with the gauges' values written in place. The gauges
    /// have this map's shape.
    pub fn render(&self, requests: Option<Gauge>, tokens: Option<Gauge>) -> HeaderMap {
        let mut h = self.map.clone();
        // The values written into one buffer that becomes one `Bytes`, each header a slice of
        // it: one allocation (and one to share it), not one per value.
        let mut text = String::with_capacity(64);
        // (entry, end of its value in `text`), in entry order.
        let mut writes = [(0usize, 0usize); MOST];
        let mut w = 0;
        let mut entry = 0;
        let mut digits = itoa::Buffer::new();
        for (kind, gauge) in [requests, tokens].iter().enumerate() {
            let Some(g) = gauge else { continue };
            if self.limits[kind] != Some(g.limit) {
                text.push_str(digits.format(g.limit));
                writes[w] = (entry, text.len());
                w += 1;
            }
            text.push_str(digits.format(g.remaining.max(0)));
            writes[w] = (entry + 1, text.len());
            write_openai_duration(g.reset_ms, &mut text);
            writes[w + 1] = (entry + 2, text.len());
            w += 2;
            entry += 3;
        }
        let all = Bytes::from(text);
        let mut start = 0;
        let mut pending = writes[..w].iter().peekable();
        for (i, (name, slot)) in h.iter_mut().enumerate().take(entry) {
            debug_assert!(
                TRIOS.iter().flatten().any(|n| *n == name),
                "{name} is not a trio's"
            );
            if let Some(&(_, end)) = pending.next_if(|(at, _)| *at == i) {
                if let Ok(v) = HeaderValue::from_maybe_shared(all.slice(start..end)) {
                    *slot = v;
                }
                start = end;
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(limit: i64, remaining: i64, reset_ms: i64) -> Option<Gauge> {
        Some(Gauge {
            limit,
            remaining,
            reset_ms,
        })
    }

    fn pairs(h: &HeaderMap) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn the_trios_come_first_and_carry_this_requests_values() {
        let mut rest = HeaderMap::new();
        rest.insert("x-keyplane-key-id", HeaderValue::from_static("key_1"));
        let ready = RateLimitHeaders::new(&rest, gauge(60, 59, 1_000), gauge(1000, 1000, 0));
        let h = ready.render(gauge(60, 12, 6_500), gauge(1000, 250, 61_000));
        let expected = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "12"),
            ("x-ratelimit-reset-requests", "6.5s"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "250"),
            ("x-ratelimit-reset-tokens", "1m1s"),
            ("x-keyplane-key-id", "key_1"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs(&h), expected);
        // The ready map itself is untouched: the next request starts from it again.
        assert_eq!(
            pairs(&ready.render(gauge(60, 0, 10), gauge(1000, 0, 0)))[..3],
            expected[..1]
                .iter()
                .cloned()
                .chain([
                    ("x-ratelimit-remaining-requests".into(), "0".into()),
                    ("x-ratelimit-reset-requests".into(), "10ms".into()),
                ])
                .collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn a_changed_limit_is_written_and_negative_remaining_is_zero() {
        let ready = RateLimitHeaders::new(&HeaderMap::new(), None, gauge(500, 499, 1));
        let h = ready.render(None, gauge(20, -3, 59_000));
        assert_eq!(
            pairs(&h),
            [
                ("x-ratelimit-limit-tokens".to_owned(), "20".to_owned()),
                ("x-ratelimit-remaining-tokens".to_owned(), "0".to_owned()),
                ("x-ratelimit-reset-tokens".to_owned(), "59s".to_owned()),
            ]
        );
        assert_eq!(shape(None, gauge(1, 1, 1)), 2);
        assert_eq!(shape(gauge(1, 1, 1), gauge(1, 1, 1)), 3);
        assert_eq!(shape(None, None), 0);
    }
}

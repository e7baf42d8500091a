//! Gives every request an `x-request-id`, logs one line per request under it, and counts it
//! in the request metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::extract::{MatchedPath, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::domain::audit::Origin;
use crate::domain::ids::Kind;
use crate::domain::random;
use crate::metrics::http::method_label;
use crate::metrics::Metrics;
use crate::service::{Access, Principal, TokenIdentity};

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    /// `req_` + a per-process random prefix + a counter: unique without a syscall per request
    /// (request ids are correlation handles, not secrets).
    fn generate() -> Self {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut b = [0u8; 4];
            // Without the OS random source, fall back to the start time: still distinct enough.
            if random::fill(&mut b).is_err() {
                b = (std::process::id() ^ crate::domain::time::Clock::system().now() as u32)
                    .to_be_bytes();
            }
            u32::from_be_bytes(b)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&prefix.to_be_bytes());
        raw[4..].copy_from_slice(&n.to_be_bytes());
        // Into a stack buffer: one id per request, so no allocation beyond the id itself.
        let mut digits = [0u8; 24];
        let mut s = String::with_capacity(4 + digits.len());
        s.push_str("req_");
        if hex::encode_to_slice(raw, &mut digits).is_ok() {
            s.push_str(std::str::from_utf8(&digits).unwrap_or_default());
        }
        Self(s)
    }
}

/// Where a request came from, for the audit log. `X-Client-Request-ID` is kept only when it
/// is short visible ASCII (the Keycard dialect has already insisted on a UUID); the address is
/// the TCP peer, present when the server was started with connect info (`app::serve_on`).
pub fn origin(parts: &Parts) -> Origin {
    Origin {
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        client_request_id: parts
            .headers
            .get("x-client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned),
        ip_address: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
    }
}

/// Set on every response. A handler whose response map has no spare room may put it in
/// with an empty value: the id then replaces it in place.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of requests no route matched (the raw path would let clients mint series).
const UNMATCHED: &str = "unmatched";

/// Runs after routing (it is a `Router::layer`), so the matched route template is known.
pub async fn tag_and_log(
    State(metrics): State<Arc<Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = RequestId::generate();
    req.extensions_mut().insert(id.clone());
    let route = route_label(req.extensions().get::<MatchedPath>());
    // Looked up now, while the template is borrowed from the request: nothing to clone.
    let series = metrics.http.route(route, method_label(req.method()));
    // Only method and path are logged: headers carry credentials and are never recorded.
    // `client_request_id` is filled in by the Keycard dialect from `X-Client-Request-ID`,
    // `actor` by the authentication extractors ([`record_actor`]).
    let span = tracing::info_span!(
        "http",
        request_id = %id.0,
        method = %req.method(),
        route,
        path = %req.uri().path(),
        client_request_id = tracing::field::Empty,
        actor = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        // Replaces a placeholder where a handler left one (the gateway check's ready headers).
        res.headers_mut().insert(&REQUEST_ID_HEADER, v);
    }
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = res.status().as_u16();
    metrics.http.record(series, status, micros);
    span.in_scope(|| tracing::info!(status, latency_us = micros, "request"));
    res
}

fn route_label(matched: Option<&MatchedPath>) -> &str {
    match matched {
        // A nested router's fallback matches axum's internal catch-all: not a route of ours.
        // Its name ends the path (`{*__private__…}`): test the last byte before searching.
        Some(m) if !(m.as_str().ends_with('}') && m.as_str().contains("__private__")) => m.as_str(),
        _ => UNMATCHED,
    }
}

/// Names who is acting on the current request's log line: an admin key id (`key_…`), a
/// verified key's id on `/v1/auth/check`, or `credential:<id>` for an access token. Never a
/// secret: only ids.
pub fn record_actor(actor: &str) {
    // With request logging off (e.g. `KEYPLANE_LOG=warn`, as under load) this skips the span
    // lookup: it runs on every verification.
    if tracing::enabled!(tracing::Level::INFO) {
        tracing::Span::current().record("actor", actor);
    }
}

/// The actor of an admin-key caller (`key_…`) or of a service account acting through an
/// access token (`service_account:<id>`, when the credential is not at hand).
pub fn principal_actor(p: &Principal) -> String {
    match &p.access {
        Access::AdminKey(id) | Access::AdminReader(id) | Access::UsageReporter(id) => {
            Kind::ApiKey.render_openai(id)
        }
        Access::ServiceAccount(id) => format!("service_account:{}", id.as_str()),
    }
}

/// The actor of a service account acting through an access token: the credential that
/// obtained it, or the federation rule that minted it.
pub fn token_actor(t: &TokenIdentity) -> String {
    match &t.claims.fr {
        Some(rule) => format!("federation_rule:{rule}"),
        None => format!("credential:{}", t.claims.cid),
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_req_prefix_and_counter_in_hex() {
        let (a, b) = (RequestId::generate().0, RequestId::generate().0);
        for id in [&a, &b] {
            assert_eq!(id.len(), 28, "{id}");
            assert!(id.starts_with("req_"));
            assert!(id[4..]
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        }
        assert_eq!(a[..12], b[..12], "one prefix per process");
        let n = |id: &str| u64::from_str_radix(&id[12..], 16).unwrap();
        assert!(n(&b) > n(&a));
    }
}

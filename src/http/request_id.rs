//! Gives every request an `x-request-id`, and logs one line per request under it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::domain::random;

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    fn generate() -> Self {
        let mut bytes = [0u8; 12];
        if random::fill(&mut bytes).is_err() {
            // A request id need not be secret; never fail a request for want of one.
            static FALLBACK: AtomicU64 = AtomicU64::new(0);
            bytes[..8].copy_from_slice(&FALLBACK.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        }
        let mut s = String::with_capacity(4 + 24);
        s.push_str("req_");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Self(s)
    }
}

pub async fn tag_and_log(mut req: Request, next: Next) -> Response {
    let id = RequestId::generate();
    req.extensions_mut().insert(id.clone());
    // Only method and path are logged: headers carry credentials and are never recorded.
    let span = tracing::info_span!("http", request_id = %id.0, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        res.headers_mut().insert("x-request-id", v);
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        )
    });
    res
}

//! The HTTP side of brute-force throttling: who the source of a request is, refusing a
//! blocked source (429 + `Retry-After`, in the dialect's envelope; at the check also
//! `X-Keyplane-Reason`, and 403 for nginx, see [`super::gateway`]) before any handler looks a
//! key up, and counting refused credentials afterwards.
//!
//! A tower layer rather than `middleware::from_fn`: that boxes a future per request, and this
//! wraps `/v1/auth/check`, whose success path allocates nothing.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::console_session::SESSION_PATH;
use super::gateway::{self, Admission};
use super::keycard::error::KcError;
// The token endpoint: its credentials may be in the form body, not in `Authorization`.
use super::keycard::token::TOKEN_PATH;
use super::openai::error::ApiError;
use super::token_exchange::EXCHANGE_PATH;
use crate::service::throttle::{in_any, AuthThrottle};

/// Put on a response whose request presented a credential that was refused without a 401
/// (`/v1/keys/verify` answers 200 `valid: false`): it counts as a failure of the source.
#[derive(Clone, Copy, Debug)]
pub struct AuthFailed;

/// The address failures are counted against: the TCP peer, or, when the peer is a trusted
/// proxy, the client it names: the rightmost `X-Forwarded-For` entry that is not itself a
/// trusted proxy, else `X-Real-IP`. `None` without connect info (in-process tests).
pub fn source(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| in_any(trusted, ip);
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut forwarded = headers.get_all("x-forwarded-for").iter().rev().peekable();
    if forwarded.peek().is_some() {
        for value in forwarded {
            let Ok(value) = value.to_str() else {
                return Some(peer);
            };
            for hop in value.rsplit(',') {
                match parse_hop(hop) {
                    Some(ip) if is_trusted(ip) => continue,
                    Some(ip) => return Some(ip),
                    // Garbage (or `unknown`) cannot be attributed: the proxy answers for it.
                    None => return Some(peer),
                }
            }
        }
        return Some(peer);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_hop)
        .or(Some(peer))
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Whether the request presents a credential to an endpoint that checks it (so it can fail
/// authentication). Probes, docs and the public key set ignore credentials, so a blocked source
/// can still reach them even when its client sends a key with every request.
fn presents_credentials(req: &Request) -> bool {
    let path = req.uri().path();
    if path == TOKEN_PATH || path == EXCHANGE_PATH || path == SESSION_PATH {
        return true;
    }
    let authenticated = path.starts_with("/v1/") || path.starts_with("/organizations/");
    // A console session cookie is a credential too (cookies are looked at only when there is
    // no `Authorization`, so the gateway check, which always has one, pays nothing more).
    authenticated
        && (req.headers().contains_key(header::AUTHORIZATION)
            || req.headers().contains_key(header::COOKIE))
}

/// The refusal of a blocked source; `nginx`: the check was asked for in nginx mode.
fn too_many(path: &str, wait: Duration, nginx: bool) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let message = format!(
        "Too many failed authentication attempts from your address. Retry after {secs} seconds."
    );
    if gateway::is_check(path) {
        return gateway::refuse(
            Admission::RateLimited,
            "rate_limit_exceeded",
            message,
            Some(secs),
            nginx,
        );
    }
    let oauth = path == TOKEN_PATH || path == EXCHANGE_PATH;
    let mut res = if oauth {
        // RFC 6749 has no code for this; `temporarily_unavailable` is its nearest.
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": message,
            })),
        )
            .into_response()
    } else if path.starts_with("/organizations") {
        KcError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message).into_response()
    } else {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Some("rate_limit_exceeded"),
            message,
        )
        .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    if oauth {
        // Like every answer of the token endpoints (RFC 6749 §5.1).
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

#[derive(Clone)]
pub struct ThrottleLayer(pub Arc<AuthThrottle>);

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttled<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttled {
            inner,
            throttle: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Throttled<S> {
    inner: S,
    throttle: Arc<AuthThrottle>,
}

impl<S> Service<Request> for Throttled<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ThrottleFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let watched = presents_credentials(&req)
            .then(|| {
                let peer = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                source(
                    req.headers(),
                    peer,
                    &self.throttle.settings().trusted_proxies,
                )
            })
            .flatten();
        if let Some(src) = watched {
            if let Some(wait) = self.throttle.blocked(src) {
                tracing::debug!(source = %src, "authentication throttled");
                let nginx = gateway::nginx_mode(req.headers());
                return ThrottleFuture::Refused {
                    response: Some(too_many(req.uri().path(), wait, nginx)),
                };
            }
        }
        ThrottleFuture::Watched {
            inner: self.inner.call(req),
            failures: watched.map(|src| (src, self.throttle.clone())),
        }
    }
}

pin_project! {
    #[project = Projection]
    pub enum ThrottleFuture<F> {
        Refused { response: Option<Response> },
        Watched {
            #[pin]
            inner: F,
            failures: Option<(IpAddr, Arc<AuthThrottle>)>,
        },
    }
}

impl<F> Future for ThrottleFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
            Projection::Watched { inner, failures } => {
                let Ok(res) = ready!(inner.poll(cx));
                if let Some((src, throttle)) = failures.take() {
                    let failed = res.status() == StatusCode::UNAUTHORIZED
                        || res.extensions().get::<AuthFailed>().is_some();
                    if failed && throttle.failed(src).is_some() {
                        tracing::warn!(source = %src, "too many failed authentications: source blocked");
                    }
                }
                Poll::Ready(Ok(res))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::throttle::parse_cidrs;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_source_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted = parse_cidrs("10.0.0.0/8").unwrap();
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 198.51.100.2, 10.0.0.5")]);
        // An untrusted peer cannot choose its source by sending the header.
        assert_eq!(source(&xff, Some(stranger), &trusted), Some(stranger));
        assert_eq!(
            source(&xff, Some(proxy), &trusted),
            Some("198.51.100.2".parse().unwrap())
        );
        let real = headers(&[("x-real-ip", "198.51.100.7")]);
        assert_eq!(
            source(&real, Some(proxy), &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        let two = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "[2001:db8::1]:443"),
        ]);
        assert_eq!(
            source(&two, Some(proxy), &trusted),
            Some("2001:db8::1".parse().unwrap())
        );
        let garbage = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(source(&garbage, Some(proxy), &trusted), Some(proxy));
        assert_eq!(source(&xff, None, &trusted), None);
    }
}

//! How `/v1/auth/check` tells a gateway about a refusal that is not about the credential itself
//! (admission): the reason, in `X-Keyplane-Reason`, and a status the gateway passes on:
//! brute-force throttling, rate limits and token budgets (429), allowlists and disabled keys
//! (403), and counts a node cannot be sure of (503).
//!
//! Traefik's `forwardAuth` and Envoy's `ext_authz` pass the check's status on, so it is 429 for
//! a rate refusal. nginx's `auth_request` passes on only 401 and 403 and turns every other status
//! into 500, so a check that carries `X-Keyplane-Gateway: nginx` (the documented snippet sets it
//! on its subrequest) gets every admission refusal as 403, with the same reason and, for the
//! rate refusals, `Retry-After`; the snippet answers a 403 with `Retry-After` as 429.
//!
//! The mode is not reserved to trusted peers: all it changes is the status code of a request
//! that is refused either way, so a client that sends the header itself (through a gateway that
//! passes it on) only gets its own refusal as 403 instead of 429.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::openai::error::{ApiError, SHOULD_RETRY};

/// The check; its sub-paths (Envoy appends the original path) are the same check.
pub const CHECK_PATH: &str = "/v1/auth/check";

/// Request header: `nginx` asks for nginx mode.
pub static GATEWAY: HeaderName = HeaderName::from_static("x-keyplane-gateway");
/// Response header: why a request was refused although its credential may be valid.
pub static REASON: HeaderName = HeaderName::from_static("x-keyplane-reason");

/// Why a request was refused although its credential may be valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Too many failed authentications from the request's source (brute-force throttling).
    RateLimited,
    /// A rate limit or token budget of the key or its project × model has no room.
    LimitExceeded,
    /// The client's address is not on the project's or the key's allowlist.
    IpNotAllowed,
    /// The key is disabled.
    KeyDisabled,
    /// This node cannot be sure of the counts shared with other nodes (fail closed).
    Unavailable,
}

impl Admission {
    /// The value of `X-Keyplane-Reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "rate_limit_exceeded",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::KeyDisabled => "key_disabled",
            Self::Unavailable => "admission_unavailable",
        }
    }

    /// Its status outside nginx mode.
    fn status(self) -> StatusCode {
        match self {
            Self::RateLimited | Self::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::IpNotAllowed | Self::KeyDisabled => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether `path` is the check or one of its sub-paths.
pub fn is_check(path: &str) -> bool {
    path.strip_prefix(CHECK_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether the check was asked for in nginx mode (`X-Keyplane-Gateway: nginx`).
pub fn nginx_mode(headers: &HeaderMap) -> bool {
    headers
        .get(&GATEWAY)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"nginx"))
}

/// The check's answer to an admission refusal, in the OpenAI envelope with `code`: its status
/// (403 in nginx mode), `X-Keyplane-Reason` and, when the refusal ends, `Retry-After`.
pub fn refuse(
    reason: Admission,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
    nginx: bool,
) -> Response {
    let status = if nginx {
        StatusCode::FORBIDDEN
    } else {
        reason.status()
    };
    let mut res = ApiError::new(status, Some(code), message).into_response();
    let h = res.headers_mut();
    h.insert(&REASON, HeaderValue::from_static(reason.as_str()));
    if let Some(secs) = retry_after_secs {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        // A 403 is marked as not worth retrying; this one ends.
        if status == StatusCode::FORBIDDEN {
            h.remove(&SHOULD_RETRY);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_and_its_sub_paths_are_the_check() {
        assert!(is_check("/v1/auth/check"));
        assert!(is_check("/v1/auth/check/"));
        assert!(is_check("/v1/auth/check/upstream/path"));
        assert!(!is_check("/v1/auth/checkout"));
        assert!(!is_check("/v1/keys/verify"));
    }

    #[test]
    fn only_nginx_asks_for_nginx_mode() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(&GATEWAY, HeaderValue::from_static(v));
            nginx_mode(&h)
        };
        assert!(with("nginx"));
        assert!(with("NGINX"));
        assert!(!with("traefik"));
        assert!(!with("nginx, nginx"));
        assert!(!nginx_mode(&HeaderMap::new()));
    }
}

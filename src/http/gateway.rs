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

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::openai::error::{ApiError, SHOULD_RETRY};
use super::request_id::REQUEST_ID_HEADER;

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
    let status = status(reason, nginx);
    let ready = ready_headers(reason, nginx, retry_after_secs.is_some());
    let body = ApiError::new(status, Some(code), message).body();
    let mut headers = ready.map.clone();
    for (i, value) in headers.values_mut().enumerate() {
        if i == ready.length {
            *value = HeaderValue::from(body.len());
        } else if Some(i) == ready.retry_after {
            *value = HeaderValue::from(retry_after_secs.unwrap_or_default());
        }
    }
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

fn status(reason: Admission, nginx: bool) -> StatusCode {
    if nginx {
        StatusCode::FORBIDDEN
    } else {
        reason.status()
    }
}

/// A refusal's headers, ready but for two values: what [`ApiError`] puts on its envelope, the
/// reason, `Retry-After` when the refusal ends (then without the 403's `x-should-retry`), and
/// places for the request id and the body's length, which would otherwise be inserted after
/// the handler. Cloned per refusal, so that a flood over a limit inserts nothing (each insert
/// hashes its name) and costs no more than the admitted checks.
struct ReadyHeaders {
    map: HeaderMap,
    /// Where the values to fill are, in `map`'s order.
    retry_after: Option<usize>,
    length: usize,
}

/// One per (reason, nginx mode, whether the refusal ends), made when first needed.
fn ready_headers(reason: Admission, nginx: bool, ends: bool) -> &'static ReadyHeaders {
    const KINDS: usize = 5 * 2 * 2;
    static READY: [OnceLock<ReadyHeaders>; KINDS] = [const { OnceLock::new() }; KINDS];
    let kind = reason as usize * 4 + usize::from(nginx) * 2 + usize::from(ends);
    READY[kind % KINDS].get_or_init(|| {
        let status = status(reason, nginx);
        let mut map = ApiError::new(status, Some(""), String::new())
            .into_response()
            .headers()
            .clone();
        map.insert(&REASON, HeaderValue::from_static(reason.as_str()));
        if ends {
            map.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            // A 403 is marked as not worth retrying; this one ends.
            if status == StatusCode::FORBIDDEN {
                map.remove(&SHOULD_RETRY);
            }
        }
        map.insert(&REQUEST_ID_HEADER, HeaderValue::from_static(""));
        map.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let at = |name: &HeaderName| map.keys().position(|k| k == name);
        ReadyHeaders {
            retry_after: ends.then(|| at(&header::RETRY_AFTER)).flatten(),
            length: at(&header::CONTENT_LENGTH).unwrap_or(usize::MAX),
            map,
        }
    })
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    /// What a refusal carried when built header by header (before the ready maps), plus the
    /// two entries added after the handler.
    fn inserted_one_by_one(
        reason: Admission,
        message: &str,
        retry: Option<u64>,
        nginx: bool,
    ) -> Vec<(String, String)> {
        let status = status(reason, nginx);
        let body = ApiError::new(status, Some("some_code"), message).body();
        let mut res = ApiError::new(status, Some("some_code"), message).into_response();
        let h = res.headers_mut();
        h.insert(&REASON, HeaderValue::from_static(reason.as_str()));
        if let Some(secs) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            if status == StatusCode::FORBIDDEN {
                h.remove(&SHOULD_RETRY);
            }
        }
        h.insert(&REQUEST_ID_HEADER, HeaderValue::from_static(""));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        sorted(h)
    }

    fn sorted(h: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn refusals_from_ready_headers_are_what_inserting_them_gave() {
        let reasons = [
            Admission::RateLimited,
            Admission::LimitExceeded,
            Admission::IpNotAllowed,
            Admission::KeyDisabled,
            Admission::Unavailable,
        ];
        for reason in reasons {
            for nginx in [false, true] {
                for retry in [None, Some(7), Some(86_400)] {
                    // Twice: the second one is cloned from the map the first one made.
                    for message in ["Slow down \"now\".", "Rate limit reached."] {
                        let res = refuse(reason, "some_code", message.to_owned(), retry, nginx);
                        assert_eq!(res.status(), status(reason, nginx));
                        assert_eq!(
                            sorted(res.headers()),
                            inserted_one_by_one(reason, message, retry, nginx),
                            "{reason:?} nginx={nginx} retry={retry:?}"
                        );
                        let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
                        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(json["error"]["message"], message);
                        assert_eq!(json["error"]["code"], "some_code");
                    }
                }
            }
        }
    }

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

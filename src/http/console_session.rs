//! The console's session cookie on the public API: with it, the console calls the same API as
//! the SDKs. [`cookie_principal`] is how both dialects' extractors accept it when no
//! `Authorization` header is sent, refusing state-changing requests that do not prove they
//! come from the console itself (see [`check_csrf`]). The session endpoints that set and
//! clear the cookie are in `console_api.rs`.
//!
//! The cookie is ours alone, one name with a base64url value, so reading it needs none of a
//! cookie crate's quoting rules; what it is sent with (`HttpOnly`, `SameSite=Strict`,
//! `Secure` under TLS) is written out here, where a reviewer can see it.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use subtle::ConstantTimeEq;

use super::openai::error::ApiError;
use super::AppState;
use crate::domain::console::csrf_token;
use crate::service::{AuthFailure, Principal, ServiceError, SessionView};

pub const SESSION_PATH: &str = "/console/api/session";
pub const COOKIE_NAME: &str = "keyplane_console";
pub const CSRF_HEADER: &str = "x-keyplane-csrf";

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then_some(value.trim_matches('"'))
        })
}

/// Why a cookie-authenticated request was refused.
#[derive(Debug)]
pub enum ConsoleRefusal {
    /// A state-changing request that did not prove it comes from the console (403).
    Csrf(&'static str),
    /// The session: unknown, ended, expired, or its key no longer valid (401); or the store.
    Service(ServiceError),
}

impl From<ConsoleRefusal> for ApiError {
    fn from(refusal: ConsoleRefusal) -> Self {
        match refusal {
            ConsoleRefusal::Csrf(why) => {
                ApiError::new(StatusCode::FORBIDDEN, Some("csrf_failed"), why)
            }
            ConsoleRefusal::Service(ServiceError::Unauthenticated(why)) => session_ended(why),
            ConsoleRefusal::Service(other) => other.into(),
        }
    }
}

/// A session that cannot act, in words for the person at the console.
fn session_ended(why: AuthFailure) -> ApiError {
    let message = match why {
        AuthFailure::SessionUnknown | AuthFailure::SessionExpired => {
            return ApiError::unauthenticated(why, None)
        }
        AuthFailure::Revoked => "Your console session ended: its admin key has been deleted.",
        AuthFailure::Expired => "Your console session ended: its admin key has expired.",
        AuthFailure::Disabled(_) => "Your console session ended: its admin key has been disabled.",
        _ => "Your console session ended: its admin key is no longer valid.",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, Some("session_ended"), message)
}

/// The caller behind the console session cookie: `None` when the request carries no cookie
/// of ours, or carries `Authorization`, which then wins (the caller is its bearer, as before).
pub async fn cookie_principal(
    parts: &Parts,
    state: &AppState,
) -> Option<Result<Principal, ConsoleRefusal>> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let token = session_cookie(&parts.headers)?;
    Some(session_of(parts, state, token).await.map(|view| {
        crate::http::record_actor(&crate::http::principal_actor(&view.principal));
        let mut principal = view.principal;
        principal.origin = crate::http::origin(parts);
        principal
    }))
}

pub async fn session_of(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<SessionView, ConsoleRefusal> {
    // The session first: a request without one is "sign in", not "forged".
    let view = state
        .service
        .console_session(token)
        .await
        .map_err(ConsoleRefusal::Service)?;
    check_csrf(parts, token)?;
    Ok(view)
}

/// A state-changing request with the session cookie must come from the console's own pages:
/// `SameSite=Strict` keeps other sites' requests from carrying the cookie at all in current
/// browsers; in addition the request must carry the session's anti-CSRF token (which only
/// script of this origin can have read) and, where the browser says where it comes from, come
/// from this origin.
pub fn check_csrf(parts: &Parts, token: &str) -> Result<(), ConsoleRefusal> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    same_origin(&parts.headers)?;
    let presented = parts
        .headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let expected = csrf_token(token);
    if !bool::from(presented.ct_eq(expected.as_bytes())) {
        return Err(ConsoleRefusal::Csrf(
            "This request must carry the console session's X-Keyplane-CSRF token.",
        ));
    }
    Ok(())
}

/// `Sec-Fetch-Site` and `Origin`, when the browser sends them, must say "this origin". The
/// origin is compared by host and port with `Host` (a TLS-terminating proxy changes the
/// scheme, not the host, when it passes `Host` on as it should).
pub fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleRefusal> {
    let refuse = || ConsoleRefusal::Csrf("Cross-origin requests may not use the console session.");
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(refuse());
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
    });
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(session_cookie(&headers(&[])), None);
        let h = headers(&[("cookie", "a=1; keyplane_console=abc; b=2")]);
        assert_eq!(session_cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "keyplane_console=xyz")]);
        assert_eq!(session_cookie(&h), Some("xyz"));
        let h = headers(&[("cookie", "keyplane_consolex=1; xkeyplane_console=2")]);
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn only_this_origin_may_use_the_session() {
        let ok = |pairs: &[(&'static str, &str)]| same_origin(&headers(pairs)).is_ok();
        assert!(ok(&[("host", "127.0.0.1:8080")]));
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(ok(&[
            ("host", "Keys.Example"),
            ("origin", "https://keys.example")
        ]));
        assert!(ok(&[("sec-fetch-site", "same-origin"), ("host", "h")]));
        assert!(!ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8081")
        ]));
        assert!(!ok(&[("host", "h"), ("origin", "null")]));
        assert!(!ok(&[("origin", "http://h")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site"), ("host", "h")]));
        assert!(!ok(&[("sec-fetch-site", "same-site"), ("host", "h")]));
    }
}

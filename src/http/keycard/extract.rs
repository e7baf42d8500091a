//! Request parsing for the Keycard dialect: caller and organization, `X-Client-Request-ID`,
//! `expand`, two-way cursors and JSON bodies, every rejection in the Keycard envelope.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::KcError;
use crate::domain::cursor::CursorSigner;
use crate::domain::ids::Id;
use crate::domain::page::{Window, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::console_session::{cookie_principal, ConsoleRefusal};
use crate::http::extract::{bearer_token, raw_path, read_json, QueryPairs};
use crate::http::AppState;
use crate::service::{Accepting, Bearer, Principal, ServiceError};

static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

/// Checks `X-Client-Request-ID` (a UUID when present), ties it to the request's log line and
/// echoes it on the response.
pub async fn client_request_id(req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get(&CLIENT_REQUEST_ID).cloned() else {
        return next.run(req).await;
    };
    let valid = raw.to_str().ok().filter(|s| is_uuid(s));
    let Some(id) = valid else {
        return KcError::bad_request(
            "invalid_request_id",
            "X-Client-Request-ID must be a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000).",
        )
        .into_response();
    };
    tracing::Span::current().record("client_request_id", id);
    let mut res = next.run(req).await;
    res.headers_mut().insert(CLIENT_REQUEST_ID.clone(), raw);
    res
}

/// RFC 9562 text form: 8-4-4-4-12 hex digits, either case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The caller, acting in the organization named by the `{organization_id}` path segment (its
/// ID or its label). Another organization's ID or label is "not found", like everything else
/// of other organizations.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = KcError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, KcError> {
        let service = &state.service;
        let mut principal = match cookie_principal(parts, state).await {
            Some(session) => session.map_err(session_refused)?,
            None => bearer_principal(parts, state).await?,
        };
        let params = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| KcError::not_found("Organization"))?;
        let named = params.get("organization_id").map(String::as_str);
        let Some(named) = named.filter(|n| !n.is_empty() && n.len() <= 255) else {
            return Err(KcError::not_found("Organization"));
        };
        // The ID first; only then the label, which needs the organization's record.
        if Id::parse(named).as_ref() != Some(&principal.organization_id) {
            let org = service.organization(&principal).await?;
            if org.label != named {
                return Err(KcError::not_found("Organization"));
            }
        }
        principal.origin = crate::http::origin(parts);
        Ok(Caller(principal))
    }
}

/// A refused console session, in this dialect's envelope.
fn session_refused(refusal: ConsoleRefusal) -> KcError {
    match refusal {
        ConsoleRefusal::Csrf(why) => {
            KcError::new(axum::http::StatusCode::FORBIDDEN, "csrf_failed", why)
        }
        ConsoleRefusal::Service(ServiceError::Unauthenticated(_)) => KcError::unauthorized(),
        ConsoleRefusal::Service(other) => other.into(),
    }
}

/// An admin key or an access token of the organization's service accounts.
async fn bearer_principal(parts: &Parts, state: &AppState) -> Result<Principal, KcError> {
    let Ok(Some(presented)) = bearer_token(&parts.headers) else {
        return Err(KcError::unauthorized());
    };
    match state
        .service
        .identify(presented, Accepting::AdminKeys)
        .await
    {
        Ok(Bearer::Admin(p)) => {
            crate::http::record_actor(&crate::http::principal_actor(&p));
            // A gateway's key (only `api.usage.write`) may not even read here.
            p.require(crate::service::Action::Read)?;
            Ok(*p)
        }
        Ok(Bearer::Token(t)) => {
            crate::http::record_actor(&crate::http::token_actor(&t));
            Ok(t.principal())
        }
        Ok(Bearer::InvalidToken | Bearer::ServiceKey(_)) => Err(KcError::unauthorized()),
        Err(ServiceError::Unauthenticated(why)) => {
            tracing::debug!(reason = ?why, "keycard authentication refused");
            Err(KcError::unauthorized())
        }
        Err(other) => Err(other.into()),
    }
}

/// Path parameters as raw strings (percent-decoded), see [`raw_path`].
pub struct KcPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for KcPath<T> {
    type Rejection = KcError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, KcError> {
        Ok(KcPath(raw_path(parts, state).await?))
    }
}

/// An ID path segment; anything that cannot be one of ours is simply not found.
pub fn parse_id(raw: &str, what: &str) -> Result<Id, KcError> {
    Id::parse(raw).ok_or_else(|| KcError::not_found(what))
}

/// `expand=permissions` (also `expand[]=permissions`, repeated or comma-separated). Unknown
/// values are ignored, as the API promises.
pub fn wants_permissions(query: &QueryPairs) -> bool {
    query
        .all("expand")
        .chain(query.all("expand[]"))
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "permissions")
}

/// `limit`, `after`, `before` of a list whose cursors were signed for `scope`.
pub fn window(query: &QueryPairs, signer: &CursorSigner, scope: &str) -> Result<Window, KcError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => {
            let n: i64 = raw
                .trim()
                .parse()
                .map_err(|_| KcError::bad_request("invalid_type", "'limit' must be an integer."))?;
            if !(1..=i64::from(MAX_LIMIT)).contains(&n) {
                return Err(KcError::bad_request(
                    "invalid_value",
                    format!("'limit' must be between 1 and {MAX_LIMIT}, got {n}."),
                ));
            }
            n as u32
        }
    };
    let cursor = |name: &str| -> Result<Option<Id>, KcError> {
        match query.get(name) {
            None | Some("") => Ok(None),
            Some(raw) => signer.decode(scope, raw).map(Some).map_err(|_| {
                KcError::bad_request(
                    "invalid_cursor",
                    format!("'{name}' is not a cursor this list handed out."),
                )
            }),
        }
    };
    let after = cursor("after")?;
    let before = cursor("before")?;
    if after.is_some() && before.is_some() {
        return Err(KcError::bad_request(
            "invalid_request",
            "Use either 'after' or 'before', not both.",
        ));
    }
    Ok(Window {
        limit,
        after,
        before,
    })
}

/// A strict JSON object body, see [`read_json`].
pub struct KcJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for KcJson<T> {
    type Rejection = KcError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, KcError> {
        Ok(KcJson(read_json(req).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_recognised() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(!is_uuid("not-a-uuid"));
    }
}

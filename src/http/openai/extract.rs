//! Request parsing for the OpenAI dialect: the shared parsers of [`crate::http::extract`], with
//! every rejection in this dialect's envelope, plus what only this dialect has (admin-key
//! callers, `sk-…`-style IDs, `after` cursors that are object IDs).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::ids::{Id, Kind};
use crate::domain::page::PageRequest;
use crate::http::extract::{bearer_token, raw_path, read_json, QueryPairs};
use crate::http::{console_session, AppState};
use crate::service::{Action, Principal, ServiceError};

/// The admin key's organization, from `Authorization: Bearer sk-admin-…`. A gateway's key
/// (only `api.usage.write`) is refused here: it may report usage ([`UsageAuth`]) and nothing
/// else, not even read.
pub struct AdminAuth(pub Principal);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        principal.require(Action::Read)?;
        Ok(AdminAuth(principal))
    }
}

/// An admin key that may report usage (`api.usage.write` or full access), checked before the
/// body is read, so a key without the scope learns nothing from its body's validation.
pub struct UsageAuth(pub Principal);

impl FromRequestParts<AppState> for UsageAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        principal.require(Action::ReportUsage)?;
        Ok(UsageAuth(principal))
    }
}

/// The caller behind an admin key, for either extractor.
async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(session) = console_session::cookie_principal(parts, state).await {
        return Ok(session?);
    }
    let presented =
        bearer_token(&parts.headers).map_err(|why| ApiError::unauthenticated(why, None))?;
    match state.service.authenticate_admin(presented).await {
        Ok(mut principal) => {
            crate::http::record_actor(&crate::http::principal_actor(&principal));
            principal.origin = crate::http::origin(parts);
            Ok(principal)
        }
        Err(ServiceError::Unauthenticated(why)) => {
            tracing::debug!(reason = ?why, "admin authentication refused");
            Err(ApiError::unauthenticated(why, presented))
        }
        Err(other) => Err(other.into()),
    }
}

/// Path parameters as raw strings, see [`raw_path`].
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(ApiPath(raw_path(parts, state).await?))
    }
}

pub fn parse_id(kind: Kind, presented: &str) -> Result<Id, ApiError> {
    kind.parse_openai(presented)
        .ok_or_else(|| ApiError::no_such(kind, presented))
}

/// A strict JSON object body, see [`read_json`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        Ok(JsonBody(read_json(req).await?))
    }
}

/// `order=asc|desc` (default `asc`): whether a list runs newest first.
pub fn order(query: &QueryPairs) -> Result<bool, ApiError> {
    match query.get("order") {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            Some("order"),
            "invalid_value",
            "Invalid value for 'order': expected one of 'asc', 'desc'.",
        )),
    }
}

/// `limit` and `after`; `after` must be an ID of the listed kind.
pub fn page(query: &QueryPairs, kind: Kind) -> Result<PageRequest, ApiError> {
    let limit = query.limit()?;
    let after = match query.get("after") {
        None | Some("") => None,
        Some(raw) => Some(kind.parse_openai(raw).ok_or(ServiceError::UnknownCursor)?),
    };
    Ok(PageRequest {
        limit,
        after,
        descending: false,
    })
}

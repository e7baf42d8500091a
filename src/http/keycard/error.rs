//! The Keycard error envelope: `{"message", "code", "status"}`, with `x-should-retry: false`
//! on deterministic 4xx so the SDK does not retry what cannot succeed.

use axum::extract::OriginalUri;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::http::extract::Rejection;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct KcError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// `{"message", "code", "status"}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = KeycardError)]
pub struct KcErrorBody<'a> {
    message: &'a str,
    /// Stable machine-readable code, e.g. `not_found`, `invalid_cursor`, `forbidden`.
    code: &'a str,
    /// The HTTP status, repeated.
    status: u16,
}

impl KcError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found."),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid credentials: send an admin API key or an access token as \
             'Authorization: Bearer …'.",
        )
    }
}

impl IntoResponse for KcError {
    fn into_response(self) -> Response {
        let body = KcErrorBody {
            message: &self.message,
            code: self.code,
            status: self.status.as_u16(),
        };
        let mut res = (self.status, Json(body)).into_response();
        let headers = res.headers_mut();
        let retryable = matches!(
            self.status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        ) || self.status.is_server_error();
        if !retryable {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// The parsing both dialects share refuses with the same status, code and message; only the
/// envelope is this dialect's (and a bad credential is simply `unauthorized`).
impl From<Rejection> for KcError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Auth(_) => Self::unauthorized(),
            Rejection::Request {
                status,
                code,
                message,
                ..
            } => Self::new(status, code.unwrap_or("internal_error"), message),
        }
    }
}

impl From<ServiceError> for KcError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound { kind, .. } => {
                let noun = kind.noun();
                let mut title = noun[..1].to_ascii_uppercase();
                title.push_str(&noun[1..]);
                Self::not_found(&title)
            }
            ServiceError::NoSuchRateLimit(_) => Self::not_found("Rate limit"),
            ServiceError::UnknownCursor => Self::bad_request(
                "invalid_cursor",
                "The pagination cursor names nothing in this list.",
            ),
            ServiceError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "You do not have permission to do this.",
            ),
            ServiceError::MissingScope(scope) => Self::new(
                StatusCode::FORBIDDEN,
                "missing_scope",
                format!("This admin key is read-only: the change needs the scope {scope}."),
            ),
            ServiceError::Unauthenticated(_) => Self::unauthorized(),
            ServiceError::BadRequest(message) => Self::bad_request("invalid_request", message),
            ServiceError::Duplicate => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "An object with that unique value already exists.",
            ),
            ServiceError::Invalid(field) => Self::bad_request("invalid_value", field.message),
            // Rules of the admin API's projects and keys: not reachable through this dialect's
            // endpoints today, answered in its terms should that change.
            ServiceError::ProjectArchived(_) => {
                Self::bad_request("project_archived", "The project is archived.")
            }
            ServiceError::DefaultProjectArchive(_) => {
                Self::bad_request("default_project", "The default project cannot be archived.")
            }
            ServiceError::LastAdminKey => Self::bad_request(
                "last_admin_key",
                "This is the organization's last usable admin key with write access.",
            ),
            ServiceError::Unavailable(cause) => Rejection::unavailable(&cause).into(),
            ServiceError::Internal(cause) => Rejection::internal(&cause).into(),
        }
    }
}

pub async fn unknown_route(method: Method, OriginalUri(uri): OriginalUri) -> KcError {
    let path: String = uri.path().chars().take(80).collect();
    KcError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No route for {method} {path}."),
    )
}

pub async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> KcError {
    let path: String = uri.path().chars().take(80).collect();
    KcError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("Method {method} is not allowed on {path}."),
    )
}

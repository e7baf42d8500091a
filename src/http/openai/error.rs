//! The OpenAI error envelope: `{"error": {message, type, param, code}}`, all four keys always.

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::ids::Kind;
use crate::http::extract::Rejection;
use crate::service::{AuthFailure, ServiceError};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

/// `{"error": {message, type, param, code}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiError)]
pub struct Envelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiErrorBody)]
pub struct ErrorBody<'a> {
    message: &'a str,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    kind: &'a str,
    /// The request field or parameter at fault, if one is.
    #[schema(required = true)]
    param: Option<&'a str>,
    /// Stable machine-readable code, e.g. `invalid_api_key`, `not_found`, `project_archived`.
    #[schema(required = true)]
    code: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Option<&'static str>, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code,
        }
    }

    pub fn bad_request(
        param: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, Some(code), message);
        e.param = param.map(str::to_owned);
        e
    }

    /// 404 for an ID as the client wrote it (possibly malformed, so not an `Id`).
    pub fn no_such(kind: Kind, presented: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Some("not_found"),
            format!("No such {}: {}", kind.noun(), shorten(presented)),
        )
    }

    pub fn unauthenticated(why: AuthFailure, presented: Option<&str>) -> Self {
        let quoted = presented
            .map(crate::domain::keys::redact)
            .unwrap_or_default();
        let message = match why {
            AuthFailure::Missing => "You didn't provide an API key. You need to provide your admin API key \
                in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                .to_owned(),
            AuthFailure::WrongKind => format!(
                "Incorrect API key provided: {quoted}. This endpoint requires an admin API key (sk-admin-…)."
            ),
            AuthFailure::Expired => format!("Incorrect API key provided: {quoted}. The key has expired."),
            AuthFailure::Revoked => format!("Incorrect API key provided: {quoted}. The key has been revoked."),
            AuthFailure::Malformed | AuthFailure::Unknown => {
                format!("Incorrect API key provided: {quoted}.")
            }
            AuthFailure::SessionUnknown => {
                return Self::new(
                    StatusCode::UNAUTHORIZED,
                    Some("no_session"),
                    "You are not signed in to the console (or your session was ended). Sign in again.",
                )
            }
            AuthFailure::SessionExpired => {
                return Self::new(
                    StatusCode::UNAUTHORIZED,
                    Some("session_expired"),
                    "Your console session has expired. Sign in again.",
                )
            }
            AuthFailure::Disabled(reason) => {
                return Self::new(
                    StatusCode::UNAUTHORIZED,
                    Some("key_disabled"),
                    format!(
                        "The API key {quoted} is disabled (reason: {}).",
                        reason.as_str()
                    ),
                )
            }
        };
        Self::new(StatusCode::UNAUTHORIZED, Some("invalid_api_key"), message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Keeps echoed identifiers to a readable length.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// 4xx answers that would come out the same on a retry tell the SDKs not to retry.
fn is_deterministic(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        )
}

/// `x-should-retry`, which the official SDKs read before their own retry rules.
pub static SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

impl ApiError {
    /// The envelope as JSON, exactly as `serde_json` writes [`Envelope`] (a unit test holds
    /// them equal). Written by hand because a refused flood at the gateway check renders one
    /// per request: `serde_json` escapes a byte at a time through a table, about a third of
    /// such a refusal's cost, where these strings almost never need escaping at all.
    pub(crate) fn body(&self) -> String {
        // Exactly the length when nothing needs escaping (the rule), so the body becomes a
        // `Bytes` without another allocation.
        let len = |s: Option<&str>| s.map_or(4, |s| s.len() + 2);
        let mut out = String::with_capacity(
            "{\"error\":{\"message\":,\"type\":,\"param\":,\"code\":}}".len()
                + len(Some(&self.message))
                + len(Some(self.kind))
                + len(self.param.as_deref())
                + len(self.code),
        );
        out.push_str("{\"error\":{\"message\":");
        push_json_str(&mut out, Some(&self.message));
        out.push_str(",\"type\":");
        push_json_str(&mut out, Some(self.kind));
        out.push_str(",\"param\":");
        push_json_str(&mut out, self.param.as_deref());
        out.push_str(",\"code\":");
        push_json_str(&mut out, self.code);
        out.push_str("}}");
        out
    }
}

/// A JSON string (or `null`): as is when nothing in it needs escaping (checked without an
/// early exit, so the compiler can look at many bytes at once), else through `serde_json`.
fn push_json_str(out: &mut String, s: Option<&str>) {
    let Some(s) = s else {
        out.push_str("null");
        return;
    };
    let needs_escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        match serde_json::to_string(s) {
            Ok(quoted) => out.push_str(&quoted),
            Err(_) => out.push_str("\"\""),
        }
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.body()));
        *res.status_mut() = self.status;
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if is_deterministic(self.status) {
            headers.insert(&SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound { kind, id } => Self::no_such(kind, &kind.render_openai(&id)),
            ServiceError::ProjectArchived(id) => Self::bad_request(
                None,
                "project_archived",
                format!(
                    "Project '{}' is archived. You can only update an active project.",
                    Kind::Project.render_openai(&id)
                ),
            ),
            ServiceError::DefaultProjectArchive(_) => Self::bad_request(
                None,
                "default_project",
                "The default project cannot be archived.",
            ),
            ServiceError::Invalid(field) => {
                Self::bad_request(Some(field.field), "invalid_value", field.message)
            }
            ServiceError::UnknownCursor => Self::bad_request(
                Some("after"),
                "invalid_value",
                "Invalid 'after': it names no object in this list.",
            ),
            ServiceError::NoSuchRateLimit(id) => Self::new(
                StatusCode::NOT_FOUND,
                Some("not_found"),
                format!("No such rate limit: {}", shorten(&id)),
            ),
            ServiceError::Unauthenticated(why) => Self::unauthenticated(why, None),
            ServiceError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                Some("insufficient_permissions"),
                "You do not have permission to do this.",
            ),
            ServiceError::MissingScope(scope) => Self::new(
                StatusCode::FORBIDDEN,
                Some("missing_scope"),
                format!("You have insufficient permissions for this operation. Missing scopes: {scope}."),
            ),
            ServiceError::BadRequest(message) => Self::bad_request(None, "invalid_value", message),
            ServiceError::LastAdminKey => Self::bad_request(
                None,
                "last_admin_key",
                "This is the organization's last usable admin key with write access (api.management.write); create another one before deleting it, or the organization could change nothing.",
            ),
            ServiceError::Duplicate => Self::new(
                StatusCode::CONFLICT,
                Some("already_exists"),
                "An object with that unique value already exists.",
            ),
            ServiceError::Unavailable(cause) => Rejection::unavailable(&cause).into(),
            ServiceError::Internal(cause) => Rejection::internal(&cause).into(),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Auth(why) => Self::unauthenticated(why, None),
            Rejection::Request {
                status,
                code,
                param,
                message,
            } => {
                let mut e = Self::new(status, code, message);
                e.param = param;
                e
            }
        }
    }
}

// `OriginalUri`: inside the nested `/v1` router the plain URI has lost its prefix.
pub async fn unknown_route(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Some("unknown_url"),
        format!("Invalid URL ({method} {})", shorten(uri.path())),
    )
}

pub async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Some("method_not_allowed"),
        format!("Method {method} is not allowed on {}.", shorten(uri.path())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_envelope_is_what_serde_json_writes() {
        let messages = [
            "Rate limit reached for gpt-4o in project proj_abc on requests per min (RPM): Limit 3.",
            "",
            "a \"quoted\" name",
            "back\\slash, tab\t, newline\n, bell\u{7}, nul\u{0}",
            "déjà vu ✓ \u{7f}",
        ];
        for message in messages {
            for (param, code) in [(None, None), (Some("limit"), Some("invalid_value"))] {
                let err = ApiError {
                    status: StatusCode::BAD_REQUEST,
                    message: message.to_owned(),
                    kind: "invalid_request_error",
                    param: param.map(str::to_owned),
                    code,
                };
                let expected = serde_json::to_string(&Envelope {
                    error: ErrorBody {
                        message: &err.message,
                        kind: err.kind,
                        param: err.param.as_deref(),
                        code: err.code,
                    },
                })
                .unwrap();
                let body = err.body();
                assert_eq!(body, expected);
                if !message.contains(['"', '\\', '\t', '\n', '\u{7}', '\u{0}']) {
                    // Sized exactly: the body becomes a `Bytes` without reallocating.
                    assert_eq!(body.len(), body.capacity(), "{message:?}");
                }
            }
        }
    }
}

//! Request parsing both dialects share: the bearer credential, path parameters, strict JSON
//! bodies and query strings. Every refusal here is a [`Rejection`], which each dialect renders
//! in its own envelope (`From<Rejection>` beside its error type), so the wording and the status
//! are the same whichever dialect the client speaks.

mod auth;
mod json;
mod path;
mod query;

use axum::http::StatusCode;

use crate::service::AuthFailure;

pub use auth::bearer_token;
pub use json::{parse_json, present, read_json};
pub use path::raw_path;
pub use query::QueryPairs;

/// A request refused before it reaches the service.
#[derive(Debug)]
pub enum Rejection {
    /// The credential: `Authorization` is there but is not `Bearer <token>`.
    Auth(AuthFailure),
    /// Anything else, with what the client needs to fix it.
    Request {
        status: StatusCode,
        /// `None` only for the server's own errors, which OpenAI's envelope leaves uncoded.
        code: Option<&'static str>,
        /// The field or parameter at fault, where one is.
        param: Option<String>,
        message: String,
    },
}

impl Rejection {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Request {
            status,
            code: Some(code),
            param: None,
            message: message.into(),
        }
    }

    pub fn bad_request(
        param: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Request {
            status: StatusCode::BAD_REQUEST,
            code: Some(code),
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "The request body is larger than the {} KiB this endpoint accepts.",
                crate::http::MAX_BODY_BYTES / 1024
            ),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON, sent as 'Content-Type: application/json'.",
        )
    }

    /// The client stopped sending the body before it was complete.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The request body did not arrive in time.",
        )
    }

    /// The store could not be reached: logged here, once for every dialect, and answered
    /// without detail (the cause may name internals).
    pub fn unavailable(cause: &anyhow::Error) -> Self {
        tracing::warn!(error = %format!("{cause:#}"), "store unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Please retry.",
        )
    }

    /// The server itself failed: logged here, answered without detail (and without a code,
    /// which OpenAI's envelope leaves null for its own errors).
    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = %format!("{cause:#}"), "internal error");
        Self::Request {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: None,
            param: None,
            message: "The server had an error while processing your request.".to_owned(),
        }
    }
}

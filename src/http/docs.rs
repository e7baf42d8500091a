//! `GET /openapi.json` and the `/docs` page that renders it. The page's HTML, script and
//! stylesheet are compiled into the binary and load nothing from elsewhere, so it works on a
//! machine without internet access; the Content-Security-Policy holds it to that.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::http::openapi::tags::META;

/// Built once: the document only changes with the binary.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&super::openapi()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        String::from("{}")
    })
});

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    page_file(content_type, CSP, body)
}

/// A page's file, with the headers every page keyplane serves gets: its policy, no sniffing,
/// no framing, revalidated on each load (it changes with the binary).
pub(super) fn page_file(
    content_type: &'static str,
    csp: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = META,
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)))]
pub async fn openapi_json() -> Response {
    let mut res = DOCUMENT.as_str().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Human-readable API documentation, rendered from `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = META,
    responses((status = 200, description = "The documentation page.", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", include_str!("docs/index.html"))
}

/// The documentation page's script.
#[utoipa::path(get, path = "/docs/app.js", tag = META,
    responses((status = 200, description = "JavaScript.", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("docs/app.js"),
    )
}

/// The documentation page's stylesheet.
#[utoipa::path(get, path = "/docs/app.css", tag = META,
    responses((status = 200, description = "CSS.", body = String, content_type = "text/css")))]
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("docs/app.css"))
}

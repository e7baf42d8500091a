//! How `/v1/auth/check` renders admission: the client address and model it reads, and the
//! refusals (the `x-ratelimit-*` headers of an admitted request are in `rate_limit_headers.rs`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};
use axum::response::Response;

use crate::http::gateway::{refuse as gateway_refuse, Admission};
use crate::http::AppState;
use crate::service::admission::{openai_duration, Gauge};
use crate::service::Admit;

/// Request header: the model the request is for (the catalogue's `*` when absent).
pub static MODEL: HeaderName = HeaderName::from_static("x-keyplane-model");

/// Why an admission could not be decided (both endpoints say it alike).
const UNAVAILABLE: &str = "Rate limits cannot be checked right now; try again shortly.";

/// Which allowlist refused the client.
fn ip_message(project_list: bool) -> &'static str {
    if project_list {
        "The client address is not on the project's allowlist."
    } else {
        "The client address is not on the API key's allowlist."
    }
}

/// The client of the checked request: the TCP peer, or what a trusted proxy says
/// (`KEYPLANE_TRUSTED_PROXIES`, the same rule the brute-force throttle counts by).
pub fn client_address(app: &AppState, req: &Request) -> Option<std::net::IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = &app.service.auth_throttle().settings().trusted_proxies;
    crate::http::throttle::source(req.headers(), peer, trusted)
}

/// `X-Keyplane-Model`, if it is sent and readable.
pub fn model(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(&MODEL)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|m| !m.is_empty())
}

/// A refused admission, in the OpenAI envelope with `X-Keyplane-Reason` (403 in nginx mode).
pub fn refuse(refused: Admit, nginx: bool) -> Response {
    match refused {
        Admit::IpNotAllowed { project_list } => gateway_refuse(
            Admission::IpNotAllowed,
            "ip_not_allowed",
            ip_message(project_list).to_owned(),
            None,
            nginx,
        ),
        Admit::RateLimited {
            message,
            retry_after_secs,
        } => gateway_refuse(
            Admission::LimitExceeded,
            "rate_limit_exceeded",
            message,
            Some(retry_after_secs),
            nginx,
        ),
        Admit::Unavailable | Admit::Admitted { .. } => gateway_refuse(
            Admission::Unavailable,
            "admission_unavailable",
            UNAVAILABLE.to_owned(),
            Some(1),
            nginx,
        ),
    }
}

/// A disabled key: 403 `key_disabled`, whatever the gateway.
pub fn disabled(nginx: bool) -> Response {
    gateway_refuse(
        Admission::KeyDisabled,
        "key_disabled",
        "The API key is disabled.".to_owned(),
        None,
        nginx,
    )
}

crate::http::openapi::string_enum! {
    refusal_code = ["ip_not_allowed", "rate_limit_exceeded", "admission_unavailable"];
}

/// One window's state, as the `x-ratelimit-*` headers give it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = RateLimitGauge)]
pub struct GaugeJson {
    limit: i64,
    remaining: i64,
    /// OpenAI's duration format (`6m0s`): until the window is empty again.
    reset: String,
}

fn gauge(g: Option<Gauge>) -> Option<GaugeJson> {
    g.map(|g| GaugeJson {
        limit: g.limit,
        remaining: g.remaining.max(0),
        reset: openai_duration(g.reset_ms),
    })
}

/// `/v1/keys/verify`'s admission decision for a valid key.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = AdmissionDecision)]
pub struct AdmissionJson {
    allowed: bool,
    /// Why not, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = refusal_code)]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Seconds until a retry may succeed (rate refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// The most constraining request window, when a request limit applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<GaugeJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<GaugeJson>,
}

pub fn describe(decided: Admit) -> AdmissionJson {
    let refused = |code, message: String, retry_after| AdmissionJson {
        allowed: false,
        code: Some(code),
        message: Some(message),
        retry_after,
        requests: None,
        tokens: None,
    };
    match decided {
        Admit::Admitted { requests, tokens } => AdmissionJson {
            allowed: true,
            code: None,
            message: None,
            retry_after: None,
            requests: gauge(requests),
            tokens: gauge(tokens),
        },
        Admit::IpNotAllowed { project_list } => {
            refused("ip_not_allowed", ip_message(project_list).to_owned(), None)
        }
        Admit::RateLimited {
            message,
            retry_after_secs,
        } => refused("rate_limit_exceeded", message, Some(retry_after_secs)),
        Admit::Unavailable => refused("admission_unavailable", UNAVAILABLE.to_owned(), Some(1)),
    }
}

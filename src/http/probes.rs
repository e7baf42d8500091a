//! Operations endpoints: `/readyz` for load balancers and orchestrators, `/metrics` for
//! Prometheus. Unauthenticated, like `/healthz`: they expose no object and no secret.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::http::openapi::tags::META;
use crate::http::AppState;
use crate::service::Readiness;

crate::http::openapi::string_enum! {
    readiness_status = ["ready", "not_ready"];
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Readiness)]
pub struct ReadyJson {
    #[schema(schema_with = readiness_status)]
    status: &'static str,
    /// The applied schema version, when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<i64>,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn not_ready(reason: String) -> Response {
    let body = ReadyJson {
        status: "not_ready",
        schema_version: None,
        reason: Some(reason),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Readiness: 200 when the store answers at this build's schema version, else 503; both say
/// why.
#[utoipa::path(get, path = "/readyz", tag = META, security(()),
    responses(
        (status = 200, description = "Ready to serve.", body = ReadyJson),
        (status = 503, description = "Not ready, with the reason.", body = ReadyJson)))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.service.readiness().await {
        Readiness::Ready { schema_version } => Json(ReadyJson {
            status: "ready",
            schema_version: Some(schema_version),
            reason: None,
        })
        .into_response(),
        Readiness::WrongSchema { applied, expected } => not_ready(format!(
            "the database schema is at version {applied}, this build expects {expected}"
        )),
        Readiness::StoreUnavailable(why) => {
            // The probe is unauthenticated: the store's own words (host names, driver errors)
            // go to the log, not to whoever asks.
            tracing::warn!(error = %why, "readiness: the store does not answer");
            not_ready("the store does not answer".to_owned())
        }
    }
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = META, security(()),
    responses((status = 200, description = "Metrics in Prometheus text format.", body = String,
        content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.service.render_metrics(),
    )
        .into_response()
}

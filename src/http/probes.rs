//! Operations endpoints: `/readyz` for load balancers and orchestrators, `/metrics` for
//! Prometheus. Unauthenticated, like `/healthz`: they expose no object and no secret.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::AppState;
use crate::service::Readiness;

/// 200 when the store answers at this build's schema version, else 503; both say why.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.service.readiness().await {
        Readiness::Ready { schema_version } => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "schema_version": schema_version })),
        )
            .into_response(),
        Readiness::WrongSchema { applied, expected } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": format!(
                    "the database schema is at version {applied}, this build expects {expected}"
                ),
            })),
        )
            .into_response(),
        Readiness::StoreUnavailable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": format!("the store does not answer: {why}"),
            })),
        )
            .into_response(),
    }
}

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

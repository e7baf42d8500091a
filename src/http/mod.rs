//! HTTP: one module per wire dialect, each a thin adapter over [`crate::service`].

pub mod keycard;
pub mod openai;
mod probes;
mod request_id;

use axum::routing::get;
use axum::{middleware, Router};

use crate::service::Service;

pub use request_id::{principal_actor, record_actor, RequestId};

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .nest("/v1", openai::routes())
        .nest("/organizations", keycard::organization_routes())
        .merge(keycard::oauth_routes())
        // Anything else answers in the OpenAI envelope (the older dialect; clients of the
        // Keycard one only call paths under /organizations).
        .fallback(openai::error::unknown_route)
        .method_not_allowed_fallback(openai::error::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.service.metrics_handle(),
            request_id::tag_and_log,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

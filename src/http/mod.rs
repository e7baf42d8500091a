//! HTTP: one module per wire dialect, each a thin adapter over [`crate::service`].

mod console_api;
pub mod console_session;
mod console_ui;
mod docs;
pub mod extract;
pub mod gateway;
pub mod keycard;
pub mod openai;
pub mod openapi;
mod probes;
mod request_id;
pub mod throttle;
pub mod token_exchange;

use axum::middleware;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Service;

pub use request_id::{
    origin, principal_actor, record_actor, token_actor, RequestId, REQUEST_ID_HEADER,
};

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler gets. Cloned per request (axum's `State`), so it is one `Arc`: the
/// service itself holds a dozen, each an atomic increment and decrement per clone.
#[derive(Clone)]
pub struct AppState {
    pub service: std::sync::Arc<Service>,
}

impl AppState {
    pub fn new(service: Service) -> Self {
        Self {
            service: std::sync::Arc::new(service),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let (router, _) = documented_routes().split_for_parts();
    let check = openai::CheckService(state.clone());
    router
        // The gateway check, the hottest route, straight from the root: the `/v1` nest
        // reaches it through a prefix-stripping service that rewrites the URI on every request.
        // A tower service rather than a handler (see `CheckService`), for any method.
        // Documented (and served alike) under the nest.
        .route_service("/v1/auth/check", check.clone())
        .route_service("/v1/auth/check/{*path}", check)
        // Anything else answers in the OpenAI envelope (the older dialect; clients of the
        // Keycard one only call paths under /organizations).
        .fallback(openai::error::unknown_route)
        .method_not_allowed_fallback(openai::error::method_not_allowed)
        // Inside the request log and metrics, so refused sources are logged and counted (429).
        .layer(throttle::ThrottleLayer(
            state.service.auth_throttle().clone(),
        ))
        .layer(middleware::from_fn_with_state(
            state.service.metrics_handle(),
            request_id::tag_and_log,
        ))
        .with_state(state)
}

/// Every route with its documentation: a route added here without `routes!` (so without an
/// `#[utoipa::path]`) is what the docs tests exist to catch.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(probes::readyz))
        .routes(routes!(probes::metrics))
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::page))
        .routes(routes!(docs::script))
        .routes(routes!(docs::stylesheet))
        .routes(routes!(console_ui::page))
        .routes(routes!(console_ui::asset))
        .routes(routes!(
            console_api::current,
            console_api::sign_in,
            console_api::sign_out
        ))
        .nest("/v1", openai::routes())
        .nest("/organizations", keycard::organization_routes())
        .merge(keycard::oauth_routes())
        .routes(routes!(token_exchange::exchange))
}

/// The OpenAPI document of everything [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = documented_routes().into_openapi();
    openapi::name_operations(&mut api);
    api
}

/// Liveness: the process serves.
#[utoipa::path(get, path = "/healthz", tag = openapi::tags::META,
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

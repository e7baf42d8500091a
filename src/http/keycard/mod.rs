//! The Keycard dialect: organization service accounts and their credentials under
//! `/organizations/{organization_id}/…`, plus the OAuth endpoints at the root.
//! Thin adapters over [`crate::service`], like the OpenAI dialect.

pub mod credentials;
pub mod error;
pub mod extract;
mod params;
mod render;
pub mod service_accounts;
pub mod token;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::openapi::Dialect;
use crate::http::AppState;

/// Nested under `/organizations`; one `routes!` line per path, as in the OpenAI dialect.
pub fn organization_routes() -> OpenApiRouter<AppState> {
    let (router, mut api) = OpenApiRouter::new()
        .routes(routes!(service_accounts::create, service_accounts::list))
        .routes(routes!(
            service_accounts::retrieve,
            service_accounts::update,
            service_accounts::delete
        ))
        .routes(routes!(credentials::create, credentials::list))
        .routes(routes!(
            credentials::retrieve,
            credentials::update,
            credentials::delete
        ))
        .split_for_parts();
    Dialect::keycard().complete(&mut api);
    let router = router
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn(extract::client_request_id));
    let mut routes = OpenApiRouter::from(router);
    *routes.get_openapi_mut() = api;
    routes
}

/// The OAuth endpoints, at the root. Their errors are RFC 6749's, stated on each handler.
pub fn oauth_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token::token))
        .routes(routes!(token::jwks))
        .routes(routes!(token::metadata))
}

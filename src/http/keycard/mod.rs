//! The Keycard dialect: organization service accounts and their credentials under
//! `/organizations/{organization_id}/…`, plus the OAuth endpoints at the root.
//! Thin adapters over [`crate::service`], like the OpenAI dialect.

pub mod credentials;
pub mod error;
pub mod extract;
mod render;
pub mod service_accounts;
pub mod token;

use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::http::AppState;

/// Nested under `/organizations`.
pub fn organization_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{organization_id}/service-accounts",
            post(service_accounts::create).get(service_accounts::list),
        )
        .route(
            "/{organization_id}/service-accounts/{service_account_id}",
            get(service_accounts::retrieve)
                .patch(service_accounts::update)
                .delete(service_accounts::delete),
        )
        .route(
            "/{organization_id}/service-accounts/{service_account_id}/credentials",
            post(credentials::create).get(credentials::list),
        )
        .route(
            "/{organization_id}/service-accounts/{service_account_id}/credentials/{credential_id}",
            get(credentials::retrieve)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn(extract::client_request_id))
}

/// The OAuth endpoints, at the root.
pub fn oauth_routes() -> Router<AppState> {
    Router::new()
        .route(token::TOKEN_PATH, post(token::token))
        .route(token::JWKS_PATH, get(token::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(token::metadata),
        )
}

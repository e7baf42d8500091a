//! The OpenAI Admin API dialect, mounted at `/v1`.

mod admin_keys;
mod api_keys;
mod audit_logs;
pub mod error;
pub mod extract;
mod projects;
mod render;
mod service_accounts;
mod verify;

use axum::routing::{any, get, post};
use axum::Router;

use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    let project = "/organization/projects/{project_id}";
    let account = "/organization/projects/{project_id}/service_accounts/{service_account_id}";
    Router::new()
        .route(
            "/organization/projects",
            get(projects::list).post(projects::create),
        )
        .route(project, get(projects::retrieve).post(projects::modify))
        .route(&format!("{project}/archive"), post(projects::archive))
        .route(
            &format!("{project}/service_accounts"),
            get(service_accounts::list).post(service_accounts::create),
        )
        .route(
            account,
            get(service_accounts::retrieve)
                .post(service_accounts::update)
                .delete(service_accounts::delete),
        )
        .route(
            &format!("{account}/api_keys"),
            post(service_accounts::create_key),
        )
        .route(&format!("{project}/api_keys"), get(api_keys::list))
        .route(
            &format!("{project}/api_keys/{{api_key_id}}"),
            get(api_keys::retrieve)
                .post(api_keys::update)
                .delete(api_keys::delete),
        )
        .route(
            "/organization/admin_api_keys",
            get(admin_keys::list).post(admin_keys::create),
        )
        .route(
            "/organization/admin_api_keys/{key_id}",
            get(admin_keys::retrieve).delete(admin_keys::delete),
        )
        .route("/organization/audit_logs", get(audit_logs::list))
        .route("/auth/check", any(verify::check))
        .route("/auth/check/{*path}", any(verify::check))
        .route("/keys/verify", post(verify::verify))
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
}

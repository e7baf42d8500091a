//! The OpenAI Admin API dialect, mounted at `/v1`.

mod admin_keys;
mod admission;
mod admission_json;
mod api_keys;
mod audit_logs;
mod check;
pub mod error;
pub mod extract;
mod federation_json;
mod federation_rules;
mod key_state;
mod params;
mod projects;
mod rate_limit_headers;
mod rate_limits;
mod render;
mod service_accounts;
mod usage;
mod verify;
mod workload_identity_providers;

pub use check::{check, CheckService};

use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::http::openapi::Dialect;
use crate::http::AppState;

/// The dialect's routes and their documentation: one `routes!` line per path, listing the
/// handlers (each carrying its `#[utoipa::path]`) that serve it.
pub fn routes() -> OpenApiRouter<AppState> {
    // The gateway check is documented here and served from the root (`http::router`, see
    // there why): with whatever method the client used, the common ones documented.
    let (check_schemas, check_paths, _): UtoipaMethodRouter<AppState> = routes!(check::check);
    let (_, check_sub_paths, _): UtoipaMethodRouter<AppState> = routes!(check::check_subpath);
    let documented = OpenApiRouter::new()
        .routes(routes!(projects::list, projects::create))
        .routes(routes!(projects::retrieve, projects::modify))
        .routes(routes!(projects::archive))
        .routes(routes!(service_accounts::list, service_accounts::create))
        .routes(routes!(
            service_accounts::retrieve,
            service_accounts::update,
            service_accounts::delete
        ))
        .routes(routes!(service_accounts::create_key))
        .routes(routes!(api_keys::list))
        .routes(routes!(
            api_keys::retrieve,
            api_keys::update,
            api_keys::delete
        ))
        .routes(routes!(key_state::disable_project_key))
        .routes(routes!(key_state::enable_project_key))
        .routes(routes!(rate_limits::list))
        .routes(routes!(rate_limits::update))
        .routes(routes!(admin_keys::list, admin_keys::create))
        .routes(routes!(admin_keys::retrieve, admin_keys::delete))
        .routes(routes!(key_state::disable_admin_key))
        .routes(routes!(key_state::enable_admin_key))
        .routes(routes!(
            workload_identity_providers::list,
            workload_identity_providers::create
        ))
        .routes(routes!(
            workload_identity_providers::retrieve,
            workload_identity_providers::update,
            workload_identity_providers::delete
        ))
        .routes(routes!(federation_rules::list, federation_rules::create))
        .routes(routes!(
            federation_rules::retrieve,
            federation_rules::update,
            federation_rules::delete
        ))
        .routes(routes!(audit_logs::list))
        .routes(routes!(verify::verify))
        .routes(routes!(usage::report));
    let (router, mut api) = documented.split_for_parts();
    // A sub-path (Envoy appends the original path) is a wildcard, which OpenAPI cannot spell:
    // documented as `{path}`, served as `{*path}`.
    for (path, item) in check_paths.paths.into_iter().chain(check_sub_paths.paths) {
        api.paths.paths.insert(path, item);
    }
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(check_schemas);
    Dialect::openai().complete(&mut api);
    let router = router
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed);
    let mut routes = OpenApiRouter::from(router);
    *routes.get_openapi_mut() = api;
    routes
}

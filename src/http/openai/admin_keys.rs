//! `/v1/organization/admin_api_keys…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{order, page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::{AdminApiKeyJson, DeletedJson, ListJson};
use crate::domain::ids::Kind;
use crate::http::extract::QueryPairs;
use crate::http::openapi::tags::ADMIN_API_KEYS as TAG;
use crate::http::AppState;

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateAdminKeyRequest)]
pub struct CreateBody {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31536000)]
    expires_in_seconds: Option<i64>,
    /// `api.management.read` and/or `api.management.write` (default: both). A key with only
    /// `api.management.read` lists and retrieves; every change answers 403 `missing_scope`.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 2)]
    scopes: Option<Vec<String>>,
}

/// List the organization's admin keys.
#[utoipa::path(get, path = "/organization/admin_api_keys", tag = TAG,
    params(params::Page, params::AdminKeyOrder),
    responses((status = 200, description = "A page of admin keys.", body = ListJson<AdminApiKeyJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: QueryPairs,
) -> ApiResult<ListJson<AdminApiKeyJson>> {
    let mut page = page(&query, Kind::ApiKey)?;
    page.descending = order(&query)?;
    let keys = app.service.list_admin_keys(&who, &page).await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(ListJson::new(
        keys,
        |k| AdminApiKeyJson::new(k, &org),
        AdminApiKeyJson::id,
    )))
}

/// Create an admin key; the response carries its value, shown this once.
#[utoipa::path(post, path = "/organization/admin_api_keys", tag = TAG,
    request_body = CreateBody,
    responses((status = 200, description = "The new key, with `value`.", body = AdminApiKeyJson)))]
pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<AdminApiKeyJson> {
    let issued = app
        .service
        .create_admin_key(&who, &body.name, body.expires_in_seconds, body.scopes)
        .await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(AdminApiKeyJson::created(issued, &org)))
}

/// Retrieve an admin key.
#[utoipa::path(get, path = "/organization/admin_api_keys/{key_id}", tag = TAG,
    params(params::AdminKeyPath),
    responses((status = 200, description = "The key (never its value).", body = AdminApiKeyJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<AdminApiKeyJson> {
    let id = parse_id(Kind::ApiKey, &key_id)?;
    let key = app.service.admin_key(&who, &id).await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(AdminApiKeyJson::new(key, &org)))
}

/// Delete an admin key.
///
/// The organization's last usable write-capable admin key cannot be deleted (400
/// `last_admin_key`); read-only keys do not count.
#[utoipa::path(delete, path = "/organization/admin_api_keys/{key_id}", tag = TAG,
    params(params::AdminKeyPath),
    responses((status = 200, description = "Deleted.", body = DeletedJson)))]
pub async fn delete(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<DeletedJson> {
    let id = parse_id(Kind::ApiKey, &key_id)?;
    app.service.delete_admin_key(&who, &id).await?;
    Ok(Json(DeletedJson::new(
        "organization.admin_api_key.deleted",
        Kind::ApiKey.render_openai(&id),
    )))
}

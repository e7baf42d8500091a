//! `/v1/organization/admin_api_keys…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{parse_id, AdminAuth, ApiPath, JsonBody, Query};
use super::render::{AdminApiKeyJson, DeletedJson, ListJson};
use crate::domain::ids::Kind;
use crate::http::AppState;

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: Query,
) -> ApiResult<ListJson<AdminApiKeyJson>> {
    let mut page = query.page(Kind::ApiKey)?;
    page.descending = match query.get("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                Some("order"),
                "invalid_value",
                "Invalid value for 'order': expected one of 'asc', 'desc'.",
            ))
        }
    };
    let keys = app.service.list_admin_keys(&who, &page).await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(ListJson::new(
        keys,
        |k| AdminApiKeyJson::new(k, &org),
        AdminApiKeyJson::id,
    )))
}

pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<AdminApiKeyJson> {
    let issued = app
        .service
        .create_admin_key(&who, &body.name, body.expires_in_seconds)
        .await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(AdminApiKeyJson::created(issued, &org)))
}

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

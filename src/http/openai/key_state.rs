//! Disabling and enabling keys (keyplane's own endpoints beside OpenAI's): a leaked key is
//! neutralised at once and keeps its history.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::{AdminApiKeyJson, ProjectApiKeyJson};
use crate::domain::ids::Kind;
use crate::domain::limits::DisabledReason;
use crate::http::openapi::tags::{ADMIN_API_KEYS, PROJECT_API_KEYS};
use crate::http::AppState;

type ApiResult<T> = Result<Json<T>, ApiError>;

crate::http::openapi::string_enum! {
    reason_enum = ["user_initiated", "exposed", "compromised"];
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = DisableKeyRequest)]
pub struct DisableBody {
    /// `user_initiated` (default), `exposed` or `compromised`.
    #[serde(default)]
    #[schema(schema_with = reason_enum)]
    reason: Option<String>,
}

fn reason(body: &DisableBody) -> Result<DisabledReason, ApiError> {
    match body.reason.as_deref() {
        None => Ok(DisabledReason::UserInitiated),
        Some(r) => DisabledReason::parse(r).ok_or_else(|| {
            ApiError::bad_request(
                Some("reason"),
                "invalid_value",
                "Invalid value for 'reason': expected one of 'user_initiated', 'exposed', 'compromised'.",
            )
        }),
    }
}

/// Disable a project API key.
///
/// Refused at verification from then on (`key_disabled`), on every node within a second; its
/// history stays. Disabling it again replaces the reason.
#[utoipa::path(post, path = "/organization/projects/{project_id}/api_keys/{api_key_id}/disable", tag = PROJECT_API_KEYS,
    params(params::ProjectKeyPath),
    request_body = Option<DisableBody>,
    responses((status = 200, description = "The key, disabled.", body = ProjectApiKeyJson)))]
pub async fn disable_project_key(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, key_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<DisableBody>,
) -> ApiResult<ProjectApiKeyJson> {
    let project = parse_id(Kind::Project, &project_id)?;
    let key = parse_id(Kind::ApiKey, &key_id)?;
    let reason = reason(&body)?;
    let updated = app
        .service
        .set_project_api_key_disabled(&who, &project, &key, Some(reason))
        .await?;
    Ok(Json(updated.into()))
}

/// Enable a disabled project API key.
#[utoipa::path(post, path = "/organization/projects/{project_id}/api_keys/{api_key_id}/enable", tag = PROJECT_API_KEYS,
    params(params::ProjectKeyPath),
    responses((status = 200, description = "The key, enabled.", body = ProjectApiKeyJson)))]
pub async fn enable_project_key(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<ProjectApiKeyJson> {
    let project = parse_id(Kind::Project, &project_id)?;
    let key = parse_id(Kind::ApiKey, &key_id)?;
    let updated = app
        .service
        .set_project_api_key_disabled(&who, &project, &key, None)
        .await?;
    Ok(Json(updated.into()))
}

/// Disable an admin key.
///
/// Refused from then on (`key_disabled`). The organization's last usable write-capable admin
/// key cannot be disabled (`last_admin_key`).
#[utoipa::path(post, path = "/organization/admin_api_keys/{key_id}/disable", tag = ADMIN_API_KEYS,
    params(params::AdminKeyPath),
    request_body = Option<DisableBody>,
    responses((status = 200, description = "The key, disabled.", body = AdminApiKeyJson)))]
pub async fn disable_admin_key(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(key_id): ApiPath<String>,
    JsonBody(body): JsonBody<DisableBody>,
) -> ApiResult<AdminApiKeyJson> {
    let key = parse_id(Kind::ApiKey, &key_id)?;
    let reason = reason(&body)?;
    let updated = app
        .service
        .set_admin_key_disabled(&who, &key, Some(reason))
        .await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(AdminApiKeyJson::new(updated, &org)))
}

/// Enable a disabled admin key.
#[utoipa::path(post, path = "/organization/admin_api_keys/{key_id}/enable", tag = ADMIN_API_KEYS,
    params(params::AdminKeyPath),
    responses((status = 200, description = "The key, enabled.", body = AdminApiKeyJson)))]
pub async fn enable_admin_key(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<AdminApiKeyJson> {
    let key = parse_id(Kind::ApiKey, &key_id)?;
    let updated = app.service.set_admin_key_disabled(&who, &key, None).await?;
    let org = app.service.organization(&who).await?;
    Ok(Json(AdminApiKeyJson::new(updated, &org)))
}

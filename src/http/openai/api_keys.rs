//! `/v1/organization/projects/{project_id}/api_keys…`: the keys of a project's service accounts.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::{DeletedJson, ListJson, ProjectApiKeyJson};
use crate::domain::ids::{Id, Kind};
use crate::domain::model::OwnerAccess;
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::PROJECT_API_KEYS as TAG;
use crate::http::AppState;
use crate::service::KeyChanges;

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateApiKeyRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(schema_with = crate::http::openai::params::scopes)]
    scopes: Option<Vec<String>>,
    /// Absent: unchanged; `null`: never expires.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 315360000)]
    expires_in_seconds: Option<Option<i64>>,
    /// Absent: unchanged; `null`: any address.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::http::openai::params::allowed_ips)]
    allowed_ips: Option<Option<Vec<String>>>,
    /// Absent: unchanged; `null`: no limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    max_requests_per_1_minute: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    max_requests_per_1_day: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    max_tokens_per_1_minute: Option<Option<i64>>,
}

fn ids(project_id: &str, key_id: &str) -> Result<(Id, Id), ApiError> {
    Ok((
        parse_id(Kind::Project, project_id)?,
        parse_id(Kind::ApiKey, key_id)?,
    ))
}

fn owner_access(query: &QueryPairs) -> Result<OwnerAccess, ApiError> {
    match query.get("owner_project_access") {
        None | Some("any") => Ok(OwnerAccess::Any),
        Some("active") => Ok(OwnerAccess::Active),
        Some("inactive") => Ok(OwnerAccess::Inactive),
        Some(_) => Err(ApiError::bad_request(
            Some("owner_project_access"),
            "invalid_value",
            "Invalid value for 'owner_project_access': expected one of 'active', 'inactive', 'any'.",
        )),
    }
}

/// List the keys of a project's service accounts.
#[utoipa::path(get, path = "/organization/projects/{project_id}/api_keys", tag = TAG,
    params(params::ProjectPath, params::Page, params::ApiKeyFilter),
    responses((status = 200, description = "A page of keys.", body = ListJson<ProjectApiKeyJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    query: QueryPairs,
) -> ApiResult<ListJson<ProjectApiKeyJson>> {
    let project = parse_id(Kind::Project, &project_id)?;
    let page = page(&query, Kind::ApiKey)?;
    let access = owner_access(&query)?;
    let keys = app
        .service
        .list_project_api_keys(&who, &project, access, &page)
        .await?;
    Ok(Json(ListJson::new(
        keys,
        ProjectApiKeyJson::from,
        ProjectApiKeyJson::id,
    )))
}

/// Retrieve a project API key.
#[utoipa::path(get, path = "/organization/projects/{project_id}/api_keys/{api_key_id}", tag = TAG,
    params(params::ProjectKeyPath),
    responses((status = 200, description = "The key (never its value).", body = ProjectApiKeyJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<ProjectApiKeyJson> {
    let (project, key) = ids(&project_id, &key_id)?;
    Ok(Json(
        app.service
            .project_api_key(&who, &project, &key)
            .await?
            .into(),
    ))
}

/// Change a key's scopes, expiry, allowlist or limits.
///
/// `expires_in_seconds: null` makes the key never expire; `null` clears an allowlist or a limit.
#[utoipa::path(post, path = "/organization/projects/{project_id}/api_keys/{api_key_id}", tag = TAG,
    params(params::ProjectKeyPath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The key, updated.", body = ProjectApiKeyJson)))]
pub async fn update(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, key_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<ProjectApiKeyJson> {
    let (project, key) = ids(&project_id, &key_id)?;
    let changes = KeyChanges {
        scopes: body.scopes,
        expires_in_seconds: body.expires_in_seconds,
        allowed_ips: body.allowed_ips,
        max_requests_per_1_minute: body.max_requests_per_1_minute,
        max_requests_per_1_day: body.max_requests_per_1_day,
        max_tokens_per_1_minute: body.max_tokens_per_1_minute,
    };
    Ok(Json(
        app.service
            .update_project_api_key(&who, &project, &key, changes)
            .await?
            .into(),
    ))
}

/// Revoke a key.
///
/// `?grace_period_seconds=N` keeps it working N more seconds (the end of a rotation).
#[utoipa::path(delete, path = "/organization/projects/{project_id}/api_keys/{api_key_id}", tag = TAG,
    params(params::ProjectKeyPath, params::Grace),
    responses((status = 200, description = "Deleted.", body = DeletedJson)))]
pub async fn delete(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, key_id)): ApiPath<(String, String)>,
    query: QueryPairs,
) -> ApiResult<DeletedJson> {
    let (project, key) = ids(&project_id, &key_id)?;
    let grace = query.integer("grace_period_seconds")?;
    app.service
        .delete_project_api_key(&who, &project, &key, grace)
        .await?;
    Ok(Json(DeletedJson::new(
        "organization.project.api_key.deleted",
        Kind::ApiKey.render_openai(&key),
    )))
}

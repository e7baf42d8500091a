//! `/v1/organization/projects…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::{ListJson, ProjectJson};
use crate::domain::ids::Kind;
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::PROJECTS;
use crate::http::AppState;
use crate::service::{NewProject, ProjectChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateProjectRequest)]
pub struct CreateBody {
    /// 1–256 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    external_key_id: Option<String>,
    /// keyplane: IPv4/IPv6 addresses or CIDRs the project's keys may be used from (absent or
    /// `null`: any). A request must pass both this list and its key's.
    #[serde(default)]
    #[schema(schema_with = super::params::allowed_ips)]
    allowed_ips: Option<Vec<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ModifyProjectRequest)]
pub struct ModifyBody {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    external_key_id: Option<Option<String>>,
    /// Absent: unchanged; `null`: any address.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::params::allowed_ips)]
    allowed_ips: Option<Option<Vec<String>>>,
}

/// Create a project.
#[utoipa::path(post, path = "/organization/projects", tag = PROJECTS,
    request_body = CreateBody,
    responses((status = 200, description = "The new project.", body = ProjectJson)))]
pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<ProjectJson> {
    let input = NewProject {
        name: body.name,
        external_key_id: body.external_key_id,
        allowed_ips: body.allowed_ips,
    };
    Ok(Json(app.service.create_project(&who, input).await?.into()))
}

/// List the organization's projects.
#[utoipa::path(get, path = "/organization/projects", tag = PROJECTS,
    params(params::Page, params::ProjectFilter),
    responses((status = 200, description = "A page of projects.", body = ListJson<ProjectJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: QueryPairs,
) -> ApiResult<ListJson<ProjectJson>> {
    let page = page(&query, Kind::Project)?;
    let include_archived = query.bool("include_archived")?.unwrap_or(false);
    let projects = app
        .service
        .list_projects(&who, include_archived, &page)
        .await?;
    Ok(Json(ListJson::new(
        projects,
        ProjectJson::from,
        ProjectJson::id,
    )))
}

/// Retrieve a project.
#[utoipa::path(get, path = "/organization/projects/{project_id}", tag = PROJECTS,
    params(params::ProjectPath),
    responses((status = 200, description = "The project.", body = ProjectJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
) -> ApiResult<ProjectJson> {
    let id = parse_id(Kind::Project, &project_id)?;
    Ok(Json(app.service.project(&who, &id).await?.into()))
}

/// Modify a project.
///
/// Only the fields sent change; `external_key_id: null` clears it. An archived project
/// answers 400 `project_archived`.
#[utoipa::path(post, path = "/organization/projects/{project_id}", tag = PROJECTS,
    params(params::ProjectPath),
    request_body = Option<ModifyBody>,
    responses((status = 200, description = "The project, modified.", body = ProjectJson)))]
pub async fn modify(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    JsonBody(body): JsonBody<ModifyBody>,
) -> ApiResult<ProjectJson> {
    let id = parse_id(Kind::Project, &project_id)?;
    let changes = ProjectChanges {
        name: body.name,
        external_key_id: body.external_key_id,
        allowed_ips: body.allowed_ips,
    };
    Ok(Json(
        app.service.update_project(&who, &id, changes).await?.into(),
    ))
}

/// Archive a project.
///
/// Idempotent: archiving an archived project returns it unchanged. The default project cannot
/// be archived (400 `default_project`).
#[utoipa::path(post, path = "/organization/projects/{project_id}/archive", tag = PROJECTS,
    params(params::ProjectPath),
    responses((status = 200, description = "The archived project.", body = ProjectJson)))]
pub async fn archive(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
) -> ApiResult<ProjectJson> {
    let id = parse_id(Kind::Project, &project_id)?;
    Ok(Json(app.service.archive_project(&who, &id).await?.into()))
}

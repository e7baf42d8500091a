//! `/v1/organization/projects…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{parse_id, present, AdminAuth, ApiPath, JsonBody, Query};
use super::render::{ListJson, ProjectJson};
use crate::domain::ids::Kind;
use crate::http::AppState;
use crate::service::{NewProject, ProjectChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    external_key_id: Option<String>,
}

#[derive(Deserialize)]
pub struct ModifyBody {
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    external_key_id: Option<Option<String>>,
}

pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<ProjectJson> {
    let input = NewProject {
        name: body.name,
        external_key_id: body.external_key_id,
    };
    Ok(Json(app.service.create_project(&who, input).await?.into()))
}

pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: Query,
) -> ApiResult<ListJson<ProjectJson>> {
    let page = query.page(Kind::Project)?;
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

pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
) -> ApiResult<ProjectJson> {
    let id = parse_id(Kind::Project, &project_id)?;
    Ok(Json(app.service.project(&who, &id).await?.into()))
}

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
    };
    Ok(Json(
        app.service.update_project(&who, &id, changes).await?.into(),
    ))
}

pub async fn archive(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
) -> ApiResult<ProjectJson> {
    let id = parse_id(Kind::Project, &project_id)?;
    Ok(Json(app.service.archive_project(&who, &id).await?.into()))
}

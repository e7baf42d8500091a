//! `/v1/organization/projects/{project_id}/service_accounts…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{parse_id, AdminAuth, ApiPath, JsonBody, Query};
use super::render::{
    CreatedServiceAccountJson, DeletedJson, ListJson, NewKeyJson, ServiceAccountJson,
};
use crate::domain::ids::{Id, Kind};
use crate::http::AppState;
use crate::service::{NewKey, NewServiceAccount, ServiceAccountChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    create_service_account_only: Option<bool>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateKeyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

fn ids(project_id: &str, account_id: &str) -> Result<(Id, Id), ApiError> {
    Ok((
        parse_id(Kind::Project, project_id)?,
        parse_id(Kind::ServiceAccount, account_id)?,
    ))
}

pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<CreatedServiceAccountJson> {
    let project = parse_id(Kind::Project, &project_id)?;
    let input = NewServiceAccount {
        name: body.name,
        create_service_account_only: body.create_service_account_only.unwrap_or(false),
        expires_in_seconds: body.expires_in_seconds,
    };
    let created = app
        .service
        .create_project_service_account(&who, &project, input)
        .await?;
    Ok(Json(created.into()))
}

pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    query: Query,
) -> ApiResult<ListJson<ServiceAccountJson>> {
    let project = parse_id(Kind::Project, &project_id)?;
    let page = query.page(Kind::ServiceAccount)?;
    let accounts = app
        .service
        .list_project_service_accounts(&who, &project, &page)
        .await?;
    Ok(Json(ListJson::new(
        accounts,
        ServiceAccountJson::from,
        ServiceAccountJson::id,
    )))
}

pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, account_id)): ApiPath<(String, String)>,
) -> ApiResult<ServiceAccountJson> {
    let (project, account) = ids(&project_id, &account_id)?;
    let found = app
        .service
        .project_service_account(&who, &project, &account)
        .await?;
    Ok(Json(found.into()))
}

pub async fn update(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, account_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<ServiceAccountJson> {
    let (project, account) = ids(&project_id, &account_id)?;
    let changes = ServiceAccountChanges {
        name: body.name,
        role: body.role,
    };
    let updated = app
        .service
        .update_project_service_account(&who, &project, &account, changes)
        .await?;
    Ok(Json(updated.into()))
}

pub async fn delete(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, account_id)): ApiPath<(String, String)>,
) -> ApiResult<DeletedJson> {
    let (project, account) = ids(&project_id, &account_id)?;
    app.service
        .delete_project_service_account(&who, &project, &account)
        .await?;
    Ok(Json(DeletedJson::new(
        "organization.project.service_account.deleted",
        Kind::ServiceAccount.render_openai(&account),
    )))
}

pub async fn create_key(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, account_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> ApiResult<NewKeyJson> {
    let (project, account) = ids(&project_id, &account_id)?;
    let spec = NewKey {
        name: body.name,
        scopes: body.scopes,
        expires_in_seconds: body.expires_in_seconds,
    };
    let issued = app
        .service
        .create_service_account_key(&who, &project, &account, spec)
        .await?;
    Ok(Json(issued.into()))
}

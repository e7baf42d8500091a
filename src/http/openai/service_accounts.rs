//! `/v1/organization/projects/{project_id}/service_accounts…`

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::{
    CreatedServiceAccountJson, DeletedJson, ListJson, NewKeyJson, ServiceAccountJson,
};
use crate::domain::ids::{Id, Kind};
use crate::domain::limits::KeyLimits;
use crate::http::extract::QueryPairs;
use crate::http::openapi::tags::PROJECT_SERVICE_ACCOUNTS as TAG;
use crate::http::AppState;
use crate::service::{NewKey, NewServiceAccount, ServiceAccountChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// `owner` or `member`; `null` leaves the role as it is, like leaving the field out.
fn assignable_role() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            serde_json::json!("owner"),
            serde_json::json!("member"),
            serde_json::Value::Null,
        ]))
        .build()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateServiceAccountRequest)]
pub struct CreateBody {
    /// 1–256 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// Create the account without an API key (`api_key` is then `null`).
    #[serde(default)]
    create_service_account_only: Option<bool>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 315360000)]
    expires_in_seconds: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateServiceAccountRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = assignable_role)]
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateServiceAccountKeyRequest)]
pub struct CreateKeyBody {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openai::params::scopes)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 315360000)]
    expires_in_seconds: Option<i64>,
    /// IPv4/IPv6 addresses or CIDRs the key may be used from (absent or `null`: any). A
    /// request must also pass the project's list.
    #[serde(default)]
    #[schema(schema_with = crate::http::openai::params::allowed_ips)]
    allowed_ips: Option<Vec<String>>,
    /// keyplane's own limits on the key (absent or `null`: none). 0 refuses every request.
    #[serde(default)]
    #[schema(minimum = 0)]
    max_requests_per_1_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    max_requests_per_1_day: Option<i64>,
    /// Post-paid: requests are refused while the tokens gateways reported for the last minute
    /// are at or over it.
    #[serde(default)]
    #[schema(minimum = 0)]
    max_tokens_per_1_minute: Option<i64>,
}

fn ids(project_id: &str, account_id: &str) -> Result<(Id, Id), ApiError> {
    Ok((
        parse_id(Kind::Project, project_id)?,
        parse_id(Kind::ServiceAccount, account_id)?,
    ))
}

/// Create a service account in a project.
///
/// The response carries the account's API key value, shown this once.
#[utoipa::path(post, path = "/organization/projects/{project_id}/service_accounts", tag = TAG,
    params(params::ProjectPath),
    request_body = CreateBody,
    responses((status = 200, description = "The new account and its key.", body = CreatedServiceAccountJson)))]
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

/// List a project's service accounts.
#[utoipa::path(get, path = "/organization/projects/{project_id}/service_accounts", tag = TAG,
    params(params::ProjectPath, params::Page),
    responses((status = 200, description = "A page of service accounts.", body = ListJson<ServiceAccountJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    query: QueryPairs,
) -> ApiResult<ListJson<ServiceAccountJson>> {
    let project = parse_id(Kind::Project, &project_id)?;
    let page = page(&query, Kind::ServiceAccount)?;
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

/// Retrieve a project's service account.
#[utoipa::path(get, path = "/organization/projects/{project_id}/service_accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath),
    responses((status = 200, description = "The service account.", body = ServiceAccountJson)))]
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

/// Rename a service account or change its role.
#[utoipa::path(post, path = "/organization/projects/{project_id}/service_accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The service account, updated.", body = ServiceAccountJson)))]
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

/// Delete a service account; all its keys are revoked.
#[utoipa::path(delete, path = "/organization/projects/{project_id}/service_accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath),
    responses((status = 200, description = "Deleted.", body = DeletedJson)))]
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

/// Create an additional API key for a service account (rotation).
///
/// The response carries the key's value, shown this once.
#[utoipa::path(post, path = "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys", tag = TAG,
    params(params::AccountPath),
    request_body = Option<CreateKeyBody>,
    responses((status = 200, description = "The new key, with its value.", body = NewKeyJson)))]
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
        allowed_ips: body.allowed_ips,
        limits: KeyLimits {
            max_requests_per_1_minute: body.max_requests_per_1_minute,
            max_requests_per_1_day: body.max_requests_per_1_day,
            max_tokens_per_1_minute: body.max_tokens_per_1_minute,
        },
    };
    let issued = app
        .service
        .create_service_account_key(&who, &project, &account, spec)
        .await?;
    Ok(Json(issued.into()))
}

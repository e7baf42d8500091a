//! `/organizations/{organization_id}/service-accounts[/{service_account_id}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::KcError;
use super::extract::{parse_id, wants_permissions, window, Caller, KcJson, KcPath};
use super::params;
use super::render::{self, AccountJson, ListJson};
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::KEYCARD_SERVICE_ACCOUNTS as TAG;
use crate::http::AppState;
use crate::service::{NewOrgAccount, OrgAccountChanges};

pub fn cursor_scope(organization: &crate::domain::ids::Id) -> String {
    format!("sa:{}", organization.as_str())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = KeycardCreateServiceAccountRequest)]
pub struct CreateBody {
    /// 1–256 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
}

/// Create a service account in the organization (no project, no API key).
#[utoipa::path(post, path = "/{organization_id}/service-accounts", tag = TAG,
    params(params::OrganizationPath),
    request_body = CreateBody,
    responses((status = 201, description = "The new service account.", body = AccountJson)))]
pub async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcJson(body): KcJson<CreateBody>,
) -> Result<Response, KcError> {
    let account = app
        .service
        .create_org_service_account(
            &who,
            NewOrgAccount {
                name: body.name,
                description: body.description,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(render::account(&account, None))).into_response())
}

/// List every service account of the organization, project accounts included.
#[utoipa::path(get, path = "/{organization_id}/service-accounts", tag = TAG,
    params(params::OrganizationPath, params::Window, params::Expand),
    responses((status = 200, description = "A page of service accounts.", body = ListJson<AccountJson>)))]
pub async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    query: QueryPairs,
) -> Result<Response, KcError> {
    let signer = app.service.cursor_signer().await?;
    let scope = cursor_scope(&who.organization_id);
    let window = window(&query, signer, &scope)?;
    let page = app.service.list_org_service_accounts(&who, &window).await?;
    let permissions = wants_permissions(&query).then(|| who.permissions());
    Ok(Json(render::list(
        page,
        |a| &a.id,
        |a| render::account(a, permissions.as_ref()),
        signer,
        &scope,
        permissions.as_ref(),
    ))
    .into_response())
}

/// Retrieve a service account.
#[utoipa::path(get, path = "/{organization_id}/service-accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath, params::Expand),
    responses((status = 200, description = "The service account.", body = AccountJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, id)): KcPath<(String, String)>,
    query: QueryPairs,
) -> Result<Response, KcError> {
    let id = parse_id(&id, "Service account")?;
    let account = app.service.org_service_account(&who, &id).await?;
    let permissions = wants_permissions(&query).then(|| who.permissions());
    Ok(Json(render::account(&account, permissions.as_ref())).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = KeycardUpdateServiceAccountRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// `null` clears the description; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    description: Option<Option<String>>,
}

/// Update a service account: only the fields sent change (`{}` changes nothing).
#[utoipa::path(patch, path = "/{organization_id}/service-accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The service account, updated.", body = AccountJson)))]
pub async fn update(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, id)): KcPath<(String, String)>,
    KcJson(body): KcJson<UpdateBody>,
) -> Result<Response, KcError> {
    let id = parse_id(&id, "Service account")?;
    let account = app
        .service
        .update_org_service_account(
            &who,
            &id,
            OrgAccountChanges {
                name: body.name,
                description: body.description,
            },
        )
        .await?;
    Ok(Json(render::account(&account, None)).into_response())
}

/// Delete a service account: its API keys are revoked and its credentials deleted.
#[utoipa::path(delete, path = "/{organization_id}/service-accounts/{service_account_id}", tag = TAG,
    params(params::AccountPath),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, id)): KcPath<(String, String)>,
) -> Result<StatusCode, KcError> {
    let id = parse_id(&id, "Service account")?;
    app.service.delete_org_service_account(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

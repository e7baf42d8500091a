//! `/v1/organization/workload_identity_providers…`: the OIDC issuers an organization trusts
//! for workload identity federation. Their rules are in `federation_rules.rs`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{order, page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::federation_json::{ProviderJson, TransformationJson, VerificationJson};
use super::params;
use super::render::{DeletedJson, ListJson};
use crate::domain::ids::Kind;
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::WORKLOAD_IDENTITY as TAG;
use crate::http::AppState;
use crate::service::federation::{NewProvider, ProviderChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateWorkloadIdentityProviderRequest)]
pub struct CreateBody {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `oidc`, the only type.
    #[serde(rename = "type")]
    #[schema(schema_with = super::federation_json::oidc)]
    kind: String,
    /// The `iss` its tokens carry, exactly: an `https://` URL.
    #[schema(min_length = 1, max_length = 512)]
    issuer: String,
    /// What their `aud` must contain.
    #[schema(min_length = 1, max_length = 512)]
    audience: String,
    /// Default `true`.
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    #[schema(max_items = 20)]
    attribute_transformations: Option<Vec<TransformationJson>>,
    /// Default: OpenID discovery from the issuer.
    #[serde(default)]
    verification: Option<VerificationJson>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateWorkloadIdentityProviderRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    issuer: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    audience: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Replaces the whole list.
    #[serde(default)]
    #[schema(max_items = 20)]
    attribute_transformations: Option<Vec<TransformationJson>>,
    #[serde(default)]
    verification: Option<VerificationJson>,
}

/// Register an OIDC provider for keyless project service-account authentication.
#[utoipa::path(post, path = "/organization/workload_identity_providers", tag = TAG,
    request_body = CreateBody,
    responses((status = 200, description = "The new provider.", body = ProviderJson)))]
pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<ProviderJson> {
    if body.kind != "oidc" {
        return Err(ApiError::bad_request(
            Some("type"),
            "invalid_value",
            "Invalid value for 'type': expected 'oidc'.",
        ));
    }
    let input = NewProvider {
        name: body.name,
        description: body.description,
        issuer: body.issuer,
        audience: body.audience,
        enabled: body.enabled,
        attribute_transformations: body
            .attribute_transformations
            .map(|l| l.into_iter().map(Into::into).collect()),
        verification: body.verification.map(Into::into),
    };
    Ok(Json(app.service.create_provider(&who, input).await?.into()))
}

/// List the organization's OIDC providers.
#[utoipa::path(get, path = "/organization/workload_identity_providers", tag = TAG,
    params(params::Page, params::ListOrder),
    responses((status = 200, description = "A page of providers.", body = ListJson<ProviderJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: QueryPairs,
) -> ApiResult<ListJson<ProviderJson>> {
    let mut page = page(&query, Kind::IdentityProvider)?;
    page.descending = order(&query)?;
    let providers = app.service.list_providers(&who, &page).await?;
    Ok(Json(ListJson::new(
        providers,
        ProviderJson::from,
        ProviderJson::id,
    )))
}

/// Retrieve an OIDC provider.
#[utoipa::path(get, path = "/organization/workload_identity_providers/{workload_identity_provider_id}",
    tag = TAG, params(params::ProviderPath),
    responses((status = 200, description = "The provider.", body = ProviderJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(provider_id): ApiPath<String>,
) -> ApiResult<ProviderJson> {
    let id = parse_id(Kind::IdentityProvider, &provider_id)?;
    Ok(Json(app.service.provider(&who, &id).await?.into()))
}

/// Update supplied provider fields, preserving omitted fields.
#[utoipa::path(post, path = "/organization/workload_identity_providers/{workload_identity_provider_id}",
    tag = TAG, params(params::ProviderPath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The provider, updated.", body = ProviderJson)))]
pub async fn update(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(provider_id): ApiPath<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<ProviderJson> {
    let id = parse_id(Kind::IdentityProvider, &provider_id)?;
    let changes = ProviderChanges {
        name: body.name,
        description: body.description,
        issuer: body.issuer,
        audience: body.audience,
        enabled: body.enabled,
        attribute_transformations: body
            .attribute_transformations
            .map(|l| l.into_iter().map(Into::into).collect()),
        verification: body.verification.map(Into::into),
    };
    Ok(Json(
        app.service
            .update_provider(&who, &id, changes)
            .await?
            .into(),
    ))
}

/// Delete a provider after deleting all its federation rules.
///
/// A provider that still has rules answers 400.
#[utoipa::path(delete, path = "/organization/workload_identity_providers/{workload_identity_provider_id}",
    tag = TAG, params(params::ProviderPath),
    responses((status = 200, description = "Deleted.", body = DeletedJson)))]
pub async fn delete(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(provider_id): ApiPath<String>,
) -> ApiResult<DeletedJson> {
    let id = parse_id(Kind::IdentityProvider, &provider_id)?;
    app.service.delete_provider(&who, &id).await?;
    Ok(Json(DeletedJson::new(
        "organization.workload_identity_provider.deleted",
        Kind::IdentityProvider.render_openai(&id),
    )))
}

//! `/v1/organization/workload_identity_providers/{id}/federation_rules…`: which tokens of a
//! provider act as which project service account.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::{order, page, parse_id, AdminAuth, ApiPath, JsonBody};
use super::federation_json::{PermissionsJson, RuleJson};
use super::params;
use super::render::{DeletedJson, ListJson};
use crate::domain::ids::Kind;
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::WORKLOAD_IDENTITY as TAG;
use crate::http::AppState;
use crate::service::federation::{NewRule, RuleChanges};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateFederationRuleRequest)]
pub struct CreateBody {
    /// Claim (or derived attribute) name → the value it must equal (a string, boolean or
    /// number); at least one. A name with dots also reaches into nested claims
    /// (`kubernetes.io.namespace`).
    #[schema(value_type = Object)]
    attribute_matchers: Map<String, Value>,
    /// `proj_…`: an active project.
    project_id: String,
    /// `svc_acct_…`: a service account of that project.
    service_account_id: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    /// Default `{"type": "service_account_default"}`.
    #[serde(default)]
    permissions: Option<PermissionsJson>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateFederationRuleRequest)]
pub struct UpdateBody {
    /// Replaces all matchers.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    attribute_matchers: Option<Map<String, Value>>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256)]
    name: Option<Option<String>>,
    #[serde(default)]
    permissions: Option<PermissionsJson>,
}

/// Bind verified token attributes to an existing project service account.
#[utoipa::path(post,
    path = "/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules",
    tag = TAG, params(params::ProviderPath),
    request_body = CreateBody,
    responses((status = 200, description = "The new rule.", body = RuleJson)))]
pub async fn create(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(provider_id): ApiPath<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<RuleJson> {
    let provider = parse_id(Kind::IdentityProvider, &provider_id)?;
    let input = NewRule {
        project_id: parse_id(Kind::Project, &body.project_id)?,
        service_account_id: parse_id(Kind::ServiceAccount, &body.service_account_id)?,
        name: body.name,
        description: body.description,
        enabled: body.enabled,
        attribute_matchers: body.attribute_matchers,
        permissions: body.permissions.map(Into::into),
    };
    Ok(Json(
        app.service
            .create_rule(&who, &provider, input)
            .await?
            .into(),
    ))
}

/// List the provider's federation rules to project service accounts.
#[utoipa::path(get,
    path = "/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules",
    tag = TAG, params(params::ProviderPath, params::Page, params::ListOrder, params::RuleFilter),
    responses((status = 200, description = "A page of rules.", body = ListJson<RuleJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(provider_id): ApiPath<String>,
    query: QueryPairs,
) -> ApiResult<ListJson<RuleJson>> {
    let provider = parse_id(Kind::IdentityProvider, &provider_id)?;
    let mut page = page(&query, Kind::FederationRule)?;
    page.descending = order(&query)?;
    let account = match query.get("service_account_id") {
        None | Some("") => None,
        Some(raw) => Some(Kind::ServiceAccount.parse_openai(raw).ok_or_else(|| {
            ApiError::bad_request(
                Some("service_account_id"),
                "invalid_value",
                "Invalid value for 'service_account_id': expected a service account ID \
                 (svc_acct_…).",
            )
        })?),
    };
    let rules = app
        .service
        .list_rules(&who, &provider, account.as_ref(), &page)
        .await?;
    Ok(Json(ListJson::new(rules, RuleJson::from, RuleJson::id)))
}

/// Retrieve a federation rule owned by the authenticated organization and provider.
#[utoipa::path(get,
    path = "/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}",
    tag = TAG, params(params::RulePath),
    responses((status = 200, description = "The rule.", body = RuleJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((provider_id, rule_id)): ApiPath<(String, String)>,
) -> ApiResult<RuleJson> {
    let provider = parse_id(Kind::IdentityProvider, &provider_id)?;
    let id = parse_id(Kind::FederationRule, &rule_id)?;
    Ok(Json(app.service.rule(&who, &provider, &id).await?.into()))
}

/// Update supplied matcher, permission, metadata, or enabled fields.
///
/// The project and service account of a rule do not change: create another rule.
#[utoipa::path(post,
    path = "/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}",
    tag = TAG, params(params::RulePath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The rule, updated.", body = RuleJson)))]
pub async fn update(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((provider_id, rule_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<RuleJson> {
    let provider = parse_id(Kind::IdentityProvider, &provider_id)?;
    let id = parse_id(Kind::FederationRule, &rule_id)?;
    let changes = RuleChanges {
        name: body.name,
        description: body.description,
        enabled: body.enabled,
        attribute_matchers: body.attribute_matchers,
        permissions: body.permissions.map(Into::into),
    };
    Ok(Json(
        app.service
            .update_rule(&who, &provider, &id, changes)
            .await?
            .into(),
    ))
}

/// Delete a federation rule to a project service account.
#[utoipa::path(delete,
    path = "/organization/workload_identity_providers/{workload_identity_provider_id}/federation_rules/{workload_identity_federation_rule_id}",
    tag = TAG, params(params::RulePath),
    responses((status = 200, description = "Deleted.", body = DeletedJson)))]
pub async fn delete(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((provider_id, rule_id)): ApiPath<(String, String)>,
) -> ApiResult<DeletedJson> {
    let provider = parse_id(Kind::IdentityProvider, &provider_id)?;
    let id = parse_id(Kind::FederationRule, &rule_id)?;
    app.service.delete_rule(&who, &provider, &id).await?;
    Ok(Json(DeletedJson::new(
        "organization.workload_identity_federation_rule.deleted",
        Kind::FederationRule.render_openai(&id),
    )))
}

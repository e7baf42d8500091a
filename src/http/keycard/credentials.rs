//! `/organizations/{organization_id}/service-accounts/{service_account_id}/credentials[/{credential_id}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::KcError;
use super::extract::{parse_id, wants_permissions, window, Caller, KcJson, KcPath};
use super::params;
use super::render::{self, CreatedCredentialJson, CredentialJson, ListJson};
use crate::domain::ids::{Id, Kind};
use crate::domain::model::CredentialFederation;
use crate::http::extract::{present, QueryPairs};
use crate::http::openapi::tags::KEYCARD_CREDENTIALS as TAG;
use crate::http::AppState;
use crate::service::{CredentialChanges, NewCredential};

fn cursor_scope(organization: &Id, account: &Id) -> String {
    format!("cred:{}:{}", organization.as_str(), account.as_str())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = KeycardCreateCredentialRequest)]
pub struct CreateBody {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    /// keyplane: instead of a secret, the client authenticates at `/service-account-token`
    /// with a token of this workload identity provider (`idp_…` or its bare ID) whose `sub`
    /// is `subject` (RFC 7523 `client_assertion`). Both or neither.
    #[serde(default)]
    identity_provider_id: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024)]
    subject: Option<String>,
}

/// Create a client credential; the response carries its secret, shown this once.
#[utoipa::path(post, path = "/{organization_id}/service-accounts/{service_account_id}/credentials", tag = TAG,
    params(params::AccountPath),
    request_body = CreateBody,
    responses((status = 201, description = "The new credential, with `client_secret`.", body = CreatedCredentialJson)))]
pub async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, account)): KcPath<(String, String)>,
    KcJson(body): KcJson<CreateBody>,
) -> Result<Response, KcError> {
    let account = parse_id(&account, "Service account")?;
    let federation = match (body.identity_provider_id, body.subject) {
        (None, None) => None,
        (Some(provider), Some(subject)) => {
            let provider = Kind::IdentityProvider
                .parse_openai(&provider)
                .or_else(|| Id::parse(&provider))
                .ok_or_else(|| {
                    KcError::bad_request(
                        "invalid_value",
                        "'identity_provider_id' is not a workload identity provider ID.",
                    )
                })?;
            Some(CredentialFederation {
                provider_id: provider,
                subject,
            })
        }
        _ => {
            return Err(KcError::bad_request(
                "invalid_value",
                "Give both 'identity_provider_id' and 'subject', or neither.",
            ))
        }
    };
    let issued = app
        .service
        .create_credential(
            &who,
            &account,
            NewCredential {
                name: body.name,
                description: body.description,
                federation,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render::created_credential(issued)),
    )
        .into_response())
}

/// List a service account's credentials.
#[utoipa::path(get, path = "/{organization_id}/service-accounts/{service_account_id}/credentials", tag = TAG,
    params(params::AccountPath, params::Window, params::Expand),
    responses((status = 200, description = "A page of credentials.", body = ListJson<CredentialJson>)))]
pub async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, account)): KcPath<(String, String)>,
    query: QueryPairs,
) -> Result<Response, KcError> {
    let account = parse_id(&account, "Service account")?;
    let signer = app.service.cursor_signer().await?;
    let scope = cursor_scope(&who.organization_id, &account);
    let window = window(&query, signer, &scope)?;
    let page = app
        .service
        .list_credentials(&who, &account, &window)
        .await?;
    let permissions = wants_permissions(&query).then(|| who.permissions());
    Ok(Json(render::list(
        page,
        |c| &c.id,
        |c| render::credential(c, permissions.as_ref()),
        signer,
        &scope,
        permissions.as_ref(),
    ))
    .into_response())
}

fn ids(account: &str, credential: &str) -> Result<(Id, Id), KcError> {
    Ok((
        parse_id(account, "Service account")?,
        parse_id(credential, "Credential")?,
    ))
}

/// Retrieve a credential (never its secret).
#[utoipa::path(get, path = "/{organization_id}/service-accounts/{service_account_id}/credentials/{credential_id}", tag = TAG,
    params(params::CredentialPath, params::Expand),
    responses((status = 200, description = "The credential.", body = CredentialJson)))]
pub async fn retrieve(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, account, credential)): KcPath<(String, String, String)>,
    query: QueryPairs,
) -> Result<Response, KcError> {
    let (account, id) = ids(&account, &credential)?;
    let c = app.service.credential(&who, &account, &id).await?;
    let permissions = wants_permissions(&query).then(|| who.permissions());
    Ok(Json(render::credential(&c, permissions.as_ref())).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = KeycardUpdateCredentialRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    description: Option<Option<String>>,
}

/// Rename a credential or change its description.
#[utoipa::path(patch, path = "/{organization_id}/service-accounts/{service_account_id}/credentials/{credential_id}", tag = TAG,
    params(params::CredentialPath),
    request_body = Option<UpdateBody>,
    responses((status = 200, description = "The credential, updated.", body = CredentialJson)))]
pub async fn update(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, account, credential)): KcPath<(String, String, String)>,
    KcJson(body): KcJson<UpdateBody>,
) -> Result<Response, KcError> {
    let (account, id) = ids(&account, &credential)?;
    let c = app
        .service
        .update_credential(
            &who,
            &account,
            &id,
            CredentialChanges {
                name: body.name,
                description: body.description,
            },
        )
        .await?;
    Ok(Json(render::credential(&c, None)).into_response())
}

/// Delete a credential; tokens it obtained stop being accepted.
#[utoipa::path(delete, path = "/{organization_id}/service-accounts/{service_account_id}/credentials/{credential_id}", tag = TAG,
    params(params::CredentialPath),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(app): State<AppState>,
    Caller(who): Caller,
    KcPath((_, account, credential)): KcPath<(String, String, String)>,
) -> Result<StatusCode, KcError> {
    let (account, id) = ids(&account, &credential)?;
    app.service.delete_credential(&who, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

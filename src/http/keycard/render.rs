//! The Keycard dialect's JSON: RFC 3339 timestamps with milliseconds, optional fields absent
//! rather than null, `permissions` only when expanded.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::cursor::CursorSigner;
use crate::domain::ids::Id;
use crate::domain::model::{Credential, ServiceAccount};
use crate::domain::page::WindowPage;
use crate::domain::time::to_rfc3339_millis;
use crate::service::{IssuedCredential, Permissions};

#[derive(Serialize, ToSchema)]
#[schema(as = KeycardServiceAccount)]
pub struct AccountJson {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    description: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The caller's permissions, with `expand=permissions`: resource type → permission → granted.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>>)]
    permissions: Option<Permissions>,
}

pub fn account(a: &ServiceAccount, permissions: Option<&Permissions>) -> AccountJson {
    AccountJson {
        id: a.id.as_str().to_owned(),
        name: a.name.clone(),
        description: a.description.clone(),
        created_at: to_rfc3339_millis(a.created_at),
        updated_at: to_rfc3339_millis(a.updated_at),
        permissions: permissions.cloned(),
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = KeycardCredential)]
pub struct CredentialJson {
    id: String,
    client_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    description: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    last_used_at: Option<String>,
    /// keyplane: the workload identity provider of a credential that authenticates with a
    /// token of that provider instead of a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    identity_provider_id: Option<String>,
    /// keyplane: the `sub` that token must carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The caller's permissions, with `expand=permissions`: resource type → permission → granted.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>>)]
    permissions: Option<Permissions>,
}

pub fn credential(c: &Credential, permissions: Option<&Permissions>) -> CredentialJson {
    CredentialJson {
        id: c.id.as_str().to_owned(),
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        created_at: to_rfc3339_millis(c.created_at),
        last_used_at: c.last_used_at.map(to_rfc3339_millis),
        identity_provider_id: c
            .federation
            .as_ref()
            .map(|f| f.provider_id.as_str().to_owned()),
        subject: c.federation.as_ref().map(|f| f.subject.clone()),
        permissions: permissions.cloned(),
    }
}

/// The one response that carries the secret.
#[derive(Serialize, ToSchema)]
#[schema(as = KeycardCreatedCredential)]
pub struct CreatedCredentialJson {
    id: String,
    client_id: String,
    /// Absent for a credential of workload identity federation, which has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    client_secret: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    description: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    identity_provider_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    subject: Option<String>,
}

pub fn created_credential(issued: IssuedCredential) -> CreatedCredentialJson {
    let c = issued.credential;
    CreatedCredentialJson {
        id: c.id.as_str().to_owned(),
        client_id: c.client_id,
        client_secret: issued.client_secret,
        name: c.name,
        description: c.description,
        created_at: to_rfc3339_millis(c.created_at),
        identity_provider_id: c
            .federation
            .as_ref()
            .map(|f| f.provider_id.as_str().to_owned()),
        subject: c.federation.map(|f| f.subject),
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = KeycardPageInfo)]
pub struct PageInfo {
    has_next_page: bool,
    has_prev_page: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    start_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    end_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = KeycardList)]
pub struct ListJson<T> {
    items: Vec<T>,
    page_info: PageInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The caller's permissions, with `expand=permissions`: resource type → permission → granted.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>>)]
    permissions: Option<Permissions>,
}

/// A page with cursors signed for `scope`: `start_cursor` goes with `before`, `end_cursor`
/// with `after`.
pub fn list<T, J>(
    page: WindowPage<T>,
    id_of: impl Fn(&T) -> &Id,
    render: impl Fn(&T) -> J,
    signer: &CursorSigner,
    scope: &str,
    permissions: Option<&Permissions>,
) -> ListJson<J> {
    let start_cursor = page.items.first().map(|t| signer.encode(scope, id_of(t)));
    let end_cursor = page.items.last().map(|t| signer.encode(scope, id_of(t)));
    ListJson {
        items: page.items.iter().map(render).collect(),
        page_info: PageInfo {
            has_next_page: page.has_next,
            has_prev_page: page.has_prev,
            start_cursor,
            end_cursor,
        },
        permissions: permissions.cloned(),
    }
}

//! JSON shapes of the OpenAI dialect, built from domain objects.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::Kind;
use crate::domain::limits::render_allowlist;
use crate::domain::model::{ApiKey, Organization, Project, ServiceAccount};
use crate::domain::page::Page;
use crate::domain::time::to_unix_seconds;
use crate::http::openapi::string_enum;
use crate::service::{IssuedKey, SCOPE_READ, SCOPE_WRITE};

use super::admission_json::{disabled, DisabledJson, KeyAdmissionJson};

string_enum! {
    project_object = ["organization.project"];
    project_status = ["active", "archived"];
    service_account_object = ["organization.project.service_account"];
    role = ["owner", "member", "none"];
    new_key_object = ["organization.project.service_account.api_key"];
    list_object = ["list"];
    service_account_type = ["service_account"];
    project_key_object = ["organization.project.api_key"];
    project_access = ["active", "inactive"];
    organization_type = ["organization"];
    admin_key_owner_role = ["owner"];
    admin_key_object = ["organization.admin_api_key"];
    deleted_object = [
        "organization.project.service_account.deleted",
        "organization.project.api_key.deleted",
        "organization.admin_api_key.deleted",
        "organization.workload_identity_provider.deleted",
        "organization.workload_identity_federation_rule.deleted",
    ];
}

#[derive(Serialize, ToSchema)]
#[schema(as = Project)]
pub struct ProjectJson {
    id: String,
    #[schema(schema_with = project_object)]
    object: &'static str,
    name: String,
    created_at: i64,
    #[schema(required = true)]
    archived_at: Option<i64>,
    #[schema(schema_with = project_status)]
    status: &'static str,
    #[schema(required = true)]
    external_key_id: Option<String>,
    /// keyplane: addresses or CIDRs the project's keys may be used from; `null`: any.
    #[schema(required = true)]
    allowed_ips: Option<Vec<String>>,
}

impl From<Project> for ProjectJson {
    fn from(p: Project) -> Self {
        Self {
            id: Kind::Project.render_openai(&p.id),
            object: "organization.project",
            status: if p.is_archived() {
                "archived"
            } else {
                "active"
            },
            name: p.name,
            created_at: to_unix_seconds(p.created_at),
            archived_at: p.archived_at.map(to_unix_seconds),
            external_key_id: p.external_key_id,
            allowed_ips: p.allowed_ips.as_deref().map(render_allowlist),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = ProjectServiceAccount)]
pub struct ServiceAccountJson {
    #[schema(schema_with = service_account_object)]
    object: &'static str,
    id: String,
    name: String,
    #[schema(schema_with = role)]
    role: &'static str,
    created_at: i64,
}

impl From<ServiceAccount> for ServiceAccountJson {
    fn from(a: ServiceAccount) -> Self {
        Self {
            object: "organization.project.service_account",
            id: Kind::ServiceAccount.render_openai(&a.id),
            role: a.role.as_str(),
            name: a.name,
            created_at: to_unix_seconds(a.created_at),
        }
    }
}

/// The one response that carries a service-account key's value.
#[derive(Serialize, ToSchema)]
#[schema(as = NewServiceAccountKey)]
pub struct NewKeyJson {
    #[schema(schema_with = new_key_object)]
    object: &'static str,
    value: String,
    name: String,
    created_at: i64,
    id: String,
    /// When the key stops working (`expires_in_seconds`), `null` if never. The SDKs type it
    /// (`openai` Python 3.x, Node 7.x); the spec's `ProjectServiceAccountApiKey` leaves it out
    /// but allows more properties.
    #[schema(required = true)]
    expires_at: Option<i64>,
}

impl From<IssuedKey> for NewKeyJson {
    fn from(k: IssuedKey) -> Self {
        Self {
            object: "organization.project.service_account.api_key",
            value: k.value.expose().to_owned(),
            id: Kind::ApiKey.render_openai(&k.key.id),
            name: k.key.name,
            created_at: to_unix_seconds(k.key.created_at),
            expires_at: k.key.expires_at.map(to_unix_seconds),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = CreatedProjectServiceAccount)]
pub struct CreatedServiceAccountJson {
    #[serde(flatten)]
    account: ServiceAccountJson,
    #[schema(required = true)]
    api_key: Option<NewKeyJson>,
}

impl From<(ServiceAccount, Option<IssuedKey>)> for CreatedServiceAccountJson {
    fn from((account, key): (ServiceAccount, Option<IssuedKey>)) -> Self {
        Self {
            account: account.into(),
            api_key: key.map(Into::into),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = List)]
pub struct ListJson<T> {
    #[schema(schema_with = list_object)]
    object: &'static str,
    data: Vec<T>,
    #[schema(required = true)]
    first_id: Option<String>,
    #[schema(required = true)]
    last_id: Option<String>,
    has_more: bool,
}

impl<T> ListJson<T> {
    /// `id_of` reads the rendered ID back out of an item.
    pub fn new<D>(page: Page<D>, render: impl FnMut(D) -> T, id_of: impl Fn(&T) -> &str) -> Self {
        let data: Vec<T> = page.items.into_iter().map(render).collect();
        Self {
            object: "list",
            first_id: data.first().map(|x| id_of(x).to_owned()),
            last_id: data.last().map(|x| id_of(x).to_owned()),
            data,
            has_more: page.has_more,
        }
    }
}

impl ProjectJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl ServiceAccountJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Deleted)]
pub struct DeletedJson {
    #[schema(schema_with = deleted_object)]
    object: &'static str,
    id: String,
    deleted: bool,
}

impl DeletedJson {
    pub fn new(object: &'static str, id: String) -> Self {
        Self {
            object,
            id,
            deleted: true,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = KeyOwnerServiceAccount)]
pub struct KeyOwnerAccountJson {
    /// Earlier releases of OpenAI's spec type the owner as a full `ProjectServiceAccount`,
    /// where `object` is required; clients generated from them reject its absence.
    #[schema(schema_with = service_account_object)]
    object: &'static str,
    id: String,
    name: String,
    created_at: i64,
    #[schema(schema_with = role)]
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ProjectKeyOwner)]
pub struct ProjectKeyOwnerJson {
    #[schema(schema_with = service_account_type)]
    #[serde(rename = "type")]
    kind: &'static str,
    service_account: KeyOwnerAccountJson,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ProjectApiKey)]
pub struct ProjectApiKeyJson {
    #[schema(schema_with = project_key_object)]
    object: &'static str,
    id: String,
    name: String,
    redacted_value: String,
    created_at: i64,
    #[schema(required = true)]
    last_used_at: Option<i64>,
    #[schema(required = true)]
    expires_at: Option<i64>,
    scopes: Vec<String>,
    #[schema(schema_with = project_access)]
    owner_project_access: &'static str,
    owner: ProjectKeyOwnerJson,
    #[serde(flatten)]
    admission: KeyAdmissionJson,
}

impl From<(ApiKey, ServiceAccount)> for ProjectApiKeyJson {
    fn from((key, owner): (ApiKey, ServiceAccount)) -> Self {
        Self {
            admission: KeyAdmissionJson::of(&key),
            object: "organization.project.api_key",
            id: Kind::ApiKey.render_openai(&key.id),
            name: key.name,
            redacted_value: key.redacted_value,
            created_at: to_unix_seconds(key.created_at),
            last_used_at: key.last_used_at.map(to_unix_seconds),
            expires_at: key.expires_at.map(to_unix_seconds),
            scopes: key.scopes,
            owner_project_access: if owner.role.has_project_access() {
                "active"
            } else {
                "inactive"
            },
            owner: ProjectKeyOwnerJson {
                kind: "service_account",
                service_account: KeyOwnerAccountJson {
                    object: "organization.project.service_account",
                    id: Kind::ServiceAccount.render_openai(&owner.id),
                    created_at: to_unix_seconds(owner.created_at),
                    role: owner.role.as_str(),
                    name: owner.name,
                },
            },
        }
    }
}

impl ProjectApiKeyJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// keyplane has no users: admin keys are owned by their organization.
#[derive(Serialize, ToSchema)]
#[schema(as = AdminKeyOwner)]
pub struct AdminKeyOwnerJson {
    #[schema(schema_with = organization_type)]
    #[serde(rename = "type")]
    kind: &'static str,
    #[schema(schema_with = organization_type)]
    object: &'static str,
    id: String,
    name: String,
    created_at: i64,
    #[schema(schema_with = admin_key_owner_role)]
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = AdminApiKey)]
pub struct AdminApiKeyJson {
    #[schema(schema_with = admin_key_object)]
    object: &'static str,
    id: String,
    #[schema(required = true)]
    name: Option<String>,
    redacted_value: String,
    created_at: i64,
    #[schema(required = true)]
    expires_at: Option<i64>,
    #[schema(required = true)]
    last_used_at: Option<i64>,
    owner: AdminKeyOwnerJson,
    /// `api.management.read`, plus `api.management.write` unless the key is read-only.
    scopes: Vec<String>,
    /// Only in the response that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    value: Option<String>,
    /// keyplane: `null` while the key is enabled.
    #[schema(required = true)]
    disabled: Option<DisabledJson>,
}

impl AdminApiKeyJson {
    pub fn new(key: ApiKey, org: &Organization) -> Self {
        // Keys from before scopes existed have none stored and full access: shown as such.
        let scopes = if key.scopes.is_empty() {
            vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()]
        } else {
            key.scopes
        };
        Self {
            disabled: disabled(key.disabled),
            scopes,
            object: "organization.admin_api_key",
            id: Kind::ApiKey.render_openai(&key.id),
            name: Some(key.name),
            redacted_value: key.redacted_value,
            created_at: to_unix_seconds(key.created_at),
            expires_at: key.expires_at.map(to_unix_seconds),
            last_used_at: key.last_used_at.map(to_unix_seconds),
            owner: AdminKeyOwnerJson {
                kind: "organization",
                object: "organization",
                id: Kind::Organization.render_openai(&org.id),
                name: org.name.clone(),
                created_at: to_unix_seconds(org.created_at),
                role: "owner",
            },
            value: None,
        }
    }

    pub fn created(issued: IssuedKey, org: &Organization) -> Self {
        let value = issued.value.expose().to_owned();
        Self {
            value: Some(value),
            ..Self::new(issued.key, org)
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

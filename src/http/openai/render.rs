//! JSON shapes of the OpenAI dialect, built from domain objects.

use serde::Serialize;

use crate::domain::ids::Kind;
use crate::domain::model::{Project, ServiceAccount};
use crate::domain::page::Page;
use crate::domain::time::to_unix_seconds;
use crate::service::IssuedKey;

#[derive(Serialize)]
pub struct ProjectJson {
    id: String,
    object: &'static str,
    name: String,
    created_at: i64,
    archived_at: Option<i64>,
    status: &'static str,
    external_key_id: Option<String>,
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
        }
    }
}

#[derive(Serialize)]
pub struct ServiceAccountJson {
    object: &'static str,
    id: String,
    name: String,
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
#[derive(Serialize)]
pub struct NewKeyJson {
    object: &'static str,
    value: String,
    name: String,
    created_at: i64,
    id: String,
}

impl From<IssuedKey> for NewKeyJson {
    fn from(k: IssuedKey) -> Self {
        Self {
            object: "organization.project.service_account.api_key",
            value: k.value.expose().to_owned(),
            id: Kind::ApiKey.render_openai(&k.key.id),
            name: k.key.name,
            created_at: to_unix_seconds(k.key.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct CreatedServiceAccountJson {
    #[serde(flatten)]
    account: ServiceAccountJson,
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

#[derive(Serialize)]
pub struct ListJson<T> {
    object: &'static str,
    data: Vec<T>,
    first_id: Option<String>,
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

#[derive(Serialize)]
pub struct DeletedJson {
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

//! Service accounts inside a project (the OpenAI view).

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::{Id, Kind};
use crate::domain::model::{Role, ServiceAccount};
use crate::domain::names::{self, FieldError};
use crate::domain::page::{Page, PageRequest};
use crate::store::Change;

use super::audit::{account_data, Author, Subject};
use super::permissions::Action;
use super::{IssuedKey, NewKey, Principal, Service, ServiceError, ServiceResult};

#[derive(Debug, Clone, Default)]
pub struct NewServiceAccount {
    pub name: String,
    /// No membership (role `none`) and no key.
    pub create_service_account_only: bool,
    /// Lifetime of the first key.
    pub expires_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceAccountChanges {
    pub name: Option<String>,
    pub role: Option<String>,
}

impl Service {
    /// Creates the account and, unless asked not to, its first key, in one transaction.
    pub async fn create_project_service_account(
        &self,
        who: &Principal,
        project_id: &Id,
        input: NewServiceAccount,
    ) -> ServiceResult<(ServiceAccount, Option<IssuedKey>)> {
        who.require(Action::Write)?;
        let name = names::name("name", &input.name)?;
        let project = self.active_project(who, project_id).await?;
        let now = self.clock.now();
        let account = ServiceAccount {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            project_id: Some(project.id),
            name,
            description: None,
            role: if input.create_service_account_only {
                Role::None
            } else {
                Role::Member
            },
            created_at: now,
            updated_at: now,
        };
        let key = if input.create_service_account_only {
            None
        } else {
            let spec = NewKey {
                expires_in_seconds: input.expires_in_seconds,
                ..NewKey::default()
            };
            Some(self.mint_service_account_key(&account, spec)?)
        };
        let author = Author::of(who);
        let mut events = vec![self.audit_event(
            &author,
            EventType::ServiceAccountCreated,
            Subject::Account(&account),
            audit::data(account_data(&account)),
            now,
        )?];
        if let Some(k) = &key {
            events.push(self.key_created_event(&author, &k.key)?);
        }
        if let Err(err) = self
            .store
            .insert_service_account(&account, key.as_ref().map(|k| &k.key), &events)
            .await
        {
            return Err(self.explain_conflict(who, project_id, err).await);
        }
        if let Some(k) = &key {
            self.keys_changed(Change::Created(k.key.hash)).await;
        }
        Ok((account, key))
    }

    pub async fn list_project_service_accounts(
        &self,
        who: &Principal,
        project_id: &Id,
        page: &PageRequest,
    ) -> ServiceResult<Page<ServiceAccount>> {
        self.active_project(who, project_id).await?;
        Ok(self
            .store
            .list_project_service_accounts(&who.organization_id, project_id, page)
            .await?)
    }

    /// A live account of this project; accounts of other projects do not exist here.
    pub async fn project_service_account(
        &self,
        who: &Principal,
        project_id: &Id,
        id: &Id,
    ) -> ServiceResult<ServiceAccount> {
        self.project(who, project_id).await?;
        match self.store.service_account(&who.organization_id, id).await? {
            Some(account) if account.project_id.as_ref() == Some(project_id) => Ok(account),
            _ => Err(ServiceError::not_found(Kind::ServiceAccount, id)),
        }
    }

    pub async fn update_project_service_account(
        &self,
        who: &Principal,
        project_id: &Id,
        id: &Id,
        changes: ServiceAccountChanges,
    ) -> ServiceResult<ServiceAccount> {
        who.require(Action::Write)?;
        let name = changes
            .name
            .as_deref()
            .map(|n| names::name("name", n))
            .transpose()?;
        let role = changes
            .role
            .as_deref()
            .map(parse_assignable_role)
            .transpose()?;
        self.active_project(who, project_id).await?;
        let mut account = self.project_service_account(who, project_id, id).await?;
        if name.is_none() && role.is_none() {
            return Ok(account);
        }
        let mut requested = serde_json::Map::new();
        if let Some(n) = &name {
            requested.insert("name".into(), json!(n));
        }
        if let Some(r) = role {
            requested.insert("role".into(), json!(r.as_str()));
        }
        account.name = name.unwrap_or(account.name);
        account.role = role.unwrap_or(account.role);
        account.updated_at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::ServiceAccountUpdated,
            Subject::Account(&account),
            audit::changes(requested.into()),
            account.updated_at,
        )?;
        if let Err(err) = self.store.update_service_account(&account, &[event]).await {
            return Err(self
                .explain_account_conflict(who, project_id, id, err)
                .await);
        }
        self.keys_changed(Change::ServiceAccount(account.id.clone()))
            .await;
        Ok(account)
    }

    /// Deletes the account and revokes every key it holds, atomically.
    pub async fn delete_project_service_account(
        &self,
        who: &Principal,
        project_id: &Id,
        id: &Id,
    ) -> ServiceResult<()> {
        who.require(Action::Write)?;
        self.active_project(who, project_id).await?;
        let account = self.project_service_account(who, project_id, id).await?;
        let at = self.clock.now();
        let event = self.account_deleted_event(who, &account, at)?;
        if let Err(err) = self
            .store
            .delete_service_account(&who.organization_id, id, at, &[event])
            .await
        {
            return Err(self
                .explain_account_conflict(who, project_id, id, err)
                .await);
        }
        self.keys_changed(Change::ServiceAccount(id.clone())).await;
        Ok(())
    }

    /// A guard failed on an account write: it was deleted, or its project archived, meanwhile.
    pub(super) async fn explain_account_conflict(
        &self,
        who: &Principal,
        project_id: &Id,
        id: &Id,
        err: crate::store::StoreError,
    ) -> ServiceError {
        if let Err(reason) = self.project_service_account(who, project_id, id).await {
            return reason;
        }
        self.explain_conflict(who, project_id, err).await
    }
}

fn parse_assignable_role(raw: &str) -> Result<Role, FieldError> {
    match Role::parse(raw) {
        Some(role @ (Role::Owner | Role::Member)) => Ok(role),
        _ => Err(FieldError::new(
            "role",
            "Invalid value for 'role': expected one of 'owner', 'member'.",
        )),
    }
}

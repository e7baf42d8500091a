//! Service accounts of a whole organization (the Keycard view). Same table and rules as the
//! project view in `service_accounts.rs`: accounts created here belong to no project, and every
//! account of the organization, project ones included, is listed, renamed and deleted here.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::{Id, Kind};
use crate::domain::model::{Role, ServiceAccount};
use crate::domain::names::{self, FieldError};
use crate::domain::page::{Window, WindowPage};
use crate::store::Change;

use super::audit::{account_data, Author, Subject};
use super::permissions::Action;
use super::{Principal, Service, ServiceError, ServiceResult};

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct NewOrgAccount {
    pub name: String,
    pub description: Option<String>,
}

/// Only the fields present change. `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct OrgAccountChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

/// Descriptions: up to 500 characters, no control characters except newlines and tabs; an
/// empty (or all-blank) description is no description.
pub fn description(field: &'static str, raw: &str) -> Result<Option<String>, FieldError> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            field,
            format!("'{field}' must be at most {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            format!("'{field}' must not contain control characters."),
        ));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// Validates a partial update of `name` and `description` (the Keycard dialect's PATCH of
/// accounts and credentials alike): `None` = leave, `Some(None)` = clear the description.
pub(super) fn name_and_description(
    name: Option<&str>,
    new_description: Option<Option<String>>,
) -> Result<(Option<String>, Option<Option<String>>), FieldError> {
    let name = name.map(|n| names::name("name", n)).transpose()?;
    let new_description = match new_description {
        None => None,
        Some(None) => Some(None),
        Some(Some(d)) => Some(description("description", &d)?),
    };
    Ok((name, new_description))
}

impl Service {
    pub async fn create_org_service_account(
        &self,
        who: &Principal,
        input: NewOrgAccount,
    ) -> ServiceResult<ServiceAccount> {
        who.require(Action::Write)?;
        let name = names::name("name", &input.name)?;
        let description = match input.description.as_deref() {
            Some(d) => description("description", d)?,
            None => None,
        };
        let now = self.clock.now();
        let account = ServiceAccount {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            project_id: None,
            name,
            description,
            // A project role means nothing without a project.
            role: Role::None,
            created_at: now,
            updated_at: now,
        };
        let event = self.audit_event(
            &Author::of(who),
            EventType::ServiceAccountCreated,
            Subject::Account(&account),
            audit::data(account_data(&account)),
            now,
        )?;
        self.store
            .insert_service_account(&account, None, &[event])
            .await?;
        Ok(account)
    }

    pub async fn org_service_account(
        &self,
        who: &Principal,
        id: &Id,
    ) -> ServiceResult<ServiceAccount> {
        who.require(Action::Read)?;
        self.store
            .service_account(&who.organization_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::ServiceAccount, id))
    }

    pub async fn list_org_service_accounts(
        &self,
        who: &Principal,
        window: &Window,
    ) -> ServiceResult<WindowPage<ServiceAccount>> {
        who.require(Action::Read)?;
        if window.after.is_some() && window.before.is_some() {
            return Err(ServiceError::BadRequest(
                "Use either 'after' or 'before', not both.",
            ));
        }
        Ok(self
            .store
            .list_org_service_accounts(&who.organization_id, window)
            .await?)
    }

    pub async fn update_org_service_account(
        &self,
        who: &Principal,
        id: &Id,
        changes: OrgAccountChanges,
    ) -> ServiceResult<ServiceAccount> {
        who.require(Action::Write)?;
        let (name, new_description) =
            name_and_description(changes.name.as_deref(), changes.description)?;
        let mut account = self.org_service_account(who, id).await?;
        if name.is_none() && new_description.is_none() {
            return Ok(account);
        }
        let mut requested = serde_json::Map::new();
        if let Some(name) = name {
            requested.insert("name".into(), json!(name));
            account.name = name;
        }
        if let Some(d) = new_description {
            requested.insert("description".into(), json!(d));
            account.description = d;
        }
        account.updated_at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::ServiceAccountUpdated,
            Subject::Account(&account),
            audit::changes(requested.into()),
            account.updated_at,
        )?;
        if let Err(err) = self.store.update_service_account(&account, &[event]).await {
            // Deleted meanwhile: say so; anything else is the store's trouble.
            self.org_service_account(who, id).await?;
            return Err(err.into());
        }
        self.keys_changed(Change::ServiceAccount(account.id.clone()))
            .await;
        Ok(account)
    }

    /// Deletes the account, revokes its keys and deletes its credentials, atomically.
    pub async fn delete_org_service_account(&self, who: &Principal, id: &Id) -> ServiceResult<()> {
        who.require(Action::Write)?;
        let account = self.org_service_account(who, id).await?;
        let at = self.clock.now();
        let event = self.account_deleted_event(who, &account, at)?;
        if let Err(err) = self
            .store
            .delete_service_account(&who.organization_id, id, at, &[event])
            .await
        {
            self.org_service_account(who, id).await?;
            return Err(err.into());
        }
        self.keys_changed(Change::ServiceAccount(id.clone())).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_bounded_and_blank_means_none() {
        assert_eq!(description("d", "  hi \n").unwrap(), Some("hi".into()));
        assert_eq!(description("d", "   ").unwrap(), None);
        assert!(description("d", &"x".repeat(500)).is_ok());
        assert!(description("d", &"x".repeat(501)).is_err());
        assert!(description("d", "a\u{0}b").is_err());
        assert!(description("d", "line\nline").is_ok());
    }
}

//! Organizations: the first one, made on first start, and any others an operator adds.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::Id;
use crate::domain::keys::{KeyKind, PlainKey};
use crate::domain::model::{Organization, Project};
use crate::domain::names::FieldError;
use crate::store::StoreError;

use super::admin_keys::admin_scopes;
use super::audit::{Author, Subject};
use super::permissions::SCOPE_READ;
use super::{Service, ServiceError, ServiceResult};

pub const DEFAULT_ORG_LABEL: &str = "default";
pub const DEFAULT_PROJECT_NAME: &str = "Default project";

#[derive(Debug)]
pub enum Bootstrapped {
    /// The store was empty and is now initialised. `key` is the first admin key; `generated`
    /// says keyplane made it up (so it must be shown to the operator once).
    Created {
        key: PlainKey,
        generated: bool,
    },
    AlreadyInitialised,
}

/// Labels are DNS labels so the Keycard dialect can take them in URL paths.
pub fn validate_label(label: &str) -> Result<(), FieldError> {
    let ok = (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "label",
            "an organization label is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

impl Service {
    /// Initialises an empty store, registering `supplied` as the first admin key or minting
    /// one. Safe to call on every start: a store that holds an organization is left alone.
    pub async fn bootstrap(&self, supplied: Option<PlainKey>) -> ServiceResult<Bootstrapped> {
        let generated = supplied.is_none();
        let value = match supplied {
            Some(v) => v,
            None => PlainKey::generate(KeyKind::Admin)?,
        };
        match self
            .insert_organization(DEFAULT_ORG_LABEL, value, true)
            .await?
        {
            Some((_, key)) => Ok(Bootstrapped::Created { key, generated }),
            None => Ok(Bootstrapped::AlreadyInitialised),
        }
    }

    /// A new organization with its default project; returns its first admin key.
    pub async fn create_organization(
        &self,
        label: &str,
    ) -> ServiceResult<(Organization, PlainKey)> {
        validate_label(label)?;
        let value = PlainKey::generate(KeyKind::Admin)?;
        match self.insert_organization(label, value, false).await {
            Ok(Some(created)) => Ok(created),
            Ok(None) => Err(ServiceError::Internal(anyhow::anyhow!(
                "organization not created"
            ))),
            Err(ServiceError::Duplicate) => Err(FieldError::new(
                "label",
                format!("an organization labelled {label:?} already exists"),
            )
            .into()),
            Err(e) => Err(e),
        }
    }

    async fn insert_organization(
        &self,
        label: &str,
        admin_key: PlainKey,
        only_if_empty: bool,
    ) -> ServiceResult<Option<(Organization, PlainKey)>> {
        let now = self.clock.now();
        let org = Organization {
            id: Id::generate()?,
            label: label.to_owned(),
            name: label.to_owned(),
            created_at: now,
        };
        let project = Project {
            id: Id::generate()?,
            organization_id: org.id.clone(),
            name: DEFAULT_PROJECT_NAME.to_owned(),
            external_key_id: None,
            is_default: true,
            created_at: now,
            archived_at: None,
            allowed_ips: None,
        };
        let issued = self.mint_admin_key(
            &org.id,
            "Bootstrap admin key",
            admin_key,
            admin_scopes(None)?,
        )?;
        let author = Author::system(Some(&org.id));
        let events = [
            self.audit_event(
                &author,
                EventType::ProjectCreated,
                Subject::Project(&project),
                audit::data(json!({ "name": project.name, "default": true })),
                now,
            )?,
            self.key_created_event(&author, &issued.key)?,
        ];
        match self
            .store
            .create_organization(&org, &project, &issued.key, only_if_empty, &events)
            .await
        {
            Ok(true) => Ok(Some((org, issued.value))),
            Ok(false) => Ok(None),
            Err(StoreError::Duplicate(_)) => Err(ServiceError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    /// A new admin key for the organization labelled `label`, for the `admin-key create`
    /// command (read-only: [`SCOPE_READ`] only). On a store that was never started it
    /// bootstraps the `default` organization around the new key, so scripts can provision
    /// before the first `serve`.
    pub async fn create_admin_key_for_label(
        &self,
        label: &str,
        read_only: bool,
    ) -> ServiceResult<PlainKey> {
        let value = PlainKey::generate(KeyKind::Admin)?;
        let org = match self.store.organization_by_label(label).await? {
            Some(org) => org,
            None if label == DEFAULT_ORG_LABEL && !read_only => {
                match self.bootstrap(Some(value)).await? {
                    Bootstrapped::Created { key, .. } => return Ok(key),
                    Bootstrapped::AlreadyInitialised => {
                        return Err(ServiceError::Internal(anyhow::anyhow!(
                            "no organization labelled {label:?}"
                        )))
                    }
                }
            }
            None => {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "no organization labelled {label:?}"
                )))
            }
        };
        let scopes = if read_only {
            admin_scopes(Some(vec![SCOPE_READ.to_owned()]))?
        } else {
            admin_scopes(None)?
        };
        let issued = self.mint_admin_key(&org.id, "CLI admin key", value, scopes)?;
        let event = self.key_created_event(&Author::system(Some(&org.id)), &issued.key)?;
        self.store.insert_api_key(&issued.key, &[event]).await?;
        Ok(issued.value)
    }
}

#[cfg(test)]
mod tests {
    use super::validate_label;

    #[test]
    fn labels_are_dns_labels() {
        for ok in ["default", "acme-prod", "a", "x1"] {
            assert!(validate_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Acme", "a_b", "a.b", &"a".repeat(64)] {
            assert!(validate_label(bad).is_err(), "{bad}");
        }
    }
}

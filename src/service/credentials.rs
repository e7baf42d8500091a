//! Credentials (client id + secret) of service accounts, for the client-credentials grant.
//! The token endpoint itself is in `tokens.rs`.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::client_secret;
use crate::domain::ids::{Id, Kind};
use crate::domain::model::{Credential, CredentialFederation};
use crate::domain::names;
use crate::domain::page::{Window, WindowPage};
use crate::store::StoreError;

use super::audit::{Author, Subject};
use super::org_service_accounts::{description, name_and_description};
use super::permissions::Action;
use super::{Principal, Service, ServiceError, ServiceResult};

#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    pub name: String,
    pub description: Option<String>,
    /// Workload identity federation instead of a secret: the provider whose tokens
    /// authenticate the client, and the `sub` they must carry.
    pub federation: Option<CredentialFederation>,
}

/// Longest expected subject (GitHub's `sub` claims run to a few hundred characters).
const MAX_SUBJECT_CHARS: usize = 1024;

/// Only the fields present change. `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CredentialChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

/// A credential just created, with its secret: shown once, never stored. A credential of
/// workload identity federation has none.
#[derive(Debug)]
pub struct IssuedCredential {
    pub credential: Credential,
    pub client_secret: Option<String>,
}

impl Service {
    pub async fn create_credential(
        &self,
        who: &Principal,
        account_id: &Id,
        input: NewCredential,
    ) -> ServiceResult<IssuedCredential> {
        who.require(Action::Write)?;
        let name = names::name("name", &input.name)?;
        let description = match input.description.as_deref() {
            Some(d) => description("description", d)?,
            None => None,
        };
        let federation = match input.federation {
            None => None,
            Some(f) => {
                // The provider must be the caller's (another organization's is unknown).
                self.provider(who, &f.provider_id).await?;
                Some(CredentialFederation {
                    provider_id: f.provider_id,
                    subject: names::text("subject", &f.subject, 1, MAX_SUBJECT_CHARS)?,
                })
            }
        };
        self.org_service_account(who, account_id).await?;
        // A federated credential gets a secret too, but nobody ever sees it: its hash only
        // fills the column, and no secret can match it.
        let (client_secret, secret_hash) = client_secret::generate_secret()?;
        let client_secret = federation.is_none().then_some(client_secret);
        let now = self.clock.now();
        let credential = Credential {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            service_account_id: account_id.clone(),
            client_id: client_secret::generate_client_id()?,
            secret_hash,
            name,
            description,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            deleted_at: None,
            federation,
        };
        // The client id identifies, it does not authenticate: recording it is safe.
        let event = self.audit_event(
            &Author::of(who),
            EventType::CredentialCreated,
            Subject::Credential(&credential),
            audit::data(json!({
                "name": credential.name,
                "description": credential.description,
                "client_id": credential.client_id,
                "service_account_id": credential.service_account_id.as_str(),
                "identity_provider_id": credential.federation.as_ref()
                    .map(|f| Kind::IdentityProvider.render_openai(&f.provider_id)),
                "subject": credential.federation.as_ref().map(|f| &f.subject),
            })),
            now,
        )?;
        match self.store.insert_credential(&credential, &[event]).await {
            Ok(()) => {}
            // The provider or the account was deleted meanwhile.
            Err(StoreError::Conflict("provider is gone")) => {
                let provider = credential.federation.as_ref().map(|f| &f.provider_id);
                return Err(ServiceError::not_found(
                    Kind::IdentityProvider,
                    provider.unwrap_or(account_id),
                ));
            }
            Err(StoreError::Conflict(_)) => {
                return Err(ServiceError::not_found(Kind::ServiceAccount, account_id))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(IssuedCredential {
            credential,
            client_secret,
        })
    }

    pub async fn credential(
        &self,
        who: &Principal,
        account_id: &Id,
        id: &Id,
    ) -> ServiceResult<Credential> {
        self.org_service_account(who, account_id).await?;
        self.store
            .credential(&who.organization_id, account_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::Credential, id))
    }

    pub async fn list_credentials(
        &self,
        who: &Principal,
        account_id: &Id,
        window: &Window,
    ) -> ServiceResult<WindowPage<Credential>> {
        if window.after.is_some() && window.before.is_some() {
            return Err(ServiceError::BadRequest(
                "Use either 'after' or 'before', not both.",
            ));
        }
        self.org_service_account(who, account_id).await?;
        Ok(self
            .store
            .list_credentials(&who.organization_id, account_id, window)
            .await?)
    }

    pub async fn update_credential(
        &self,
        who: &Principal,
        account_id: &Id,
        id: &Id,
        changes: CredentialChanges,
    ) -> ServiceResult<Credential> {
        who.require(Action::Write)?;
        let (name, new_description) =
            name_and_description(changes.name.as_deref(), changes.description)?;
        let mut credential = self.credential(who, account_id, id).await?;
        if name.is_none() && new_description.is_none() {
            return Ok(credential);
        }
        let mut requested = serde_json::Map::new();
        if let Some(name) = name {
            requested.insert("name".into(), json!(name));
            credential.name = name;
        }
        if let Some(d) = new_description {
            requested.insert("description".into(), json!(d));
            credential.description = d;
        }
        credential.updated_at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::CredentialUpdated,
            Subject::Credential(&credential),
            audit::changes(requested.into()),
            credential.updated_at,
        )?;
        if let Err(err) = self.store.update_credential(&credential, &[event]).await {
            self.credential(who, account_id, id).await?;
            return Err(err.into());
        }
        Ok(credential)
    }

    /// Deletes the credential: it cannot obtain tokens any more, and the tokens it obtained
    /// stop verifying (they are checked against the store).
    pub async fn delete_credential(
        &self,
        who: &Principal,
        account_id: &Id,
        id: &Id,
    ) -> ServiceResult<()> {
        who.require(Action::Write)?;
        let credential = self.credential(who, account_id, id).await?;
        let at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::CredentialDeleted,
            Subject::Credential(&credential),
            json!({ "service_account_id": account_id.as_str() }),
            at,
        )?;
        if let Err(err) = self
            .store
            .delete_credential(&who.organization_id, account_id, id, at, &[event])
            .await
        {
            self.credential(who, account_id, id).await?;
            return Err(err.into());
        }
        Ok(())
    }
}

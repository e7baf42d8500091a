//! Workload identity providers: create, read, list, update, delete.

use serde_json::{json, Map, Value};

use crate::domain::audit::{self, EventType};
use crate::domain::federation::{
    self as f, transformations_to_json, AttributeTransformation, Provider, Verification,
};
use crate::domain::ids::{Id, Kind};
use crate::domain::names::{self, FieldError};
use crate::domain::page::{Page, PageRequest};
use crate::service::audit::{Author, Subject};
use crate::service::org_service_accounts::description;
use crate::service::permissions::Action;
use crate::service::{Principal, Service, ServiceError, ServiceResult};
use crate::store::StoreError;

#[derive(Debug, Clone, Default)]
pub struct NewProvider {
    pub name: String,
    pub description: Option<String>,
    pub issuer: String,
    pub audience: String,
    /// Default: enabled.
    pub enabled: Option<bool>,
    pub attribute_transformations: Option<Vec<AttributeTransformation>>,
    /// Default: OpenID discovery from the issuer.
    pub verification: Option<Verification>,
}

/// Only the fields present change; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProviderChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub enabled: Option<bool>,
    pub attribute_transformations: Option<Vec<AttributeTransformation>>,
    pub verification: Option<Verification>,
}

const MAX_AUDIENCE_CHARS: usize = 512;

impl Service {
    fn issuer_url(&self, field: &'static str, raw: &str) -> Result<String, FieldError> {
        let url = f::url(field, raw)?;
        if url.starts_with("http://") && !self.federation.allow_http {
            return Err(FieldError::new(
                field,
                format!(
                    "'{field}' must be an https:// URL (plain http is refused unless the \
                     operator sets KEYPLANE_FEDERATION_ALLOW_HTTP)."
                ),
            ));
        }
        Ok(url)
    }

    fn verification(&self, v: Verification) -> Result<Verification, FieldError> {
        match v {
            Verification::Discovery { discovery_url } => Ok(Verification::Discovery {
                discovery_url: discovery_url
                    .map(|u| self.issuer_url("verification.discovery_url", &u))
                    .transpose()?,
            }),
            Verification::UploadedJwks { jwks } => {
                f::uploaded_jwks(&jwks)?;
                Ok(Verification::UploadedJwks { jwks })
            }
        }
    }

    pub async fn create_provider(
        &self,
        who: &Principal,
        input: NewProvider,
    ) -> ServiceResult<Provider> {
        who.require(Action::Write)?;
        let now = self.clock.now();
        let provider = Provider {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            name: names::name("name", &input.name)?,
            description: match input.description.as_deref() {
                Some(d) => description("description", d)?,
                None => None,
            },
            issuer: self.issuer_url("issuer", &input.issuer)?,
            audience: names::text("audience", &input.audience, 1, MAX_AUDIENCE_CHARS)?,
            enabled: input.enabled.unwrap_or(true),
            attribute_transformations: f::transformations(
                input.attribute_transformations.unwrap_or_default(),
            )?,
            verification: self.verification(input.verification.unwrap_or(
                Verification::Discovery {
                    discovery_url: None,
                },
            ))?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProviderCreated,
            Subject::Provider(&provider),
            audit::data(provider_data(&provider)),
            now,
        )?;
        match self.store.insert_provider(&provider, &[event]).await {
            Ok(()) => Ok(provider),
            Err(StoreError::Conflict(_)) => Err(ServiceError::BadRequest(
                "An organization may have at most 50 workload identity providers: delete one \
                 first.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn provider(&self, who: &Principal, id: &Id) -> ServiceResult<Provider> {
        self.store
            .provider(&who.organization_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::IdentityProvider, id))
    }

    pub async fn list_providers(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> ServiceResult<Page<Provider>> {
        Ok(self
            .store
            .list_providers(&who.organization_id, page)
            .await?)
    }

    pub async fn update_provider(
        &self,
        who: &Principal,
        id: &Id,
        changes: ProviderChanges,
    ) -> ServiceResult<Provider> {
        who.require(Action::Write)?;
        let mut provider = self.provider(who, id).await?;
        let mut requested = Map::new();
        if let Some(name) = changes.name {
            provider.name = names::name("name", &name)?;
            requested.insert("name".into(), json!(provider.name));
        }
        if let Some(d) = changes.description {
            provider.description = match d.as_deref() {
                Some(d) => description("description", d)?,
                None => None,
            };
            requested.insert("description".into(), json!(provider.description));
        }
        if let Some(issuer) = changes.issuer {
            provider.issuer = self.issuer_url("issuer", &issuer)?;
            requested.insert("issuer".into(), json!(provider.issuer));
        }
        if let Some(audience) = changes.audience {
            provider.audience = names::text("audience", &audience, 1, MAX_AUDIENCE_CHARS)?;
            requested.insert("audience".into(), json!(provider.audience));
        }
        if let Some(enabled) = changes.enabled {
            provider.enabled = enabled;
            requested.insert("enabled".into(), json!(enabled));
        }
        if let Some(list) = changes.attribute_transformations {
            provider.attribute_transformations = f::transformations(list)?;
            requested.insert(
                "attribute_transformations".into(),
                transformations_to_json(&provider.attribute_transformations),
            );
        }
        if let Some(v) = changes.verification {
            provider.verification = self.verification(v)?;
            requested.insert("verification".into(), verification_summary(&provider));
        }
        if requested.is_empty() {
            return Ok(provider);
        }
        provider.updated_at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProviderUpdated,
            Subject::Provider(&provider),
            audit::changes(requested.into()),
            provider.updated_at,
        )?;
        match self.store.update_provider(&provider, &[event]).await {
            Ok(()) => {
                // Its keys may come from elsewhere now (another node finds the source changed).
                self.jwks.forget(&provider.id);
                Ok(provider)
            }
            // Deleted meanwhile.
            Err(StoreError::Conflict(_)) => {
                Err(ServiceError::not_found(Kind::IdentityProvider, id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Only a provider without rules can go (OpenAI's rule: delete its rules first).
    pub async fn delete_provider(&self, who: &Principal, id: &Id) -> ServiceResult<Provider> {
        who.require(Action::Write)?;
        let provider = self.provider(who, id).await?;
        let at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::ProviderDeleted,
            Subject::Provider(&provider),
            json!({ "name": provider.name }),
            at,
        )?;
        match self
            .store
            .delete_provider(&who.organization_id, id, at, &[event])
            .await
        {
            Ok(()) => {
                self.jwks.forget(&provider.id);
                Ok(provider)
            }
            Err(StoreError::Conflict("provider has rules")) => Err(ServiceError::BadRequest(
                "This workload identity provider still has federation rules (or Keycard \
                 credentials naming it): delete them first.",
            )),
            Err(StoreError::Conflict(_)) => {
                Err(ServiceError::not_found(Kind::IdentityProvider, id))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What the audit log records of a provider: its fields, the key set summarised (its key ids),
/// since a whole JWKS would bloat every entry and says nothing a reader needs.
fn provider_data(p: &Provider) -> Value {
    json!({
        "name": p.name,
        "description": p.description,
        "type": "oidc",
        "issuer": p.issuer,
        "audience": p.audience,
        "enabled": p.enabled,
        "attribute_transformations": transformations_to_json(&p.attribute_transformations),
        "verification": verification_summary(p),
    })
}

fn verification_summary(p: &Provider) -> Value {
    match &p.verification {
        Verification::Discovery { discovery_url } => {
            json!({"type": "discovery", "discovery_url": discovery_url})
        }
        Verification::UploadedJwks { jwks } => {
            let kids: Vec<&str> = jwks["keys"]
                .as_array()
                .map(|keys| keys.iter().filter_map(|k| k["kid"].as_str()).collect())
                .unwrap_or_default();
            json!({"type": "uploaded_jwks", "key_ids": kids})
        }
    }
}

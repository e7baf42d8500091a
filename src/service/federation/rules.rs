//! Federation rules of a workload identity provider: create, read, list, update, delete. A
//! rule binds the tokens whose claims (or derived attributes) match to one service account
//! of a project.

use serde_json::{json, Map, Value};

use crate::domain::audit::{self, EventType};
use crate::domain::federation::{self as f, matchers_to_json, FederationRule, Permissions};
use crate::domain::ids::{Id, Kind};
use crate::domain::names;
use crate::domain::page::{Page, PageRequest};
use crate::service::api_keys::scopes;
use crate::service::audit::{Author, Subject};
use crate::service::org_service_accounts::description;
use crate::service::permissions::Action;
use crate::service::{Principal, Service, ServiceError, ServiceResult};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct NewRule {
    pub project_id: Id,
    pub service_account_id: Id,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default: enabled.
    pub enabled: Option<bool>,
    pub attribute_matchers: Map<String, Value>,
    /// Default: the service account's own permissions.
    pub permissions: Option<Permissions>,
}

/// Only the fields present change; `Some(None)` clears a name or description. The project
/// and the service account of a rule never change (create another rule instead).
#[derive(Debug, Clone, Default)]
pub struct RuleChanges {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub attribute_matchers: Option<Map<String, Value>>,
    pub permissions: Option<Permissions>,
}

fn optional_name(raw: Option<&str>) -> Result<Option<String>, names::FieldError> {
    raw.map(|n| names::name("name", n)).transpose()
}

fn permissions(p: Permissions) -> Result<Permissions, names::FieldError> {
    Ok(match p {
        Permissions::ServiceAccountDefault => p,
        Permissions::Restricted { scopes: s } => Permissions::Restricted {
            scopes: scopes(Some(s))?,
        },
    })
}

impl Service {
    pub async fn create_rule(
        &self,
        who: &Principal,
        provider_id: &Id,
        input: NewRule,
    ) -> ServiceResult<FederationRule> {
        who.require(Action::Write)?;
        let provider = self.provider(who, provider_id).await?;
        let name = optional_name(input.name.as_deref())?;
        let description = match input.description.as_deref() {
            Some(d) => description("description", d)?,
            None => None,
        };
        let attribute_matchers = f::matchers(&input.attribute_matchers)?;
        let permissions = permissions(
            input
                .permissions
                .unwrap_or(Permissions::ServiceAccountDefault),
        )?;
        self.rule_target(who, &input.project_id, &input.service_account_id)
            .await?;
        let now = self.clock.now();
        let rule = FederationRule {
            id: Id::generate()?,
            organization_id: who.organization_id.clone(),
            provider_id: provider.id.clone(),
            project_id: input.project_id,
            service_account_id: input.service_account_id,
            name,
            description,
            enabled: input.enabled.unwrap_or(true),
            attribute_matchers,
            permissions,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let mut details = audit::data(rule_data(&rule));
        details["identity_provider_id"] = json!(Kind::IdentityProvider.render_openai(&provider.id));
        let event = self.audit_event(
            &Author::of(who),
            EventType::RuleCreated,
            Subject::Rule(&rule),
            details,
            now,
        )?;
        match self.store.insert_rule(&rule, &[event]).await {
            Ok(()) => Ok(rule),
            Err(StoreError::Conflict("rule limit")) => Err(ServiceError::BadRequest(
                "A workload identity provider may have at most 50 federation rules: delete one \
                 first.",
            )),
            Err(StoreError::Conflict("provider is gone")) => {
                Err(ServiceError::not_found(Kind::IdentityProvider, provider_id))
            }
            // The account or its project changed meanwhile: say which, as a fresh look shows.
            Err(StoreError::Conflict(_)) => {
                self.rule_target(who, &rule.project_id, &rule.service_account_id)
                    .await?;
                Err(ServiceError::not_found(
                    Kind::ServiceAccount,
                    &rule.service_account_id,
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The rule's project must be active and the account one of its live accounts.
    async fn rule_target(&self, who: &Principal, project: &Id, account: &Id) -> ServiceResult<()> {
        self.active_project(who, project).await?;
        self.project_service_account(who, project, account).await?;
        Ok(())
    }

    pub async fn rule(
        &self,
        who: &Principal,
        provider_id: &Id,
        id: &Id,
    ) -> ServiceResult<FederationRule> {
        self.provider(who, provider_id).await?;
        self.store
            .rule(&who.organization_id, provider_id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::FederationRule, id))
    }

    pub async fn list_rules(
        &self,
        who: &Principal,
        provider_id: &Id,
        service_account: Option<&Id>,
        page: &PageRequest,
    ) -> ServiceResult<Page<FederationRule>> {
        self.provider(who, provider_id).await?;
        Ok(self
            .store
            .list_rules(&who.organization_id, provider_id, service_account, page)
            .await?)
    }

    pub async fn update_rule(
        &self,
        who: &Principal,
        provider_id: &Id,
        id: &Id,
        changes: RuleChanges,
    ) -> ServiceResult<FederationRule> {
        who.require(Action::Write)?;
        let mut rule = self.rule(who, provider_id, id).await?;
        let mut requested = Map::new();
        if let Some(name) = changes.name {
            rule.name = optional_name(name.as_deref())?;
            requested.insert("name".into(), json!(rule.name));
        }
        if let Some(d) = changes.description {
            rule.description = match d.as_deref() {
                Some(d) => description("description", d)?,
                None => None,
            };
            requested.insert("description".into(), json!(rule.description));
        }
        if let Some(enabled) = changes.enabled {
            rule.enabled = enabled;
            requested.insert("enabled".into(), json!(enabled));
        }
        if let Some(m) = changes.attribute_matchers {
            rule.attribute_matchers = f::matchers(&m)?;
            requested.insert(
                "attribute_matchers".into(),
                matchers_to_json(&rule.attribute_matchers),
            );
        }
        if let Some(p) = changes.permissions {
            rule.permissions = permissions(p)?;
            requested.insert("permissions".into(), rule.permissions.to_json());
        }
        if requested.is_empty() {
            return Ok(rule);
        }
        rule.updated_at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::RuleUpdated,
            Subject::Rule(&rule),
            json!({
                "changes_requested": requested,
                "identity_provider_id": Kind::IdentityProvider.render_openai(provider_id),
            }),
            rule.updated_at,
        )?;
        match self.store.update_rule(&rule, &[event]).await {
            Ok(()) => Ok(rule),
            Err(StoreError::Conflict(_)) => Err(ServiceError::not_found(Kind::FederationRule, id)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_rule(
        &self,
        who: &Principal,
        provider_id: &Id,
        id: &Id,
    ) -> ServiceResult<FederationRule> {
        who.require(Action::Write)?;
        let rule = self.rule(who, provider_id, id).await?;
        let at = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::RuleDeleted,
            Subject::Rule(&rule),
            json!({
                "identity_provider_id": Kind::IdentityProvider.render_openai(provider_id),
                "project_id": Kind::Project.render_openai(&rule.project_id),
                "service_account_id": Kind::ServiceAccount.render_openai(&rule.service_account_id),
            }),
            at,
        )?;
        match self
            .store
            .delete_rule(&who.organization_id, provider_id, id, at, &[event])
            .await
        {
            Ok(()) => Ok(rule),
            Err(StoreError::Conflict(_)) => Err(ServiceError::not_found(Kind::FederationRule, id)),
            Err(e) => Err(e.into()),
        }
    }
}

fn rule_data(r: &FederationRule) -> Value {
    json!({
        "name": r.name,
        "description": r.description,
        "enabled": r.enabled,
        "project_id": Kind::Project.render_openai(&r.project_id),
        "service_account_id": Kind::ServiceAccount.render_openai(&r.service_account_id),
        "attribute_matchers": matchers_to_json(&r.attribute_matchers),
        "permissions": r.permissions.to_json(),
    })
}

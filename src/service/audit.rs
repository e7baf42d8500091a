//! The audit log: every change method of the service builds its events here and hands them to
//! the store with the change, which writes both in one transaction. Details are built from
//! named, non-secret fields only (names, roles, scopes, IDs), never from request bodies.

use serde_json::{json, Value};

use crate::domain::audit::{Actor, AuditEntry, AuditEvent, AuditQuery, EventType, Origin};
use crate::domain::federation::{FederationRule, Provider};
use crate::domain::ids::{Id, Kind};
use crate::domain::keys::KeyKind;
use crate::domain::model::{ApiKey, Credential, Project, ServiceAccount};
use crate::domain::page::Page;
use crate::domain::time::Millis;

use super::permissions::Access;
use super::{Principal, Service, ServiceError, ServiceResult};

/// Who an event is attributed to.
#[derive(Debug, Clone)]
pub(crate) struct Author {
    organization_id: Option<Id>,
    actor: Actor,
    origin: Origin,
}

impl Author {
    pub(crate) fn of(who: &Principal) -> Self {
        Self {
            organization_id: Some(who.organization_id.clone()),
            actor: match &who.access {
                Access::AdminKey(id) | Access::AdminReader(id) | Access::UsageReporter(id) => {
                    Actor::AdminKey(id.clone())
                }
                Access::ServiceAccount(id) => Actor::ServiceAccount(id.clone()),
            },
            origin: who.origin.clone(),
        }
    }

    /// An operator command run on the server; `None` for installation-wide changes.
    pub(crate) fn system(organization_id: Option<&Id>) -> Self {
        Self {
            organization_id: organization_id.cloned(),
            actor: Actor::System,
            origin: Origin::default(),
        }
    }
}

/// The event's subject, rendered as clients see its ID.
pub(crate) enum Subject<'a> {
    Project(&'a Project),
    Account(&'a ServiceAccount),
    Key(&'a ApiKey),
    Credential(&'a Credential),
    SigningKey(&'a str),
    /// A project's rate limit for one model (`rl-{model}`).
    RateLimit {
        project: &'a Id,
        id: &'a str,
    },
    Provider(&'a Provider),
    Rule(&'a FederationRule),
}

impl Subject<'_> {
    fn resource_id(&self) -> String {
        match self {
            Subject::Project(p) => Kind::Project.render_openai(&p.id),
            Subject::Account(a) => Kind::ServiceAccount.render_openai(&a.id),
            Subject::Key(k) => Kind::ApiKey.render_openai(&k.id),
            // Credentials exist only in the Keycard dialect, which shows bare IDs.
            Subject::Credential(c) => c.id.as_str().to_owned(),
            Subject::SigningKey(kid) => (*kid).to_owned(),
            Subject::RateLimit { id, .. } => (*id).to_owned(),
            Subject::Provider(p) => Kind::IdentityProvider.render_openai(&p.id),
            Subject::Rule(r) => Kind::FederationRule.render_openai(&r.id),
        }
    }

    fn project_id(&self) -> Option<Id> {
        match self {
            Subject::Project(p) => Some(p.id.clone()),
            Subject::Account(a) => a.project_id.clone(),
            Subject::Key(k) => k.project_id.clone(),
            Subject::RateLimit { project, .. } => Some((*project).clone()),
            Subject::Rule(r) => Some(r.project_id.clone()),
            Subject::Credential(_) | Subject::SigningKey(_) | Subject::Provider(_) => None,
        }
    }
}

/// The non-secret description of a service account, as recorded on creation.
pub(crate) fn account_data(a: &ServiceAccount) -> Value {
    json!({ "name": a.name, "role": a.role.as_str(), "description": a.description })
}

/// The non-secret description of a key: never its value or hash, only what the redacted
/// listing shows anyway.
pub(crate) fn key_data(k: &ApiKey) -> Value {
    json!({
        "name": k.name,
        "scopes": k.scopes,
        "kind": k.kind.as_str(),
        "service_account_id": k.service_account_id.as_ref().map(|id| Kind::ServiceAccount.render_openai(id)),
        "redacted_value": k.redacted_value,
        "expires_at": k.expires_at.map(crate::domain::time::to_unix_seconds),
    })
}

impl Service {
    pub(crate) fn audit_event(
        &self,
        author: &Author,
        event_type: EventType,
        subject: Subject<'_>,
        details: Value,
        at: Millis,
    ) -> ServiceResult<AuditEvent> {
        Ok(AuditEvent {
            id: Id::generate()?,
            organization_id: author.organization_id.clone(),
            event_type,
            effective_at: at,
            project_id: subject.project_id(),
            resource_id: subject.resource_id(),
            actor: author.actor.clone(),
            origin: author.origin.clone(),
            details,
            notify_webhook: self.webhook.is_some(),
        })
    }

    /// `api_key.created` or `admin_api_key.created` for a key just minted.
    pub(crate) fn key_created_event(
        &self,
        author: &Author,
        key: &ApiKey,
    ) -> ServiceResult<AuditEvent> {
        let event_type = match key.kind {
            KeyKind::Admin => EventType::AdminApiKeyCreated,
            KeyKind::ServiceAccount => EventType::ApiKeyCreated,
        };
        let details = crate::domain::audit::data(key_data(key));
        self.audit_event(
            author,
            event_type,
            Subject::Key(key),
            details,
            key.created_at,
        )
    }

    /// `service_account.deleted`, whichever dialect deleted it.
    pub(crate) fn account_deleted_event(
        &self,
        who: &Principal,
        account: &ServiceAccount,
        at: Millis,
    ) -> ServiceResult<AuditEvent> {
        let subject = Subject::Account(account);
        let event_type = EventType::ServiceAccountDeleted;
        self.audit_event(&Author::of(who), event_type, subject, json!({}), at)
    }

    /// The caller's organization's audit log, newest first.
    pub async fn list_audit_logs(
        &self,
        who: &Principal,
        query: &AuditQuery,
    ) -> ServiceResult<Page<AuditEntry>> {
        if query.after.is_some() && query.before.is_some() {
            return Err(ServiceError::BadRequest(
                "give at most one of 'after' and 'before'",
            ));
        }
        if !query.actor_emails.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
        Ok(self
            .store
            .list_audit_events(&who.organization_id, query)
            .await?)
    }
}

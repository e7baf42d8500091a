//! Audit events: what changed, who did it and from where. Written by the service layer in the
//! same store transaction as the change; read back through the OpenAI dialect's audit log and
//! delivered to an optional webhook.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::ids::{Id, Kind};
use super::time::Millis;

/// Audit-log IDs look like OpenAI's (`audit_log-…`).
pub const ID_PREFIX: &str = "audit_log-";

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every kind of change keyplane records. The names follow OpenAI's audit log where it
        /// has one (`project.created`, `api_key.deleted`, ...); the rest use the same style.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    ProjectCreated => "project.created",
    ProjectUpdated => "project.updated",
    ProjectArchived => "project.archived",
    ServiceAccountCreated => "service_account.created",
    ServiceAccountUpdated => "service_account.updated",
    ServiceAccountDeleted => "service_account.deleted",
    ApiKeyCreated => "api_key.created",
    ApiKeyUpdated => "api_key.updated",
    ApiKeyDeleted => "api_key.deleted",
    AdminApiKeyCreated => "admin_api_key.created",
    AdminApiKeyDeleted => "admin_api_key.deleted",
    CredentialCreated => "credential.created",
    CredentialUpdated => "credential.updated",
    CredentialDeleted => "credential.deleted",
    SigningKeyRotated => "signing_key.rotated",
    RateLimitUpdated => "rate_limit.updated",
    ProviderCreated => "workload_identity_provider.created",
    ProviderUpdated => "workload_identity_provider.updated",
    ProviderDeleted => "workload_identity_provider.deleted",
    // OpenAI's audit log calls a federation rule a "mapping".
    RuleCreated => "workload_identity_provider_mapping.created",
    RuleUpdated => "workload_identity_provider_mapping.updated",
    RuleDeleted => "workload_identity_provider_mapping.deleted",
    // Console sign-in and sign-out, as OpenAI names its own logins.
    LoginSucceeded => "login.succeeded",
    LogoutSucceeded => "logout.succeeded",
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Through the API, with this admin key.
    AdminKey(Id),
    /// Through the API, with an access token of this service account.
    ServiceAccount(Id),
    /// An operator command run on the server itself (`keyplane admin-key create`, first start,
    /// `keyplane signing-key rotate`): whoever could run it had the database already.
    System,
}

impl Actor {
    pub fn type_str(&self) -> &'static str {
        match self {
            Actor::AdminKey(_) => "admin_key",
            Actor::ServiceAccount(_) => "service_account",
            Actor::System => "system",
        }
    }

    /// The ID clients filter on (`actor_ids[]`), as the OpenAI dialect renders it.
    pub fn rendered_id(&self) -> Option<String> {
        match self {
            Actor::AdminKey(id) => Some(Kind::ApiKey.render_openai(id)),
            Actor::ServiceAccount(id) => Some(Kind::ServiceAccount.render_openai(id)),
            Actor::System => None,
        }
    }

    /// The inverse of `type_str` + `rendered_id`, for rows read back.
    pub fn from_stored(actor_type: &str, id: Option<&str>) -> Option<Self> {
        match (actor_type, id) {
            ("system", _) => Some(Actor::System),
            ("admin_key", Some(id)) => Kind::ApiKey.parse_openai(id).map(Actor::AdminKey),
            ("service_account", Some(id)) => Kind::ServiceAccount
                .parse_openai(id)
                .map(Actor::ServiceAccount),
            _ => None,
        }
    }
}

/// Where a request came from. Every field is optional: commands run on the server have none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// keyplane's own `x-request-id`.
    pub request_id: Option<String>,
    /// The client's `X-Client-Request-ID`, if it sent one.
    pub client_request_id: Option<String>,
    /// The TCP peer (a proxy's address when keyplane runs behind one).
    pub ip_address: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: Id,
    /// `None` for installation-wide events, which every organization's log shows.
    pub organization_id: Option<Id>,
    pub event_type: EventType,
    pub effective_at: Millis,
    pub project_id: Option<Id>,
    /// The changed object's ID as clients see it (`proj_…`, `svc_acct_…`, `key_…`, a
    /// credential's ID, a signing key's `kid`).
    pub resource_id: String,
    pub actor: Actor,
    pub origin: Origin,
    /// `{"data": {...}}` for creations, `{"changes_requested": {...}}` for updates, `{}`
    /// otherwise. Never a secret: built only from the fields listed in the service layer.
    pub details: Value,
    /// Queue the event for the audit webhook (set when one is configured).
    pub notify_webhook: bool,
}

impl AuditEvent {
    /// Records the API keys a change revoked along with its subject (`revoked_api_key_ids`,
    /// as the OpenAI dialect renders key IDs), so the log says when each stopped working.
    pub fn note_revoked_keys(&mut self, ids: &[Id]) {
        if let Value::Object(details) = &mut self.details {
            let rendered = ids
                .iter()
                .map(|id| Value::String(Kind::ApiKey.render_openai(id)))
                .collect();
            details.insert("revoked_api_key_ids".into(), Value::Array(rendered));
        }
    }
}

/// An event as listed, with the project's current name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub event: AuditEvent,
    pub project_name: Option<String>,
}

/// Filters of the audit-log list. Empty lists mean "any"; values are ANDed across filters
/// and ORed within one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Inclusive lower bound of `effective_at`.
    pub from: Option<Millis>,
    /// Exclusive upper bound of `effective_at`.
    pub until: Option<Millis>,
    /// Raw project IDs.
    pub project_ids: Vec<String>,
    pub event_types: Vec<EventType>,
    /// Rendered actor IDs (`key_…`, `svc_acct_…`).
    pub actor_ids: Vec<String>,
    /// keyplane has no users, so no event has an actor email: any value matches nothing.
    pub actor_emails: Vec<String>,
    pub resource_ids: Vec<String>,
    pub limit: u32,
    /// Older than this event (the next page of a newest-first list).
    pub after: Option<Id>,
    /// Newer than this event (the previous page).
    pub before: Option<Id>,
}

/// What happened to one webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        at: Millis,
    },
    Failed {
        next_attempt_at: Millis,
        error: String,
    },
}

/// `{"data": {...}}`, the details of a creation.
pub fn data(fields: Value) -> Value {
    serde_json::json!({ "data": fields })
}

/// `{"changes_requested": {...}}`, the details of an update.
pub fn changes(fields: Value) -> Value {
    serde_json::json!({ "changes_requested": fields })
}

pub fn render_id(id: &Id) -> String {
    let mut s = String::with_capacity(ID_PREFIX.len() + id.as_str().len());
    s.push_str(ID_PREFIX);
    s.push_str(id.as_str());
    s
}

pub fn parse_id(s: &str) -> Option<Id> {
    s.strip_prefix(ID_PREFIX).and_then(Id::parse)
}

/// The entry as the audit log lists it and the webhook delivers it: OpenAI's shape (`id`,
/// `type`, `effective_at` in Unix seconds, `project`, `actor`, and the details under a key named
/// after the type), plus `request` with keyplane's correlation data.
pub fn to_json(entry: &AuditEntry) -> Value {
    let e = &entry.event;
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(render_id(&e.id)));
    out.insert("object".into(), json!("organization.audit_log"));
    out.insert("type".into(), json!(e.event_type.as_str()));
    out.insert(
        "effective_at".into(),
        json!(super::time::to_unix_seconds(e.effective_at)),
    );
    if let Some(project) = &e.project_id {
        out.insert(
            "project".into(),
            json!({ "id": Kind::Project.render_openai(project), "name": entry.project_name }),
        );
    }
    let ip = e.origin.ip_address.map(|ip| ip.to_string());
    let actor = match &e.actor {
        Actor::AdminKey(id) => json!({
            "type": "api_key",
            "api_key": { "id": Kind::ApiKey.render_openai(id), "type": "admin" },
            "ip_address": ip,
        }),
        Actor::ServiceAccount(id) => json!({
            "type": "api_key",
            "api_key": {
                "id": Kind::ServiceAccount.render_openai(id),
                "type": "service_account",
                "service_account": { "id": Kind::ServiceAccount.render_openai(id) },
            },
            "ip_address": ip,
        }),
        Actor::System => json!({ "type": "system" }),
    };
    out.insert("actor".into(), actor);
    let mut details = serde_json::Map::new();
    details.insert("id".into(), json!(e.resource_id));
    if let Value::Object(extra) = &e.details {
        details.extend(extra.clone());
    }
    out.insert(e.event_type.as_str().into(), Value::Object(details));
    out.insert(
        "request".into(),
        json!({
            "id": e.origin.request_id,
            "client_request_id": e.origin.client_request_id,
            "ip_address": ip,
        }),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(seen.insert(t.as_str()), "duplicate {}", t.as_str());
        }
        assert_eq!(EventType::parse("project.deleted"), None);
        assert_eq!(EventType::parse(""), None);
    }

    #[test]
    fn actors_round_trip_through_their_stored_form() {
        let id = Id::generate().unwrap();
        for actor in [
            Actor::AdminKey(id.clone()),
            Actor::ServiceAccount(id.clone()),
            Actor::System,
        ] {
            let rendered = actor.rendered_id();
            assert_eq!(
                Actor::from_stored(actor.type_str(), rendered.as_deref()),
                Some(actor.clone())
            );
        }
        assert_eq!(Actor::from_stored("admin_key", None), None);
        assert_eq!(Actor::from_stored("admin_key", Some("svc_acct_x")), None);
    }

    #[test]
    fn audit_ids_need_their_prefix() {
        let id = Id::generate().unwrap();
        assert_eq!(parse_id(&render_id(&id)), Some(id.clone()));
        assert_eq!(parse_id(id.as_str()), None);
        assert_eq!(parse_id("audit_log-"), None);
    }
}

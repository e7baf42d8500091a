//! `GET /v1/organization/audit_logs`: the organization's audit log, newest first.

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::openapi::schema::{KnownFormat, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{ObjectBuilder, Ref};

use super::error::ApiError;
use super::extract::AdminAuth;
use super::params;
use super::render::ListJson;
use crate::domain::audit::{self, AuditQuery, EventType};
use crate::domain::ids::Kind;
use crate::domain::time::Millis;
use crate::http::extract::QueryPairs;
use crate::http::openapi::one_of;
use crate::http::openapi::tags::AUDIT_LOGS as TAG;
use crate::http::AppState;

/// One audit-log entry, rendered by `domain::audit::to_json` (the webhook sends the same JSON);
/// its schema is written out below, as the JSON is not built from a struct.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct AuditLogJson(Value);

impl utoipa::PartialSchema for AuditLogJson {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let actor = object()
            .property("type", one_of(&["api_key", "system"]))
            .required("type")
            .property(
                "api_key",
                object()
                    .property("id", string())
                    .required("id")
                    .property("type", one_of(&["admin", "service_account"]))
                    .required("type")
                    .property(
                        "service_account",
                        object().property("id", string()).required("id"),
                    ),
            )
            .property("ip_address", nullable_string());
        let request = object()
            .property(
                "id",
                nullable_string().description(Some("keyplane's `x-request-id`.")),
            )
            .required("id")
            .property("client_request_id", nullable_string())
            .required("client_request_id")
            .property("ip_address", nullable_string())
            .required("ip_address");
        let mut entry = object()
            .description(Some(
                "One audit-log entry (the audit webhook sends the same JSON). The details of \
                 the change are under the key named by `type`.",
            ))
            .property("id", string())
            .required("id")
            .property("object", one_of(&["organization.audit_log"]))
            .required("object")
            .property("type", params::EventTypeName::schema())
            .required("type")
            .property("effective_at", seconds())
            .required("effective_at")
            .property(
                "project",
                object()
                    .property("id", string())
                    .required("id")
                    .property("name", nullable_string())
                    .required("name"),
            )
            .property("actor", actor)
            .required("actor")
            .property("request", request)
            .required("request");
        for t in EventType::ALL {
            entry = entry.property(t.as_str(), Ref::from_schema_name(DETAILS));
        }
        entry.into()
    }
}

impl utoipa::ToSchema for AuditLogJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "AuditLog".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((DETAILS.to_owned(), details().into()));
    }
}

/// The component every entry's `"<type>": {…}` refers to.
const DETAILS: &str = "AuditLogDetails";

/// What an audit-log entry says changed (`domain::audit::AuditEvent::details` and the ID).
fn details() -> utoipa::openapi::Object {
    object()
        .description(Some("What changed; the key is the entry's `type`."))
        .property(
            "id",
            string().description(Some("The changed object's ID (a signing key's `kid`).")),
        )
        .required("id")
        .property(
            "data",
            object().description(Some("Creations: the new object's fields (never a secret).")),
        )
        .property(
            "changes_requested",
            object().description(Some("Updates: the fields the request changed.")),
        )
        .property(
            "effective_at",
            seconds().description(Some(
                "`api_key.deleted`: when the key stops working (after its grace period).",
            )),
        )
        .property(
            "service_account_id",
            string().description(Some(
                "`credential.deleted`: the credential's account; \
                 `workload_identity_provider_mapping.deleted`: the rule's account.",
            )),
        )
        .property(
            "name",
            string().description(Some("`workload_identity_provider.deleted`: its name.")),
        )
        .property(
            "identity_provider_id",
            string().description(Some(
                "`workload_identity_provider_mapping.*`: the rule's provider (`idp_…`).",
            )),
        )
        .property(
            "project_id",
            string().description(Some(
                "`workload_identity_provider_mapping.deleted`: the rule's project.",
            )),
        )
        .property(
            "revoked_api_key_ids",
            utoipa::openapi::ArrayBuilder::new()
                .items(string())
                .description(Some(
                "`service_account.deleted`: the API keys that stopped working with the account.",
            )),
        )
        .build()
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable_string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

fn seconds() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

/// List the organization's audit log, newest first.
#[utoipa::path(get, path = "/organization/audit_logs", tag = TAG,
    params(params::AuditFilter),
    responses((status = 200, description = "A page of audit-log entries.", body = ListJson<AuditLogJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    query: QueryPairs,
) -> Result<Json<ListJson<AuditLogJson>>, ApiError> {
    let filter = parse(&query)?;
    let page = app.service.list_audit_logs(&who, &filter).await?;
    Ok(Json(ListJson::new(
        page,
        |entry| AuditLogJson(audit::to_json(&entry)),
        |v| v.0.get("id").and_then(Value::as_str).unwrap_or(""),
    )))
}

/// Array parameters arrive as `name[]=a&name[]=b` (the SDKs) or `name=a&name=b`. (A value
/// with a NUL is the store's to handle: it names nothing stored.)
fn many(query: &QueryPairs, name: &str) -> Vec<String> {
    let bracketed = format!("{name}[]");
    query
        .all(&bracketed)
        .chain(query.all(name))
        .map(str::to_owned)
        .collect()
}

fn parse(query: &QueryPairs) -> Result<AuditQuery, ApiError> {
    let mut q = AuditQuery {
        limit: query.limit()?,
        ..AuditQuery::default()
    };
    // `effective_at` is in Unix seconds; the store keeps milliseconds. `gt s` is "from the
    // next second", `lte s` "until the end of second s".
    let bound = |op: &str| -> Result<Option<Millis>, ApiError> {
        let name = format!("effective_at[{op}]");
        query.integer(&name)?.map_or(Ok(None), |s| {
            s.checked_mul(1000)
                // From 1970 to year 36812: both stores can hold these instants (PostgreSQL's
                // timestamps begin in 4713 BC), and no audit event lies outside them.
                .filter(|_| (0..1 << 40).contains(&s))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        Some(&name),
                        "invalid_value",
                        format!("Invalid '{name}': out of range."),
                    )
                })
        })
    };
    let lows = [bound("gte")?, bound("gt")?.map(|ms| ms + 1000)];
    let highs = [bound("lt")?, bound("lte")?.map(|ms| ms + 1000)];
    q.from = lows.into_iter().flatten().max();
    q.until = highs.into_iter().flatten().min();
    // A malformed project ID matches nothing, like an unknown one.
    q.project_ids = many(query, "project_ids")
        .iter()
        .map(|p| {
            Kind::Project
                .parse_openai(p)
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    for t in many(query, "event_types") {
        let parsed = EventType::parse(&t).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::bad_request(
                Some("event_types[]"),
                "invalid_value",
                format!(
                    "Invalid value for 'event_types[]': expected one of {}.",
                    known.join(", ")
                ),
            )
        })?;
        q.event_types.push(parsed);
    }
    q.actor_ids = many(query, "actor_ids");
    q.actor_emails = many(query, "actor_emails");
    q.resource_ids = many(query, "resource_ids");
    let cursor = |name: &str| -> Result<_, ApiError> {
        match query.get(name) {
            None | Some("") => Ok(None),
            Some(raw) => audit::parse_id(raw).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    Some(name),
                    "invalid_value",
                    format!("Invalid '{name}': it names no object in this list."),
                )
            }),
        }
    };
    q.after = cursor("after")?;
    q.before = cursor("before")?;
    Ok(q)
}

//! Documentation of the OpenAI dialect's path and query parameters. The handlers read them
//! through [`super::extract`]; these structs only describe them in the OpenAPI document (the
//! docs tests check every `{name}` in a path is described).
#![allow(dead_code)]

use utoipa::IntoParams;

use crate::domain::audit::EventType;

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// A project ID, `proj_…`.
    #[param(min_length = 1)]
    project_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// A project ID, `proj_…`.
    #[param(min_length = 1)]
    project_id: String,
    /// A service account ID, `svc_acct_…`.
    #[param(min_length = 1)]
    service_account_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectKeyPath {
    /// A project ID, `proj_…`.
    #[param(min_length = 1)]
    project_id: String,
    /// An API key ID, `key_…`.
    #[param(min_length = 1)]
    api_key_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AdminKeyPath {
    /// An admin API key ID, `key_…`.
    #[param(min_length = 1)]
    key_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderPath {
    /// A workload identity provider ID, `idp_…`.
    #[param(min_length = 1)]
    workload_identity_provider_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RulePath {
    /// A workload identity provider ID, `idp_…`.
    #[param(min_length = 1)]
    workload_identity_provider_id: String,
    /// A federation rule ID, `fedrule_…`.
    #[param(min_length = 1)]
    workload_identity_federation_rule_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrder {
    /// Listing order by creation time.
    #[param(inline, default = "asc")]
    order: Option<Order>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilter {
    /// Only the rules of this service account (`svc_acct_…`).
    service_account_id: Option<String>,
}

/// Keyset pagination in creation order.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many objects to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The `last_id` of the previous page: objects created after this one.
    after: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectFilter {
    /// Include archived projects.
    #[param(default = false)]
    include_archived: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyFilter {
    /// Only keys whose owner has (`active`) or lacks (`inactive`) access to the project.
    #[param(inline, default = "any")]
    owner_project_access: Option<OwnerProjectAccess>,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OwnerProjectAccess {
    Active,
    Inactive,
    Any,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminKeyOrder {
    /// Listing order by creation time.
    #[param(inline, default = "asc")]
    order: Option<Order>,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Order {
    Asc,
    Desc,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Grace {
    /// Keep the key working this many more seconds (capped at its own expiry, at most 30 days).
    #[param(minimum = 0)]
    grace_period_seconds: Option<i64>,
}

/// The event types, as the `event_types[]` filter accepts them: the schema is built from
/// `EventType::ALL`, so it lists exactly what the parser accepts.
pub struct EventTypeName;

impl utoipa::PartialSchema for EventTypeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for EventTypeName {
    fn name() -> std::borrow::Cow<'static, str> {
        "AuditLogEventType".into()
    }
}

/// Filters and cursors of the audit log (arrays repeat their key: `event_types[]=a&event_types[]=b`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// How many events to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The `last_id` of the previous page: older events.
    after: Option<String>,
    /// The `first_id` of a page: the newer events just before it.
    before: Option<String>,
    /// Only events at or after this Unix second.
    #[param(rename = "effective_at[gte]", minimum = 0.0, maximum = 1099511627775.0)]
    effective_at_gte: Option<i64>,
    /// Only events after this Unix second.
    #[param(rename = "effective_at[gt]", minimum = 0.0, maximum = 1099511627775.0)]
    effective_at_gt: Option<i64>,
    /// Only events at or before this Unix second.
    #[param(rename = "effective_at[lte]", minimum = 0.0, maximum = 1099511627775.0)]
    effective_at_lte: Option<i64>,
    /// Only events before this Unix second.
    #[param(rename = "effective_at[lt]", minimum = 0.0, maximum = 1099511627775.0)]
    effective_at_lt: Option<i64>,
    /// Only events of these projects (`proj_…`).
    #[param(rename = "project_ids[]")]
    project_ids: Option<Vec<String>>,
    /// Only events of these types.
    #[param(rename = "event_types[]", inline)]
    event_types: Option<Vec<EventTypeName>>,
    /// Only events made by these admin keys (`key_…`).
    #[param(rename = "actor_ids[]")]
    actor_ids: Option<Vec<String>>,
    /// keyplane has no users: any value matches nothing.
    #[param(rename = "actor_emails[]")]
    actor_emails: Option<Vec<String>>,
    /// Only events about these objects (`proj_…`, `svc_acct_…`, `key_…`, credential IDs, `kid`s).
    #[param(rename = "resource_ids[]")]
    resource_ids: Option<Vec<String>>,
}

/// Key scopes as the service checks them: up to 100, each 1–128 characters, no whitespace or
/// control characters; `null` counts as none.
pub fn scopes() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .description(Some(
            "Up to 100 scopes, each 1–128 characters without whitespace.",
        ))
        .max_items(Some(100))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some(r"^[^\s\x00-\x1f\x7f-\x9f]+$")),
        )
        .build()
}

/// An IP allowlist: up to 100 IPv4/IPv6 addresses or CIDRs; `null` allows any address.
pub fn allowed_ips() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .description(Some(
            "Up to 100 IPv4 or IPv6 addresses or CIDRs (`10.0.0.0/8`, `2001:db8::/32`); `null` \
             allows any address.",
        ))
        .min_items(Some(1))
        .max_items(Some(100))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        )
        .build()
}

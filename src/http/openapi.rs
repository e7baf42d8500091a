//! The OpenAPI 3.1 document. Operations come from the `#[utoipa::path]` attribute on each
//! handler, registered with `utoipa_axum::routes!` so the route and its documentation are one
//! line; schemas come from `ToSchema` on the very structs the handlers serialize. What every
//! operation of a dialect shares (its error envelope, its authentication) is added here once,
//! so a handler's attribute only states what is particular to it.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, LicenseBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Required, Tag,
    Type,
};
use utoipa::{PartialSchema, ToSchema};

/// Security scheme names; `security(...)` in a handler's attribute must spell them literally.
pub const ADMIN_KEY: &str = "admin_key";
pub const SERVICE_KEY: &str = "service_key";
pub const KEYCARD_BEARER: &str = "keycard_bearer";
pub const CLIENT_BASIC: &str = "client_basic";
pub const CONSOLE_SESSION: &str = "console_session";

/// The errors a dialect can answer any of its operations with.
pub struct Dialect {
    /// Component name of the error envelope's schema.
    pub envelope: String,
    pub envelope_schema: RefOr<utoipa::openapi::schema::Schema>,
    /// Applied to operations that state no `security` of their own.
    pub security: &'static str,
    /// Whether writes can be refused to a caller that may only read (Keycard access tokens).
    pub forbids_writes: bool,
    /// Headers every operation accepts, e.g. Keycard's `X-Client-Request-ID`.
    pub headers: Vec<Parameter>,
}

impl Dialect {
    pub fn openai() -> Self {
        Self {
            envelope: crate::http::openai::error::Envelope::name().into_owned(),
            envelope_schema: crate::http::openai::error::Envelope::schema(),
            security: ADMIN_KEY,
            forbids_writes: false,
            headers: Vec::new(),
        }
    }

    pub fn keycard() -> Self {
        let request_id = ParameterBuilder::new()
            .name("X-Client-Request-ID")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "A UUID tying the request to its log line; echoed on the response.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                Some(utoipa::openapi::SchemaFormat::Custom("uuid".to_owned())),
            )))
            .build();
        Self {
            envelope: crate::http::keycard::error::KcErrorBody::name().into_owned(),
            envelope_schema: crate::http::keycard::error::KcErrorBody::schema(),
            security: KEYCARD_BEARER,
            forbids_writes: true,
            headers: vec![request_id],
        }
    }

    /// Adds the shared error responses, headers and default security to every operation of
    /// `api` (one dialect's routes, before they are nested).
    pub fn complete(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert(self.envelope.clone(), self.envelope_schema.clone());
        for (path, item) in api.paths.paths.iter_mut() {
            let has_path_params = path.contains('{');
            for (method, op) in operations(item) {
                let writes = !matches!(method, "get" | "head" | "options");
                self.complete_operation(op, has_path_params, writes);
            }
        }
    }

    fn complete_operation(&self, op: &mut Operation, has_path_params: bool, writes: bool) {
        if let Some(body) = op.request_body.as_mut() {
            optional_body_is_never_null(body);
        }
        if op.security.is_none() {
            op.security = Some(vec![SecurityRequirement::new(
                self.security,
                Vec::<String>::new(),
            )]);
        }
        if !self.headers.is_empty() {
            op.parameters
                .get_or_insert_with(Vec::new)
                .extend(self.headers.iter().cloned());
        }
        let mut add = |status: &str, description: &str| {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(self.error_response(description)));
        };
        add(
            "400",
            "Malformed request: bad JSON, a wrong type, an invalid parameter or cursor.",
        );
        add(
            "401",
            "Missing, malformed, unknown, expired or revoked credentials.",
        );
        if writes {
            add(
                "403",
                "The caller may read but not change these objects (`missing_scope`: a read-only \
                 admin key).",
            );
        }
        if has_path_params || self.forbids_writes {
            add(
                "404",
                "No such object (or it belongs to another organization).",
            );
        }
        if writes {
            add("409", "An object with that unique value already exists.");
        }
        if op.request_body.is_some() {
            add(
                "408",
                "The request body did not arrive within the body read timeout.",
            );
            add("413", "The request body is larger than 64 KiB.");
            add(
                "415",
                "The request body is not sent as JSON (`Content-Type: application/json`).",
            );
        }
        let presents_credentials = op
            .security
            .as_ref()
            .is_some_and(|s| s.iter().any(|r| *r != SecurityRequirement::default()));
        if presents_credentials {
            add(
                "429",
                "Too many failed authentications from this source; retry after `Retry-After` \
                 seconds.",
            );
        }
        add("500", "Unexpected server error.");
        add("503", "The store is temporarily unavailable; retry.");
    }

    fn error_response(&self, description: &str) -> Response {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(&self.envelope)))
                    .build(),
            )
            .build()
    }
}

/// A string schema that takes only `values`, for the `&'static str` fields the renderers fill
/// from a fixed set (`object`, `status`, `role`, …); see [`string_enum!`].
pub fn one_of(values: &[&'static str]) -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// Defines schema functions for `#[schema(schema_with = name)]`:
/// `string_enum! { project_status = ["active", "archived"]; }`.
macro_rules! string_enum {
    ($($name:ident = [$($value:literal),+ $(,)?];)+) => {
        $(fn $name() -> utoipa::openapi::Object {
            $crate::http::openapi::one_of(&[$($value),+])
        })+
    };
}
pub(crate) use string_enum;

/// `request_body = Option<T>` is how a handler says "the body may be left out" (an empty body
/// counts as `{}`), but utoipa renders it as `oneOf: [null, T]`, and a `null` body is refused.
/// Keep `T` and mark the body not required instead.
fn optional_body_is_never_null(body: &mut utoipa::openapi::request_body::RequestBody) {
    use utoipa::openapi::schema::Schema;
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let is_null = |s: &RefOr<Schema>| {
            matches!(s, RefOr::T(Schema::Object(o))
                if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
        };
        if one_of.items.len() == 2 && one_of.items.iter().any(is_null) {
            let inner = one_of.items.iter().find(|s| !is_null(s)).cloned();
            content.schema = inner;
            body.required = Some(Required::False);
        }
    }
}

/// Every operation of a path item, with its method's name.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("patch", item.patch.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

/// Gives every operation a unique `operationId` (utoipa uses the handler's name, and every
/// module has its `list`), derived from method and path: `get_v1_organization_projects`.
pub fn name_operations(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            let mut id = String::from(method);
            for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
                if !part.is_empty() {
                    id.push('_');
                    id.push_str(part);
                }
            }
            op.operation_id = Some(id);
        }
    }
}

/// The document's frame: info, security schemes and tags; paths are merged into it.
pub fn base() -> OpenApi {
    let mut api = OpenApi::default();
    api.info = InfoBuilder::new()
        .title("keyplane")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(env!("CARGO_PKG_DESCRIPTION")))
        .license(Some(LicenseBuilder::new().name("Apache-2.0").build()))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    let bearer = |description: &str| {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(description.to_owned());
        SecurityScheme::Http(http)
    };
    components.add_security_scheme(
        ADMIN_KEY,
        bearer("An admin API key (`sk-admin-…`) of the organization."),
    );
    components.add_security_scheme(
        SERVICE_KEY,
        bearer(
            "A service account's API key (`sk-svcacct-…`) or an access token from \
             `/service-account-token`.",
        ),
    );
    components.add_security_scheme(
        KEYCARD_BEARER,
        bearer(
            "An admin API key (`sk-admin-…`), or a service account's access token from \
             `/service-account-token` (read-only).",
        ),
    );
    let mut basic = Http::new(HttpAuthScheme::Basic);
    basic.description = Some("`client_id:client_secret` of a credential.".to_owned());
    components.add_security_scheme(CLIENT_BASIC, SecurityScheme::Http(basic));
    let mut cookie = ApiKey::Cookie(ApiKeyValue::new(crate::http::console_session::COOKIE_NAME));
    if let ApiKey::Cookie(value) = &mut cookie {
        value.description = Some(
            "The console's session (`POST /console/api/session`). Every admin-key endpoint \
             of both dialects also accepts it in place of `Authorization`; a state-changing \
             request must then carry the session's `X-Keyplane-CSRF` token."
                .to_owned(),
        );
    }
    components.add_security_scheme(CONSOLE_SESSION, SecurityScheme::ApiKey(cookie));
    api.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                let mut tag = Tag::new(*name);
                tag.description = Some((*description).to_owned());
                tag
            })
            .collect(),
    );
    api
}

/// Tags in the order the docs page shows them.
pub const TAGS: &[(&str, &str)] = &[
    (
        tags::PROJECTS,
        "OpenAI Admin API dialect: projects of the organization.",
    ),
    (
        tags::PROJECT_SERVICE_ACCOUNTS,
        "OpenAI Admin API dialect: a project's service accounts and their additional keys.",
    ),
    (
        tags::PROJECT_API_KEYS,
        "OpenAI Admin API dialect: the keys of a project's service accounts.",
    ),
    (
        tags::ADMIN_API_KEYS,
        "OpenAI Admin API dialect: the organization's admin keys.",
    ),
    (
        tags::AUDIT_LOGS,
        "OpenAI Admin API dialect: every change, who made it and from where.",
    ),
    (
        tags::RATE_LIMITS,
        "OpenAI Admin API dialect: a project's rate limits per model, enforced at verification.",
    ),
    (
        tags::WORKLOAD_IDENTITY,
        "OpenAI Admin API dialect: OIDC issuers the organization trusts and the rules that map \
         their tokens to project service accounts (workload identity federation).",
    ),
    (
        tags::USAGE,
        "Token usage reported by gateways after the upstream answered (post-paid token limits).",
    ),
    (
        tags::VERIFICATION,
        "Is this key valid, and whose is it? For gateways and services.",
    ),
    (
        tags::KEYCARD_SERVICE_ACCOUNTS,
        "Keycard dialect: every service account of the organization.",
    ),
    (
        tags::KEYCARD_CREDENTIALS,
        "Keycard dialect: client credentials of a service account.",
    ),
    (
        tags::OAUTH,
        "OAuth 2.0 client credentials grant, signing keys and metadata.",
    ),
    (
        tags::CONSOLE,
        "The operator console (`/console`): its page, and its session, which stands for an \
         admin key on the endpoints above.",
    ),
    (tags::META, "Health and this documentation."),
];

pub mod tags {
    pub const PROJECTS: &str = "Projects";
    pub const PROJECT_SERVICE_ACCOUNTS: &str = "Project service accounts";
    pub const PROJECT_API_KEYS: &str = "Project API keys";
    pub const ADMIN_API_KEYS: &str = "Admin API keys";
    pub const AUDIT_LOGS: &str = "Audit logs";
    pub const RATE_LIMITS: &str = "Project rate limits";
    pub const USAGE: &str = "Usage";
    pub const WORKLOAD_IDENTITY: &str = "Workload identity federation";
    pub const VERIFICATION: &str = "Verification";
    pub const KEYCARD_SERVICE_ACCOUNTS: &str = "Service accounts (Keycard)";
    pub const KEYCARD_CREDENTIALS: &str = "Credentials (Keycard)";
    pub const OAUTH: &str = "OAuth";
    pub const CONSOLE: &str = "Console";
    pub const META: &str = "Meta";
}

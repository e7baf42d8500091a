//! Verification endpoints: `/v1/auth/check` for gateways (nginx `auth_request`, Traefik
//! `forwardAuth`, Envoy `ext_authz`) and `/v1/keys/verify` for services holding an admin key.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{AdminAuth, JsonBody};
use crate::domain::ids::Kind;
use crate::domain::time::to_unix_seconds;
use crate::http::extract::bearer_token;
use crate::http::gateway::nginx_mode;
use crate::http::openapi::tags::VERIFICATION as TAG;
use crate::http::AppState;
use crate::http::REQUEST_ID_HEADER;
use crate::service::key_cache::KeyContext;
use crate::service::verification::{Reason, Verdict};
use crate::service::{Accepting, AdmissionRequest, Admit, AuthFailure, Bearer, TokenIdentity};

use super::admission::{self, client_address, model, AdmissionJson};

static ORGANIZATION: HeaderName = HeaderName::from_static("x-keyplane-organization");
static PROJECT: HeaderName = HeaderName::from_static("x-keyplane-project");
static SERVICE_ACCOUNT: HeaderName = HeaderName::from_static("x-keyplane-service-account");
static KEY_ID: HeaderName = HeaderName::from_static("x-keyplane-key-id");
static SCOPES: HeaderName = HeaderName::from_static("x-keyplane-scopes");
static CREDENTIAL_ID: HeaderName = HeaderName::from_static("x-keyplane-credential-id");
static FEDERATION_RULE: HeaderName = HeaderName::from_static("x-keyplane-federation-rule");

/// Check a service account's key or access token (for gateways).
///
/// Any method, any sub-path (Envoy appends the original path): 204 with the key's identity in
/// `X-Keyplane-*` headers, or 401 in the OpenAI envelope. The key itself is never echoed.
/// Admin keys are not valid here.
#[utoipa::path(method(get, post), path = "/auth/check", tag = TAG,
    security(("service_key" = [])),
    params(("X-Keyplane-Gateway" = Option<String>, Header, description = "`nginx` (set by the \
        documented nginx snippet on its `auth_request` subrequest): refusals for rate reasons \
        are 403, not 429, since nginx passes on only 401 and 403. Other values are ignored.")),
    responses(
        (status = 204, description = "Valid. The identity is in the headers.", headers(
            ("X-Keyplane-Organization" = String, description = "Organization ID, `org-…`."),
            ("X-Keyplane-Project" = String, description = "Project ID, for project accounts."),
            ("X-Keyplane-Service-Account" = String, description = "Service account ID."),
            ("X-Keyplane-Key-Id" = String, description = "Key ID (API keys)."),
            ("X-Keyplane-Credential-Id" = String, description = "Credential ID (access tokens from client credentials)."),
            ("X-Keyplane-Federation-Rule" = String, description = "Federation rule ID, `fedrule_…` (access tokens from a workload identity token exchange)."),
            ("X-Keyplane-Scopes" = String, description = "The key's scopes, comma-separated."),
        )),
        (status = 401, description = "Refused: `invalid_api_key`, `expired_api_key`, `project_archived` or `invalid_token`.", body = super::error::Envelope),
        (status = 403, description = "Nginx mode only (`X-Keyplane-Gateway: nginx`): what is 429 otherwise, with the same headers.", body = super::error::Envelope, headers(
            ("Retry-After" = u64, description = "Seconds until the source may try again."),
            ("X-Keyplane-Reason" = String, description = "`rate_limited`."),
        )),
        (status = 429, description = "Refused before the key is looked up (`rate_limit_exceeded`): too many failed authentications from this source.", body = super::error::Envelope, headers(
            ("Retry-After" = u64, description = "Seconds until the source may try again."),
            ("X-Keyplane-Reason" = String, description = "Why a credential that may be valid is refused: `rate_limited`."),
        )),
    ))]
// The request itself, not `HeaderMap`: that extractor clones every header (and allocates) on
// each check, to read one of them.
pub async fn check(State(app): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers();
    let presented = match bearer_token(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return Err(ApiError::unauthenticated(AuthFailure::Missing, None)),
        Err(why) => return Err(ApiError::unauthenticated(why, None)),
    };
    match app
        .service
        .identify(presented, Accepting::ServiceKeys)
        .await?
    {
        Bearer::ServiceKey(Verdict::Valid(ctx)) => {
            let request = AdmissionRequest {
                client: ctx
                    .has_allowlist()
                    .then(|| client_address(&app, &req))
                    .flatten(),
                // Without a catalogue no limit depends on the model: skip the header lookup.
                model: (!app.service.catalogue().is_empty())
                    .then(|| model(headers))
                    .flatten(),
                consume: true,
            };
            match app.service.admit(&ctx, &request) {
                Admit::Admitted { requests, tokens } => {
                    let mut res = identity(&ctx);
                    admission::rate_limit_headers(res.headers_mut(), requests, tokens);
                    Ok(res)
                }
                refused => Ok(admission::refuse(&refused, nginx_mode(headers))),
            }
        }
        Bearer::ServiceKey(Verdict::Invalid(Reason::Disabled)) => {
            Ok(admission::disabled(nginx_mode(headers)))
        }
        Bearer::ServiceKey(Verdict::Invalid(reason)) => Err(refusal(reason)),
        Bearer::Token(t) => {
            crate::http::record_actor(&crate::http::token_actor(&t));
            Ok(token_identity(&t))
        }
        // Admin keys are not valid here (`ServiceKeys` judges them unknown).
        Bearer::InvalidToken | Bearer::Admin(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "The access token is invalid or has expired.",
        )),
    }
}

/// Check a service account's key or access token under any sub-path (for gateways).
///
/// The same check as `/v1/auth/check`, under any sub-path (the path may contain `/`), as
/// Envoy's `ext_authz` sends it.
// Documentation only: the route is `{*path}`, served by [`check`].
#[utoipa::path(method(get, post), path = "/auth/check/{path}", tag = TAG,
    security(("service_key" = [])),
    params(
        ("path" = String, Path, description = "Any sub-path; ignored."),
        ("X-Keyplane-Gateway" = Option<String>, Header, description = "As for `/v1/auth/check`."),
    ),
    responses(
        (status = 204, description = "Valid. The identity is in the `X-Keyplane-*` headers, as for `/v1/auth/check`."),
        (status = 401, description = "Refused.", body = super::error::Envelope),
        (status = 403, description = "Nginx mode only: what is 429 otherwise, as for `/v1/auth/check`.", body = super::error::Envelope),
        (status = 429, description = "Refused for rate reasons, with `Retry-After` and `X-Keyplane-Reason`, as for `/v1/auth/check`.", body = super::error::Envelope),
    ))]
#[allow(dead_code)]
pub async fn check_subpath() {}

/// An access token's identity: the same headers as a key's, with the credential that obtained
/// the token in place of a key id. Not cached: tokens are checked against the store each time.
fn token_identity(t: &TokenIdentity) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    let mut put = |name: &'static HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    let a = &t.account;
    put(
        &ORGANIZATION,
        Kind::Organization.render_openai(&a.organization_id),
    );
    if let Some(p) = &a.project_id {
        put(&PROJECT, Kind::Project.render_openai(p));
    }
    put(&SERVICE_ACCOUNT, Kind::ServiceAccount.render_openai(&a.id));
    if !t.claims.cid.is_empty() {
        put(&CREDENTIAL_ID, t.claims.cid.clone());
    }
    if let Some(rule) = federation_rule(t) {
        put(&FEDERATION_RULE, rule);
    }
    // A federation rule's restricted scopes travel in the token, space-separated.
    let scopes = t.claims.scope.as_deref().unwrap_or_default();
    put(
        &SCOPES,
        scopes.split_whitespace().collect::<Vec<_>>().join(","),
    );
    res
}

/// The federation rule that minted a token, as clients see its id.
fn federation_rule(t: &TokenIdentity) -> Option<String> {
    let id = crate::domain::ids::Id::parse(t.claims.fr.as_deref()?)?;
    Some(Kind::FederationRule.render_openai(&id))
}

/// The identity headers of one key, rendered once per cache entry as a ready header map: a
/// check clones it (each value's bytes shared, no hashing), which costs half of inserting
/// them header by header. A clone keeps the index's room but not the entries' spare
/// capacity, so the map carries the entries added after the handler (the request id, empty
/// until [`crate::http::request_id`] fills it in, and axum's `content-length: 0`): otherwise
/// their inserts would reallocate every check's map.
struct IdentityHeaders {
    map: HeaderMap,
    key_id: HeaderValue,
}

fn identity(ctx: &KeyContext) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let rendered = ctx.rendered.get_or_init(|| Box::new(identity_headers(ctx)));
    if let Some(rendered) = rendered.downcast_ref::<IdentityHeaders>() {
        // The key id is already rendered: logging it allocates nothing.
        crate::http::record_actor(rendered.key_id.to_str().unwrap_or_default());
        *res.headers_mut() = rendered.map.clone();
    }
    res
}

fn identity_headers(ctx: &KeyContext) -> IdentityHeaders {
    // Room in the index for what is added later (`insert` grows a map that is full, even
    // when the name is there), which a clone keeps.
    let mut map = HeaderMap::with_capacity(7 + admission::RATE_LIMIT_HEADERS);
    map.insert(&REQUEST_ID_HEADER, HeaderValue::from_static(""));
    // What axum adds to a bodiless response when it is missing (and hyper then handles as
    // for any 204): here already, so that insert is skipped too.
    map.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    let mut put = |name: &'static HeaderName, value: String| {
        let value = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)).ok();
        if let Some(v) = &value {
            map.insert(name, v.clone());
        }
        value
    };
    let key = &ctx.key;
    put(
        &ORGANIZATION,
        Kind::Organization.render_openai(&key.organization_id),
    );
    if let Some(p) = &key.project_id {
        put(&PROJECT, Kind::Project.render_openai(p));
    }
    if let Some(a) = &key.service_account_id {
        put(&SERVICE_ACCOUNT, Kind::ServiceAccount.render_openai(a));
    }
    let key_id = put(&KEY_ID, Kind::ApiKey.render_openai(&key.id))
        .unwrap_or_else(|| HeaderValue::from_static(""));
    put(&SCOPES, key.scopes.join(","));
    IdentityHeaders { map, key_id }
}

fn refusal(reason: Reason) -> ApiError {
    match reason {
        Reason::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("expired_api_key"),
            "The API key has expired.",
        ),
        Reason::ProjectArchived => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("project_archived"),
            "The API key's project is archived.",
        ),
        Reason::Revoked => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("invalid_api_key"),
            "The API key has been revoked.",
        ),
        // Refused as a 403: the key is valid and identified, its use is not allowed.
        Reason::Disabled => ApiError::new(
            StatusCode::FORBIDDEN,
            Some("key_disabled"),
            "The API key is disabled.",
        ),
        Reason::Unknown | Reason::Malformed => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = VerifyKeyRequest)]
pub struct VerifyBody {
    /// A service account's key (`sk-svcacct-…`) or an access token.
    key: String,
    /// Also decide admission for a request of this model (absent: the catalogue's `*`).
    #[serde(default)]
    model: Option<String>,
    /// The client address the request came from, for allowlists (absent: allowlists refuse).
    #[serde(default)]
    client_ip: Option<String>,
    /// Count the request against the limits if admitted (default: only report).
    #[serde(default)]
    consume: bool,
}

crate::http::openapi::string_enum! {
    invalid_reason = ["unknown", "malformed", "expired", "revoked", "project_archived", "disabled"];
    role = ["owner", "member", "none"];
    project_status = ["active", "archived"];
}

/// `valid: true` with the key's (or token's) identity, or `valid: false` with a reason.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifyResult)]
#[serde(untagged)]
pub enum VerifyJson {
    Valid {
        valid: bool,
        key: Box<KeyJson>,
        #[schema(required = true)]
        service_account: Option<AccountJson>,
        #[schema(required = true)]
        project: Option<ProjectRefJson>,
        /// Whether a request with this key may go through now, as `/v1/auth/check` decides.
        admission: AdmissionJson,
    },
    /// An access token (client-credentials grant) instead of a key.
    Token {
        valid: bool,
        token: TokenJson,
        service_account: AccountJson,
        #[schema(required = true)]
        project: Option<String>,
    },
    Invalid {
        valid: bool,
        #[schema(schema_with = invalid_reason)]
        reason: &'static str,
    },
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedToken)]
pub struct TokenJson {
    jti: String,
    /// The credential that obtained it (client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<String>,
    /// The federation rule that minted it (workload identity federation), `fedrule_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    federation_rule_id: Option<String>,
    issued_at: i64,
    expires_at: i64,
}

fn describe_token(t: &TokenIdentity) -> VerifyJson {
    let a = &t.account;
    VerifyJson::Token {
        valid: true,
        token: TokenJson {
            jti: t.claims.jti.clone(),
            credential_id: (!t.claims.cid.is_empty()).then(|| t.claims.cid.clone()),
            federation_rule_id: federation_rule(t),
            issued_at: t.claims.iat,
            expires_at: t.claims.exp,
        },
        service_account: AccountJson {
            id: Kind::ServiceAccount.render_openai(&a.id),
            name: a.name.clone(),
            role: a.role.as_str(),
            created_at: to_unix_seconds(a.created_at),
        },
        project: a
            .project_id
            .as_ref()
            .map(|p| Kind::Project.render_openai(p)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedKey)]
pub struct KeyJson {
    id: String,
    name: String,
    redacted_value: String,
    scopes: Vec<String>,
    created_at: i64,
    #[schema(required = true)]
    expires_at: Option<i64>,
    #[schema(required = true)]
    last_used_at: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedServiceAccount)]
pub struct AccountJson {
    id: String,
    name: String,
    #[schema(schema_with = role)]
    role: &'static str,
    created_at: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VerifiedProject)]
pub struct ProjectRefJson {
    id: String,
    name: String,
    #[schema(schema_with = project_status)]
    status: &'static str,
}

fn describe(ctx: &KeyContext, admission: AdmissionJson) -> VerifyJson {
    let k = &ctx.key;
    VerifyJson::Valid {
        valid: true,
        key: Box::new(KeyJson {
            id: Kind::ApiKey.render_openai(&k.id),
            name: k.name.clone(),
            redacted_value: k.redacted_value.clone(),
            scopes: k.scopes.clone(),
            created_at: to_unix_seconds(k.created_at),
            expires_at: k.expires_at.map(to_unix_seconds),
            last_used_at: k.last_used_at.map(to_unix_seconds),
        }),
        service_account: ctx.account.as_ref().map(|a| AccountJson {
            id: Kind::ServiceAccount.render_openai(&a.id),
            name: a.name.clone(),
            role: a.role.as_str(),
            created_at: to_unix_seconds(a.created_at),
        }),
        project: ctx.project.as_ref().map(|p| ProjectRefJson {
            id: Kind::Project.render_openai(&p.id),
            name: p.name.clone(),
            status: if p.is_archived() {
                "archived"
            } else {
                "active"
            },
        }),
        admission,
    }
}

/// Verify a key or access token.
///
/// `{"key": "…"}` → whether it is valid and whose it is. Keys of other organizations are
/// "unknown" to the caller, like every other object of theirs.
#[utoipa::path(post, path = "/keys/verify", tag = TAG,
    security(("admin_key" = [])),
    request_body = VerifyBody,
    responses((status = 200, description = "The verdict (also for invalid keys).", body = VerifyJson)))]
pub async fn verify(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Response, ApiError> {
    let invalid = |reason: Reason| VerifyJson::Invalid {
        valid: false,
        reason: reason.as_str(),
    };
    let accepting = Accepting::ServiceKeysOf(&who.organization_id);
    let client = match body.client_ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<std::net::IpAddr>().map_err(|_| {
            ApiError::bad_request(
                Some("client_ip"),
                "invalid_value",
                "Invalid 'client_ip': expected an IPv4 or IPv6 address.",
            )
        })?),
    };
    let verdict = match app.service.identify(body.key.trim(), accepting).await? {
        Bearer::ServiceKey(Verdict::Valid(ctx)) => {
            let request = AdmissionRequest {
                client,
                model: body
                    .model
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty()),
                consume: body.consume,
            };
            let decided = app.service.admit(&ctx, &request);
            describe(&ctx, admission::describe(decided))
        }
        Bearer::ServiceKey(Verdict::Invalid(reason)) => invalid(reason),
        Bearer::Token(t) => describe_token(&t),
        Bearer::InvalidToken | Bearer::Admin(_) => invalid(Reason::Unknown),
    };
    // Guesses (unknown or malformed keys) count against the source like a refused admin key,
    // so this endpoint is no oracle for an admin key's holder either.
    let guessed = matches!(
        verdict,
        VerifyJson::Invalid { reason, .. }
            if reason == Reason::Unknown.as_str() || reason == Reason::Malformed.as_str()
    );
    let mut res = Json(verdict).into_response();
    if guessed {
        res.extensions_mut()
            .insert(crate::http::throttle::AuthFailed);
    }
    Ok(res)
}

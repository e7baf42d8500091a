//! The gateway check, `/v1/auth/check` (nginx `auth_request`, Traefik `forwardAuth`, Envoy
//! `ext_authz`): is this key or access token valid, whose is it, and may its request go
//! through now. Served from the root router as a tower service (see [`CheckService`]);
//! documented under the `/v1` nest through [`check`].

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;

use super::admission;
use super::error::ApiError;
use super::rate_limit_headers::{self, RateLimitHeaders};
use super::verify::federation_rule;
use crate::domain::ids::Kind;
use crate::http::extract::bearer_token;
use crate::http::gateway::nginx_mode;
use crate::http::openapi::tags::VERIFICATION as TAG;
use crate::http::AppState;
use crate::http::REQUEST_ID_HEADER;
use crate::service::admission::Gauge;
use crate::service::key_cache::KeyContext;
use crate::service::verification::{Reason, Verdict};
use crate::service::{AdmissionRequest, Admit, AuthFailure, Bearer, TokenIdentity, Unresolved};

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
// The documented form of [`CheckService`], which is what the router serves.
pub async fn check(State(app): State<AppState>, req: Request) -> Response {
    let Ok(res) = tower::Service::call(&mut CheckService(app), req).await;
    res
}

/// The check as a tower service, which is how the router serves it: a check that memory
/// answers (a cached key: the gateway's steady state) is decided inside `call`, with no
/// per-request future of a handler (which would move the request into its state) and no
/// extractors; only a check that needs the store gets a (boxed) future.
#[derive(Clone)]
pub struct CheckService(pub AppState);

type Pending = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower::Service<Request> for CheckService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Pending>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match check_from_memory(&self.0, &req) {
            Ok(res) => Either::Left(ready(Ok(res))),
            Err(unresolved) => {
                let app = self.0.clone();
                Either::Right(Box::pin(async move {
                    Ok(check_unresolved(app, req, unresolved).await)
                }))
            }
        }
    }
}

/// The answer when memory has it: always, except for an access token or a key that is not
/// in the cache (`Err`).
// The request itself, not `HeaderMap`: that extractor clones every header (and allocates) on
// each check, to read one of them.
fn check_from_memory(app: &AppState, req: &Request) -> Result<Response, Unresolved> {
    let presented = match presented(req) {
        Ok(k) => k,
        Err(why) => return Ok(missing(why)),
    };
    let bearer = app.service.identify_from_memory(presented)?;
    Ok(answer(app, req, bearer))
}

/// The rest of a check that needs the store.
async fn check_unresolved(app: AppState, req: Request, unresolved: Unresolved) -> Response {
    let presented = match presented(&req) {
        Ok(k) => k,
        Err(why) => return missing(why),
    };
    match app.service.identify_unresolved(presented, unresolved).await {
        Ok(bearer) => answer(&app, &req, bearer),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The bearer, or why the request has no usable one.
fn presented(req: &Request) -> Result<&str, AuthFailure> {
    bearer_token(req.headers())?.ok_or(AuthFailure::Missing)
}

fn missing(why: AuthFailure) -> Response {
    ApiError::unauthenticated(why, None).into_response()
}

/// The response to an identified bearer: for a valid key, admission decides.
fn answer(app: &AppState, req: &Request, bearer: Bearer) -> Response {
    let headers = req.headers();
    match bearer {
        Bearer::ServiceKey(Verdict::Valid(ctx)) => {
            let request = AdmissionRequest {
                client: ctx
                    .has_allowlist()
                    .then(|| admission::client_address(app, req))
                    .flatten(),
                // Without a catalogue no limit depends on the model: skip the header lookup.
                model: (!app.service.catalogue().is_empty())
                    .then(|| admission::model(headers))
                    .flatten(),
                consume: true,
            };
            match app.service.admit(&ctx, &request) {
                Admit::Admitted { requests, tokens } => identity(&ctx, requests, tokens),
                refused => admission::refuse(refused, nginx_mode(headers)),
            }
        }
        Bearer::ServiceKey(Verdict::Invalid(Reason::Disabled)) => {
            admission::disabled(nginx_mode(headers))
        }
        Bearer::ServiceKey(Verdict::Invalid(reason)) => refusal(reason).into_response(),
        Bearer::Token(t) => {
            crate::http::record_actor(&crate::http::token_actor(&t));
            token_identity(&t)
        }
        // Admin keys are not valid here (`ServiceKeys` judges them unknown).
        Bearer::InvalidToken | Bearer::Admin(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "The access token is invalid or has expired.",
        )
        .into_response(),
    }
}

/// Check a service account's key or access token under any sub-path (for gateways).
///
/// The same check as `/v1/auth/check`, under any sub-path (the path may contain `/`), as
/// Envoy's `ext_authz` sends it.
// Documentation only: the route is `{*path}`, served by [`CheckService`].
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

/// The identity headers of one key, rendered once per cache entry as a ready header map: a
/// check clones it (each value's bytes shared, no hashing), which costs half of inserting
/// them header by header. A clone keeps the index's room but not the entries' spare
/// capacity, so the map carries the entries added after the handler (the request id, empty
/// until [`crate::http::request_id`] fills it in, and axum's `content-length: 0`): otherwise
/// their inserts would reallocate every check's map. For the same reason an admitted request
/// with rate limits clones a variant that also carries the `x-ratelimit-*` names, whose values
/// are then written in place.
struct IdentityHeaders {
    map: HeaderMap,
    /// With the `x-ratelimit-*` headers of each shape ([`rate_limit_headers::shape`]; index
    /// 0 unused), made when first needed.
    limited: [OnceLock<RateLimitHeaders>; 4],
    /// For the log line: already validated, so logging it checks and allocates nothing.
    key_id: Box<str>,
}

/// A valid key's 204: its identity, and the rate-limit gauges of the admitted request.
fn identity(ctx: &KeyContext, requests: Option<Gauge>, tokens: Option<Gauge>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let rendered = ctx.rendered.get_or_init(|| Box::new(identity_headers(ctx)));
    if let Some(rendered) = rendered.downcast_ref::<IdentityHeaders>() {
        crate::http::record_actor(&rendered.key_id);
        let shape = rate_limit_headers::shape(requests, tokens);
        *res.headers_mut() = match rendered.limited.get(shape) {
            Some(ready) if shape != 0 => ready
                .get_or_init(|| RateLimitHeaders::new(&rendered.map, requests, tokens))
                .render(requests, tokens),
            _ => rendered.map.clone(),
        };
    }
    res
}

fn identity_headers(ctx: &KeyContext) -> IdentityHeaders {
    // Seven entries, in an index with room to spare (`insert` grows a map that is full, even
    // when the name is there, as for the request id), which a clone keeps.
    let mut map = HeaderMap::with_capacity(7);
    map.insert(&REQUEST_ID_HEADER, HeaderValue::from_static(""));
    // What axum adds to a bodiless response when it is missing (and hyper then handles as
    // for any 204): here already, so that insert is skipped too.
    map.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    let mut put = |name: &'static HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)) {
            map.insert(name, v);
        }
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
    let key_id = Kind::ApiKey.render_openai(&key.id);
    put(&KEY_ID, key_id.clone());
    put(&SCOPES, key.scopes.join(","));
    IdentityHeaders {
        map,
        limited: Default::default(),
        key_id: key_id.into_boxed_str(),
    }
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

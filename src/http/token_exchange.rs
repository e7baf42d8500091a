//! `POST /oauth/token`: workload identity federation's token exchange (RFC 8693), where a
//! workload trades the OIDC token its platform gave it (GitHub Actions, Kubernetes) for a
//! keyplane access token. The official `openai` SDKs send JSON; RFC 8693 clients send a form:
//! both are accepted. Errors are RFC 6749's `{"error", "error_description"}`; every refusal of
//! the token itself is `invalid_grant` with one description, the reason going to the request
//! log only.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::keycard::token::{read_body, OAuthError, OAuthErrorJson};
use super::throttle::AuthFailed;
use super::AppState;
use crate::domain::ids::Kind;
use crate::http::openapi::tags::WORKLOAD_IDENTITY as TAG;
use crate::service::federation::{ExchangeRequest, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT};

pub const EXCHANGE_PATH: &str = "/oauth/token";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

crate::http::openapi::string_enum! {
    grant_type = ["urn:ietf:params:oauth:grant-type:token-exchange"];
    subject_token_type = ["urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"];
    issued_token_type = ["urn:ietf:params:oauth:token-type:access_token"];
    bearer = ["Bearer"];
}

/// The exchange request (JSON, as the SDKs send it, or `application/x-www-form-urlencoded`).
#[derive(utoipa::ToSchema)]
#[schema(as = TokenExchangeRequest)]
#[allow(dead_code)]
pub struct ExchangeBody {
    #[schema(schema_with = grant_type)]
    grant_type: String,
    /// The workload's OIDC token (a JWT its platform issued).
    subject_token: String,
    #[schema(schema_with = subject_token_type)]
    subject_token_type: String,
    /// The workload identity provider that issued it, `idp_…`.
    identity_provider_id: String,
    /// The service account to act as, `svc_acct_…`: a federation rule of the provider must
    /// map the token to it.
    service_account_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TokenExchangeResponse)]
pub struct ExchangeJson {
    /// A keyplane access token (a JWT signed with Ed25519), accepted by `/v1/auth/check`.
    access_token: String,
    #[schema(schema_with = bearer)]
    token_type: &'static str,
    /// Seconds until it expires: never later than the subject token.
    expires_in: i64,
    #[schema(schema_with = issued_token_type)]
    issued_token_type: &'static str,
}

/// The parameters, from either encoding; a repeated one is refused (RFC 6749 §3.2).
#[derive(Default)]
struct Params {
    grant_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    identity_provider_id: Option<String>,
    service_account_id: Option<String>,
}

impl Params {
    fn set(&mut self, name: &str, value: String) -> Result<(), OAuthError> {
        let slot = match name {
            "grant_type" => &mut self.grant_type,
            "subject_token" => &mut self.subject_token,
            "subject_token_type" => &mut self.subject_token_type,
            "identity_provider_id" => &mut self.identity_provider_id,
            "service_account_id" => &mut self.service_account_id,
            // Others (`client_id` from the Node SDK, `scope`, `audience`) ask nothing of us.
            _ => return Ok(()),
        };
        if slot.replace(value).is_some() {
            return Err(OAuthError::invalid_request("A parameter is repeated."));
        }
        Ok(())
    }

    fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, OAuthError> {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let mut params = Params::default();
        if media == "application/x-www-form-urlencoded" {
            for (k, v) in form_urlencoded::parse(body) {
                params.set(&k, v.into_owned())?;
            }
        } else if media == "application/json" || media.ends_with("+json") {
            let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
                return Err(OAuthError::invalid_request(
                    "The body must be a JSON object.",
                ));
            };
            for (k, v) in fields {
                match v {
                    Value::String(s) => params.set(&k, s)?,
                    Value::Null => {}
                    _ => {
                        return Err(OAuthError::invalid_request(
                            "Every parameter must be a string.",
                        ))
                    }
                }
            }
        } else {
            return Err(OAuthError::invalid_request(
                "The body must be application/json or application/x-www-form-urlencoded.",
            ));
        }
        Ok(params)
    }
}

fn invalid_grant() -> Response {
    let mut res = OAuthError {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_grant",
        description: "The subject token was not accepted.",
        basic_challenge: false,
    }
    .into_response();
    // Counts as a failed authentication of the source (brute-force throttling).
    res.extensions_mut().insert(AuthFailed);
    res
}

/// Exchange a workload's OIDC token for an access token (RFC 8693).
///
/// `subject_token` must be a JWT of the provider's issuer and audience, signed by a key of
/// its key set, with a `kid` and an asymmetric `alg`; an enabled federation rule of the
/// provider must map its claims to `service_account_id`. The access token it returns is
/// bound to that rule: disabling or deleting the rule or the provider, deleting the account or
/// archiving its project stops it.
#[utoipa::path(post, path = "/oauth/token", tag = TAG, security(()),
    request_body(content = ExchangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "An access token.", body = ExchangeJson),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type`, or `invalid_grant`: the subject token was not accepted (which check failed is in the server's log, not here).", body = OAuthErrorJson),
        (status = 408, description = "`invalid_request`: the body did not arrive within the body read timeout.", body = OAuthErrorJson),
        (status = 429, description = "`temporarily_unavailable`: too many failed exchanges from this source; retry after `Retry-After` seconds.", body = OAuthErrorJson),
        (status = 500, description = "`server_error`: an unexpected condition.", body = OAuthErrorJson),
        (status = 503, description = "`temporarily_unavailable`: the store is briefly unavailable.", body = OAuthErrorJson,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ))]
pub async fn exchange(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let body = read_body(body).await?;
    let p = Params::parse(&headers, &body)?;
    match p.grant_type.as_deref() {
        Some(GRANT_TYPE) => {}
        Some(_) => {
            return Err(OAuthError {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "Only the token-exchange grant is supported here.",
                basic_challenge: false,
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is required.")),
    }
    let required = |v: Option<String>, what: &'static str| {
        v.filter(|s| !s.is_empty())
            .ok_or(OAuthError::invalid_request(what))
    };
    let token = required(p.subject_token, "subject_token is required.")?;
    match required(p.subject_token_type, "subject_token_type is required.")?.as_str() {
        TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN => {}
        _ => {
            return Err(OAuthError::invalid_request(
                "subject_token_type must be urn:ietf:params:oauth:token-type:jwt or \
                 urn:ietf:params:oauth:token-type:id_token.",
            ))
        }
    }
    let provider = required(p.identity_provider_id, "identity_provider_id is required.")?;
    let provider =
        Kind::IdentityProvider
            .parse_openai(&provider)
            .ok_or(OAuthError::invalid_request(
                "identity_provider_id is not a workload identity provider ID (idp_…).",
            ))?;
    let account = required(p.service_account_id, "service_account_id is required.")?;
    let account =
        Kind::ServiceAccount
            .parse_openai(&account)
            .ok_or(OAuthError::invalid_request(
                "service_account_id is not a service account ID (svc_acct_…).",
            ))?;
    let request = ExchangeRequest {
        subject_token: &token,
        provider_id: &provider,
        service_account_id: &account,
    };
    match app.service.exchange_token(request).await? {
        Ok(issued) => {
            let mut res = Json(ExchangeJson {
                access_token: issued.access_token,
                token_type: "Bearer",
                expires_in: issued.expires_in,
                issued_token_type: ISSUED_TOKEN_TYPE,
            })
            .into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            Ok(res)
        }
        Err(why) => {
            tracing::info!(
                reason = %why,
                identity_provider_id = %Kind::IdentityProvider.render_openai(&provider),
                service_account_id = %Kind::ServiceAccount.render_openai(&account),
                "token exchange refused"
            );
            Ok(invalid_grant())
        }
    }
}

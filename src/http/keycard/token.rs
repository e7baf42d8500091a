//! The OAuth 2.0 side: `POST /service-account-token` (client-credentials grant, RFC 6749
//! §4.4), `GET /.well-known/jwks.json` and `GET /.well-known/oauth-authorization-server`
//! (RFC 8414). Errors here use RFC 6749's `{"error", "error_description"}`, which OAuth
//! clients expect, not the Keycard envelope.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

use super::error::KcError;
use crate::http::openapi::tags::OAUTH as TAG;
use crate::http::{AppState, MAX_BODY_BYTES};
use crate::service::ServiceError;

pub const TOKEN_PATH: &str = "/service-account-token";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(Debug)]
pub struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: &'static str,
    /// Answer a failed HTTP Basic authentication with a Basic challenge (RFC 6749 §5.2).
    pub(crate) basic_challenge: bool,
}

impl OAuthError {
    pub(crate) fn invalid_request(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
            basic_challenge: false,
        }
    }

    fn invalid_client(basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            // One message for every cause: which part was wrong is not told to the caller.
            description: "Client authentication failed.",
            basic_challenge: basic,
        }
    }
}

crate::http::openapi::string_enum! {
    oauth_error_code = ["invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type", "temporarily_unavailable", "server_error"];
    bearer = ["Bearer"];
}

/// RFC 6749 §5.2 error response.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OAuthErrorResponse)]
pub struct OAuthErrorJson {
    #[schema(schema_with = oauth_error_code)]
    error: &'static str,
    error_description: &'static str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorJson {
            error: self.error,
            error_description: self.description,
        };
        let mut res = (self.status, Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        } else {
            h.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"keyplane\""),
            );
        }
        res
    }
}

/// Seconds a client should wait before retrying a token request the store could not serve.
const RETRY_AFTER_SECONDS: u64 = 1;

impl From<ServiceError> for OAuthError {
    fn from(err: ServiceError) -> Self {
        match err {
            // Transient (store busy, restarting, unreachable): worth retrying soon.
            ServiceError::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "token endpoint: store unavailable");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    error: "temporarily_unavailable",
                    description: "The server cannot issue tokens right now. Please retry.",
                    basic_challenge: false,
                }
            }
            // Anything else will not get better by retrying: 500, so clients stop.
            other => {
                tracing::error!(error = %format!("{other:#}"), "token endpoint: internal error");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    error: "server_error",
                    description: "The server encountered an unexpected condition.",
                    basic_challenge: false,
                }
            }
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AccessTokenResponse)]
pub struct TokenJson {
    /// A JWT signed with Ed25519 (`alg: EdDSA`).
    access_token: String,
    #[schema(schema_with = bearer)]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: i64,
}

/// The token request's form (documentation: the handler parses the body itself, to refuse
/// repeated parameters as RFC 6749 §3.2 asks).
#[derive(utoipa::ToSchema)]
#[schema(as = AccessTokenRequest)]
#[allow(dead_code)]
pub struct TokenForm {
    #[schema(inline)]
    grant_type: GrantType,
    /// With `client_secret`, instead of HTTP Basic; with `client_assertion`, which credential.
    #[schema(min_length = 1)]
    client_id: Option<String>,
    #[schema(min_length = 1)]
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, for a credential of workload
    /// identity federation (RFC 7523).
    #[schema(min_length = 1)]
    client_assertion_type: Option<String>,
    /// A token of the credential's workload identity provider whose `sub` is its subject.
    #[schema(min_length = 1)]
    client_assertion: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GrantType {
    ClientCredentials,
}

/// `client_id:client_secret` from `Authorization: Basic`, each form-urldecoded as RFC 6749
/// §2.3.1 asks (a no-op for keyplane's base62 values, so clients that skip it work too).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client(true);
    let raw = raw.to_str().map_err(|_| bad())?;
    let (scheme, encoded) = raw.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A token request's body, at most [`MAX_BODY_BYTES`], in the RFC 6749 envelope when not.
pub(crate) async fn read_body(body: Body) -> Result<axum::body::Bytes, OAuthError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| match crate::connections::is_body_timeout(&e) {
            true => OAuthError {
                status: StatusCode::REQUEST_TIMEOUT,
                ..OAuthError::invalid_request("The request body did not arrive in time.")
            },
            false => OAuthError::invalid_request("The request body is too large."),
        })
}

/// Obtain an access token (OAuth 2.0 client credentials grant).
///
/// The client authenticates with HTTP Basic (`client_id:client_secret`) or with the
/// `client_id`/`client_secret` form fields, not both; a credential of workload identity
/// federation with `client_id` and a `client_assertion` (RFC 7523) instead.
#[utoipa::path(post, path = "/service-account-token", tag = TAG,
    security((), ("client_basic" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token.", body = TokenJson),
        (status = 400, description = "`invalid_request` or `unsupported_grant_type`.", body = OAuthErrorJson),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = OAuthErrorJson),
        (status = 408, description = "`invalid_request`: the body did not arrive within the body read timeout.", body = OAuthErrorJson),
        (status = 429, description = "`temporarily_unavailable`: too many failed authentications from this source; retry after `Retry-After` seconds.", body = OAuthErrorJson),
        (status = 500, description = "`server_error`: an unexpected condition; retrying will not help.", body = OAuthErrorJson),
        (status = 503, description = "`temporarily_unavailable`: the store is briefly unavailable; retry after `Retry-After` seconds.", body = OAuthErrorJson,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    ))]
pub async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let body = read_body(body).await?;
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let mut grant_type = None;
    let mut form_id = None;
    let mut form_secret = None;
    let mut assertion_type = None;
    let mut assertion = None;
    for (k, v) in form_urlencoded::parse(&body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut form_id,
            "client_secret" => &mut form_secret,
            "client_assertion_type" => &mut assertion_type,
            "client_assertion" => &mut assertion,
            _ => continue,
        };
        // RFC 6749 §3.2: parameters must not be repeated.
        if slot.replace(v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request("A parameter is repeated."));
        }
    }
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "Only grant_type=client_credentials is supported.",
                basic_challenge: false,
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is required.")),
    }
    if assertion.is_some() || assertion_type.is_some() {
        let has_basic = headers.contains_key(header::AUTHORIZATION);
        return assertion_grant(
            &app,
            form_id,
            form_secret,
            assertion_type,
            assertion,
            has_basic,
        )
        .await;
    }
    let basic = basic_credentials(&headers)?;
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not both.",
            ))
        }
        (Some(pair), None, None) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        (None, _, _) => return Err(OAuthError::invalid_client(false)),
    };
    let issued = app
        .service
        .issue_token(&client_id, &secret)
        .await
        .map_err(OAuthError::from)?;
    match issued {
        Ok(t) => Ok(token_response(t.access_token, t.expires_in)),
        Err(why) => {
            tracing::info!(reason = ?why, "token request refused");
            Err(OAuthError::invalid_client(used_basic))
        }
    }
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client authenticates with a token of its credential's workload identity provider
/// (RFC 7523 §2.2), naming the credential with `client_id`.
async fn assertion_grant(
    app: &AppState,
    client_id: Option<String>,
    secret: Option<String>,
    assertion_type: Option<String>,
    assertion: Option<String>,
    has_basic: bool,
) -> Result<Response, OAuthError> {
    if secret.is_some() || has_basic {
        return Err(OAuthError::invalid_request(
            "Use one client authentication method, not both.",
        ));
    }
    if assertion_type.as_deref() != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_request(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let (Some(client_id), Some(assertion)) = (client_id, assertion) else {
        return Err(OAuthError::invalid_client(false));
    };
    match app
        .service
        .issue_token_with_assertion(&client_id, &assertion)
        .await
        .map_err(OAuthError::from)?
    {
        Ok(t) => Ok(token_response(t.access_token, t.expires_in)),
        Err(why) => {
            tracing::info!(reason = ?why, "token request refused");
            Err(OAuthError::invalid_client(false))
        }
    }
}

fn token_response(access_token: String, expires_in: i64) -> Response {
    let mut res = Json(TokenJson {
        access_token,
        token_type: "Bearer",
        expires_in,
    })
    .into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = JsonWebKeySet)]
pub struct JwksJson {
    #[schema(value_type = Vec<JwkDoc>)]
    keys: Vec<serde_json::Value>,
}

/// One public key (RFC 8037: an Ed25519 key as an `OKP` JWK).
// Documentation only: `crate::domain::jwt::public_jwk` renders the keys.
#[derive(utoipa::ToSchema)]
#[schema(as = JsonWebKey)]
#[allow(dead_code)]
pub struct JwkDoc {
    /// `OKP`.
    kty: String,
    /// `Ed25519`.
    crv: String,
    /// `EdDSA`.
    alg: String,
    /// `sig`.
    #[schema(rename = "use")]
    use_: String,
    kid: String,
    /// The public key, base64url without padding.
    x: String,
}

/// Public keys of the token signing keys (RFC 7517).
///
/// Retired keys stay until the tokens they signed have expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = TAG,
    responses(
        (status = 200, description = "The key set.", body = JwksJson),
        (status = 500, description = "Unexpected server error.", body = super::error::KcErrorBody),
        (status = 503, description = "The store is temporarily unavailable.", body = super::error::KcErrorBody),
    ))]
pub async fn jwks(State(app): State<AppState>) -> Result<Response, KcError> {
    let keys = app.service.published_keys().await?;
    let mut res = Json(JwksJson { keys }).into_response();
    // Short: resource servers pick up a rotation within minutes.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

/// RFC 8414 authorization server metadata.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuthorizationServerMetadata)]
pub struct MetadataJson {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    response_types_supported: Vec<&'static str>,
    scopes_supported: Vec<&'static str>,
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = TAG,
    responses((status = 200, description = "The metadata.", body = MetadataJson)))]
pub async fn metadata(State(app): State<AppState>) -> Json<MetadataJson> {
    let issuer = &app.service.token_settings().issuer;
    Json(MetadataJson {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}{TOKEN_PATH}"),
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        grant_types_supported: vec!["client_credentials"],
        token_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post"],
        response_types_supported: vec![],
        scopes_supported: vec![],
    })
}

//! The console's session endpoints: `POST /console/api/session` exchanges an admin key for an
//! opaque session cookie, `GET` tells the console who it is signed in as (and its anti-CSRF
//! token), `DELETE` signs out. Answered in the OpenAI envelope, like the admin API the
//! console then calls with the cookie (see `console_session.rs`).

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::console_session::{check_csrf, same_origin, session_cookie, session_of, COOKIE_NAME};
use super::extract::read_json;
use super::openai::error::{ApiError, Envelope};
use super::openapi::tags::CONSOLE;
use super::AppState;
use crate::domain::ids::Kind;
use crate::domain::time::to_unix_seconds;
use crate::service::{AuthFailure, ServiceError, SessionView};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConsoleSignIn)]
pub struct SignInBody {
    /// An admin API key (`sk-admin-…`) with at least `api.management.read`.
    admin_key: String,
}

crate::http::openapi::string_enum! {
    session_object = ["console.session"];
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConsoleSessionKey)]
pub struct SessionKeyJson {
    /// The admin key's ID (`key_…`).
    id: String,
    name: String,
    redacted_value: String,
    scopes: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConsoleSession)]
pub struct SessionJson {
    #[schema(schema_with = session_object)]
    object: &'static str,
    /// The organization (its ID as the Keycard dialect's paths take it).
    organization_id: String,
    /// The admin key the session acts as; its permissions are the session's.
    admin_key: SessionKeyJson,
    /// The key may only read: the console hides its write controls.
    read_only: bool,
    /// Send it as `X-Keyplane-CSRF` with every state-changing request made with the session.
    csrf_token: String,
    created_at: i64,
    /// The session's absolute end (Unix seconds), however active it is.
    expires_at: i64,
    /// The session ends after this long without a request.
    idle_timeout_seconds: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConsoleSessionDeleted)]
pub struct SignedOutJson {
    #[schema(schema_with = session_object)]
    object: &'static str,
    deleted: bool,
}

/// Sign in to the console.
///
/// Exchanges an admin key for a session: the answer sets an `HttpOnly`, `SameSite=Strict`
/// cookie (`Secure` under TLS) holding an opaque session ID, new at every sign-in. The session
/// acts as that key until it is idle too long, reaches its absolute end, is signed out, or the
/// key is deleted, expires or is disabled. Failed sign-ins count toward the brute-force
/// throttle.
#[utoipa::path(post, path = "/console/api/session", tag = CONSOLE, security(()),
    request_body = SignInBody,
    responses(
        (status = 200, description = "Signed in; the cookie is set.", body = SessionJson,
            headers(("Set-Cookie" = String, description = "`keyplane_console=…; Path=/; HttpOnly; SameSite=Strict; Max-Age=…` (and `Secure` under TLS)."))),
        (status = 400, description = "The body is not `{\"admin_key\": \"…\"}`.", body = Envelope),
        (status = 401, description = "`invalid_api_key`: the key is unknown, malformed, revoked or expired; `key_disabled`.", body = Envelope),
        (status = 403, description = "`csrf_failed`: another origin; `insufficient_permissions`: a usage reporter's key.", body = Envelope),
        (status = 408, description = "The request body did not arrive within the body read timeout.", body = Envelope),
        (status = 413, description = "The request body is larger than 64 KiB.", body = Envelope),
        (status = 415, description = "The request body is not sent as JSON.", body = Envelope),
        (status = 429, description = "Too many failed authentications from this source; retry after `Retry-After` seconds.", body = Envelope),
        (status = 500, description = "Unexpected server error.", body = Envelope),
        (status = 503, description = "The store is temporarily unavailable; retry.", body = Envelope),
    ))]
pub async fn sign_in(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(refusal) = same_origin(&parts.headers) {
        return ApiError::from(refusal).into_response();
    }
    let replacing = session_cookie(&parts.headers).map(str::to_owned);
    let origin = crate::http::origin(&parts);
    let presented: SignInBody = match read_json(Request::from_parts(parts, body)).await {
        Ok(body) => body,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let key = presented.admin_key.trim();
    let service = &state.service;
    match service
        .sign_in(Some(key), replacing.as_deref(), origin)
        .await
    {
        Ok(signed_in) => {
            crate::http::record_actor(&crate::http::principal_actor(&signed_in.view.principal));
            let settings = service.console_settings();
            let cookie = format!(
                "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                signed_in.token.as_str(),
                settings.lifetime.as_secs(),
                secure(&state)
            );
            with_cookie(render(&signed_in.view, &state), &cookie)
        }
        Err(ServiceError::Unauthenticated(why)) => {
            tracing::debug!(reason = ?why, "console sign-in refused");
            let why = match why {
                // The key was sent, as an empty string: not "no Authorization header".
                AuthFailure::Missing => AuthFailure::Malformed,
                other => other,
            };
            ApiError::unauthenticated(why, Some(key)).into_response()
        }
        Err(ServiceError::Forbidden | ServiceError::MissingScope(_)) => ApiError::new(
            StatusCode::FORBIDDEN,
            Some("insufficient_permissions"),
            "This admin key may only report usage; it cannot sign in to the console.",
        )
        .into_response(),
        Err(other) => ApiError::from(other).into_response(),
    }
}

/// The console session.
///
/// Who the session cookie signs in as, and the anti-CSRF token its state-changing requests
/// must carry as `X-Keyplane-CSRF`.
#[utoipa::path(get, path = "/console/api/session", tag = CONSOLE,
    security(("console_session" = [])),
    responses(
        (status = 200, description = "The live session.", body = SessionJson),
        (status = 401, description = "`no_session` (none, unknown, tampered or signed out), `session_expired`, or `session_ended` (its admin key was deleted, expired or disabled).", body = Envelope),
        (status = 429, description = "Too many failed authentications from this source; retry after `Retry-After` seconds.", body = Envelope),
        (status = 500, description = "Unexpected server error.", body = Envelope),
        (status = 503, description = "The store is temporarily unavailable; retry.", body = Envelope),
    ))]
pub async fn current(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(token) = session_cookie(&parts.headers) else {
        return ApiError::unauthenticated(AuthFailure::SessionUnknown, None).into_response();
    };
    match session_of(&parts, &state, token).await {
        Ok(view) => render(&view, &state),
        Err(refusal) => ApiError::from(refusal).into_response(),
    }
}

/// Sign out of the console.
///
/// Ends the session (on every node) and clears the cookie. Needs `X-Keyplane-CSRF`.
#[utoipa::path(delete, path = "/console/api/session", tag = CONSOLE,
    security(("console_session" = [])),
    responses(
        (status = 200, description = "Signed out; the cookie is cleared.", body = SignedOutJson),
        (status = 401, description = "`no_session`: no session cookie was sent.", body = Envelope),
        (status = 403, description = "`csrf_failed`: without the session's `X-Keyplane-CSRF`, or from another origin.", body = Envelope),
        (status = 429, description = "Too many failed authentications from this source; retry after `Retry-After` seconds.", body = Envelope),
        (status = 500, description = "Unexpected server error.", body = Envelope),
        (status = 503, description = "The store is temporarily unavailable; retry.", body = Envelope),
    ))]
pub async fn sign_out(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(token) = session_cookie(&parts.headers) else {
        return ApiError::unauthenticated(AuthFailure::SessionUnknown, None).into_response();
    };
    if let Err(refusal) = check_csrf(&parts, token) {
        return ApiError::from(refusal).into_response();
    }
    let clear = format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&state)
    );
    match state
        .service
        .sign_out(token, crate::http::origin(&parts))
        .await
    {
        Ok(()) => with_cookie(
            Json(SignedOutJson {
                object: "console.session",
                deleted: true,
            })
            .into_response(),
            &clear,
        ),
        Err(other) => ApiError::from(other).into_response(),
    }
}

fn secure(state: &AppState) -> &'static str {
    if state.service.console_settings().secure_cookie {
        "; Secure"
    } else {
        ""
    }
}

fn render(view: &SessionView, state: &AppState) -> Response {
    let key = &view.admin_key;
    let mut res = Json(SessionJson {
        object: "console.session",
        organization_id: view.session.organization_id.as_str().to_owned(),
        admin_key: SessionKeyJson {
            id: Kind::ApiKey.render_openai(&key.id),
            name: key.name.clone(),
            redacted_value: key.redacted_value.clone(),
            scopes: key.scopes.clone(),
        },
        read_only: view.read_only,
        csrf_token: view.csrf_token.clone(),
        created_at: to_unix_seconds(view.session.created_at),
        expires_at: to_unix_seconds(view.session.expires_at),
        idle_timeout_seconds: state.service.console_settings().idle_timeout.as_secs(),
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn with_cookie(mut res: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(v) => {
            let h = res.headers_mut();
            h.insert(header::SET_COOKIE, v);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => ApiError::from(ServiceError::Internal(e.into())).into_response(),
    }
}

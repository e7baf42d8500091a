//! `/v1/keys/verify`: for services holding an admin key, whether a key or access token is
//! valid, whose it is, and (asked or not to count it) whether its request would be admitted.
//! The gateway check, `/v1/auth/check`, is in `check.rs`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{AdminAuth, JsonBody};
use crate::domain::ids::Kind;
use crate::domain::time::to_unix_seconds;
use crate::http::openapi::tags::VERIFICATION as TAG;
use crate::http::AppState;
use crate::service::key_cache::KeyContext;
use crate::service::verification::{Reason, Verdict};
use crate::service::{Accepting, AdmissionRequest, Bearer, TokenIdentity};

use super::admission::{self, AdmissionJson};

/// The federation rule that minted a token, as clients see its id.
pub(super) fn federation_rule(t: &TokenIdentity) -> Option<String> {
    let id = crate::domain::ids::Id::parse(t.claims.fr.as_deref()?)?;
    Some(Kind::FederationRule.render_openai(&id))
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

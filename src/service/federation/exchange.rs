//! The token exchange of workload identity federation (RFC 8693, as the official SDKs speak
//! it): an external OIDC token (the subject token) in, a keyplane access token out, for the
//! service account a matching federation rule names. No secret is stored anywhere.
//!
//! Every check happens here, in this order: the provider exists and is enabled; the token
//! verifies against its key set (fetched, cached, refetched once on an unknown `kid`;
//! `domain::federation::subject_token` has the strict checks); an enabled rule of the provider
//! for the requested service account matches the token's claims; the account is live and its
//! project active. The minted token never outlives the subject token, names its rule and
//! provider (so disabling or deleting either stops it on every node at its next use: tokens are
//! checked against the store each time) and carries the rule's scopes.

use crate::domain::federation::subject_token::{self, Expectations, SubjectTokenError};
use crate::domain::federation::{FederationRule, Permissions, Provider, Verification};
use crate::domain::ids::Id;
use crate::domain::jwt::Claims;
use crate::domain::outcomes::{ClientFailure, TokenFailure};
use crate::domain::page::{PageRequest, MAX_LIMIT};
use crate::service::tokens::IssuedToken;
use crate::service::{Service, ServiceResult};

use super::jwks::{JwksError, KeySource};

pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// What the workload asked for.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub provider_id: &'a Id,
    pub service_account_id: &'a Id,
}

/// Why an exchange was refused. The wire says `invalid_grant` for every one of them (a caller
/// learns nothing about which check failed); the operator reads the reason in the request log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeFailure {
    #[error("no such workload identity provider")]
    UnknownProvider,
    #[error("the provider is disabled")]
    ProviderDisabled,
    #[error("the provider's key set is unavailable: {0}")]
    KeySet(JwksError),
    #[error("subject token refused: {0}")]
    SubjectToken(SubjectTokenError),
    #[error("no enabled federation rule of the provider maps this token to that service account")]
    NoMatchingRule,
    #[error("the service account is gone")]
    AccountGone,
    #[error("the service account's project is archived")]
    ProjectArchived,
    #[error("the subject token expires too soon to mint anything")]
    ExpiresTooSoon,
}

impl Service {
    pub async fn exchange_token(
        &self,
        req: ExchangeRequest<'_>,
    ) -> ServiceResult<Result<IssuedToken, ExchangeFailure>> {
        use ExchangeFailure as F;
        let Some(provider) = self.store.provider_by_id(req.provider_id).await? else {
            return Ok(Err(F::UnknownProvider));
        };
        if !provider.enabled {
            return Ok(Err(F::ProviderDisabled));
        }
        let now = self.clock.now().div_euclid(1000);
        let verified = match self.verify_subject(&provider, req.subject_token, now).await {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        let org = &provider.organization_id;
        let Some(rule) = self
            .matching_rule(&provider, req.service_account_id, &verified.claims)
            .await?
        else {
            return Ok(Err(F::NoMatchingRule));
        };
        let Some(account) = self
            .store
            .service_account(org, req.service_account_id)
            .await?
        else {
            return Ok(Err(F::AccountGone));
        };
        match self.store.project(org, &rule.project_id).await? {
            Some(p) if !p.is_archived() && account.project_id.as_ref() == Some(&p.id) => {}
            _ => return Ok(Err(F::ProjectArchived)),
        }
        let settings = &self.tokens.settings;
        // Never outlives the token it was exchanged for.
        let exp = (now + settings.ttl_seconds).min(verified.expires_at);
        if exp <= now {
            return Ok(Err(F::ExpiresTooSoon));
        }
        let claims = Claims {
            iss: settings.issuer.clone(),
            sub: account.id.as_str().to_owned(),
            aud: settings.audience.clone(),
            exp,
            iat: now,
            jti: Id::generate()?.as_str().to_owned(),
            org: org.as_str().to_owned(),
            cid: String::new(),
            project: Some(rule.project_id.as_str().to_owned()),
            fr: Some(rule.id.as_str().to_owned()),
            idp: Some(provider.id.as_str().to_owned()),
            scope: match &rule.permissions {
                Permissions::ServiceAccountDefault => None,
                Permissions::Restricted { scopes } => Some(scopes.join(" ")),
            },
        };
        let access_token = self.sign_claims(&claims).await?;
        Ok(Ok(IssuedToken {
            access_token,
            expires_in: exp - now,
            claims,
        }))
    }

    /// The client-credentials grant of a Keycard credential of workload identity federation
    /// (RFC 7523 `client_assertion`): the assertion is a token of the credential's provider
    /// whose `sub` is the credential's subject. The access token is the client-credentials
    /// one, also naming the provider and never outliving the assertion.
    pub async fn issue_token_with_assertion(
        &self,
        client_id: &str,
        assertion: &str,
    ) -> ServiceResult<Result<IssuedToken, ClientFailure>> {
        let issued = self.assertion_grant(client_id, assertion).await?;
        self.metrics.token_granted(issued.as_ref().err().copied());
        Ok(issued)
    }

    async fn assertion_grant(
        &self,
        client_id: &str,
        assertion: &str,
    ) -> ServiceResult<Result<IssuedToken, ClientFailure>> {
        use ClientFailure as C;
        let Some(credential) = self.credential_of_client(client_id).await? else {
            return Ok(Err(C::UnknownClient));
        };
        let Some(federation) = &credential.federation else {
            return Ok(Err(C::BadAssertion));
        };
        let org = &credential.organization_id;
        let provider = match self.store.provider(org, &federation.provider_id).await? {
            Some(p) if p.enabled => p,
            _ => return Ok(Err(C::BadAssertion)),
        };
        let now = self.clock.now().div_euclid(1000);
        let verified = match self.verify_subject(&provider, assertion, now).await {
            Ok(v) if v.subject == federation.subject => v,
            Ok(_) => {
                tracing::info!("client assertion refused: another subject");
                return Ok(Err(C::BadAssertion));
            }
            Err(why) => {
                tracing::info!(reason = %why, "client assertion refused");
                return Ok(Err(C::BadAssertion));
            }
        };
        if verified.expires_at <= now {
            return Ok(Err(C::BadAssertion));
        }
        let Some(account) = self
            .store
            .service_account(org, &credential.service_account_id)
            .await?
        else {
            return Ok(Err(C::AccountGone));
        };
        let issued = self
            .mint_for_credential(
                &credential,
                &account,
                Some((&provider.id, verified.expires_at)),
            )
            .await?;
        Ok(Ok(issued))
    }

    /// The subject token checked against the provider's keys, refetched once if it names a
    /// key the cached set lacks (at most once a minute per provider, however many tokens ask).
    async fn verify_subject(
        &self,
        provider: &Provider,
        token: &str,
        now: i64,
    ) -> Result<subject_token::VerifiedSubject, ExchangeFailure> {
        use ExchangeFailure as F;
        let discovery_url: String;
        let source = match &provider.verification {
            Verification::UploadedJwks { jwks } => KeySource::Uploaded(jwks),
            Verification::Discovery { .. } => {
                discovery_url = provider
                    .verification
                    .discovery_url(&provider.issuer)
                    .unwrap_or_default();
                KeySource::Discovery {
                    discovery_url: &discovery_url,
                    issuer: &provider.issuer,
                }
            }
        };
        // The header first: a malformed token or a refused `alg` costs no key set.
        let (kid, _) = subject_token::key_id(token).map_err(F::SubjectToken)?;
        let mut keys = self
            .jwks
            .keys(&provider.id, source)
            .await
            .map_err(F::KeySet)?;
        if keys.find(&kid).is_none() {
            keys = match self.jwks.refetch(&provider.id, source).await {
                Ok(keys) => keys,
                // Fetched a moment ago: the kid is unknown, not the keys stale.
                Err(JwksError::RefetchTooSoon) => keys,
                Err(e) => return Err(F::KeySet(e)),
            };
        }
        let expect = Expectations {
            issuer: &provider.issuer,
            audience: &provider.audience,
            now,
        };
        subject_token::verify(token, &keys, &expect).map_err(F::SubjectToken)
    }

    /// The first enabled rule of the provider for this account whose matchers all hold.
    async fn matching_rule(
        &self,
        provider: &Provider,
        account: &Id,
        claims: &serde_json::Value,
    ) -> ServiceResult<Option<FederationRule>> {
        let attributes = provider.attributes(claims);
        let page = PageRequest {
            limit: MAX_LIMIT,
            after: None,
            descending: false,
        };
        // At most MAX_RULES_PER_PROVIDER (50) rules exist, so one page holds them all.
        let rules = self
            .store
            .list_rules(
                &provider.organization_id,
                &provider.id,
                Some(account),
                &page,
            )
            .await?;
        Ok(rules
            .items
            .into_iter()
            .find(|r| r.enabled && r.matches(claims, &attributes)))
    }

    /// For a token that federation vouched for: its provider (and, from an exchange, its rule)
    /// still exist and are enabled.
    pub(crate) async fn federation_still_allows(
        &self,
        org: &Id,
        claims: &Claims,
    ) -> ServiceResult<Result<(), TokenFailure>> {
        let Some(provider) = claims.idp.as_deref().and_then(Id::parse) else {
            return Ok(Err(TokenFailure::Malformed));
        };
        // Minted by an exchange: its rule too. (A Keycard credential's token names no rule;
        // the credential itself was checked.)
        if let Some(rule) = &claims.fr {
            let Some(rule) = Id::parse(rule) else {
                return Ok(Err(TokenFailure::Malformed));
            };
            let rule_ok = self
                .store
                .rule(org, &provider, &rule)
                .await?
                .is_some_and(|r| r.enabled);
            if !rule_ok {
                return Ok(Err(TokenFailure::FederationRevoked));
            }
        }
        let provider_ok = self
            .store
            .provider(org, &provider)
            .await?
            .is_some_and(|p| p.enabled);
        Ok(if provider_ok {
            Ok(())
        } else {
            Err(TokenFailure::FederationRevoked)
        })
    }
}

//! "Is this bearer an API key or an access token, and who is it?", answered once for every
//! dialect: the gateway check and `/v1/keys/verify` of the OpenAI dialect and the callers of
//! the Keycard dialect all ask [`Service::identify`], saying which keys they accept.

use crate::domain::ids::Id;
use crate::domain::jwt;

use super::permissions::Access;
use super::verification::{PendingKey, Verdict};
use super::{Principal, Service, ServiceResult, TokenIdentity};

/// Which API keys a caller accepts besides access tokens.
#[derive(Debug, Clone, Copy)]
pub enum Accepting<'a> {
    /// Gateways (`/v1/auth/check`): service accounts' keys, of any organization.
    ServiceKeys,
    /// `/v1/keys/verify`: service accounts' keys and access tokens of organization `org`;
    /// another organization's are unknown, decided before their use is noted or their state
    /// told.
    ServiceKeysOf(&'a Id),
    /// The management API: admin keys (refused as [`super::ServiceError::Unauthenticated`]).
    AdminKeys,
}

/// Who a bearer is. The admin and token identities are boxed: the gateway's cached verdict
/// is the hot path, and a small enum is cheaper to return through the futures.
#[derive(Debug)]
pub enum Bearer {
    /// A service account's API key, judged: valid, or why not.
    ServiceKey(Verdict),
    /// A valid admin key, as the organization it acts for.
    Admin(Box<Principal>),
    /// A valid access token and the service account it stands for now.
    Token(Box<TokenIdentity>),
    /// An access token that did not verify (signature, issuer, audience, expiry, credential or
    /// account gone, or another organization's).
    InvalidToken,
}

impl TokenIdentity {
    /// The service account acting through this token, in its organization.
    pub fn principal(&self) -> Principal {
        Principal {
            organization_id: self.account.organization_id.clone(),
            access: Access::ServiceAccount(self.account.id.clone()),
            origin: Default::default(),
        }
    }
}

/// What [`Service::identify_from_memory`] could not answer: an access token (`None`), or a
/// key that is not in the cache.
pub struct Unresolved(Option<PendingKey>);

impl Service {
    /// [`Self::identify`] for gateways (`Accepting::ServiceKeys`) when memory alone answers
    /// (a cached, known-unknown or malformed key), without building a future: the gateway
    /// check's hot path. Anything else is finished by [`Self::identify_unresolved`].
    pub fn identify_from_memory(&self, presented: &str) -> Result<Bearer, Unresolved> {
        if jwt::looks_like_jwt(presented) {
            return Err(Unresolved(None));
        }
        self.verify_key_from_memory(presented)
            .map(Bearer::ServiceKey)
            .map_err(|pending| Unresolved(Some(pending)))
    }

    /// Finishes what [`Self::identify_from_memory`] left, without repeating its work.
    pub async fn identify_unresolved(
        &self,
        presented: &str,
        unresolved: Unresolved,
    ) -> ServiceResult<Bearer> {
        match unresolved.0 {
            Some(pending) => Ok(Bearer::ServiceKey(
                Box::pin(self.verify_pending(pending)).await?,
            )),
            None => self.identify(presented, Accepting::ServiceKeys).await,
        }
    }

    /// Tells an access token (a JWT) from an API key and identifies it. Store trouble is an
    /// error, never a verdict. The slow paths are boxed so the gateway's cached verification,
    /// which never leaves memory, does not carry their large futures around.
    pub async fn identify(
        &self,
        presented: &str,
        accepting: Accepting<'_>,
    ) -> ServiceResult<Bearer> {
        if jwt::looks_like_jwt(presented) {
            let token = match accepting {
                Accepting::ServiceKeysOf(org) => {
                    Box::pin(self.verify_token_in(org, presented)).await?
                }
                Accepting::ServiceKeys | Accepting::AdminKeys => {
                    Box::pin(self.verify_token(presented)).await?
                }
            };
            return Ok(token.map_or(Bearer::InvalidToken, |t| Bearer::Token(Box::new(t))));
        }
        Ok(match accepting {
            Accepting::ServiceKeys => {
                Bearer::ServiceKey(match self.verify_key_from_memory(presented) {
                    Ok(verdict) => verdict,
                    Err(pending) => Box::pin(self.verify_pending(pending)).await?,
                })
            }
            Accepting::ServiceKeysOf(org) => {
                Bearer::ServiceKey(Box::pin(self.verify_key_in(org, presented)).await?)
            }
            Accepting::AdminKeys => Bearer::Admin(Box::new(
                Box::pin(self.authenticate_admin(Some(presented))).await?,
            )),
        })
    }
}

//! Access tokens for service accounts (OAuth 2.0 client credentials, the Keycard dialect):
//! issuing them, checking them, the signing keys behind them and the server-wide secret of
//! pagination cursors.
//!
//! Signing keys live in the store so every node signs with, and publishes, the same keys. A
//! node loads them on first use and again every minute (and when a token names a key it has
//! not seen, at most once a second however many such tokens arrive: a forged `kid` cannot
//! turn into a store read per request), so a rotation on one node reaches the others within
//! a minute; until then they keep signing with the previous key, which stays valid and
//! published.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

use crate::domain::client_secret;
use crate::domain::cursor::CursorSigner;
use crate::domain::ids::Id;
use crate::domain::jwt::{self, Claims};
use crate::domain::model::{Credential, ServiceAccount, SigningKey};
pub use crate::domain::outcomes::ClientFailure;
use crate::domain::outcomes::TokenFailure;
use crate::domain::random;
use crate::domain::time::Millis;

use super::{Service, ServiceError, ServiceResult};

/// How long a node trusts its copy of the signing keys.
const KEYRING_REFRESH: Millis = 60_000;
/// At most one store read per this interval for tokens naming a key this node does not hold.
const UNKNOWN_KID_RELOAD_INTERVAL: Millis = 1_000;

/// How fresh the signing keys must be for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Loaded within [`KEYRING_REFRESH`].
    IfStale,
    /// Loaded after the caller asked, because a token names a key not in memory; rate-limited.
    UnknownKid,
    /// Loaded after the caller asked (this node just rotated).
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss` of every token and the issuer of the authorization-server metadata.
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            audience: "http://127.0.0.1:8080".into(),
            ttl_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub claims: Claims,
}

/// A verified access token and what it stands for now.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    pub claims: Claims,
    pub account: ServiceAccount,
}

#[derive(Default)]
pub(super) struct TokenState {
    pub(super) settings: TokenSettings,
    keyring: RwLock<Keyring>,
    /// Held while the keys are read from the store, so concurrent callers share one read.
    reload: Mutex<()>,
    cursor: OnceCell<CursorSigner>,
}

#[derive(Default)]
struct Keyring {
    keys: Arc<Vec<SigningKey>>,
    loaded_at: Option<Millis>,
}

impl TokenState {
    pub(super) fn new(settings: TokenSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }
}

fn new_signing_key(now: Millis) -> ServiceResult<SigningKey> {
    let (seed, public) = jwt::generate_keypair()?;
    Ok(SigningKey {
        kid: Id::generate()?.as_str().to_owned(),
        algorithm: jwt::ALGORITHM.into(),
        private_key: seed.to_vec(),
        public_key: public.to_vec(),
        created_at: now,
        retired_at: None,
    })
}

impl Service {
    pub fn token_settings(&self) -> &TokenSettings {
        &self.tokens.settings
    }

    /// The signer of pagination cursors; its secret is created once per installation.
    pub async fn cursor_signer(&self) -> ServiceResult<&CursorSigner> {
        self.tokens
            .cursor
            .get_or_try_init(|| async {
                let mut candidate = [0u8; 32];
                random::fill(&mut candidate)?;
                let secret = self.store.server_secret("cursor_hmac", &candidate).await?;
                Ok::<_, ServiceError>(CursorSigner::new(secret))
            })
            .await
    }

    /// The signing keys, from memory when fresh enough for `refresh`, else from the store
    /// (creating the first one on a new installation). One reload at a time per node: callers
    /// that queued behind a reload which started after they asked share its result.
    async fn keyring(&self, refresh: Refresh) -> ServiceResult<Arc<Vec<SigningKey>>> {
        let asked_at = self.clock.now();
        if refresh == Refresh::IfStale {
            if let Some(keys) = self.ring_loaded_since(asked_at - KEYRING_REFRESH) {
                return Ok(keys);
            }
        }
        let _turn = self.tokens.reload.lock().await;
        let since = match refresh {
            Refresh::IfStale => self.clock.now() - KEYRING_REFRESH,
            Refresh::UnknownKid | Refresh::Now => asked_at,
        };
        if let Some(keys) = self.ring_loaded_since(since) {
            return Ok(keys);
        }
        if refresh == Refresh::UnknownKid {
            // Anyone can make up a `kid`: however many such tokens arrive, this node reads
            // the store for them at most once per interval. A key rotated on another node a
            // moment ago is still found, at most one interval late.
            let last = self.ring().loaded_at;
            if let Some(wait) = last.map(|at| at + UNKNOWN_KID_RELOAD_INTERVAL - self.clock.now()) {
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
                }
            }
        }
        let started = self.clock.now();
        let mut keys = self.store.signing_keys().await?;
        if !keys.iter().any(|k| k.retired_at.is_none()) {
            // Several nodes may race here; the store keeps only the first insert.
            // Not audited: a first key is part of installing keyplane, not an operator's act.
            self.store
                .insert_signing_key(&new_signing_key(started)?, None, &[])
                .await?;
            keys = self.store.signing_keys().await?;
        }
        let keys = Arc::new(keys);
        let mut ring = self
            .tokens
            .keyring
            .write()
            .unwrap_or_else(|e| e.into_inner());
        ring.keys = keys.clone();
        ring.loaded_at = Some(started);
        Ok(keys)
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        // A poisoned lock only means a panic elsewhere; the ring itself is always whole.
        self.tokens
            .keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The keys in memory, if they were loaded at or after `since`.
    fn ring_loaded_since(&self, since: Millis) -> Option<Arc<Vec<SigningKey>>> {
        let ring = self.ring();
        (ring.loaded_at.is_some_and(|at| at >= since) && !ring.keys.is_empty())
            .then(|| ring.keys.clone())
    }

    /// Replaces the signing key: the new one signs from now on, the old ones stay published
    /// until every token they signed has expired. Returns the new key's `kid`.
    pub async fn rotate_signing_key(&self) -> ServiceResult<String> {
        let now = self.clock.now();
        let key = new_signing_key(now)?;
        let event = self.audit_event(
            &super::audit::Author::system(None),
            crate::domain::audit::EventType::SigningKeyRotated,
            super::audit::Subject::SigningKey(&key.kid),
            crate::domain::audit::data(serde_json::json!({ "algorithm": key.algorithm })),
            now,
        )?;
        self.store
            .insert_signing_key(&key, Some(now), &[event])
            .await?;
        self.keyring(Refresh::Now).await?;
        Ok(key.kid)
    }

    /// The public keys a resource server needs: every unretired key, and retired ones while
    /// tokens they signed may still be valid.
    pub async fn published_keys(&self) -> ServiceResult<Vec<serde_json::Value>> {
        let now = self.clock.now();
        let horizon = self.tokens.settings.ttl_seconds * 1000;
        Ok(self
            .keyring(Refresh::IfStale)
            .await?
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| now - r < horizon))
            .map(|k| jwt::public_jwk(&k.kid, &k.public_key))
            .collect())
    }

    /// The client-credentials grant: a token for the credential's service account.
    pub async fn issue_token(
        &self,
        client_id: &str,
        secret: &str,
    ) -> ServiceResult<Result<IssuedToken, ClientFailure>> {
        let issued = self.grant(client_id, secret).await?;
        self.metrics.token_granted(issued.as_ref().err().copied());
        Ok(issued)
    }

    async fn grant(
        &self,
        client_id: &str,
        secret: &str,
    ) -> ServiceResult<Result<IssuedToken, ClientFailure>> {
        let Some(credential) = self.credential_of_client(client_id).await? else {
            return Ok(Err(ClientFailure::UnknownClient));
        };
        // A federated credential's secret exists nowhere; its hash matches nothing anyway.
        if credential.federation.is_some() {
            return Ok(Err(ClientFailure::BadAssertion));
        }
        if !client_secret::secret_matches(secret, &credential.secret_hash) {
            return Ok(Err(ClientFailure::WrongSecret));
        }
        let Some(account) = self
            .store
            .service_account(&credential.organization_id, &credential.service_account_id)
            .await?
        else {
            return Ok(Err(ClientFailure::AccountGone));
        };
        Ok(Ok(self
            .mint_for_credential(&credential, &account, None)
            .await?))
    }

    /// The live credential with this client id; junk that cannot be one of ours is not looked
    /// up. Both grants (secret and assertion) start here.
    pub(super) async fn credential_of_client(
        &self,
        client_id: &str,
    ) -> ServiceResult<Option<Credential>> {
        if !client_secret::plausible_client_id(client_id) {
            return Ok(None);
        }
        Ok(self.store.credential_by_client_id(client_id).await?)
    }

    /// An access token for the credential's account. `federated`: the provider that vouched
    /// (the token names it, so disabling it stops the token) and the subject token's `exp`,
    /// which the access token must not outlive.
    pub(super) async fn mint_for_credential(
        &self,
        credential: &Credential,
        account: &ServiceAccount,
        federated: Option<(&Id, i64)>,
    ) -> ServiceResult<IssuedToken> {
        let now = self.clock.now();
        let settings = &self.tokens.settings;
        let iat = now.div_euclid(1000);
        let exp = federated.map_or(iat + settings.ttl_seconds, |(_, not_after)| {
            (iat + settings.ttl_seconds).min(not_after)
        });
        let claims = Claims {
            iss: settings.issuer.clone(),
            sub: account.id.as_str().to_owned(),
            aud: settings.audience.clone(),
            exp,
            iat,
            jti: Id::generate()?.as_str().to_owned(),
            org: account.organization_id.as_str().to_owned(),
            cid: credential.id.as_str().to_owned(),
            project: account.project_id.as_ref().map(|p| p.as_str().to_owned()),
            fr: None,
            idp: federated.map(|(p, _)| p.as_str().to_owned()),
            scope: None,
        };
        let access_token = self.sign_claims(&claims).await?;
        self.credential_usage.touch(&credential.id, now);
        Ok(IssuedToken {
            access_token,
            expires_in: exp - iat,
            claims,
        })
    }

    /// `claims` signed by the newest unretired key (nodes that raced at first start agree on
    /// it).
    pub(super) async fn sign_claims(&self, claims: &Claims) -> ServiceResult<String> {
        let keys = self.keyring(Refresh::IfStale).await?;
        let Some(key) = keys.iter().rev().find(|k| k.retired_at.is_none()) else {
            return Err(ServiceError::Internal(anyhow::anyhow!("no signing key")));
        };
        jwt::sign(claims, &key.kid, &key.private_key).map_err(|e| ServiceError::Internal(e.into()))
    }

    /// Checks an access token: signature by one of our keys, issuer, audience, expiry, and that
    /// its credential and service account still exist (so deleting either stops the token at
    /// once, on every node: this reads the store rather than a cache). `None` when invalid.
    pub(super) async fn verify_token(&self, token: &str) -> ServiceResult<Option<TokenIdentity>> {
        let checked = self.check_token(token).await?;
        self.metrics.token_checked(checked.as_ref().err().copied());
        Ok(checked.ok())
    }

    /// [`Self::verify_token`] on behalf of organization `org` (`/v1/keys/verify`): another
    /// organization's token is `None`, like an invalid one.
    pub(super) async fn verify_token_in(
        &self,
        org: &Id,
        token: &str,
    ) -> ServiceResult<Option<TokenIdentity>> {
        Ok(self
            .verify_token(token)
            .await?
            .filter(|t| &t.account.organization_id == org))
    }

    async fn check_token(&self, token: &str) -> ServiceResult<Result<TokenIdentity, TokenFailure>> {
        use TokenFailure as F;
        let Ok(kid) = jwt::key_id(token) else {
            return Ok(Err(F::Malformed));
        };
        let mut keys = self.keyring(Refresh::IfStale).await?;
        if !keys.iter().any(|k| k.kid == kid) {
            // Perhaps rotated on another node a moment ago (or forged).
            keys = self.keyring(Refresh::UnknownKid).await?;
        }
        let Some(key) = keys.iter().find(|k| k.kid == kid) else {
            return Ok(Err(F::UnknownSigningKey));
        };
        let Ok(claims) = jwt::verify(token, &key.public_key) else {
            return Ok(Err(F::BadSignature));
        };
        let settings = &self.tokens.settings;
        let now_s = self.clock.now().div_euclid(1000);
        if claims.iss != settings.issuer {
            return Ok(Err(F::WrongIssuer));
        }
        if claims.aud != settings.audience {
            return Ok(Err(F::WrongAudience));
        }
        if now_s >= claims.exp {
            return Ok(Err(F::Expired));
        }
        let (Some(org), Some(sub)) = (Id::parse(&claims.org), Id::parse(&claims.sub)) else {
            return Ok(Err(F::Malformed));
        };
        // Obtained with a client credential, or by workload identity federation: whichever
        // vouched for it must still exist (and, for federation, be enabled).
        if claims.fr.is_none() {
            let Some(cid) = Id::parse(&claims.cid) else {
                return Ok(Err(F::Malformed));
            };
            if self.store.credential(&org, &sub, &cid).await?.is_none() {
                return Ok(Err(F::CredentialDeleted));
            }
        }
        if claims.fr.is_some() || claims.idp.is_some() {
            if let Err(why) = self.federation_still_allows(&org, &claims).await? {
                return Ok(Err(why));
            }
        }
        let Some(account) = self.store.service_account(&org, &sub).await? else {
            return Ok(Err(F::AccountDeleted));
        };
        if let Some(project) = &account.project_id {
            match self.store.project(&org, project).await? {
                Some(p) if !p.is_archived() => {}
                _ => return Ok(Err(F::ProjectArchived)),
            }
        }
        Ok(Ok(TokenIdentity { claims, account }))
    }

    /// Writes the batched credential `last_used_at` updates (with the key usage flush).
    pub async fn flush_credential_usage(&self) -> ServiceResult<usize> {
        let batch = self.credential_usage.take(self.clock.now());
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.record_credential_usage(&batch).await {
            let n = batch.len();
            self.credential_usage.restore(batch);
            tracing::debug!(pending = n, "credential usage kept for the next flush");
            return Err(e.into());
        }
        Ok(batch.len())
    }
}

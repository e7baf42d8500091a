//! Admin keys: minting them and authenticating the callers of the admin API.

use std::sync::Arc;

use serde_json::json;

use crate::domain::audit::EventType;
use crate::domain::ids::{Id, Kind};
use crate::domain::keys::{self, KeyHash, KeyKind, PlainKey};
use crate::domain::limits::DisabledReason;
use crate::domain::model::{ApiKey, Organization};
use crate::domain::names;
use crate::domain::page::{Page, PageRequest};
use crate::store::{Change, StoreError};

use super::api_keys::expires_in;
use super::audit::{Author, Subject};
use super::key_cache::KeyContext;
use super::permissions::{Action, SCOPE_READ, SCOPE_USAGE, SCOPE_WRITE};
use super::{Access, IssuedKey, Principal, Service, ServiceError, ServiceResult};

/// Admin keys live at most a year, as in OpenAI's API.
pub const MAX_ADMIN_KEY_LIFETIME_SECONDS: i64 = 31_536_000;

/// The scopes a new admin key gets: both unless the caller asked for fewer. Only the two
/// admin scopes exist; `api.management.write` alone implies reading.
pub(super) fn admin_scopes(
    requested: Option<Vec<String>>,
) -> Result<Vec<String>, names::FieldError> {
    let Some(requested) = requested else {
        return Ok(vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()]);
    };
    if requested.is_empty() {
        return Err(names::FieldError::new(
            "scopes",
            format!("'scopes' must hold at least one of '{SCOPE_READ}', '{SCOPE_WRITE}'."),
        ));
    }
    if let Some(unknown) = requested
        .iter()
        .find(|s| *s != SCOPE_READ && *s != SCOPE_WRITE && *s != SCOPE_USAGE)
    {
        let shown: String = unknown.chars().take(64).collect();
        return Err(names::FieldError::new(
            "scopes",
            format!(
                "Unknown scope '{shown}': expected '{SCOPE_READ}', '{SCOPE_WRITE}' or '{SCOPE_USAGE}'."
            ),
        ));
    }
    let has = |scope: &str| requested.iter().any(|s| s == scope);
    if has(SCOPE_USAGE) && !has(SCOPE_WRITE) {
        // A gateway's key: alone, so it can do nothing but report. With read it would be a
        // combination no access level models; write implies usage anyway.
        if has(SCOPE_READ) {
            return Err(names::FieldError::new(
                "scopes",
                format!(
                    "'{SCOPE_USAGE}' is held alone (a gateway's key) or implied by '{SCOPE_WRITE}'."
                ),
            ));
        }
        return Ok(vec![SCOPE_USAGE.to_owned()]);
    }
    let mut out = vec![SCOPE_READ.to_owned()];
    if requested.iter().any(|s| s == SCOPE_WRITE) {
        out.push(SCOPE_WRITE.to_owned());
    }
    Ok(out)
}

/// Why a presented credential was refused. Dialects word it; none of them echoes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Wrong prefix, shape or checksum: rejected without any lookup.
    Malformed,
    /// A well-formed key of another kind (a service-account key on the admin API).
    WrongKind,
    Unknown,
    Revoked,
    Expired,
    /// Valid, but disabled by an operator.
    Disabled(DisabledReason),
    /// A console session cookie naming no live session (never issued, tampered, signed out).
    SessionUnknown,
    /// A console session past its idle or absolute end.
    SessionExpired,
}

impl Service {
    /// Builds (does not store) an admin key for `organization`.
    pub(super) fn mint_admin_key(
        &self,
        organization: &Id,
        name: &str,
        value: PlainKey,
        scopes: Vec<String>,
    ) -> ServiceResult<IssuedKey> {
        let key = ApiKey {
            id: Id::generate()?,
            organization_id: organization.clone(),
            kind: KeyKind::Admin,
            project_id: None,
            service_account_id: None,
            name: name.to_owned(),
            scopes,
            hash: value.hash(),
            redacted_value: value.redacted(),
            created_at: self.clock.now(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            allowed_ips: None,
            limits: Default::default(),
            disabled: None,
        };
        Ok(IssuedKey { key, value })
    }

    /// Resolves the bearer token of an admin API call to the organization it acts for.
    pub async fn authenticate_admin(&self, presented: Option<&str>) -> ServiceResult<Principal> {
        Ok(self.admin_key_presented(presented).await?.0)
    }

    /// [`Self::authenticate_admin`], with the key's context.
    pub(super) async fn admin_key_presented(
        &self,
        presented: Option<&str>,
    ) -> ServiceResult<(Principal, Arc<KeyContext>)> {
        let fail = |why| Err(ServiceError::Unauthenticated(why));
        let Some(presented) = presented else {
            return fail(AuthFailure::Missing);
        };
        match keys::parse(presented) {
            Ok(KeyKind::Admin) => {}
            Ok(_) => return fail(AuthFailure::WrongKind),
            Err(_) => return fail(AuthFailure::Malformed),
        }
        self.admin_key_by_hash(KeyHash::of(presented)).await
    }

    /// The admin key whose stored hash is `hash`, if it may act now: what a bearer admin key
    /// and a console session (which keeps its key's hash) both come to. Noted as used.
    pub(super) async fn admin_key_by_hash(
        &self,
        hash: KeyHash,
    ) -> ServiceResult<(Principal, Arc<KeyContext>)> {
        let fail = |why| Err(ServiceError::Unauthenticated(why));
        let Some(ctx) = self.key_context(hash).await? else {
            return fail(AuthFailure::Unknown);
        };
        let key = &ctx.key;
        if key.kind != KeyKind::Admin {
            return fail(AuthFailure::WrongKind);
        }
        let now = self.clock.now();
        if key.is_revoked_at(now) {
            return fail(AuthFailure::Revoked);
        }
        if key.is_expired_at(now) {
            return fail(AuthFailure::Expired);
        }
        if let Some(d) = key.disabled {
            return fail(AuthFailure::Disabled(d.reason));
        }
        self.note_use(&ctx, now);
        let principal = Principal {
            organization_id: key.organization_id.clone(),
            access: Access::of_admin_key(key),
            origin: Default::default(),
        };
        Ok((principal, ctx))
    }

    pub async fn organization(&self, who: &Principal) -> ServiceResult<Organization> {
        self.store
            .organization(&who.organization_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Kind::Organization, &who.organization_id))
    }

    pub async fn list_admin_keys(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> ServiceResult<Page<ApiKey>> {
        Ok(self
            .store
            .list_admin_keys(&who.organization_id, page)
            .await?)
    }

    /// An undeleted admin key of the caller's organization.
    pub async fn admin_key(&self, who: &Principal, id: &Id) -> ServiceResult<ApiKey> {
        match self.store.api_key(&who.organization_id, id).await? {
            Some(k) if k.kind == KeyKind::Admin && !k.is_deleted() => Ok(k),
            _ => Err(ServiceError::not_found(Kind::ApiKey, id)),
        }
    }

    pub async fn create_admin_key(
        &self,
        who: &Principal,
        name: &str,
        expires_in_seconds: Option<i64>,
        scopes: Option<Vec<String>>,
    ) -> ServiceResult<IssuedKey> {
        who.require(Action::Write)?;
        let scopes = admin_scopes(scopes)?;
        let name = names::name("name", name)?;
        let lifetime = expires_in(
            "expires_in_seconds",
            expires_in_seconds,
            MAX_ADMIN_KEY_LIFETIME_SECONDS,
        )?;
        let mut issued = self.mint_admin_key(
            &who.organization_id,
            &name,
            PlainKey::generate(KeyKind::Admin)?,
            scopes,
        )?;
        issued.key.expires_at = lifetime.map(|l| issued.key.created_at + l);
        let event = self.key_created_event(&Author::of(who), &issued.key)?;
        self.store.insert_api_key(&issued.key, &[event]).await?;
        self.keys_changed(Change::Created(issued.key.hash)).await;
        Ok(issued)
    }

    /// Deletes an admin key, unless it is the organization's last usable one.
    pub async fn delete_admin_key(&self, who: &Principal, id: &Id) -> ServiceResult<()> {
        who.require(Action::Write)?;
        let key = self.admin_key(who, id).await?;
        let now = self.clock.now();
        let event = self.audit_event(
            &Author::of(who),
            EventType::AdminApiKeyDeleted,
            Subject::Key(&key),
            json!({}),
            now,
        )?;
        match self
            .store
            .revoke_admin_key(&who.organization_id, id, now, &[event])
            .await
        {
            Ok(()) => {
                self.keys_changed(Change::Key(id.clone())).await;
                Ok(())
            }
            Err(StoreError::Conflict(_)) => match self.admin_key(who, id).await {
                Ok(_) => Err(ServiceError::LastAdminKey),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        }
    }
}

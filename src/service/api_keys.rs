//! Keys held by service accounts: minted at account creation and for rotation.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::{Id, Kind};
use crate::domain::keys::{KeyKind, PlainKey};
use crate::domain::limits::{self, KeyLimits};
use crate::domain::model::{ApiKey, OwnerAccess, ServiceAccount};
use crate::domain::names::{self, FieldError};
use crate::domain::page::{Page, PageRequest};
use crate::store::Change;

use super::audit::{Author, Subject};
use super::permissions::Action;
use super::{IssuedKey, Principal, Service, ServiceError, ServiceResult};

pub const DEFAULT_KEY_NAME: &str = "Secret Key";
/// Ten years: long enough for any rotation policy, short enough to never overflow.
pub const MAX_KEY_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;
const MAX_SCOPES: usize = 100;
const MAX_SCOPE_CHARS: usize = 128;

/// Longest grace period a deleted key may keep working.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// Changes to a key. `expires_in_seconds`: `None` unchanged, `Some(None)` never expires,
/// `Some(Some(s))` expires `s` seconds from now.
/// The admission fields follow the same rule: `None` unchanged, `Some(None)` cleared.
#[derive(Debug, Clone, Default)]
pub struct KeyChanges {
    pub scopes: Option<Vec<String>>,
    pub expires_in_seconds: Option<Option<i64>>,
    pub allowed_ips: Option<Option<Vec<String>>>,
    pub max_requests_per_1_minute: Option<Option<i64>>,
    pub max_requests_per_1_day: Option<Option<i64>>,
    pub max_tokens_per_1_minute: Option<Option<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_in_seconds: Option<i64>,
    pub allowed_ips: Option<Vec<String>>,
    pub limits: KeyLimits,
}

/// A key's limits as given, each checked.
fn key_limits(raw: KeyLimits) -> Result<KeyLimits, FieldError> {
    let check = |field, v: Option<i64>| v.map(|v| limits::limit(field, v)).transpose();
    Ok(KeyLimits {
        max_requests_per_1_minute: check(
            "max_requests_per_1_minute",
            raw.max_requests_per_1_minute,
        )?,
        max_requests_per_1_day: check("max_requests_per_1_day", raw.max_requests_per_1_day)?,
        max_tokens_per_1_minute: check("max_tokens_per_1_minute", raw.max_tokens_per_1_minute)?,
    })
}

pub(super) fn expires_in(
    field: &'static str,
    seconds: Option<i64>,
    max: i64,
) -> Result<Option<i64>, FieldError> {
    match seconds {
        None => Ok(None),
        Some(s) if (1..=max).contains(&s) => Ok(Some(s * 1000)),
        Some(_) => Err(FieldError::new(
            field,
            format!("'{field}' must be between 1 and {max}."),
        )),
    }
}

pub(super) fn scopes(raw: Option<Vec<String>>) -> Result<Vec<String>, FieldError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_SCOPES {
        return Err(FieldError::new(
            "scopes",
            format!("'scopes' may hold at most {MAX_SCOPES} entries."),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for scope in raw {
        let scope = names::text("scopes", &scope, 1, MAX_SCOPE_CHARS)?;
        if scope.contains(char::is_whitespace) {
            return Err(FieldError::new(
                "scopes",
                "a scope must not contain whitespace.",
            ));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

impl Service {
    /// Builds (does not store) a new key for `account`.
    pub(super) fn mint_service_account_key(
        &self,
        account: &ServiceAccount,
        spec: NewKey,
    ) -> ServiceResult<IssuedKey> {
        let name = match spec.name.as_deref() {
            Some(n) => names::name("name", n)?,
            None => DEFAULT_KEY_NAME.to_owned(),
        };
        let lifetime = expires_in(
            "expires_in_seconds",
            spec.expires_in_seconds,
            MAX_KEY_LIFETIME_SECONDS,
        )?;
        let scopes = scopes(spec.scopes)?;
        let allowed_ips = limits::allowlist("allowed_ips", spec.allowed_ips)?;
        let key_limits = key_limits(spec.limits)?;
        let value = PlainKey::generate(KeyKind::ServiceAccount)?;
        let now = self.clock.now();
        let key = ApiKey {
            id: Id::generate()?,
            organization_id: account.organization_id.clone(),
            kind: KeyKind::ServiceAccount,
            project_id: account.project_id.clone(),
            service_account_id: Some(account.id.clone()),
            name,
            scopes,
            hash: value.hash(),
            redacted_value: value.redacted(),
            created_at: now,
            expires_at: lifetime.map(|l| now + l),
            last_used_at: None,
            revoked_at: None,
            allowed_ips,
            limits: key_limits,
            disabled: None,
        };
        Ok(IssuedKey { key, value })
    }

    /// An additional key for an existing account (rotation: add, switch, delete the old one).
    pub async fn create_service_account_key(
        &self,
        who: &Principal,
        project_id: &Id,
        account_id: &Id,
        spec: NewKey,
    ) -> ServiceResult<IssuedKey> {
        who.require(Action::Write)?;
        self.active_project(who, project_id).await?;
        let account = self
            .project_service_account(who, project_id, account_id)
            .await?;
        let issued = self.mint_service_account_key(&account, spec)?;
        let event = self.key_created_event(&Author::of(who), &issued.key)?;
        if let Err(err) = self.store.insert_api_key(&issued.key, &[event]).await {
            return Err(self
                .explain_account_conflict(who, project_id, account_id, err)
                .await);
        }
        self.keys_changed(Change::Created(issued.key.hash)).await;
        Ok(issued)
    }
}

impl Service {
    /// A service-account key of this project that has not been deleted, with its owner.
    pub async fn project_api_key(
        &self,
        who: &Principal,
        project_id: &Id,
        key_id: &Id,
    ) -> ServiceResult<(ApiKey, ServiceAccount)> {
        self.project(who, project_id).await?;
        let not_found = || ServiceError::not_found(Kind::ApiKey, key_id);
        let key = match self.store.api_key(&who.organization_id, key_id).await? {
            Some(k)
                if k.kind == KeyKind::ServiceAccount
                    && k.project_id.as_ref() == Some(project_id)
                    && !k.is_deleted() =>
            {
                k
            }
            _ => return Err(not_found()),
        };
        let owner_id = key.service_account_id.clone().ok_or_else(not_found)?;
        let owner = self
            .store
            .service_account(&who.organization_id, &owner_id)
            .await?
            .ok_or_else(not_found)?;
        Ok((key, owner))
    }

    pub async fn list_project_api_keys(
        &self,
        who: &Principal,
        project_id: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> ServiceResult<Page<(ApiKey, ServiceAccount)>> {
        self.project(who, project_id).await?;
        Ok(self
            .store
            .list_project_api_keys(&who.organization_id, project_id, access, page)
            .await?)
    }

    /// New scopes, expiry, allowlist or limits. Shortening the expiry to the past stops the key at once.
    pub async fn update_project_api_key(
        &self,
        who: &Principal,
        project_id: &Id,
        key_id: &Id,
        changes: KeyChanges,
    ) -> ServiceResult<(ApiKey, ServiceAccount)> {
        who.require(Action::Write)?;
        let new_scopes = changes.scopes.map(|s| scopes(Some(s))).transpose()?;
        let new_expiry = match changes.expires_in_seconds {
            None => None,
            Some(None) => Some(None),
            Some(seconds) => Some(expires_in(
                "expires_in_seconds",
                seconds,
                MAX_KEY_LIFETIME_SECONDS,
            )?),
        };
        let new_ips = changes
            .allowed_ips
            .map(|ips| limits::allowlist("allowed_ips", ips))
            .transpose()?;
        let requested_limits = KeyLimits {
            max_requests_per_1_minute: changes.max_requests_per_1_minute.flatten(),
            max_requests_per_1_day: changes.max_requests_per_1_day.flatten(),
            max_tokens_per_1_minute: changes.max_tokens_per_1_minute.flatten(),
        };
        key_limits(requested_limits)?;
        self.active_project(who, project_id).await?;
        let (mut key, owner) = self.project_api_key(who, project_id, key_id).await?;
        let now = self.clock.now();
        let mut requested = serde_json::Map::new();
        if let Some(ips) = new_ips {
            requested.insert(
                "allowed_ips".into(),
                json!(ips.as_deref().map(limits::render_allowlist)),
            );
            key.allowed_ips = ips;
        }
        let limit_changes = [
            (
                "max_requests_per_1_minute",
                changes.max_requests_per_1_minute,
                &mut key.limits.max_requests_per_1_minute,
            ),
            (
                "max_requests_per_1_day",
                changes.max_requests_per_1_day,
                &mut key.limits.max_requests_per_1_day,
            ),
            (
                "max_tokens_per_1_minute",
                changes.max_tokens_per_1_minute,
                &mut key.limits.max_tokens_per_1_minute,
            ),
        ];
        for (field, change, slot) in limit_changes {
            if let Some(value) = change {
                *slot = value;
                requested.insert(field.into(), json!(value));
            }
        }
        if let Some(s) = new_scopes {
            requested.insert("scopes".into(), json!(s));
            key.scopes = s;
        }
        if let Some(lifetime) = new_expiry {
            key.expires_at = lifetime.map(|l| now + l);
            requested.insert(
                "expires_at".into(),
                json!(key.expires_at.map(crate::domain::time::to_unix_seconds)),
            );
        }
        let event = self.audit_event(
            &Author::of(who),
            EventType::ApiKeyUpdated,
            Subject::Key(&key),
            audit::changes(requested.into()),
            now,
        )?;
        match self.store.update_api_key(&key, &[event]).await {
            Ok(()) => {
                self.keys_changed(Change::Key(key.id.clone())).await;
                Ok((key, owner))
            }
            Err(crate::store::StoreError::Conflict(_)) => {
                Err(ServiceError::not_found(Kind::ApiKey, key_id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes (revokes) one key of a service account. With a grace period the key keeps
    /// working that long (never past its own expiry): rotation without a gap.
    pub async fn delete_project_api_key(
        &self,
        who: &Principal,
        project_id: &Id,
        key_id: &Id,
        grace_seconds: Option<i64>,
    ) -> ServiceResult<()> {
        who.require(Action::Write)?;
        let grace = match grace_seconds {
            None | Some(0) => 0,
            Some(g) if (1..=MAX_GRACE_SECONDS).contains(&g) => g * 1000,
            Some(_) => {
                return Err(FieldError::new(
                    "grace_period_seconds",
                    format!("'grace_period_seconds' must be between 0 and {MAX_GRACE_SECONDS}."),
                )
                .into())
            }
        };
        let (key, _) = self.project_api_key(who, project_id, key_id).await?;
        let now = self.clock.now();
        let effective = match key.expires_at {
            Some(exp) => (now + grace).min(exp.max(now)),
            None => now + grace,
        };
        let event = self.audit_event(
            &Author::of(who),
            EventType::ApiKeyDeleted,
            Subject::Key(&key),
            json!({ "effective_at": crate::domain::time::to_unix_seconds(effective) }),
            now,
        )?;
        match self
            .store
            .revoke_api_key(&who.organization_id, key_id, effective, &[event])
            .await
        {
            Ok(()) => {
                self.keys_changed(Change::Key(key.id)).await;
                Ok(())
            }
            Err(crate::store::StoreError::Conflict(_)) => {
                Err(ServiceError::not_found(Kind::ApiKey, key_id))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_trimmed_deduplicated_and_bounded() {
        let s = scopes(Some(vec![" a.read ".into(), "a.read".into(), "b".into()])).unwrap();
        assert_eq!(s, vec!["a.read", "b"]);
        assert!(scopes(Some(vec!["".into()])).is_err());
        assert!(scopes(Some(vec!["has space".into()])).is_err());
        assert!(scopes(Some(vec!["x".into(); 101])).is_err());
        assert!(scopes(None).unwrap().is_empty());
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(expires_in("e", Some(1), 10).unwrap(), Some(1000));
        assert!(expires_in("e", Some(0), 10).is_err());
        assert!(expires_in("e", Some(-5), 10).is_err());
        assert!(expires_in("e", Some(11), 10).is_err());
        assert_eq!(expires_in("e", None, 10).unwrap(), None);
    }
}

//! Keys held by service accounts: minted at account creation and for rotation.

use crate::domain::ids::Id;
use crate::domain::keys::{KeyKind, PlainKey};
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::domain::names::{self, FieldError};

use super::{IssuedKey, Principal, Service, ServiceResult};

pub const DEFAULT_KEY_NAME: &str = "Secret Key";
/// Ten years: long enough for any rotation policy, short enough to never overflow.
pub const MAX_KEY_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;
const MAX_SCOPES: usize = 100;
const MAX_SCOPE_CHARS: usize = 128;

#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_in_seconds: Option<i64>,
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

fn scopes(raw: Option<Vec<String>>) -> Result<Vec<String>, FieldError> {
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
        self.active_project(who, project_id).await?;
        let account = self
            .project_service_account(who, project_id, account_id)
            .await?;
        let issued = self.mint_service_account_key(&account, spec)?;
        if let Err(err) = self.store.insert_api_key(&issued.key).await {
            return Err(self
                .explain_account_conflict(who, project_id, account_id, err)
                .await);
        }
        Ok(issued)
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

//! What a caller may do, derived from who it is. Enforced here, in the service layer, for every
//! dialect; the Keycard dialect also shows it (`expand=permissions`).

use std::collections::BTreeMap;

use crate::domain::ids::Id;

use super::{Principal, ServiceError, ServiceResult};

/// The kind of caller behind a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An admin key: owner of its organization, may do everything in it.
    AdminKey(Id),
    /// An admin key holding only [`SCOPE_READ`]: may list and retrieve everything an admin
    /// key sees, and change nothing.
    AdminReader(Id),
    /// A service account presenting an access token: may read the organization's service
    /// accounts and its own credentials' metadata, and change nothing. (Machine identities
    /// managing machine identities is a privilege escalation path we do not open by default.)
    ServiceAccount(Id),
    /// An admin key holding only [`SCOPE_USAGE`] (a gateway's): may report token usage and
    /// nothing else, not even read.
    UsageReporter(Id),
}

impl Access {
    /// What an admin key's stored scopes grant.
    pub fn of_admin_key(key: &crate::domain::model::ApiKey) -> Self {
        let id = key.id.clone();
        if key.scopes.iter().all(|s| s == SCOPE_USAGE) && !key.scopes.is_empty() {
            Access::UsageReporter(id)
        } else if is_read_only(&key.scopes) {
            Access::AdminReader(id)
        } else {
            Access::AdminKey(id)
        }
    }
}

pub use crate::domain::keys::{SCOPE_READ, SCOPE_USAGE, SCOPE_WRITE};

/// Whether an admin key with these stored scopes may only read. Keys created before scopes
/// existed have none and keep the full access they were issued with.
pub fn is_read_only(scopes: &[String]) -> bool {
    !scopes.is_empty() && !scopes.iter().any(|s| s == SCOPE_WRITE)
}

/// Resource type → permission → granted, as the Keycard dialect renders it.
pub type Permissions = BTreeMap<&'static str, BTreeMap<&'static str, bool>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    /// Report token usage (`POST /v1/usage`).
    ReportUsage,
}

impl Principal {
    pub fn may(&self, action: Action) -> bool {
        match (&self.access, action) {
            (Access::AdminKey(_), _) => true,
            (Access::AdminReader(_), Action::Read) => true,
            (Access::AdminReader(_), Action::Write | Action::ReportUsage) => false,
            (Access::ServiceAccount(_), Action::Read) => true,
            (Access::ServiceAccount(_), Action::Write | Action::ReportUsage) => false,
            (Access::UsageReporter(_), Action::ReportUsage) => true,
            (Access::UsageReporter(_), Action::Read | Action::Write) => false,
        }
    }

    pub fn require(&self, action: Action) -> ServiceResult<()> {
        match (self.may(action), &self.access) {
            (true, _) => Ok(()),
            // A reader key is refused for what it lacks, so its owner knows which key to use.
            (false, Access::AdminReader(_)) => Err(ServiceError::MissingScope(match action {
                Action::ReportUsage => SCOPE_USAGE,
                _ => SCOPE_WRITE,
            })),
            (false, Access::UsageReporter(_)) => Err(ServiceError::MissingScope(match action {
                Action::Read => SCOPE_READ,
                _ => SCOPE_WRITE,
            })),
            (false, _) => Err(ServiceError::Forbidden),
        }
    }

    /// The caller's permissions on service accounts and their credentials.
    pub fn permissions(&self) -> Permissions {
        let read = self.may(Action::Read);
        let write = self.may(Action::Write);
        // Both resource types follow the same rule today; kept apart on the wire because
        // clients look them up by resource type.
        let crud = || {
            BTreeMap::from([
                ("read", read),
                ("list", read),
                ("create", write),
                ("update", write),
                ("delete", write),
            ])
        };
        Permissions::from([("service_accounts", crud()), ("credentials", crud())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_keys_may_everything_and_tokens_may_only_read() {
        let id = Id::parse("aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let admin = Principal {
            organization_id: id.clone(),
            access: Access::AdminKey(id.clone()),
            origin: Default::default(),
        };
        let token = Principal {
            organization_id: id.clone(),
            access: Access::ServiceAccount(id),
            origin: Default::default(),
        };
        assert!(admin.permissions()["service_accounts"]["delete"]);
        assert!(token.permissions()["service_accounts"]["read"]);
        assert!(!token.permissions()["service_accounts"]["update"]);
        assert!(token.require(Action::Write).is_err());
        assert!(admin.require(Action::Write).is_ok());
    }

    #[test]
    fn reader_keys_read_and_are_refused_writes_for_the_missing_scope() {
        let id = Id::parse("aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let reader = Principal {
            organization_id: id.clone(),
            access: Access::AdminReader(id),
            origin: Default::default(),
        };
        assert!(reader.require(Action::Read).is_ok());
        assert!(matches!(
            reader.require(Action::Write),
            Err(ServiceError::MissingScope(SCOPE_WRITE))
        ));
        assert!(reader.permissions()["credentials"]["list"]);
        assert!(!reader.permissions()["credentials"]["create"]);
        assert!(is_read_only(&[SCOPE_READ.to_owned()]));
        assert!(!is_read_only(&[]));
        assert!(!is_read_only(&[
            SCOPE_READ.to_owned(),
            SCOPE_WRITE.to_owned()
        ]));
    }
}

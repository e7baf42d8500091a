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
    /// A service account presenting an access token: may read the organization's service
    /// accounts and its own credentials' metadata, and change nothing. (Machine identities
    /// managing machine identities is a privilege escalation path we do not open by default.)
    ServiceAccount(Id),
}

/// Resource type → permission → granted, as the Keycard dialect renders it.
pub type Permissions = BTreeMap<&'static str, BTreeMap<&'static str, bool>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

impl Principal {
    pub fn may(&self, action: Action) -> bool {
        match (&self.access, action) {
            (Access::AdminKey(_), _) => true,
            (Access::ServiceAccount(_), Action::Read) => true,
            (Access::ServiceAccount(_), Action::Write) => false,
        }
    }

    pub fn require(&self, action: Action) -> ServiceResult<()> {
        if self.may(action) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden)
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
}

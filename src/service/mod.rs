//! The service layer: every rule of the product lives here once, whichever dialect asked.
//! Handlers parse the wire format and call these methods; the store only persists.
//!
//! Where to look: projects in `projects.rs`, service accounts in `service_accounts.rs`, keys
//! issued to service accounts in `api_keys.rs`, admin keys and authentication in
//! `admin_keys.rs`, first start in `bootstrap.rs`.

mod admin_keys;
mod api_keys;
mod bootstrap;
mod error;
mod projects;
mod service_accounts;

use std::sync::Arc;

use crate::domain::ids::Id;
use crate::domain::keys::PlainKey;
use crate::domain::model::ApiKey;
use crate::domain::time::Clock;
use crate::store::Store;

pub use admin_keys::AuthFailure;
pub use api_keys::{KeyChanges, NewKey};
pub use bootstrap::Bootstrapped;
pub use error::{ServiceError, ServiceResult};
pub use projects::{NewProject, ProjectChanges};
pub use service_accounts::{NewServiceAccount, ServiceAccountChanges};

/// Who is calling: an admin key of one organization. Objects of other organizations do not
/// exist for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization_id: Id,
    pub key_id: Id,
}

/// A key just created: the stored record plus the plaintext, which the caller shows once.
#[derive(Debug)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub value: PlainKey,
}

#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    clock: Clock,
}

/// Something that may change whether a key verifies. Caches drop what depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Key(Id),
    ServiceAccount(Id),
    Project(Id),
}

impl Service {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Called after a committed change that can affect verification.
    pub(crate) fn keys_changed(&self, _change: Change) {}

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

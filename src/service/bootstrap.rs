//! First start: an empty store gets an organization, its default project and an admin key.

use crate::domain::ids::Id;
use crate::domain::keys::{KeyKind, PlainKey};
use crate::domain::model::{Organization, Project};

use super::{Service, ServiceResult};

pub const DEFAULT_ORG_LABEL: &str = "default";
pub const DEFAULT_PROJECT_NAME: &str = "Default project";

#[derive(Debug)]
pub enum Bootstrapped {
    /// The store was empty and is now initialised. `key` is the first admin key; `generated`
    /// says keyplane made it up (so it must be shown to the operator once).
    Created {
        key: PlainKey,
        generated: bool,
    },
    AlreadyInitialised,
}

impl Service {
    /// Initialises an empty store, registering `supplied` as the first admin key or minting
    /// one. Safe to call on every start: a store that holds an organization is left alone.
    pub async fn bootstrap(&self, supplied: Option<PlainKey>) -> ServiceResult<Bootstrapped> {
        let generated = supplied.is_none();
        let value = match supplied {
            Some(v) => v,
            None => PlainKey::generate(KeyKind::Admin)?,
        };
        let now = self.clock.now();
        let org = Organization {
            id: Id::generate()?,
            label: DEFAULT_ORG_LABEL.to_owned(),
            name: "Default organization".to_owned(),
            created_at: now,
        };
        let project = Project {
            id: Id::generate()?,
            organization_id: org.id.clone(),
            name: DEFAULT_PROJECT_NAME.to_owned(),
            external_key_id: None,
            is_default: true,
            created_at: now,
            archived_at: None,
        };
        let issued = self.mint_admin_key(&org.id, "Bootstrap admin key", value)?;
        if self.store.bootstrap(&org, &project, &issued.key).await? {
            Ok(Bootstrapped::Created {
                key: issued.value,
                generated,
            })
        } else {
            Ok(Bootstrapped::AlreadyInitialised)
        }
    }
}

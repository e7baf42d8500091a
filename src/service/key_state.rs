//! Disabling and enabling keys: how an operator neutralises a leaked key at once without
//! losing its history (it keeps its id, audit trail and usage; enabling it undoes the
//! disable). Project keys and admin keys alike; an organization cannot disable its way out of
//! its last usable write-capable admin key.

use serde_json::json;

use crate::domain::audit::{self, EventType};
use crate::domain::ids::{Id, Kind};
use crate::domain::limits::{Disabled, DisabledReason};
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::store::{Change, StoreError};

use super::audit::{Author, Subject};
use super::permissions::Action;
use super::{Principal, Service, ServiceError, ServiceResult};

impl Service {
    /// Disables (`Some(reason)`) or enables (`None`) a project API key. Asking for the state
    /// the key is already in changes nothing and records nothing; a new reason replaces the
    /// old one.
    pub async fn set_project_api_key_disabled(
        &self,
        who: &Principal,
        project_id: &Id,
        key_id: &Id,
        reason: Option<DisabledReason>,
    ) -> ServiceResult<(ApiKey, ServiceAccount)> {
        who.require(Action::Write)?;
        let (key, owner) = self.project_api_key(who, project_id, key_id).await?;
        let key = self.set_disabled(who, key, reason).await?;
        Ok((key, owner))
    }

    /// Like [`Self::set_project_api_key_disabled`] for an admin key. Disabling the caller's
    /// own key is allowed while another usable write-capable admin key remains.
    pub async fn set_admin_key_disabled(
        &self,
        who: &Principal,
        key_id: &Id,
        reason: Option<DisabledReason>,
    ) -> ServiceResult<ApiKey> {
        who.require(Action::Write)?;
        let key = self.admin_key(who, key_id).await?;
        self.set_disabled(who, key, reason).await
    }

    async fn set_disabled(
        &self,
        who: &Principal,
        mut key: ApiKey,
        reason: Option<DisabledReason>,
    ) -> ServiceResult<ApiKey> {
        if key.disabled.map(|d| d.reason) == reason {
            return Ok(key);
        }
        let now = self.clock.now();
        let disabled = reason.map(|reason| Disabled { reason, at: now });
        let requested = json!({
            "disabled": reason.map(|r| json!({ "reason": r.as_str() })),
        });
        let event = self.audit_event(
            &Author::of(who),
            EventType::ApiKeyUpdated,
            Subject::Key(&key),
            audit::changes(requested),
            now,
        )?;
        match self
            .store
            .set_api_key_disabled(
                &who.organization_id,
                &key.id,
                disabled.as_ref(),
                now,
                &[event],
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Deleted meanwhile, or (disabling an admin key) the last usable one.
                return Err(
                    match self.store.api_key(&who.organization_id, &key.id).await? {
                        Some(k) if !k.is_deleted() && reason.is_some() => {
                            ServiceError::LastAdminKey
                        }
                        _ => ServiceError::not_found(Kind::ApiKey, &key.id),
                    },
                );
            }
            Err(e) => return Err(e.into()),
        }
        key.disabled = disabled;
        self.keys_changed(Change::Key(key.id.clone())).await;
        Ok(key)
    }
}

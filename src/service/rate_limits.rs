//! Project × model rate limits (OpenAI's `project.rate_limit`): the configured catalogue's
//! defaults, overridden per project. Listed and updated here; enforced by `admission`.

use serde_json::{json, Map};

use crate::domain::audit::{self, EventType};
use crate::domain::catalogue::{model_of, rate_limit_id};
use crate::domain::ids::Id;
use crate::domain::limits::{self, ProjectRateLimit, RateLimitFields};
use crate::domain::page::WindowPage;
use crate::store::{Change, StoreError};

use super::audit::{Author, Subject};
use super::permissions::Action;
use super::{Principal, Service, ServiceError, ServiceResult};

/// Default and largest page of rate limits (OpenAI's default is 100).
pub const RATE_LIMIT_PAGE: u32 = 100;

/// One project's limits for one catalogue model, as shown: defaults with overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitView {
    pub id: String,
    pub model: String,
    pub limits: RateLimitFields,
}

/// A window over rate-limit IDs (`rl-…`), which are not object IDs.
#[derive(Debug, Clone, Default)]
pub struct RateLimitWindow {
    pub limit: u32,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl Service {
    /// Every catalogue model's limits for the project, a window at a time, in model order.
    pub async fn list_project_rate_limits(
        &self,
        who: &Principal,
        project_id: &Id,
        window: &RateLimitWindow,
    ) -> ServiceResult<WindowPage<RateLimitView>> {
        self.project(who, project_id).await?;
        let overrides = self
            .store
            .project_rate_limits(&who.organization_id, project_id)
            .await?;
        let all: Vec<RateLimitView> = self
            .catalogue
            .models()
            .iter()
            .map(|(model, defaults)| {
                let own = overrides.iter().find(|o| &o.model == model);
                RateLimitView {
                    id: rate_limit_id(model),
                    model: model.clone(),
                    limits: own.map_or(*defaults, |o| o.overrides.over(defaults)),
                }
            })
            .collect();
        page_of(all, window)
    }

    /// Overrides some of one model's limits for this project (the other fields keep what they
    /// had). Every node applies it within the change feed's delay.
    pub async fn update_project_rate_limit(
        &self,
        who: &Principal,
        project_id: &Id,
        rate_limit_id: &str,
        changes: RateLimitFields,
    ) -> ServiceResult<RateLimitView> {
        who.require(Action::Write)?;
        for (field, value) in changes.fields() {
            if let Some(v) = value {
                limits::limit(field, v)?;
            }
        }
        self.active_project(who, project_id).await?;
        let not_found = || ServiceError::NoSuchRateLimit(rate_limit_id.to_owned());
        let model = model_of(rate_limit_id).ok_or_else(not_found)?;
        let defaults = *self.catalogue.get(model).ok_or_else(not_found)?;
        let stored = self
            .store
            .project_rate_limits(&who.organization_id, project_id)
            .await?
            .into_iter()
            .find(|o| o.model == model);
        let mut overrides = stored.map(|o| o.overrides).unwrap_or_default();
        let mut requested = Map::new();
        for (field, value) in changes.fields() {
            if let (Some(v), Some(slot)) = (value, overrides.field_mut(field)) {
                *slot = Some(v);
                requested.insert(field.into(), json!(v));
            }
        }
        let now = self.clock.now();
        let record = ProjectRateLimit {
            organization_id: who.organization_id.clone(),
            project_id: project_id.clone(),
            model: model.to_owned(),
            overrides,
            updated_at: now,
        };
        let id = rate_limit_id.to_owned();
        let event = self.audit_event(
            &Author::of(who),
            EventType::RateLimitUpdated,
            Subject::RateLimit {
                project: project_id,
                id: &id,
            },
            audit::changes(requested.into()),
            now,
        )?;
        match self.store.put_project_rate_limit(&record, &[event]).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Archived (or gone) since the check above: say which.
                self.active_project(who, project_id).await?;
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "rate limit update conflicted with an active project"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        // Cached keys of the project carry its overrides: drop them here and on every node.
        self.keys_changed(Change::Project(project_id.clone())).await;
        Ok(RateLimitView {
            id,
            model: model.to_owned(),
            limits: overrides.over(&defaults),
        })
    }
}

/// The window of `all` (in order) that `window` asks for. Cursors must name a listed entry.
fn page_of(
    all: Vec<RateLimitView>,
    window: &RateLimitWindow,
) -> ServiceResult<WindowPage<RateLimitView>> {
    let limit = window.limit.clamp(1, RATE_LIMIT_PAGE) as usize;
    let position = |id: &str| {
        all.iter()
            .position(|v| v.id == id)
            .ok_or(ServiceError::UnknownCursor)
    };
    let (start, end) = match (&window.after, &window.before) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::BadRequest(
                "'after' and 'before' cannot be used together.",
            ))
        }
        (Some(after), None) => {
            let start = position(after)? + 1;
            (start, (start + limit).min(all.len()))
        }
        (None, Some(before)) => {
            let end = position(before)?;
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(all.len())),
    };
    let has_prev = start > 0;
    let has_next = end < all.len();
    let items = all.into_iter().skip(start).take(end - start).collect();
    Ok(WindowPage {
        items,
        has_next,
        has_prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(n: usize) -> Vec<RateLimitView> {
        (0..n)
            .map(|i| RateLimitView {
                id: format!("rl-m{i}"),
                model: format!("m{i}"),
                limits: RateLimitFields::default(),
            })
            .collect()
    }

    fn w(limit: u32, after: Option<&str>, before: Option<&str>) -> RateLimitWindow {
        RateLimitWindow {
            limit,
            after: after.map(Into::into),
            before: before.map(Into::into),
        }
    }

    #[test]
    fn windows_walk_both_ways() {
        let p = page_of(views(5), &w(2, None, None)).unwrap();
        assert_eq!(p.items.len(), 2);
        assert!(p.has_next && !p.has_prev);
        let p = page_of(views(5), &w(2, Some("rl-m1"), None)).unwrap();
        assert_eq!(p.items[0].model, "m2");
        assert!(p.has_next && p.has_prev);
        let p = page_of(views(5), &w(2, None, Some("rl-m1"))).unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(!p.has_prev && p.has_next);
        let p = page_of(views(5), &w(100, Some("rl-m4"), None)).unwrap();
        assert!(p.items.is_empty() && !p.has_next);
        assert!(matches!(
            page_of(views(5), &w(2, Some("rl-x"), None)),
            Err(ServiceError::UnknownCursor)
        ));
        assert!(page_of(views(5), &w(2, Some("rl-m1"), Some("rl-m3"))).is_err());
    }
}

//! Admission: may this request go through now? Asked after the key is found valid, in the
//! order the product promises: not disabled (judged with validity), allowlists (project, then
//! key), the key's own limits, then the project × model limits of the requested model (else
//! the catalogue's `*`). A request is admitted only if every applicable window has room, and
//! then counts against all of them; a refused request consumes nothing.

use std::net::IpAddr;
use std::sync::Arc;

use crate::domain::ids::Kind;
use crate::domain::limits::{self, RateLimitFields};

use super::admission::{Decision, Gauge, Limits, SubjectRef, Window};
use super::key_cache::KeyContext;
use super::{Service, ServiceResult};

/// What the gateway told about the request being admitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmissionRequest<'a> {
    /// The client's address (the TCP peer, or what a trusted proxy says). `None` only where
    /// no connection exists (in-process calls): an allowlist then refuses.
    pub client: Option<IpAddr>,
    /// `X-Keyplane-Model`; `None` counts against the catalogue's `*`.
    pub model: Option<&'a str>,
    /// Count the request (the check always does; `/v1/keys/verify` only when asked).
    pub consume: bool,
}

/// The answer, for the dialect to render.
#[derive(Debug)]
pub enum Admit {
    /// With the most constraining request and token windows, for the `x-ratelimit-*` headers.
    Admitted {
        requests: Option<Gauge>,
        tokens: Option<Gauge>,
    },
    /// The client's address is not on the project's or the key's allowlist.
    IpNotAllowed { project_list: bool },
    /// A limit has no room; `message` names it.
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// Counts shared with other nodes are too old to decide on (fail closed: 503).
    Unavailable,
}

impl Service {
    /// Decides admission for a valid key (see the module doc).
    pub fn admit(&self, ctx: &Arc<KeyContext>, req: &AdmissionRequest<'_>) -> Admit {
        let project_list = ctx.project.as_ref().and_then(|p| p.allowed_ips.as_deref());
        let key_list = ctx.key.allowed_ips.as_deref();
        for (list, is_project) in [(project_list, true), (key_list, false)] {
            let Some(list) = list else { continue };
            let allowed = req.client.is_some_and(|ip| limits::allows(Some(list), ip));
            if !allowed {
                return Admit::IpNotAllowed {
                    project_list: is_project,
                };
            }
        }
        let key = &ctx.key;
        let key_limits = Limits {
            requests_per_minute: key.limits.max_requests_per_1_minute,
            requests_per_day: key.limits.max_requests_per_1_day,
            tokens_per_minute: key.limits.max_tokens_per_1_minute,
        };
        // The plain check's path (no key limits, no catalogue) ends here, before any table.
        if key_limits.is_empty() && self.catalogue.is_empty() {
            return Admit::Admitted {
                requests: None,
                tokens: None,
            };
        }
        let project_limits = self.project_model_limits(ctx, req.model);
        let mut checks: [(SubjectRef<'_>, Limits); 2] = [
            (SubjectRef::Key(key.id.as_str()), key_limits),
            (SubjectRef::Key(key.id.as_str()), Limits::default()),
        ];
        let mut n = 1;
        if let (Some(project), Some((model, limits))) = (&key.project_id, project_limits) {
            checks[1] = (
                SubjectRef::ProjectModel {
                    project: project.as_str(),
                    model,
                },
                limits,
            );
            n = 2;
        }
        let checks = &checks[..n];
        if checks.iter().all(|(_, l)| *l == Limits::default()) {
            return Admit::Admitted {
                requests: None,
                tokens: None,
            };
        }
        match self.admission.decide(self.clock.now(), checks, req.consume) {
            Decision::Admitted { requests, tokens } => Admit::Admitted { requests, tokens },
            Decision::Unavailable => Admit::Unavailable,
            Decision::Refused {
                subject,
                window,
                limit,
                retry_after_ms,
            } => {
                let retry_after_secs =
                    u64::try_from((retry_after_ms.max(1) + 999) / 1000).unwrap_or(1);
                let what = match window {
                    Window::RequestsPerMinute => "requests per min (RPM)",
                    Window::RequestsPerDay => "requests per day (RPD)",
                    Window::TokensPerMinute => "tokens per min (TPM)",
                };
                // Pushed piece by piece, not `format!`: a flood over a limit renders one of
                // these per request, and must cost no more than the admitted requests.
                let mut digits = itoa::Buffer::new();
                let mut message = String::with_capacity(160);
                message.push_str("Rate limit reached for ");
                match checks.get(subject).map(|c| c.0) {
                    Some(SubjectRef::ProjectModel { model, .. }) => {
                        message.push_str(model);
                        if let Some(p) = &key.project_id {
                            message.push_str(" in project ");
                            message.push_str(Kind::Project.openai_prefix());
                            message.push_str(p.as_str());
                        }
                    }
                    _ => {
                        message.push_str("API key ");
                        message.push_str(Kind::ApiKey.openai_prefix());
                        message.push_str(key.id.as_str());
                    }
                }
                message.push_str(" on ");
                message.push_str(what);
                message.push_str(": Limit ");
                message.push_str(digits.format(limit));
                message.push_str(". Please try again in ");
                message.push_str(digits.format(retry_after_secs));
                message.push_str("s.");
                Admit::RateLimited {
                    message,
                    retry_after_secs,
                }
            }
        }
    }

    /// The catalogue entry the request counts against and its limits for this project
    /// (overrides over defaults), if any applies.
    fn project_model_limits<'a>(
        &'a self,
        ctx: &'a KeyContext,
        model: Option<&str>,
    ) -> Option<(&'a str, Limits)> {
        let (name, defaults) = self.catalogue.resolve(model)?;
        let merged: RateLimitFields = ctx
            .rate_limits
            .iter()
            .find(|o| o.model == name)
            .map_or(*defaults, |o| o.overrides.over(defaults));
        Some((
            name,
            Limits {
                requests_per_minute: merged.max_requests_per_1_minute,
                requests_per_day: merged.max_requests_per_1_day,
                tokens_per_minute: merged.max_tokens_per_1_minute,
            },
        ))
    }

    /// Counts and shares this node's admissions; see `admission::Admission::sync`.
    pub async fn sync_admission(&self) -> ServiceResult<()> {
        Ok(self
            .admission
            .sync(self.store.as_ref(), self.clock.now())
            .await?)
    }
}

impl Service {
    /// Reads the counts other nodes (and earlier runs of this one) stored, before serving.
    pub async fn load_admission(&self) -> ServiceResult<()> {
        Ok(self
            .admission
            .load(self.store.as_ref(), self.clock.now())
            .await?)
    }

    /// On a single-node store nothing else syncs: the persistence of per-day counts across
    /// restarts is this task's (`keyplane serve` starts it). Multi-node stores sync from
    /// [`Service::with_cache`].
    pub fn spawn_admission_persistence(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.shared_store {
            return None;
        }
        Some(tokio::spawn(super::admission_sync::run(
            Arc::downgrade(&self.admission),
            Arc::downgrade(&self.store),
            self.clock.clone(),
            super::admission_sync::PERSIST_INTERVAL,
        )))
    }
}

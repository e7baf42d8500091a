//! Console sessions: an admin key exchanged for a session the browser holds as an opaque
//! cookie. Each use re-checks the session's idle and absolute ends and its admin key (through
//! the verification cache, which every node keeps current), so revoking, expiring or
//! disabling the key ends its sessions on every node.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::domain::audit::{AuditEvent, EventType, Origin};
use crate::domain::console::{self, ConsoleSession, SessionToken};
use crate::domain::keys::KeyHash;
use crate::domain::model::ApiKey;
use crate::domain::time::Millis;
use crate::store::StoreError;

use super::audit::{Author, Subject};
use super::permissions::Action;
use super::{Access, AuthFailure, Principal, Service, ServiceError, ServiceResult};

/// `KEYPLANE_CONSOLE_IDLE_TIMEOUT_SECONDS`, `KEYPLANE_CONSOLE_SESSION_LIFETIME_SECONDS`, and
/// whether the browser reaches keyplane over HTTPS (the cookie is then `Secure`).
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub idle_timeout: Duration,
    pub lifetime: Duration,
    pub secure_cookie: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
            secure_cookie: false,
        }
    }
}

/// A use is written back at most this often: the idle end is that much less exact, and a
/// busy console does not write on every call.
const TOUCH_INTERVAL_MS: Millis = 15_000;

/// A live session as the console shows it.
#[derive(Debug)]
pub struct SessionView {
    pub session: ConsoleSession,
    pub admin_key: ApiKey,
    pub read_only: bool,
    pub csrf_token: String,
    pub principal: Principal,
}

/// A session just started: the token goes into the cookie, once.
pub struct SignedIn {
    pub token: SessionToken,
    pub view: SessionView,
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl Service {
    pub fn with_console(mut self, settings: ConsoleSettings) -> Self {
        self.console = Arc::new(settings);
        self
    }

    pub fn console_settings(&self) -> &ConsoleSettings {
        &self.console
    }

    /// Signs in with an admin key (a usage reporter's key may not: it cannot even read).
    /// `replacing` is the session cookie the browser already had, if any: it is ended, so a
    /// sign-in always starts a new session ID (no fixation).
    pub async fn sign_in(
        &self,
        presented: Option<&str>,
        replacing: Option<&str>,
        origin: Origin,
    ) -> ServiceResult<SignedIn> {
        let (mut principal, ctx) = self.admin_key_presented(presented).await?;
        principal.require(Action::Read)?;
        principal.origin = origin;
        if let Some(old) = replacing {
            self.end_session(old, None).await?;
        }
        let now = self.clock.now();
        self.store.prune_console_sessions(now).await?;
        let token = SessionToken::generate()?;
        let session = ConsoleSession {
            hash: console::token_hash(token.as_str()),
            organization_id: principal.organization_id.clone(),
            admin_key_id: ctx.key.id.clone(),
            key_hash: ctx.key.hash,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(millis(self.console.lifetime)),
        };
        let event = self.audit_event(
            &Author::of(&principal),
            EventType::LoginSucceeded,
            Subject::Key(&ctx.key),
            json!({}),
            now,
        )?;
        self.store
            .insert_console_session(&session, &[event])
            .await?;
        let view = self.session_view(session, token.as_str(), principal, ctx.key.clone());
        Ok(SignedIn { token, view })
    }

    /// The session `token` stands for, if it is live and its admin key may still act.
    /// Unknown, ended and tampered tokens are `Unauthenticated(SessionUnknown)`; one past
    /// its idle or absolute end `SessionExpired`; one whose key was revoked, expired or
    /// disabled is ended and answered with that key failure.
    pub async fn console_session(&self, token: &str) -> ServiceResult<SessionView> {
        let unknown = || ServiceError::Unauthenticated(AuthFailure::SessionUnknown);
        if !console::is_token_shaped(token) {
            return Err(unknown());
        }
        let hash = console::token_hash(token);
        let Some(session) = self.store.console_session(&hash).await? else {
            return Err(unknown());
        };
        let now = self.clock.now();
        if now >= session.ends_at(millis(self.console.idle_timeout)) {
            self.forget(&hash, &[]).await?;
            return Err(ServiceError::Unauthenticated(AuthFailure::SessionExpired));
        }
        let (principal, ctx) = match self.admin_key_by_hash(session.key_hash).await {
            Ok(found) => found,
            Err(ServiceError::Unauthenticated(why)) => {
                self.forget(&hash, &[]).await?;
                return Err(ServiceError::Unauthenticated(why));
            }
            Err(other) => return Err(other),
        };
        if matches!(principal.access, Access::UsageReporter(_)) {
            return Err(ServiceError::Forbidden);
        }
        if now - session.last_seen_at >= TOUCH_INTERVAL_MS {
            match self.store.touch_console_session(&hash, now).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.session_view(session, token, principal, ctx.key.clone()))
    }

    /// Signs out: ends the session (recorded as `logout.succeeded` by whoever it belonged
    /// to). Ending one that is already gone is not an error.
    pub async fn sign_out(&self, token: &str, origin: Origin) -> ServiceResult<()> {
        self.end_session(token, Some(origin)).await
    }

    async fn end_session(&self, token: &str, audited: Option<Origin>) -> ServiceResult<()> {
        if !console::is_token_shaped(token) {
            return Ok(());
        }
        let hash = console::token_hash(token);
        let Some(session) = self.store.console_session(&hash).await? else {
            return Ok(());
        };
        let mut audit = Vec::new();
        if let Some(origin) = audited {
            let who = Principal {
                organization_id: session.organization_id.clone(),
                access: Access::AdminKey(session.admin_key_id.clone()),
                origin,
            };
            let key = self
                .store
                .api_key(&session.organization_id, &session.admin_key_id)
                .await?;
            if let Some(key) = key {
                audit.push(self.audit_event(
                    &Author::of(&who),
                    EventType::LogoutSucceeded,
                    Subject::Key(&key),
                    json!({}),
                    self.clock.now(),
                )?);
            }
        }
        self.forget(&hash, &audit).await
    }

    async fn forget(&self, hash: &KeyHash, audit: &[AuditEvent]) -> ServiceResult<()> {
        match self.store.delete_console_session(hash, audit).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn session_view(
        &self,
        session: ConsoleSession,
        token: &str,
        principal: Principal,
        admin_key: ApiKey,
    ) -> SessionView {
        SessionView {
            read_only: !matches!(principal.access, Access::AdminKey(_)),
            csrf_token: console::csrf_token(token),
            session,
            admin_key,
            principal,
        }
    }
}

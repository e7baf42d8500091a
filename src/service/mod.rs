//! The service layer: every rule of the product lives here once, whichever dialect asked.
//! Handlers parse the wire format and call these methods; the store only persists.
//!
//! Where to look: projects in `projects.rs`, service accounts in `service_accounts.rs`, keys
//! issued to service accounts in `api_keys.rs`, admin keys and authentication in
//! `admin_keys.rs`, first start in `bootstrap.rs`.

mod admin_keys;
pub mod admission;
mod admission_sync;
mod admit;
mod api_keys;
mod audit;
mod bearer;
mod bootstrap;
mod change_feed;
mod console_sessions;
mod credentials;
mod error;
pub mod federation;
pub mod key_cache;
mod key_state;
mod org_service_accounts;
mod permissions;
mod projects;
mod rate_limits;
mod readiness;
mod service_accounts;
pub mod throttle;
mod tokens;
mod usage;
mod usage_reports;
pub mod verification;
pub mod webhook;

use std::sync::Arc;

use crate::domain::audit::Origin;
use crate::domain::catalogue::ModelCatalogue;
use crate::domain::ids::Id;
use crate::domain::keys::PlainKey;
use crate::domain::model::ApiKey;
use crate::domain::time::Clock;
use crate::metrics::Metrics;
use crate::store::{Change, MeteredStore, Store};

use key_cache::{CacheSettings, KeyCache};
use usage::UsageTracker;

pub use admin_keys::AuthFailure;
pub use admit::{AdmissionRequest, Admit};
pub use api_keys::{KeyChanges, NewKey};
pub use bearer::{Accepting, Bearer, Unresolved};
pub use bootstrap::Bootstrapped;
pub use console_sessions::{ConsoleSettings, SessionView, SignedIn};
pub use credentials::{CredentialChanges, IssuedCredential, NewCredential};
pub use error::{ServiceError, ServiceResult};
pub use org_service_accounts::{NewOrgAccount, OrgAccountChanges};
pub use permissions::{is_read_only, Access, Action, Permissions, SCOPE_READ, SCOPE_WRITE};
pub use projects::{NewProject, ProjectChanges};
pub use rate_limits::{RateLimitView, RateLimitWindow, RATE_LIMIT_PAGE};
pub use readiness::Readiness;
pub use service_accounts::{NewServiceAccount, ServiceAccountChanges};
pub use tokens::{ClientFailure, IssuedToken, TokenIdentity, TokenSettings};
pub use usage_reports::{UsageRecord, MAX_USAGE_RECORDS};
pub use webhook::WebhookSettings;

/// How old (ms) the counts shared with other nodes may be before a node refuses to decide on
/// them (503): ten sync intervals.
pub const ADMISSION_STALE_AFTER_MS: i64 = 2_000;

/// Who is calling, for one organization: objects of other organizations do not exist for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization_id: Id,
    pub access: Access,
    /// Where the request came from, for the audit log (the HTTP layer fills it in).
    pub origin: Origin,
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
    cache: Arc<KeyCache>,
    usage: Arc<UsageTracker>,
    credential_usage: Arc<UsageTracker>,
    tokens: Arc<tokens::TokenState>,
    webhook: Option<Arc<webhook::WebhookSettings>>,
    metrics: Arc<Metrics>,
    throttle: Arc<throttle::AuthThrottle>,
    /// The models rate limits exist for, and their defaults (from the configuration file).
    catalogue: Arc<ModelCatalogue>,
    /// This node's rate-limit counts, shared with other nodes through the store.
    admission: Arc<admission::Admission>,
    /// Whether other nodes share the store (it has a change feed).
    shared_store: bool,
    federation: Arc<federation::FederationSettings>,
    /// External issuers' key sets (workload identity federation).
    jwks: Arc<federation::jwks::JwksCache>,
    /// Console sessions' lifetimes and cookie (`KEYPLANE_CONSOLE_*`).
    console: Arc<ConsoleSettings>,
}

impl Service {
    /// A service over `store`. On a store shared by several nodes this starts following the
    /// change feed (so it must run inside a tokio runtime); the cache is trusted only while
    /// that feed is connected.
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self::with_cache(store, clock, CacheSettings::default())
    }

    pub fn with_cache(store: Arc<dyn Store>, clock: Clock, settings: CacheSettings) -> Self {
        let metrics = Arc::new(Metrics::new(crate::store::metered::OPERATIONS));
        let store: Arc<dyn Store> = Arc::new(MeteredStore::new(store, metrics.clone()));
        let feed = store.subscribe();
        let cache = Arc::new(KeyCache::new(settings, feed.is_none()));
        let shared = feed.is_some();
        let admission = Arc::new(admission::Admission::new(
            admission_sync::node_id(),
            admission::AdmissionSettings {
                shared,
                stale_after_ms: ADMISSION_STALE_AFTER_MS,
            },
        ));
        if shared {
            tokio::spawn(admission_sync::run(
                Arc::downgrade(&admission),
                Arc::downgrade(&store),
                clock.clone(),
                admission_sync::SYNC_INTERVAL,
            ));
        }
        if let Some(events) = feed {
            let resubscribe = {
                let store = store.clone();
                move || store.subscribe()
            };
            tokio::spawn(change_feed::follow(events, resubscribe, cache.clone()));
        }
        Self {
            store,
            cache,
            usage: Arc::new(UsageTracker::default()),
            credential_usage: Arc::new(UsageTracker::default()),
            tokens: Arc::new(tokens::TokenState::new(TokenSettings::default())),
            webhook: None,
            metrics,
            throttle: Arc::new(throttle::AuthThrottle::new(
                Default::default(),
                clock.clone(),
            )),
            catalogue: Arc::new(ModelCatalogue::default()),
            admission,
            shared_store: shared,
            federation: Arc::default(),
            jwks: Arc::new(federation::jwks::JwksCache::new(
                Default::default(),
                clock.clone(),
            )),
            console: Arc::default(),
            clock,
        }
    }

    /// Workload identity federation's operator settings (`KEYPLANE_FEDERATION_*`).
    pub fn with_federation(mut self, settings: federation::FederationSettings) -> Self {
        let jwks = federation::jwks::JwksSettings {
            allow_http: settings.allow_http,
            ..Default::default()
        };
        self.jwks = Arc::new(federation::jwks::JwksCache::new(jwks, self.clock.clone()));
        self.federation = Arc::new(settings);
        self
    }

    /// How failed authentications are throttled (the default: 20 a minute per source), on
    /// this service's clock.
    pub fn with_auth_throttle(mut self, settings: throttle::ThrottleSettings) -> Self {
        self.throttle = Arc::new(throttle::AuthThrottle::new(settings, self.clock.clone()));
        self
    }

    /// The failed-authentication table, shared by every clone of this service.
    pub fn auth_throttle(&self) -> &Arc<throttle::AuthThrottle> {
        &self.throttle
    }

    /// The models rate limits exist for (`[models]` in the configuration file).
    pub fn with_models(mut self, catalogue: ModelCatalogue) -> Self {
        self.catalogue = Arc::new(catalogue);
        self
    }

    pub fn catalogue(&self) -> &ModelCatalogue {
        &self.catalogue
    }

    /// The issuer, audience and lifetime of access tokens (defaults suit tests only).
    pub fn with_token_settings(mut self, settings: TokenSettings) -> Self {
        self.tokens = Arc::new(tokens::TokenState::new(settings));
        self
    }

    /// The verification cache (for tests and metrics).
    pub fn cache(&self) -> &KeyCache {
        &self.cache
    }

    /// Called after a committed change that can affect verification: this node's cache drops
    /// what depends on it at once, other nodes hear of it through the store. If telling them
    /// fails, their cache TTL is the safety net.
    pub(crate) async fn keys_changed(&self, change: Change) {
        self.cache.invalidate(&change);
        if let Err(e) = self.store.publish(&change).await {
            tracing::warn!(error = %e, ?change, "could not publish a change to other nodes");
        }
    }

    /// This service's metrics (requests are recorded into them by the HTTP layer).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle on this service's metrics that costs one reference count to clone (the
    /// request middleware holds one, rather than a whole `Service`).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

//! Persistence behind one trait. The SQLite implementation is the embedded default; every
//! backend passes the same suite (`tests/it/store_suite/`).
//!
//! Methods that change state enforce their preconditions inside the statement or transaction
//! (e.g. "only if the project is still active"), so two concurrent requests cannot both pass a
//! check made earlier by the service layer. When such a guard fails they report
//! [`StoreError::Conflict`] and the service re-reads to explain why.

mod audit_sql;
mod binds;
mod console_statements;
mod delegate;
mod dialect;
mod federation_statements;
pub mod metered;
mod pages;
mod postgres;
mod postgres_notify;
mod rows;
pub mod schema;
mod sqlite;
mod sqlx_error;
mod statements;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::console::ConsoleSession;
use crate::domain::federation::{FederationRule, Provider};
use crate::domain::ids::Id;
use crate::domain::keys::KeyHash;
use crate::domain::limits::{Disabled, ProjectRateLimit};
use crate::domain::model::{
    ApiKey, Credential, Organization, OwnerAccess, Project, ServiceAccount, SigningKey,
};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;

pub use metered::MeteredStore;
pub use postgres::PostgresStore;

/// The schema version this build writes; both backends share it (a test checks).
pub fn schema_version() -> i64 {
    schema::latest(&sqlite::MIGRATOR)
}
pub use sqlite::SqliteStore;

/// Connection pool settings shared by the backends.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections (PostgreSQL) or read connections (SQLite, which writes through one).
    pub size: u32,
    /// Longest a request waits for a free connection before answering 503.
    pub acquire_timeout: Duration,
    /// Longest one statement may run (PostgreSQL) before it is cancelled and answered 503.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: 8,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Connections of one pool, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `main` (PostgreSQL), `read` / `write` (SQLite).
    pub pool: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

fn pool_stats<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
    PoolStats {
        pool: name,
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `after` cursor names no object in the listed scope.
    #[error("unknown pagination cursor")]
    UnknownCursor,
    /// A guard in a write failed: the parent is gone or no longer active.
    #[error("precondition failed: {0}")]
    Conflict(&'static str),
    /// A unique value (key hash, label) is already taken.
    #[error("duplicate: {0}")]
    Duplicate(&'static str),
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Something that may change whether or how a key verifies; caches drop what depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Key(Id),
    ServiceAccount(Id),
    Project(Id),
    /// A key was created: a cached "unknown" for its hash is now wrong.
    Created(KeyHash),
}

/// What a multi-node store's change feed delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    Changed(Change),
    /// The feed broke: changes may be missed until `Resynced`.
    Disconnected,
    /// The feed is back; anything cached before may be stale.
    Resynced,
    /// The store was closed on purpose (shutdown): the feed ends and is not restarted.
    Closed,
}

/// One stored row, as `keyplane export` moves it between installations: everything the store
/// holds, including deleted accounts and revoked keys, so nothing changes meaning on the way.
///
/// Signing keys and server secrets are deliberately left out: the access tokens they sign
/// live minutes, so a restored installation simply makes new ones on its first start, and an
/// export file never carries a private key. Nor are the admission counts ([`Count`]): they are
/// ephemeral, and a restored installation starts counting afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Organization(Organization),
    Project(Project),
    /// A project's overrides of one model's limits.
    ProjectRateLimit(ProjectRateLimit),
    ServiceAccount {
        account: ServiceAccount,
        deleted_at: Option<Millis>,
    },
    ApiKey(ApiKey),
    /// Deleted credentials included, like deleted accounts.
    Credential(Credential),
    /// Deleted providers and rules included, like credentials.
    Provider(Provider),
    FederationRule(FederationRule),
    /// The audit trail moves with the installation; a pending webhook delivery stays pending.
    AuditEvent(AuditEvent),
}

/// One node's count of one admission subject (a key, a project × model) in one time bucket.
/// Absolute, not a delta: writing the same count twice is harmless, and a node's later count
/// of a bucket replaces its earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The counting node (a random id per process start).
    pub node: String,
    /// `k:{key id}` or `pm:{project id}:{model}`.
    pub subject: String,
    /// The bucket's start and width, Unix milliseconds.
    pub bucket: Millis,
    pub span: Millis,
    pub requests: i64,
    pub tokens: i64,
}

/// Where one node's reading of the other nodes' counts stands; opaque outside the store.
pub type CountsCursor = i64;

/// Receives exported records one by one; an error stops the export.
pub type RecordSink<'a> = dyn FnMut(Record) -> anyhow::Result<()> + Send + 'a;

/// Yields records to import, in export order (parents before children).
pub type RecordSource<'a> = dyn Iterator<Item = anyhow::Result<Record>> + Send + 'a;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Waits for in-flight statements and closes connections (SQLite checkpoints its WAL).
    async fn close(&self);

    /// Creates an organization, its default project and its first admin key in one
    /// transaction. With `only_if_empty`, does nothing (and returns `false`) when the store
    /// already holds an organization: that is how a first start initialises exactly once.
    async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    async fn organization_by_label(&self, label: &str) -> StoreResult<Option<Organization>>;

    async fn insert_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()>;
    async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>>;
    async fn list_projects(
        &self,
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>>;
    /// Writes name, external key id and allowlist; only while the project is active.
    async fn update_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Only while active and not the default project.
    async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;

    /// Inserts the account and, if given, its first key in one transaction; when the account
    /// belongs to a project, only while that project is active.
    async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// A live (not deleted) account of the organization.
    async fn service_account(&self, org: &Id, id: &Id) -> StoreResult<Option<ServiceAccount>>;
    async fn list_project_service_accounts(
        &self,
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>>;
    /// Writes name, description, role and updated_at of a live account.
    async fn update_service_account(
        &self,
        account: &ServiceAccount,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Marks the account deleted, revokes all its keys and deletes all its credentials in one
    /// transaction.
    async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;

    /// Inserts a key; a service-account key only while its account is live (and its project
    /// active).
    async fn insert_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()>;
    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;

    async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>>;
    /// Any key of the organization, deleted ones included (callers decide visibility).
    async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>>;
    /// Undeleted keys of live service accounts in the project, with their owners.
    async fn list_project_api_keys(
        &self,
        org: &Id,
        project: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> StoreResult<Page<(ApiKey, ServiceAccount)>>;
    /// Undeleted admin keys of the organization (`page.descending` honoured).
    async fn list_admin_keys(&self, org: &Id, page: &PageRequest) -> StoreResult<Page<ApiKey>>;
    /// Writes scopes, expiry, allowlist and limits of an undeleted key (not its disabled state:
    /// [`Store::set_api_key_disabled`] does, under its own guard).
    async fn update_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Deletes a key through the API: it stops working at `effective` (now, or later for a
    /// grace period). Only an undeleted service-account key.
    async fn revoke_api_key(
        &self,
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Deletes an admin key at `now`, only if another admin key of the organization stays
    /// usable and write-capable (unexpired, unrevoked, holding [`SCOPE_WRITE`] or no scopes at
    /// all): an organization can never lock itself out, not even into read-only access.
    ///
    /// [`SCOPE_WRITE`]: crate::domain::keys::SCOPE_WRITE
    async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;

    /// Disables (`Some`) or enables (`None`) an undeleted key of either kind. Disabling an admin
    /// key is guarded like [`Store::revoke_admin_key`], as atomically: another usable,
    /// write-capable admin key that is not disabled must remain (at `now`).
    async fn set_api_key_disabled(
        &self,
        org: &Id,
        id: &Id,
        disabled: Option<&Disabled>,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// The project's stored rate-limit overrides, one per model, in model order (bytewise).
    async fn project_rate_limits(
        &self,
        org: &Id,
        project: &Id,
    ) -> StoreResult<Vec<ProjectRateLimit>>;
    /// Inserts or replaces the overrides of one project × model, only while the project is an
    /// active one of the organization.
    async fn put_project_rate_limit(
        &self,
        limit: &ProjectRateLimit,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Writes this node's counts (upsert by node, subject, bucket, span: the given absolute
    /// values replace the stored ones), all of them in one transaction.
    async fn push_counts(&self, counts: &[Count]) -> StoreResult<()>;
    /// Counts written by nodes other than `node` since `after` (`None`: every stored count
    /// whose bucket starts at or after `not_before`), and the cursor for the next call. A count
    /// being written while this reads is returned by this call or the next, never lost; a count
    /// may be returned again by the next call.
    async fn pull_counts(
        &self,
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)>;
    /// Deletes counts of width `span` whose bucket starts before `before`; returns how many.
    async fn prune_counts(&self, span: Millis, before: Millis) -> StoreResult<u64>;

    /// Raises `last_used_at` of each key to at least the given time. Monotonic (`max`), so
    /// batches from several nodes in any order lose nothing.
    async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()>;
    /// Tells the other nodes sharing this store that something affecting verification
    /// changed. A no-op for a single-node store.
    async fn publish(&self, change: &Change) -> StoreResult<()>;
    /// Changes published by other nodes (and this one), if the backend has several nodes.
    fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
        None
    }

    // ---- Keycard dialect: organization-wide lists, credentials, token signing ----

    /// Live accounts of the organization (project accounts included), in creation order,
    /// walked forward from `after` or backward from `before`. A cursor may name a deleted
    /// account of the organization; any other unknown cursor is `UnknownCursor`.
    async fn list_org_service_accounts(
        &self,
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>>;
    /// Inserts a credential, only while its service account (and, for a federated one, its
    /// provider: `Conflict("provider is gone")`) is live.
    async fn insert_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// A live (not deleted) credential of the account.
    async fn credential(&self, org: &Id, account: &Id, id: &Id) -> StoreResult<Option<Credential>>;
    /// A live credential by its client id, whatever the organization (the token endpoint).
    async fn credential_by_client_id(&self, client_id: &str) -> StoreResult<Option<Credential>>;
    /// Live credentials of the account, like `list_org_service_accounts`.
    async fn list_credentials(
        &self,
        org: &Id,
        account: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<Credential>>;
    /// Writes name, description and updated_at of a live credential.
    async fn update_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Marks a live credential deleted.
    async fn delete_credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Like `record_key_usage`, for credentials (`max`, so nothing is lost across nodes).
    async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()>;
    /// Every signing key, retired ones included, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Inserts `key`; with `retire_others_at`, in the same transaction sets `retired_at` on
    /// every key not yet retired (rotation). Without it, inserts only if no unretired key
    /// exists (first start; several nodes may race) and returns whether it inserted.
    async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_others_at: Option<Millis>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// The server-wide secret called `name`, created from `candidate` if there is none yet.
    /// Every node gets the same value, whichever inserted first.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;

    /// Console sessions (not exported: an import signs everyone out). Inserting one that
    /// exists is a `Conflict`.
    async fn insert_console_session(
        &self,
        session: &ConsoleSession,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    async fn console_session(&self, hash: &KeyHash) -> StoreResult<Option<ConsoleSession>>;
    /// Records a use; `Conflict` when the session is gone.
    async fn touch_console_session(&self, hash: &KeyHash, at: Millis) -> StoreResult<()>;
    /// `Conflict` when there was no such session.
    async fn delete_console_session(&self, hash: &KeyHash, audit: &[AuditEvent])
        -> StoreResult<()>;
    /// Forgets sessions whose absolute end is before `before`; how many.
    async fn prune_console_sessions(&self, before: Millis) -> StoreResult<u64>;

    // ---- Workload identity federation ----

    /// Inserts a provider, only while its organization has fewer than
    /// [`crate::domain::federation::MAX_PROVIDERS_PER_ORGANIZATION`] live ones (`Conflict("provider limit")`).
    async fn insert_provider(&self, provider: &Provider, audit: &[AuditEvent]) -> StoreResult<()>;
    /// A live provider of the organization.
    async fn provider(&self, org: &Id, id: &Id) -> StoreResult<Option<Provider>>;
    /// A live provider by its id alone, whatever the organization (the token exchange, whose
    /// caller names only the provider).
    async fn provider_by_id(&self, id: &Id) -> StoreResult<Option<Provider>>;
    /// Live providers of the organization, in creation order (or newest first).
    async fn list_providers(&self, org: &Id, page: &PageRequest) -> StoreResult<Page<Provider>>;
    /// Writes every field but the ids and `created_at` of a live provider.
    async fn update_provider(&self, provider: &Provider, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Marks a live provider deleted, only while it has no live rule and no live Keycard
    /// credential names it (`Conflict("provider has rules")`; a rule inserted meanwhile wins
    /// or waits).
    async fn delete_provider(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Inserts a rule, only while its provider is live (`Conflict("provider is gone")`) with
    /// fewer than [`crate::domain::federation::MAX_RULES_PER_PROVIDER`] live rules (`Conflict("rule limit")`) and its
    /// service account is live in its project (`Conflict("service account is gone")`).
    async fn insert_rule(&self, rule: &FederationRule, audit: &[AuditEvent]) -> StoreResult<()>;
    /// A live rule of the provider.
    async fn rule(&self, org: &Id, provider: &Id, id: &Id) -> StoreResult<Option<FederationRule>>;
    /// Live rules of the provider, optionally of one service account only.
    async fn list_rules(
        &self,
        org: &Id,
        provider: &Id,
        service_account: Option<&Id>,
        page: &PageRequest,
    ) -> StoreResult<Page<FederationRule>>;
    /// Writes name, description, enabled, matchers, permissions and updated_at of a live rule.
    async fn update_rule(&self, rule: &FederationRule, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Marks a live rule deleted.
    async fn delete_rule(
        &self,
        org: &Id,
        provider: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;

    // ---- Audit log ----

    /// Events of the organization (and installation-wide ones), newest first, filtered. A
    /// cursor naming no event visible to the organization is `UnknownCursor`.
    async fn list_audit_events(
        &self,
        org: &Id,
        query: &AuditQuery,
    ) -> StoreResult<Page<AuditEntry>>;
    /// Up to `limit` undelivered webhook events due at `now`, oldest first, leased until
    /// `lease_until` so that no other node sends them meanwhile. A node that dies holding a
    /// lease only delays its events: they are due again when it runs out.
    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>>;
    /// Records the outcome of one delivery attempt (a failure counts one more attempt).
    async fn finish_webhook_delivery(&self, id: &Id, outcome: &DeliveryOutcome) -> StoreResult<()>;
    /// Undelivered webhook events (for readiness and tests).
    async fn pending_webhook_deliveries(&self) -> StoreResult<u64>;

    /// True when the store holds no organization (never initialised).
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Streams every row (signing keys, server secrets and admission counts excepted, see
    /// [`Record`]), parents before children and each table in creation order, from one
    /// consistent snapshot. Returns the number of records.
    async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64>;
    /// Writes records exactly as given (no guards: deleted accounts and revoked keys come along)
    /// in one transaction: on any error nothing is imported. Returns the number of records.
    async fn import(&self, source: &mut RecordSource<'_>) -> StoreResult<u64>;

    /// The highest migration version applied to the database (`/readyz` compares it with
    /// [`schema_version`]). A cheap read: it also tells whether the store answers at all.
    async fn applied_schema_version(&self) -> StoreResult<i64>;
    /// Connections per pool, right now (no I/O).
    fn pool_stats(&self) -> Vec<PoolStats>;
}

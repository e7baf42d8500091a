//! A [`Store`] that forwards every call to another and times it, for the store latency
//! metrics. [`crate::service::Service`] wraps whatever store it is given in one.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    Change, Count, CountsCursor, PoolStats, RecordSink, RecordSource, Store, StoreEvent,
    StoreResult,
};
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
use crate::metrics::Metrics;

/// Writes [`OPERATIONS`] and the `Store` impl from one list of the trait's timed methods
/// (without `&self`): each forwards to the inner store, timed under its own name as the
/// `operation` label. The untimed methods (`close`, `subscribe`, `pool_stats`) follow the
/// list verbatim.
macro_rules! metered {
    (
        $(fn $op:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*
        untimed { $($untimed:item)* }
    ) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Op { $($op),* }

        /// The `operation` label values: the trait's method names, in [`Op`] order.
        pub const OPERATIONS: &[&str] = &[$(stringify!($op)),*];

        #[async_trait]
        impl Store for MeteredStore {
            $(
                async fn $op(&self, $($arg: $ty),*) -> $ret {
                    self.timed(Op::$op, self.inner.$op($($arg),*)).await
                }
            )*
            $($untimed)*
        }
    };
}

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, op: Op, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let started = Instant::now();
        let result = call.await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics
            .store_call(op as usize, micros, result.is_err());
        result
    }
}

// The order is the order of the series in /metrics.
metered! {
    fn create_organization(
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    fn organization_by_label(label: &str) -> StoreResult<Option<Organization>>;
    fn insert_project(project: &Project, audit: &[AuditEvent]) -> StoreResult<()>;
    fn project(org: &Id, id: &Id) -> StoreResult<Option<Project>>;
    fn list_projects(
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>>;
    fn update_project(project: &Project, audit: &[AuditEvent]) -> StoreResult<()>;
    fn archive_project(org: &Id, id: &Id, at: Millis, audit: &[AuditEvent]) -> StoreResult<()>;
    fn insert_service_account(
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn service_account(org: &Id, id: &Id) -> StoreResult<Option<ServiceAccount>>;
    fn list_project_service_accounts(
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>>;
    fn update_service_account(account: &ServiceAccount, audit: &[AuditEvent]) -> StoreResult<()>;
    fn delete_service_account(
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn insert_api_key(key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()>;
    fn api_key_by_hash(hash: &KeyHash) -> StoreResult<Option<ApiKey>>;
    fn organization(id: &Id) -> StoreResult<Option<Organization>>;
    fn api_key(org: &Id, id: &Id) -> StoreResult<Option<ApiKey>>;
    fn list_project_api_keys(
        org: &Id,
        project: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> StoreResult<Page<(ApiKey, ServiceAccount)>>;
    fn list_admin_keys(org: &Id, page: &PageRequest) -> StoreResult<Page<ApiKey>>;
    fn update_api_key(key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()>;
    fn revoke_api_key(
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn revoke_admin_key(org: &Id, id: &Id, now: Millis, audit: &[AuditEvent]) -> StoreResult<()>;
    fn record_key_usage(usage: &[(Id, Millis)]) -> StoreResult<()>;
    fn publish(change: &Change) -> StoreResult<()>;
    fn list_org_service_accounts(
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>>;
    fn insert_credential(credential: &Credential, audit: &[AuditEvent]) -> StoreResult<()>;
    fn credential(org: &Id, account: &Id, id: &Id) -> StoreResult<Option<Credential>>;
    fn credential_by_client_id(client_id: &str) -> StoreResult<Option<Credential>>;
    fn list_credentials(
        org: &Id,
        account: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<Credential>>;
    fn update_credential(credential: &Credential, audit: &[AuditEvent]) -> StoreResult<()>;
    fn delete_credential(
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn record_credential_usage(usage: &[(Id, Millis)]) -> StoreResult<()>;
    fn insert_provider(provider: &Provider, audit: &[AuditEvent]) -> StoreResult<()>;
    fn provider(org: &Id, id: &Id) -> StoreResult<Option<Provider>>;
    fn provider_by_id(id: &Id) -> StoreResult<Option<Provider>>;
    fn list_providers(org: &Id, page: &PageRequest) -> StoreResult<Page<Provider>>;
    fn update_provider(provider: &Provider, audit: &[AuditEvent]) -> StoreResult<()>;
    fn delete_provider(org: &Id, id: &Id, at: Millis, audit: &[AuditEvent]) -> StoreResult<()>;
    fn insert_rule(rule: &FederationRule, audit: &[AuditEvent]) -> StoreResult<()>;
    fn rule(org: &Id, provider: &Id, id: &Id) -> StoreResult<Option<FederationRule>>;
    fn list_rules(
        org: &Id,
        provider: &Id,
        service_account: Option<&Id>,
        page: &PageRequest,
    ) -> StoreResult<Page<FederationRule>>;
    fn update_rule(rule: &FederationRule, audit: &[AuditEvent]) -> StoreResult<()>;
    fn delete_rule(
        org: &Id,
        provider: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn signing_keys() -> StoreResult<Vec<SigningKey>>;
    fn insert_signing_key(
        key: &SigningKey,
        retire_others_at: Option<Millis>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    fn server_secret(name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
    fn insert_console_session(session: &ConsoleSession, audit: &[AuditEvent]) -> StoreResult<()>;
    fn console_session(hash: &KeyHash) -> StoreResult<Option<ConsoleSession>>;
    fn touch_console_session(hash: &KeyHash, at: Millis) -> StoreResult<()>;
    fn delete_console_session(hash: &KeyHash, audit: &[AuditEvent]) -> StoreResult<()>;
    fn prune_console_sessions(before: Millis) -> StoreResult<u64>;
    fn is_empty() -> StoreResult<bool>;
    fn export(sink: &mut RecordSink<'_>) -> StoreResult<u64>;
    fn import(source: &mut RecordSource<'_>) -> StoreResult<u64>;
    fn applied_schema_version() -> StoreResult<i64>;
    fn list_audit_events(org: &Id, query: &AuditQuery) -> StoreResult<Page<AuditEntry>>;
    fn claim_webhook_deliveries(
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>>;
    fn finish_webhook_delivery(id: &Id, outcome: &DeliveryOutcome) -> StoreResult<()>;
    fn pending_webhook_deliveries() -> StoreResult<u64>;
    fn set_api_key_disabled(
        org: &Id,
        id: &Id,
        disabled: Option<&Disabled>,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    fn project_rate_limits(org: &Id, project: &Id) -> StoreResult<Vec<ProjectRateLimit>>;
    fn put_project_rate_limit(limit: &ProjectRateLimit, audit: &[AuditEvent]) -> StoreResult<()>;
    fn push_counts(counts: &[Count]) -> StoreResult<()>;
    fn pull_counts(
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)>;
    fn prune_counts(span: Millis, before: Millis) -> StoreResult<u64>;
    untimed {
        async fn close(&self) {
            self.inner.close().await
        }

        fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
            self.inner.subscribe()
        }

        fn pool_stats(&self) -> Vec<PoolStats> {
            self.inner.pool_stats()
        }
    }
}

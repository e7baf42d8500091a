//! A [`Store`] that forwards every call to another and times it, for the store latency
//! metrics. [`crate::service::Service`] wraps whatever store it is given in one.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{Change, PoolStats, RecordSink, RecordSource, Store, StoreEvent, StoreResult};
use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::ids::Id;
use crate::domain::keys::KeyHash;
use crate::domain::model::{
    ApiKey, Credential, Organization, OwnerAccess, Project, ServiceAccount, SigningKey,
};
use crate::domain::page::{Page, PageRequest, Window, WindowPage};
use crate::domain::time::Millis;
use crate::metrics::Metrics;

macro_rules! operations {
    ($($op:ident),* $(,)?) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Op { $($op),* }
        /// The `operation` label values: the trait's method names, in [`Op`] order.
        pub const OPERATIONS: &[&str] = &[$(stringify!($op)),*];
    };
}

operations!(
    create_organization,
    organization_by_label,
    insert_project,
    project,
    list_projects,
    update_project,
    archive_project,
    insert_service_account,
    service_account,
    list_project_service_accounts,
    update_service_account,
    delete_service_account,
    insert_api_key,
    api_key_by_hash,
    organization,
    api_key,
    list_project_api_keys,
    list_admin_keys,
    update_api_key,
    revoke_api_key,
    revoke_admin_key,
    record_key_usage,
    publish,
    list_org_service_accounts,
    insert_credential,
    credential,
    credential_by_client_id,
    list_credentials,
    update_credential,
    delete_credential,
    record_credential_usage,
    signing_keys,
    insert_signing_key,
    server_secret,
    is_empty,
    export,
    import,
    applied_schema_version,
    list_audit_events,
    claim_webhook_deliveries,
    finish_webhook_delivery,
    pending_webhook_deliveries,
);

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

#[async_trait]
impl Store for MeteredStore {
    async fn close(&self) {
        self.inner.close().await
    }

    async fn create_organization(
        &self,
        org: &Organization,
        default_project: &Project,
        admin_key: &ApiKey,
        only_if_empty: bool,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let call =
            self.inner
                .create_organization(org, default_project, admin_key, only_if_empty, audit);
        self.timed(Op::create_organization, call).await
    }

    async fn organization_by_label(&self, label: &str) -> StoreResult<Option<Organization>> {
        let call = self.inner.organization_by_label(label);
        self.timed(Op::organization_by_label, call).await
    }

    async fn insert_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let call = self.inner.insert_project(project, audit);
        self.timed(Op::insert_project, call).await
    }

    async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
        self.timed(Op::project, self.inner.project(org, id)).await
    }

    async fn list_projects(
        &self,
        org: &Id,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Project>> {
        let call = self.inner.list_projects(org, include_archived, page);
        self.timed(Op::list_projects, call).await
    }

    async fn update_project(&self, project: &Project, audit: &[AuditEvent]) -> StoreResult<()> {
        let call = self.inner.update_project(project, audit);
        self.timed(Op::update_project, call).await
    }

    async fn archive_project(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.archive_project(org, id, at, audit);
        self.timed(Op::archive_project, call).await
    }

    async fn insert_service_account(
        &self,
        account: &ServiceAccount,
        first_key: Option<&ApiKey>,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.insert_service_account(account, first_key, audit);
        self.timed(Op::insert_service_account, call).await
    }

    async fn service_account(&self, org: &Id, id: &Id) -> StoreResult<Option<ServiceAccount>> {
        let call = self.inner.service_account(org, id);
        self.timed(Op::service_account, call).await
    }

    async fn list_project_service_accounts(
        &self,
        org: &Id,
        project: &Id,
        page: &PageRequest,
    ) -> StoreResult<Page<ServiceAccount>> {
        let call = self.inner.list_project_service_accounts(org, project, page);
        self.timed(Op::list_project_service_accounts, call).await
    }

    async fn update_service_account(
        &self,
        account: &ServiceAccount,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.update_service_account(account, audit);
        self.timed(Op::update_service_account, call).await
    }

    async fn delete_service_account(
        &self,
        org: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.delete_service_account(org, id, at, audit);
        self.timed(Op::delete_service_account, call).await
    }

    async fn insert_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let call = self.inner.insert_api_key(key, audit);
        self.timed(Op::insert_api_key, call).await
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let call = self.inner.api_key_by_hash(hash);
        self.timed(Op::api_key_by_hash, call).await
    }

    async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
        self.timed(Op::organization, self.inner.organization(id))
            .await
    }

    async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
        self.timed(Op::api_key, self.inner.api_key(org, id)).await
    }

    async fn list_project_api_keys(
        &self,
        org: &Id,
        project: &Id,
        access: OwnerAccess,
        page: &PageRequest,
    ) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
        let call = self.inner.list_project_api_keys(org, project, access, page);
        self.timed(Op::list_project_api_keys, call).await
    }

    async fn list_admin_keys(&self, org: &Id, page: &PageRequest) -> StoreResult<Page<ApiKey>> {
        let call = self.inner.list_admin_keys(org, page);
        self.timed(Op::list_admin_keys, call).await
    }

    async fn update_api_key(&self, key: &ApiKey, audit: &[AuditEvent]) -> StoreResult<()> {
        let call = self.inner.update_api_key(key, audit);
        self.timed(Op::update_api_key, call).await
    }

    async fn revoke_api_key(
        &self,
        org: &Id,
        id: &Id,
        effective: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.revoke_api_key(org, id, effective, audit);
        self.timed(Op::revoke_api_key, call).await
    }

    async fn revoke_admin_key(
        &self,
        org: &Id,
        id: &Id,
        now: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.revoke_admin_key(org, id, now, audit);
        self.timed(Op::revoke_admin_key, call).await
    }

    async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let call = self.inner.record_key_usage(usage);
        self.timed(Op::record_key_usage, call).await
    }

    async fn publish(&self, change: &Change) -> StoreResult<()> {
        self.timed(Op::publish, self.inner.publish(change)).await
    }

    fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
        self.inner.subscribe()
    }

    async fn list_org_service_accounts(
        &self,
        org: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<ServiceAccount>> {
        let call = self.inner.list_org_service_accounts(org, window);
        self.timed(Op::list_org_service_accounts, call).await
    }

    async fn insert_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.insert_credential(credential, audit);
        self.timed(Op::insert_credential, call).await
    }

    async fn credential(&self, org: &Id, account: &Id, id: &Id) -> StoreResult<Option<Credential>> {
        let call = self.inner.credential(org, account, id);
        self.timed(Op::credential, call).await
    }

    async fn credential_by_client_id(&self, client_id: &str) -> StoreResult<Option<Credential>> {
        let call = self.inner.credential_by_client_id(client_id);
        self.timed(Op::credential_by_client_id, call).await
    }

    async fn list_credentials(
        &self,
        org: &Id,
        account: &Id,
        window: &Window,
    ) -> StoreResult<WindowPage<Credential>> {
        let call = self.inner.list_credentials(org, account, window);
        self.timed(Op::list_credentials, call).await
    }

    async fn update_credential(
        &self,
        credential: &Credential,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.update_credential(credential, audit);
        self.timed(Op::update_credential, call).await
    }

    async fn delete_credential(
        &self,
        org: &Id,
        account: &Id,
        id: &Id,
        at: Millis,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let call = self.inner.delete_credential(org, account, id, at, audit);
        self.timed(Op::delete_credential, call).await
    }

    async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
        let call = self.inner.record_credential_usage(usage);
        self.timed(Op::record_credential_usage, call).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.timed(Op::signing_keys, self.inner.signing_keys())
            .await
    }

    async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_others_at: Option<Millis>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let call = self.inner.insert_signing_key(key, retire_others_at, audit);
        self.timed(Op::insert_signing_key, call).await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let call = self.inner.server_secret(name, candidate);
        self.timed(Op::server_secret, call).await
    }

    async fn list_audit_events(
        &self,
        org: &Id,
        query: &AuditQuery,
    ) -> StoreResult<Page<AuditEntry>> {
        let call = self.inner.list_audit_events(org, query);
        self.timed(Op::list_audit_events, call).await
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>> {
        let call = self.inner.claim_webhook_deliveries(now, lease_until, limit);
        self.timed(Op::claim_webhook_deliveries, call).await
    }

    async fn finish_webhook_delivery(&self, id: &Id, outcome: &DeliveryOutcome) -> StoreResult<()> {
        let call = self.inner.finish_webhook_delivery(id, outcome);
        self.timed(Op::finish_webhook_delivery, call).await
    }

    async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
        let call = self.inner.pending_webhook_deliveries();
        self.timed(Op::pending_webhook_deliveries, call).await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.timed(Op::is_empty, self.inner.is_empty()).await
    }

    async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64> {
        self.timed(Op::export, self.inner.export(sink)).await
    }

    async fn import(&self, source: &mut RecordSource<'_>) -> StoreResult<u64> {
        self.timed(Op::import, self.inner.import(source)).await
    }

    async fn applied_schema_version(&self) -> StoreResult<i64> {
        let call = self.inner.applied_schema_version();
        self.timed(Op::applied_schema_version, call).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }
}

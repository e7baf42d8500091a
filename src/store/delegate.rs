//! The `Store` impl of every backend, written once: each trait method calls the backend's
//! inherent method of the same name and signature. A trait can have only one `impl` per type,
//! so this is what lets a backend define its methods in a file per aggregate (projects, keys,
//! credentials, …) instead of one impl block of a thousand lines, without repeating forty-odd
//! forwarding signatures in each backend.
//!
//! `Self::name` resolves to the inherent method (inherent items come before trait items). Had
//! a backend no such method, it would resolve to the trait's own and recurse forever; so the
//! macro also names every method where `Store` is not in scope, where only an inherent one
//! can answer, and a missing one fails to compile.

/// `impl Store for $store` by forwarding to `$store`'s inherent methods.
macro_rules! impl_store {
    ($store:ty) => {
        const _: () = {
            use $crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
            use $crate::domain::console::ConsoleSession;
            use $crate::domain::federation::{FederationRule, Provider};
            use $crate::domain::ids::Id;
            use $crate::domain::keys::KeyHash;
            use $crate::domain::limits::{Disabled, ProjectRateLimit};
            use $crate::domain::model::{
                ApiKey, Credential, Organization, OwnerAccess, Project, ServiceAccount, SigningKey,
            };
            use $crate::domain::page::{Page, PageRequest, Window, WindowPage};
            use $crate::domain::time::Millis;
            use $crate::store::{
                Change, Count, CountsCursor, PoolStats, RecordSink, RecordSource, StoreEvent,
                StoreResult,
            };

            #[async_trait::async_trait]
            impl $crate::store::Store for $store {
                async fn close(&self) {
                    Self::close(self).await
                }
                async fn create_organization(
                    &self,
                    org: &Organization,
                    default_project: &Project,
                    admin_key: &ApiKey,
                    only_if_empty: bool,
                    audit: &[AuditEvent],
                ) -> StoreResult<bool> {
                    Self::create_organization(
                        self,
                        org,
                        default_project,
                        admin_key,
                        only_if_empty,
                        audit,
                    )
                    .await
                }
                async fn organization_by_label(
                    &self,
                    label: &str,
                ) -> StoreResult<Option<Organization>> {
                    Self::organization_by_label(self, label).await
                }
                async fn insert_project(
                    &self,
                    project: &Project,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_project(self, project, audit).await
                }
                async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
                    Self::project(self, org, id).await
                }
                async fn list_projects(
                    &self,
                    org: &Id,
                    include_archived: bool,
                    page: &PageRequest,
                ) -> StoreResult<Page<Project>> {
                    Self::list_projects(self, org, include_archived, page).await
                }
                async fn update_project(
                    &self,
                    project: &Project,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_project(self, project, audit).await
                }
                async fn archive_project(
                    &self,
                    org: &Id,
                    id: &Id,
                    at: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::archive_project(self, org, id, at, audit).await
                }
                async fn insert_service_account(
                    &self,
                    account: &ServiceAccount,
                    first_key: Option<&ApiKey>,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_service_account(self, account, first_key, audit).await
                }
                async fn service_account(
                    &self,
                    org: &Id,
                    id: &Id,
                ) -> StoreResult<Option<ServiceAccount>> {
                    Self::service_account(self, org, id).await
                }
                async fn list_project_service_accounts(
                    &self,
                    org: &Id,
                    project: &Id,
                    page: &PageRequest,
                ) -> StoreResult<Page<ServiceAccount>> {
                    Self::list_project_service_accounts(self, org, project, page).await
                }
                async fn update_service_account(
                    &self,
                    account: &ServiceAccount,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_service_account(self, account, audit).await
                }
                async fn delete_service_account(
                    &self,
                    org: &Id,
                    id: &Id,
                    at: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::delete_service_account(self, org, id, at, audit).await
                }
                async fn insert_api_key(
                    &self,
                    key: &ApiKey,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_api_key(self, key, audit).await
                }
                async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
                    Self::api_key_by_hash(self, hash).await
                }
                async fn organization(&self, id: &Id) -> StoreResult<Option<Organization>> {
                    Self::organization(self, id).await
                }
                async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
                    Self::api_key(self, org, id).await
                }
                async fn list_project_api_keys(
                    &self,
                    org: &Id,
                    project: &Id,
                    access: OwnerAccess,
                    page: &PageRequest,
                ) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
                    Self::list_project_api_keys(self, org, project, access, page).await
                }
                async fn list_admin_keys(
                    &self,
                    org: &Id,
                    page: &PageRequest,
                ) -> StoreResult<Page<ApiKey>> {
                    Self::list_admin_keys(self, org, page).await
                }
                async fn update_api_key(
                    &self,
                    key: &ApiKey,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_api_key(self, key, audit).await
                }
                async fn revoke_api_key(
                    &self,
                    org: &Id,
                    id: &Id,
                    effective: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::revoke_api_key(self, org, id, effective, audit).await
                }
                async fn revoke_admin_key(
                    &self,
                    org: &Id,
                    id: &Id,
                    now: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::revoke_admin_key(self, org, id, now, audit).await
                }
                async fn set_api_key_disabled(
                    &self,
                    org: &Id,
                    id: &Id,
                    disabled: Option<&Disabled>,
                    now: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::set_api_key_disabled(self, org, id, disabled, now, audit).await
                }
                async fn project_rate_limits(
                    &self,
                    org: &Id,
                    project: &Id,
                ) -> StoreResult<Vec<ProjectRateLimit>> {
                    Self::project_rate_limits(self, org, project).await
                }
                async fn put_project_rate_limit(
                    &self,
                    limit: &ProjectRateLimit,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::put_project_rate_limit(self, limit, audit).await
                }
                async fn push_counts(&self, counts: &[Count]) -> StoreResult<()> {
                    Self::push_counts(self, counts).await
                }
                async fn pull_counts(
                    &self,
                    node: &str,
                    after: Option<CountsCursor>,
                    not_before: Millis,
                ) -> StoreResult<(Vec<Count>, CountsCursor)> {
                    Self::pull_counts(self, node, after, not_before).await
                }
                async fn prune_counts(&self, span: Millis, before: Millis) -> StoreResult<u64> {
                    Self::prune_counts(self, span, before).await
                }
                async fn record_key_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
                    Self::record_key_usage(self, usage).await
                }
                async fn publish(&self, change: &Change) -> StoreResult<()> {
                    Self::publish(self, change).await
                }
                fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<StoreEvent>> {
                    Self::subscribe(self)
                }
                async fn list_org_service_accounts(
                    &self,
                    org: &Id,
                    window: &Window,
                ) -> StoreResult<WindowPage<ServiceAccount>> {
                    Self::list_org_service_accounts(self, org, window).await
                }
                async fn insert_credential(
                    &self,
                    credential: &Credential,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_credential(self, credential, audit).await
                }
                async fn credential(
                    &self,
                    org: &Id,
                    account: &Id,
                    id: &Id,
                ) -> StoreResult<Option<Credential>> {
                    Self::credential(self, org, account, id).await
                }
                async fn credential_by_client_id(
                    &self,
                    client_id: &str,
                ) -> StoreResult<Option<Credential>> {
                    Self::credential_by_client_id(self, client_id).await
                }
                async fn list_credentials(
                    &self,
                    org: &Id,
                    account: &Id,
                    window: &Window,
                ) -> StoreResult<WindowPage<Credential>> {
                    Self::list_credentials(self, org, account, window).await
                }
                async fn update_credential(
                    &self,
                    credential: &Credential,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_credential(self, credential, audit).await
                }
                async fn delete_credential(
                    &self,
                    org: &Id,
                    account: &Id,
                    id: &Id,
                    at: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::delete_credential(self, org, account, id, at, audit).await
                }
                async fn record_credential_usage(&self, usage: &[(Id, Millis)]) -> StoreResult<()> {
                    Self::record_credential_usage(self, usage).await
                }
                async fn insert_provider(
                    &self,
                    provider: &Provider,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_provider(self, provider, audit).await
                }
                async fn provider(&self, org: &Id, id: &Id) -> StoreResult<Option<Provider>> {
                    Self::provider(self, org, id).await
                }
                async fn provider_by_id(&self, id: &Id) -> StoreResult<Option<Provider>> {
                    Self::provider_by_id(self, id).await
                }
                async fn list_providers(
                    &self,
                    org: &Id,
                    page: &PageRequest,
                ) -> StoreResult<Page<Provider>> {
                    Self::list_providers(self, org, page).await
                }
                async fn update_provider(
                    &self,
                    provider: &Provider,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_provider(self, provider, audit).await
                }
                async fn delete_provider(
                    &self,
                    org: &Id,
                    id: &Id,
                    at: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::delete_provider(self, org, id, at, audit).await
                }
                async fn insert_rule(
                    &self,
                    rule: &FederationRule,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_rule(self, rule, audit).await
                }
                async fn rule(
                    &self,
                    org: &Id,
                    provider: &Id,
                    id: &Id,
                ) -> StoreResult<Option<FederationRule>> {
                    Self::rule(self, org, provider, id).await
                }
                async fn list_rules(
                    &self,
                    org: &Id,
                    provider: &Id,
                    service_account: Option<&Id>,
                    page: &PageRequest,
                ) -> StoreResult<Page<FederationRule>> {
                    Self::list_rules(self, org, provider, service_account, page).await
                }
                async fn update_rule(
                    &self,
                    rule: &FederationRule,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::update_rule(self, rule, audit).await
                }
                async fn delete_rule(
                    &self,
                    org: &Id,
                    provider: &Id,
                    id: &Id,
                    at: Millis,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::delete_rule(self, org, provider, id, at, audit).await
                }
                async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
                    Self::signing_keys(self).await
                }
                async fn insert_signing_key(
                    &self,
                    key: &SigningKey,
                    retire_others_at: Option<Millis>,
                    audit: &[AuditEvent],
                ) -> StoreResult<bool> {
                    Self::insert_signing_key(self, key, retire_others_at, audit).await
                }
                async fn insert_console_session(
                    &self,
                    session: &ConsoleSession,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::insert_console_session(self, session, audit).await
                }
                async fn console_session(
                    &self,
                    hash: &KeyHash,
                ) -> StoreResult<Option<ConsoleSession>> {
                    Self::console_session(self, hash).await
                }
                async fn touch_console_session(
                    &self,
                    hash: &KeyHash,
                    at: Millis,
                ) -> StoreResult<()> {
                    Self::touch_console_session(self, hash, at).await
                }
                async fn delete_console_session(
                    &self,
                    hash: &KeyHash,
                    audit: &[AuditEvent],
                ) -> StoreResult<()> {
                    Self::delete_console_session(self, hash, audit).await
                }
                async fn prune_console_sessions(&self, before: Millis) -> StoreResult<u64> {
                    Self::prune_console_sessions(self, before).await
                }
                async fn server_secret(
                    &self,
                    name: &str,
                    candidate: &[u8],
                ) -> StoreResult<Vec<u8>> {
                    Self::server_secret(self, name, candidate).await
                }
                async fn list_audit_events(
                    &self,
                    org: &Id,
                    query: &AuditQuery,
                ) -> StoreResult<Page<AuditEntry>> {
                    Self::list_audit_events(self, org, query).await
                }
                async fn claim_webhook_deliveries(
                    &self,
                    now: Millis,
                    lease_until: Millis,
                    limit: u32,
                ) -> StoreResult<Vec<(AuditEntry, u32)>> {
                    Self::claim_webhook_deliveries(self, now, lease_until, limit).await
                }
                async fn finish_webhook_delivery(
                    &self,
                    id: &Id,
                    outcome: &DeliveryOutcome,
                ) -> StoreResult<()> {
                    Self::finish_webhook_delivery(self, id, outcome).await
                }
                async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
                    Self::pending_webhook_deliveries(self).await
                }
                async fn is_empty(&self) -> StoreResult<bool> {
                    Self::is_empty(self).await
                }
                async fn export(&self, sink: &mut RecordSink<'_>) -> StoreResult<u64> {
                    Self::export(self, sink).await
                }
                async fn import(&self, source: &mut RecordSource<'_>) -> StoreResult<u64> {
                    Self::import(self, source).await
                }
                async fn applied_schema_version(&self) -> StoreResult<i64> {
                    Self::applied_schema_version(self).await
                }
                fn pool_stats(&self) -> Vec<PoolStats> {
                    Self::pool_stats(self)
                }
            }

            /// Every forwarded method is an inherent one (see the module comment).
            #[allow(dead_code)]
            fn inherent_methods() {
                let _ = (
                    <$store>::close,
                    <$store>::create_organization,
                    <$store>::organization_by_label,
                    <$store>::insert_project,
                    <$store>::project,
                    <$store>::list_projects,
                    <$store>::update_project,
                    <$store>::archive_project,
                    <$store>::insert_service_account,
                    <$store>::service_account,
                    <$store>::list_project_service_accounts,
                    <$store>::update_service_account,
                    <$store>::delete_service_account,
                    <$store>::insert_api_key,
                    <$store>::api_key_by_hash,
                    <$store>::organization,
                    <$store>::api_key,
                    <$store>::list_project_api_keys,
                    <$store>::list_admin_keys,
                    <$store>::update_api_key,
                    <$store>::revoke_api_key,
                    <$store>::revoke_admin_key,
                    <$store>::set_api_key_disabled,
                    <$store>::project_rate_limits,
                    <$store>::put_project_rate_limit,
                    <$store>::push_counts,
                    <$store>::pull_counts,
                    <$store>::prune_counts,
                    <$store>::record_key_usage,
                    <$store>::publish,
                    <$store>::subscribe,
                    <$store>::list_org_service_accounts,
                    <$store>::insert_credential,
                    <$store>::credential,
                    <$store>::credential_by_client_id,
                    <$store>::list_credentials,
                    <$store>::update_credential,
                    <$store>::delete_credential,
                    <$store>::record_credential_usage,
                    <$store>::signing_keys,
                    <$store>::insert_signing_key,
                    <$store>::server_secret,
                    <$store>::list_audit_events,
                    <$store>::claim_webhook_deliveries,
                    <$store>::finish_webhook_delivery,
                    <$store>::pending_webhook_deliveries,
                    <$store>::is_empty,
                    <$store>::export,
                    <$store>::import,
                    <$store>::applied_schema_version,
                    <$store>::pool_stats,
                );
            }
        };
    };
}

pub(super) use impl_store;

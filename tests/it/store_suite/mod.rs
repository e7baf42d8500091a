//! One suite for every store backend: the same cases, run against each implementation.
//!
//! The cases live in one file per aggregate, as the stores are split (`src/store/sqlite/`);
//! this file holds the harness (`store_suite!` runs each case once per backend, on a store of
//! its own) and the builders the cases share.

mod admin_keys;
mod admission;
mod admission_transfer;
mod audit;
mod console_sessions;
mod counts;
mod credentials;
mod federation;
mod keys;
mod organizations;
mod projects;
mod service_accounts;
mod signing;
mod transfer;

use admin_keys::*;
use admission::*;
use admission_transfer::*;
use audit::*;
use console_sessions::*;
use counts::*;
use credentials::*;
use federation::*;
use keys::*;
use organizations::*;
use projects::*;
use service_accounts::*;
use signing::*;
use transfer::*;

use std::sync::Arc;

use keyplane::domain::ids::Id;
use keyplane::domain::keys::{KeyHash, KeyKind, PlainKey};
use keyplane::domain::model::{
    ApiKey, Credential, Organization, Project, Role, ServiceAccount, SigningKey,
};
use keyplane::domain::page::{PageRequest, Window, WindowPage};
use keyplane::store::{Store, StoreError};

type S = Arc<dyn Store>;

/// Runs every listed case once per backend, each on its own empty store.
macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let backing = crate::common::TestStore::sqlite().await;
                    super::$case(backing.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(backing) = crate::common::TestStore::postgres().await else { return };
                    super::$case(backing.store.clone()).await;
                    backing.store.close().await;
                }
            )*
        }
    };
}

/// Like `store_suite!`, for cases that need a second, empty store of the same backend.
macro_rules! two_store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite_pair {
            $(
                #[tokio::test]
                async fn $case() {
                    let a = crate::common::TestStore::sqlite().await;
                    let b = crate::common::TestStore::sqlite().await;
                    super::$case(a.store.clone(), b.store.clone()).await;
                }
            )*
        }
        mod postgres_pair {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(a) = crate::common::TestStore::postgres().await else { return };
                    let Some(b) = crate::common::TestStore::postgres().await else { return };
                    super::$case(a.store.clone(), b.store.clone()).await;
                    a.store.close().await;
                    b.store.close().await;
                }
            )*
        }
    };
}

store_suite!(
    the_last_write_capable_admin_key_cannot_be_revoked,
    concurrent_revocations_keep_one_write_capable_admin_key,
    audit_events_commit_with_their_change_and_only_then,
    audit_lists_filter_and_page_both_ways,
    webhook_deliveries_are_leased_retried_and_finished,
    organizations_initialise_once_and_labels_are_unique,
    projects_are_scoped_to_their_organization,
    project_lists_are_keyset_paginated_and_filter_archived,
    cursors_from_other_scopes_are_unknown,
    archived_and_default_projects_refuse_changes,
    account_and_first_key_are_written_atomically,
    concurrent_writes_that_fail_undo_only_themselves,
    account_lists_page_exactly_and_skip_deleted,
    deleting_an_account_revokes_all_its_keys,
    keys_round_trip_by_hash,
    org_account_lists_walk_both_ways_exactly_once,
    org_account_list_cursors_are_scoped_and_exclusive,
    credentials_round_trip_and_refuse_duplicates,
    credential_lists_walk_both_ways_and_skip_deleted,
    credentials_need_a_live_account_and_die_with_it,
    credentials_racing_an_account_delete_never_outlive_it,
    credential_usage_only_moves_forward,
    signing_keys_insert_once_then_rotate,
    racing_first_starts_make_one_signing_key,
    server_secrets_keep_their_first_value,
    admission_fields_of_keys_and_projects_round_trip,
    project_keys_are_disabled_and_enabled,
    disabled_admin_keys_do_not_count_as_the_remaining_one,
    concurrent_disables_keep_one_enabled_admin_key,
    rate_limit_overrides_upsert_and_need_an_active_project,
    counts_are_pushed_pulled_replaced_and_pruned,
    pulls_racing_many_pushes_lose_no_row,
    providers_round_trip_are_scoped_paged_and_deleted,
    providers_are_limited_and_keep_their_rules,
    rules_round_trip_filter_and_need_a_live_provider_and_account,
    rules_are_limited_per_provider,
    rules_racing_their_provider_delete_never_outlive_it,
    console_sessions_round_trip_touch_end_and_prune,
    console_sessions_need_their_organization_and_key_and_are_not_exported,
);

two_store_suite!(
    export_and_import_carry_credentials,
    export_and_import_carry_audit_events,
    export_and_import_carry_admission_state,
    export_and_import_carry_federation,
);

const T0: i64 = 1_700_000_000_000;

fn id() -> Id {
    Id::generate().unwrap()
}

async fn new_org(store: &S, label: &str) -> (Organization, Project) {
    let org = Organization {
        id: id(),
        label: label.into(),
        name: label.into(),
        created_at: T0,
    };
    let default = project_of(&org, "Default project", true);
    let admin = admin_key(&org);
    assert!(store
        .create_organization(&org, &default, &admin, false, &[])
        .await
        .unwrap());
    (org, default)
}

fn project_of(org: &Organization, name: &str, is_default: bool) -> Project {
    Project {
        id: id(),
        organization_id: org.id.clone(),
        name: name.into(),
        external_key_id: None,
        is_default,
        created_at: T0,
        archived_at: None,
        allowed_ips: None,
    }
}

async fn new_project(store: &S, org: &Organization, name: &str) -> Project {
    let p = project_of(org, name, false);
    store.insert_project(&p, &[]).await.unwrap();
    p
}

fn account_of(project: &Project, name: &str) -> ServiceAccount {
    ServiceAccount {
        id: id(),
        organization_id: project.organization_id.clone(),
        project_id: Some(project.id.clone()),
        name: name.into(),
        description: None,
        role: Role::Member,
        created_at: T0,
        updated_at: T0,
    }
}

fn key_for(account: &ServiceAccount) -> (ApiKey, PlainKey) {
    let value = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    let key = ApiKey {
        id: id(),
        organization_id: account.organization_id.clone(),
        kind: KeyKind::ServiceAccount,
        project_id: account.project_id.clone(),
        service_account_id: Some(account.id.clone()),
        name: "k".into(),
        scopes: vec!["a.read".into(), "b.write".into()],
        hash: value.hash(),
        redacted_value: value.redacted(),
        created_at: T0,
        expires_at: Some(T0 + 60_000),
        last_used_at: None,
        revoked_at: None,
        allowed_ips: None,
        limits: Default::default(),
        disabled: None,
    };
    (key, value)
}

fn admin_key(org: &Organization) -> ApiKey {
    let value = PlainKey::generate(KeyKind::Admin).unwrap();
    ApiKey {
        id: id(),
        organization_id: org.id.clone(),
        kind: KeyKind::Admin,
        project_id: None,
        service_account_id: None,
        name: "admin".into(),
        scopes: vec![],
        hash: value.hash(),
        redacted_value: value.redacted(),
        created_at: T0,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        allowed_ips: None,
        limits: Default::default(),
        disabled: None,
    }
}

fn page(limit: u32, after: Option<&Id>) -> PageRequest {
    PageRequest {
        limit,
        after: after.cloned(),
        descending: false,
    }
}

// ---- Keycard dialect: organization-wide accounts, credentials, two-way lists ----

fn window(limit: u32, after: Option<&Id>, before: Option<&Id>) -> Window {
    Window {
        limit,
        after: after.cloned(),
        before: before.cloned(),
    }
}

/// An account created in the organization rather than in a project.
fn org_account(org: &Organization, name: &str) -> ServiceAccount {
    ServiceAccount {
        id: id(),
        organization_id: org.id.clone(),
        project_id: None,
        name: name.into(),
        description: Some("org-wide".into()),
        role: Role::Member,
        created_at: T0,
        updated_at: T0,
    }
}

fn credential_for(account: &ServiceAccount, client_id: &str) -> Credential {
    Credential {
        id: id(),
        organization_id: account.organization_id.clone(),
        service_account_id: account.id.clone(),
        client_id: client_id.into(),
        secret_hash: KeyHash::of(&format!("secret of {client_id}")),
        name: format!("cred {client_id}"),
        description: None,
        created_at: T0,
        updated_at: T0,
        last_used_at: None,
        deleted_at: None,
        federation: None,
    }
}

fn ids<T>(page: &WindowPage<T>, id_of: fn(&T) -> &Id) -> Vec<Id> {
    page.items.iter().map(|x| id_of(x).clone()).collect()
}

/// Walks a two-way list forward from the start and backward from `end` (a cursor past the
/// last live item), checking `has_next`/`has_prev` on every page; returns both walks in
/// creation order.
async fn walk_both_ways<T, F, Fut>(
    list: F,
    limit: u32,
    end: &Id,
    id_of: fn(&T) -> &Id,
) -> (Vec<Id>, Vec<Id>)
where
    F: Fn(Window) -> Fut,
    Fut: std::future::Future<Output = Result<WindowPage<T>, StoreError>>,
{
    let mut forward = vec![];
    let mut after: Option<Id> = None;
    loop {
        let page = list(window(limit, after.as_ref(), None)).await.unwrap();
        assert_eq!(
            page.has_prev,
            after.is_some(),
            "forward has_prev after {forward:?}"
        );
        forward.extend(ids(&page, id_of));
        if !page.has_next {
            break;
        }
        assert_eq!(
            page.items.len(),
            limit as usize,
            "a full page when more follow"
        );
        after = page.items.last().map(|x| id_of(x).clone());
        assert!(forward.len() < 1000, "forward walk does not end");
    }
    let mut backward: Vec<Id> = vec![];
    let mut before = end.clone();
    let mut first = true;
    loop {
        let page = list(window(limit, None, Some(&before))).await.unwrap();
        assert!(!page.has_next || !first, "nothing lies past the end");
        assert!(page.has_next || first, "backward has_next on a later page");
        first = false;
        let mut got = ids(&page, id_of);
        got.extend(backward);
        backward = got;
        if !page.has_prev {
            break;
        }
        assert_eq!(
            page.items.len(),
            limit as usize,
            "a full page when more precede"
        );
        before = id_of(&page.items[0]).clone();
        assert!(backward.len() < 1000, "backward walk does not end");
    }
    (forward, backward)
}

fn account_id(a: &ServiceAccount) -> &Id {
    &a.id
}

fn credential_id(c: &Credential) -> &Id {
    &c.id
}

fn signing_key(kid: &str, created_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        private_key: vec![1; 32],
        public_key: kid.as_bytes().to_vec(),
        created_at,
        retired_at: None,
    }
}

//! One suite for every store backend: the same cases, run against each implementation.

mod admin_keys;
mod audit;

use admin_keys::*;
use audit::*;

use std::sync::Arc;

use keyplane::domain::ids::Id;
use keyplane::domain::keys::{KeyHash, KeyKind, PlainKey};
use keyplane::domain::model::{
    ApiKey, Credential, Organization, Project, Role, ServiceAccount, SigningKey,
};
use keyplane::domain::page::{PageRequest, Window, WindowPage};
use keyplane::store::{Record, Store, StoreError};

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
);

two_store_suite!(
    export_and_import_carry_credentials,
    export_and_import_carry_audit_events
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
    }
}

fn page(limit: u32, after: Option<&Id>) -> PageRequest {
    PageRequest {
        limit,
        after: after.cloned(),
        descending: false,
    }
}

async fn organizations_initialise_once_and_labels_are_unique(store: S) {
    let org = Organization {
        id: id(),
        label: "default".into(),
        name: "d".into(),
        created_at: T0,
    };
    let p = project_of(&org, "Default project", true);
    assert!(store
        .create_organization(&org, &p, &admin_key(&org), true, &[])
        .await
        .unwrap());
    // A second "first start" changes nothing.
    let again = Organization {
        id: id(),
        ..org.clone()
    };
    let p2 = project_of(&again, "Default project", true);
    assert!(!store
        .create_organization(&again, &p2, &admin_key(&again), true, &[])
        .await
        .unwrap());
    assert!(store.project(&again.id, &p2.id).await.unwrap().is_none());
    // Same label, not only-if-empty: refused as a duplicate, and atomically (no project left).
    let err = store
        .create_organization(&again, &p2, &admin_key(&again), false, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert!(store.project(&again.id, &p2.id).await.unwrap().is_none());
    assert_eq!(
        store.organization_by_label("default").await.unwrap(),
        Some(org)
    );
    assert_eq!(store.organization_by_label("nope").await.unwrap(), None);
}

async fn projects_are_scoped_to_their_organization(store: S) {
    let (a, _) = new_org(&store, "a").await;
    let (b, _) = new_org(&store, "b").await;
    let p = new_project(&store, &a, "alpha").await;
    assert_eq!(store.project(&a.id, &p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(store.project(&b.id, &p.id).await.unwrap(), None);
    let listed = store
        .list_projects(&b.id, true, &page(100, None))
        .await
        .unwrap();
    assert!(listed.items.iter().all(|x| x.organization_id == b.id));
}

async fn project_lists_are_keyset_paginated_and_filter_archived(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let mut ids = vec![default.id.clone()];
    for i in 0..9 {
        ids.push(new_project(&store, &org, &format!("p{i}")).await.id);
    }
    store
        .archive_project(&org.id, &ids[3], T0 + 1, &[])
        .await
        .unwrap();
    let mut seen = vec![];
    let mut after = None;
    loop {
        let p = store
            .list_projects(&org.id, false, &page(4, after.as_ref()))
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|x| x.id.clone()));
        after = p.items.last().map(|x| x.id.clone());
        if !p.has_more {
            break;
        }
    }
    let expected: Vec<_> = ids.iter().filter(|i| **i != ids[3]).cloned().collect();
    assert_eq!(
        seen, expected,
        "creation order, archived left out, each once"
    );
    let all = store
        .list_projects(&org.id, true, &page(100, None))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 10);
    assert!(!all.has_more);
    let exact = store
        .list_projects(&org.id, true, &page(10, None))
        .await
        .unwrap();
    assert!(
        !exact.has_more,
        "has_more must be exact when the page ends the list"
    );
    // An archived project is still a valid cursor.
    let after_archived = store
        .list_projects(&org.id, false, &page(100, Some(&ids[3])))
        .await
        .unwrap();
    assert_eq!(after_archived.items.first().map(|p| &p.id), Some(&ids[4]));
}

async fn cursors_from_other_scopes_are_unknown(store: S) {
    let (a, _) = new_org(&store, "a").await;
    let (b, _) = new_org(&store, "b").await;
    let pa = new_project(&store, &a, "pa").await;
    let pa2 = new_project(&store, &a, "pa2").await;
    let acct = account_of(&pa, "x");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let foreign = store
        .list_projects(&b.id, true, &page(5, Some(&pa.id)))
        .await;
    assert!(matches!(foreign, Err(StoreError::UnknownCursor)));
    let unknown = store
        .list_projects(&a.id, true, &page(5, Some(&id())))
        .await;
    assert!(matches!(unknown, Err(StoreError::UnknownCursor)));
    let other_project = store
        .list_project_service_accounts(&a.id, &pa2.id, &page(5, Some(&acct.id)))
        .await;
    assert!(matches!(other_project, Err(StoreError::UnknownCursor)));
}

async fn archived_and_default_projects_refuse_changes(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let err = store
        .archive_project(&org.id, &default.id, T0, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let mut p = new_project(&store, &org, "p").await;
    store
        .archive_project(&org.id, &p.id, T0 + 5, &[])
        .await
        .unwrap();
    assert!(matches!(
        store.archive_project(&org.id, &p.id, T0 + 9, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = store.project(&org.id, &p.id).await.unwrap().unwrap();
    assert_eq!(
        stored.archived_at,
        Some(T0 + 5),
        "second archive must not move the date"
    );
    p.name = "renamed".into();
    assert!(matches!(
        store.update_project(&p, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.project(&org.id, &p.id).await.unwrap().unwrap().name,
        "p"
    );
    let acct = account_of(&p, "late");
    assert!(matches!(
        store.insert_service_account(&acct, None, &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn account_and_first_key_are_written_atomically(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let acct = account_of(&p, "svc");
    let (key, value) = key_for(&acct);
    store
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    assert_eq!(
        store.service_account(&org.id, &acct.id).await.unwrap(),
        Some(acct.clone())
    );
    assert_eq!(
        store.api_key_by_hash(&value.hash()).await.unwrap(),
        Some(key)
    );
    // The second insert fails on the duplicate key hash; the account must not be left behind.
    let acct2 = account_of(&p, "svc2");
    let (mut key2, _) = key_for(&acct2);
    key2.hash = value.hash();
    assert!(store
        .insert_service_account(&acct2, Some(&key2), &[])
        .await
        .is_err());
    assert_eq!(
        store.service_account(&org.id, &acct2.id).await.unwrap(),
        None
    );
}

/// Many writes at once (SQLite commits them together, each in a savepoint): the ones whose
/// guard or unique value fails leave nothing behind, and do not take the others down.
async fn concurrent_writes_that_fail_undo_only_themselves(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let live = new_project(&store, &org, "live").await;
    let archived = new_project(&store, &org, "archived").await;
    store
        .archive_project(&org.id, &archived.id, T0 + 1, &[])
        .await
        .unwrap();
    let (taken_acct, taken_value) = {
        let acct = account_of(&live, "taken");
        let (key, value) = key_for(&acct);
        store
            .insert_service_account(&acct, Some(&key), &[])
            .await
            .unwrap();
        (acct, value)
    };
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let project = if i % 4 == 1 { &archived } else { &live };
            let acct = account_of(project, &format!("svc{i}"));
            let (mut key, _) = key_for(&acct);
            if i % 4 == 2 {
                key.hash = taken_value.hash();
            }
            let store = store.clone();
            tokio::spawn(async move {
                let result = store.insert_service_account(&acct, Some(&key), &[]).await;
                (i, acct, key, result)
            })
        })
        .collect();
    for t in tasks {
        let (i, acct, key, result) = t.await.unwrap();
        let stored = store.service_account(&org.id, &acct.id).await.unwrap();
        let stored_key = store.api_key(&org.id, &key.id).await.unwrap();
        match (i % 4, result) {
            (1, Err(StoreError::Conflict(_))) | (2, Err(StoreError::Duplicate(_))) => {
                assert_eq!(
                    (stored, stored_key),
                    (None, None),
                    "write {i} left rows behind"
                );
            }
            (0 | 3, Ok(())) => {
                assert_eq!(stored, Some(acct));
                assert_eq!(stored_key, Some(key));
            }
            (_, other) => panic!("write {i}: unexpected {other:?}"),
        }
    }
    assert!(store
        .service_account(&org.id, &taken_acct.id)
        .await
        .unwrap()
        .is_some());
}

async fn account_lists_page_exactly_and_skip_deleted(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let other = new_project(&store, &org, "other").await;
    store
        .insert_service_account(&account_of(&other, "elsewhere"), None, &[])
        .await
        .unwrap();
    let mut ids = vec![];
    for i in 0..45 {
        let a = account_of(&p, &format!("svc{i}"));
        store.insert_service_account(&a, None, &[]).await.unwrap();
        ids.push(a.id);
    }
    store
        .delete_service_account(&org.id, &ids[10], T0 + 1, &[])
        .await
        .unwrap();
    let mut seen = vec![];
    let mut after = None;
    let mut pages = 0;
    loop {
        let pg = store
            .list_project_service_accounts(&org.id, &p.id, &page(7, after.as_ref()))
            .await
            .unwrap();
        pages += 1;
        seen.extend(pg.items.iter().map(|a| a.id.clone()));
        after = pg.items.last().map(|a| a.id.clone());
        if !pg.has_more {
            break;
        }
    }
    let expected: Vec<_> = ids.iter().filter(|i| **i != ids[10]).cloned().collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 7, "44 accounts at 7 a page");
    // A deleted account still works as a cursor.
    let after_deleted = store
        .list_project_service_accounts(&org.id, &p.id, &page(1, Some(&ids[10])))
        .await
        .unwrap();
    assert_eq!(after_deleted.items[0].id, ids[11]);
}

async fn deleting_an_account_revokes_all_its_keys(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let acct = account_of(&p, "svc");
    let (k1, v1) = key_for(&acct);
    store
        .insert_service_account(&acct, Some(&k1), &[])
        .await
        .unwrap();
    let (k2, v2) = key_for(&acct);
    store.insert_api_key(&k2, &[]).await.unwrap();
    let bystander = account_of(&p, "other");
    let (k3, v3) = key_for(&bystander);
    store
        .insert_service_account(&bystander, Some(&k3), &[])
        .await
        .unwrap();

    store
        .delete_service_account(&org.id, &acct.id, T0 + 7, &[])
        .await
        .unwrap();
    assert_eq!(
        store.service_account(&org.id, &acct.id).await.unwrap(),
        None
    );
    for v in [&v1, &v2] {
        let k = store.api_key_by_hash(&v.hash()).await.unwrap().unwrap();
        assert_eq!(k.revoked_at, Some(T0 + 7));
    }
    let untouched = store.api_key_by_hash(&v3.hash()).await.unwrap().unwrap();
    assert_eq!(untouched.revoked_at, None);
    assert!(matches!(
        store
            .delete_service_account(&org.id, &acct.id, T0 + 8, &[])
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (late, _) = key_for(&acct);
    assert!(matches!(
        store.insert_api_key(&late, &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn keys_round_trip_by_hash(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let mut acct = account_of(&p, "svc");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let (key, value) = key_for(&acct);
    store.insert_api_key(&key, &[]).await.unwrap();
    let got = store.api_key_by_hash(&value.hash()).await.unwrap().unwrap();
    assert_eq!(got, key);
    assert_eq!(got.scopes, vec!["a.read", "b.write"]);
    let stranger = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    assert_eq!(store.api_key_by_hash(&stranger.hash()).await.unwrap(), None);
    acct.name = "renamed".into();
    acct.role = Role::Owner;
    acct.updated_at = T0 + 3;
    store.update_service_account(&acct, &[]).await.unwrap();
    assert_eq!(
        store.service_account(&org.id, &acct.id).await.unwrap(),
        Some(acct)
    );
}

// ---- Keycard dialect ----

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

async fn org_account_lists_walk_both_ways_exactly_once(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let other_project = new_project(&store, &org, "other").await;
    let (stranger_org, stranger_default) = new_org(&store, "b").await;
    // Interleaved with the listed ones: never listed.
    let stranger = account_of(&stranger_default, "stranger");
    let mut all = vec![];
    for i in 0..25 {
        let a = match i % 3 {
            0 => org_account(&org, &format!("org{i}")),
            1 => account_of(&default, &format!("default{i}")),
            _ => account_of(&other_project, &format!("other{i}")),
        };
        store.insert_service_account(&a, None, &[]).await.unwrap();
        if i == 12 {
            store
                .insert_service_account(&stranger, None, &[])
                .await
                .unwrap();
        }
        all.push(a.id);
    }
    // One in the middle and the newest: 23 live accounts remain.
    for gone in [&all[7], &all[24]] {
        store
            .delete_service_account(&org.id, gone, T0 + 1, &[])
            .await
            .unwrap();
    }
    let live: Vec<Id> = all
        .iter()
        .filter(|i| **i != all[7] && **i != all[24])
        .cloned()
        .collect();
    assert_eq!(live.len(), 23);

    let (forward, backward) = walk_both_ways(
        |w| {
            let store = store.clone();
            let org = org.id.clone();
            async move { store.list_org_service_accounts(&org, &w).await }
        },
        5,
        // The newest account is deleted: it still works as the cursor to walk back from.
        &all[24],
        account_id,
    )
    .await;
    assert_eq!(
        forward, live,
        "forward: every account once, in creation order"
    );
    assert_eq!(
        backward, live,
        "backward: every account once, in creation order"
    );

    let page = |w: Window| {
        let store = store.clone();
        let org = org.id.clone();
        async move { store.list_org_service_accounts(&org, &w).await.unwrap() }
    };
    // Project accounts and org-wide ones come back whole.
    let first = page(window(3, None, None)).await;
    assert_eq!(first.items[0], org_account_with_id(&org, &all[0]));
    assert_eq!(first.items[1].project_id, Some(default.id.clone()));
    // Exact at both ends.
    let exact = page(window(23, None, None)).await;
    assert!(!exact.has_next && !exact.has_prev);
    assert_eq!(exact.items.len(), 23);
    assert!(page(window(22, None, None)).await.has_next);
    let past_the_end = page(window(5, live.last(), None)).await;
    assert!(past_the_end.items.is_empty());
    assert!(!past_the_end.has_next && past_the_end.has_prev);
    let before_the_start = page(window(5, None, Some(&live[0]))).await;
    assert!(before_the_start.items.is_empty());
    assert!(before_the_start.has_next && !before_the_start.has_prev);
    // A deleted account in the middle still works, both ways.
    let after_deleted = page(window(2, Some(&all[7]), None)).await;
    assert_eq!(
        ids(&after_deleted, account_id),
        vec![all[8].clone(), all[9].clone()]
    );
    assert!(after_deleted.has_prev && after_deleted.has_next);
    let before_deleted = page(window(2, None, Some(&all[7]))).await;
    assert_eq!(
        ids(&before_deleted, account_id),
        vec![all[5].clone(), all[6].clone()]
    );
    assert!(before_deleted.has_prev && before_deleted.has_next);
    let head = page(window(10, None, Some(&all[7]))).await;
    assert_eq!(ids(&head, account_id), all[..7].to_vec());
    assert!(!head.has_prev && head.has_next);
    // The other organization sees only its own.
    let theirs = store
        .list_org_service_accounts(&stranger_org.id, &window(100, None, None))
        .await
        .unwrap();
    assert_eq!(ids(&theirs, account_id), vec![stranger.id.clone()]);
}

fn org_account_with_id(org: &Organization, id: &Id) -> ServiceAccount {
    ServiceAccount {
        id: id.clone(),
        name: "org0".into(),
        ..org_account(org, "org0")
    }
}

async fn org_account_list_cursors_are_scoped_and_exclusive(store: S) {
    let (a, _) = new_org(&store, "a").await;
    let (b, b_default) = new_org(&store, "b").await;
    let mine = org_account(&a, "mine");
    store
        .insert_service_account(&mine, None, &[])
        .await
        .unwrap();
    let theirs = account_of(&b_default, "theirs");
    store
        .insert_service_account(&theirs, None, &[])
        .await
        .unwrap();
    for w in [
        window(5, Some(&theirs.id), None),
        window(5, None, Some(&theirs.id)),
        window(5, Some(&id()), None),
        window(5, None, Some(&id())),
    ] {
        let err = store.list_org_service_accounts(&a.id, &w).await.err();
        assert!(
            matches!(err, Some(StoreError::UnknownCursor)),
            "{w:?}: {err:?}"
        );
    }
    let both = store
        .list_org_service_accounts(&a.id, &window(5, Some(&mine.id), Some(&mine.id)))
        .await
        .err();
    assert!(matches!(both, Some(StoreError::Conflict(_))), "{both:?}");
    let empty = store
        .list_org_service_accounts(&b.id, &window(5, Some(&theirs.id), None))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && !empty.has_next && empty.has_prev);
}

async fn credentials_round_trip_and_refuse_duplicates(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let (other_org, _) = new_org(&store, "b").await;
    let acct = org_account(&org, "svc");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let sibling = account_of(&default, "sibling");
    store
        .insert_service_account(&sibling, None, &[])
        .await
        .unwrap();
    let mut c = credential_for(&acct, "client-a");
    c.description = Some("deploys".into());
    store.insert_credential(&c, &[]).await.unwrap();
    assert_eq!(
        store.credential(&org.id, &acct.id, &c.id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.credential_by_client_id("client-a").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.credential_by_client_id("client-b").await.unwrap(),
        None
    );
    // Scoped to its organization and account.
    assert_eq!(
        store
            .credential(&other_org.id, &acct.id, &c.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.credential(&org.id, &sibling.id, &c.id).await.unwrap(),
        None
    );
    // A client id is unique across the server, whichever account asks.
    let clash = credential_for(&sibling, "client-a");
    let err = store.insert_credential(&clash, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate("client_id")), "{err:?}");
    assert_eq!(
        store
            .credential(&org.id, &sibling.id, &clash.id)
            .await
            .unwrap(),
        None
    );

    let mut renamed = c.clone();
    renamed.name = "renamed".into();
    renamed.description = None;
    renamed.updated_at = T0 + 5;
    // Only the writable fields move.
    renamed.client_id = "ignored".into();
    store.update_credential(&renamed, &[]).await.unwrap();
    let stored = store
        .credential(&org.id, &acct.id, &c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        Credential {
            name: "renamed".into(),
            description: None,
            updated_at: T0 + 5,
            ..c.clone()
        }
    );
    let misplaced = Credential {
        service_account_id: sibling.id.clone(),
        ..renamed.clone()
    };
    assert!(matches!(
        store.update_credential(&misplaced, &[]).await,
        Err(StoreError::Conflict(_))
    ));

    // Deleted: gone from every read, and further changes are refused.
    assert!(matches!(
        store
            .delete_credential(&org.id, &sibling.id, &c.id, T0 + 6, &[])
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .delete_credential(&org.id, &acct.id, &c.id, T0 + 7, &[])
        .await
        .unwrap();
    assert_eq!(
        store.credential(&org.id, &acct.id, &c.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.credential_by_client_id("client-a").await.unwrap(),
        None
    );
    assert!(matches!(
        store
            .delete_credential(&org.id, &acct.id, &c.id, T0 + 8, &[])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.update_credential(&renamed, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // A deleted credential keeps its client id: it can never be handed out again.
    let reuse = credential_for(&acct, "client-a");
    assert!(matches!(
        store.insert_credential(&reuse, &[]).await,
        Err(StoreError::Duplicate("client_id"))
    ));
}

async fn credential_lists_walk_both_ways_and_skip_deleted(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let acct = account_of(&default, "svc");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let other = org_account(&org, "other");
    store
        .insert_service_account(&other, None, &[])
        .await
        .unwrap();
    let mut all = vec![];
    for i in 0..14 {
        let c = credential_for(&acct, &format!("c{i}"));
        store.insert_credential(&c, &[]).await.unwrap();
        all.push(c.id);
        if i == 4 {
            let theirs = credential_for(&other, "theirs");
            store.insert_credential(&theirs, &[]).await.unwrap();
        }
    }
    for gone in [&all[3], &all[13]] {
        store
            .delete_credential(&org.id, &acct.id, gone, T0 + 1, &[])
            .await
            .unwrap();
    }
    let live: Vec<Id> = all
        .iter()
        .filter(|i| **i != all[3] && **i != all[13])
        .cloned()
        .collect();
    let (forward, backward) = walk_both_ways(
        |w| {
            let store = store.clone();
            let (org, acct) = (org.id.clone(), acct.id.clone());
            async move { store.list_credentials(&org, &acct, &w).await }
        },
        3,
        &all[13],
        credential_id,
    )
    .await;
    assert_eq!(forward, live);
    assert_eq!(backward, live);
    let after_deleted = store
        .list_credentials(&org.id, &acct.id, &window(1, Some(&all[3]), None))
        .await
        .unwrap();
    assert_eq!(ids(&after_deleted, credential_id), vec![all[4].clone()]);
    assert!(after_deleted.has_prev && after_deleted.has_next);
    // Another account's credential is not a cursor here.
    let theirs = store
        .list_credentials(&org.id, &other.id, &window(5, None, None))
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    let foreign = store
        .list_credentials(
            &org.id,
            &acct.id,
            &window(5, Some(&theirs.items[0].id), None),
        )
        .await;
    assert!(matches!(foreign, Err(StoreError::UnknownCursor)));
    let both = store
        .list_credentials(&org.id, &acct.id, &window(5, Some(&all[0]), Some(&all[5])))
        .await;
    assert!(matches!(both, Err(StoreError::Conflict(_))));
}

async fn credentials_need_a_live_account_and_die_with_it(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let (other_org, _) = new_org(&store, "b").await;
    let acct = account_of(&default, "svc");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let bystander = org_account(&org, "bystander");
    store
        .insert_service_account(&bystander, None, &[])
        .await
        .unwrap();
    // The account exists, but not in the organization the credential claims.
    let mut wrong_org = credential_for(&acct, "wrong-org");
    wrong_org.organization_id = other_org.id.clone();
    assert!(matches!(
        store.insert_credential(&wrong_org, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let missing = credential_for(&org_account(&org, "never stored"), "missing");
    assert!(matches!(
        store.insert_credential(&missing, &[]).await,
        Err(StoreError::Conflict(_))
    ));

    let early = credential_for(&acct, "early");
    let c1 = credential_for(&acct, "one");
    let c2 = credential_for(&acct, "two");
    let kept = credential_for(&bystander, "kept");
    for c in [&early, &c1, &c2, &kept] {
        store.insert_credential(c, &[]).await.unwrap();
    }
    store
        .delete_credential(&org.id, &acct.id, &early.id, T0 + 3, &[])
        .await
        .unwrap();
    store
        .delete_service_account(&org.id, &acct.id, T0 + 9, &[])
        .await
        .unwrap();
    for c in [&c1, &c2] {
        assert_eq!(
            store.credential(&org.id, &acct.id, &c.id).await.unwrap(),
            None
        );
        assert_eq!(
            store.credential_by_client_id(&c.client_id).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store.credential_by_client_id("kept").await.unwrap(),
        Some(kept.clone())
    );
    let deleted_at = exported_credentials(&store).await;
    assert_eq!(
        deleted_at.get(&early.id),
        Some(&Some(T0 + 3)),
        "first deletion stays"
    );
    assert_eq!(deleted_at.get(&c1.id), Some(&Some(T0 + 9)));
    assert_eq!(deleted_at.get(&c2.id), Some(&Some(T0 + 9)));
    assert_eq!(deleted_at.get(&kept.id), Some(&None));
    let late = credential_for(&acct, "late");
    let err = store.insert_credential(&late, &[]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("service account is gone")),
        "{err:?}"
    );
    let listed = store
        .list_credentials(&org.id, &acct.id, &window(10, Some(&c1.id), None))
        .await
        .unwrap();
    assert!(listed.items.is_empty() && !listed.has_next && !listed.has_prev);
}

async fn credentials_racing_an_account_delete_never_outlive_it(store: S) {
    let (org, _) = new_org(&store, "a").await;
    for round in 0..10 {
        let acct = org_account(&org, &format!("svc{round}"));
        store
            .insert_service_account(&acct, None, &[])
            .await
            .unwrap();
        let creds: Vec<_> = (0..4)
            .map(|i| credential_for(&acct, &format!("r{round}c{i}")))
            .collect();
        let inserts: Vec<_> = creds
            .iter()
            .cloned()
            .map(|c| {
                let store = store.clone();
                tokio::spawn(async move { store.insert_credential(&c, &[]).await })
            })
            .collect();
        let delete = {
            let (store, org, acct) = (store.clone(), org.id.clone(), acct.id.clone());
            tokio::spawn(
                async move { store.delete_service_account(&org, &acct, T0 + 1, &[]).await },
            )
        };
        for t in inserts {
            match t.await.unwrap() {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        delete.await.unwrap().unwrap();
        for c in &creds {
            assert_eq!(
                store.credential_by_client_id(&c.client_id).await.unwrap(),
                None,
                "a live credential on a deleted account"
            );
        }
    }
}

/// `deleted_at` of every credential, by id, as the export sees them.
async fn exported_credentials(store: &S) -> std::collections::HashMap<Id, Option<i64>> {
    let mut out = std::collections::HashMap::new();
    store
        .export(&mut |r: Record| {
            if let Record::Credential(c) = r {
                out.insert(c.id, c.deleted_at);
            }
            Ok(())
        })
        .await
        .unwrap();
    out
}

async fn credential_usage_only_moves_forward(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let acct = org_account(&org, "svc");
    store
        .insert_service_account(&acct, None, &[])
        .await
        .unwrap();
    let (a, b) = (credential_for(&acct, "a"), credential_for(&acct, "b"));
    store.insert_credential(&a, &[]).await.unwrap();
    store.insert_credential(&b, &[]).await.unwrap();
    let used = |c: Credential| {
        let store = store.clone();
        let org = org.id.clone();
        async move {
            store
                .credential(&org, &c.service_account_id, &c.id)
                .await
                .unwrap()
                .unwrap()
                .last_used_at
        }
    };
    store
        .record_credential_usage(&[(a.id.clone(), T0 + 10), (b.id.clone(), T0 + 4)])
        .await
        .unwrap();
    assert_eq!(used(a.clone()).await, Some(T0 + 10));
    assert_eq!(used(b.clone()).await, Some(T0 + 4));
    // A late batch from another node, older for one and newer for the other, plus a stranger.
    store
        .record_credential_usage(&[
            (a.id.clone(), T0 + 5),
            (b.id.clone(), T0 + 20),
            (id(), T0 + 30),
        ])
        .await
        .unwrap();
    assert_eq!(used(a.clone()).await, Some(T0 + 10));
    assert_eq!(used(b.clone()).await, Some(T0 + 20));
    store.record_credential_usage(&[]).await.unwrap();
    assert_eq!(used(a).await, Some(T0 + 10));
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

async fn signing_keys_insert_once_then_rotate(store: S) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let k1 = signing_key("k1", T0);
    assert!(store.insert_signing_key(&k1, None, &[]).await.unwrap());
    assert!(!store
        .insert_signing_key(&signing_key("k2", T0 + 1), None, &[])
        .await
        .unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), vec![k1.clone()]);

    let k3 = signing_key("k3", T0 + 50);
    assert!(store
        .insert_signing_key(&k3, Some(T0 + 50), &[])
        .await
        .unwrap());
    let retired_k1 = SigningKey {
        retired_at: Some(T0 + 50),
        ..k1.clone()
    };
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![retired_k1.clone(), k3.clone()]
    );
    // k3 is unretired: a first-start insert still does nothing.
    assert!(!store
        .insert_signing_key(&signing_key("k4", T0 + 60), None, &[])
        .await
        .unwrap());
    // A second rotation retires only k3; k1 keeps its own retirement time.
    let k5 = signing_key("k5", T0 + 50);
    assert!(store
        .insert_signing_key(&k5, Some(T0 + 70), &[])
        .await
        .unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys,
        vec![
            retired_k1,
            SigningKey {
                retired_at: Some(T0 + 70),
                ..k3
            },
            k5
        ],
        "oldest first, ties by kid"
    );
    assert!(matches!(
        store
            .insert_signing_key(&signing_key("k5", T0 + 80), Some(T0 + 80), &[])
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        store.signing_keys().await.unwrap().len(),
        3,
        "a failed rotation retires nothing"
    );
    assert!(store
        .signing_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.kid == "k5" && k.retired_at.is_none()));
}

async fn racing_first_starts_make_one_signing_key(store: S) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_signing_key(&signing_key(&format!("node{i}"), T0), None, &[])
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        if t.await.unwrap() {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].retired_at.is_none());
}

async fn server_secrets_keep_their_first_value(store: S) {
    assert_eq!(
        store.server_secret("jwt", b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.server_secret("jwt", b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(store.server_secret("other", b"own").await.unwrap(), b"own");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .server_secret("raced", format!("node{i}").as_bytes())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "every node gets the same value: {seen:?}");
}

async fn export_and_import_carry_credentials(source: S, target: S) {
    let (org, default) = new_org(&source, "a").await;
    let acct = account_of(&default, "svc");
    let (key, _) = key_for(&acct);
    source
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    let live = credential_for(&acct, "live");
    let gone = credential_for(&acct, "gone");
    source.insert_credential(&live, &[]).await.unwrap();
    source.insert_credential(&gone, &[]).await.unwrap();
    source
        .record_credential_usage(&[(live.id.clone(), T0 + 3)])
        .await
        .unwrap();
    source
        .delete_credential(&org.id, &acct.id, &gone.id, T0 + 4, &[])
        .await
        .unwrap();
    let doomed = org_account(&org, "doomed");
    source
        .insert_service_account(&doomed, None, &[])
        .await
        .unwrap();
    let orphan = credential_for(&doomed, "orphan");
    source.insert_credential(&orphan, &[]).await.unwrap();
    source
        .delete_service_account(&org.id, &doomed.id, T0 + 5, &[])
        .await
        .unwrap();
    source
        .insert_signing_key(&signing_key("never exported", T0), None, &[])
        .await
        .unwrap();
    source.server_secret("never exported", b"x").await.unwrap();

    let mut records = vec![];
    let n = source
        .export(&mut |r: Record| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n as usize, records.len());
    let credentials: Vec<Credential> = records
        .iter()
        .filter_map(|r| match r {
            Record::Credential(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        credentials,
        vec![
            Credential {
                last_used_at: Some(T0 + 3),
                ..live.clone()
            },
            Credential {
                deleted_at: Some(T0 + 4),
                ..gone.clone()
            },
            Credential {
                deleted_at: Some(T0 + 5),
                ..orphan.clone()
            },
        ]
    );
    // Parents first: every credential after its account.
    let position = |want: &Id| {
        records.iter().position(|r| match r {
            Record::ServiceAccount { account, .. } => account.id == *want,
            Record::Credential(c) => c.id == *want,
            _ => false,
        })
    };
    assert!(position(&acct.id) < position(&live.id));
    assert!(position(&doomed.id) < position(&orphan.id));

    let mut source_iter = records.clone().into_iter().map(Ok);
    assert_eq!(target.import(&mut source_iter).await.unwrap(), n);
    let mut again = vec![];
    target
        .export(&mut |r: Record| {
            again.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(again, records, "import then export changes nothing");
    assert_eq!(
        target.credential_by_client_id("live").await.unwrap(),
        Some(Credential {
            last_used_at: Some(T0 + 3),
            ..live
        })
    );
    assert_eq!(
        target.credential_by_client_id("orphan").await.unwrap(),
        None
    );
    assert!(target.signing_keys().await.unwrap().is_empty());
    assert_eq!(
        target
            .server_secret("never exported", b"new")
            .await
            .unwrap(),
        b"new"
    );
}

//! One suite for every store backend: the same cases, run against each implementation.

mod common;

use std::sync::Arc;

use keyplane::domain::ids::Id;
use keyplane::domain::keys::{KeyKind, PlainKey};
use keyplane::domain::model::{ApiKey, Organization, Project, Role, ServiceAccount};
use keyplane::domain::page::PageRequest;
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

store_suite!(
    organizations_initialise_once_and_labels_are_unique,
    projects_are_scoped_to_their_organization,
    project_lists_are_keyset_paginated_and_filter_archived,
    cursors_from_other_scopes_are_unknown,
    archived_and_default_projects_refuse_changes,
    account_and_first_key_are_written_atomically,
    account_lists_page_exactly_and_skip_deleted,
    deleting_an_account_revokes_all_its_keys,
    keys_round_trip_by_hash,
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
        .create_organization(&org, &default, &admin, false)
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
    store.insert_project(&p).await.unwrap();
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
        .create_organization(&org, &p, &admin_key(&org), true)
        .await
        .unwrap());
    // A second "first start" changes nothing.
    let again = Organization {
        id: id(),
        ..org.clone()
    };
    let p2 = project_of(&again, "Default project", true);
    assert!(!store
        .create_organization(&again, &p2, &admin_key(&again), true)
        .await
        .unwrap());
    assert!(store.project(&again.id, &p2.id).await.unwrap().is_none());
    // Same label, not only-if-empty: refused as a duplicate, and atomically (no project left).
    let err = store
        .create_organization(&again, &p2, &admin_key(&again), false)
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
        .archive_project(&org.id, &ids[3], T0 + 1)
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
    store.insert_service_account(&acct, None).await.unwrap();
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
        .archive_project(&org.id, &default.id, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let mut p = new_project(&store, &org, "p").await;
    store.archive_project(&org.id, &p.id, T0 + 5).await.unwrap();
    assert!(matches!(
        store.archive_project(&org.id, &p.id, T0 + 9).await,
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
        store.update_project(&p).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.project(&org.id, &p.id).await.unwrap().unwrap().name,
        "p"
    );
    let acct = account_of(&p, "late");
    assert!(matches!(
        store.insert_service_account(&acct, None).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn account_and_first_key_are_written_atomically(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let acct = account_of(&p, "svc");
    let (key, value) = key_for(&acct);
    store
        .insert_service_account(&acct, Some(&key))
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
        .insert_service_account(&acct2, Some(&key2))
        .await
        .is_err());
    assert_eq!(
        store.service_account(&org.id, &acct2.id).await.unwrap(),
        None
    );
}

async fn account_lists_page_exactly_and_skip_deleted(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let other = new_project(&store, &org, "other").await;
    store
        .insert_service_account(&account_of(&other, "elsewhere"), None)
        .await
        .unwrap();
    let mut ids = vec![];
    for i in 0..45 {
        let a = account_of(&p, &format!("svc{i}"));
        store.insert_service_account(&a, None).await.unwrap();
        ids.push(a.id);
    }
    store
        .delete_service_account(&org.id, &ids[10], T0 + 1)
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
        .insert_service_account(&acct, Some(&k1))
        .await
        .unwrap();
    let (k2, v2) = key_for(&acct);
    store.insert_api_key(&k2).await.unwrap();
    let bystander = account_of(&p, "other");
    let (k3, v3) = key_for(&bystander);
    store
        .insert_service_account(&bystander, Some(&k3))
        .await
        .unwrap();

    store
        .delete_service_account(&org.id, &acct.id, T0 + 7)
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
            .delete_service_account(&org.id, &acct.id, T0 + 8)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (late, _) = key_for(&acct);
    assert!(matches!(
        store.insert_api_key(&late).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn keys_round_trip_by_hash(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let p = new_project(&store, &org, "p").await;
    let mut acct = account_of(&p, "svc");
    store.insert_service_account(&acct, None).await.unwrap();
    let (key, value) = key_for(&acct);
    store.insert_api_key(&key).await.unwrap();
    let got = store.api_key_by_hash(&value.hash()).await.unwrap().unwrap();
    assert_eq!(got, key);
    assert_eq!(got.scopes, vec!["a.read", "b.write"]);
    let stranger = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    assert_eq!(store.api_key_by_hash(&stranger.hash()).await.unwrap(), None);
    acct.name = "renamed".into();
    acct.role = Role::Owner;
    acct.updated_at = T0 + 3;
    store.update_service_account(&acct).await.unwrap();
    assert_eq!(
        store.service_account(&org.id, &acct.id).await.unwrap(),
        Some(acct)
    );
}

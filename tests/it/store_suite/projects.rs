//! Store-suite cases for projects: organization scoping, keyset pages, foreign cursors, archived
//! and default projects (run on every backend by `store_suite!` in `mod.rs`).

use keyplane::store::StoreError;

use super::{account_of, id, new_org, new_project, page, S, T0};

pub async fn projects_are_scoped_to_their_organization(store: S) {
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

pub async fn project_lists_are_keyset_paginated_and_filter_archived(store: S) {
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

pub async fn cursors_from_other_scopes_are_unknown(store: S) {
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

pub async fn archived_and_default_projects_refuse_changes(store: S) {
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

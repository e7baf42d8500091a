//! Store-suite cases for service accounts: atomic creation with the first key, failed writes,
//! pages, deletion, and the Keycard dialect's organization-wide lists (run on every backend by
//! `store_suite!` in `mod.rs`).

use keyplane::domain::ids::Id;
use keyplane::domain::model::{Organization, ServiceAccount};
use keyplane::domain::page::Window;
use keyplane::store::StoreError;

use super::{
    account_id, account_of, id, ids, key_for, new_org, new_project, org_account, page,
    walk_both_ways, window, S, T0,
};

pub async fn account_and_first_key_are_written_atomically(store: S) {
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
pub async fn concurrent_writes_that_fail_undo_only_themselves(store: S) {
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

pub async fn account_lists_page_exactly_and_skip_deleted(store: S) {
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

pub async fn deleting_an_account_revokes_all_its_keys(store: S) {
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

pub async fn org_account_lists_walk_both_ways_exactly_once(store: S) {
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

pub async fn org_account_list_cursors_are_scoped_and_exclusive(store: S) {
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

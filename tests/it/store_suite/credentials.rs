//! Store-suite cases for Keycard credentials: uniqueness, two-way lists, life with their account,
//! usage times (run on every backend by `store_suite!` in `mod.rs`).

use keyplane::domain::ids::Id;
use keyplane::domain::model::Credential;
use keyplane::store::{Record, StoreError};

use super::{
    account_of, credential_for, credential_id, id, ids, new_org, org_account, walk_both_ways,
    window, S, T0,
};

pub async fn credentials_round_trip_and_refuse_duplicates(store: S) {
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

pub async fn credential_lists_walk_both_ways_and_skip_deleted(store: S) {
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

pub async fn credentials_need_a_live_account_and_die_with_it(store: S) {
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

pub async fn credentials_racing_an_account_delete_never_outlive_it(store: S) {
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

pub async fn credential_usage_only_moves_forward(store: S) {
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

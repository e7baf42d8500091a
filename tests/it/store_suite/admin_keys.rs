//! Store-suite cases for the last-admin-key guard (run on every backend by `store_suite!` in
//! the parent file).

use std::sync::Arc;

use keyplane::domain::keys::{SCOPE_READ, SCOPE_WRITE};
use keyplane::domain::model::{ApiKey, Organization};
use keyplane::store::StoreError;

use super::{admin_key, new_org, page, S, T0};

fn scoped(org: &Organization, scopes: &[&str]) -> ApiKey {
    ApiKey {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..admin_key(org)
    }
}

async fn insert(store: &S, key: &ApiKey) {
    store.insert_api_key(key, &[]).await.unwrap();
}

/// The key `new_org` created (full access from before scopes existed).
async fn first_key(store: &S, org: &Organization) -> ApiKey {
    let keys = store
        .list_admin_keys(&org.id, &page(10, None))
        .await
        .unwrap()
        .items;
    assert_eq!(keys.len(), 1);
    keys.into_iter().next().unwrap()
}

fn refused(r: Result<(), StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

pub async fn the_last_write_capable_admin_key_cannot_be_revoked(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let legacy = first_key(&store, &org).await;
    let now = T0 + 10_000;
    // Keys that do not count: read-only, write-capable but expired, write-capable but revoked.
    let reader = scoped(&org, &[SCOPE_READ]);
    let expired = ApiKey {
        expires_at: Some(now - 1),
        ..scoped(&org, &[SCOPE_READ, SCOPE_WRITE])
    };
    let revoked = scoped(&org, &[SCOPE_READ, SCOPE_WRITE]);
    for k in [&reader, &expired, &revoked] {
        insert(&store, k).await;
    }
    assert!(!refused(
        store.revoke_admin_key(&org.id, &revoked.id, T0, &[]).await
    ));
    assert!(
        refused(store.revoke_admin_key(&org.id, &legacy.id, now, &[]).await),
        "only read-only, expired and revoked keys would remain"
    );
    assert!(store
        .api_key(&org.id, &legacy.id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    // A read-only key can go while a write-capable one stays.
    store
        .revoke_admin_key(&org.id, &reader.id, now, &[])
        .await
        .unwrap();
    // A key with the write scope counts; so does one without scopes (the legacy key).
    let writer = scoped(&org, &[SCOPE_READ, SCOPE_WRITE]);
    insert(&store, &writer).await;
    store
        .revoke_admin_key(&org.id, &legacy.id, now, &[])
        .await
        .unwrap();
    assert!(refused(
        store.revoke_admin_key(&org.id, &writer.id, now, &[]).await
    ));
}

pub async fn concurrent_revocations_keep_one_write_capable_admin_key(store: S) {
    for round in 0..5 {
        let (org, _) = new_org(&store, &format!("race{round}")).await;
        let legacy = first_key(&store, &org).await;
        let writer = scoped(&org, &[SCOPE_WRITE]);
        insert(&store, &writer).await;
        // Read-only keys around them change nothing.
        insert(&store, &scoped(&org, &[SCOPE_READ])).await;
        let org = Arc::new(org);
        let tasks: Vec<_> = [legacy.id.clone(), writer.id.clone()]
            .into_iter()
            .map(|id| {
                let (store, org) = (store.clone(), org.clone());
                tokio::spawn(async move { store.revoke_admin_key(&org.id, &id, T0 + 1, &[]).await })
            })
            .collect();
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            done, 1,
            "exactly one of the two last write-capable keys goes"
        );
    }
}

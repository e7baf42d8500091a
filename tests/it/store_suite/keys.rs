//! Store-suite cases for service-account keys: lookup by hash (run on every backend by
//! `store_suite!` in `mod.rs`).

use keyplane::domain::keys::{KeyKind, PlainKey};
use keyplane::domain::model::Role;

use super::{account_of, key_for, new_org, new_project, S, T0};

pub async fn keys_round_trip_by_hash(store: S) {
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

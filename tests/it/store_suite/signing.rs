//! Store-suite cases for access-token signing keys and server secrets: first insert, rotation,
//! races (run on every backend by `store_suite!` in `mod.rs`).

use keyplane::domain::model::SigningKey;
use keyplane::store::StoreError;

use super::{signing_key, S, T0};

pub async fn signing_keys_insert_once_then_rotate(store: S) {
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

pub async fn racing_first_starts_make_one_signing_key(store: S) {
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

pub async fn server_secrets_keep_their_first_value(store: S) {
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

//! Store-suite cases for organizations: bootstrap-once and unique labels (run on every backend by
//! `store_suite!` in `mod.rs`).

use keyplane::domain::model::Organization;
use keyplane::store::StoreError;

use super::{admin_key, id, project_of, S, T0};

pub async fn organizations_initialise_once_and_labels_are_unique(store: S) {
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

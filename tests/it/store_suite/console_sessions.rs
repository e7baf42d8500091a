//! Store-suite cases for console sessions: round trip by hash, touch, delete (once), prune by
//! absolute end, and a session needs a real organization and admin key (run on every backend
//! by `store_suite!` in the parent file). Sessions are not exported: an import signs everyone
//! out.

use keyplane::domain::console::{token_hash, ConsoleSession, SessionToken};
use keyplane::domain::keys::KeyHash;
use keyplane::domain::model::Organization;
use keyplane::store::{Record, StoreError};

use super::{admin_key, id, new_org, S, T0};

fn session_of(
    org: &Organization,
    key: &keyplane::domain::model::ApiKey,
    expires_at: i64,
) -> ConsoleSession {
    let token = SessionToken::generate().unwrap();
    ConsoleSession {
        hash: token_hash(token.as_str()),
        organization_id: org.id.clone(),
        admin_key_id: key.id.clone(),
        key_hash: key.hash,
        created_at: T0,
        last_seen_at: T0,
        expires_at,
    }
}

pub async fn console_sessions_round_trip_touch_end_and_prune(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let key = admin_key(&org);
    store.insert_api_key(&key, &[]).await.unwrap();
    let s = session_of(&org, &key, T0 + 3_600_000);
    store.insert_console_session(&s, &[]).await.unwrap();
    assert_eq!(
        store.console_session(&s.hash).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.console_session(&KeyHash([7; 32])).await.unwrap(),
        None
    );
    // The same ID twice is refused (never overwritten).
    assert!(store.insert_console_session(&s, &[]).await.is_err());

    store
        .touch_console_session(&s.hash, T0 + 5_000)
        .await
        .unwrap();
    let seen = store.console_session(&s.hash).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, T0 + 5_000);
    // A touch never moves the time back.
    let _ = store.touch_console_session(&s.hash, T0 + 1_000).await;
    let seen = store.console_session(&s.hash).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, T0 + 5_000);

    // Pruning takes only those past their absolute end.
    let old = session_of(&org, &key, T0 + 10);
    store.insert_console_session(&old, &[]).await.unwrap();
    assert_eq!(store.prune_console_sessions(T0 + 11).await.unwrap(), 1);
    assert_eq!(store.console_session(&old.hash).await.unwrap(), None);
    assert!(store.console_session(&s.hash).await.unwrap().is_some());

    store.delete_console_session(&s.hash, &[]).await.unwrap();
    assert_eq!(store.console_session(&s.hash).await.unwrap(), None);
    assert!(matches!(
        store.delete_console_session(&s.hash, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.touch_console_session(&s.hash, T0 + 9_000).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn console_sessions_need_their_organization_and_key_and_are_not_exported(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let key = admin_key(&org);
    // The admin key is not stored: the session cannot reference it.
    let orphan = session_of(&org, &key, T0 + 60_000);
    assert!(store.insert_console_session(&orphan, &[]).await.is_err());
    let stranger = Organization {
        id: id(),
        ..org.clone()
    };
    store.insert_api_key(&key, &[]).await.unwrap();
    assert!(store
        .insert_console_session(&session_of(&stranger, &key, T0 + 60_000), &[])
        .await
        .is_err());

    let s = session_of(&org, &key, T0 + 60_000);
    store.insert_console_session(&s, &[]).await.unwrap();
    let mut records = Vec::new();
    let mut sink = |r: Record| {
        records.push(format!("{r:?}"));
        Ok(())
    };
    store.export(&mut sink).await.unwrap();
    assert!(!records.is_empty());
    let hex = hex::encode(s.hash.as_bytes());
    assert!(
        records
            .iter()
            .all(|r| !r.contains(&hex) && !r.to_lowercase().contains("session")),
        "no session is exported"
    );
}

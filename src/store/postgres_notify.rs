//! The change feed between nodes sharing one PostgreSQL database: `pg_notify` on a channel,
//! and a listener task per node that turns notifications into [`StoreEvent`]s.
//!
//! When the listener's connection drops, it reports `Disconnected` (the node stops trusting
//! its caches), reconnects with a fresh connection, and reports `Resynced` once it is
//! listening again (the node then drops everything cached before and trusts again).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use super::{Change, StoreEvent};
use crate::domain::ids::Id;
use crate::domain::keys::KeyHash;

pub const CHANNEL: &str = "keyplane_changes";
const RETRY: Duration = Duration::from_millis(200);

pub fn encode(change: &Change) -> String {
    match change {
        Change::Key(id) => format!("k:{id}"),
        Change::ServiceAccount(id) => format!("s:{id}"),
        Change::Project(id) => format!("p:{id}"),
        Change::Created(hash) => {
            let hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            format!("h:{hex}")
        }
    }
}

pub fn decode(payload: &str) -> Option<Change> {
    let (tag, rest) = payload.split_once(':')?;
    match tag {
        "k" => Id::parse(rest).map(Change::Key),
        "s" => Id::parse(rest).map(Change::ServiceAccount),
        "p" => Id::parse(rest).map(Change::Project),
        "h" if rest.len() == 64 => {
            let bytes: Option<Vec<u8>> = (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&rest[i..i + 2], 16).ok())
                .collect();
            bytes
                .and_then(|b| KeyHash::from_slice(&b))
                .map(Change::Created)
        }
        _ => None,
    }
}

/// Starts the listener task; it ends when the receiver is dropped.
pub fn spawn_listener(pool: PgPool) -> mpsc::Receiver<StoreEvent> {
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(async move {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "change feed: cannot connect; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "change feed: LISTEN failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            if tx.send(StoreEvent::Resynced).await.is_err() {
                return;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if let Some(change) = decode(n.payload()) {
                            if tx.send(StoreEvent::Changed(change)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // The connection was lost: notifications may be missed from here on.
                    Ok(None) | Err(_) => {
                        tracing::warn!(
                            "change feed: connection lost; caches untrusted until it is back"
                        );
                        if tx.send(StoreEvent::Disconnected).await.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let id = Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap();
        for c in [
            Change::Key(id.clone()),
            Change::ServiceAccount(id.clone()),
            Change::Project(id),
            Change::Created(KeyHash::of("x")),
        ] {
            assert_eq!(decode(&encode(&c)), Some(c));
        }
        assert_eq!(decode("k:short"), None);
        assert_eq!(decode("nonsense"), None);
        assert_eq!(decode("h:zz"), None);
    }
}

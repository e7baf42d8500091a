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
        Change::Created(hash) => format!("h:{}", hex::encode(hash.as_bytes())),
    }
}

/// The change a payload announces, or `None` for anything else. Total: anyone who can
/// connect to the database can `NOTIFY` this channel with any text, and a panic here would
/// end the feed.
pub fn decode(payload: &str) -> Option<Change> {
    let (tag, rest) = payload.split_once(':')?;
    match tag {
        "k" => Id::parse(rest).map(Change::Key),
        "s" => Id::parse(rest).map(Change::ServiceAccount),
        "p" => Id::parse(rest).map(Change::Project),
        "h" => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(rest, &mut bytes).ok()?;
            KeyHash::from_slice(&bytes).map(Change::Created)
        }
        _ => None,
    }
}

/// Starts the listener task; it ends when the receiver is dropped, or after reporting
/// [`StoreEvent::Closed`] when the pool has been closed (a shutdown, not a lost connection).
pub fn spawn_listener(pool: PgPool) -> mpsc::Receiver<StoreEvent> {
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(async move {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(_) if pool.is_closed() => return closed(&tx).await,
                Err(e) => {
                    tracing::warn!(error = %e, "change feed: cannot connect; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                if pool.is_closed() {
                    return closed(&tx).await;
                }
                tracing::warn!(error = %e, "change feed: LISTEN failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            if tx.send(StoreEvent::Resynced).await.is_err() {
                return;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match decode(n.payload()) {
                        Some(change) => {
                            if tx.send(StoreEvent::Changed(change)).await.is_err() {
                                return;
                            }
                        }
                        None => tracing::debug!(
                            bytes = n.payload().len(),
                            "change feed: ignored a payload that is not a change"
                        ),
                    },
                    Err(_) if pool.is_closed() => return closed(&tx).await,
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

async fn closed(tx: &mpsc::Sender<StoreEvent>) {
    tracing::debug!("change feed: store closed; feed ends");
    // Ignored if nobody listens any more.
    let _ = tx.send(StoreEvent::Closed).await;
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

    #[test]
    fn any_payload_decodes_without_panicking() {
        // 64 bytes that are not 64 characters: slicing at byte offsets would split a
        // character (the listener task used to panic here).
        let split = format!("h:a{}a", "\u{e9}".repeat(31));
        assert_eq!(split.len() - 2, 64);
        let wide = format!("h:{}", "\u{e9}".repeat(32));
        let emoji = format!("h:{}", "\u{1f511}".repeat(16));
        let long = format!("h:{}", "0".repeat(8000));
        for p in [
            split.as_str(),
            &wide,
            &emoji,
            &long,
            "",
            ":",
            "h:",
            "k:",
            "k:\u{e9}\u{e9}\u{e9}",
            "\u{0}:\u{0}",
            &format!("h:{}", "zz".repeat(32)),
            &format!("h:{}", "0".repeat(63)),
        ] {
            assert_eq!(decode(p), None, "{p:?}");
        }
        // Upper-case hex is still a hash (never sent by us, harmless to accept).
        let upper = format!("h:{}", "AB".repeat(32));
        assert!(matches!(decode(&upper), Some(Change::Created(_))));
    }
}

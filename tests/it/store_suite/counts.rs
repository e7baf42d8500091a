//! Store-suite cases for the admission counts nodes share: absolute upserts, incremental
//! pulls of the other nodes' counts, pruning, and no row lost to a pull racing pushes (run on
//! every backend by `store_suite!` in the parent file).

use std::collections::HashMap;

use keyplane::store::{Count, CountsCursor};

use super::{S, T0};

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

type Key = (String, String, i64, i64);
type Seen = HashMap<Key, (i64, i64)>;

fn count(node: &str, subject: &str, bucket: i64, span: i64, requests: i64) -> Count {
    Count {
        node: node.into(),
        subject: subject.into(),
        bucket,
        span,
        requests,
        tokens: requests * 10,
    }
}

fn key(c: &Count) -> Key {
    (c.node.clone(), c.subject.clone(), c.bucket, c.span)
}

fn as_map(counts: &[Count]) -> Seen {
    counts
        .iter()
        .map(|c| (key(c), (c.requests, c.tokens)))
        .collect()
}

/// One pull by `node`, folded into `seen` (a later value of a row replaces an earlier one).
async fn pull_into(
    store: &S,
    node: &str,
    after: Option<CountsCursor>,
    seen: &mut Seen,
) -> (Vec<Count>, CountsCursor) {
    let (counts, cursor) = store.pull_counts(node, after, T0).await.unwrap();
    if let Some(after) = after {
        assert!(cursor >= after, "the cursor never moves back");
    }
    for c in &counts {
        assert_ne!(c.node, node, "a node's own counts are not returned to it");
        seen.insert(key(c), (c.requests, c.tokens));
    }
    (counts, cursor)
}

pub async fn counts_are_pushed_pulled_replaced_and_pruned(store: S) {
    // Nothing stored yet: no counts, and a cursor to go on from.
    let (none, start) = store.pull_counts("b", None, T0).await.unwrap();
    assert!(none.is_empty());

    let first = vec![
        count("a", "k:1", T0, MINUTE, 1),
        count("a", "k:2", T0, MINUTE, 2),
        count("a", "k:1", T0, DAY, 3),
        // Older than `not_before`: left out of a first pull.
        count("a", "k:1", T0 - MINUTE, MINUTE, 4),
        count("b", "k:1", T0, MINUTE, 5),
    ];
    store.push_counts(&first).await.unwrap();
    let (got, cursor) = store.pull_counts("b", None, T0).await.unwrap();
    assert_eq!(as_map(&got), as_map(&first[..3]));
    // Node a sees only b's row; an incremental pull from the start sees the old bucket too.
    let (got, _) = store.pull_counts("a", None, T0).await.unwrap();
    assert_eq!(as_map(&got), as_map(&first[4..]));
    let (got, _) = store.pull_counts("b", Some(start), T0).await.unwrap();
    assert_eq!(as_map(&got), as_map(&first[..4]));

    // Absolute values: a later push replaces the row (node is part of its identity), and the
    // last of duplicates within one push wins.
    let mut seen = as_map(&got);
    let second = vec![
        count("a", "k:1", T0, MINUTE, 10),
        count("a", "k:1", T0, MINUTE, 11),
        count("c", "k:1", T0, MINUTE, 7),
    ];
    store.push_counts(&second).await.unwrap();
    let (got, cursor) = pull_into(&store, "b", Some(cursor), &mut seen).await;
    let changed = as_map(&second[1..]);
    for (k, v) in &changed {
        assert_eq!(
            got.iter()
                .find(|c| &key(c) == k)
                .map(|c| (c.requests, c.tokens)),
            Some(*v)
        );
    }
    // The cursor moved past what was read: without new writes a pull returns at most rows
    // it already returned (PostgreSQL may re-read rows of transactions that were in flight),
    // never anything new.
    let (again, cursor) = pull_into(&store, "b", Some(cursor), &mut seen).await;
    for c in &again {
        assert_eq!(seen.get(&key(c)), Some(&(c.requests, c.tokens)));
    }
    let mut expected = as_map(&first[..4]);
    expected.extend(changed);
    assert_eq!(seen, expected);
    store.push_counts(&[]).await.unwrap();

    // A big push (more rows than one statement binds on SQLite), then pruning by span.
    let many: Vec<Count> = (0..2_000)
        .map(|i| count("a", &format!("pm:p:{i}"), T0 + MINUTE, MINUTE, i))
        .collect();
    store.push_counts(&many).await.unwrap();
    let (_, _) = pull_into(&store, "b", Some(cursor), &mut seen).await;
    expected.extend(as_map(&many));
    assert_eq!(seen, expected);

    // Minute rows before T0 + 1 minute: a's three at T0 and T0 - 1 minute, b's and c's.
    assert_eq!(store.prune_counts(MINUTE, T0 + MINUTE).await.unwrap(), 5);
    assert_eq!(store.prune_counts(MINUTE, T0 + MINUTE).await.unwrap(), 0);
    let (left, _) = store.pull_counts("z", None, 0).await.unwrap();
    assert_eq!(
        left.len(),
        2_001,
        "the day row and the later minute rows stay"
    );
    assert_eq!(store.prune_counts(DAY, T0 + 1).await.unwrap(), 1);
    // Pruning never hides a later write from an incremental pull.
    let (_, cursor) = store.pull_counts("b", None, T0).await.unwrap();
    assert_eq!(
        store.prune_counts(MINUTE, T0 + 2 * MINUTE).await.unwrap(),
        2_000
    );
    let late = [count("a", "k:9", T0 + 5 * MINUTE, MINUTE, 1)];
    store.push_counts(&late).await.unwrap();
    let (got, _) = store.pull_counts("b", Some(cursor), T0).await.unwrap();
    assert_eq!(as_map(&got), as_map(&late));
}

pub async fn pulls_racing_many_pushes_lose_no_row(store: S) {
    const WRITERS: usize = 4;
    const PUSHES: i64 = 40;
    const ROWS: i64 = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let node = format!("w{w}");
                for i in 0..PUSHES {
                    // New rows each push, plus rows every push rewrites (absolute values grow).
                    let mut batch: Vec<Count> = (0..ROWS)
                        .map(|j| count(&node, &format!("k:{i}:{j}"), T0, MINUTE, i * ROWS + j))
                        .collect();
                    batch.push(count(&node, "hot", T0, MINUTE, i));
                    batch.push(count(&node, "hot", T0, DAY, i));
                    store.push_counts(&batch).await.unwrap();
                    if i % 8 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut seen = Seen::new();
    let (_, mut cursor) = pull_into(&store, "reader", None, &mut seen).await;
    loop {
        let finished = writers.iter().all(|w| w.is_finished());
        let (_, next) = pull_into(&store, "reader", Some(cursor), &mut seen).await;
        cursor = next;
        if finished {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    // One more incremental pull after the last push committed: with it, every row must have
    // been seen with its final value. A row skipped by an earlier pull would be missing here,
    // since this pull only reads what was written since the cursor.
    pull_into(&store, "reader", Some(cursor), &mut seen).await;
    let mut expected = Seen::new();
    for w in 0..WRITERS {
        let node = format!("w{w}");
        for i in 0..PUSHES {
            for j in 0..ROWS {
                let c = count(&node, &format!("k:{i}:{j}"), T0, MINUTE, i * ROWS + j);
                expected.insert(key(&c), (c.requests, c.tokens));
            }
        }
        for span in [MINUTE, DAY] {
            let c = count(&node, "hot", T0, span, PUSHES - 1);
            expected.insert(key(&c), (c.requests, c.tokens));
        }
    }
    assert_eq!(seen.len(), expected.len(), "rows lost");
    assert_eq!(seen, expected);
}

//! The verification cache of one node.
//!
//! - **Positive**: verified keys by hash, with what a verdict needs (expiry and revocation are
//!   judged at each request, so a key stops at exactly its second). Bounded; entries older than
//!   the TTL are refetched, a safety net behind explicit invalidation. A `quick_cache` (sharded,
//!   S3-FIFO eviction): a full cache evicts one entry per insert under one shard's lock, so
//!   eviction never stalls the other verifications (the hand-written map it replaced scanned
//!   and sorted every entry under one global write lock, and could empty itself when
//!   timestamps tied).
//! - **Negative**: hashes the store does not know, so repeating an unknown (well-formed) key
//!   does not reach the store again. Bounded by a ring: the oldest entry leaves first.
//! - **Trust**: on a multi-node store the cache is trusted only while the change feed is
//!   connected; untrusted, every verification reads the store.

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{OptionsBuilder, UnitWeighter};

use crate::domain::keys::KeyHash;
use crate::domain::limits::ProjectRateLimit;
use crate::domain::model::{ApiKey, Project, ServiceAccount};
use crate::domain::time::Millis;
use crate::metrics::cells::Cells;
use crate::store::Change;

/// Everything needed to judge and describe a key, as read from the store.
#[derive(Debug)]
pub struct KeyContext {
    pub key: ApiKey,
    pub account: Option<ServiceAccount>,
    pub project: Option<Project>,
    /// The project's rate-limit overrides (read only while a model catalogue is configured).
    /// Cached with the key, so the admission check reads no store; an update publishes a
    /// project change, which drops this entry on every node.
    pub rate_limits: Vec<ProjectRateLimit>,
    /// When this node last handed a use of the key to the usage tracker: lets the hot path
    /// skip the tracker's lock for the rest of that minute.
    pub(super) last_noted: AtomicI64,
    /// What a wire dialect derived from this context to answer with (e.g. the gateway's
    /// identity headers), built on first use and kept as long as the entry: a cache hit then
    /// renders nothing. Type-erased so the service layer stays free of HTTP types.
    pub rendered: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl KeyContext {
    /// Whether admission looks at the client's address: the project or the key has an
    /// allowlist. Lets a caller skip working the address out when nothing reads it.
    pub fn has_allowlist(&self) -> bool {
        self.key.allowed_ips.is_some()
            || self
                .project
                .as_ref()
                .is_some_and(|p| p.allowed_ips.is_some())
    }

    pub fn new(key: ApiKey, account: Option<ServiceAccount>, project: Option<Project>) -> Self {
        Self {
            key,
            account,
            project,
            rate_limits: Vec::new(),
            last_noted: AtomicI64::new(i64::MIN),
            rendered: OnceLock::new(),
        }
    }
}

/// Hashes a `KeyHash` by its first eight bytes. They are SHA-256 output, so already uniform,
/// and nobody can choose them (that would take a preimage): SipHash's flood protection buys
/// nothing here and costs a visible share of every cached verification.
#[derive(Default, Clone, Copy)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Anything but a digest (never the case today) still hashes, just less well.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
            if bytes.len() >= 8 {
                break;
            }
        }
    }

    // The slice length prefix is the same (32) for every key: ignore it.
    fn write_usize(&mut self, _: usize) {}
}

type DigestSet = HashSet<KeyHash, BuildHasherDefault<DigestHasher>>;
type Positive = Cache<KeyHash, Entry, UnitWeighter, BuildHasherDefault<DigestHasher>>;

#[derive(Clone)]
struct Entry {
    ctx: Arc<KeyContext>,
    fetched_at: Millis,
}

/// A snapshot of the invalidation counters (positive, negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64, u64);

pub enum Lookup {
    Hit(Arc<KeyContext>),
    KnownUnknown,
    Miss,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub capacity: usize,
    pub negative_capacity: usize,
    pub ttl: Millis,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            capacity: 250_000,
            negative_capacity: 100_000,
            // Only a safety net: every change that matters invalidates explicitly (and across
            // nodes through the change feed). Short TTLs made every hot key refetch at once.
            ttl: 300_000,
        }
    }
}

pub struct KeyCache {
    settings: CacheSettings,
    positive: Positive,
    negative: Mutex<Negative>,
    trusted: AtomicBool,
    /// Bumped by every invalidation: a store read that started before one must not be cached.
    /// Two counters, because a new key only makes cached "unknown"s stale, and nodes hear of
    /// new keys all the time.
    generation: AtomicU64,
    negative_generation: AtomicU64,
    /// Lookups answered: hit, negative hit, miss (for the metrics).
    lookups: Cells,
}

const HIT: usize = 0;
const NEGATIVE_HIT: usize = 1;
const MISS: usize = 2;

#[derive(Default)]
struct Negative {
    set: DigestSet,
    order: VecDeque<(KeyHash, Millis)>,
}

impl KeyCache {
    pub fn new(settings: CacheSettings, trusted: bool) -> Self {
        let options = OptionsBuilder::new()
            .estimated_items_capacity(settings.capacity)
            .weight_capacity(settings.capacity as u64)
            .build();
        let positive = match options {
            Ok(options) => Positive::with_options(
                options,
                UnitWeighter,
                BuildHasherDefault::default(),
                DefaultLifecycle::default(),
            ),
            // Only a zero capacity is refused, which configuration never allows.
            Err(_) => Positive::with(1, 1, UnitWeighter, Default::default(), Default::default()),
        };
        Self {
            settings,
            positive,
            negative: Mutex::new(Negative::default()),
            trusted: AtomicBool::new(trusted),
            generation: AtomicU64::new(0),
            negative_generation: AtomicU64::new(0),
            lookups: Cells::new(3),
        }
    }

    /// (hits, negative hits, misses) since start.
    pub fn lookup_counts(&self) -> (u64, u64, u64) {
        (
            self.lookups.get(HIT),
            self.lookups.get(NEGATIVE_HIT),
            self.lookups.get(MISS),
        )
    }

    /// Read before a store lookup and handed back to `insert` / `insert_unknown`.
    pub fn generation(&self) -> Generation {
        Generation(
            self.generation.load(Ordering::SeqCst),
            self.negative_generation.load(Ordering::SeqCst),
        )
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    pub fn lookup(&self, hash: &KeyHash, now: Millis) -> Lookup {
        let found = self.find(hash, now);
        let counter = match found {
            Lookup::Hit(_) => HIT,
            Lookup::KnownUnknown => NEGATIVE_HIT,
            Lookup::Miss => MISS,
        };
        self.lookups.add(counter, 1);
        found
    }

    fn find(&self, hash: &KeyHash, now: Millis) -> Lookup {
        if !self.is_trusted() {
            return Lookup::Miss;
        }
        if let Some(e) = self.positive.get(hash) {
            if now - e.fetched_at < self.settings.ttl {
                return Lookup::Hit(e.ctx);
            }
            return Lookup::Miss;
        }
        let negative = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        if negative.set.contains(hash) {
            Lookup::KnownUnknown
        } else {
            Lookup::Miss
        }
    }

    /// Ignored while untrusted, or when an invalidation happened since `generation` was read:
    /// what was read may already be stale.
    pub fn insert(&self, hash: KeyHash, ctx: Arc<KeyContext>, now: Millis, seen: Generation) {
        let fresh = || self.is_trusted() && self.generation.load(Ordering::SeqCst) == seen.0;
        if !fresh() {
            return;
        }
        self.positive.insert(
            hash,
            Entry {
                ctx,
                fetched_at: now,
            },
        );
        // An invalidation bumps the generation before it removes entries. If it did so after
        // the check above, its removal may have run before this insert: look again, and take
        // the entry back out (at worst dropping a fresh one, which is only a miss).
        if !fresh() {
            self.positive.remove(&hash);
        }
    }

    pub fn insert_unknown(&self, hash: KeyHash, now: Millis, seen: Generation) {
        let fresh =
            || self.is_trusted() && self.negative_generation.load(Ordering::Acquire) == seen.1;
        if !fresh() {
            return;
        }
        let mut n = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        if !fresh() {
            return;
        }
        // Expired entries and overflow leave from the front.
        while let Some((old, at)) = n.order.front().copied() {
            if n.order.len() < self.settings.negative_capacity && now - at < self.settings.ttl {
                break;
            }
            n.order.pop_front();
            n.set.remove(&old);
        }
        if n.set.insert(hash) {
            n.order.push_back((hash, now));
        }
    }

    pub fn invalidate(&self, change: &Change) {
        let counter = match change {
            Change::Created(_) => &self.negative_generation,
            _ => &self.generation,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Created(hash) => {
                let mut n = self.negative.lock().unwrap_or_else(|e| e.into_inner());
                if n.set.remove(hash) {
                    n.order.retain(|(h, _)| h != hash);
                }
            }
            Change::Key(id) => self.retain(|c| &c.key.id != id),
            Change::ServiceAccount(id) => {
                self.retain(|c| c.key.service_account_id.as_ref() != Some(id))
            }
            Change::Project(id) => self.retain(|c| c.key.project_id.as_ref() != Some(id)),
        }
    }

    fn retain(&self, keep: impl Fn(&KeyContext) -> bool) {
        self.positive.retain(|_, e| keep(&e.ctx));
    }

    /// The change feed broke: stop answering from memory.
    pub fn distrust(&self) {
        self.trusted.store(false, Ordering::Release);
        self.clear();
    }

    /// The change feed is back: start from empty and trust again.
    pub fn resync(&self) {
        self.clear();
        self.trusted.store(true, Ordering::Release);
    }

    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.negative_generation.fetch_add(1, Ordering::SeqCst);
        self.positive.clear();
        let mut n = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        n.set.clear();
        n.order.clear();
    }

    pub fn len(&self) -> (usize, usize) {
        let p = self.positive.len();
        let n = self
            .negative
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .len();
        (p, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Id;
    use crate::domain::keys::KeyKind;

    fn ctx(id: &str) -> Arc<KeyContext> {
        let id = Id::parse(id).unwrap();
        Arc::new(KeyContext::new(
            ApiKey {
                id: id.clone(),
                organization_id: id.clone(),
                kind: KeyKind::ServiceAccount,
                project_id: Some(id.clone()),
                service_account_id: Some(id),
                name: "k".into(),
                scopes: vec![],
                hash: KeyHash::of("x"),
                redacted_value: String::new(),
                created_at: 0,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
                allowed_ips: None,
                limits: Default::default(),
                disabled: None,
            },
            None,
            None,
        ))
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn hits_expire_after_the_ttl_and_invalidation_is_targeted() {
        let c = KeyCache::new(
            CacheSettings {
                ttl: 100,
                ..Default::default()
            },
            true,
        );
        let g = c.generation();
        c.insert(KeyHash::of("a"), ctx(A), 0, g);
        c.insert(KeyHash::of("b"), ctx(B), 0, g);
        assert!(matches!(c.lookup(&KeyHash::of("a"), 99), Lookup::Hit(_)));
        assert!(matches!(c.lookup(&KeyHash::of("a"), 100), Lookup::Miss));
        c.invalidate(&Change::Project(Id::parse(A).unwrap()));
        assert!(matches!(c.lookup(&KeyHash::of("a"), 1), Lookup::Miss));
        assert!(matches!(c.lookup(&KeyHash::of("b"), 1), Lookup::Hit(_)));
    }

    #[test]
    fn the_negative_cache_is_bounded_and_cleared_by_creation() {
        let c = KeyCache::new(
            CacheSettings {
                negative_capacity: 3,
                ..Default::default()
            },
            true,
        );
        for i in 0..10 {
            c.insert_unknown(KeyHash::of(&i.to_string()), 0, c.generation());
        }
        assert!(c.len().1 <= 3);
        assert!(matches!(
            c.lookup(&KeyHash::of("9"), 0),
            Lookup::KnownUnknown
        ));
        assert!(matches!(c.lookup(&KeyHash::of("0"), 0), Lookup::Miss));
        c.invalidate(&Change::Created(KeyHash::of("9")));
        assert!(matches!(c.lookup(&KeyHash::of("9"), 0), Lookup::Miss));
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let c = KeyCache::new(CacheSettings::default(), true);
        let before = c.generation();
        c.invalidate(&Change::Key(Id::parse(A).unwrap()));
        c.invalidate(&Change::Created(KeyHash::of("u")));
        c.insert(KeyHash::of("a"), ctx(A), 0, before);
        c.insert_unknown(KeyHash::of("u"), 0, before);
        assert_eq!(c.len(), (0, 0));
        // A new key elsewhere does not stop a positive entry from being cached.
        let before = c.generation();
        c.invalidate(&Change::Created(KeyHash::of("v")));
        c.insert(KeyHash::of("a"), ctx(A), 0, before);
        assert_eq!(c.len(), (1, 0));
    }

    #[test]
    fn the_positive_cache_is_bounded() {
        let c = KeyCache::new(
            CacheSettings {
                capacity: 10,
                ..Default::default()
            },
            true,
        );
        for i in 0..100 {
            c.insert(KeyHash::of(&i.to_string()), ctx(A), i, c.generation());
        }
        assert!(c.len().0 <= 10);
        assert!(matches!(c.lookup(&KeyHash::of("99"), 99), Lookup::Hit(_)));
    }

    #[test]
    fn a_full_cache_with_tied_timestamps_keeps_its_entries() {
        // The hand-written eviction dropped everything at or below the tenth-oldest time:
        // with every entry fetched in the same millisecond, that was all of them.
        let c = KeyCache::new(
            CacheSettings {
                capacity: 1_000,
                ..Default::default()
            },
            true,
        );
        for i in 0..4_500 {
            c.insert(KeyHash::of(&i.to_string()), ctx(A), 7, c.generation());
        }
        let kept = c.len().0;
        assert!((900..=1_000).contains(&kept), "kept {kept}");
    }

    #[test]
    fn keys_in_use_survive_a_stream_of_one_off_keys() {
        let c = KeyCache::new(
            CacheSettings {
                capacity: 1_000,
                ..Default::default()
            },
            true,
        );
        let hot: Vec<KeyHash> = (0..100).map(|i| KeyHash::of(&format!("hot{i}"))).collect();
        for h in &hot {
            c.insert(*h, ctx(A), 0, c.generation());
        }
        for i in 0..20_000 {
            c.insert(KeyHash::of(&format!("once{i}")), ctx(B), i, c.generation());
            let h = &hot[i as usize % hot.len()];
            if !matches!(c.lookup(h, i), Lookup::Hit(_)) {
                c.insert(*h, ctx(A), i, c.generation());
            }
        }
        let hits = hot
            .iter()
            .filter(|h| matches!(c.lookup(h, 20_000), Lookup::Hit(_)))
            .count();
        assert!(hits >= 90, "{hits} of 100 keys in use survived");
    }

    #[test]
    fn concurrent_lookups_inserts_and_invalidations_stay_bounded_and_correct() {
        let c = Arc::new(KeyCache::new(
            CacheSettings {
                capacity: 500,
                ..Default::default()
            },
            true,
        ));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let h = KeyHash::of(&format!("{t}-{}", i % 2_000));
                        if !matches!(c.lookup(&h, i), Lookup::Hit(_)) {
                            c.insert(h, ctx(if t % 2 == 0 { A } else { B }), i, c.generation());
                        }
                        if i % 5_000 == 0 {
                            c.invalidate(&Change::Project(Id::parse(A).unwrap()));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The bound holds per shard, so the total may round up by less than one per shard.
        let len = c.len().0;
        assert!(len <= 500 + 64, "{len}");
        // After an invalidation nothing of that project is served.
        c.invalidate(&Change::Project(Id::parse(A).unwrap()));
        for t in 0..4 {
            for i in 0..2_000 {
                if let Lookup::Hit(ctx) = c.lookup(&KeyHash::of(&format!("{t}-{i}")), 0) {
                    assert_ne!(ctx.key.project_id, Id::parse(A));
                }
            }
        }
    }

    #[test]
    fn an_untrusted_cache_answers_nothing_and_stores_nothing() {
        let c = KeyCache::new(CacheSettings::default(), true);
        c.insert(KeyHash::of("a"), ctx(A), 0, c.generation());
        c.distrust();
        assert!(matches!(c.lookup(&KeyHash::of("a"), 0), Lookup::Miss));
        let g = c.generation();
        c.insert(KeyHash::of("a"), ctx(A), 0, g);
        c.insert_unknown(KeyHash::of("u"), 0, g);
        c.resync();
        assert_eq!(c.len(), (0, 0));
    }
}

//! The subjects a node tracks, in shards: each shard a mutex over a hash table.
//!
//! Lookups take a borrowed [`SubjectRef`] and a hash computed from it, and compare against the
//! stored name piece by piece, so a request for a subject already tracked allocates nothing.
//! The hasher is foldhash (hashbrown's default): a few ns for a short id where SipHash costs
//! tens, and seeded at random per process, so collisions cannot be precomputed; the inputs are
//! key ids of keys that already verified and project × model pairs that carry a limit, so an
//! attacker has little say over them anyway.
//!
//! Sharding keeps different keys off one lock. A decision that needs several subjects locks
//! their shards in ascending shard order (each once), which is the same global order for
//! every caller whatever the order of its checks, so two decisions can never deadlock.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::ring::{DayRing, MinuteRing};
use super::SubjectRef;

/// Enough that 8–64 request threads rarely meet on one lock; each shard is a cache line
/// apart (see [`PaddedShard`]) so neighbours do not share one either.
pub(super) const SHARDS: usize = 64;

pub(super) struct Subject {
    /// The stored form (`k:{id}`, `pm:{project}:{model}`), as pushed.
    pub(super) name: Box<str>,
    pub(super) hash: u64,
    pub(super) minute: MinuteRing,
    /// Made when a per-day limit first applies (or another node reports day counts): most
    /// subjects have no day limit, and the ring is the larger part of a subject's memory.
    pub(super) day: Option<Box<DayRing>>,
}

impl Subject {
    pub(super) fn advance(&mut self, now_ms: i64) {
        self.minute.advance(now_ms);
        if let Some(day) = self.day.as_deref_mut() {
            day.advance(now_ms);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.minute.is_empty() && self.day.as_deref().is_none_or(DayRing::is_empty)
    }
}

#[derive(Default)]
pub(super) struct Shard {
    /// Boxed so that growing the table moves pointers, not 2 KB rings.
    pub(super) table: HashTable<Box<Subject>>,
}

impl Shard {
    pub(super) fn get(&mut self, hash: u64, subject: SubjectRef<'_>) -> Option<&mut Subject> {
        self.table
            .find_mut(hash, |s| s.hash == hash && subject.matches(&s.name))
            .map(|b| &mut **b)
    }

    /// The subject, tracked from now on if it was not (the only allocation on a decide).
    pub(super) fn get_or_insert(
        &mut self,
        hash: u64,
        subject: SubjectRef<'_>,
        now_ms: i64,
    ) -> &mut Subject {
        let entry = self.table.entry(
            hash,
            |s| s.hash == hash && subject.matches(&s.name),
            |s| s.hash,
        );
        let occupied = entry.or_insert_with(|| {
            Box::new(Subject {
                name: subject.stored().into_boxed_str(),
                hash,
                minute: MinuteRing::new(now_ms),
                day: None,
            })
        });
        occupied.into_mut()
    }
}

#[repr(align(128))]
#[derive(Default)]
pub(super) struct PaddedShard(Mutex<Shard>);

pub(super) struct Table {
    hasher: DefaultHashBuilder,
    shards: Box<[PaddedShard]>,
}

impl Table {
    pub(super) fn new() -> Self {
        Self {
            hasher: DefaultHashBuilder::default(),
            shards: (0..SHARDS).map(|_| PaddedShard::default()).collect(),
        }
    }

    /// The hash of a subject: of its parts, so that a borrowed reference and a parsed stored
    /// name hash alike without building the stored string.
    pub(super) fn hash(&self, subject: SubjectRef<'_>) -> u64 {
        match subject {
            SubjectRef::Key(id) => self.hasher.hash_one((0u8, id)),
            SubjectRef::ProjectModel { project, model } => {
                self.hasher.hash_one((1u8, project, model))
            }
        }
    }

    /// The shard of a hash: high bits, since hashbrown uses the low ones for the bucket and
    /// the top seven for its tags.
    pub(super) fn shard_of(hash: u64) -> usize {
        // Bits 32.. masked to SHARDS - 1 (a power of two): always < SHARDS.
        ((hash >> 32) as usize) & (SHARDS - 1)
    }

    /// Locks one shard. A panic while holding a lock cannot leave a ring half-updated in a
    /// way that matters more than a lost count, so a poisoned lock is simply taken over.
    pub(super) fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard % SHARDS]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).table.len()).sum()
    }
}

impl SubjectRef<'_> {
    /// The stored form: `k:{id}` or `pm:{project}:{model}`.
    pub fn stored(&self) -> String {
        match self {
            SubjectRef::Key(id) => format!("k:{id}"),
            SubjectRef::ProjectModel { project, model } => format!("pm:{project}:{model}"),
        }
    }

    /// Reads a stored form back. Project ids never contain `:` (they are base36) while model
    /// names may (`ft:gpt-4o:acme::abc`), so the project ends at the first `:`.
    pub fn parse(stored: &str) -> Option<SubjectRef<'_>> {
        if let Some(id) = stored.strip_prefix("k:") {
            return Some(SubjectRef::Key(id));
        }
        let rest = stored.strip_prefix("pm:")?;
        let (project, model) = rest.split_once(':')?;
        Some(SubjectRef::ProjectModel { project, model })
    }

    /// Whether `stored` is this subject's stored form, compared without building it.
    pub(super) fn matches(&self, stored: &str) -> bool {
        let stored = stored.as_bytes();
        match self {
            SubjectRef::Key(id) => stored.strip_prefix(b"k:") == Some(id.as_bytes()),
            SubjectRef::ProjectModel { project, model } => {
                stored
                    .strip_prefix(b"pm:")
                    .and_then(|rest| rest.strip_prefix(project.as_bytes()))
                    .and_then(|rest| rest.strip_prefix(b":"))
                    == Some(model.as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let cases = [
            SubjectRef::Key("abc"),
            SubjectRef::ProjectModel {
                project: "p1",
                model: "ft:gpt-4o:acme::x1",
            },
        ];
        for s in cases {
            let stored = s.stored();
            assert!(s.matches(&stored));
            assert_eq!(SubjectRef::parse(&stored), Some(s));
        }
        assert!(!SubjectRef::Key("ab").matches("k:abc"));
        assert!(!SubjectRef::Key("abc").matches("pm:abc"));
        assert_eq!(SubjectRef::parse("x:1"), None);
        assert_eq!(SubjectRef::parse("pm:nomodel"), None);
    }

    #[test]
    fn lookup_by_reference_and_by_parsed_name_agree() {
        let table = Table::new();
        let s = SubjectRef::ProjectModel {
            project: "p",
            model: "m:1",
        };
        let h = table.hash(s);
        let stored = s.stored();
        let parsed = SubjectRef::parse(&stored);
        assert_eq!(parsed.map(|p| table.hash(p)), Some(h));
        let mut shard = table.lock(Table::shard_of(h));
        shard.get_or_insert(h, s, 0);
        assert!(shard.get(h, s).is_some());
        assert_eq!(shard.table.len(), 1);
        shard.get_or_insert(h, s, 0);
        assert_eq!(shard.table.len(), 1);
    }
}

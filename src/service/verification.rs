//! Verification: is this presented key valid, and whose is it? The hot path of gateways.
//!
//! Order of work, cheapest first: the checksum (a typo or a made-up key never reaches memory
//! or the store), the cache (positive or negative), then one store read whose result is cached.
//! The verdict is computed at each request from the cached facts, so a key expires at exactly
//! its second without any invalidation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::domain::ids::Id;
use crate::domain::keys::{self, KeyHash, KeyKind};
pub use crate::domain::outcomes::Reason;
use crate::domain::time::Millis;

use super::key_cache::{KeyContext, Lookup};
use super::{Service, ServiceResult};

/// A key the cache could not judge, hashed, for [`Service::verify_pending`].
pub(super) struct PendingKey(KeyHash);

/// The refusal a verdict counts under in the metrics (`None`: valid).
fn refusal(v: &Verdict) -> Option<Reason> {
    match v {
        Verdict::Valid(_) => None,
        Verdict::Invalid(reason) => Some(*reason),
    }
}

#[derive(Debug, Clone)]
pub enum Verdict {
    Valid(Arc<KeyContext>),
    Invalid(Reason),
}

/// Judges a key at `now`. Revocation outranks expiry, which outranks an archived project, which
/// outranks the disabled state (a disabled key is told as such only while otherwise valid).
pub fn judge(ctx: &Arc<KeyContext>, now: Millis) -> Verdict {
    let account_gone = ctx.key.service_account_id.is_some() && ctx.account.is_none();
    if ctx.key.is_revoked_at(now) || account_gone {
        return Verdict::Invalid(Reason::Revoked);
    }
    if ctx.key.is_expired_at(now) {
        return Verdict::Invalid(Reason::Expired);
    }
    if ctx.project.as_ref().is_some_and(|p| p.is_archived()) {
        return Verdict::Invalid(Reason::ProjectArchived);
    }
    if ctx.key.disabled.is_some() {
        return Verdict::Invalid(Reason::Disabled);
    }
    Verdict::Valid(ctx.clone())
}

impl Service {
    /// Verifies a key on behalf of organization `org` (`/v1/keys/verify`): a key of another
    /// organization is `Unknown`, decided before anything else, so its state (revoked,
    /// expired) is not told to a stranger, its use is not noted, and the check counts as a
    /// refusal, like every other object of theirs. Admin keys are `Unknown` here too. Store
    /// trouble is an error (503), never a verdict.
    pub(super) async fn verify_key_in(&self, org: &Id, presented: &str) -> ServiceResult<Verdict> {
        let verdict = match keys::parse(presented) {
            Ok(KeyKind::ServiceAccount) => match self.key_context(KeyHash::of(presented)).await? {
                Some(ctx) if &ctx.key.organization_id == org => {
                    self.conclude(Some(ctx), self.clock.now())
                }
                _ => Verdict::Invalid(Reason::Unknown),
            },
            Ok(KeyKind::Admin) => Verdict::Invalid(Reason::Unknown),
            Err(_) => Verdict::Invalid(Reason::Malformed),
        };
        self.metrics.key_verified(refusal(&verdict));
        Ok(verdict)
    }

    /// The verdict when it needs no store read (malformed, admin, cached either way), else
    /// what [`Self::verify_pending`] needs to finish. Synchronous on purpose: a gateway's hot
    /// path then never builds the (large) future of a store lookup, and callers can box the
    /// slow path.
    pub(super) fn verify_key_from_memory(&self, presented: &str) -> Result<Verdict, PendingKey> {
        match self.judge_from_memory(presented) {
            Ok(verdict) => {
                self.metrics.key_verified(refusal(&verdict));
                Ok(verdict)
            }
            Err(hash) => Err(PendingKey(hash)),
        }
    }

    /// Finishes a verification the cache could not answer: the miss already hashed the key
    /// and looked in the cache, so this goes straight to the store.
    pub(super) async fn verify_pending(&self, pending: PendingKey) -> ServiceResult<Verdict> {
        let ctx = self.fetch_context(pending.0).await?;
        let verdict = self.conclude(ctx, self.clock.now());
        self.metrics.key_verified(refusal(&verdict));
        Ok(verdict)
    }

    /// The verdict from memory, or the key's hash for the store lookup.
    fn judge_from_memory(&self, presented: &str) -> Result<Verdict, KeyHash> {
        // Prefix and length first; the alphabet and the checksum only on a cache miss, before
        // the store would be read. A hit is a key keyplane issued, hash for hash, so both hold;
        // the negative cache holds only keys that passed them. This keeps two passes over the
        // key off the hot path and every malformed key away from the store, as before.
        match keys::shape(presented) {
            Ok(KeyKind::ServiceAccount) => {}
            Ok(KeyKind::Admin) => return Ok(Verdict::Invalid(Reason::Unknown)),
            Err(_) => return Ok(Verdict::Invalid(Reason::Malformed)),
        }
        let hash = KeyHash::of(presented);
        // One clock reading for the cache entry's age and the verdict.
        let now = self.clock.now();
        match self.cache.lookup(&hash, now) {
            Lookup::Hit(ctx) => Ok(self.conclude(Some(ctx), now)),
            Lookup::KnownUnknown => Ok(Verdict::Invalid(Reason::Unknown)),
            Lookup::Miss if !keys::checksum_holds(presented, KeyKind::ServiceAccount) => {
                Ok(Verdict::Invalid(Reason::Malformed))
            }
            Lookup::Miss => Err(hash),
        }
    }

    fn conclude(&self, ctx: Option<Arc<KeyContext>>, now: Millis) -> Verdict {
        let Some(ctx) = ctx else {
            return Verdict::Invalid(Reason::Unknown);
        };
        if ctx.key.kind != KeyKind::ServiceAccount {
            return Verdict::Invalid(Reason::Unknown);
        }
        let verdict = judge(&ctx, now);
        if let Verdict::Valid(_) = verdict {
            self.note_use(&ctx, now);
        }
        verdict
    }

    /// The key with this hash and its owner and project, from the cache or the store.
    pub(super) async fn key_context(
        &self,
        hash: KeyHash,
    ) -> ServiceResult<Option<Arc<KeyContext>>> {
        match self.cache.lookup(&hash, self.clock.now()) {
            Lookup::Hit(ctx) => Ok(Some(ctx)),
            Lookup::KnownUnknown => Ok(None),
            Lookup::Miss => self.fetch_context(hash).await,
        }
    }

    /// Reads the key's context from the store and caches it (or its absence). The generation
    /// is taken before the read, so a read that races an invalidation is not cached.
    async fn fetch_context(&self, hash: KeyHash) -> ServiceResult<Option<Arc<KeyContext>>> {
        let now = self.clock.now();
        let generation = self.cache.generation();
        let Some(key) = self.store.api_key_by_hash(&hash).await? else {
            self.cache.insert_unknown(hash, now, generation);
            return Ok(None);
        };
        let account = match &key.service_account_id {
            Some(id) => self.store.service_account(&key.organization_id, id).await?,
            None => None,
        };
        let project = match &key.project_id {
            Some(id) => self.store.project(&key.organization_id, id).await?,
            None => None,
        };
        let mut ctx = KeyContext::new(key, account, project);
        if let (Some(p), false) = (&ctx.project, self.catalogue.is_empty()) {
            ctx.rate_limits = self
                .store
                .project_rate_limits(&p.organization_id, &p.id)
                .await?;
        }
        let ctx = Arc::new(ctx);
        self.cache.insert(hash, ctx.clone(), now, generation);
        Ok(Some(ctx))
    }

    /// Records a use for `last_used_at`. The tracker writes at most once a minute per key, so
    /// most requests stop at one atomic read here instead of taking its lock.
    pub(super) fn note_use(&self, ctx: &KeyContext, now: Millis) {
        let last = ctx.last_noted.load(Ordering::Relaxed);
        if now.saturating_sub(last) < super::usage::WRITE_INTERVAL {
            return;
        }
        ctx.last_noted.store(now, Ordering::Relaxed);
        self.usage.touch(&ctx.key.id, now);
    }

    /// Writes the batched `last_used_at` updates; called periodically and at shutdown.
    /// In chunks, so a busy minute (every hot key used) never becomes one statement too big
    /// for the statement timeout; a chunk that fails goes back, with the rest, for next time.
    pub async fn flush_usage(&self) -> ServiceResult<usize> {
        const CHUNK: usize = 1_000;
        let batch = self.usage.take(self.clock.now());
        let mut written = 0;
        let mut chunks = batch.chunks(CHUNK);
        while let Some(chunk) = chunks.next() {
            if let Err(e) = self.store.record_key_usage(chunk).await {
                let unwritten: Vec<_> = chunk.iter().chain(chunks.flatten()).cloned().collect();
                self.usage.restore(unwritten);
                return Err(e.into());
            }
            written += chunk.len();
        }
        Ok(written)
    }
}

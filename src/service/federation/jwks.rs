//! The key sets of external OIDC issuers (workload identity providers), fetched and cached so
//! that subject tokens can be verified ([`crate::domain::federation::subject_token`]).
//!
//! - **Fetching**: OpenID discovery (the document's `issuer` must be the provider's, exactly,
//!   OpenID Connect Discovery §4.3), then its `jwks_uri`. ureq is blocking, so each request
//!   runs on the blocking pool, as the audit webhook's do. Only `https://` unless the operator
//!   allows plain http; redirects are followed by hand, at most [`MAX_REDIRECTS`], and only
//!   within the same scheme, host and port, so an issuer cannot bounce us somewhere else.
//!   Bodies are read up to a cap, statuses are reported without bodies.
//! - **Caching**: per provider, for `max_age`, on the service clock's monotonic reading (tests
//!   move it; a wall clock set back cannot stretch an entry's life).
//! - **Single flight**: each provider has an async mutex held for the whole of a fetch. Callers
//!   that queued behind a fetch take its outcome (keys or error) instead of fetching again, so
//!   concurrent callers cause one fetch, never one each.
//! - **Unknown kids**: [`JwksCache::refetch`] goes to the network at most once per
//!   `min_refetch_interval` per provider (counting every fetch, including failed ones and the
//!   ones `keys` made), and refuses without I/O otherwise: forged kids cannot become fetches.
//! - **Failures** do not touch the cached set: it stays usable until `max_age`. Past that, a
//!   failed fetch fails closed (the error is returned): keys that cannot be refreshed may have
//!   been rotated out because they leaked.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::ids::Id;
use crate::domain::time::Clock;

/// Redirects followed per request; one more is an error.
pub const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Allow plain http:// discovery and JWKS URLs (tests on loopback; operators must opt in).
    pub allow_http: bool,
    /// Per HTTP request (connect + read).
    pub timeout: Duration,
    /// Largest discovery document or key set read, in bytes.
    pub max_bytes: usize,
    /// A fetched key set is used this long before it is fetched again.
    pub max_age: Duration,
    /// At most one refetch per provider per this interval for tokens naming an unknown kid.
    pub min_refetch_interval: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
            max_age: Duration::from_secs(3600),
            min_refetch_interval: Duration::from_secs(60),
        }
    }
}

/// Where a provider's keys come from.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// OpenID discovery: GET `discovery_url` (JSON with `issuer` and `jwks_uri`), then GET `jwks_uri`.
    Discovery {
        discovery_url: &'a str,
        issuer: &'a str,
    },
    /// Inline key set (already validated when saved).
    Uploaded(&'a Value),
}

/// Why no key set could be had. Messages name the document and the status or error kind,
/// never a body or a full URL (either may carry what the issuer did not mean to publish).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Network error, timeout or a non-2xx status.
    #[error("fetch failed: {0}")]
    Fetch(String),
    #[error("the document is larger than allowed")]
    TooLarge,
    #[error("only https:// URLs are allowed")]
    NotHttps,
    /// A redirect to another scheme, host or port, or too many redirects.
    #[error("redirect refused: {0}")]
    Redirect(String),
    #[error("the discovery document names another issuer")]
    IssuerMismatch,
    /// Not JSON, not a key set, no usable key, no `jwks_uri`, not a URL.
    #[error("invalid: {0}")]
    Invalid(String),
    /// An unknown kid, but the provider's keys were fetched too recently to fetch them again.
    #[error("the key set was fetched too recently to fetch it again")]
    RefetchTooSoon,
}

pub struct JwksCache {
    settings: JwksSettings,
    clock: Clock,
    agent: ureq::Agent,
    providers: Mutex<HashMap<Id, Slot>>,
    fetches: AtomicU64,
}

/// One provider's cached keys and fetch bookkeeping.
struct Slot {
    /// What the keys were fetched from: a caller naming another source (the provider was
    /// edited without `forget`) gets a new slot, not the old issuer's keys.
    discovery_url: String,
    issuer: String,
    /// Held for the whole of a fetch. A fetch whose slot was replaced meanwhile does not
    /// store its result (it is compared by pointer).
    flight: Arc<tokio::sync::Mutex<()>>,
    keys: Option<(Arc<JwkSet>, Instant)>,
    /// When the last fetch started, successful or not: what limits refetches.
    attempted_at: Option<Instant>,
    /// Fetches finished so far: a caller that finds this moved on while it waited takes that
    /// fetch's outcome. (Counting finished rather than started fetches lets a caller that
    /// arrived mid-fetch share it too.)
    finished: u64,
    /// The outcome of the last finished fetch, for the callers that waited on it.
    last: Option<Result<Arc<JwkSet>, JwksError>>,
}

impl Slot {
    fn new(discovery_url: &str, issuer: &str) -> Self {
        Self {
            discovery_url: discovery_url.to_owned(),
            issuer: issuer.to_owned(),
            flight: Arc::new(tokio::sync::Mutex::new(())),
            keys: None,
            attempted_at: None,
            finished: 0,
            last: None,
        }
    }
}

/// What a caller asks of the network.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A set younger than `max_age`.
    Fresh,
    /// A set fetched again (an unknown kid): at most once per `min_refetch_interval`.
    New,
}

impl JwksCache {
    pub fn new(settings: JwksSettings, clock: Clock) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(settings.timeout)
            .build();
        Self {
            settings,
            clock,
            agent,
            providers: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The provider's key set: the cached one while younger than max_age, else fetched.
    /// Uploaded sets are parsed (and may be cached) without I/O.
    pub async fn keys(
        &self,
        provider: &Id,
        source: KeySource<'_>,
    ) -> Result<Arc<JwkSet>, JwksError> {
        self.lookup(provider, source, Want::Fresh).await
    }

    /// A token named a kid the cached set lacks: refetch now, unless this provider was
    /// (re)fetched less than min_refetch_interval ago, in which case return Err(RefetchTooSoon)
    /// WITHOUT any network I/O. This is what stops a flood of forged kids from becoming a flood
    /// of fetches. For Uploaded sources, return the uploaded set (nothing to refetch).
    pub async fn refetch(
        &self,
        provider: &Id,
        source: KeySource<'_>,
    ) -> Result<Arc<JwkSet>, JwksError> {
        self.lookup(provider, source, Want::New).await
    }

    /// Drop a provider's cached set (its configuration changed or it was deleted).
    pub fn forget(&self, provider: &Id) {
        self.providers().remove(provider);
    }

    /// How many network fetches of key sets (JWKS documents) have been made (for tests/metrics).
    /// Counted when the request for the key set starts, whether or not it succeeds; a round
    /// that fails at discovery fetches no key set.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn lookup(
        &self,
        provider: &Id,
        source: KeySource<'_>,
        want: Want,
    ) -> Result<Arc<JwkSet>, JwksError> {
        let (discovery_url, issuer) = match source {
            // Parsed on every call rather than cached: the caller hands the set over each
            // time, so a cached copy could only ever be one the operator has since replaced.
            KeySource::Uploaded(jwks) => return key_set(jwks).map(Arc::new),
            KeySource::Discovery {
                discovery_url,
                issuer,
            } => (discovery_url, issuer),
        };
        let now = self.clock.instant();
        let (flight, seen) = {
            let mut providers = self.providers();
            let current = providers
                .get(provider)
                .filter(|s| s.discovery_url == discovery_url && s.issuer == issuer);
            match current {
                Some(slot) => {
                    match want {
                        Want::Fresh => {
                            if let Some(keys) = self.fresh(slot, now) {
                                return Ok(keys);
                            }
                        }
                        Want::New => {
                            let interval = self.settings.min_refetch_interval;
                            if slot
                                .attempted_at
                                .is_some_and(|at| now.saturating_duration_since(at) < interval)
                            {
                                return Err(JwksError::RefetchTooSoon);
                            }
                        }
                    }
                    (slot.flight.clone(), slot.finished)
                }
                None => {
                    let slot = Slot::new(discovery_url, issuer);
                    let taken = (slot.flight.clone(), slot.finished);
                    providers.insert(provider.clone(), slot);
                    taken
                }
            }
        };

        // A URL refused outright is the provider's configuration, not a fetch: it must not
        // count against the refetch interval.
        Origin::of(&self.agent, discovery_url, self.settings.allow_http)?;
        let _turn = flight.lock().await;
        // This caller's turn: a fetch may have finished while it waited.
        let store = {
            let mut providers = self.providers();
            match providers
                .get_mut(provider)
                .filter(|s| Arc::ptr_eq(&s.flight, &flight))
            {
                Some(slot) => {
                    if want == Want::Fresh {
                        if let Some(keys) = self.fresh(slot, self.clock.instant()) {
                            return Ok(keys);
                        }
                    }
                    if slot.finished != seen {
                        if let Some(outcome) = &slot.last {
                            return outcome.clone();
                        }
                    }
                    slot.attempted_at = Some(self.clock.instant());
                    true
                }
                // Forgotten or replaced while this caller waited: it still gets keys, but
                // from the source it named, so they are not kept.
                None => false,
            }
        };
        let outcome = self.fetch(discovery_url, issuer).await;
        if store {
            let mut providers = self.providers();
            if let Some(slot) = providers
                .get_mut(provider)
                .filter(|s| Arc::ptr_eq(&s.flight, &flight))
            {
                if let Ok(keys) = &outcome {
                    slot.keys = Some((keys.clone(), self.clock.instant()));
                }
                slot.last = Some(outcome.clone());
                slot.finished += 1;
            }
        }
        outcome
    }

    fn fresh(&self, slot: &Slot, now: Instant) -> Option<Arc<JwkSet>> {
        let (keys, fetched_at) = slot.keys.as_ref()?;
        (now.saturating_duration_since(*fetched_at) < self.settings.max_age).then(|| keys.clone())
    }

    fn providers(&self) -> MutexGuard<'_, HashMap<Id, Slot>> {
        // Nothing here panics while holding the lock; if something did, the map is still a
        // map of whole entries.
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One discovery-and-key-set round.
    async fn fetch(&self, discovery_url: &str, issuer: &str) -> Result<Arc<JwkSet>, JwksError> {
        let discovery = self
            .download(discovery_url, "discovery document", false)
            .await?;
        let jwks_uri = jwks_uri(&discovery, issuer)?;
        let body = self.download(&jwks_uri, "key set", true).await?;
        let jwks: Value = serde_json::from_slice(&body)
            .map_err(|_| JwksError::Invalid("the key set is not JSON".into()))?;
        key_set(&jwks).map(Arc::new)
    }

    /// GETs `url` on the blocking pool; `counted` for key sets (what `fetches` reports).
    async fn download(
        &self,
        url: &str,
        what: &'static str,
        counted: bool,
    ) -> Result<Vec<u8>, JwksError> {
        let policy = Policy {
            allow_http: self.settings.allow_http,
            max_bytes: self.settings.max_bytes,
        };
        // Refused here, a bad URL costs no trip to the blocking pool.
        let origin = Origin::of(&self.agent, url, policy.allow_http)?;
        if counted {
            self.fetches.fetch_add(1, Ordering::Relaxed);
        }
        let agent = self.agent.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || download_blocking(&agent, url, origin, policy, what))
            .await
            .unwrap_or_else(|_| Err(JwksError::Fetch(format!("{what}: the fetch task failed"))))
    }
}

#[derive(Clone, Copy)]
struct Policy {
    allow_http: bool,
    max_bytes: usize,
}

/// Scheme, host and port: what a redirect may not change.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// The origin of `url`, once it is an absolute URL with a host and an allowed scheme.
    fn of(agent: &ureq::Agent, url: &str, allow_http: bool) -> Result<Self, JwksError> {
        // The scheme is judged before parsing: `file:///x` has no host, and should read as
        // the wrong scheme rather than as a malformed URL.
        let Some((scheme, _)) = url.split_once(':') else {
            return Err(JwksError::Invalid("not an absolute URL".into()));
        };
        check_scheme(scheme, allow_http)?;
        let parsed = agent
            .get(url)
            .request_url()
            .map_err(|_| JwksError::Invalid("not a URL with a host".into()))?;
        let url = parsed.as_url();
        check_scheme(url.scheme(), allow_http)?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default(),
        })
    }
}

fn check_scheme(scheme: &str, allow_http: bool) -> Result<(), JwksError> {
    if scheme.eq_ignore_ascii_case("https") || (allow_http && scheme.eq_ignore_ascii_case("http")) {
        Ok(())
    } else {
        Err(JwksError::NotHttps)
    }
}

/// GETs `url`, following same-origin redirects, and reads at most `max_bytes` of the body.
/// Blocking.
fn download_blocking(
    agent: &ureq::Agent,
    mut url: String,
    origin: Origin,
    policy: Policy,
    what: &str,
) -> Result<Vec<u8>, JwksError> {
    let mut redirects = 0;
    loop {
        let response = match agent.get(&url).set("accept", "application/json").call() {
            Ok(response) => response,
            Err(ureq::Error::Status(code, _)) => {
                return Err(JwksError::Fetch(format!("{what}: HTTP {code}")))
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(JwksError::Fetch(format!("{what}: {}", transport(&t))))
            }
        };
        match response.status() {
            200..=299 => return read_body(response, policy, what),
            301 | 302 | 303 | 307 | 308 => {
                if redirects == MAX_REDIRECTS {
                    return Err(JwksError::Redirect(format!(
                        "{what}: more than {MAX_REDIRECTS} redirects"
                    )));
                }
                redirects += 1;
                url = redirect(agent, &url, response.header("location"), &origin, policy)?;
            }
            status => return Err(JwksError::Fetch(format!("{what}: HTTP {status}"))),
        }
    }
}

fn read_body(response: ureq::Response, policy: Policy, what: &str) -> Result<Vec<u8>, JwksError> {
    let declared = response
        .header("content-length")
        .and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > policy.max_bytes as u64) {
        return Err(JwksError::TooLarge);
    }
    read_capped(response.into_reader(), policy.max_bytes, what)
}

/// The whole body, if it is at most `max` bytes; never reads more than one byte past that
/// (a missing or lying Content-Length cannot make it read more).
fn read_capped(reader: impl Read, max: usize, what: &str) -> Result<Vec<u8>, JwksError> {
    let mut body = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| JwksError::Fetch(format!("{what}: reading the body: {}", e.kind())))?;
    if body.len() > max {
        return Err(JwksError::TooLarge);
    }
    Ok(body)
}

/// Where a redirect from `from` leads, if it may be followed: an allowed scheme and the same
/// origin as the first request (an issuer's server choosing where we connect next is how
/// an SSRF starts).
fn redirect(
    agent: &ureq::Agent,
    from: &str,
    location: Option<&str>,
    origin: &Origin,
    policy: Policy,
) -> Result<String, JwksError> {
    let location =
        location.ok_or_else(|| JwksError::Fetch("a redirect without a Location".into()))?;
    let base = agent
        .get(from)
        .request_url()
        .map_err(|_| JwksError::Invalid("not a URL with a host".into()))?;
    let target = base
        .as_url()
        .join(location)
        .map_err(|_| JwksError::Redirect("to something that is not a URL".into()))?;
    let target = target.as_str().to_owned();
    let to = Origin::of(agent, &target, policy.allow_http)?;
    if &to != origin {
        let port = to.port.map(|p| format!(":{p}")).unwrap_or_default();
        return Err(JwksError::Redirect(format!(
            "to another origin ({}://{}{port})",
            to.scheme, to.host
        )));
    }
    Ok(target)
}

/// A transport error by its kind, or "timed out": ureq's messages can quote the URL.
fn transport(t: &ureq::Transport) -> String {
    let io = std::error::Error::source(t).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => "timed out".into(),
        _ => t.kind().to_string(),
    }
}

/// The discovery document's `jwks_uri`, once its `issuer` is exactly the expected one.
fn jwks_uri(body: &[u8], issuer: &str) -> Result<String, JwksError> {
    let invalid = |what: &str| JwksError::Invalid(format!("the discovery document {what}"));
    let doc: Value = serde_json::from_slice(body).map_err(|_| invalid("is not JSON"))?;
    let named = |member: &str| doc.get(member).and_then(Value::as_str);
    match named("issuer") {
        Some(named) if named == issuer => {}
        Some(_) => return Err(JwksError::IssuerMismatch),
        None => return Err(invalid("names no issuer")),
    }
    match named("jwks_uri") {
        Some(uri) if !uri.is_empty() => Ok(uri.to_owned()),
        _ => Err(invalid("names no jwks_uri")),
    }
}

/// The usable keys of a JWKS. Keys this build cannot read (a newer key type, a malformed
/// member) are skipped rather than failing the set, as RFC 7517 §5 asks: an issuer adding a
/// new kind of key must not lock out the tokens signed with its old ones. Symmetric keys
/// (public here, so they prove nothing) and encryption keys are skipped too.
fn key_set(jwks: &Value) -> Result<JwkSet, JwksError> {
    let listed = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError::Invalid("not a key set: no \"keys\" array".into()))?;
    let keys: Vec<Jwk> = listed
        .iter()
        .filter_map(|key| Jwk::deserialize(key).ok())
        .filter(|key| !matches!(key.algorithm, AlgorithmParameters::OctetKey(_)))
        .filter(|key| key.common.public_key_use != Some(PublicKeyUse::Encryption))
        .collect();
    if keys.is_empty() {
        return Err(JwksError::Invalid("the key set has no usable key".into()));
    }
    Ok(JwkSet { keys })
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;

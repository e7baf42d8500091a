//! Brute-force throttling: failed authentications counted per source address; a source with
//! too many in a window is refused (429) for a cool-down before any key is looked up.
//!
//! The table is touched only after a failure, or while some source is blocked: a request of a
//! quiet installation pays one relaxed atomic load, no lock and no allocation.
//!
//! Time is the service's [`Clock`], read monotonically ([`Clock::instant`]): the system clock in
//! production, a fixed one that tests advance past a cool-down instead of sleeping through it.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::time::Clock;

const SHARDS: usize = 16;

/// A comma-separated list of addresses or CIDRs (`10.0.0.0/8, ::1`; a bare address is one
/// host), or the entry that is not one.
pub fn parse_cidrs(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| s.to_owned())
        })
        .collect()
}

/// Whether `ip` is in one of `nets`; IPv4-mapped IPv6 addresses (the IPv4 clients of a
/// dual-stack listener) count as their IPv4 address.
pub fn in_any(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|net| net.contains(&ip))
}

/// What is counted: an IPv4 address, or an IPv6 /64 (one subscriber gets a whole /64, so
/// counting single IPv6 addresses would give an attacker 2^64 sources).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::from(u64::MAX))).into()),
        v4 => v4,
    }
}

#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// Failures of one source within `window` that trigger the cool-down; 0 turns it off.
    pub max_failures: u32,
    pub window: Duration,
    pub cooldown: Duration,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` names the real client.
    pub trusted_proxies: Vec<IpNet>,
    /// Sources remembered at most; beyond it the ones closest to expiry are forgotten.
    pub capacity: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures: 20,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            capacity: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    failures: u32,
    blocked_until: u64,
}

pub struct AuthThrottle {
    settings: ThrottleSettings,
    clock: Clock,
    epoch: Instant,
    /// Milliseconds since `epoch` until which at least one source may be blocked; 0 when
    /// none is, which is what the per-request check reads.
    blocked_until: AtomicU64,
    shards: Vec<Mutex<HashMap<IpAddr, Entry>>>,
}

impl AuthThrottle {
    pub fn new(settings: ThrottleSettings, clock: Clock) -> Self {
        Self {
            settings,
            epoch: clock.instant(),
            clock,
            blocked_until: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    fn now(&self) -> u64 {
        // Starts at 1 so that 0 can mean "nothing blocked".
        let elapsed = self.clock.instant().saturating_duration_since(self.epoch);
        elapsed.as_millis() as u64 + 1
    }

    fn shard(&self, key: &IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        let n = match key {
            IpAddr::V4(a) => u32::from(*a) as usize,
            IpAddr::V6(a) => (u128::from(*a) >> 64) as usize,
        };
        // Low bits of an address vary most between neighbours; fold them in.
        let i = (n ^ (n >> 8) ^ (n >> 16)) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `source` must still wait, if it is blocked.
    #[inline]
    pub fn blocked(&self, source: IpAddr) -> Option<Duration> {
        let any = self.blocked_until.load(Ordering::Relaxed);
        if any == 0 {
            return None;
        }
        self.blocked_slow(source, any)
    }

    #[cold]
    fn blocked_slow(&self, source: IpAddr, any: u64) -> Option<Duration> {
        let now = self.now();
        if now >= any {
            // Every block has ended; a block set meanwhile raised the value and keeps it.
            let _ =
                self.blocked_until
                    .compare_exchange(any, 0, Ordering::Relaxed, Ordering::Relaxed);
            return None;
        }
        let key = source_key(source);
        let until = self.shard(&key).get(&key)?.blocked_until;
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Counts a failed authentication of `source`; returns the cool-down it has just started.
    pub fn failed(&self, source: IpAddr) -> Option<Duration> {
        let s = &self.settings;
        if s.max_failures == 0 {
            return None;
        }
        let now = self.now();
        let window = s.window.as_millis() as u64;
        let key = source_key(source);
        let mut shard = self.shard(&key);
        if !shard.contains_key(&key) && shard.len() >= (s.capacity / SHARDS).max(1) {
            evict(&mut shard, now, window);
        }
        let e = shard.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: 0,
        });
        if now.saturating_sub(e.window_start) >= window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures < s.max_failures || e.blocked_until > now {
            return None;
        }
        let cooldown = s.cooldown.as_millis() as u64;
        e.blocked_until = now + cooldown;
        e.failures = 0;
        e.window_start = e.blocked_until;
        self.blocked_until
            .fetch_max(e.blocked_until, Ordering::Relaxed);
        Some(s.cooldown)
    }

    /// Sources currently remembered (for tests).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: drops what no longer matters, else the entry that would
/// matter for the shortest time.
fn evict(shard: &mut HashMap<IpAddr, Entry>, now: u64, window: u64) {
    let relevant_until = |e: &Entry| e.blocked_until.max(e.window_start + window);
    let before = shard.len();
    shard.retain(|_, e| relevant_until(e) > now);
    if shard.len() < before {
        return;
    }
    let soonest = shard
        .iter()
        .min_by_key(|(_, e)| relevant_until(e))
        .map(|(k, _)| *k);
    if let Some(k) = soonest {
        shard.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn throttle(max: u32, capacity: usize) -> AuthThrottle {
        AuthThrottle::new(
            ThrottleSettings {
                max_failures: max,
                capacity,
                ..Default::default()
            },
            Clock::system(),
        )
    }

    #[test]
    fn a_source_is_blocked_after_max_failures_and_others_are_not() {
        let t = throttle(3, 1024);
        assert!(t.blocked(ip("10.0.0.1")).is_none());
        assert!(t.failed(ip("10.0.0.1")).is_none());
        assert!(t.failed(ip("10.0.0.1")).is_none());
        assert!(t.failed(ip("10.0.0.1")).is_some());
        assert!(t.blocked(ip("10.0.0.1")).is_some());
        assert!(t.blocked(ip("10.0.0.2")).is_none());
        // The same IPv6 /64 is one source; IPv4-mapped is the IPv4 address.
        for _ in 0..3 {
            t.failed(ip("2001:db8::1"));
        }
        assert!(t.blocked(ip("2001:db8::ffff")).is_some());
        assert!(t.blocked(ip("2001:db8:0:1::1")).is_none());
        assert!(t.blocked(ip("::ffff:10.0.0.1")).is_some());
    }

    #[test]
    fn a_block_ends_after_the_cooldown_and_failures_expire_with_the_window() {
        let clock = Clock::fixed(1_700_000_000_000);
        let t = AuthThrottle::new(
            ThrottleSettings {
                max_failures: 3,
                window: Duration::from_secs(10),
                cooldown: Duration::from_secs(60),
                ..Default::default()
            },
            clock.clone(),
        );
        let a = ip("10.0.0.1");
        t.failed(a);
        t.failed(a);
        assert_eq!(t.failed(a), Some(Duration::from_secs(60)));
        assert_eq!(t.blocked(a), Some(Duration::from_secs(60)));
        clock.advance(59_999);
        assert_eq!(t.blocked(a), Some(Duration::from_millis(1)));
        clock.advance(1);
        assert_eq!(t.blocked(a), None);
        assert_eq!(
            t.blocked_until.load(Ordering::Relaxed),
            0,
            "nothing is blocked"
        );
        // Two failures, then the window passes: the count starts again.
        t.failed(a);
        t.failed(a);
        clock.advance(10_000);
        assert_eq!(t.failed(a), None);
        assert_eq!(t.failed(a), None);
        assert!(t.failed(a).is_some());
    }

    #[test]
    fn the_table_stays_within_its_capacity() {
        let t = throttle(1000, 64);
        for i in 0..10_000u32 {
            t.failed(IpAddr::V4(i.into()));
        }
        assert!(t.len() <= 64, "{}", t.len());
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c = parse_cidrs("10.0.0.0/8, 192.168.1.7,::1,fd00::/8").unwrap();
        let one = |i: usize, addr: &str| in_any(&c[i..=i], ip(addr));
        assert!(one(0, "10.200.3.4"));
        assert!(!one(0, "11.0.0.1"));
        assert!(one(1, "192.168.1.7") && !one(1, "192.168.1.8"));
        assert!(one(2, "::1"));
        assert!(one(3, "fd12::1"));
        assert!(in_any(&c, ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(in_any(&parse_cidrs("0.0.0.0/0").unwrap(), ip("8.8.8.8")));
        // A host address written with a prefix names its network.
        assert!(in_any(&parse_cidrs("10.0.0.5/8").unwrap(), ip("10.9.9.9")));
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("example.com").is_err());
    }
}

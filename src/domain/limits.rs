//! Admission rules stored with keys and projects: rate limits, IP allowlists and the disabled
//! state. Plain data and their validation; counting lives in `service::admission`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::names::FieldError;
use super::time::Millis;

/// Most entries an allowlist may hold: enough for any real network plan, small enough that a
/// linear scan per request stays cheap.
pub const MAX_ALLOWED_IPS: usize = 100;

/// Largest limit accepted anywhere (requests or tokens per window).
pub const MAX_LIMIT: i64 = 1_000_000_000_000;

/// Why a key was disabled. A disabled key keeps its history and can be enabled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    UserInitiated,
    Exposed,
    Compromised,
}

impl DisabledReason {
    pub const ALL: [DisabledReason; 3] = [Self::UserInitiated, Self::Exposed, Self::Compromised];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserInitiated => "user_initiated",
            Self::Exposed => "exposed",
            Self::Compromised => "compromised",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A key's disabled state: since when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    pub reason: DisabledReason,
    pub at: Millis,
}

/// keyplane's own limits on one project API key (nullable: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub max_requests_per_1_minute: Option<i64>,
    pub max_requests_per_1_day: Option<i64>,
    pub max_tokens_per_1_minute: Option<i64>,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The six fields of OpenAI's `project.rate_limit`: a model's defaults in the catalogue
/// (`None`: not limited) or one project's overrides of them (`None`: the default applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitFields {
    pub max_requests_per_1_minute: Option<i64>,
    pub max_tokens_per_1_minute: Option<i64>,
    pub max_images_per_1_minute: Option<i64>,
    pub max_audio_megabytes_per_1_minute: Option<i64>,
    pub max_requests_per_1_day: Option<i64>,
    pub batch_1_day_max_input_tokens: Option<i64>,
}

impl RateLimitFields {
    /// The field names, as on the wire and in the configuration file.
    pub const NAMES: [&'static str; 6] = [
        "max_requests_per_1_minute",
        "max_tokens_per_1_minute",
        "max_images_per_1_minute",
        "max_audio_megabytes_per_1_minute",
        "max_requests_per_1_day",
        "batch_1_day_max_input_tokens",
    ];

    /// Each field by name, in [`Self::NAMES`] order.
    pub fn fields(&self) -> [(&'static str, Option<i64>); 6] {
        [
            (Self::NAMES[0], self.max_requests_per_1_minute),
            (Self::NAMES[1], self.max_tokens_per_1_minute),
            (Self::NAMES[2], self.max_images_per_1_minute),
            (Self::NAMES[3], self.max_audio_megabytes_per_1_minute),
            (Self::NAMES[4], self.max_requests_per_1_day),
            (Self::NAMES[5], self.batch_1_day_max_input_tokens),
        ]
    }

    /// The field called `name`, for setting it.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut Option<i64>> {
        match name {
            "max_requests_per_1_minute" => Some(&mut self.max_requests_per_1_minute),
            "max_tokens_per_1_minute" => Some(&mut self.max_tokens_per_1_minute),
            "max_images_per_1_minute" => Some(&mut self.max_images_per_1_minute),
            "max_audio_megabytes_per_1_minute" => Some(&mut self.max_audio_megabytes_per_1_minute),
            "max_requests_per_1_day" => Some(&mut self.max_requests_per_1_day),
            "batch_1_day_max_input_tokens" => Some(&mut self.batch_1_day_max_input_tokens),
            _ => None,
        }
    }

    /// These overrides laid over `defaults`: a set field wins.
    pub fn over(&self, defaults: &RateLimitFields) -> RateLimitFields {
        RateLimitFields {
            max_requests_per_1_minute: self
                .max_requests_per_1_minute
                .or(defaults.max_requests_per_1_minute),
            max_tokens_per_1_minute: self
                .max_tokens_per_1_minute
                .or(defaults.max_tokens_per_1_minute),
            max_images_per_1_minute: self
                .max_images_per_1_minute
                .or(defaults.max_images_per_1_minute),
            max_audio_megabytes_per_1_minute: self
                .max_audio_megabytes_per_1_minute
                .or(defaults.max_audio_megabytes_per_1_minute),
            max_requests_per_1_day: self
                .max_requests_per_1_day
                .or(defaults.max_requests_per_1_day),
            batch_1_day_max_input_tokens: self
                .batch_1_day_max_input_tokens
                .or(defaults.batch_1_day_max_input_tokens),
        }
    }
}

/// One project's overrides of a catalogue model's limits (the stored half of a
/// `project.rate_limit`; the catalogue supplies the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRateLimit {
    pub organization_id: super::ids::Id,
    pub project_id: super::ids::Id,
    pub model: String,
    pub overrides: RateLimitFields,
    pub updated_at: Millis,
}

/// A limit's value: a whole number from 0 to [`MAX_LIMIT`]. 0 refuses everything.
pub fn limit(field: &'static str, value: i64) -> Result<i64, FieldError> {
    if (0..=MAX_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            format!("'{field}' must be an integer between 0 and {MAX_LIMIT}."),
        ))
    }
}

/// An allowlist as given (`None`: any address). Entries are CIDRs (`10.0.0.0/8`,
/// `2001:db8::/32`) or single addresses; an empty list is refused, since it would admit
/// nothing and lock the key out silently (disable it instead). Host bits are cleared, so
/// `10.1.2.3/8` is stored as `10.0.0.0/8`; duplicates are dropped.
pub fn allowlist(
    field: &'static str,
    raw: Option<Vec<String>>,
) -> Result<Option<Vec<IpNet>>, FieldError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(FieldError::new(
            field,
            format!("'{field}' must hold at least one address or CIDR (null allows any)."),
        ));
    }
    if raw.len() > MAX_ALLOWED_IPS {
        return Err(FieldError::new(
            field,
            format!("'{field}' may hold at most {MAX_ALLOWED_IPS} entries."),
        ));
    }
    let mut out: Vec<IpNet> = Vec::with_capacity(raw.len());
    for entry in &raw {
        let entry = entry.trim();
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                // Echoing what was sent is safe here: an address is no secret, and it is cut
                // short so a huge value cannot bloat the error.
                let shown: String = entry.chars().take(64).collect();
                FieldError::new(
                    field,
                    format!(
                        "'{field}' holds '{shown}', which is not an IPv4 or IPv6 address or CIDR."
                    ),
                )
            })?
            .trunc();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(Some(out))
}

/// Whether `ip` may use something with this allowlist. IPv4-mapped IPv6 addresses
/// (`::ffff:10.0.0.1`, what a dual-stack socket reports) match IPv4 entries.
pub fn allows(list: Option<&[IpNet]>, ip: IpAddr) -> bool {
    let Some(list) = list else { return true };
    let ip = ip.to_canonical();
    list.iter().any(|net| net.contains(&ip))
}

/// Renders an allowlist for storage and the wire: `["10.0.0.0/8", "2001:db8::/32"]`.
pub fn render_allowlist(list: &[IpNet]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<IpNet> {
        allowlist(
            "allowed_ips",
            Some(entries.iter().map(|s| s.to_string()).collect()),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn allowlists_parse_addresses_and_cidrs_and_refuse_the_rest() {
        let l = list(&["10.1.2.3/8", "192.0.2.7", "2001:db8::1/32", "10.0.0.0/8"]);
        assert_eq!(
            render_allowlist(&l),
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
        );
        for bad in ["10.0.0.0/33", "example.com", "", "10.0.0.0/-1", "1.2.3"] {
            let e = allowlist("allowed_ips", Some(vec![bad.into()])).unwrap_err();
            assert!(e.message.contains("not an IPv4"), "{bad}: {e}");
        }
        assert!(allowlist("allowed_ips", Some(vec![])).is_err());
        assert!(allowlist("allowed_ips", Some(vec!["1.1.1.1".into(); 101])).is_err());
        assert_eq!(allowlist("allowed_ips", None).unwrap(), None);
    }

    #[test]
    fn an_allowlist_admits_its_networks_and_mapped_addresses() {
        let l = list(&["10.0.0.0/8", "2001:db8::/32"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allows(Some(&l), ip("10.200.0.1")));
        assert!(allows(Some(&l), ip("::ffff:10.0.0.1")));
        assert!(allows(Some(&l), ip("2001:db8:1::5")));
        assert!(!allows(Some(&l), ip("11.0.0.1")));
        assert!(!allows(Some(&l), ip("2001:db9::1")));
        assert!(allows(None, ip("203.0.113.1")));
    }

    #[test]
    fn limits_are_bounded_and_overrides_win() {
        assert!(limit("x", -1).is_err());
        assert_eq!(limit("x", 0).unwrap(), 0);
        assert!(limit("x", MAX_LIMIT + 1).is_err());
        let defaults = RateLimitFields {
            max_requests_per_1_minute: Some(10),
            max_tokens_per_1_minute: Some(100),
            ..Default::default()
        };
        let o = RateLimitFields {
            max_tokens_per_1_minute: Some(5),
            max_requests_per_1_day: Some(7),
            ..Default::default()
        };
        let m = o.over(&defaults);
        assert_eq!(m.max_requests_per_1_minute, Some(10));
        assert_eq!(m.max_tokens_per_1_minute, Some(5));
        assert_eq!(m.max_requests_per_1_day, Some(7));
        assert_eq!(
            DisabledReason::parse("exposed"),
            Some(DisabledReason::Exposed)
        );
        assert_eq!(DisabledReason::parse("lost"), None);
    }
}

//! Object identifiers.
//!
//! Every object has one canonical ID: 26 characters of `[0-9a-z]` (the Keycard form). The
//! OpenAI dialect shows the same ID behind a type prefix (`proj_`, `svc_acct_`, `key_`), so
//! the prefix is added when rendering and stripped when parsing, never stored.

use std::fmt;

use super::random::{self, RandomError};

pub const ID_LEN: usize = 26;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// A fresh random ID: 26 base36 characters, about 134 bits from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut out = String::with_capacity(ID_LEN);
        let mut buf = [0u8; 40];
        while out.len() < ID_LEN {
            random::fill(&mut buf)?;
            // Rejection sampling keeps the characters uniform: 252 = 7 * 36.
            for b in buf.iter().filter(|b| **b < 252) {
                if out.len() == ID_LEN {
                    break;
                }
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
        Ok(Self(out))
    }

    /// Accepts exactly the canonical form; anything else is not an ID we could have issued.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

/// The kinds of object that have IDs, with their OpenAI-dialect prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Organization,
    Project,
    ServiceAccount,
    ApiKey,
    /// Keycard-dialect only; the prefix exists for completeness, it is never rendered.
    Credential,
    /// A workload identity provider (an external OIDC issuer an organization trusts).
    IdentityProvider,
    /// A federation rule of a workload identity provider.
    FederationRule,
}

impl Kind {
    pub fn openai_prefix(self) -> &'static str {
        match self {
            Kind::Organization => "org-",
            Kind::Project => "proj_",
            Kind::ServiceAccount => "svc_acct_",
            Kind::ApiKey => "key_",
            Kind::Credential => "cred_",
            Kind::IdentityProvider => "idp_",
            Kind::FederationRule => "fedrule_",
        }
    }

    /// Human noun used in "No such …" messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Organization => "organization",
            Kind::Project => "project",
            Kind::ServiceAccount => "service account",
            Kind::ApiKey => "API key",
            Kind::Credential => "credential",
            Kind::IdentityProvider => "workload identity provider",
            Kind::FederationRule => "federation rule",
        }
    }

    pub fn render_openai(self, id: &Id) -> String {
        let prefix = self.openai_prefix();
        let mut s = String::with_capacity(prefix.len() + ID_LEN);
        s.push_str(prefix);
        s.push_str(id.as_str());
        s
    }

    pub fn parse_openai(self, s: &str) -> Option<Id> {
        s.strip_prefix(self.openai_prefix()).and_then(Id::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_canonical_and_distinct() {
        let a = Id::generate().unwrap();
        let b = Id::generate().unwrap();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), ID_LEN);
            assert!(Id::parse(id.as_str()).is_some());
        }
    }

    #[test]
    fn parse_rejects_non_canonical_forms() {
        assert!(Id::parse("").is_none());
        assert!(Id::parse("ab3def8hij2klm9opq5rst7uv").is_none()); // 25
        assert!(Id::parse("ab3def8hij2klm9opq5rst7uvwx").is_none()); // 27
        assert!(Id::parse("AB3DEF8HIJ2KLM9OPQ5RST7UVW").is_none());
        assert!(Id::parse("ab3def8hij2klm9opq5rst7uv_").is_none());
        assert!(Id::parse("ab3def8hij2klm9opq5rst7uvw").is_some());
    }

    #[test]
    fn openai_rendering_round_trips_and_checks_the_prefix() {
        let id = Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap();
        let rendered = Kind::ServiceAccount.render_openai(&id);
        assert_eq!(rendered, "svc_acct_ab3def8hij2klm9opq5rst7uvw");
        assert_eq!(
            Kind::ServiceAccount.parse_openai(&rendered),
            Some(id.clone())
        );
        assert_eq!(Kind::Project.parse_openai(&rendered), None);
        assert_eq!(
            Kind::Project.render_openai(&id),
            "proj_ab3def8hij2klm9opq5rst7uvw"
        );
        assert_eq!(Kind::ApiKey.parse_openai("key_"), None);
    }
}

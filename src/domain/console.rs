//! Console sessions: what signing in to the browser console with an admin key leaves behind.
//! The browser holds only an opaque session token (in an `HttpOnly` cookie); the store holds
//! its SHA-256, like an API key's, and the hash of the admin key it stands for, so every use
//! re-checks that key (revoked, expired or disabled ends the session).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::ids::Id;
use super::keys::KeyHash;
use super::random::{self, RandomError};
use super::time::Millis;

/// Length of a session token: 32 random bytes, base64url without padding.
pub const TOKEN_LEN: usize = 43;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the token; the token itself is never stored.
    pub hash: KeyHash,
    pub organization_id: Id,
    pub admin_key_id: Id,
    /// The admin key's own stored hash, so a use finds the key through the verification
    /// cache rather than the store.
    pub key_hash: KeyHash,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    /// The absolute end, whatever the activity.
    pub expires_at: Millis,
}

impl ConsoleSession {
    /// When the session ends if nothing uses it before: its absolute end, or `idle_ms` after
    /// its last use, whichever is first.
    pub fn ends_at(&self, idle_ms: Millis) -> Millis {
        self.expires_at
            .min(self.last_seen_at.saturating_add(idle_ms))
    }
}

/// A session token as the browser holds it. Not `Debug`-printable, like a key.
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `presented` has a token's shape: checked before any lookup, so a tampered or
/// foreign cookie costs nothing.
pub fn is_token_shaped(presented: &str) -> bool {
    presented.len() == TOKEN_LEN
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn token_hash(token: &str) -> KeyHash {
    KeyHash::of(token)
}

/// The session's anti-CSRF token: derived from the session token (which only the session's
/// holder has) under its own label, so it need not be stored, and knowing it tells nothing
/// of the session token.
pub fn csrf_token(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"keyplane console csrf\0");
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_shaped_and_their_csrf_token_differs() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert!(is_token_shaped(a.as_str()), "{}", a.as_str().len());
        assert_ne!(csrf_token(a.as_str()), csrf_token(b.as_str()));
        assert_ne!(csrf_token(a.as_str()), a.as_str());
        assert_eq!(csrf_token(a.as_str()), csrf_token(a.as_str()));
        for bad in [
            "",
            "short",
            &format!("{}=", &a.as_str()[..42]),
            &"é".repeat(22),
        ] {
            assert!(!is_token_shaped(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_session_ends_at_its_idle_limit_or_its_absolute_end() {
        let s = ConsoleSession {
            hash: KeyHash([0; 32]),
            organization_id: Id::generate().unwrap(),
            admin_key_id: Id::generate().unwrap(),
            key_hash: KeyHash([1; 32]),
            created_at: 0,
            last_seen_at: 1_000,
            expires_at: 10_000,
        };
        assert_eq!(s.ends_at(500), 1_500);
        assert_eq!(s.ends_at(50_000), 10_000);
        assert_eq!(s.ends_at(i64::MAX), 10_000);
    }
}

//! Client credentials (the Keycard dialect): a public `client_id` and a `client_secret`, both
//! base62 from the OS CSPRNG. Base62 on purpose: no character needs escaping in an HTTP Basic
//! header or a form body, whichever way a client encodes them. Only the secret's SHA-256 is
//! stored; the secret exists once, in the response that creates it.

use super::keys::KeyHash;
use super::random::{self, RandomError};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 21 characters, as Keycard's examples show: about 125 bits, ample for a public identifier.
const CLIENT_ID_CHARS: usize = 21;
/// 64 characters: about 381 bits.
const SECRET_CHARS: usize = 64;

fn base62(n: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        random::fill(&mut buf)?;
        // Rejection sampling: 248 = 4 * 62, so bytes below it map without bias.
        for b in buf {
            if b < 248 && out.len() < n {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

pub fn generate_client_id() -> Result<String, RandomError> {
    base62(CLIENT_ID_CHARS)
}

/// A new secret and the hash to store.
pub fn generate_secret() -> Result<(String, KeyHash), RandomError> {
    let secret = base62(SECRET_CHARS)?;
    let hash = KeyHash::of(&secret);
    Ok((secret, hash))
}

/// Whether `presented` is the secret whose hash is `stored`, in time independent of where
/// they differ.
pub fn secret_matches(presented: &str, stored: &KeyHash) -> bool {
    use subtle::ConstantTimeEq;
    KeyHash::of(presented).0.ct_eq(&stored.0).into()
}

/// Client ids are looked up only if they could be ours: cheap rejection of junk.
pub fn plausible_client_id(s: &str) -> bool {
    s.len() == CLIENT_ID_CHARS && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_are_base62_of_the_right_length_and_distinct() {
        let a = generate_client_id().unwrap();
        let b = generate_client_id().unwrap();
        assert!(plausible_client_id(&a) && a != b);
        let (s, h) = generate_secret().unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&s[1..], &h));
        assert!(!plausible_client_id("short"));
    }
}

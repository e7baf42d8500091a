//! API key material: format, checksum, hashing and redaction.
//!
//! A key is `<prefix><random><checksum>`: `random` is 32 bytes from the OS CSPRNG written as a
//! 43-character base62 number, `checksum` is the CRC32 of `random` as 6 base62 characters
//! (GitHub's token scheme). The checksum lets us turn away typos and made-up keys before any
//! lookup. Only the SHA-256 of the whole key is stored; the plaintext exists once, in the
//! response that creates it.

use std::fmt;

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

use super::random::{self, RandomError};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_BYTES: usize = 32;
/// 62^43 > 2^256, so 43 characters hold any 32-byte number.
const RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
/// Longest random part we accept when parsing, so keys minted with more entropy (or imported)
/// still parse while absurd inputs are rejected cheaply.
const MAX_RANDOM_CHARS: usize = 128;

/// The admin key scope that allows lists and retrievals (OpenAI's name for it).
pub const SCOPE_READ: &str = "api.management.read";
/// The admin key scope that allows every change; it implies [`SCOPE_READ`]. Admin keys
/// created before scopes existed have none and keep full access.
pub const SCOPE_WRITE: &str = "api.management.write";
/// keyplane's least-privilege admin key scope for gateways: report token usage
/// (`POST /v1/usage`) and nothing else. [`SCOPE_WRITE`] implies it.
pub const SCOPE_USAGE: &str = "api.usage.write";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Admin,
    ServiceAccount,
}

impl KeyKind {
    /// NEVER change a prefix: every key already issued with it would stop working.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Admin => "sk-admin-",
            KeyKind::ServiceAccount => "sk-svcacct-",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::ServiceAccount => "service_account",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(KeyKind::Admin),
            "service_account" => Some(KeyKind::ServiceAccount),
            _ => None,
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        [KeyKind::Admin, KeyKind::ServiceAccount]
            .into_iter()
            .find(|k| key.starts_with(k.prefix()))
    }
}

/// A freshly minted key. Its `Debug` hides the value so it cannot leak through logs.
pub struct PlainKey {
    kind: KeyKind,
    value: String,
}

impl PlainKey {
    pub fn generate(kind: KeyKind) -> Result<Self, RandomError> {
        let mut bytes = [0u8; RANDOM_BYTES];
        random::fill(&mut bytes)?;
        let random_part = base62_fixed(&bytes, RANDOM_CHARS);
        let mut value = String::with_capacity(kind.prefix().len() + RANDOM_CHARS + CHECKSUM_CHARS);
        value.push_str(kind.prefix());
        value.push_str(&random_part);
        value.push_str(&checksum(&random_part));
        Ok(Self { kind, value })
    }

    /// Wraps a key supplied by an operator (bootstrap), after checking its format.
    pub fn from_supplied(value: &str) -> Result<Self, MalformedKey> {
        let kind = parse(value)?;
        Ok(Self {
            kind,
            value: value.to_owned(),
        })
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The plaintext. Call only to put it in the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.value)
    }

    pub fn redacted(&self) -> String {
        redact(&self.value)
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({})", self.redacted())
    }
}

/// SHA-256 of a whole key. Keys carry 256 bits of entropy, so a fast unsalted hash is enough:
/// there is nothing to brute-force, and verification stays one indexed lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

/// FIPS 180-4 §5.3.3: SHA-256's initial hash value.
const SHA256_H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

impl KeyHash {
    /// SHA-256 of the key. Input of up to two blocks (every key keyplane mints: 60 bytes) is
    /// padded on the stack and handed to sha2's block function (SHA-NI where the CPU has it):
    /// every gateway check hashes its key, and `Sha256::digest`'s buffering adds about half of
    /// what the compression itself costs with SHA-NI. Longer input takes `Sha256::digest`; a unit
    /// test holds both equal for every length up to and past the two-block boundary.
    pub fn of(key: &str) -> Self {
        let key = key.as_bytes();
        // §5.1.1: the message, a 1 bit, zeros, then its length in bits (64-bit big-endian)
        // ending the last block.
        let blocks = (key.len() + 9).div_ceil(64);
        if blocks > 2 {
            return Self(Sha256::digest(key).into());
        }
        // Written with slice copies (memcpy): `GenericArray::clone_from_slice` may compile to
        // a loop a byte at a time.
        let mut padded = [GenericArray::<u8, U64>::default(); 2];
        let in_first = key.len().min(64);
        padded[0][..in_first].copy_from_slice(&key[..in_first]);
        padded[1][..key.len() - in_first].copy_from_slice(&key[in_first..]);
        padded[key.len() / 64][key.len() % 64] = 0x80;
        let bits = (key.len() as u64) * 8;
        padded[blocks - 1][56..].copy_from_slice(&bits.to_be_bytes());
        let mut state = SHA256_H0;
        // One call for both blocks: one CPU feature check, one SHA-NI prologue.
        sha2::compress256(&mut state, &padded[..blocks]);
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        Self(out)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("the key does not start with a known prefix")]
    UnknownPrefix,
    #[error("the key has the wrong length or characters")]
    Shape,
    #[error("the key's checksum does not match")]
    Checksum,
}

/// Checks prefix, alphabet, length and checksum without touching any store.
pub fn parse(key: &str) -> Result<KeyKind, MalformedKey> {
    let kind = shape(key)?;
    let body = &key[kind.prefix().len()..];
    if !is_base62(body) {
        return Err(MalformedKey::Shape);
    }
    if !checksum_matches(body) {
        return Err(MalformedKey::Checksum);
    }
    Ok(kind)
}

/// Whether `key`, already found of [`shape`] `kind`, is base62 throughout and its checksum
/// matches its random part: what [`parse`] adds to [`shape`].
pub fn checksum_holds(key: &str, kind: KeyKind) -> bool {
    let body = &key[kind.prefix().len()..];
    is_base62(body) && checksum_matches(body)
}

fn is_base62(body: &str) -> bool {
    body.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `body`: the random part and the checksum, [`shape`]'s length already checked.
fn checksum_matches(body: &str) -> bool {
    let (random_part, sum) = body.split_at(body.len() - CHECKSUM_CHARS);
    // Into a stack buffer, not through `checksum` (a `Vec` and a `String` per call): every
    // presented key that is not in the verification cache is checked.
    let mut expected = [0u8; CHECKSUM_CHARS];
    base62_into(
        &crc32fast::hash(random_part.as_bytes()).to_be_bytes(),
        &mut expected,
    );
    expected == sum.as_bytes()
}

/// [`parse`] without the body: prefix and length only. For a caller that looks the key's hash
/// up first, where a hit is a key keyplane issued (base62, checksum holding), and runs
/// [`checksum_holds`] only before it would read the store: a byte-by-byte pass over every
/// presented key is a tenth of a cached check's own work.
pub fn shape(key: &str) -> Result<KeyKind, MalformedKey> {
    let kind = KeyKind::from_key(key).ok_or(MalformedKey::UnknownPrefix)?;
    let random_len = (key.len() - kind.prefix().len())
        .checked_sub(CHECKSUM_CHARS)
        .ok_or(MalformedKey::Shape)?;
    if !(RANDOM_CHARS..=MAX_RANDOM_CHARS).contains(&random_len) {
        return Err(MalformedKey::Shape);
    }
    Ok(kind)
}

/// `sk-svcacct-abcd…wxyz`: enough to recognise a key in a list, far too little to use it.
/// Works on any string (it is also used to quote a rejected key back to its sender).
pub fn redact(key: &str) -> String {
    let prefix = KeyKind::from_key(key).map(KeyKind::prefix).unwrap_or("");
    let rest: Vec<char> = key[prefix.len()..].chars().collect();
    if rest.len() < 16 {
        return format!("{prefix}…");
    }
    let head: String = rest[..4].iter().collect();
    let tail: String = rest[rest.len() - 4..].iter().collect();
    format!("{prefix}{head}…{tail}")
}

fn checksum(random_part: &str) -> String {
    let crc = crc32fast::hash(random_part.as_bytes());
    base62_fixed(&crc.to_be_bytes(), CHECKSUM_CHARS)
}

/// Big-endian bytes as a base62 number, left-padded with '0' to `width` characters.
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut digits = vec![b'0'; width];
    base62_into(bytes, &mut digits);
    // The alphabet is ASCII, so this cannot fail; map instead of unwrap to stay panic-free.
    String::from_utf8(digits).unwrap_or_default()
}

/// Big-endian bytes (at most 32: a key's random part or a checksum) as a base62 number
/// filling `digits`, left-padded with '0'. Works on a stack copy of `bytes`: no allocation.
fn base62_into(bytes: &[u8], digits: &mut [u8]) {
    let mut buf = [0u8; RANDOM_BYTES];
    let n = bytes.len().min(RANDOM_BYTES);
    buf[..n].copy_from_slice(&bytes[..n]);
    let num = &mut buf[..n];
    for slot in digits.iter_mut().rev() {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = BASE62[rem as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_sha256_at_every_length() {
        let input: String = (0..300)
            .map(|i| char::from(b'!' + (i % 90) as u8))
            .collect();
        for len in 0..=input.len() {
            let key = &input[..len];
            let expected: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            assert_eq!(KeyHash::of(key).as_bytes(), &expected, "length {len}");
        }
    }

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for kind in [KeyKind::Admin, KeyKind::ServiceAccount] {
            let key = PlainKey::generate(kind).unwrap();
            let v = key.expose();
            assert!(v.starts_with(kind.prefix()));
            assert_eq!(v.len(), kind.prefix().len() + 49);
            assert_eq!(parse(v), Ok(kind));
        }
    }

    #[test]
    fn base62_matches_known_values() {
        assert_eq!(base62_fixed(&[0, 0, 0, 0], 6), "000000");
        assert_eq!(base62_fixed(&[0, 0, 0, 61], 6), "00000z");
        assert_eq!(base62_fixed(&[0, 0, 0, 62], 6), "000010");
        assert_eq!(base62_fixed(&u32::MAX.to_be_bytes(), 6), "4gfFC3");
        assert_eq!(base62_fixed(&[0xff; 32], 43).len(), 43);
    }

    #[test]
    fn checksum_is_crc32_of_the_random_part() {
        // zlib.crc32(b"0" * 43) == 0x7849568f (independently computed).
        let random_part = "0".repeat(43);
        assert_eq!(crc32fast::hash(random_part.as_bytes()), 0x7849_568f);
        let key = format!("sk-admin-{random_part}{}", checksum(&random_part));
        assert_eq!(parse(&key), Ok(KeyKind::Admin));
    }

    #[test]
    fn a_single_typo_is_caught_by_the_checksum() {
        let key = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
        let v = key.expose().to_owned();
        let pos = KeyKind::ServiceAccount.prefix().len() + 10;
        let mut bytes = v.into_bytes();
        bytes[pos] = if bytes[pos] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(parse(&typo), Err(MalformedKey::Checksum));
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        assert_eq!(parse(""), Err(MalformedKey::UnknownPrefix));
        assert_eq!(parse("sk-proj-abc"), Err(MalformedKey::UnknownPrefix));
        assert_eq!(parse("sk-admin-"), Err(MalformedKey::Shape));
        assert_eq!(parse("sk-admin-short"), Err(MalformedKey::Shape));
        let bad_chars = format!("sk-admin-{}", "-".repeat(49));
        assert_eq!(parse(&bad_chars), Err(MalformedKey::Shape));
        let too_long = format!("sk-admin-{}", "a".repeat(500));
        assert_eq!(parse(&too_long), Err(MalformedKey::Shape));
        // Multi-byte input must not panic on slicing.
        assert_eq!(
            parse("sk-admin-ééééééééééééééééééééééééééééé"),
            Err(MalformedKey::Shape)
        );
    }

    #[test]
    fn shape_is_prefix_and_length_and_the_rest_is_checked_before_any_store_read() {
        let key = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
        let v = key.expose();
        assert_eq!(shape(v), Ok(KeyKind::ServiceAccount));
        assert!(checksum_holds(v, KeyKind::ServiceAccount));
        // Right length, wrong alphabet (multi-byte too): shape passes, the body check refuses
        // without panicking on a char boundary.
        let prefix = KeyKind::ServiceAccount.prefix();
        for body in ["-".repeat(49), "é".repeat(24) + "a", "a".repeat(43) + "ééé"] {
            let k = format!("{prefix}{body}");
            assert_eq!(shape(&k), Ok(KeyKind::ServiceAccount), "{k}");
            assert!(!checksum_holds(&k, KeyKind::ServiceAccount), "{k}");
            assert!(parse(&k).is_err(), "{k}");
        }
    }

    #[test]
    fn redaction_hides_the_middle_and_debug_hides_the_value() {
        let key = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
        let r = key.redacted();
        let v = key.expose();
        assert!(r.starts_with("sk-svcacct-"));
        assert!(r.contains('…'));
        assert_eq!(r.chars().count(), "sk-svcacct-".len() + 9);
        assert!(v.ends_with(&r[r.len() - 4..]));
        assert!(!format!("{key:?}").contains(v));
        assert_eq!(redact("short"), "…");
        assert_eq!(redact("sk-admin-x"), "sk-admin-…");
    }

    #[test]
    fn hash_is_sha256_of_the_whole_key() {
        let h = KeyHash::of("abc");
        assert_eq!(
            h.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256('abc') starts with ba7816bf"
        );
        assert!(!format!("{h:?}").contains("ba"));
    }
}

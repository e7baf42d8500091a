//! Opaque, tamper-proof pagination cursors (the Keycard dialect's `after` / `before`).
//!
//! A cursor names the object a page starts after (or ends before) and the list it belongs to,
//! and carries an HMAC-SHA256 tag under a server-wide secret shared by every node. A forged,
//! altered or foreign cursor (another organization's, another list's) is refused as bad input
//! instead of being looked up. The payload is not encrypted: it holds an ID the client has
//! already seen.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ids::Id;

/// Bytes of the tag kept: 128 bits is plenty against forgery and keeps cursors short.
const TAG_BYTES: usize = 16;

#[derive(Clone)]
pub struct CursorSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid pagination cursor")]
pub struct BadCursor;

impl CursorSigner {
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// The HMAC of `payload`, ready to finalize or verify.
    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        // new_from_slice accepts any key length for HMAC; None is unreachable.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(payload.as_bytes());
        Some(mac)
    }

    fn tag(&self, payload: &str) -> [u8; 32] {
        self.mac(payload)
            .map_or([0; 32], |mac| mac.finalize().into_bytes().into())
    }

    /// A cursor for `id` in the list called `scope` (e.g. `sa:<org id>`).
    pub fn encode(&self, scope: &str, id: &Id) -> String {
        let payload = format!("{scope}|{}", id.as_str());
        let tag = self.tag(&payload);
        let mut raw = payload.into_bytes();
        raw.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The ID in `cursor`, if it was made by this server for the list `scope`.
    pub fn decode(&self, scope: &str, cursor: &str) -> Result<Id, BadCursor> {
        if cursor.len() > 255 {
            return Err(BadCursor);
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BadCursor)?;
        if raw.len() <= TAG_BYTES {
            return Err(BadCursor);
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_BYTES);
        let payload = std::str::from_utf8(payload).map_err(|_| BadCursor)?;
        // The tag is the MAC's first TAG_BYTES, compared in constant time (it must not leak
        // byte by byte through response timing).
        self.mac(payload)
            .ok_or(BadCursor)?
            .verify_truncated_left(tag)
            .map_err(|_| BadCursor)?;
        let (s, id) = payload.rsplit_once('|').ok_or(BadCursor)?;
        if s != scope {
            return Err(BadCursor);
        }
        Id::parse(id).ok_or(BadCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_forgeries_and_foreign_scopes() {
        let s = CursorSigner::new(b"secret".to_vec());
        let id = Id::parse("aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let c = s.encode("sa:org1", &id);
        assert_eq!(s.decode("sa:org1", &c), Ok(id.clone()));
        assert_eq!(s.decode("sa:org2", &c), Err(BadCursor));
        assert_eq!(
            CursorSigner::new(b"other".to_vec()).decode("sa:org1", &c),
            Err(BadCursor)
        );
        // Flip one character anywhere: refused.
        for i in 0..c.len() {
            let mut b = c.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(b).unwrap();
            if forged != c {
                assert_eq!(s.decode("sa:org1", &forged), Err(BadCursor), "{i}");
            }
        }
        assert_eq!(s.decode("sa:org1", "abc"), Err(BadCursor));
        assert_eq!(s.decode("sa:org1", "!!!"), Err(BadCursor));
        assert_eq!(s.decode("sa:org1", ""), Err(BadCursor));
    }
}

//! Access tokens: compact JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037), and the
//! JWK form of their public keys, so resource servers can check tokens offline with any JWT
//! library. Only EdDSA is produced and only EdDSA is accepted: a token naming any other `alg`
//! (notably `none` or an HMAC one) is rejected before its signature is looked at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey as DalekSigning, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::random::{self, RandomError};

pub const ALGORITHM: &str = "EdDSA";

/// The claims keyplane puts in an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The service account's ID.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The organization's ID.
    pub org: String,
    /// The credential the token was issued to: deleting it stops its tokens. Empty for a
    /// token obtained by workload identity federation, which names its rule instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cid: String,
    /// The service account's project, for accounts that belong to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Workload identity federation: the federation rule and the provider that minted the
    /// token from an external one; disabling or deleting either stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// The rule's restricted scopes, space-separated (RFC 8693 §4.2); absent: the service
    /// account's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// A fresh Ed25519 key pair from the OS CSPRNG: (seed, public key).
pub fn generate_keypair() -> Result<([u8; 32], [u8; 32]), RandomError> {
    let mut seed = [0u8; 32];
    random::fill(&mut seed)?;
    let public = DalekSigning::from_bytes(&seed).verifying_key().to_bytes();
    Ok((seed, public))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("stored signing key is not a 32-byte Ed25519 seed")]
    BadSigningKey,
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's algorithm is not EdDSA")]
    Algorithm,
    #[error("the token names an unknown signing key")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
}

/// Signs `claims` with the seed of key `kid`.
pub fn sign(claims: &Claims, kid: &str, seed: &[u8]) -> Result<String, JwtError> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| JwtError::BadSigningKey)?;
    let key = DalekSigning::from_bytes(&seed);
    let header = Header {
        alg: ALGORITHM.into(),
        typ: "JWT".into(),
        kid: kid.into(),
    };
    let mut token = encode_json(&header)?;
    token.push('.');
    token.push_str(&encode_json(claims)?);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(token)
}

fn encode_json<T: Serialize>(value: &T) -> Result<String, JwtError> {
    let json = serde_json::to_vec(value).map_err(|_| JwtError::Malformed)?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Whether `s` has the shape of a compact JWS (three base64url parts): lets callers tell a
/// token from an API key without trying to verify it.
pub fn looks_like_jwt(s: &str) -> bool {
    // Most bearers are API keys (`sk-…`), which no JWT can start with (its first part is
    // base64url of a JSON object, `ey…` or whitespace's encodings): settled before any pass
    // over the bytes.
    !s.starts_with("sk-")
        && s.len() < 8192
        && s.as_bytes().contains(&b'.')
        && s.split('.').count() == 3
        && s.bytes()
            .all(|b| b == b'.' || b == b'-' || b == b'_' || b.is_ascii_alphanumeric())
}

/// The `kid` a token names, before any verification (to pick the key).
pub fn key_id(token: &str) -> Result<String, JwtError> {
    let header: Header = decode_part(token.split('.').next().unwrap_or_default())?;
    if header.alg != ALGORITHM {
        return Err(JwtError::Algorithm);
    }
    Ok(header.kid)
}

/// Checks the signature with `public_key` and returns the claims. Expiry, issuer and audience
/// are the caller's to judge (it knows the time and the server's names).
pub fn verify(token: &str, public_key: &[u8]) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let h: Header = decode_part(header)?;
    if h.alg != ALGORITHM {
        return Err(JwtError::Algorithm);
    }
    let public: [u8; 32] = public_key.try_into().map_err(|_| JwtError::UnknownKey)?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| JwtError::UnknownKey)?;
    let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?
        .try_into()
        .map_err(|_| JwtError::Malformed)?;
    let signed = &token[..header.len() + 1 + payload.len()];
    key.verify(signed.as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| JwtError::Signature)?;
    decode_part(payload)
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The public JWK (RFC 8037 `OKP` / `Ed25519`) of a signing key.
pub fn public_jwk(kid: &str, public_key: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": ALGORITHM,
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(public_key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: "http://127.0.0.1:8080".into(),
            sub: "aaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            aud: "keyplane".into(),
            exp: 2_000,
            iat: 1_000,
            jti: "j".into(),
            org: "bbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            cid: "cccccccccccccccccccccccccc".into(),
            project: None,
            fr: None,
            idp: None,
            scope: None,
        }
    }

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let (seed, public) = generate_keypair().unwrap();
        let token = sign(&claims(), "k1", &seed).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(key_id(&token).unwrap(), "k1");
        assert_eq!(verify(&token, &public).unwrap(), claims());

        // Another key, a changed payload, a swapped algorithm: all refused.
        let (_, other) = generate_keypair().unwrap();
        assert_eq!(verify(&token, &other), Err(JwtError::Signature));
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.sub = "zzzzzzzzzzzzzzzzzzzzzzzzzz".into();
        let payload = encode_json(&forged).unwrap();
        parts[1] = &payload;
        assert_eq!(verify(&parts.join("."), &public), Err(JwtError::Signature));
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let unsigned = format!("{none}.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(verify(&unsigned, &public), Err(JwtError::Algorithm));
        assert_eq!(verify("a.b", &public), Err(JwtError::Malformed));
    }

    #[test]
    fn the_jwk_carries_the_public_key_only() {
        let (seed, public) = generate_keypair().unwrap();
        let jwk = public_jwk("k1", &public).to_string();
        assert!(jwk.contains(&URL_SAFE_NO_PAD.encode(public)));
        assert!(!jwk.contains(&URL_SAFE_NO_PAD.encode(seed)));
        assert!(!looks_like_jwt("sk-svcacct-abc"));
    }
}

//! Verifying a subject token from an external OIDC issuer (a GitHub Actions or Kubernetes
//! service-account JWT) against the provider's key set, as strictly as keyplane's own tokens:
//!
//! - compact JWS with a `kid`, whose `alg` is an asymmetric one keyplane allows (RS256/384/512,
//!   PS256, ES256/384, EdDSA): never `none`, never HMAC (a public key used as an HMAC secret is
//!   the classic confusion), and the key's own `alg`, type and curve must agree with it;
//! - signed by the key of that `kid` in the provider's JWKS;
//! - `iss` exactly the provider's issuer, `aud` (a string or a list) containing its audience,
//!   a non-empty `sub`, `exp` in the future and `iat` (and `nbf`, if present) not in the future,
//!   each with [`SKEW_SECONDS`] of tolerance for clocks that disagree.
//!
//! The signature is checked by `jsonwebtoken` (ring underneath, as rustls already uses);
//! the claims are checked here, against the service's clock (which tests control), rather
//! than by `jsonwebtoken`'s `Validation`, which reads the system clock.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Tolerance for the issuer's clock and ours disagreeing, in seconds.
pub const SKEW_SECONDS: i64 = 60;
/// Longest subject token accepted, in bytes (Kubernetes tokens are ~1 KB, GitHub's ~1.5 KB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a subject token was refused. The exchange answers `invalid_grant` for all of them; the
/// variant goes to the audit and request logs, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectTokenError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm {0} is not allowed")]
    Algorithm(String),
    #[error("the token names no key id (kid)")]
    NoKeyId,
    /// The provider's key set has no key with this id (the caller may refetch it once).
    #[error("no key {0} in the provider's key set")]
    UnknownKeyId(String),
    #[error("the key {0} does not fit the token's algorithm")]
    KeyMismatch(String),
    #[error("bad signature")]
    BadSignature,
    #[error("issuer does not match")]
    Issuer,
    #[error("audience does not match")]
    Audience,
    #[error("claim {0} is missing or malformed")]
    MissingClaim(&'static str),
    #[error("expired")]
    Expired,
    #[error("issued in the future or not yet valid")]
    NotYetValid,
}

/// What a caller checks a token for.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Now, in Unix seconds.
    pub now: i64,
}

/// A verified subject token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSubject {
    /// The payload, for rule matching and attribute transformations.
    pub claims: Value,
    pub subject: String,
    /// `exp`, in Unix seconds: what is minted from this token must not outlive it.
    pub expires_at: i64,
}

fn allowed(alg: Algorithm) -> bool {
    use Algorithm::*;
    matches!(alg, RS256 | RS384 | RS512 | PS256 | ES256 | ES384 | EdDSA)
}

/// The token's key id, once its header is readable and its algorithm allowed: what picks the
/// key (and tells a caller with a stale key set to refetch).
pub fn key_id(token: &str) -> Result<(String, Algorithm), SubjectTokenError> {
    if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
        return Err(SubjectTokenError::Malformed);
    }
    // A header naming `none` or an unknown algorithm fails to parse as a `Header`: read the
    // raw `alg` first so the refusal says which.
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        raw_alg(token).map_or(SubjectTokenError::Malformed, SubjectTokenError::Algorithm)
    })?;
    if !allowed(header.alg) {
        return Err(SubjectTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(SubjectTokenError::NoKeyId)?;
    Ok((kid, header.alg))
}

fn raw_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let first = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    Some(header.get("alg")?.as_str()?.to_owned())
}

/// Verifies `token` against `keys` and `expect`.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    expect: &Expectations<'_>,
) -> Result<VerifiedSubject, SubjectTokenError> {
    let (kid, alg) = key_id(token)?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| SubjectTokenError::UnknownKeyId(kid.clone()))?;
    if !key_fits(jwk, alg) {
        return Err(SubjectTokenError::KeyMismatch(kid));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| SubjectTokenError::KeyMismatch(kid))?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidRsaKey(_) => {
                SubjectTokenError::BadSignature
            }
            K::InvalidAlgorithm => SubjectTokenError::Algorithm(format!("{alg:?}")),
            _ => SubjectTokenError::Malformed,
        }
    })?;
    check_claims(data.claims, expect)
}

/// Whether the key may verify `alg`: its own `alg` (if it states one) is that one, and its type
/// and curve are the algorithm's. Symmetric keys never fit.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(stated) = jwk.common.key_algorithm {
        let same = matches!(
            (stated, alg),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::RS384, Algorithm::RS384)
                | (KeyAlgorithm::RS512, Algorithm::RS512)
                | (KeyAlgorithm::PS256, Algorithm::PS256)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::ES384, Algorithm::ES384)
                | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
        );
        if !same {
            return false;
        }
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256
        ),
        AlgorithmParameters::EllipticCurve(p) => matches!(
            (&p.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(p) => {
            p.curve == EllipticCurve::Ed25519 && alg == Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => false,
    }
}

fn check_claims(
    claims: Value,
    expect: &Expectations<'_>,
) -> Result<VerifiedSubject, SubjectTokenError> {
    use SubjectTokenError as E;
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(E::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(E::Audience);
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(E::MissingClaim("sub"))?
        .to_owned();
    let seconds = |name: &'static str| {
        claims
            .get(name)
            .map(|v| v.as_i64().ok_or(E::MissingClaim(name)))
    };
    let expires_at = seconds("exp").ok_or(E::MissingClaim("exp"))??;
    let issued_at = seconds("iat").ok_or(E::MissingClaim("iat"))??;
    if expires_at + SKEW_SECONDS <= expect.now {
        return Err(E::Expired);
    }
    if issued_at > expect.now + SKEW_SECONDS {
        return Err(E::NotYetValid);
    }
    if let Some(not_before) = seconds("nbf").transpose()? {
        if not_before > expect.now + SKEW_SECONDS {
            return Err(E::NotYetValid);
        }
    }
    Ok(VerifiedSubject {
        claims,
        subject,
        expires_at,
    })
}

#[cfg(test)]
#[path = "subject_token_tests.rs"]
mod tests;

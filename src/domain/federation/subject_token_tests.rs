//! Keys in `testdata/` are throwaway keys made for these tests with `openssl genpkey`.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use super::*;

const RSA_PEM: &str = include_str!("testdata/rsa.pem");
const P256_PEM: &str = include_str!("testdata/p256.pem");
const P384_PEM: &str = include_str!("testdata/p384.pem");
const ED25519_PEM: &str = include_str!("testdata/ed25519.pem");

const RSA_N: &str = "kDM7uxiUtSUDJpN59klCBfO7u_lWElVQeTDpk2T0DvleyIMT0YtpuP0O0VkNom_qelBxSzRfwfhIw92Rc5xSAFR9RL0N7ZI-y1kuOzm2CUc2KO1grriUyORc_87CAHhyxoUj8SyOZqMwa5qGIUJqKm7eTXEe8nNPfKKB2DbrszzKxIwXoRaYBgQ7FzIyiOIUDPkfVUcilwCCssVGnB0PRmcpuCPB323P_Wk_8A44L1BlK8yFhtpFSrxm2lRw1sFBLlK2N8fYi8SvtYV_e54OSi29NfkoD7W7GDVs_JCrimeHMP7oQXI5Me_GSl3kg0J0TFxCZtejQJgw3oMVh3ioEQ";

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "keyplane";
const NOW: i64 = 1_800_000_000;

fn jwks() -> JwkSet {
    serde_json::from_value(json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"},
        // The same RSA key without a stated `alg` (PS256 and RS384 use it).
        {"kty": "RSA", "kid": "rsa-any", "n": RSA_N, "e": "AQAB"},
        {"kty": "EC", "kid": "p256", "crv": "P-256",
         "x": "OdO34pElsRvAgBI1uYMEL4g-Gy53h0-x5qxjdowHGKk",
         "y": "ChjpUGw_CtDg8tPGqjPmFJpXo3nFi-gawROcgBPd6Y0"},
        {"kty": "EC", "kid": "p384", "crv": "P-384",
         "x": "XFoDtDuh7vex5MQmpYXsMqxv4ClD819t7dnBx6b9RpVQWEtYLnOGjw5DmChTh4ar",
         "y": "4v8tLpiXVvNUIjyNdMfPPO6kJe3D4_Zsk80hilJPCjClTPL5Zh06uVRDvDoXBrmw"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519",
         "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
    ]}))
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "repo:acme/api:ref:refs/heads/main",
        "repository": "acme/api",
        "iat": NOW - 10,
        "exp": NOW + 300,
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(RSA_PEM.as_bytes())
        }
        Algorithm::ES256 => EncodingKey::from_ec_pem(P256_PEM.as_bytes()),
        Algorithm::ES384 => EncodingKey::from_ec_pem(P384_PEM.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED25519_PEM.as_bytes()),
        _ => Ok(EncodingKey::from_secret(b"secret")),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn expect() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        audience: AUDIENCE,
        now: NOW,
    }
}

fn check(token: &str) -> Result<VerifiedSubject, SubjectTokenError> {
    verify(token, &jwks(), &expect())
}

/// A token with the header replaced (signature kept): what an attacker can write freely.
fn with_header(token: &str, header: Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = b64.encode(header.to_string());
    parts.join(".")
}

#[test]
fn every_allowed_algorithm_verifies_with_its_key() {
    for (alg, kid) in [
        (Algorithm::RS256, "rsa"),
        (Algorithm::RS384, "rsa-any"),
        (Algorithm::RS512, "rsa-any"),
        (Algorithm::PS256, "rsa-any"),
        (Algorithm::ES256, "p256"),
        (Algorithm::ES384, "p384"),
        (Algorithm::EdDSA, "ed"),
    ] {
        let v = check(&sign(alg, Some(kid), &claims())).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(v.subject, "repo:acme/api:ref:refs/heads/main");
        assert_eq!(v.expires_at, NOW + 300);
        assert_eq!(v.claims["repository"], "acme/api");
    }
}

#[test]
fn audience_may_be_a_list() {
    let mut c = claims();
    c["aud"] = json!(["other", AUDIENCE]);
    assert!(check(&sign(Algorithm::RS256, Some("rsa"), &c)).is_ok());
    c["aud"] = json!(["other"]);
    assert_eq!(
        check(&sign(Algorithm::RS256, Some("rsa"), &c)),
        Err(SubjectTokenError::Audience)
    );
}

#[test]
fn claims_are_checked() {
    use SubjectTokenError as E;
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, E)> = vec![
        (
            "wrong issuer",
            Box::new(|c| c["iss"] = json!("https://evil.example")),
            E::Issuer,
        ),
        (
            "issuer prefix",
            Box::new(|c| c["iss"] = json!(format!("{ISSUER}/"))),
            E::Issuer,
        ),
        (
            "no issuer",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
            E::Issuer,
        ),
        (
            "wrong audience",
            Box::new(|c| c["aud"] = json!("someone-else")),
            E::Audience,
        ),
        (
            "no audience",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            E::Audience,
        ),
        (
            "no subject",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            E::MissingClaim("sub"),
        ),
        (
            "empty subject",
            Box::new(|c| c["sub"] = json!("")),
            E::MissingClaim("sub"),
        ),
        (
            "numeric subject",
            Box::new(|c| c["sub"] = json!(7)),
            E::MissingClaim("sub"),
        ),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            E::MissingClaim("exp"),
        ),
        (
            "string exp",
            Box::new(|c| c["exp"] = json!("soon")),
            E::MissingClaim("exp"),
        ),
        (
            "no iat",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            E::MissingClaim("iat"),
        ),
        (
            "expired",
            Box::new(|c| c["exp"] = json!(NOW - SKEW_SECONDS)),
            E::Expired,
        ),
        (
            "issued in the future",
            Box::new(|c| c["iat"] = json!(NOW + SKEW_SECONDS + 1)),
            E::NotYetValid,
        ),
        (
            "not yet valid",
            Box::new(|c| c["nbf"] = json!(NOW + SKEW_SECONDS + 1)),
            E::NotYetValid,
        ),
    ];
    for (what, change, want) in cases {
        let mut c = claims();
        change(&mut c);
        assert_eq!(
            check(&sign(Algorithm::ES256, Some("p256"), &c)),
            Err(want),
            "{what}"
        );
    }
    // Within the skew both ways.
    let mut c = claims();
    c["exp"] = json!(NOW - SKEW_SECONDS + 1);
    c["iat"] = json!(NOW + SKEW_SECONDS);
    c["nbf"] = json!(NOW + SKEW_SECONDS);
    assert!(check(&sign(Algorithm::ES256, Some("p256"), &c)).is_ok());
}

#[test]
fn signatures_and_keys_are_checked() {
    use SubjectTokenError as E;
    let good = sign(Algorithm::RS256, Some("rsa"), &claims());
    // A payload changed after signing.
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = {
        use base64::Engine;
        let mut c = claims();
        c["sub"] = json!("repo:evil/api:ref:refs/heads/main");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
    };
    parts[1] = &forged;
    assert_eq!(check(&parts.join(".")), Err(E::BadSignature));
    // Signed by another key than the one its kid names.
    let other = sign(Algorithm::ES256, Some("p256"), &claims());
    let relabelled = with_header(&other, json!({"alg": "ES256", "kid": "p256-unknown"}));
    assert_eq!(
        check(&relabelled),
        Err(E::UnknownKeyId("p256-unknown".into()))
    );
    assert_eq!(
        check(&sign(Algorithm::RS256, None, &claims())),
        Err(E::NoKeyId)
    );
    assert_eq!(
        check(&sign(Algorithm::RS256, Some(""), &claims())),
        Err(E::NoKeyId)
    );
    // The key states RS256; a PS256 token naming it is refused before any signature check.
    assert_eq!(
        check(&sign(Algorithm::PS256, Some("rsa"), &claims())),
        Err(E::KeyMismatch("rsa".into()))
    );
    // Curve and type must fit the algorithm.
    let es384_on_p256 = with_header(
        &sign(Algorithm::ES384, Some("p384"), &claims()),
        json!({"alg": "ES384", "kid": "p256"}),
    );
    assert_eq!(check(&es384_on_p256), Err(E::KeyMismatch("p256".into())));
    let eddsa_on_rsa = with_header(
        &sign(Algorithm::EdDSA, Some("ed"), &claims()),
        json!({"alg": "EdDSA", "kid": "rsa-any"}),
    );
    assert_eq!(check(&eddsa_on_rsa), Err(E::KeyMismatch("rsa-any".into())));
}

#[test]
fn none_and_hmac_are_refused_whatever_the_key() {
    use SubjectTokenError as E;
    // alg none, unsigned.
    let good = sign(Algorithm::RS256, Some("rsa"), &claims());
    let payload = good.split('.').nth(1).unwrap();
    let none = with_header(
        &format!("x.{payload}."),
        json!({"alg": "none", "kid": "rsa"}),
    );
    assert_eq!(check(&none), Err(E::Algorithm("none".into())));
    // HS256 with the RSA public key's modulus as the secret (the key confusion attack), and
    // HS256 naming the symmetric key that a careless JWKS might hold.
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(RSA_N)
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa".into());
    let confused = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&n)).unwrap();
    assert_eq!(check(&confused), Err(E::Algorithm("HS256".into())));
    assert_eq!(
        check(&sign(Algorithm::HS256, Some("hmac"), &claims())),
        Err(E::Algorithm("HS256".into()))
    );
    // Allowed by JOSE, not by keyplane.
    let ps512 = with_header(&good, json!({"alg": "PS512", "kid": "rsa-any"}));
    assert_eq!(check(&ps512), Err(E::Algorithm("PS512".into())));
}

#[test]
fn garbage_is_malformed() {
    for token in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.!!.!!",
        &"a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert_eq!(
            check(token),
            Err(SubjectTokenError::Malformed),
            "{token:.20}"
        );
    }
}

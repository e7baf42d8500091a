//! The OAuth side of the Keycard dialect, in-process: `POST /service-account-token`, the JWKS
//! and the authorization-server metadata, tokens checked independently (EdDSA over the JWKS),
//! and tokens accepted by `/v1/auth/check` and `/v1/keys/verify`.

use crate::common::{self, is_kc_id, kc_accounts, kc_credentials, TestApp, KC_ORG};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use keyplane::domain::time::Clock;
use serde_json::{json, Value};

const GRANT: &str = "grant_type=client_credentials";

struct Client {
    account: String,
    credential: String,
    client_id: String,
    secret: String,
}

async fn client(app: &TestApp) -> Client {
    let account = app.kc_create_account("robot").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client_of(app, &account).await
}

async fn client_of(app: &TestApp, account: &str) -> Client {
    let c = app.kc_create_credential(account, "cred").await;
    Client {
        account: account.to_owned(),
        credential: c["id"].as_str().unwrap().to_owned(),
        client_id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().unwrap().to_owned(),
    }
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Header and claims of a token, after checking its EdDSA signature against the JWKS.
async fn verify_independently(app: &TestApp, token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header = decode_part(parts[0]);
    let claims = decode_part(parts[1]);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"].as_str().expect("kid");

    let jwks = app.send("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.status, 200, "{}", jwks.text);
    let jwk = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS: {}", jwks.text))
        .clone();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .expect("32-byte public key");
    let key = VerifyingKey::from_bytes(&x).expect("an Ed25519 point");
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap()
        .try_into()
        .expect("64-byte signature");
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify_strict(signed.as_bytes(), &Signature::from_bytes(&sig))
        .expect("the signature verifies against the published key");
    (header, claims)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Flips one character of a token part (staying in the base64url alphabet).
fn tamper(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut chars: Vec<char> = parts[part].chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    parts[part] = chars.into_iter().collect();
    parts.join(".")
}

async fn auth_check(app: &TestApp, token: &str) -> common::Resp {
    app.send("GET", "/v1/auth/check", Some(token), None).await
}

// --- the token endpoint ------------------------------------------------------------------------

#[tokio::test]
async fn basic_auth_issues_a_bearer_token() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let r = app
        .token_request(GRANT, Some((&c.client_id, &c.secret)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let b = r.body.as_object().unwrap();
    assert_eq!(b.len(), 3, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let token = r.body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert!(!r.text.contains(&c.secret));
}

#[tokio::test]
async fn form_field_client_auth_works() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        c.client_id, c.secret
    );
    let r = app.token_request(&form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let token = r.body["access_token"].as_str().unwrap();
    let (_, claims) = verify_independently(&app, token).await;
    assert_eq!(claims["sub"], c.account.as_str());
    // The form content type may carry a charset.
    let r = app
        .request(
            "POST",
            "/service-account-token",
            None,
            &[],
            Some((
                "application/x-www-form-urlencoded; charset=utf-8",
                form.into_bytes(),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn both_client_auth_methods_at_once_is_invalid_request() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        c.client_id, c.secret
    );
    let r = app
        .token_request(&form, Some((&c.client_id, &c.secret)))
        .await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    let form = format!("grant_type=client_credentials&client_id={}", c.client_id);
    let r = app
        .token_request(&form, Some((&c.client_id, &c.secret)))
        .await;
    assert_eq!(r.oauth_error(400), "invalid_request");
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    // The last character changed (to one it is not: appending a fixed `x` would be the right
    // secret again once in 62 runs).
    let last = if c.secret.ends_with('x') { 'y' } else { 'x' };
    let wrong_secret = format!("{}{last}", &c.secret[..63]);
    let unknown_id = "AAAAAAAAAAAAAAAAAAAAA";

    for (id, secret) in [
        (c.client_id.as_str(), wrong_secret.as_str()),
        (c.client_id.as_str(), ""),
        (unknown_id, c.secret.as_str()),
        ("short", c.secret.as_str()),
    ] {
        let r = app.token_request(GRANT, Some((id, secret))).await;
        assert_eq!(r.oauth_error(401), "invalid_client", "{id}:{secret}");
        assert_eq!(
            r.body,
            json!({"error": "invalid_client", "error_description": r.body["error_description"]})
        );
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        let form = format!("{GRANT}&client_id={id}&client_secret={secret}");
        let r = app.token_request(&form, None).await;
        assert_eq!(r.oauth_error(401), "invalid_client", "form {id}:{secret}");
    }
    // No client authentication at all, or half of it.
    for form in [
        GRANT.to_owned(),
        format!("{GRANT}&client_id={}", c.client_id),
        format!("{GRANT}&client_secret={}", c.secret),
    ] {
        let r = app.token_request(&form, None).await;
        assert_eq!(r.oauth_error(401), "invalid_client", "{form}");
    }
    // A malformed Basic header.
    let r = app
        .request(
            "POST",
            "/service-account-token",
            None,
            &[("authorization", "Basic !!!")],
            Some(("application/x-www-form-urlencoded", GRANT.into())),
        )
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
}

#[tokio::test]
async fn grant_type_and_content_type_are_checked() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let basic = Some((c.client_id.as_str(), c.secret.as_str()));

    let r = app.token_request("grant_type=password", basic).await;
    assert_eq!(r.oauth_error(400), "unsupported_grant_type");
    let r = app.token_request("", basic).await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    let r = app.token_request("scope=x", basic).await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    let r = app
        .token_request(
            "grant_type=client_credentials&grant_type=client_credentials",
            basic,
        )
        .await;
    assert_eq!(r.oauth_error(400), "invalid_request");

    // JSON is not a token request.
    let r = app
        .request(
            "POST",
            "/service-account-token",
            None,
            &[],
            Some((
                "application/json",
                json!({"grant_type": "client_credentials", "client_id": c.client_id,
                       "client_secret": c.secret})
                .to_string()
                .into_bytes(),
            )),
        )
        .await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    // GET is not allowed.
    let r = app.send("GET", "/service-account-token", None, None).await;
    assert_eq!(r.status, 405, "{}", r.text);
}

#[tokio::test]
async fn deleting_the_credential_or_the_account_stops_issuing_and_verifying() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let other = client_of(&app, &c.account).await;
    let token = app.kc_token(&c.client_id, &c.secret).await;
    let other_token = app.kc_token(&other.client_id, &other.secret).await;
    assert_eq!(auth_check(&app, &token).await.status, 204);

    let url = format!("{}/{}", kc_credentials(KC_ORG, &c.account), c.credential);
    assert_eq!(app.delete(&url).await.status, 204);
    let r = app
        .token_request(GRANT, Some((&c.client_id, &c.secret)))
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    let r = auth_check(&app, &token).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app
        .send("GET", &kc_accounts(KC_ORG), Some(&token), None)
        .await;
    r.kc_error(401);
    // The account's other credential is unaffected.
    assert_eq!(auth_check(&app, &other_token).await.status, 204);
    assert_eq!(
        app.kc_token(&other.client_id, &other.secret)
            .await
            .split('.')
            .count(),
        3
    );

    // Deleting the account stops the rest.
    let r = app
        .delete(&format!("{}/{}", kc_accounts(KC_ORG), c.account))
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .token_request(GRANT, Some((&other.client_id, &other.secret)))
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    let r = auth_check(&app, &other_token).await;
    assert_eq!(r.status, 401, "{}", r.text);
}

// --- the token itself --------------------------------------------------------------------------

#[tokio::test]
async fn tokens_verify_independently_with_the_published_key() {
    let app = TestApp::new().await;
    let org = app.org_id_of(&app.admin_key).await;
    let c = client(&app).await;
    let before = now_s();
    let token = app.kc_token(&c.client_id, &c.secret).await;
    let after = now_s();
    let (header, claims) = verify_independently(&app, &token).await;
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));

    let meta = app
        .send("GET", "/.well-known/oauth-authorization-server", None, None)
        .await;
    assert_eq!(meta.status, 200, "{}", meta.text);
    let issuer = meta.body["issuer"].as_str().unwrap();
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], c.account.as_str());
    assert!(claims["aud"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(claims["org"], org.as_str());
    assert_eq!(claims["cid"], c.credential.as_str());
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert!(before <= iat && iat <= after, "iat {iat}");
    assert_eq!(exp - iat, 3600);
    let jti = claims["jti"].as_str().unwrap();
    assert!(is_kc_id(jti), "{jti}");
    assert!(claims.get("project").is_none(), "{claims}");

    // Each token has its own jti.
    let again = app.kc_token(&c.client_id, &c.secret).await;
    let (_, claims2) = verify_independently(&app, &again).await;
    assert_ne!(claims2["jti"], claims["jti"]);
}

#[tokio::test]
async fn metadata_and_jwks_documents() {
    let app = TestApp::new().await;
    let meta = app
        .send("GET", "/.well-known/oauth-authorization-server", None, None)
        .await;
    assert_eq!(meta.status, 200, "{}", meta.text);
    let issuer = meta.body["issuer"].as_str().unwrap();
    assert!(issuer.starts_with("http"), "{issuer}");
    assert!(!issuer.ends_with('/'), "{issuer}");
    assert_eq!(
        meta.body["token_endpoint"],
        format!("{issuer}/service-account-token")
    );
    assert_eq!(
        meta.body["jwks_uri"],
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(
        meta.body["grant_types_supported"],
        json!(["client_credentials"])
    );
    let methods = meta.body["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("client_secret_basic")));
    assert!(methods.contains(&json!("client_secret_post")));

    let jwks = app.send("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.status, 200, "{}", jwks.text);
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", jwks.text);
    let k = &keys[0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
    assert_eq!(k["use"], "sig");
    // Public only.
    assert!(k.get("d").is_none(), "{}", jwks.text);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(k["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(jwks.header("cache-control").is_some());
}

#[tokio::test]
async fn auth_check_accepts_tokens_and_refuses_tampered_ones() {
    let app = TestApp::new().await;
    let org = app.org_id_of(&app.admin_key).await;
    let c = client(&app).await;
    let token = app.kc_token(&c.client_id, &c.secret).await;

    let r = auth_check(&app, &token).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        r.header("x-keyplane-service-account"),
        Some(format!("svc_acct_{}", c.account).as_str())
    );
    assert!(r.header("x-keyplane-organization").unwrap().ends_with(&org));
    assert_eq!(
        r.header("x-keyplane-credential-id"),
        Some(c.credential.as_str())
    );
    assert!(r.header("x-keyplane-project").is_none());
    assert!(r.header("x-keyplane-key-id").is_none());
    // Any sub-path, any method.
    let r = app
        .send("POST", "/v1/auth/check/some/path", Some(&token), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    for (what, bad) in [
        ("header", tamper(&token, 0)),
        ("payload", tamper(&token, 1)),
        ("signature", tamper(&token, 2)),
    ] {
        let r = auth_check(&app, &bad).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.error();
        let r = app
            .send("GET", &kc_accounts(KC_ORG), Some(&bad), None)
            .await;
        r.kc_error(401);
    }

    // alg "none", and a token signed by a key that is not ours.
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"x"}"#);
    let none = format!("{none_header}.{}.", parts[1]);
    assert_eq!(auth_check(&app, &none).await.status, 401);
    let foreign = {
        use ed25519_dalek::{Signer, SigningKey};
        let header = decode_part(parts[0]);
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = key.sign(signed.as_bytes());
        assert!(header["kid"].is_string());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    };
    assert_eq!(auth_check(&app, &foreign).await.status, 401);
    // The genuine one still works.
    assert_eq!(auth_check(&app, &token).await.status, 204);
}

#[tokio::test]
async fn tokens_expire() {
    let start = now_s() * 1000;
    let clock = Clock::fixed(start);
    let app = TestApp::with_clock(clock.clone()).await;
    let c = client(&app).await;
    let token = app.kc_token(&c.client_id, &c.secret).await;
    let (_, claims) = verify_independently(&app, &token).await;
    assert_eq!(claims["iat"], start / 1000);
    assert_eq!(claims["exp"], start / 1000 + 3600);

    clock.advance(3599 * 1000);
    assert_eq!(auth_check(&app, &token).await.status, 204);
    assert_eq!(
        app.send("GET", &kc_accounts(KC_ORG), Some(&token), None)
            .await
            .status,
        200
    );
    clock.advance(1000);
    let r = auth_check(&app, &token).await;
    assert_eq!(r.status, 401, "{}", r.text);
    r.error();
    let r = app
        .send("GET", &kc_accounts(KC_ORG), Some(&token), None)
        .await;
    r.kc_error(401);
    let r = app.post("/v1/keys/verify", json!({ "key": token })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["valid"], false);

    // A fresh token works again.
    let fresh = app.kc_token(&c.client_id, &c.secret).await;
    assert_eq!(auth_check(&app, &fresh).await.status, 204);
}

#[tokio::test]
async fn keys_verify_describes_tokens() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let token = app.kc_token(&c.client_id, &c.secret).await;
    let (_, claims) = verify_independently(&app, &token).await;

    let r = app.post("/v1/keys/verify", json!({ "key": token })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["valid"], true, "{}", r.text);
    assert_eq!(r.body["token"]["credential_id"], c.credential.as_str());
    assert_eq!(r.body["token"]["jti"], claims["jti"]);
    assert_eq!(r.body["token"]["issued_at"], claims["iat"]);
    assert_eq!(r.body["token"]["expires_at"], claims["exp"]);
    assert_eq!(
        r.body["service_account"]["id"],
        format!("svc_acct_{}", c.account)
    );
    assert_eq!(r.body["service_account"]["name"], "robot");
    assert!(!r.text.contains(&token));

    // Another organization does not learn about it.
    let other = app.other_org("acme").await;
    let r = app
        .send(
            "POST",
            "/v1/keys/verify",
            Some(&other),
            Some(json!({ "key": token }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["valid"], false);

    // Tampered: invalid.
    let r = app
        .post("/v1/keys/verify", json!({ "key": tamper(&token, 2) }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["valid"], false);

    // A token cannot call keys/verify itself (admin keys only).
    let r = app
        .send(
            "POST",
            "/v1/keys/verify",
            Some(&token),
            Some(json!({ "key": token }).to_string()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}

#[tokio::test]
async fn tokens_of_project_accounts_carry_the_project() {
    let app = TestApp::new().await;
    let project = app.create_project("p").await;
    let (oa_id, _, _) = app.create_account(&project, "in project").await;
    let raw = oa_id.strip_prefix("svc_acct_").unwrap();
    let c = client_of(&app, raw).await;
    let token = app.kc_token(&c.client_id, &c.secret).await;
    let (_, claims) = verify_independently(&app, &token).await;
    assert_eq!(
        claims["project"].as_str().map(|p| format!("proj_{p}")),
        Some(project.clone())
    );
    let r = auth_check(&app, &token).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.header("x-keyplane-project"), Some(project.as_str()));
    assert_eq!(r.header("x-keyplane-service-account"), Some(oa_id.as_str()));
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let old = app.kc_token(&c.client_id, &c.secret).await;
    let (old_header, _) = verify_independently(&app, &old).await;
    let old_kid = old_header["kid"].as_str().unwrap().to_owned();

    let new_kid = app.service.rotate_signing_key().await.unwrap();
    assert_ne!(new_kid, old_kid);

    let jwks = app.send("GET", "/.well-known/jwks.json", None, None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{}", jwks.text);
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));

    // The old token still verifies, here and independently.
    assert_eq!(auth_check(&app, &old).await.status, 204);
    verify_independently(&app, &old).await;

    let new = app.kc_token(&c.client_id, &c.secret).await;
    let (new_header, _) = verify_independently(&app, &new).await;
    assert_eq!(new_header["kid"], new_kid.as_str());
    assert_eq!(auth_check(&app, &new).await.status, 204);
}

#[tokio::test]
async fn retired_keys_leave_the_jwks_once_their_tokens_expired() {
    let clock = Clock::fixed(now_s() * 1000);
    let app = TestApp::with_clock(clock.clone()).await;
    let c = client(&app).await;
    let old = app.kc_token(&c.client_id, &c.secret).await;
    let new_kid = app.service.rotate_signing_key().await.unwrap();
    clock.advance(3600 * 1000 + 61_000);
    assert_eq!(auth_check(&app, &old).await.status, 401);
    let jwks = app.send("GET", "/.well-known/jwks.json", None, None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str()], "{}", jwks.text);
    let fresh = app.kc_token(&c.client_id, &c.secret).await;
    assert_eq!(auth_check(&app, &fresh).await.status, 204);
}

// --- forged key IDs ------------------------------------------------------------------------------

/// `token` with its header replaced by one naming `kid` (the signature no longer matters: an
/// unknown `kid` is refused before any signature check).
fn with_kid(token: &str, kid: &str) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
    let rest = token.split_once('.').unwrap().1;
    format!("{header}.{rest}")
}

async fn signing_key_reads(app: &TestApp) -> f64 {
    let r = app.send("GET", "/metrics", None, None).await;
    common::prometheus::Exposition::parse(&r.text).value(
        "keyplane_store_operation_duration_seconds_count",
        &[("operation", "signing_keys")],
    )
}

#[tokio::test]
async fn forged_key_ids_read_the_store_at_most_once_a_second() {
    let app = TestApp::new().await;
    let c = client(&app).await;
    let real = app.kc_token(&c.client_id, &c.secret).await;
    assert_eq!(auth_check(&app, &real).await.status, 204);
    let before = signing_key_reads(&app).await;
    let started = std::time::Instant::now();
    // Four waves of 100 concurrent tokens naming keys nobody has.
    for wave in 0..4 {
        let tokens: Vec<String> = (0..100)
            .map(|i| with_kid(&real, &format!("forged{wave}x{i}")))
            .collect();
        let statuses =
            futures_util::future::join_all(tokens.iter().map(|t| auth_check(&app, t))).await;
        assert!(statuses.iter().all(|r| r.status == 401));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let reads = signing_key_reads(&app).await - before;
    assert!(reads >= 1.0, "an unknown kid is looked for");
    assert!(
        reads <= elapsed.ceil() + 1.0,
        "{reads} signing-key reads in {elapsed:.1} s for 400 forged tokens"
    );
    assert_eq!(auth_check(&app, &real).await.status, 204);

    // A key rotated by another node a moment ago is still found, at most a second late.
    let other = keyplane::service::Service::new(app.store.clone(), Clock::system());
    other.rotate_signing_key().await.unwrap();
    let rotated = other
        .issue_token(&c.client_id, &c.secret)
        .await
        .unwrap()
        .unwrap()
        .access_token;
    let asked = std::time::Instant::now();
    assert_eq!(auth_check(&app, &rotated).await.status, 204);
    assert!(asked.elapsed() < std::time::Duration::from_millis(1500));
}

// --- server-side failures ------------------------------------------------------------------------

#[tokio::test]
async fn a_broken_signing_key_is_a_500_and_an_unavailable_store_a_503_with_retry_after() {
    let clock = Clock::fixed(now_s() * 1000);
    let app = TestApp::with_clock(clock.clone()).await;
    let c = client(&app).await;
    app.kc_token(&c.client_id, &c.secret).await;

    // A signing key that cannot sign (damaged in the database): retrying will not help.
    let junk = if app.backing.pg.is_some() {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    app.backing
        .execute_raw(&format!("UPDATE signing_keys SET private_key = {junk}"))
        .await;
    clock.advance(61_000); // past the node's keyring refresh
    let r = app
        .token_request(
            "grant_type=client_credentials",
            Some((c.client_id.as_str(), c.secret.as_str())),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["error"], "server_error");
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_eq!(r.header("retry-after"), None);

    // The store going away is transient: 503, retry after a second.
    app.store.close().await;
    let r = app
        .token_request(
            "grant_type=client_credentials",
            Some((c.client_id.as_str(), c.secret.as_str())),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"], "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-should-retry"), None);
}

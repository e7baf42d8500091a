//! Every kind of subject token the exchange must refuse, one test each: all get the same
//! `invalid_grant`, and none changes what a good token gets afterwards.

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use super::token_exchange::{assert_invalid_grant, exchange, good_claims, uploaded, Setup};
use crate::common::oidc;
use crate::common::TestApp;

/// The claims of a good token, changed.
fn changed(change: impl Fn(&mut Value)) -> String {
    let mut c = good_claims();
    change(&mut c);
    oidc::sign(&c)
}

fn without(claim: &str) -> String {
    changed(|c| {
        c.as_object_mut().unwrap().remove(claim);
    })
}

/// Exchanges `token` (built once the provider and rule exist), expects `invalid_grant`, then
/// checks a good token still works.
async fn refused(what: &str, token: impl FnOnce(&TestApp, &Setup) -> String) {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let token = token(&app, &s);
    assert_invalid_grant(&exchange(&app, &s, &token).await, what);
    let good = exchange(&app, &s, &oidc::sign(&good_claims())).await;
    assert_eq!(good.status, 200, "{what}: then a good token: {}", good.text);
}

macro_rules! refusal {
    ($($name:ident: $token:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                refused(stringify!($name), $token).await;
            }
        )*
    };
}

refusal! {
    wrong_issuer: |_, _| changed(|c| c["iss"] = json!("https://evil.example"));
    issuer_with_a_trailing_slash: |_, _| changed(|c| c["iss"] = json!(format!("{}/", oidc::GITHUB_ISSUER)));
    wrong_audience: |_, _| changed(|c| c["aud"] = json!("someone-else"));
    expired: |_, _| changed(|c| c["exp"] = json!(oidc::now() - 120));
    issued_in_the_future: |_, _| changed(|c| c["iat"] = json!(oidc::now() + 600));
    not_yet_valid: |_, _| changed(|c| c["nbf"] = json!(oidc::now() + 600));
    missing_sub: |_, _| without("sub");
    missing_exp: |_, _| without("exp");
    missing_iat: |_, _| without("iat");
    bad_signature: |_, _| {
        use base64::Engine;
        let good = oidc::sign(&good_claims());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = good_claims();
        c["repository"] = json!("acme/api-evil");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
        parts.join(".")
    };
    alg_none: |_, _| {
        let good = oidc::sign(&good_claims());
        let payload = good.split('.').nth(1).unwrap();
        oidc::with_header(&format!("x.{payload}."), json!({"alg": "none", "kid": "rsa-1"}))
    };
    hs256_signed_with_the_public_key_as_secret: |_, _| {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let key = jsonwebtoken::EncodingKey::from_secret(&oidc::rsa_modulus());
        jsonwebtoken::encode(&header, &good_claims(), &key).unwrap()
    };
    hs256_at_all: |_, _| oidc::sign_with(&good_claims(), Algorithm::HS256, Some("rsa-1"));
    unknown_kid: |_, _| oidc::sign_with(&good_claims(), Algorithm::RS256, Some("rsa-9"));
    no_kid: |_, _| oidc::sign_with(&good_claims(), Algorithm::RS256, None);
    rule_attribute_mismatch: |_, _| changed(|c| c["repository"] = json!("acme/web"));
    rule_claim_of_another_type: |_, _| changed(|c| c["ref_protected"] = json!(true));
    not_a_jwt: |_, _| "definitely-not-a-jwt".to_owned();
}

#[tokio::test]
async fn an_unknown_provider_or_an_account_no_rule_names() {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let good = oidc::sign(&good_claims());
    let unknown = Setup {
        provider: "idp_aaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
        project: s.project.clone(),
        account: s.account.clone(),
        rule: s.rule.clone(),
    };
    assert_invalid_grant(&exchange(&app, &unknown, &good).await, "unknown provider");
    let (stranger, _, _) = app.create_account(&s.project, "stranger").await;
    let other = Setup {
        account: stranger,
        ..unknown
    };
    let other = Setup {
        provider: s.provider.clone(),
        ..other
    };
    assert_invalid_grant(
        &exchange(&app, &other, &good).await,
        "account without a rule",
    );
    assert_eq!(exchange(&app, &s, &good).await.status, 200);
}

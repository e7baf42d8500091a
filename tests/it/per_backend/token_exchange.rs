//! Workload identity federation's token exchange (`POST /oauth/token`), in process, both
//! stores: an external OIDC token in, an access token `/v1/auth/check` accepts out; every
//! refusal the issue names; revocation; a key set fetched by discovery with a bounded refetch.

use serde_json::{json, Value};

use crate::common::oidc::{self, AUDIENCE, GITHUB_ISSUER};
use crate::common::{Resp, TestApp};

const PROVIDERS: &str = "/v1/organization/workload_identity_providers";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// An organization's provider for GitHub Actions (uploaded key set), a project account and a
/// rule mapping `acme/api` on `main` to it.
pub struct Setup {
    pub provider: String,
    pub project: String,
    pub account: String,
    pub rule: String,
}

pub async fn setup(app: &TestApp, verification: Value, issuer: &str) -> Setup {
    let r = app
        .post(
            PROVIDERS,
            json!({"name": "GitHub Actions", "type": "oidc", "issuer": issuer,
                   "audience": AUDIENCE, "verification": verification,
                   "attribute_transformations": [
                       {"attribute": "repo_ref", "expression": "lower(assertion.repository) + \"@\" + assertion.ref"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let provider = r.id();
    let project = app.create_project("deploys").await;
    let (account, _, _) = app.create_account(&project, "ci").await;
    let r = app
        .post(
            &format!("{PROVIDERS}/{provider}/federation_rules"),
            json!({"project_id": project, "service_account_id": account,
                   "attribute_matchers": {"repo_ref": "acme/api@refs/heads/main", "ref_protected": "true"},
                   "permissions": {"type": "restricted", "scopes": ["api.model.read", "api.responses.write"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    Setup {
        provider,
        project,
        account,
        rule: r.id(),
    }
}

pub async fn uploaded(app: &TestApp) -> Setup {
    setup(
        app,
        json!({"type": "uploaded_jwks", "jwks": oidc::jwks()}),
        GITHUB_ISSUER,
    )
    .await
}

pub async fn exchange(app: &TestApp, s: &Setup, token: &str) -> Resp {
    let body = json!({"grant_type": GRANT, "subject_token": token, "subject_token_type": JWT,
                      "identity_provider_id": s.provider, "service_account_id": s.account});
    post_typed(app, "application/json", body.to_string()).await
}

/// `POST /oauth/token` with this content type (no credentials: the subject token is one).
pub async fn post_typed(app: &TestApp, content_type: &str, body: String) -> Resp {
    app.request(
        "POST",
        "/oauth/token",
        None,
        &[],
        Some((content_type, body.into())),
    )
    .await
}

pub fn good_claims() -> Value {
    oidc::github_claims(GITHUB_ISSUER, "Acme/API", "refs/heads/main")
}

/// The one refusal every bad subject token gets, whatever the reason.
pub fn assert_invalid_grant(r: &Resp, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    assert_eq!(
        r.body,
        json!({"error": "invalid_grant", "error_description": "The subject token was not accepted."}),
        "{what}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

async fn check(app: &TestApp, token: &str) -> Resp {
    app.send("GET", "/v1/auth/check", Some(token), None).await
}

#[tokio::test]
async fn a_matching_token_is_exchanged_for_one_the_check_accepts() {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let r = exchange(&app, &s, &oidc::sign(&good_claims())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(
        r.body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    // The subject token expires in 300 s: the access token no later.
    assert!((290..=300).contains(&expires_in), "{expires_in}");
    let access = r.body["access_token"].as_str().unwrap().to_owned();

    let c = check(&app, &access).await;
    assert_eq!(c.status, 204, "{}", c.text);
    assert_eq!(
        c.header("x-keyplane-service-account"),
        Some(s.account.as_str())
    );
    assert_eq!(c.header("x-keyplane-project"), Some(s.project.as_str()));
    assert_eq!(
        c.header("x-keyplane-federation-rule"),
        Some(s.rule.as_str())
    );
    assert_eq!(c.header("x-keyplane-credential-id"), None);
    assert_eq!(
        c.header("x-keyplane-scopes"),
        Some("api.model.read,api.responses.write")
    );
    // The same through /v1/keys/verify, which names the rule.
    let v = app.post("/v1/keys/verify", json!({"key": access})).await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["valid"], true, "{}", v.text);
    assert_eq!(v.body["token"]["federation_rule_id"], s.rule.as_str());
    assert!(v.body["token"].get("credential_id").is_none(), "{}", v.text);

    // RFC 8693's form encoding works alike, with an ES256 token (the `ec-1` key).
    let token = oidc::sign_with(&good_claims(), jsonwebtoken::Algorithm::ES256, Some("ec-1"));
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT)
        .append_pair("subject_token", &token)
        .append_pair(
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        )
        .append_pair("identity_provider_id", &s.provider)
        .append_pair("service_account_id", &s.account)
        .finish();
    let r = post_typed(&app, "application/x-www-form-urlencoded", form).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let token = oidc::sign(&good_claims());
    let base = json!({"grant_type": GRANT, "subject_token": token, "subject_token_type": JWT,
                      "identity_provider_id": s.provider, "service_account_id": s.account});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b.to_string()
    };
    for (what, body, code) in [
        ("no grant_type", without("grant_type"), "invalid_request"),
        (
            "another grant",
            with("grant_type", json!("client_credentials")),
            "unsupported_grant_type",
        ),
        (
            "no subject_token",
            without("subject_token"),
            "invalid_request",
        ),
        (
            "empty subject_token",
            with("subject_token", json!("")),
            "invalid_request",
        ),
        (
            "no token type",
            without("subject_token_type"),
            "invalid_request",
        ),
        (
            "a SAML token type",
            with(
                "subject_token_type",
                json!("urn:ietf:params:oauth:token-type:saml2"),
            ),
            "invalid_request",
        ),
        (
            "no provider",
            without("identity_provider_id"),
            "invalid_request",
        ),
        (
            "malformed provider",
            with("identity_provider_id", json!("github")),
            "invalid_request",
        ),
        (
            "malformed account",
            with("service_account_id", json!(7)),
            "invalid_request",
        ),
        ("not an object", "[]".into(), "invalid_request"),
    ] {
        let r = post_typed(&app, "application/json", body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.body["error"], code, "{what}: {}", r.text);
    }
    let r = post_typed(&app, "text/plain", base.to_string()).await;
    assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
    let repeated = format!("grant_type={GRANT}&grant_type={GRANT}&subject_token={token}");
    let r = post_typed(&app, "application/x-www-form-urlencoded", repeated).await;
    assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
}

#[tokio::test]
async fn tokens_stop_when_what_vouched_for_them_goes_and_the_subject_token_with_them() {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let subject = oidc::sign(&good_claims());
    let mint = async || {
        let r = exchange(&app, &s, &subject).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    };
    let rule = format!("{PROVIDERS}/{}/federation_rules/{}", s.provider, s.rule);
    let provider = format!("{PROVIDERS}/{}", s.provider);

    // A disabled rule stops its tokens at once, and the same subject token gets no new one.
    let access = mint().await;
    assert_eq!(check(&app, &access).await.status, 204);
    assert_eq!(app.post(&rule, json!({"enabled": false})).await.status, 200);
    assert_eq!(check(&app, &access).await.status, 401);
    assert_invalid_grant(&exchange(&app, &s, &subject).await, "rule disabled");
    assert_eq!(app.post(&rule, json!({"enabled": true})).await.status, 200);

    // A disabled provider too.
    let access = mint().await;
    assert_eq!(
        app.post(&provider, json!({"enabled": false})).await.status,
        200
    );
    assert_eq!(check(&app, &access).await.status, 401);
    assert_invalid_grant(&exchange(&app, &s, &subject).await, "provider disabled");
    assert_eq!(
        app.post(&provider, json!({"enabled": true})).await.status,
        200
    );

    // An archived project.
    let access = mint().await;
    let r = app
        .post(
            &format!("/v1/organization/projects/{}/archive", s.project),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(check(&app, &access).await.status, 401);
    assert_invalid_grant(&exchange(&app, &s, &subject).await, "project archived");
}

#[tokio::test]
async fn a_disabled_or_deleted_rule_or_account_stops_its_tokens_on_every_node() {
    let app = TestApp::new().await;
    let s = uploaded(&app).await;
    let subject = oidc::sign(&good_claims());
    // Node C mints; node A (this app) deletes; node C refuses at the next check.
    let node_c = keyplane::service::Service::new(
        app.backing.another_node().await,
        keyplane::domain::time::Clock::system(),
    );
    let router_c = keyplane::http::router(keyplane::http::AppState::new(node_c));
    let on_c = async |method: &str, path: &str, bearer: Option<&str>, body: Option<Value>| {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map_or_else(axum::body::Body::empty, |b| b.to_string().into());
        let res = tower::ServiceExt::oneshot(router_c.clone(), req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
        )
    };
    let body = json!({"grant_type": GRANT, "subject_token": subject, "subject_token_type": JWT,
                      "identity_provider_id": s.provider, "service_account_id": s.account});
    let (status, minted) = on_c("POST", "/oauth/token", None, Some(body.clone())).await;
    assert_eq!(status, 200, "{minted}");
    let access = minted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        on_c("GET", "/v1/auth/check", Some(&access), None).await.0,
        204
    );
    let rule = format!("{PROVIDERS}/{}/federation_rules/{}", s.provider, s.rule);
    let check_on_c = async || on_c("GET", "/v1/auth/check", Some(&access), None).await.0;
    // Disabled on A: C refuses at once (tokens are checked against the store on every use).
    let started = std::time::Instant::now();
    assert_eq!(app.post(&rule, json!({"enabled": false})).await.status, 200);
    assert_eq!(check_on_c().await, 401);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(app.post(&rule, json!({"enabled": true})).await.status, 200);
    assert_eq!(check_on_c().await, 204);
    // Deleted on A: the same.
    let started = std::time::Instant::now();
    let r = app.delete(&rule).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(check_on_c().await, 401);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(on_c("POST", "/oauth/token", None, Some(body)).await.0, 400);

    // A deleted account: a new rule for it first, then the account goes.
    let r = app
        .post(
            &format!("{PROVIDERS}/{}/federation_rules", s.provider),
            json!({"project_id": s.project, "service_account_id": s.account,
                   "attribute_matchers": {"sub": "repo:Acme/API:ref:refs/heads/main"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let minted = exchange(&app, &s, &subject).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let access = minted.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .delete(&format!(
            "/v1/organization/projects/{}/service_accounts/{}",
            s.project, s.account
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        on_c("GET", "/v1/auth/check", Some(&access), None).await.0,
        401
    );
    assert_invalid_grant(&exchange(&app, &s, &subject).await, "account deleted");
}

#[tokio::test]
async fn kubernetes_tokens_match_on_nested_claims() {
    let app = TestApp::new().await;
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let s = setup(
        &app,
        json!({"type": "uploaded_jwks", "jwks": oidc::jwks()}),
        issuer,
    )
    .await;
    let r = app
        .post(
            &format!("{PROVIDERS}/{}/federation_rules", s.provider),
            json!({"project_id": s.project, "service_account_id": s.account,
                   "attribute_matchers": {"kubernetes.io.namespace": "prod",
                                          "kubernetes.io.serviceaccount.name": "deployer"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = oidc::sign(&oidc::kubernetes_claims(issuer, "prod", "deployer"));
    let r = exchange(&app, &s, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = oidc::sign(&oidc::kubernetes_claims(issuer, "dev", "deployer"));
    assert_invalid_grant(&exchange(&app, &s, &token).await, "another namespace");
}

#[tokio::test]
async fn discovered_keys_are_fetched_once_and_forged_kids_refetch_at_most_once() {
    let issuer = oidc::serve().await;
    // A clock of the tests' own (starting now, so real tokens are current) to step past the
    // refetch interval without waiting.
    let clock = keyplane::domain::time::Clock::fixed(oidc::now() * 1000);
    let app = TestApp::with_clock(clock.clone()).await;
    let service = app
        .service
        .clone()
        .with_federation(keyplane::service::federation::FederationSettings { allow_http: true });
    let app = TestApp {
        router: keyplane::http::router(keyplane::http::AppState::new(service.clone())),
        service,
        ..app
    };
    let s = setup(&app, json!({"type": "discovery"}), &issuer.issuer).await;
    let claims = oidc::github_claims(&issuer.issuer, "acme/api", "refs/heads/main");
    for _ in 0..3 {
        let r = exchange(&app, &s, &oidc::sign(&claims)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(issuer.fetches(), 1, "the key set is cached");
    let flood = async || {
        for i in 0..20 {
            let forged = oidc::sign_with(
                &claims,
                jsonwebtoken::Algorithm::RS256,
                Some(&format!("forged-{i}")),
            );
            assert_invalid_grant(&exchange(&app, &s, &forged).await, "forged kid");
        }
    };
    // Just fetched: unknown kids are unknown, nothing is fetched for them.
    flood().await;
    assert_eq!(issuer.fetches(), 1, "no refetch within the interval");
    // A minute on: twenty unknown kids cause one refetch between them.
    clock.advance(61_000);
    flood().await;
    assert_eq!(issuer.fetches(), 2, "one refetch for twenty unknown kids");
    assert_eq!(exchange(&app, &s, &oidc::sign(&claims)).await.status, 200);
    assert_eq!(issuer.fetches(), 2);
}

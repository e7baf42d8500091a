//! `/v1/auth/check` and `/v1/keys/verify`: verdicts, identity headers, the cache and its
//! invalidation on this node, and `last_used_at` batching.

use crate::common::{self, TestApp};
use axum::body::Body;
use axum::http::Request;
use keyplane::domain::keys::{KeyHash, KeyKind, PlainKey};
use keyplane::domain::time::Clock;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

async fn check(app: &TestApp, method: &str, path: &str, key: Option<&str>) -> common::Resp {
    app.send(method, path, key, None).await
}

async fn valid_checks(app: &TestApp) -> f64 {
    let m = app.send("GET", "/metrics", None, None).await;
    common::prometheus::Exposition::parse(&m.text)
        .value("keyplane_key_verifications_total", &[("outcome", "valid")])
}

async fn verify(app: &TestApp, key: &str) -> serde_json::Value {
    let r = app.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn a_valid_key_passes_with_its_identity_on_any_method_and_sub_path() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (svc, value, key_id) = app.create_account(&p, "svc").await;
    app.post(
        &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
        json!({"scopes": ["a.read", "b.write"]}),
    )
    .await;
    for (method, path) in [
        ("GET", "/v1/auth/check"),
        ("POST", "/v1/auth/check"),
        ("HEAD", "/v1/auth/check"),
        ("DELETE", "/v1/auth/check/upstream/path?x=1"),
    ] {
        let r = check(&app, method, path, Some(&value)).await;
        assert_eq!(r.status, 204, "{method} {path}: {}", r.text);
        assert_eq!(r.header("x-keyplane-project"), Some(p.as_str()));
        assert_eq!(r.header("x-keyplane-service-account"), Some(svc.as_str()));
        assert_eq!(r.header("x-keyplane-key-id"), Some(key_id.as_str()));
        assert_eq!(r.header("x-keyplane-scopes"), Some("a.read,b.write"));
        assert!(r
            .header("x-keyplane-organization")
            .unwrap()
            .starts_with("org-"));
        assert!(r.text.is_empty());
    }
    let v = verify(&app, &value).await;
    assert_eq!(v["valid"], true);
    assert_eq!(v["key"]["id"], key_id);
    assert_eq!(v["key"]["scopes"], json!(["a.read", "b.write"]));
    assert_eq!(v["service_account"]["id"], svc);
    assert_eq!(v["service_account"]["name"], "svc");
    assert_eq!(v["project"]["id"], p);
    assert_eq!(v["project"]["status"], "active");
    assert!(!v.to_string().contains(&value), "the key is never echoed");
}

#[tokio::test]
async fn bad_keys_get_401_and_the_right_reason() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (_, value, _) = app.create_account(&p, "svc").await;
    let unknown = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    // Another last character (never the same one, or the "typo" would be the key).
    let last = if value.ends_with('x') { 'y' } else { 'x' };
    let typo = format!("{}{last}", &value[..value.len() - 1]);
    let missing = check(&app, "GET", "/v1/auth/check", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    for (key, reason) in [
        (unknown.expose().to_owned(), "unknown"),
        (typo.clone(), "malformed"),
        ("sk-svcacct-short".to_owned(), "malformed"),
        ("hello".to_owned(), "malformed"),
        (app.admin_key.clone(), "unknown"),
    ] {
        let r = check(&app, "GET", "/v1/auth/check", Some(&key)).await;
        assert_eq!(r.status, 401, "{reason}");
        assert_eq!(r.error()["code"], "invalid_api_key");
        assert_eq!(r.header("x-should-retry"), Some("false"));
        assert!(!r.text.contains(&key));
        assert!(r.header("x-keyplane-key-id").is_none());
        assert_eq!(
            verify(&app, &key).await,
            json!({"valid": false, "reason": reason})
        );
    }
    // /v1/keys/verify itself needs an admin key.
    let r = app
        .send(
            "POST",
            "/v1/keys/verify",
            Some(&value),
            Some(json!({"key": value}).to_string()),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app.post("/v1/keys/verify", json!({"key": 5})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "key");
}

#[tokio::test]
async fn a_key_stops_verifying_the_moment_it_is_revoked_deleted_or_archived() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (svc, first, first_id) = app.create_account(&p, "svc").await;
    let second = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({}),
        )
        .await
        .body["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = |k: &str| {
        let k = k.to_owned();
        let app = &app;
        async move { check(app, "GET", "/v1/auth/check", Some(&k)).await.status }
    };
    assert_eq!(ok(&first).await, 204);
    assert_eq!(ok(&second).await, 204);
    // Deleting one key: the very next request refuses it; the other key is unaffected.
    app.delete(&format!(
        "/v1/organization/projects/{p}/api_keys/{first_id}"
    ))
    .await;
    assert_eq!(ok(&first).await, 401);
    assert_eq!(verify(&app, &first).await["reason"], "revoked");
    assert_eq!(ok(&second).await, 204);
    // Deleting the account.
    app.delete(&format!(
        "/v1/organization/projects/{p}/service_accounts/{svc}"
    ))
    .await;
    assert_eq!(ok(&second).await, 401);
    assert_eq!(verify(&app, &second).await["reason"], "revoked");
    // Archiving the project.
    let (_, third, _) = app.create_account(&p, "svc2").await;
    assert_eq!(ok(&third).await, 204);
    app.post(&format!("/v1/organization/projects/{p}/archive"), json!({}))
        .await;
    let r = check(&app, "GET", "/v1/auth/check", Some(&third)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "project_archived");
    assert_eq!(verify(&app, &third).await["reason"], "project_archived");
}

#[tokio::test]
async fn expiry_and_grace_periods_end_at_their_second() {
    let app = TestApp::with_clock(Clock::fixed(T0)).await;
    let clock = app.service.clock().clone();
    let p = app.create_project("p").await;
    let (svc, _, _) = app.create_account(&p, "svc").await;
    let k = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({"expires_in_seconds": 10}),
        )
        .await;
    let (value, id) = (k.body["value"].as_str().unwrap().to_owned(), k.id());
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&value))
            .await
            .status,
        204
    );
    clock.advance(9_999);
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&value))
            .await
            .status,
        204
    );
    clock.advance(1);
    let r = check(&app, "GET", "/v1/auth/check", Some(&value)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "expired_api_key");
    assert_eq!(verify(&app, &value).await["reason"], "expired");
    // Expired by an update (shortening), on a cached key.
    let k2 = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({}),
        )
        .await;
    let (v2, id2) = (k2.body["value"].as_str().unwrap().to_owned(), k2.id());
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&v2)).await.status,
        204
    );
    app.post(
        &format!("/v1/organization/projects/{p}/api_keys/{id2}"),
        json!({"expires_in_seconds": 1}),
    )
    .await;
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&v2)).await.status,
        204
    );
    clock.advance(1_000);
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&v2)).await.status,
        401
    );
    // Grace: deleted but valid for 5 more seconds.
    let k3 = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({}),
        )
        .await;
    let (v3, id3) = (k3.body["value"].as_str().unwrap().to_owned(), k3.id());
    app.delete(&format!(
        "/v1/organization/projects/{p}/api_keys/{id3}?grace_period_seconds=5"
    ))
    .await;
    clock.advance(4_999);
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&v3)).await.status,
        204
    );
    clock.advance(1);
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&v3)).await.status,
        401
    );
    let _ = id;
}

#[tokio::test]
async fn verified_and_unknown_keys_are_served_from_memory() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (_, value, key_id) = app.create_account(&p, "svc").await;
    // Verify until the verdict is cached (on PostgreSQL this node's own change notices arrive
    // asynchronously and may void the first read's caching).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.service.cache().len().0 < 2 {
        assert_eq!(
            check(&app, "GET", "/v1/auth/check", Some(&value))
                .await
                .status,
            204
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the verdict was never cached"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Revoke behind the service's back (no invalidation): the cached verdict stands, which
    // proves the answer came from memory...
    let org = app
        .service
        .authenticate_admin(Some(&app.admin_key))
        .await
        .unwrap()
        .organization_id;
    let kid = keyplane::domain::ids::Kind::ApiKey
        .parse_openai(&key_id)
        .unwrap();
    app.store.revoke_api_key(&org, &kid, 0, &[]).await.unwrap();
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&value))
            .await
            .status,
        204
    );
    // ...and an invalidation through the service drops it at once.
    app.delete(&format!(
        "/v1/organization/projects/{p}/service_accounts/{}",
        {
            let r = app
                .get(&format!("/v1/organization/projects/{p}/api_keys/{key_id}"))
                .await;
            assert_eq!(r.status, 404, "the key is deleted in the store");
            app.get(&format!("/v1/organization/projects/{p}/service_accounts"))
                .await
                .body["data"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    ))
    .await;
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&value))
            .await
            .status,
        401
    );

    // Unknown well-formed keys are remembered; malformed ones never get that far.
    let (_, negatives_before) = app.service.cache().len();
    let unknown = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    for _ in 0..3 {
        assert_eq!(
            check(&app, "GET", "/v1/auth/check", Some(unknown.expose()))
                .await
                .status,
            401
        );
    }
    assert_eq!(app.service.cache().len().1, negatives_before + 1);
    check(&app, "GET", "/v1/auth/check", Some("sk-svcacct-garbage")).await;
    assert_eq!(app.service.cache().len().1, negatives_before + 1);
    // Well shaped but with a wrong checksum: the checksum runs after the cache lookup (a hit
    // is an issued key), yet such a key is neither read from the store nor remembered.
    let u = unknown.expose();
    let last = if u.ends_with('x') { 'y' } else { 'x' };
    let bad_sum = format!("{}{last}", &u[..u.len() - 1]);
    for _ in 0..2 {
        let r = app
            .post("/v1/keys/verify", serde_json::json!({ "key": bad_sum }))
            .await;
        assert_eq!(r.body["reason"], "malformed", "{}", r.text);
    }
    assert_eq!(app.service.cache().len().1, negatives_before + 1);
    // A key created after its hash was cached as unknown works at once (creation invalidates).
    let (_, fresh, _) = app.create_account(&p, "fresh").await;
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&fresh))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn last_used_at_is_written_in_batches_at_most_once_a_minute() {
    let app = TestApp::with_clock(Clock::fixed(T0)).await;
    let clock = app.service.clock().clone();
    let p = app.create_project("p").await;
    let (_, value, key_id) = app.create_account(&p, "svc").await;
    let url = format!("/v1/organization/projects/{p}/api_keys/{key_id}");
    assert!(app.get(&url).await.body["last_used_at"].is_null());
    for _ in 0..5 {
        check(&app, "GET", "/v1/auth/check", Some(&value)).await;
    }
    // Nothing written on the request path...
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(&value))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, None);
    // ...one write for the batch (the admin key's own use is in it too)...
    assert!(app.service.flush_usage().await.unwrap() >= 1);
    assert_eq!(app.get(&url).await.body["last_used_at"], T0 / 1000);
    // ...and none again within the minute.
    clock.advance(30_000);
    check(&app, "GET", "/v1/auth/check", Some(&value)).await;
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(&value))
        .await
        .unwrap()
        .unwrap();
    app.service.flush_usage().await.unwrap();
    let again = app
        .store
        .api_key_by_hash(&KeyHash::of(&value))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_used_at, stored.last_used_at);
    clock.advance(31_000);
    check(&app, "GET", "/v1/auth/check", Some(&value)).await;
    app.service.flush_usage().await.unwrap();
    let later = app
        .store
        .api_key_by_hash(&KeyHash::of(&value))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.last_used_at, Some(T0 + 61_000));
}

#[tokio::test]
async fn keys_of_other_organizations_are_unknown_to_verify() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (_, value, key_id) = app.create_account(&p, "svc").await;
    // The gateway check is not organization-scoped: the key is valid for its own gateway.
    assert_eq!(
        check(&app, "GET", "/v1/auth/check", Some(&value))
            .await
            .status,
        204
    );
    let b = app.other_org("b").await;
    let r = app
        .raw(
            Request::post("/v1/keys/verify")
                .header("authorization", format!("Bearer {b}"))
                .body(Body::from(json!({"key": value}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.body, json!({"valid": false, "reason": "unknown"}));
    // Nor is it counted as a valid verification, or its state told once it is revoked.
    let before = valid_checks(&app).await;
    let as_b = |key: &str| {
        Request::post("/v1/keys/verify")
            .header("authorization", format!("Bearer {b}"))
            .body(Body::from(json!({"key": key}).to_string()))
            .unwrap()
    };
    app.raw(as_b(&value)).await;
    assert_eq!(valid_checks(&app).await, before);
    assert_eq!(
        app.delete(&format!("/v1/organization/projects/{p}/api_keys/{key_id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        verify(&app, &value).await["reason"],
        "revoked",
        "its own organization sees why"
    );
    let r = app.raw(as_b(&value)).await;
    assert_eq!(
        r.body,
        json!({"valid": false, "reason": "unknown"}),
        "a stranger does not"
    );
}

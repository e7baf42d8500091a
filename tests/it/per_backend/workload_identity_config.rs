//! The workload identity federation configuration API of the OpenAI dialect, in process:
//! providers and federation rules, their shapes as the official SDKs type them, validation,
//! paging, limits, audit events (both stores, like every `per_backend` test).

use serde_json::{json, Value};

use crate::common::TestApp;

const PROVIDERS: &str = "/v1/organization/workload_identity_providers";

fn github(name: &str) -> Value {
    json!({
        "name": name,
        "type": "oidc",
        "issuer": "https://token.actions.githubusercontent.com",
        "audience": "keyplane",
    })
}

async fn provider(app: &TestApp, body: Value) -> String {
    let r = app.post(PROVIDERS, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.id()
}

/// A 400 in the OpenAI envelope; returns (param, code, message).
fn bad(r: &crate::common::Resp) -> (String, String, String) {
    assert_eq!(r.status, 400, "{}", r.text);
    let e = r.error();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (s(&e["param"]), s(&e["code"]), s(&e["message"]))
}

async fn audit_of(app: &TestApp, event: &str) -> Vec<Value> {
    let r = app
        .get(&format!(
            "/v1/organization/audit_logs?event_types[]={event}&limit=100"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn providers_have_the_sdk_shape_and_update_only_what_is_sent() {
    let app = TestApp::new().await;
    let r = app.post(PROVIDERS, github("GitHub Actions")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = r.body.clone();
    let id = r.id();
    assert!(id.starts_with("idp_"), "{id}");
    assert_eq!(p["object"], "organization.workload_identity_provider");
    assert_eq!(p["type"], "oidc");
    assert_eq!(p["description"], Value::Null);
    assert_eq!(p["enabled"], true);
    assert_eq!(p["attribute_transformations"], json!([]));
    assert_eq!(
        p["verification"],
        json!({"type": "discovery", "discovery_url": null})
    );
    assert!(p["created_at"].is_i64() && p["updated_at"].is_i64(), "{p}");
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 12, "{keys:?}");

    let one = format!("{PROVIDERS}/{id}");
    assert_eq!(app.get(&one).await.body, p);
    // Only what is sent changes; `null` clears the description; `{}` changes nothing.
    let r = app
        .post(&one, json!({"description": "CI of acme", "enabled": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], "CI of acme");
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["issuer"], p["issuer"]);
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}]});
    let r = app
        .post(
            &one,
            json!({"description": null, "verification": {"type": "uploaded_jwks", "jwks": jwks},
                   "attribute_transformations": [{"attribute": "repo", "expression": "lower(assertion.repository)"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(
        r.body["verification"],
        json!({"type": "uploaded_jwks", "jwks": jwks})
    );
    assert_eq!(
        r.body["attribute_transformations"],
        json!([{"attribute": "repo", "expression": "lower(assertion.repository)"}])
    );
    let unchanged = app.post(&one, json!({})).await;
    assert_eq!(unchanged.body, r.body);

    let created = audit_of(&app, "workload_identity_provider.created").await;
    assert_eq!(created.len(), 1);
    let details = &created[0]["workload_identity_provider.created"];
    assert_eq!(details["id"], id.as_str());
    assert_eq!(details["data"]["issuer"], p["issuer"]);
    let updated = audit_of(&app, "workload_identity_provider.updated").await;
    assert_eq!(updated.len(), 2, "the empty update records nothing");
    let changes = &updated[0]["workload_identity_provider.updated"]["changes_requested"];
    // The key set is summarised by its key ids, never copied whole.
    assert_eq!(
        changes["verification"],
        json!({"type": "uploaded_jwks", "key_ids": ["k1"]})
    );
}

#[tokio::test]
async fn bad_providers_are_400_and_create_nothing() {
    let app = TestApp::new().await;
    let with = |changes: Value| {
        let mut body = github("p");
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (with(json!({"type": "saml"})), "type"),
        (with(json!({"issuer": "http://issuer.example"})), "issuer"),
        (with(json!({"issuer": "issuer.example"})), "issuer"),
        (with(json!({"audience": ""})), "audience"),
        (with(json!({"name": " "})), "name"),
        (
            with(
                json!({"attribute_transformations": [{"attribute": "repo", "expression": "size(assertion.sub)"}]}),
            ),
            "attribute_transformations",
        ),
        (
            with(json!({"attribute_transformations": [
                {"attribute": "a", "expression": "assertion.sub"},
                {"attribute": "a", "expression": "assertion.aud"}]})),
            "attribute_transformations",
        ),
        (
            with(
                json!({"verification": {"type": "uploaded_jwks", "jwks": {"keys": [
                {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}}}),
            ),
            "verification.jwks",
        ),
        (
            with(
                json!({"verification": {"type": "uploaded_jwks", "jwks": {"keys": [
                {"kty": "OKP", "crv": "Ed25519", "kid": "k", "d": "AAAA",
                 "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}]}}}),
            ),
            "verification.jwks",
        ),
        (
            with(json!({"verification": {"type": "discovery", "discovery_url": "ftp://x"}})),
            "verification.discovery_url",
        ),
    ];
    for (body, param) in cases {
        let r = app.post(PROVIDERS, body.clone()).await;
        let (got, _, message) = bad(&r);
        assert_eq!(got, param, "{body}: {message}");
    }
    // Shapes serde refuses: an unknown verification type, a missing field.
    for body in [
        with(json!({"verification": {"type": "magic"}})),
        json!({"name": "p", "type": "oidc", "issuer": "https://i.example"}),
        with(json!({"enabled": "yes"})),
    ] {
        let r = app.post(PROVIDERS, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let r = app
        .post(PROVIDERS, with(json!({"issuer": "http://issuer.example"})))
        .await;
    assert!(
        bad(&r).2.contains("KEYPLANE_FEDERATION_ALLOW_HTTP"),
        "{}",
        r.text
    );
    let list = app.get(PROVIDERS).await;
    assert_eq!(list.body["data"], json!([]), "{}", list.text);
    assert!(audit_of(&app, "workload_identity_provider.created")
        .await
        .is_empty());
}

#[tokio::test]
async fn plain_http_issuers_need_the_operator_setting() {
    let app = TestApp::new().await;
    let mut body = github("loopback");
    body["issuer"] = json!("http://127.0.0.1:9999");
    // The router's service is the one built without the setting: refused there.
    assert_eq!(app.post(PROVIDERS, body.clone()).await.status, 400);
    let service = app
        .service
        .clone()
        .with_federation(keyplane::service::federation::FederationSettings { allow_http: true });
    let router = keyplane::http::router(keyplane::http::AppState::new(service));
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(PROVIDERS)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn providers_page_both_orders_and_are_limited_to_fifty() {
    let app = TestApp::new().await;
    let mut ids = vec![];
    for i in 0..50 {
        ids.push(provider(&app, github(&format!("p{i}"))).await);
    }
    let r = app.post(PROVIDERS, github("one too many")).await;
    let (_, code, message) = bad(&r);
    assert!(message.contains("50"), "{code}: {message}");
    let first = app.get(&format!("{PROVIDERS}?limit=20")).await;
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["first_id"], ids[0].as_str());
    assert_eq!(first.body["last_id"], ids[19].as_str());
    let next = app
        .get(&format!("{PROVIDERS}?limit=100&after={}", ids[19]))
        .await;
    assert_eq!(next.body["data"].as_array().unwrap().len(), 30);
    assert_eq!(next.body["has_more"], false);
    let newest = app.get(&format!("{PROVIDERS}?order=desc&limit=2")).await;
    assert_eq!(newest.body["first_id"], ids[49].as_str());
    assert_eq!(newest.body["last_id"], ids[48].as_str());
    let (param, ..) = bad(&app.get(&format!("{PROVIDERS}?order=up")).await);
    assert_eq!(param, "order");
    let r = app.get(&format!("{PROVIDERS}?after=idp_nope")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Deleting one frees a slot.
    let r = app.delete(&format!("{PROVIDERS}/{}", ids[0])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"object": "organization.workload_identity_provider.deleted", "id": ids[0], "deleted": true})
    );
    provider(&app, github("fits again")).await;
    assert_eq!(
        app.get(&format!("{PROVIDERS}/{}", ids[0])).await.status,
        404
    );
}

#[tokio::test]
async fn rules_bind_a_provider_to_a_project_account() {
    let app = TestApp::new().await;
    let idp = provider(&app, github("gh")).await;
    let project = app.create_project("deploys").await;
    let (account, _, _) = app.create_account(&project, "ci").await;
    let rules = format!("{PROVIDERS}/{idp}/federation_rules");
    let r = app
        .post(
            &rules,
            json!({"project_id": project, "service_account_id": account,
                   "attribute_matchers": {"repository": "acme/api", "ref_protected": true, "run_attempt": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rule = r.body.clone();
    let rule_id = r.id();
    assert!(rule_id.starts_with("fedrule_"), "{rule_id}");
    assert_eq!(
        rule["object"],
        "organization.workload_identity_federation_rule"
    );
    assert_eq!(rule["workload_identity_provider_id"], idp.as_str());
    assert_eq!(rule["project_id"], project.as_str());
    assert_eq!(rule["service_account_id"], account.as_str());
    assert_eq!(rule["name"], Value::Null);
    assert_eq!(rule["description"], Value::Null);
    assert_eq!(rule["enabled"], true);
    assert_eq!(
        rule["permissions"],
        json!({"type": "service_account_default"})
    );
    assert_eq!(
        rule["attribute_matchers"],
        json!({"repository": "acme/api", "ref_protected": true, "run_attempt": 1})
    );
    let one = format!("{rules}/{rule_id}");
    assert_eq!(app.get(&one).await.body, rule);

    let r = app
        .post(
            &one,
            json!({"name": "main only", "permissions": {"type": "restricted", "scopes": ["api.model.read"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "main only");
    assert_eq!(r.body["attribute_matchers"], rule["attribute_matchers"]);
    let r = app.post(&one, json!({"name": null})).await;
    assert_eq!(r.body["name"], Value::Null);
    assert_eq!(
        r.body["permissions"],
        json!({"type": "restricted", "scopes": ["api.model.read"]})
    );

    // Listed, filtered by account.
    let (other, _, _) = app.create_account(&project, "other").await;
    let r = app
        .post(
            &rules,
            json!({"project_id": project, "service_account_id": other, "attribute_matchers": {"sub": "x"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = app.get(&rules).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);
    let mine = app
        .get(&format!("{rules}?service_account_id={account}"))
        .await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine.body["data"][0]["id"], rule_id.as_str());
    let (param, ..) = bad(&app.get(&format!("{rules}?service_account_id=nope")).await);
    assert_eq!(param, "service_account_id");

    // A provider with rules cannot be deleted.
    let r = app.delete(&format!("{PROVIDERS}/{idp}")).await;
    assert!(bad(&r).2.contains("federation rules"), "{}", r.text);
    let r = app.delete(&one).await;
    assert_eq!(
        r.body,
        json!({"object": "organization.workload_identity_federation_rule.deleted", "id": rule_id, "deleted": true})
    );
    assert_eq!(app.get(&one).await.status, 404);

    let created = audit_of(&app, "workload_identity_provider_mapping.created").await;
    assert_eq!(created.len(), 2);
    assert_eq!(
        created[1]["workload_identity_provider_mapping.created"]["identity_provider_id"],
        idp.as_str()
    );
    let deleted = audit_of(&app, "workload_identity_provider_mapping.deleted").await;
    let d = &deleted[0]["workload_identity_provider_mapping.deleted"];
    assert_eq!(d["project_id"], project.as_str());
    assert_eq!(d["service_account_id"], account.as_str());
    assert_eq!(deleted[0]["project"]["id"], project.as_str());
}

#[tokio::test]
async fn bad_rules_are_refused_with_their_reason() {
    let app = TestApp::new().await;
    let idp = provider(&app, github("gh")).await;
    let project = app.create_project("deploys").await;
    let (account, _, _) = app.create_account(&project, "ci").await;
    let elsewhere = app.create_project("elsewhere").await;
    let (stranger, _, _) = app.create_account(&elsewhere, "stranger").await;
    let rules = format!("{PROVIDERS}/{idp}/federation_rules");
    let rule = |changes: Value| {
        let mut body = json!({"project_id": project, "service_account_id": account,
                              "attribute_matchers": {"sub": "x"}});
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (body, param) in [
        (
            rule(json!({"attribute_matchers": {}})),
            "attribute_matchers",
        ),
        (
            rule(json!({"attribute_matchers": {"sub": ["a"]}})),
            "attribute_matchers",
        ),
        (
            rule(json!({"attribute_matchers": {"sub": null}})),
            "attribute_matchers",
        ),
        (rule(json!({"name": ""})), "name"),
        (
            rule(json!({"permissions": {"type": "restricted", "scopes": ["a b"]}})),
            "scopes",
        ),
    ] {
        let (got, _, message) = bad(&app.post(&rules, body.clone()).await);
        assert_eq!(got, param, "{body}: {message}");
    }
    let r = app
        .post(&rules, rule(json!({"permissions": {"type": "everything"}})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Unknown or mismatched objects are 404; an archived project says so.
    let r = app
        .post(&rules, rule(json!({"service_account_id": stranger})))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .post(&rules, rule(json!({"project_id": "proj_nope"})))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .post(
            &format!("{PROVIDERS}/idp_nope/federation_rules"),
            rule(json!({})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .post(
            &format!("/v1/organization/projects/{elsewhere}/archive"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &rules,
            json!({"project_id": elsewhere, "service_account_id": stranger, "attribute_matchers": {"sub": "x"}}),
        )
        .await;
    let (_, code, _) = bad(&r);
    assert_eq!(code, "project_archived", "{}", r.text);
    assert_eq!(app.get(&rules).await.body["data"], json!([]));
}

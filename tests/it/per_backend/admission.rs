//! Admission control through the HTTP API: project × model rate limits (list, update,
//! enforcement and OpenAI's headers), key limits, allowlists, disabled keys and reported token
//! usage; every refusal path and the bad inputs the issue names.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::common::{self, Resp, TestApp};

async fn app() -> TestApp {
    TestApp::new()
        .await
        .with_models(common::catalogue(&[
            ("gpt-4o", 1000, 1000),
            ("*", 10_000, 1_000_000),
        ]))
        .await
}

async fn check(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::builder()
        .uri("/v1/auth/check")
        .header("authorization", format!("Bearer {key}"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    app.raw(req.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn project_rate_limits_list_update_and_refuse_bad_input() {
    let app = app().await;
    let p = app.create_project("limited").await;
    let list = app
        .get(&format!("/v1/organization/projects/{p}/rate_limits"))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rl-*", "rl-gpt-4o"]);
    assert_eq!(list.body["data"][1]["object"], "project.rate_limit");
    assert_eq!(list.body["data"][1]["max_requests_per_1_minute"], 1000);
    assert_eq!(list.body["has_more"], false);
    let page = app
        .get(&format!(
            "/v1/organization/projects/{p}/rate_limits?limit=1&after=rl-*"
        ))
        .await;
    assert_eq!(page.body["data"][0]["id"], "rl-gpt-4o");

    let path = format!("/v1/organization/projects/{p}/rate_limits/rl-gpt-4o");
    let up = app
        .post(
            &path,
            json!({ "max_requests_per_1_minute": 2, "max_requests_per_1_day": 50 }),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.text);
    assert_eq!(up.body["max_requests_per_1_minute"], 2);
    assert_eq!(
        up.body["max_tokens_per_1_minute"], 1000,
        "untouched fields keep the default"
    );
    assert_eq!(up.body["max_requests_per_1_day"], 50);

    for bad in [
        json!({ "max_requests_per_1_minute": -1 }),
        json!({ "max_requests_per_1_minute": 1.5 }),
        json!({ "max_requests_per_1_minute": "3" }),
    ] {
        let r = app.post(&path, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_requests_per_1_minute"),
            "{}",
            r.text
        );
    }
    let unknown = app
        .post(
            &format!("/v1/organization/projects/{p}/rate_limits/rl-nope"),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);

    let audit = app
        .get("/v1/organization/audit_logs?event_types[]=rate_limit.updated")
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let event = &audit.body["data"][0]["rate_limit.updated"];
    assert_eq!(event["id"], "rl-gpt-4o");
    assert_eq!(event["changes_requested"]["max_requests_per_1_minute"], 2);
}

#[tokio::test]
async fn project_model_limits_refuse_with_headers_and_retry_after() {
    let app = app().await;
    let p = app.create_project("limited").await;
    let (_, key, _) = app.create_account(&p, "bot").await;
    let path = format!("/v1/organization/projects/{p}/rate_limits/rl-gpt-4o");
    assert_eq!(
        app.post(&path, json!({ "max_requests_per_1_minute": 2 }))
            .await
            .status,
        200
    );
    let model = [("x-keyplane-model", "gpt-4o")];
    let first = check(&app, &key, &model).await;
    assert_eq!(first.status, 204, "{}", first.text);
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("1"));
    assert!(first
        .header("x-ratelimit-reset-requests")
        .unwrap()
        .ends_with('s'));
    assert_eq!(first.header("x-ratelimit-limit-tokens"), Some("1000"));
    assert_eq!(check(&app, &key, &model).await.status, 204);
    let refused = check(&app, &key, &model).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.error()["code"], "rate_limit_exceeded");
    assert!(refused.error()["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o"));
    assert!(
        refused
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        refused.header("x-keyplane-reason"),
        Some("rate_limit_exceeded")
    );
    // nginx passes on only 401 and 403: the same refusal, as 403 with Retry-After.
    let nginx = check(
        &app,
        &key,
        &[
            ("x-keyplane-model", "gpt-4o"),
            ("x-keyplane-gateway", "nginx"),
        ],
    )
    .await;
    assert_eq!(nginx.status, 403);
    assert!(nginx.header("retry-after").is_some());
    // Another model counts against the catch-all, which has room.
    assert_eq!(
        check(&app, &key, &[("x-keyplane-model", "o1")])
            .await
            .status,
        204
    );
    assert_eq!(check(&app, &key, &[]).await.status, 204);
}

#[tokio::test]
async fn key_limits_are_set_on_create_and_update_and_enforced() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (account, _, _) = app.create_account(&p, "bot").await;
    let created = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{account}/api_keys"),
            json!({ "max_requests_per_1_minute": 1, "max_tokens_per_1_minute": 10 }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let key = created.body["value"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    let shown = app
        .get(&format!("/v1/organization/projects/{p}/api_keys/{key_id}"))
        .await;
    assert_eq!(shown.body["max_requests_per_1_minute"], 1);
    assert_eq!(
        shown.body["max_requests_per_1_day"],
        serde_json::Value::Null
    );
    assert_eq!(shown.body["disabled"], serde_json::Value::Null);
    assert_eq!(check(&app, &key, &[]).await.status, 204);
    let refused = check(&app, &key, &[]).await;
    assert_eq!(refused.status, 429);
    assert!(refused.error()["message"]
        .as_str()
        .unwrap()
        .contains("API key"));

    let path = format!("/v1/organization/projects/{p}/api_keys/{key_id}");
    let cleared = app
        .post(&path, json!({ "max_requests_per_1_minute": null }))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(check(&app, &key, &[]).await.status, 204);
    assert_eq!(
        app.post(&path, json!({ "max_requests_per_1_day": -5 }))
            .await
            .status,
        400
    );
    assert_eq!(
        app.post(&path, json!({ "max_requests_per_1_day": "ten" }))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn allowlists_refuse_other_addresses_and_malformed_cidrs() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (_, key, key_id) = app.create_account(&p, "bot").await;
    let path = format!("/v1/organization/projects/{p}/api_keys/{key_id}");
    for bad in [
        json!({ "allowed_ips": ["10.0.0.0/33"] }),
        json!({ "allowed_ips": ["example.com"] }),
        json!({ "allowed_ips": [] }),
    ] {
        let r = app.post(&path, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.error()["param"], "allowed_ips");
    }
    let set = app
        .post(&path, json!({ "allowed_ips": ["10.1.2.3/8"] }))
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body["allowed_ips"], json!(["10.0.0.0/8"]));
    // In process there is no peer address: an allowlist refuses (fail closed).
    let refused = check(&app, &key, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.error()["code"], "ip_not_allowed");
    assert_eq!(
        app.post(&path, json!({ "allowed_ips": null })).await.status,
        200
    );
    assert_eq!(check(&app, &key, &[]).await.status, 204);

    let project = app
        .post(
            &format!("/v1/organization/projects/{p}"),
            json!({ "allowed_ips": ["192.0.2.0/24"] }),
        )
        .await;
    assert_eq!(project.status, 200, "{}", project.text);
    assert_eq!(project.body["allowed_ips"], json!(["192.0.2.0/24"]));
    let refused = check(&app, &key, &[]).await;
    assert_eq!(refused.status, 403);
    assert!(refused.error()["message"]
        .as_str()
        .unwrap()
        .contains("project"));
    // /v1/keys/verify decides for the address it is told.
    let verify = |ip: &'static str| {
        let key = key.clone();
        let app = &app;
        async move {
            app.post("/v1/keys/verify", json!({ "key": key, "client_ip": ip }))
                .await
        }
    };
    let inside = verify("192.0.2.9").await;
    assert_eq!(inside.body["admission"]["allowed"], true, "{}", inside.text);
    let outside = verify("198.51.100.1").await;
    assert_eq!(outside.body["admission"]["code"], "ip_not_allowed");
    assert_eq!(verify("not-an-ip").await.status, 400);
}

#[tokio::test]
async fn disabled_keys_are_refused_with_their_reason_and_can_be_enabled() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (_, key, key_id) = app.create_account(&p, "bot").await;
    let base = format!("/v1/organization/projects/{p}/api_keys/{key_id}");
    let bad = app
        .post(&format!("{base}/disable"), json!({ "reason": "lost" }))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let off = app
        .post(&format!("{base}/disable"), json!({ "reason": "exposed" }))
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["disabled"]["reason"], "exposed");
    let refused = check(&app, &key, &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error()["code"], "key_disabled");
    let verified = app.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(verified.body["reason"], "disabled");
    let on = app.post(&format!("{base}/enable"), json!({})).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(check(&app, &key, &[]).await.status, 204);

    // Admin keys: the last usable write-capable one cannot be disabled.
    let me = app.get("/v1/organization/admin_api_keys").await;
    let my_id = me.body["data"][0]["id"].as_str().unwrap().to_owned();
    let last = app
        .post(
            &format!("/v1/organization/admin_api_keys/{my_id}/disable"),
            json!({}),
        )
        .await;
    assert_eq!(last.status, 400, "{}", last.text);
    assert_eq!(last.error()["code"], "last_admin_key");
}

#[tokio::test]
async fn reported_tokens_bind_token_limits_and_the_usage_scope_does_nothing_else() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (_, key, key_id) = app.create_account(&p, "bot").await;
    let gw = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({ "name": "gateway", "scopes": ["api.usage.write"] }),
        )
        .await;
    assert_eq!(gw.status, 200, "{}", gw.text);
    let gateway = gw.body["value"].as_str().unwrap().to_owned();
    let listed = app
        .send("GET", "/v1/organization/projects", Some(&gateway), None)
        .await;
    assert_eq!(listed.status, 403, "{}", listed.text);

    let report = |body: serde_json::Value| {
        let gateway = gateway.clone();
        let app = &app;
        async move {
            app.send("POST", "/v1/usage", Some(&gateway), Some(body.to_string()))
                .await
        }
    };
    let bad = report(json!({ "data": [{ "key_id": key_id, "model": "gpt-4o", "input_tokens": -1, "output_tokens": 0 }] })).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let unknown = report(
        json!({ "data": [{ "key_id": "key_nope", "input_tokens": 1, "output_tokens": 0 }] }),
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);

    let model = [("x-keyplane-model", "gpt-4o")];
    assert_eq!(check(&app, &key, &model).await.status, 204);
    let ok = report(json!({ "data": [{ "key_id": key_id, "model": "gpt-4o", "input_tokens": 600, "output_tokens": 400 }] })).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["accepted"], 1);
    // At the limit (1000 tokens): refused, post-paid.
    let refused = check(&app, &key, &model).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.error()["message"].as_str().unwrap().contains("TPM"));
}

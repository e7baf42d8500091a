//! Project API keys and admin API keys: listing, updates, deletion with grace, expiry, and the
//! last-admin-key guard.

use crate::common::{self, TestApp};
use keyplane::domain::keys::KeyHash;
use keyplane::domain::time::Clock;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

async fn app() -> TestApp {
    TestApp::with_clock(Clock::fixed(T0)).await
}

fn keys_url(project: &str) -> String {
    format!("/v1/organization/projects/{project}/api_keys")
}

async fn usable(app: &TestApp, value: &str) -> bool {
    let k = app
        .store
        .api_key_by_hash(&KeyHash::of(value))
        .await
        .unwrap()
        .unwrap();
    k.is_usable_at(app.service.clock().now())
}

#[tokio::test]
async fn project_keys_list_with_owners_and_access_filter() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (member, _, member_key) = app.create_account(&p, "member-svc").await;
    let bare = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts"),
            json!({"name": "bare", "create_service_account_only": true}),
        )
        .await
        .id();
    let extra = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{bare}/api_keys"),
            json!({"name": "k2", "scopes": ["x.read"]}),
        )
        .await;
    let bare_key = extra.body["id"].as_str().unwrap().to_owned();
    let other = app.create_project("other").await;
    app.create_account(&other, "elsewhere").await;

    let all = app.get(&keys_url(&p)).await;
    assert_eq!(all.status, 200, "{}", all.text);
    let data = all.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "only this project's keys");
    let k = &data[0];
    assert_eq!(k["object"], "organization.project.api_key");
    assert_eq!(k["id"], member_key);
    assert!(k["redacted_value"]
        .as_str()
        .unwrap()
        .starts_with("sk-svcacct-"));
    assert!(k["last_used_at"].is_null() && k["expires_at"].is_null());
    assert_eq!(k["owner_project_access"], "active");
    assert_eq!(k["owner"]["type"], "service_account");
    assert_eq!(k["owner"]["service_account"]["id"], member);
    assert_eq!(
        k["owner"]["service_account"]["object"],
        "organization.project.service_account"
    );
    assert_eq!(k["owner"]["service_account"]["name"], "member-svc");
    assert_eq!(k["owner"]["service_account"]["role"], "member");
    assert_eq!(data[1]["owner_project_access"], "inactive");
    assert_eq!(data[1]["scopes"], json!(["x.read"]));
    assert!(
        !all.text.contains("\"value\""),
        "listing never shows key values"
    );

    let only = |q: &str| format!("{}?owner_project_access={q}", keys_url(&p));
    let active = app.get(&only("active")).await;
    assert_eq!(active.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(active.body["data"][0]["id"], member_key);
    let inactive = app.get(&only("inactive")).await;
    assert_eq!(inactive.body["data"][0]["id"], bare_key);
    assert_eq!(
        app.get(&only("any")).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let bad = app.get(&only("sometimes")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["param"], "owner_project_access");

    let page1 = app.get(&format!("{}?limit=1", keys_url(&p))).await;
    assert_eq!(page1.body["has_more"], true);
    let page2 = app
        .get(&format!("{}?limit=1&after={member_key}", keys_url(&p)))
        .await;
    assert_eq!(page2.body["data"][0]["id"], bare_key);
    assert_eq!(page2.body["has_more"], false);
    let foreign_cursor = app
        .get(&format!(
            "{}?after=key_zzzzzzzzzzzzzzzzzzzzzzzzzz",
            keys_url(&p)
        ))
        .await;
    assert_eq!(foreign_cursor.status, 400);

    let one = app.get(&format!("{}/{member_key}", keys_url(&p))).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, data[0]);
    // The same key under another project, an admin key's id, junk: all 404.
    assert_eq!(
        app.get(&format!("{}/{member_key}", keys_url(&other)))
            .await
            .status,
        404
    );
    let admin_id = app.get("/v1/organization/admin_api_keys").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("{}/{admin_id}", keys_url(&p)))
            .await
            .status,
        404
    );
    assert_eq!(app.get(&format!("{}/nope", keys_url(&p))).await.status, 404);
}

#[tokio::test]
async fn updating_scopes_and_expiry_takes_effect_at_that_second() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (_, value, key_id) = app.create_account(&p, "svc").await;
    let url = format!("{}/{key_id}", keys_url(&p));
    let u = app
        .post(
            &url,
            json!({"scopes": ["a.read", "b.write"], "expires_in_seconds": 60}),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(u.body["scopes"], json!(["a.read", "b.write"]));
    assert_eq!(u.body["expires_at"], T0 / 1000 + 60);
    assert!(usable(&app, &value).await);
    app.service.clock().advance(59_999);
    assert!(usable(&app, &value).await);
    app.service.clock().advance(1);
    assert!(!usable(&app, &value).await, "expired exactly at expires_at");
    // Extending it again works; null removes the expiry.
    let u = app.post(&url, json!({"expires_in_seconds": null})).await;
    assert!(u.body["expires_at"].is_null());
    assert!(usable(&app, &value).await);
    for (body, param) in [
        (json!({"expires_in_seconds": 0}), "expires_in_seconds"),
        (json!({"expires_in_seconds": "x"}), "expires_in_seconds"),
        (json!({"scopes": [""]}), "scopes"),
    ] {
        let r = app.post(&url, body).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.error()["param"], param);
    }
}

#[tokio::test]
async fn deleting_one_key_revokes_just_it_with_an_optional_grace_period() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (svc, old_value, old_id) = app.create_account(&p, "svc").await;
    let new = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({}),
        )
        .await;
    let new_value = new.body["value"].as_str().unwrap().to_owned();

    // Rotation: delete the old key with a 30 s grace period.
    let d = app
        .delete(&format!(
            "{}/{old_id}?grace_period_seconds=30",
            keys_url(&p)
        ))
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(
        d.body,
        json!({"object": "organization.project.api_key.deleted", "id": old_id, "deleted": true})
    );
    assert_eq!(
        app.get(&format!("{}/{old_id}", keys_url(&p))).await.status,
        404,
        "deleted keys are gone from the API"
    );
    assert_eq!(
        app.get(&keys_url(&p)).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        usable(&app, &old_value).await,
        "still valid inside the grace period"
    );
    app.service.clock().advance(30_000);
    assert!(!usable(&app, &old_value).await, "and not a moment longer");
    assert!(
        usable(&app, &new_value).await,
        "the account and its other key are untouched"
    );
    assert_eq!(
        app.get(&format!(
            "/v1/organization/projects/{p}/service_accounts/{svc}"
        ))
        .await
        .status,
        200
    );
    assert_eq!(
        app.delete(&format!("{}/{old_id}", keys_url(&p)))
            .await
            .status,
        404
    );

    // Without grace: at once. A grace longer than the key's life is capped at its expiry.
    let short = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({"expires_in_seconds": 10}),
        )
        .await;
    let short_id = short.body["id"].as_str().unwrap().to_owned();
    let short_value = short.body["value"].as_str().unwrap().to_owned();
    app.delete(&format!(
        "{}/{short_id}?grace_period_seconds=3600",
        keys_url(&p)
    ))
    .await;
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(&short_value))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.revoked_at, stored.expires_at);
    let new_id = new.body["id"].as_str().unwrap().to_owned();
    app.delete(&format!("{}/{new_id}", keys_url(&p))).await;
    assert!(!usable(&app, &new_value).await);
    for bad in ["-1", "2592001", "soon"] {
        let (_, _, k) = app.create_account(&p, "another").await;
        let r = app
            .delete(&format!("{}/{k}?grace_period_seconds={bad}", keys_url(&p)))
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error()["param"], "grace_period_seconds");
    }
}

#[tokio::test]
async fn admin_keys_create_list_retrieve_delete() {
    let app = app().await;
    let c = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "ci", "expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["object"], "organization.admin_api_key");
    let value = c.body["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("sk-admin-"));
    assert_eq!(c.body["expires_at"], T0 / 1000 + 3600);
    assert!(c.body["redacted_value"].as_str().unwrap().contains('…'));
    assert_eq!(c.body["owner"]["role"], "owner");
    let id = c.id();
    let got = app
        .get(&format!("/v1/organization/admin_api_keys/{id}"))
        .await;
    assert_eq!(got.status, 200);
    assert!(
        got.body.get("value").is_none(),
        "the value is shown only at creation"
    );
    // The new key works on the admin API.
    assert_eq!(
        app.send("GET", "/v1/organization/projects", Some(&value), None)
            .await
            .status,
        200
    );

    for i in 0..3 {
        app.post(
            "/v1/organization/admin_api_keys",
            json!({"name": format!("k{i}")}),
        )
        .await;
    }
    let asc = app.get("/v1/organization/admin_api_keys?limit=2").await;
    let desc = app
        .get("/v1/organization/admin_api_keys?limit=2&order=desc")
        .await;
    let names = |r: &common::Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&asc), vec!["Bootstrap admin key", "ci"]);
    assert_eq!(names(&desc), vec!["k2", "k1"]);
    let desc2 = app
        .get(&format!(
            "/v1/organization/admin_api_keys?limit=2&order=desc&after={}",
            desc.body["last_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(names(&desc2), vec!["k0", "ci"]);
    assert_eq!(desc2.body["has_more"], true);
    let bad = app
        .get("/v1/organization/admin_api_keys?order=sideways")
        .await;
    assert_eq!(bad.error()["param"], "order");
    for (body, param) in [
        (json!({}), "name"),
        (
            json!({"name": "x", "expires_in_seconds": 0}),
            "expires_in_seconds",
        ),
        (
            json!({"name": "x", "expires_in_seconds": 31536001}),
            "expires_in_seconds",
        ),
    ] {
        let r = app.post("/v1/organization/admin_api_keys", body).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.error()["param"], param);
    }

    let d = app
        .delete(&format!("/v1/organization/admin_api_keys/{id}"))
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["object"], "organization.admin_api_key.deleted");
    assert_eq!(
        app.get(&format!("/v1/organization/admin_api_keys/{id}"))
            .await
            .status,
        404
    );
    let refused = app
        .send("GET", "/v1/organization/projects", Some(&value), None)
        .await;
    assert_eq!(
        refused.status, 401,
        "a deleted admin key stops working at once"
    );
}

#[tokio::test]
async fn admin_keys_expire_at_that_second() {
    let app = app().await;
    let c = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "short", "expires_in_seconds": 5}),
        )
        .await;
    let value = c.body["value"].as_str().unwrap().to_owned();
    app.service.clock().advance(4_999);
    assert_eq!(
        app.send("GET", "/v1/organization/projects", Some(&value), None)
            .await
            .status,
        200
    );
    app.service.clock().advance(1);
    let r = app
        .send("GET", "/v1/organization/projects", Some(&value), None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.error()["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn an_organization_cannot_delete_its_last_usable_admin_key() {
    let app = app().await;
    let own = app.get("/v1/organization/admin_api_keys").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .delete(&format!("/v1/organization/admin_api_keys/{own}"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "last_admin_key");
    // A second key that has already expired does not count.
    app.post(
        "/v1/organization/admin_api_keys",
        json!({"name": "brief", "expires_in_seconds": 1}),
    )
    .await;
    app.service.clock().advance(1_000);
    assert_eq!(
        app.delete(&format!("/v1/organization/admin_api_keys/{own}"))
            .await
            .status,
        400
    );
    // Nor does a read-only one: with only it left, the organization could change nothing.
    let reader = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "dashboard", "scopes": ["api.management.read"]}),
        )
        .await;
    assert_eq!(reader.status, 200, "{}", reader.text);
    let refused = app
        .delete(&format!("/v1/organization/admin_api_keys/{own}"))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error()["code"], "last_admin_key");
    // A usable second key does: then the first can go, and the second becomes the last.
    let second = app
        .post("/v1/organization/admin_api_keys", json!({"name": "second"}))
        .await;
    let (second_id, second_value) = (
        second.id(),
        second.body["value"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        app.delete(&format!("/v1/organization/admin_api_keys/{own}"))
            .await
            .status,
        200
    );
    let last = app
        .send(
            "DELETE",
            &format!("/v1/organization/admin_api_keys/{second_id}"),
            Some(&second_value),
            None,
        )
        .await;
    assert_eq!(last.status, 400);
    assert_eq!(
        app.send(
            "GET",
            "/v1/organization/projects",
            Some(&second_value),
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn other_organizations_keys_do_not_exist() {
    let app = app().await;
    let p = app.create_project("p").await;
    let (_, _, key_id) = app.create_account(&p, "svc").await;
    let b = app.other_org("b").await;
    let admin_id = app.get("/v1/organization/admin_api_keys").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        ("GET", format!("{}/{key_id}", keys_url(&p))),
        ("POST", format!("{}/{key_id}", keys_url(&p))),
        ("DELETE", format!("{}/{key_id}", keys_url(&p))),
        ("GET", keys_url(&p)),
        ("GET", format!("/v1/organization/admin_api_keys/{admin_id}")),
        (
            "DELETE",
            format!("/v1/organization/admin_api_keys/{admin_id}"),
        ),
    ] {
        let r = app.send(method, &path, Some(&b), Some("{}".into())).await;
        assert_eq!(r.status, 404, "{method} {path}");
    }
    let listed = app
        .send("GET", "/v1/organization/admin_api_keys", Some(&b), None)
        .await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "B sees only its own admin key"
    );
}

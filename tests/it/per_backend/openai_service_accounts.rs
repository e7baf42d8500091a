//! `/v1/organization/projects/{id}/service_accounts…` through the router, in-process.

use crate::common::TestApp;
use keyplane::domain::keys::{self, KeyHash, KeyKind};
use serde_json::json;

fn accounts(project: &str) -> String {
    format!("/v1/organization/projects/{project}/service_accounts")
}

#[tokio::test]
async fn create_returns_the_key_once_in_the_documented_shape() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let r = app
        .post(
            &accounts(&p),
            json!({"name": "Production App", "unknown_field": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["object"], "organization.project.service_account");
    assert_eq!(b["role"], "member");
    assert_eq!(b["name"], "Production App");
    let id = r.id();
    assert!(id.starts_with("svc_acct_") && id.len() == 9 + 26);
    let key = &b["api_key"];
    assert_eq!(
        key["object"],
        "organization.project.service_account.api_key"
    );
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(key["name"], "Secret Key");
    let value = key["value"].as_str().unwrap();
    assert_eq!(keys::parse(value), Ok(KeyKind::ServiceAccount));

    // Stored as a hash bound to this account; the value is never shown again.
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(value))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        format!("svc_acct_{}", stored.service_account_id.unwrap()),
        id
    );
    assert!(
        stored.redacted_value.starts_with("sk-svcacct-") && stored.redacted_value.contains('…')
    );
    let again = app.get(&format!("{}/{id}", accounts(&p))).await;
    assert_eq!(again.status, 200);
    assert!(!again.text.contains(value));
    assert!(again.body.get("api_key").is_none());
}

/// The one-time key object carries `expires_at` (the SDKs type it: `openai` Python 3.x and
/// Node 7.x), `null` for a key that never expires; OpenAI's spec allows the extra property.
#[tokio::test]
async fn new_keys_show_their_expiry() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let never = app.post(&accounts(&p), json!({"name": "forever"})).await;
    assert_eq!(never.status, 200, "{}", never.text);
    let key = never.body["api_key"].as_object().unwrap();
    let mut fields: Vec<&str> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "expires_at", "id", "name", "object", "value"]
    );
    assert!(key["expires_at"].is_null());

    let hour = app
        .post(
            &accounts(&p),
            json!({"name": "hourly", "expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(hour.status, 200, "{}", hour.text);
    let key = &hour.body["api_key"];
    let created = key["created_at"].as_i64().unwrap();
    assert_eq!(key["expires_at"].as_i64(), Some(created + 3600));

    let url = format!("{}/{}/api_keys", accounts(&p), hour.id());
    let more = app
        .post(&url, json!({"name": "short", "expires_in_seconds": 600}))
        .await;
    assert_eq!(more.status, 200, "{}", more.text);
    let created = more.body["created_at"].as_i64().unwrap();
    assert_eq!(more.body["expires_at"].as_i64(), Some(created + 600));
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(more.body["value"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        more.body["expires_at"].as_i64(),
        stored.expires_at.map(|ms| ms / 1000)
    );
    let plain = app.post(&url, json!({})).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(plain.body.get("expires_at").is_some_and(|v| v.is_null()));
}

#[tokio::test]
async fn create_service_account_only_has_no_key_and_role_none() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let r = app
        .post(
            &accounts(&p),
            json!({"name": "bare", "create_service_account_only": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], "none");
    assert!(r.body["api_key"].is_null());
    let listed = app.get(&accounts(&p)).await;
    assert_eq!(listed.body["data"][0]["role"], "none");
    let wrong = app
        .post(
            &accounts(&p),
            json!({"name": "x", "create_service_account_only": "yes"}),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.error()["param"], "create_service_account_only");
}

#[tokio::test]
async fn forty_five_accounts_page_exactly_once_at_limit_seven() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let other = app.create_project("other").await;
    app.create_account(&other, "noise").await;
    let mut expected = vec![];
    for i in 0..45 {
        expected.push(app.create_account(&p, &format!("svc-{i}")).await.0);
    }
    let mut seen = vec![];
    let mut url = format!("{}?limit=7", accounts(&p));
    loop {
        let r = app.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let data = r.body["data"].as_array().unwrap();
        seen.extend(data.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        if !r.body["has_more"].as_bool().unwrap() {
            break;
        }
        url = format!(
            "{}?limit=7&after={}",
            accounts(&p),
            r.body["last_id"].as_str().unwrap()
        );
    }
    assert_eq!(seen, expected);
    // A cursor from another project is refused, naming the parameter.
    let (noise_id, ..) = app.create_account(&other, "noise2").await;
    let r = app.get(&format!("{}?after={noise_id}", accounts(&p))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "after");
}

#[tokio::test]
async fn retrieve_update_and_delete() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (id, value, _) = app.create_account(&p, "svc").await;
    let url = format!("{}/{id}", accounts(&p));

    let u = app
        .post(&url, json!({"name": "renamed", "role": "owner"}))
        .await;
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(
        (u.body["name"].as_str(), u.body["role"].as_str()),
        (Some("renamed"), Some("owner"))
    );
    let only_role = app.post(&url, json!({"role": "member"})).await;
    assert_eq!(only_role.body["name"], "renamed");
    assert_eq!(app.get(&url).await.body["role"], "member");
    for (body, param) in [
        (json!({"role": "admin"}), "role"),
        (json!({"role": "none"}), "role"),
        (json!({"name": ""}), "name"),
        (json!({"name": "a\u{0007}b"}), "name"),
        (json!({"name": "x".repeat(257)}), "name"),
        (json!({"name": 12}), "name"),
    ] {
        let r = app.post(&url, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error()["param"], param, "{body}");
    }
    assert_eq!(
        app.get(&url).await.body["name"],
        "renamed",
        "failed updates change nothing"
    );

    // Another project's path does not reach this account.
    let q = app.create_project("q").await;
    assert_eq!(app.get(&format!("{}/{id}", accounts(&q))).await.status, 404);

    let d = app.delete(&url).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(
        d.body,
        json!({"object": "organization.project.service_account.deleted", "id": id, "deleted": true})
    );
    assert_eq!(app.get(&url).await.status, 404);
    assert_eq!(app.delete(&url).await.status, 404);
    assert_eq!(app.post(&url, json!({"name": "z"})).await.status, 404);
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(&value))
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.revoked_at.is_some(),
        "deleting the account revokes its key"
    );
    let list = app.get(&accounts(&p)).await;
    assert_eq!(list.body["data"], json!([]));
}

#[tokio::test]
async fn additional_keys_rotate_and_deletion_revokes_them_all() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (id, first, _) = app.create_account(&p, "svc").await;
    let url = format!("{}/{id}/api_keys", accounts(&p));
    let k = app
        .post(&url, json!({"name": "rotation-2", "scopes": ["api.read", "api.read"], "expires_in_seconds": 3600}))
        .await;
    assert_eq!(k.status, 200, "{}", k.text);
    assert_eq!(
        k.body["object"],
        "organization.project.service_account.api_key"
    );
    assert_eq!(k.body["name"], "rotation-2");
    let second = k.body["value"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let stored = app
        .store
        .api_key_by_hash(&KeyHash::of(&second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.scopes, vec!["api.read"]);
    assert_eq!(stored.expires_at.unwrap() - stored.created_at, 3_600_000);
    // A bare POST (no body) is fine: every field is optional.
    let bare = app.send("POST", &url, Some(&app.admin_key), None).await;
    assert_eq!(bare.status, 200, "{}", bare.text);
    assert_eq!(bare.body["name"], "Secret Key");
    let third = bare.body["value"].as_str().unwrap().to_owned();

    for (body, param) in [
        (json!({"expires_in_seconds": 0}), "expires_in_seconds"),
        (json!({"expires_in_seconds": "soon"}), "expires_in_seconds"),
        (json!({"scopes": "api.read"}), "scopes"),
        (json!({"scopes": [1]}), "scopes[0]"),
        (json!({"scopes": ["has space"]}), "scopes"),
    ] {
        let r = app.post(&url, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.error()["param"], param, "{body}");
    }

    let missing = format!(
        "{}/svc_acct_zzzzzzzzzzzzzzzzzzzzzzzzzz/api_keys",
        accounts(&p)
    );
    assert_eq!(app.post(&missing, json!({})).await.status, 404);

    app.delete(&format!("{}/{id}", accounts(&p))).await;
    for v in [&first, &second, &third] {
        let k = app
            .store
            .api_key_by_hash(&KeyHash::of(v))
            .await
            .unwrap()
            .unwrap();
        assert!(k.revoked_at.is_some());
    }
    assert_eq!(
        app.post(&url, json!({})).await.status,
        404,
        "no keys for a deleted account"
    );
}

#[tokio::test]
async fn archived_projects_refuse_service_account_operations() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (id, ..) = app.create_account(&p, "svc").await;
    app.post(&format!("/v1/organization/projects/{p}/archive"), json!({}))
        .await;
    let one = format!("{}/{id}", accounts(&p));
    for (method, path, body) in [
        ("GET", accounts(&p), None),
        ("POST", accounts(&p), Some(r#"{"name":"late"}"#)),
        ("DELETE", one.clone(), None),
        ("POST", one.clone(), Some(r#"{"name":"late"}"#)),
        ("POST", format!("{one}/api_keys"), Some("{}")),
    ] {
        let r = app
            .send(method, &path, Some(&app.admin_key), body.map(str::to_owned))
            .await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
        assert_eq!(r.error()["code"], "project_archived");
        assert_eq!(r.header("x-should-retry"), Some("false"));
    }
    // Nothing was changed or added.
    let acct = app.get(&one).await;
    assert_eq!(acct.status, 200);
    assert_eq!(acct.body["name"], "svc");
}

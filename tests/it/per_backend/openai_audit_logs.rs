//! `GET /v1/organization/audit_logs` in-process: every change of both dialects is recorded
//! with its actor and request, filters and cursors work, bad input gets the OpenAI envelope.

use crate::common::{kc_accounts, kc_credentials, TestApp, KC_ORG};
use serde_json::{json, Value};

const AUDIT: &str = "/v1/organization/audit_logs";

async fn all_events(app: &TestApp, key: &str) -> Vec<Value> {
    let r = app
        .send("GET", &format!("{AUDIT}?limit=100"), Some(key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["has_more"], false);
    r.body["data"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn admin_key_id(app: &TestApp) -> String {
    let r = app.get("/v1/organization/admin_api_keys").await;
    r.body["data"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_change_of_both_dialects_is_audited_with_actor_and_request() {
    let app = TestApp::new().await;
    let me = admin_key_id(&app).await;
    let mut secrets = vec![app.admin_key.clone()];

    let project = app.create_project("Billing").await;
    let p = format!("/v1/organization/projects/{project}");
    assert_eq!(app.post(&p, json!({"name": "Billing 2"})).await.status, 200);
    let created = app
        .post(&format!("{p}/service_accounts"), json!({"name": "bot"}))
        .await;
    let account = created.id();
    let first_key = created.body["api_key"]["id"].as_str().unwrap().to_owned();
    secrets.push(
        created.body["api_key"]["value"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let a = format!("{p}/service_accounts/{account}");
    let rotated = app
        .post(&format!("{a}/api_keys"), json!({"name": "next"}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    secrets.push(rotated.body["value"].as_str().unwrap().to_owned());
    let key = rotated.id();
    let k = format!("{p}/api_keys/{key}");
    assert_eq!(
        app.post(&k, json!({"scopes": ["a.read"]})).await.status,
        200
    );
    assert_eq!(app.delete(&k).await.status, 200);
    assert_eq!(app.post(&a, json!({"role": "owner"})).await.status, 200);
    let deleted = app.delete(&a).await;
    assert_eq!(deleted.status, 200);
    let admin = app
        .post("/v1/organization/admin_api_keys", json!({"name": "ops"}))
        .await;
    secrets.push(admin.body["value"].as_str().unwrap().to_owned());
    assert_eq!(
        app.delete(&format!("/v1/organization/admin_api_keys/{}", admin.id()))
            .await
            .status,
        200
    );
    // The Keycard dialect, with a client request id.
    let client_request_id = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
    let kc = app
        .request(
            "POST",
            &kc_accounts(KC_ORG),
            Some(&app.admin_key),
            &[("x-client-request-id", client_request_id)],
            Some((
                "application/json",
                br#"{"name":"kc","description":"d"}"#.to_vec(),
            )),
        )
        .await;
    assert_eq!(kc.status, 201, "{}", kc.text);
    let kc_id = kc.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.patch(
            &format!("{}/{kc_id}", kc_accounts(KC_ORG)),
            json!({"description": null})
        )
        .await
        .status,
        200
    );
    let cred = app.kc_create_credential(&kc_id, "c").await;
    secrets.push(cred["client_secret"].as_str().unwrap().to_owned());
    let cred_id = cred["id"].as_str().unwrap();
    let c = format!("{}/{cred_id}", kc_credentials(KC_ORG, &kc_id));
    assert_eq!(app.patch(&c, json!({"name": "c2"})).await.status, 200);
    assert_eq!(app.delete(&c).await.status, 204);
    assert_eq!(
        app.post(&format!("{p}/archive"), json!({})).await.status,
        200
    );

    let events = all_events(&app, &app.admin_key).await;
    assert_eq!(
        types(&events),
        [
            "project.archived",
            "credential.deleted",
            "credential.updated",
            "credential.created",
            "service_account.updated",
            "service_account.created",
            "admin_api_key.deleted",
            "admin_api_key.created",
            "service_account.deleted",
            "service_account.updated",
            "api_key.deleted",
            "api_key.updated",
            "api_key.created",
            "api_key.created",
            "service_account.created",
            "project.updated",
            "project.created",
            // First start: the default project and the bootstrap key, by the system.
            "admin_api_key.created",
            "project.created",
        ]
    );
    for e in &events[..17] {
        assert_eq!(e["object"], "organization.audit_log");
        assert!(e["id"].as_str().unwrap().starts_with("audit_log-"));
        assert_eq!(e["actor"]["type"], "api_key", "{e}");
        assert_eq!(e["actor"]["api_key"]["id"], me.as_str(), "{e}");
        assert!(e["request"]["id"].as_str().unwrap().starts_with("req_"));
        assert!(e["effective_at"].as_i64().unwrap() > 1_600_000_000);
        let t = e["type"].as_str().unwrap();
        assert!(e[t]["id"].is_string(), "details under the type's key: {e}");
    }
    assert_eq!(events[17]["actor"]["type"], "system");

    // Details: what was asked for, IDs as clients see them, the project with its name.
    let sa_created = &events[14];
    assert_eq!(
        sa_created["service_account.created"]["id"],
        account.as_str()
    );
    assert_eq!(
        sa_created["service_account.created"]["data"]["role"],
        "member"
    );
    assert_eq!(sa_created["project"]["id"], project.as_str());
    assert_eq!(sa_created["project"]["name"], "Billing 2");
    // Deleting the account revoked its live key with it (the rotated one was deleted before).
    assert_eq!(
        events[8]["service_account.deleted"]["revoked_api_key_ids"],
        json!([first_key])
    );
    assert_eq!(
        events[11]["api_key.updated"]["changes_requested"]["scopes"],
        json!(["a.read"])
    );
    assert_eq!(
        events[15]["project.updated"]["changes_requested"],
        json!({"name": "Billing 2"})
    );
    assert_eq!(
        events[4]["service_account.updated"]["changes_requested"],
        json!({"description": null})
    );
    assert_eq!(events[3]["credential.created"]["id"], cred_id);
    assert_eq!(events[5]["request"]["client_request_id"], client_request_id);
    assert!(events[6]["request"]["client_request_id"].is_null());
    // The delete's request id is the one its response carried.
    assert_eq!(
        events[8]["request"]["id"].as_str(),
        deleted.header("x-request-id")
    );

    let text = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into the audit log"
        );
    }
}

#[tokio::test]
async fn filters_and_cursors_select_and_page() {
    let app = TestApp::new().await;
    let me = admin_key_id(&app).await;
    let p1 = app.create_project("one").await;
    let p2 = app.create_project("two").await;
    let (acct, _, _) = app.create_account(&p1, "a").await;
    app.create_account(&p2, "b").await;

    let get = |q: String| {
        let app = &app;
        async move {
            let r = app.get(&format!("{AUDIT}?{q}")).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.body
        }
    };
    let body =
        get("event_types%5B%5D=service_account.created&event_types%5B%5D=project.created".into())
            .await;
    assert_eq!(
        types(body["data"].as_array().unwrap()),
        [
            "service_account.created",
            "service_account.created",
            "project.created",
            "project.created",
            "project.created"
        ]
    );
    let body = get(format!("project_ids%5B%5D={p1}")).await;
    assert_eq!(
        types(body["data"].as_array().unwrap()),
        [
            "api_key.created",
            "service_account.created",
            "project.created"
        ]
    );
    let body = get(format!("resource_ids%5B%5D={acct}")).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let body = get(format!("actor_ids%5B%5D={me}&limit=100")).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 6);
    let body = get("actor_emails%5B%5D=a%40example.com".into()).await;
    assert_eq!(body["data"], json!([]));
    assert!(body["first_id"].is_null() && body["last_id"].is_null());
    let body = get("effective_at%5Bgt%5D=4102444800".into()).await;
    assert_eq!(body["data"], json!([]), "nothing after 2100");
    let body = get("effective_at%5Bgte%5D=0&effective_at%5Blte%5D=4102444800".into()).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 8);

    // limit 3 forward with `after`, then back with `before`.
    let first = get("limit=3".into()).await;
    assert_eq!(first["has_more"], true);
    let last_id = first["last_id"].as_str().unwrap();
    let second = get(format!("limit=3&after={last_id}")).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 3);
    let back = get(format!(
        "limit=3&before={}",
        second["first_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(back["data"], first["data"]);
}

#[tokio::test]
async fn bad_parameters_and_other_organizations_get_errors() {
    let app = TestApp::new().await;
    let other = app.other_org("other").await;
    app.create_project("mine").await;
    let theirs = all_events(&app, &other).await;
    assert!(
        theirs
            .iter()
            .all(|e| e["type"] != "project.created" || e["project"]["name"] != "mine"),
        "another organization's events are invisible"
    );
    let foreign_cursor = theirs[0]["id"].as_str().unwrap().to_owned();

    for (query, param, code) in [
        ("limit=0", "limit", "invalid_value"),
        ("limit=101", "limit", "invalid_value"),
        ("limit=x", "limit", "invalid_type"),
        (
            "event_types%5B%5D=project.exploded",
            "event_types[]",
            "invalid_value",
        ),
        (
            "effective_at%5Bgt%5D=soon",
            "effective_at[gt]",
            "invalid_type",
        ),
        // Before 1970: out of range (PostgreSQL once answered 500 for this).
        (
            "effective_at%5Blte%5D=-1099511627775",
            "effective_at[lte]",
            "invalid_value",
        ),
        ("after=audit_log-nope", "after", "invalid_value"),
        ("after=proj_abc", "after", "invalid_value"),
        (&format!("after={foreign_cursor}"), "after", "invalid_value"),
    ] {
        let r = app.get(&format!("{AUDIT}?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let e = r.error();
        assert_eq!(e["param"], param, "{query}");
        assert_eq!(e["code"], code, "{query}");
    }
    let first = all_events(&app, &app.admin_key).await;
    let id = first[0]["id"].as_str().unwrap();
    let both = app.get(&format!("{AUDIT}?after={id}&before={id}")).await;
    assert_eq!(both.status, 400, "{}", both.text);
    // A NUL in a filter value names nothing (PostgreSQL text cannot even hold one): found by
    // schemathesis as a 500.
    for filter in [
        "resource_ids%5B%5D=a%00b",
        "actor_ids%5B%5D=%00",
        "project_ids%5B%5D=proj_%00",
    ] {
        let r = app.get(&format!("{AUDIT}?{filter}")).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text);
        assert_eq!(r.body["data"], json!([]), "{filter}");
    }
    let anon = app.send("GET", AUDIT, None, None).await;
    assert_eq!(anon.status, 401);
    anon.error();
}

#[tokio::test]
async fn deleting_an_account_records_every_key_it_stopped() {
    let app = TestApp::new().await;
    let p = app.create_project("p").await;
    let (account, _, first) = app.create_account(&p, "bot").await;
    let a = format!("/v1/organization/projects/{p}/service_accounts/{account}");
    let graced = app.post(&format!("{a}/api_keys"), json!({})).await;
    let graced_value = graced.body["value"].as_str().unwrap().to_owned();
    let graced = graced.id();
    let gone = app.post(&format!("{a}/api_keys"), json!({})).await.id();
    let keys = format!("/v1/organization/projects/{p}/api_keys");
    // One key in a grace period (still working), one revoked for good.
    assert_eq!(
        app.delete(&format!("{keys}/{graced}?grace_period_seconds=3600"))
            .await
            .status,
        200
    );
    assert_eq!(app.delete(&format!("{keys}/{gone}")).await.status, 200);
    assert_eq!(app.delete(&a).await.status, 200);

    let events = all_events(&app, &app.admin_key).await;
    let deleted = events
        .iter()
        .find(|e| e["type"] == "service_account.deleted")
        .unwrap();
    let mut ids: Vec<&str> = deleted["service_account.deleted"]["revoked_api_key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![first.as_str(), graced.as_str()];
    want.sort();
    assert_eq!(ids, want, "{deleted}");
    // The key in its grace period stopped with the account.
    let check = app
        .send("GET", "/v1/auth/check", Some(&graced_value), None)
        .await;
    assert_eq!(check.status, 401);

    // The Keycard dialect's delete records them the same way (here: none).
    let kc = app.kc_create_account("kc").await;
    let kc_id = kc["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("{}/{kc_id}", kc_accounts(KC_ORG)))
            .await
            .status,
        204
    );
    let events = all_events(&app, &app.admin_key).await;
    assert_eq!(events[0]["type"], "service_account.deleted");
    assert_eq!(
        events[0]["service_account.deleted"]["revoked_api_key_ids"],
        json!([])
    );
}

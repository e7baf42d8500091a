//! `/v1/organization/projects…` through the router, in-process.

use crate::common::{self, TestApp};
use serde_json::json;

const PROJECTS: &str = "/v1/organization/projects";

#[tokio::test]
async fn create_retrieve_modify_and_list_a_project() {
    let app = TestApp::new().await;
    let r = app.post(PROJECTS, json!({"name": "  Billing ☃  "})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body;
    assert_eq!(p["object"], "organization.project");
    assert_eq!(p["name"], "Billing ☃", "names are trimmed");
    assert_eq!(p["status"], "active");
    assert!(p["archived_at"].is_null() && p["external_key_id"].is_null());
    assert!(p["created_at"].as_i64().unwrap() > 1_600_000_000);
    let id = r.id();
    assert!(id.starts_with("proj_") && id.len() == 5 + 26);

    let got = app.get(&format!("{PROJECTS}/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, r.body);

    let m = app
        .post(
            &format!("{PROJECTS}/{id}"),
            json!({"name": "Billing v2", "external_key_id": "kms-1"}),
        )
        .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.body["name"], "Billing v2");
    assert_eq!(m.body["external_key_id"], "kms-1");
    // Absent fields stay; an explicit null clears the external key id.
    let m = app
        .post(
            &format!("{PROJECTS}/{id}"),
            json!({"external_key_id": null}),
        )
        .await;
    assert_eq!(m.body["name"], "Billing v2");
    assert!(m.body["external_key_id"].is_null());
    // Persisted, not just echoed.
    assert_eq!(
        app.get(&format!("{PROJECTS}/{id}")).await.body["name"],
        "Billing v2"
    );

    let list = app.get(PROJECTS).await;
    assert_eq!(list.body["object"], "list");
    let names: Vec<_> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Default project"), json!("Billing v2")]);
    assert_eq!(list.body["first_id"], list.body["data"][0]["id"]);
    assert_eq!(list.body["last_id"], id);
    assert_eq!(list.body["has_more"], false);
}

#[tokio::test]
async fn archiving_is_idempotent_and_hides_the_project_from_default_lists() {
    let app = TestApp::new().await;
    let id = app.create_project("old").await;
    let a = app
        .post(&format!("{PROJECTS}/{id}/archive"), json!({}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "archived");
    let at = a.body["archived_at"].as_i64().unwrap();
    let again = app
        .send(
            "POST",
            &format!("{PROJECTS}/{id}/archive"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(
        again.status, 200,
        "archiving twice answers the project unchanged"
    );
    assert_eq!(again.body["archived_at"], at);

    let ids = |r: &common::Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!ids(&app.get(PROJECTS).await).contains(&id));
    assert!(!ids(&app.get(&format!("{PROJECTS}?include_archived=false")).await).contains(&id));
    assert!(ids(&app.get(&format!("{PROJECTS}?include_archived=true")).await).contains(&id));
    let bad = app.get(&format!("{PROJECTS}?include_archived=maybe")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["param"], "include_archived");

    let m = app
        .post(&format!("{PROJECTS}/{id}"), json!({"name": "new"}))
        .await;
    assert_eq!(m.status, 400);
    assert_eq!(m.error()["code"], "project_archived");
    assert_eq!(
        m.error()["message"],
        format!("Project '{id}' is archived. You can only update an active project.")
    );
    assert_eq!(
        app.get(&format!("{PROJECTS}/{id}")).await.body["name"],
        "old"
    );
}

#[tokio::test]
async fn the_default_project_cannot_be_archived() {
    let app = TestApp::new().await;
    let list = app.get(PROJECTS).await;
    let default = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("{PROJECTS}/{default}/archive"), json!({}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["type"], "invalid_request_error");
    assert_eq!(
        app.get(&format!("{PROJECTS}/{default}")).await.body["status"],
        "active"
    );
}

#[tokio::test]
async fn pagination_walks_every_project_exactly_once() {
    let app = TestApp::new().await;
    let mut expected = vec![app.get(PROJECTS).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()];
    for i in 0..24 {
        expected.push(app.create_project(&format!("p{i}")).await);
    }
    let mut seen = vec![];
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{PROJECTS}?limit=7&after={a}"),
            None => format!("{PROJECTS}?limit=7"),
        };
        let r = app.get(&q).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 7);
        assert_eq!(r.body["first_id"], data[0]["id"]);
        assert_eq!(r.body["last_id"], data[data.len() - 1]["id"]);
        seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        if !r.body["has_more"].as_bool().unwrap() {
            break;
        }
        after = r.body["last_id"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, expected);
    // Past the end: an empty page with null ids.
    let tail = app
        .get(&format!("{PROJECTS}?after={}", expected.last().unwrap()))
        .await;
    assert_eq!(tail.body["data"], json!([]));
    assert!(tail.body["first_id"].is_null() && tail.body["last_id"].is_null());
    assert_eq!(tail.body["has_more"], false);
}

#[tokio::test]
async fn bad_limits_and_cursors_are_400_naming_the_parameter() {
    let app = TestApp::new().await;
    for q in ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=2.5"] {
        let r = app.get(&format!("{PROJECTS}?{q}")).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.error()["param"], "limit", "{q}");
        assert_eq!(r.header("x-should-retry"), Some("false"));
    }
    assert_eq!(app.get(&format!("{PROJECTS}?limit=100")).await.status, 200);
    assert_eq!(app.get(&format!("{PROJECTS}?limit=1")).await.status, 200);
    let other = app.other_org("other").await;
    let foreign = app.send("GET", PROJECTS, Some(&other), None).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for after in [
        "proj_zzzzzzzzzzzzzzzzzzzzzzzzzz".to_owned(),
        "garbage".to_owned(),
        "svc_acct_zzzzzzzzzzzzzzzzzzzzzzzzzz".to_owned(),
        foreign,
    ] {
        let r = app.get(&format!("{PROJECTS}?after={after}")).await;
        assert_eq!(r.status, 400, "{after}: {}", r.text);
        assert_eq!(r.error()["param"], "after");
    }
}

#[tokio::test]
async fn unknown_and_foreign_projects_are_404() {
    let app = TestApp::new().await;
    let id = app.create_project("mine").await;
    let other = app.other_org("other").await;
    for (method, path) in [
        ("GET", format!("{PROJECTS}/{id}")),
        ("POST", format!("{PROJECTS}/{id}")),
        ("POST", format!("{PROJECTS}/{id}/archive")),
        ("GET", format!("{PROJECTS}/{id}/service_accounts")),
        ("POST", format!("{PROJECTS}/{id}/service_accounts")),
    ] {
        let r = app
            .send(method, &path, Some(&other), Some(r#"{"name":"x"}"#.into()))
            .await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        r.error();
    }
    assert_eq!(
        app.get(&format!("{PROJECTS}/{id}")).await.body["status"],
        "active"
    );
    for bad in [
        "proj_zzzzzzzzzzzzzzzzzzzzzzzzzz",
        "proj_",
        "nope",
        "proj_ABC",
    ] {
        let r = app.get(&format!("{PROJECTS}/{bad}")).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.header("x-should-retry"), Some("false"));
    }
}

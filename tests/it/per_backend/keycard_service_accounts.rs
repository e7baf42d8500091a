//! The Keycard dialect's `/organizations/{org}/service-accounts…` through the router,
//! in-process: organization resolution, validation in the Keycard envelope, CRUD, two-way
//! cursors, `expand`, `X-Client-Request-ID`, authentication, and the one model seen through
//! both dialects.

use crate::common::{is_kc_id, is_rfc3339_millis, kc_accounts, kc_credentials, TestApp, KC_ORG};
use serde_json::{json, Value};

const REQUEST_ID: &str = "123e4567-e89b-12d3-a456-426614174000";

fn sa() -> String {
    kc_accounts(KC_ORG)
}

fn one(id: &str) -> String {
    format!("{}/{id}", sa())
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A token for a fresh account+credential of the TestApp's organization.
async fn access_token(app: &TestApp) -> (String, String) {
    let acct = app.kc_create_account("token holder").await;
    let id = acct["id"].as_str().unwrap().to_owned();
    let cred = app.kc_create_credential(&id, "c").await;
    let token = app
        .kc_token(
            cred["client_id"].as_str().unwrap(),
            cred["client_secret"].as_str().unwrap(),
        )
        .await;
    (id, token)
}

// --- organization resolution -------------------------------------------------------------------

#[tokio::test]
async fn organization_by_id_and_by_label() {
    let app = TestApp::new().await;
    let org_id = app.org_id_of(&app.admin_key).await;
    let created = app.kc_create_account("a").await;
    let id = created["id"].as_str().unwrap();

    for org in [org_id.as_str(), "default"] {
        let r = app.get(&format!("{}/{id}", kc_accounts(org))).await;
        assert_eq!(r.status, 200, "{org}: {}", r.text);
        assert_eq!(r.body["id"], id);
        let r = app.get(&kc_accounts(org)).await;
        assert_eq!(r.status, 200, "{org}: {}", r.text);
        assert_eq!(ids(&r.body), vec![id.to_owned()]);
    }
    // Created by ID as well.
    let r = app
        .post(&kc_accounts(&org_id), json!({"name": "by id"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn another_or_unknown_organization_is_not_found() {
    let app = TestApp::new().await;
    let other_key = app.other_org("acme").await;
    let other_id = app.org_id_of(&other_key).await;
    // The other organization exists and works for its own key.
    let r = app
        .send("GET", &kc_accounts("acme"), Some(&other_key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    for org in [
        other_id.as_str(),
        "acme",
        "nosuchorg",
        "zzzzzzzzzzzzzzzzzzzzzzzzzz",
        // A NUL cannot be in a label (nor in PostgreSQL text): still just "not found".
        "acme%00",
    ] {
        let r = app.get(&kc_accounts(org)).await;
        assert_eq!(r.kc_error(404), "not_found", "{org}");
        let r = app.post(&kc_accounts(org), json!({"name": "x"})).await;
        assert_eq!(r.kc_error(404), "not_found", "{org}");
    }
    // Nothing was created anywhere.
    let mine = app.get(&sa()).await;
    assert!(ids(&mine.body).is_empty());
    let theirs = app
        .send("GET", &kc_accounts("acme"), Some(&other_key), None)
        .await;
    assert!(ids(&theirs.body).is_empty());
}

// --- create ------------------------------------------------------------------------------------

#[tokio::test]
async fn create_returns_201_in_the_documented_shape() {
    let app = TestApp::new().await;
    let r = app
        .post(
            &sa(),
            json!({"name": "Deploy bot", "description": "ships things"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = &r.body;
    assert!(is_kc_id(b["id"].as_str().unwrap()), "{}", r.text);
    assert_eq!(b["name"], "Deploy bot");
    assert_eq!(b["description"], "ships things");
    let created = b["created_at"].as_str().unwrap();
    assert!(is_rfc3339_millis(created), "{created}");
    assert_eq!(b["updated_at"], b["created_at"]);
    assert!(b.get("permissions").is_none());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));

    let r = app.post(&sa(), json!({"name": "No description"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("description").is_none(), "{}", r.text);
    assert!(is_rfc3339_millis(r.body["updated_at"].as_str().unwrap()));
    let again = app.get(&one(&r.id())).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, r.body);
}

#[tokio::test]
async fn create_validation_in_the_keycard_envelope() {
    let app = TestApp::new().await;
    let cases: Vec<(&str, String)> = vec![
        ("missing name", json!({"description": "d"}).to_string()),
        ("empty name", json!({"name": ""}).to_string()),
        ("name wrong type", json!({"name": 5}).to_string()),
        (
            "description 501 chars",
            json!({"name": "n", "description": "x".repeat(501)}).to_string(),
        ),
        ("malformed JSON", "{\"name\": ".to_owned()),
        ("not an object", "[1]".to_owned()),
    ];
    for (what, body) in cases {
        let r = app
            .send("POST", &sa(), Some(&app.admin_key), Some(body))
            .await;
        let code = r.kc_error(400);
        assert!(!code.is_empty(), "{what}");
    }
    // 500 is the limit, inclusive.
    let r = app
        .post(&sa(), json!({"name": "n", "description": "x".repeat(500)}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let big = json!({"name": "n", "description": "x".repeat(70 * 1024)}).to_string();
    let r = app
        .send("POST", &sa(), Some(&app.admin_key), Some(big))
        .await;
    r.kc_error(413);

    // Only the one valid account exists.
    assert_eq!(ids(&app.get(&sa()).await.body).len(), 1);
}

// --- retrieve / update / delete ----------------------------------------------------------------

#[tokio::test]
async fn retrieve_unknown_malformed_and_foreign_ids_are_not_found() {
    let app = TestApp::new().await;
    let other_key = app.other_org("acme").await;
    let theirs = app
        .send(
            "POST",
            &kc_accounts("acme"),
            Some(&other_key),
            Some(json!({"name": "theirs"}).to_string()),
        )
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    let their_id = theirs.id();

    for id in [
        "aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "not-an-id",
        "AAAAAAAAAAAAAAAAAAAAAAAAAA",
        their_id.as_str(),
    ] {
        let r = app.get(&one(id)).await;
        assert_eq!(r.kc_error(404), "not_found", "{id}");
        let r = app.patch(&one(id), json!({"name": "x"})).await;
        assert_eq!(r.kc_error(404), "not_found", "{id}");
        let r = app.delete(&one(id)).await;
        assert_eq!(r.kc_error(404), "not_found", "{id}");
    }
    // Theirs is untouched.
    let r = app
        .send(
            "GET",
            &format!("{}/{their_id}", kc_accounts("acme")),
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "theirs");
}

#[tokio::test]
async fn patch_changes_only_the_given_fields() {
    let app = TestApp::new().await;
    let created = app
        .post(&sa(), json!({"name": "orig", "description": "first"}))
        .await;
    let id = created.id();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // {} changes nothing, updated_at included.
    let r = app.patch(&one(&id), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, created.body);

    let r = app.patch(&one(&id), json!({"name": "renamed"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["description"], "first");
    assert_eq!(r.body["created_at"], created.body["created_at"]);
    assert!(is_rfc3339_millis(r.body["updated_at"].as_str().unwrap()));
    assert_ne!(r.body["updated_at"], created.body["updated_at"]);

    let r = app.patch(&one(&id), json!({"description": "second"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["description"], "second");

    let r = app.patch(&one(&id), json!({"description": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("description").is_none(), "{}", r.text);
    assert_eq!(r.body["name"], "renamed");

    let got = app.get(&one(&id)).await;
    assert_eq!(got.body, r.body);

    // Invalid changes are refused and change nothing.
    for body in [
        json!({"name": ""}),
        json!({"name": 1}),
        json!({"description": "x".repeat(501)}),
    ] {
        let bad = app.patch(&one(&id), body).await;
        bad.kc_error(400);
    }
    assert_eq!(app.get(&one(&id)).await.body, r.body);
}

#[tokio::test]
async fn delete_is_204_then_not_found() {
    let app = TestApp::new().await;
    let id = app.post(&sa(), json!({"name": "doomed"})).await.id();
    let keep = app.post(&sa(), json!({"name": "kept"})).await.id();
    let r = app.delete(&one(&id)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    let r = app.get(&one(&id)).await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app.delete(&one(&id)).await;
    assert_eq!(r.kc_error(404), "not_found");
    assert_eq!(ids(&app.get(&sa()).await.body), vec![keep]);
}

#[tokio::test]
async fn delete_accepts_a_json_content_type_without_body() {
    // The SDK sends Content-Type: application/json on body-less DELETE.
    let app = TestApp::new().await;
    let id = app.post(&sa(), json!({"name": "doomed"})).await.id();
    let r = app
        .request(
            "DELETE",
            &one(&id),
            Some(&app.admin_key),
            &[("accept", "*/*")],
            Some(("application/json", vec![])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

// --- list --------------------------------------------------------------------------------------

#[tokio::test]
async fn list_limits() {
    let app = TestApp::new().await;
    for i in 0..22 {
        app.kc_create_account(&format!("a{i}")).await;
    }
    let r = app.get(&sa()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body).len(), 20);
    let pi = &r.body["page_info"];
    assert_eq!(pi["has_next_page"], true);
    assert_eq!(pi["has_prev_page"], false);
    assert!(pi["start_cursor"].is_string() && pi["end_cursor"].is_string());
    assert!(r.body.get("permissions").is_none());
    for item in r.body["items"].as_array().unwrap() {
        assert!(item.get("permissions").is_none());
    }

    let r = app.get(&format!("{}?limit=100", sa())).await;
    assert_eq!(ids(&r.body).len(), 22);
    assert_eq!(r.body["page_info"]["has_next_page"], false);

    for bad in ["0", "101", "x", "-1", "1.5"] {
        let r = app.get(&format!("{}?limit={bad}", sa())).await;
        r.kc_error(400);
    }
}

#[tokio::test]
async fn empty_list_has_no_cursors() {
    let app = TestApp::new().await;
    let r = app.get(&sa()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"items": [], "page_info": {"has_next_page": false, "has_prev_page": false}})
    );
}

#[tokio::test]
async fn walk_forward_then_backward_exactly_once() {
    let app = TestApp::new().await;
    let mut all = vec![];
    for i in 0..13 {
        all.push(
            app.kc_create_account(&format!("acct {i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Forward.
    let mut seen = vec![];
    let mut url = format!("{}?limit=5", sa());
    let mut pages = vec![];
    loop {
        let r = app.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = ids(&r.body);
        let pi = r.body["page_info"].clone();
        pages.push((page.clone(), pi.clone()));
        seen.extend(page);
        if pi["has_next_page"] == false {
            break;
        }
        url = format!(
            "{}?limit=5&after={}",
            sa(),
            pi["end_cursor"].as_str().unwrap()
        );
        assert!(pages.len() < 10, "runaway paging");
    }
    assert_eq!(seen, all);
    assert_eq!(
        pages.iter().map(|p| p.0.len()).collect::<Vec<_>>(),
        vec![5, 5, 3]
    );
    let flags: Vec<(bool, bool)> = pages
        .iter()
        .map(|(_, pi)| {
            (
                pi["has_prev_page"].as_bool().unwrap(),
                pi["has_next_page"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, vec![(false, true), (true, true), (true, false)]);
    let (last_page, last_pi) = pages.last().unwrap().clone();

    // Backward from the end: before the last item, until the start.
    let mut back: Vec<Vec<String>> = vec![vec![last_page.last().unwrap().clone()]];
    let mut before = last_pi["end_cursor"].as_str().unwrap().to_owned();
    let mut back_flags = vec![];
    loop {
        let r = app.get(&format!("{}?limit=5&before={before}", sa())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = ids(&r.body);
        let pi = &r.body["page_info"];
        back_flags.push((
            pi["has_prev_page"].as_bool().unwrap(),
            pi["has_next_page"].as_bool().unwrap(),
        ));
        back.push(page);
        if pi["has_prev_page"] == false {
            break;
        }
        before = pi["start_cursor"].as_str().unwrap().to_owned();
        assert!(back.len() < 10, "runaway paging");
    }
    assert_eq!(
        back.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1, 5, 5, 2]
    );
    assert_eq!(back_flags, vec![(true, true), (true, true), (false, true)]);
    let mut backward: Vec<String> = back.into_iter().rev().flatten().collect();
    assert_eq!(backward, all);
    backward.sort();
    backward.dedup();
    assert_eq!(backward.len(), 13);

    // Before the very first item: nothing, with a next page.
    let first = app.get(&format!("{}?limit=5", sa())).await;
    let start = first.body["page_info"]["start_cursor"].as_str().unwrap();
    let r = app.get(&format!("{}?limit=5&before={start}", sa())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(ids(&r.body).is_empty());
    assert_eq!(r.body["page_info"]["has_next_page"], true);
    assert_eq!(r.body["page_info"]["has_prev_page"], false);
}

#[tokio::test]
async fn forged_foreign_and_conflicting_cursors_are_refused() {
    let app = TestApp::new().await;
    let mut mine = vec![];
    for i in 0..4 {
        mine.push(
            app.kc_create_account(&format!("m{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = app.get(&format!("{}?limit=2", sa())).await;
    let end = page.body["page_info"]["end_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = page.body["page_info"]["start_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Sanity: the genuine cursor works.
    let ok = app.get(&format!("{}?limit=2&after={end}", sa())).await;
    assert_eq!(ids(&ok.body), mine[2..].to_vec());

    // Flip one character in the middle (stays in the base64url alphabet).
    let mut forged: Vec<char> = end.chars().collect();
    let mid = forged.len() / 2;
    forged[mid] = if forged[mid] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();

    // Another organization's list cursor.
    let other_key = app.other_org("acme").await;
    for i in 0..3 {
        app.send(
            "POST",
            &kc_accounts("acme"),
            Some(&other_key),
            Some(json!({"name": format!("t{i}")}).to_string()),
        )
        .await;
    }
    let theirs = app
        .send(
            "GET",
            &format!("{}?limit=1", kc_accounts("acme")),
            Some(&other_key),
            None,
        )
        .await;
    let foreign = theirs.body["page_info"]["end_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    // A credentials-list cursor.
    for i in 0..3 {
        app.kc_create_credential(&mine[0], &format!("c{i}")).await;
    }
    let creds = app
        .get(&format!("{}?limit=1", kc_credentials(KC_ORG, &mine[0])))
        .await;
    assert_eq!(creds.status, 200, "{}", creds.text);
    let cred_cursor = creds.body["page_info"]["end_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    for (what, cursor) in [
        ("forged", forged.as_str()),
        ("foreign", foreign.as_str()),
        ("credentials", cred_cursor.as_str()),
        ("garbage", "not-a-cursor"),
        ("raw id", mine[1].as_str()),
    ] {
        for dir in ["after", "before"] {
            let r = app.get(&format!("{}?{dir}={cursor}", sa())).await;
            assert_eq!(r.kc_error(400), "invalid_cursor", "{what} {dir}");
        }
    }

    let r = app
        .get(&format!("{}?after={end}&before={start}", sa()))
        .await;
    r.kc_error(400);
}

#[tokio::test]
async fn a_deleted_accounts_cursor_still_works() {
    let app = TestApp::new().await;
    let mut all = vec![];
    for i in 0..6 {
        all.push(
            app.kc_create_account(&format!("d{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = app.get(&format!("{}?limit=3", sa())).await;
    let end = page.body["page_info"]["end_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let start_of_second = app.get(&format!("{}?limit=3&after={end}", sa())).await.body["page_info"]
        ["start_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Delete the item the `after` cursor names and the one the `before` cursor names.
    assert_eq!(app.delete(&one(&all[2])).await.status, 204);
    assert_eq!(app.delete(&one(&all[3])).await.status, 204);

    let r = app.get(&format!("{}?limit=3&after={end}", sa())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), all[4..].to_vec());
    assert_eq!(r.body["page_info"]["has_next_page"], false);
    assert_eq!(r.body["page_info"]["has_prev_page"], true);

    let r = app
        .get(&format!("{}?limit=3&before={start_of_second}", sa()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), all[..2].to_vec());
    assert_eq!(r.body["page_info"]["has_prev_page"], false);
    assert_eq!(r.body["page_info"]["has_next_page"], true);
}

// --- expand ------------------------------------------------------------------------------------

fn admin_permissions() -> Value {
    let all = json!({"read": true, "list": true, "create": true, "update": true, "delete": true});
    json!({"service_accounts": all, "credentials": all})
}

#[tokio::test]
async fn expand_permissions_on_retrieve_and_list() {
    let app = TestApp::new().await;
    let id = app.kc_create_account("x").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for q in [
        "expand=permissions",
        "expand[]=permissions",
        "expand%5B%5D=permissions",
        "expand=total_count&expand=permissions",
        "expand=total_count,permissions",
    ] {
        let r = app.get(&format!("{}?{q}", one(&id))).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert_eq!(r.body["permissions"], admin_permissions(), "{q}");
        let r = app.get(&format!("{}?{q}", sa())).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert_eq!(r.body["permissions"], admin_permissions(), "{q}");
        assert_eq!(
            r.body["items"][0]["permissions"],
            admin_permissions(),
            "{q}"
        );
    }
    for q in [
        "",
        "?expand=total_count",
        "?expand=nonsense",
        "?expand[]=total_count",
    ] {
        let r = app.get(&format!("{}{q}", one(&id))).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert!(r.body.get("permissions").is_none(), "{q}: {}", r.text);
        let r = app.get(&format!("{}{q}", sa())).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert!(r.body.get("permissions").is_none(), "{q}: {}", r.text);
        assert!(r.body["items"][0].get("permissions").is_none(), "{q}");
    }
}

// --- one model, two views ----------------------------------------------------------------------

#[tokio::test]
async fn openai_accounts_show_in_keycard_and_keycard_changes_show_in_openai() {
    let app = TestApp::new().await;
    let project = app.create_project("proj").await;
    let (oa_id, key, _) = app.create_account(&project, "from openai").await;
    let raw = oa_id.strip_prefix("svc_acct_").unwrap().to_owned();
    let openai_one = format!("/v1/organization/projects/{project}/service_accounts/{oa_id}");

    let list = app.get(&sa()).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let item = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == raw.as_str())
        .unwrap_or_else(|| panic!("OpenAI-created account missing: {}", list.text))
        .clone();
    assert_eq!(item["name"], "from openai");
    assert!(is_rfc3339_millis(item["created_at"].as_str().unwrap()));

    // Renamed through Keycard, seen through OpenAI.
    let r = app
        .patch(&one(&raw), json!({"name": "renamed in keycard"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get(&openai_one).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "renamed in keycard");

    // Its key works until the account is deleted through Keycard.
    let check = app.send("GET", "/v1/auth/check", Some(&key), None).await;
    assert_eq!(check.status, 204, "{}", check.text);
    let r = app.delete(&one(&raw)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app.get(&openai_one).await;
    assert_eq!(r.status, 404, "{}", r.text);
    r.error();
    let check = app.send("GET", "/v1/auth/check", Some(&key), None).await;
    assert_eq!(check.status, 401, "{}", check.text);
}

#[tokio::test]
async fn keycard_accounts_are_in_no_project() {
    let app = TestApp::new().await;
    let project = app.create_project("proj").await;
    let (in_project, _, _) = app.create_account(&project, "project one").await;
    let kc = app.kc_create_account("org wide").await;
    let kc_id = kc["id"].as_str().unwrap().to_owned();

    let projects = app.get("/v1/organization/projects?limit=100").await;
    assert_eq!(projects.status, 200, "{}", projects.text);
    let mut project_ids: Vec<String> = projects.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        project_ids.len() >= 2,
        "default project and ours: {}",
        projects.text
    );
    project_ids.dedup();
    let mut seen_project_account = false;
    for p in project_ids {
        let r = app
            .get(&format!(
                "/v1/organization/projects/{p}/service_accounts?limit=100"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        for a in r.body["data"].as_array().unwrap() {
            assert_ne!(a["id"], format!("svc_acct_{kc_id}"), "{}", r.text);
            seen_project_account |= a["id"] == in_project.as_str();
        }
        let r = app
            .get(&format!(
                "/v1/organization/projects/{p}/service_accounts/svc_acct_{kc_id}"
            ))
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
    }
    assert!(seen_project_account);
    // Both are in the Keycard list.
    let list = ids(&app.get(&sa()).await.body);
    assert!(list.contains(&kc_id));
    assert!(list.contains(&in_project.strip_prefix("svc_acct_").unwrap().to_owned()));
}

// --- X-Client-Request-ID -----------------------------------------------------------------------

#[tokio::test]
async fn client_request_id_is_echoed_and_checked() {
    let app = TestApp::new().await;
    let h = [("x-client-request-id", REQUEST_ID)];
    let body = || {
        Some((
            "application/json",
            json!({"name": "r"}).to_string().into_bytes(),
        ))
    };

    let r = app
        .request("POST", &sa(), Some(&app.admin_key), &h, body())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));

    let r = app
        .request("GET", &sa(), Some(&app.admin_key), &h, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));

    // Echoed on errors too.
    let r = app
        .request(
            "GET",
            &one("aaaaaaaaaaaaaaaaaaaaaaaaaa"),
            Some(&app.admin_key),
            &h,
            None,
        )
        .await;
    r.kc_error(404);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));
    let r = app.request("GET", &sa(), None, &h, None).await;
    r.kc_error(401);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));
    let r = app
        .request(
            "GET",
            &format!("{}?limit=0", sa()),
            Some(&app.admin_key),
            &h,
            None,
        )
        .await;
    r.kc_error(400);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));

    // Upper case is a UUID as well.
    let upper = REQUEST_ID.to_uppercase();
    let r = app
        .request(
            "GET",
            &sa(),
            Some(&app.admin_key),
            &[("x-client-request-id", &upper)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-client-request-id"), Some(upper.as_str()));

    for bad in ["not-a-uuid", "123e4567e89b12d3a456426614174000", ""] {
        let r = app
            .request(
                "POST",
                &sa(),
                Some(&app.admin_key),
                &[("x-client-request-id", bad)],
                body(),
            )
            .await;
        assert_eq!(r.kc_error(400), "invalid_request_id", "{bad:?}");
    }
    // The refused requests created nothing.
    assert_eq!(ids(&app.get(&sa()).await.body).len(), 1);
}

// --- authentication ----------------------------------------------------------------------------

#[tokio::test]
async fn missing_or_bad_credentials_are_401_in_the_envelope() {
    let app = TestApp::new().await;
    let project = app.create_project("p").await;
    let (_, svc_key, _) = app.create_account(&project, "svc").await;

    let r = app.send("GET", &sa(), None, None).await;
    assert_eq!(r.kc_error(401), "unauthorized");
    assert!(r.header("www-authenticate").is_some());

    for key in [
        "sk-admin-nope",
        "garbage",
        svc_key.as_str(),
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
    ] {
        let r = app.send("GET", &sa(), Some(key), None).await;
        assert_eq!(r.kc_error(401), "unauthorized", "{key}");
        let r = app
            .send(
                "POST",
                &sa(),
                Some(key),
                Some(json!({"name": "x"}).to_string()),
            )
            .await;
        assert_eq!(r.kc_error(401), "unauthorized", "{key}");
    }
    let r = app
        .request(
            "GET",
            &sa(),
            None,
            &[("authorization", "Basic Zm9vOmJhcg==")],
            None,
        )
        .await;
    r.kc_error(401);
}

#[tokio::test]
async fn access_tokens_may_read_but_not_write() {
    let app = TestApp::new().await;
    let (own_id, token) = access_token(&app).await;
    let other = app.kc_create_account("other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(token.as_str());

    let r = app.send("GET", &sa(), t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), vec![own_id.clone(), other.clone()]);
    let r = app.send("GET", &one(&other), t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "other");

    let r = app
        .send(
            "GET",
            &format!("{}?expand=permissions", one(&other)),
            t,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body["permissions"]["service_accounts"];
    assert_eq!(p["read"], true, "{}", r.text);
    assert_eq!(p["list"], true);
    assert_eq!(p["create"], false);
    assert_eq!(p["update"], false);
    assert_eq!(p["delete"], false);
    let r = app
        .send("GET", &format!("{}?expand=permissions", sa()), t, None)
        .await;
    assert_eq!(r.body["permissions"]["service_accounts"]["read"], true);
    assert_eq!(r.body["permissions"]["service_accounts"]["update"], false);
    assert_eq!(r.body["permissions"]["credentials"]["delete"], false);

    let r = app
        .send("POST", &sa(), t, Some(json!({"name": "nope"}).to_string()))
        .await;
    assert_eq!(r.kc_error(403), "forbidden");
    let r = app
        .send(
            "PATCH",
            &one(&other),
            t,
            Some(json!({"name": "nope"}).to_string()),
        )
        .await;
    assert_eq!(r.kc_error(403), "forbidden");
    let r = app.send("DELETE", &one(&other), t, None).await;
    assert_eq!(r.kc_error(403), "forbidden");
    let r = app.send("DELETE", &one(&own_id), t, None).await;
    assert_eq!(r.kc_error(403), "forbidden");

    // Nothing changed.
    let r = app.get(&sa()).await;
    assert_eq!(ids(&r.body), vec![own_id, other.clone()]);
    assert_eq!(app.get(&one(&other)).await.body["name"], "other");

    // The token is for its own organization only.
    app.other_org("acme").await;
    let r = app.send("GET", &kc_accounts("acme"), t, None).await;
    assert_eq!(r.kc_error(404), "not_found");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = TestApp::new().await;
    let r = app.send("PUT", &sa(), Some(&app.admin_key), None).await;
    r.kc_error(405);
    let r = app
        .get(&format!("{}/aaaaaaaaaaaaaaaaaaaaaaaaaa/nothing", sa()))
        .await;
    r.kc_error(404);
}

#[tokio::test]
async fn names_are_trimmed_and_bounded() {
    let app = TestApp::new().await;
    let r = app.post(&sa(), json!({"name": "  padded  "})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "padded");
    for name in ["   ", &"n".repeat(257)] {
        let r = app.post(&sa(), json!({"name": name})).await;
        r.kc_error(400);
    }
    let r = app.post(&sa(), json!({"name": "n".repeat(256)})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A blank description is no description.
    let r = app
        .post(&sa(), json!({"name": "b", "description": "  "}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("description").is_none(), "{}", r.text);
}

#[tokio::test]
async fn percent_encoded_path_segments() {
    let app = TestApp::new().await;
    let id = app.kc_create_account("enc").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // "default" with its 'a' percent-encoded; the id with its first character encoded.
    let first = id.as_bytes()[0];
    let encoded_id = format!("%{first:02X}{}", &id[1..]);
    let r = app
        .get(&format!(
            "/organizations/def%61ult/service-accounts/{encoded_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
}

#[tokio::test]
async fn client_request_id_on_unknown_routes_and_methods() {
    let app = TestApp::new().await;
    let h = [("x-client-request-id", REQUEST_ID)];
    let r = app
        .request("PUT", &sa(), Some(&app.admin_key), &h, None)
        .await;
    r.kc_error(405);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));
    let r = app
        .request(
            "GET",
            &format!("{}/x/y/z/w", sa()),
            Some(&app.admin_key),
            &h,
            None,
        )
        .await;
    r.kc_error(404);
    assert_eq!(r.header("x-client-request-id"), Some(REQUEST_ID));
}

#[tokio::test]
async fn deleting_through_openai_removes_credentials_and_tokens() {
    let app = TestApp::new().await;
    let project = app.create_project("proj").await;
    let (oa_id, _, _) = app.create_account(&project, "both").await;
    let raw = oa_id.strip_prefix("svc_acct_").unwrap().to_owned();
    let cred = app.kc_create_credential(&raw, "c").await;
    let (client_id, secret) = (
        cred["client_id"].as_str().unwrap().to_owned(),
        cred["client_secret"].as_str().unwrap().to_owned(),
    );
    let token = app.kc_token(&client_id, &secret).await;
    assert_eq!(
        app.send("GET", "/v1/auth/check", Some(&token), None)
            .await
            .status,
        204
    );
    let r = app
        .delete(&format!(
            "/v1/organization/projects/{project}/service_accounts/{oa_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get(&one(&raw)).await.kc_error(404), "not_found");
    let r = app.send("GET", "/v1/auth/check", Some(&token), None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app
        .token_request("grant_type=client_credentials", Some((&client_id, &secret)))
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
}

#[tokio::test]
async fn archiving_the_project_stops_its_accounts_tokens() {
    let app = TestApp::new().await;
    let project = app.create_project("proj").await;
    let (oa_id, _, _) = app.create_account(&project, "archived soon").await;
    let raw = oa_id.strip_prefix("svc_acct_").unwrap().to_owned();
    let cred = app.kc_create_credential(&raw, "c").await;
    let token = app
        .kc_token(
            cred["client_id"].as_str().unwrap(),
            cred["client_secret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        app.send("GET", "/v1/auth/check", Some(&token), None)
            .await
            .status,
        204
    );
    let r = app
        .post(
            &format!("/v1/organization/projects/{project}/archive"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.send("GET", "/v1/auth/check", Some(&token), None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app.send("GET", &sa(), Some(&token), None).await;
    r.kc_error(401);
}

//! The Keycard dialect's `…/service-accounts/{id}/credentials…` through the router, in-process.

use crate::common::{is_kc_id, is_rfc3339_millis, kc_accounts, kc_credentials, TestApp, KC_ORG};
use serde_json::{json, Value};

fn creds(account: &str) -> String {
    kc_credentials(KC_ORG, account)
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn is_base62(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn account(app: &TestApp, name: &str) -> String {
    app.kc_create_account(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn create_returns_the_secret_once() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let r = app
        .post(
            &creds(&acct),
            json!({"name": "ci", "description": "for CI"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = &r.body;
    let id = b["id"].as_str().unwrap();
    assert!(is_kc_id(id), "{}", r.text);
    let client_id = b["client_id"].as_str().unwrap();
    let secret = b["client_secret"].as_str().unwrap();
    assert!(is_base62(client_id, 21), "{client_id}");
    assert!(is_base62(secret, 64), "{secret}");
    assert_eq!(b["name"], "ci");
    assert_eq!(b["description"], "for CI");
    assert!(is_rfc3339_millis(b["created_at"].as_str().unwrap()));
    assert!(b.get("last_used_at").is_none());
    assert!(b.get("updated_at").is_none());

    let got = app.get(&format!("{}/{id}", creds(&acct))).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert!(got.body.get("client_secret").is_none(), "{}", got.text);
    assert!(!got.text.contains(secret));
    assert!(got.body.get("last_used_at").is_none(), "{}", got.text);
    assert!(got.body.get("updated_at").is_none(), "{}", got.text);
    assert!(got.body.get("permissions").is_none());
    assert_eq!(got.body["client_id"], client_id);
    assert_eq!(got.body["created_at"], b["created_at"]);
    assert_eq!(got.body["description"], "for CI");

    let list = app.get(&creds(&acct)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(ids(&list.body), vec![id.to_owned()]);
    assert!(!list.text.contains(secret));
    assert!(list.body["items"][0].get("client_secret").is_none());
    assert!(list.body["items"][0].get("last_used_at").is_none());

    // Without a description.
    let r = app.post(&creds(&acct), json!({"name": "plain"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("description").is_none());
    // Each credential has its own client id and secret.
    assert_ne!(r.body["client_id"], client_id);
    assert_ne!(r.body["client_secret"], secret);
}

#[tokio::test]
async fn last_used_at_appears_once_a_token_was_issued() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let c = app.kc_create_credential(&acct, "c").await;
    let id = c["id"].as_str().unwrap();
    app.kc_token(
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    )
    .await;
    app.service.flush_credential_usage().await.unwrap();
    let got = app.get(&format!("{}/{id}", creds(&acct))).await;
    assert_eq!(got.status, 200, "{}", got.text);
    let used = got.body["last_used_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no last_used_at: {}", got.text));
    assert!(is_rfc3339_millis(used), "{used}");
    let list = app.get(&creds(&acct)).await;
    assert_eq!(list.body["items"][0]["last_used_at"], used);
}

#[tokio::test]
async fn create_validation() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": 7}),
        json!({"name": "n", "description": "x".repeat(501)}),
    ] {
        let r = app.post(&creds(&acct), body.clone()).await;
        r.kc_error(400);
    }
    let r = app
        .send(
            "POST",
            &creds(&acct),
            Some(&app.admin_key),
            Some("{".into()),
        )
        .await;
    r.kc_error(400);
    let big = json!({"name": "n", "description": "x".repeat(70 * 1024)}).to_string();
    let r = app
        .send("POST", &creds(&acct), Some(&app.admin_key), Some(big))
        .await;
    r.kc_error(413);
    assert!(ids(&app.get(&creds(&acct)).await.body).is_empty());
}

#[tokio::test]
async fn update_and_delete() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let c = app
        .post(&creds(&acct), json!({"name": "orig", "description": "d"}))
        .await;
    assert_eq!(c.status, 201);
    let id = c.id();
    let url = format!("{}/{id}", creds(&acct));
    let before = app.get(&url).await.body;

    let r = app.patch(&url, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, before);

    let r = app.patch(&url, json!({"name": "renamed"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["description"], "d");
    assert_eq!(r.body["client_id"], before["client_id"]);
    assert!(r.body.get("client_secret").is_none());

    let r = app.patch(&url, json!({"description": "new"})).await;
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["description"], "new");

    let r = app.patch(&url, json!({"description": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("description").is_none(), "{}", r.text);
    assert_eq!(app.get(&url).await.body, r.body);

    let r = app.patch(&url, json!({"name": ""})).await;
    r.kc_error(400);

    let r = app.delete(&url).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    let r = app.get(&url).await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app.delete(&url).await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app.patch(&url, json!({"name": "x"})).await;
    assert_eq!(r.kc_error(404), "not_found");
    assert!(ids(&app.get(&creds(&acct)).await.body).is_empty());
}

#[tokio::test]
async fn another_accounts_or_organizations_credential_is_not_found() {
    let app = TestApp::new().await;
    let a = account(&app, "a").await;
    let b = account(&app, "b").await;
    let ca = app.kc_create_credential(&a, "of a").await;
    let ca_id = ca["id"].as_str().unwrap();

    // a's credential under b's path.
    let url = format!("{}/{ca_id}", creds(&b));
    assert_eq!(app.get(&url).await.kc_error(404), "not_found");
    assert_eq!(
        app.patch(&url, json!({"name": "x"})).await.kc_error(404),
        "not_found"
    );
    assert_eq!(app.delete(&url).await.kc_error(404), "not_found");
    assert!(ids(&app.get(&creds(&b)).await.body).is_empty());

    // Unknown and malformed ids.
    for id in ["aaaaaaaaaaaaaaaaaaaaaaaaaa", "nope"] {
        let r = app.get(&format!("{}/{id}", creds(&a))).await;
        assert_eq!(r.kc_error(404), "not_found", "{id}");
    }
    // Unknown or malformed account.
    for acct in ["aaaaaaaaaaaaaaaaaaaaaaaaaa", "nope"] {
        let r = app.get(&creds(acct)).await;
        assert_eq!(r.kc_error(404), "not_found", "{acct}");
        let r = app.post(&creds(acct), json!({"name": "x"})).await;
        assert_eq!(r.kc_error(404), "not_found", "{acct}");
        let r = app.get(&format!("{}/{ca_id}", creds(acct))).await;
        assert_eq!(r.kc_error(404), "not_found", "{acct}");
    }

    // Another organization cannot see it, by its own label or by ours.
    let other = app.other_org("acme").await;
    let r = app
        .send(
            "GET",
            &format!("{}/{ca_id}", kc_credentials("acme", &a)),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app
        .send("GET", &format!("{}/{ca_id}", creds(&a)), Some(&other), None)
        .await;
    assert_eq!(r.kc_error(404), "not_found");

    // Still there for us.
    assert_eq!(app.get(&format!("{}/{ca_id}", creds(&a))).await.status, 200);
}

#[tokio::test]
async fn list_pages_both_ways() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let other = account(&app, "b").await;
    app.kc_create_credential(&other, "noise").await;
    let mut all = vec![];
    for i in 0..7 {
        all.push(
            app.kc_create_credential(&acct, &format!("c{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = app.get(&creds(&acct)).await;
    assert_eq!(ids(&r.body), all);

    let mut seen = vec![];
    let mut url = format!("{}?limit=3", creds(&acct));
    let mut flags = vec![];
    let mut last_end;
    loop {
        let r = app.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        seen.extend(ids(&r.body));
        let pi = &r.body["page_info"];
        flags.push((pi["has_prev_page"] == true, pi["has_next_page"] == true));
        last_end = pi["end_cursor"].as_str().unwrap().to_owned();
        if pi["has_next_page"] == false {
            break;
        }
        url = format!("{}?limit=3&after={last_end}", creds(&acct));
        assert!(flags.len() < 10);
    }
    assert_eq!(seen, all);
    assert_eq!(flags, vec![(false, true), (true, true), (true, false)]);

    // Backward from before the last.
    let mut back = vec![vec![all[6].clone()]];
    let mut before = last_end;
    let mut flags = vec![];
    loop {
        let r = app
            .get(&format!("{}?limit=3&before={before}", creds(&acct)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        back.push(ids(&r.body));
        let pi = &r.body["page_info"];
        flags.push((pi["has_prev_page"] == true, pi["has_next_page"] == true));
        if pi["has_prev_page"] == false {
            break;
        }
        before = pi["start_cursor"].as_str().unwrap().to_owned();
        assert!(flags.len() < 10);
    }
    assert_eq!(flags, vec![(true, true), (false, true)]);
    let backward: Vec<String> = back.into_iter().rev().flatten().collect();
    assert_eq!(backward, all);

    // Limits and cursor checks.
    for bad in ["0", "101", "x"] {
        app.get(&format!("{}?limit={bad}", creds(&acct)))
            .await
            .kc_error(400);
    }
    // A cursor of another account's credentials list, and of the accounts list.
    app.kc_create_credential(&other, "noise 2").await;
    let theirs = app.get(&format!("{}?limit=1", creds(&other))).await;
    let foreign = theirs.body["page_info"]["end_cursor"].as_str().unwrap();
    for i in 0..2 {
        app.kc_create_account(&format!("x{i}")).await;
    }
    let accts = app.get(&format!("{}?limit=1", kc_accounts(KC_ORG))).await;
    let acct_cursor = accts.body["page_info"]["end_cursor"].as_str().unwrap();
    for cursor in [foreign, acct_cursor] {
        let r = app.get(&format!("{}?after={cursor}", creds(&acct))).await;
        assert_eq!(r.kc_error(400), "invalid_cursor");
    }
    let r = app
        .get(&format!(
            "{}?after={foreign}&before={foreign}",
            creds(&acct)
        ))
        .await;
    r.kc_error(400);
}

#[tokio::test]
async fn expand_permissions_on_credentials() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let c = app.kc_create_credential(&acct, "c").await;
    let id = c["id"].as_str().unwrap();
    for q in ["expand=permissions", "expand[]=permissions"] {
        let r = app.get(&format!("{}/{id}?{q}", creds(&acct))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["permissions"]["credentials"]["delete"], true, "{q}");
        let r = app.get(&format!("{}?{q}", creds(&acct))).await;
        assert_eq!(r.body["permissions"]["credentials"]["create"], true, "{q}");
        assert_eq!(
            r.body["items"][0]["permissions"]["credentials"]["read"],
            true
        );
    }
    let r = app
        .get(&format!("{}/{id}?expand=total_count", creds(&acct)))
        .await;
    assert!(r.body.get("permissions").is_none());
}

#[tokio::test]
async fn credentials_of_a_deleted_account() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let c = app.kc_create_credential(&acct, "c").await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("{}/{acct}", kc_accounts(KC_ORG)))
            .await
            .status,
        204
    );
    let r = app.post(&creds(&acct), json!({"name": "late"})).await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app.get(&creds(&acct)).await;
    assert_eq!(r.kc_error(404), "not_found");
    let r = app.get(&format!("{}/{id}", creds(&acct))).await;
    assert_eq!(r.kc_error(404), "not_found");
}

#[tokio::test]
async fn access_tokens_read_credentials_but_do_not_manage_them() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let c = app.kc_create_credential(&acct, "c").await;
    let id = c["id"].as_str().unwrap();
    let token = app
        .kc_token(
            c["client_id"].as_str().unwrap(),
            c["client_secret"].as_str().unwrap(),
        )
        .await;
    let t = Some(token.as_str());
    let url = format!("{}/{id}", creds(&acct));

    let r = app.send("GET", &creds(&acct), t, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), vec![id.to_owned()]);
    let r = app
        .send("GET", &format!("{url}?expand=permissions"), t, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["permissions"]["credentials"]["read"], true);
    assert_eq!(r.body["permissions"]["credentials"]["update"], false);
    assert_eq!(r.body["permissions"]["credentials"]["delete"], false);
    assert!(r.body.get("client_secret").is_none());

    let r = app
        .send(
            "POST",
            &creds(&acct),
            t,
            Some(json!({"name": "n"}).to_string()),
        )
        .await;
    assert_eq!(r.kc_error(403), "forbidden");
    let r = app
        .send("PATCH", &url, t, Some(json!({"name": "n"}).to_string()))
        .await;
    assert_eq!(r.kc_error(403), "forbidden");
    let r = app.send("DELETE", &url, t, None).await;
    assert_eq!(r.kc_error(403), "forbidden");
    assert_eq!(app.get(&url).await.body["name"], "c");
}

#[tokio::test]
async fn client_secrets_are_not_stored() {
    let app = TestApp::new().await;
    let acct = account(&app, "a").await;
    let mut secrets = vec![];
    for i in 0..3 {
        let c = app.kc_create_credential(&acct, &format!("c{i}")).await;
        secrets.push(c["client_secret"].as_str().unwrap().to_owned());
        // Used once, so usage bookkeeping has written too.
        app.kc_token(c["client_id"].as_str().unwrap(), &secrets[i])
            .await;
    }
    app.service.flush_credential_usage().await.unwrap();
    let dump = app.backing.dump().await;
    assert!(!dump.is_empty());
    for s in &secrets {
        assert!(
            !dump.windows(s.len()).any(|w| w == s.as_bytes()),
            "a client secret is stored in plaintext ({:?})",
            app.backing.backend
        );
    }
    // The client ids, by contrast, are stored (proves the dump sees the credentials).
    let c = app.get(&creds(&acct)).await;
    let client_id = c.body["items"][0]["client_id"].as_str().unwrap();
    assert!(dump
        .windows(client_id.len())
        .any(|w| w == client_id.as_bytes()));
}

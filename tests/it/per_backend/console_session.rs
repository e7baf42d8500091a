//! The console's session endpoints (`/console/api/session`) and the session cookie on the
//! public API: sign-in with good and bad keys, the cookie's flags (with and without TLS),
//! CSRF refusals, tampered and unknown cookies, fixation, idle and absolute expiry, sign-out,
//! sessions ended by their admin key's revocation or disabling, read-only sessions, audit,
//! and sessions shared by nodes on one store.

use serde_json::{json, Value};

use crate::common::{Resp, TestApp};
use keyplane::domain::time::Clock;
use keyplane::http::{router, AppState};
use keyplane::service::{ConsoleSettings, Service};

const SESSION: &str = "/console/api/session";

/// A signed-in console: its cookie header and anti-CSRF token.
struct Console {
    cookie: String,
    csrf: String,
    body: Value,
}

fn cookie_of(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_owned()
}

async fn sign_in_raw(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> Resp {
    let body = json!({ "admin_key": key }).to_string().into_bytes();
    app.request(
        "POST",
        SESSION,
        None,
        extra,
        Some(("application/json", body)),
    )
    .await
}

async fn sign_in(app: &TestApp, key: &str) -> Console {
    let r = sign_in_raw(app, key, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    Console {
        cookie: cookie_of(&r),
        csrf: r.body["csrf_token"].as_str().unwrap().to_owned(),
        body: r.body,
    }
}

impl Console {
    async fn call(&self, app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(app, method, path, body, &[("x-keyplane-csrf", &self.csrf)])
            .await
    }

    async fn call_with(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut all = vec![("cookie", self.cookie.as_str()), ("host", "127.0.0.1:8080")];
        all.extend_from_slice(headers);
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        app.request(method, path, None, &all, body).await
    }
}

async fn project_count(app: &TestApp) -> usize {
    let r = app.get("/v1/organization/projects?limit=100").await;
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_the_session_reads_both_dialects() {
    let app = TestApp::new().await;
    let r = sign_in_raw(&app, &app.admin_key, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let set = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "no Secure over plain HTTP: {set}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["object"], "console.session");
    assert_eq!(r.body["read_only"], false);
    assert!(r.body["admin_key"]["id"]
        .as_str()
        .unwrap()
        .starts_with("key_"));
    assert!(!r.text.contains(&app.admin_key), "the key is never echoed");
    let token = cookie_of(&r);
    assert!(
        !r.text.contains(token.split('=').nth(1).unwrap()),
        "nor the session token"
    );

    let c = sign_in(&app, &app.admin_key).await;
    let who = c.call(&app, "GET", SESSION, None).await;
    assert_eq!(who.status, 200, "{}", who.text);
    assert_eq!(who.body["csrf_token"], c.csrf);
    let projects = c.call(&app, "GET", "/v1/organization/projects", None).await;
    assert_eq!(projects.status, 200, "{}", projects.text);
    let org = c.body["organization_id"].as_str().unwrap();
    let accounts = c
        .call(
            &app,
            "GET",
            &format!("/organizations/{org}/service-accounts"),
            None,
        )
        .await;
    assert_eq!(accounts.status, 200, "{}", accounts.text);
}

#[tokio::test]
async fn bad_keys_and_bad_bodies_are_refused_without_a_cookie() {
    let app = TestApp::new().await;
    let (_, _, svc_key) = app
        .create_account(&app.create_project("p").await, "a")
        .await;
    let unknown = "sk-admin-0000000000000000000000000000000000000000000000000";
    for (key, code) in [
        (unknown, "invalid_api_key"),
        ("sk-admin-short", "invalid_api_key"),
        ("", "invalid_api_key"),
        (svc_key.as_str(), "invalid_api_key"),
    ] {
        let r = sign_in_raw(&app, key, &[]).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.text);
        assert_eq!(r.error()["code"], code, "{key:?}");
        assert!(r.header("set-cookie").is_none(), "{key:?}");
        if key.len() > 20 {
            assert!(!r.text.contains(key), "the key is not echoed: {}", r.text);
        }
    }
    for body in [
        json!({}),
        json!({"admin_key": 5}),
        json!({"admin_key": app.admin_key, "x": 1}),
    ] {
        let r = app
            .request(
                "POST",
                SESSION,
                None,
                &[],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.header("set-cookie").is_none());
    }
    let r = app
        .request(
            "POST",
            SESSION,
            None,
            &[],
            Some(("text/plain", b"hello".to_vec())),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    // A usage reporter's key cannot even read: no console for it.
    let gw = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "gw", "scopes": ["api.usage.write"]}),
        )
        .await;
    assert_eq!(gw.status, 200, "{}", gw.text);
    let r = sign_in_raw(&app, gw.body["value"].as_str().unwrap(), &[]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.header("set-cookie").is_none());
}

#[tokio::test]
async fn writes_need_the_csrf_token_and_this_origin() {
    let app = TestApp::new().await;
    let c = sign_in(&app, &app.admin_key).await;
    let before = project_count(&app).await;
    let create = json!({"name": "forged"});
    let path = "/v1/organization/projects";
    for headers in [
        vec![],
        vec![("x-keyplane-csrf", "wrong")],
        vec![
            ("x-keyplane-csrf", c.csrf.as_str()),
            ("origin", "http://evil.example"),
        ],
        vec![("x-keyplane-csrf", c.csrf.as_str()), ("origin", "null")],
        vec![
            ("x-keyplane-csrf", c.csrf.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let r = c
            .call_with(&app, "POST", path, Some(create.clone()), &headers)
            .await;
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text);
        assert_eq!(r.error()["code"], "csrf_failed", "{headers:?}");
    }
    // The Keycard dialect too, in its own envelope.
    let org = c.body["organization_id"].as_str().unwrap().to_owned();
    let kc = format!("/organizations/{org}/service-accounts");
    let r = c
        .call_with(&app, "POST", &kc, Some(json!({"name": "x"})), &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(project_count(&app).await, before, "nothing was created");
    // The console's own request goes through.
    let r = c
        .call_with(
            &app,
            "POST",
            path,
            Some(create),
            &[
                ("x-keyplane-csrf", &c.csrf),
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.call(&app, "POST", &kc, Some(json!({"name": "x"}))).await;
    assert!(r.status.is_success(), "{}", r.text);
    // Sign-in from another origin is refused too (no login CSRF).
    let r = sign_in_raw(
        &app,
        &app.admin_key,
        &[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn tampered_and_unknown_cookies_are_401() {
    let app = TestApp::new().await;
    let c = sign_in(&app, &app.admin_key).await;
    let token = c.cookie.split_once('=').unwrap().1.to_owned();
    let last = token.chars().last().unwrap();
    let flipped = format!("{}{}", &token[..42], if last == 'A' { 'B' } else { 'A' });
    for bad in [
        flipped,
        format!("{token}A"),
        token[..42].to_owned(),
        "a".repeat(43),
        "not a token".to_owned(),
        String::new(),
    ] {
        let forged = Console {
            cookie: format!("keyplane_console={bad}"),
            csrf: c.csrf.clone(),
            body: Value::Null,
        };
        let r = forged
            .call(&app, "GET", "/v1/organization/projects", None)
            .await;
        assert_eq!(r.status, 401, "{bad:?}: {}", r.text);
        assert_eq!(r.error()["code"], "no_session", "{bad:?}");
        let r = forged.call(&app, "GET", SESSION, None).await;
        assert_eq!(r.status, 401, "{bad:?}");
    }
    // The genuine one still works.
    assert_eq!(c.call(&app, "GET", SESSION, None).await.status, 200);
}

#[tokio::test]
async fn sign_in_always_starts_a_new_session() {
    let app = TestApp::new().await;
    // A session ID planted by someone else is not adopted...
    let planted = "keyplane_console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = sign_in_raw(&app, &app.admin_key, &[("cookie", planted)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(cookie_of(&r), planted);
    // ...and signing in again replaces (ends) the session the browser had.
    let first = sign_in(&app, &app.admin_key).await;
    let r = sign_in_raw(&app, &app.admin_key, &[("cookie", &first.cookie)]).await;
    let second = cookie_of(&r);
    assert_ne!(second, first.cookie);
    assert_eq!(first.call(&app, "GET", SESSION, None).await.status, 401);
    let c = Console {
        cookie: second,
        csrf: r.body["csrf_token"].as_str().unwrap().into(),
        body: r.body,
    };
    assert_eq!(c.call(&app, "GET", SESSION, None).await.status, 200);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_end() {
    let clock = Clock::fixed(1_800_000_000_000);
    let mut app = TestApp::with_clock(clock.clone()).await;
    let settings = ConsoleSettings {
        idle_timeout: std::time::Duration::from_secs(600),
        lifetime: std::time::Duration::from_secs(3600),
        secure_cookie: false,
    };
    app.service = app.service.clone().with_console(settings);
    app.router = router(AppState::new(app.service.clone()));

    let idle = sign_in(&app, &app.admin_key).await;
    clock.advance(599_000);
    assert_eq!(idle.call(&app, "GET", SESSION, None).await.status, 200);
    clock.advance(601_000);
    let r = idle
        .call(&app, "GET", "/v1/organization/projects", None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error()["code"], "session_expired");

    // Used every five minutes, a session lives until its absolute end and no longer.
    let busy = sign_in(&app, &app.admin_key).await;
    for _ in 0..11 {
        clock.advance(300_000);
        let r = busy.call(&app, "GET", SESSION, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    clock.advance(300_000);
    let r = busy.call(&app, "GET", SESSION, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "session_expired");
}

#[tokio::test]
async fn sign_out_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::new().await;
    let c = sign_in(&app, &app.admin_key).await;
    let r = c.call_with(&app, "DELETE", SESSION, None, &[]).await;
    assert_eq!(
        r.status, 403,
        "sign-out needs the CSRF token too: {}",
        r.text
    );
    let r = c.call(&app, "DELETE", SESSION, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["deleted"], true);
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.starts_with("keyplane_console=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    // The old cookie, replayed, is nobody.
    let r = c.call(&app, "GET", "/v1/organization/projects", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "no_session");

    let audit = app.get("/v1/organization/audit_logs?event_types[]=login.succeeded&event_types[]=logout.succeeded").await;
    let types: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["logout.succeeded", "login.succeeded"],
        "{}",
        audit.text
    );
    assert_eq!(
        audit.body["data"][0]["actor"]["api_key"]["id"], c.body["admin_key"]["id"],
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn a_deleted_or_disabled_admin_key_ends_its_sessions() {
    let app = TestApp::new().await;
    let mut consoles = Vec::new();
    for name in ["deleted", "disabled"] {
        let k = app
            .post("/v1/organization/admin_api_keys", json!({"name": name}))
            .await;
        assert_eq!(k.status, 200, "{}", k.text);
        let c = sign_in(&app, k.body["value"].as_str().unwrap()).await;
        assert_eq!(c.call(&app, "GET", SESSION, None).await.status, 200);
        consoles.push((k.id(), c));
    }
    let (deleted, c1) = &consoles[0];
    let (disabled, c2) = &consoles[1];
    assert_eq!(
        app.delete(&format!("/v1/organization/admin_api_keys/{deleted}"))
            .await
            .status,
        200
    );
    let r = app
        .post(
            &format!("/v1/organization/admin_api_keys/{disabled}/disable"),
            json!({"reason": "exposed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for c in [c1, c2] {
        let r = c.call(&app, "GET", "/v1/organization/projects", None).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.error()["code"], "session_ended", "{}", r.text);
    }
    // Ended for good: enabling the key again does not bring the session back.
    let r = app
        .post(
            &format!("/v1/organization/admin_api_keys/{disabled}/enable"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c2.call(&app, "GET", SESSION, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "no_session");
}

#[tokio::test]
async fn a_read_only_key_gets_a_read_only_session() {
    let app = TestApp::new().await;
    let k = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "viewer", "scopes": ["api.management.read"]}),
        )
        .await;
    assert_eq!(k.status, 200, "{}", k.text);
    let c = sign_in(&app, k.body["value"].as_str().unwrap()).await;
    assert_eq!(c.body["read_only"], true);
    assert_eq!(
        c.call(&app, "GET", "/v1/organization/projects", None)
            .await
            .status,
        200
    );
    let r = c
        .call(
            &app,
            "POST",
            "/v1/organization/projects",
            Some(json!({"name": "no"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error()["code"], "missing_scope");
}

/// Sessions live in the store: another node on it (or this one restarted) knows them, and
/// sign-out on one is sign-out everywhere.
#[tokio::test]
async fn another_node_on_the_store_honours_the_session() {
    let mut app = TestApp::new().await;
    let c = sign_in(&app, &app.admin_key).await;
    let other = Service::new(app.store.clone(), Clock::system());
    crate::common::wait_until_trusted(&other).await;
    let node_a = std::mem::replace(&mut app.router, router(AppState::new(other)));
    let r = c.call(&app, "GET", "/v1/organization/projects", None).await;
    assert_eq!(r.status, 200, "node B: {}", r.text);
    assert_eq!(c.call(&app, "DELETE", SESSION, None).await.status, 200);
    app.router = node_a;
    assert_eq!(
        c.call(&app, "GET", SESSION, None).await.status,
        401,
        "node A"
    );
}

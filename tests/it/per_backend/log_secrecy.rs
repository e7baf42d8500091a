//! Logs never carry a secret. A full lifecycle runs in-process with JSON logs captured at
//! `debug`: admin keys, service-account keys, client secrets and access tokens are issued and
//! used (and wrong ones presented); then no secret, nor any part of one beyond what its
//! redacted form shows, may appear in the log, and every request has exactly one well-formed
//! request line. The log subscriber is process-global, so that test runs alone in a process of
//! its own.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{self, kc_accounts, TestApp, KC_ORG};
use keyplane::domain::keys::{redact, KeyKind, PlainKey};
use keyplane::telemetry::{init_with, LogFormat};
use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fails when `log` holds `secret`, or any 10 consecutive characters of it that its redacted
/// form does not show.
fn assert_absent(log: &str, what: &str, secret: &str) {
    assert!(!secret.is_empty(), "{what}: empty secret");
    assert!(!log.contains(secret), "{what} appears in the log");
    let shown = redact(secret);
    let chars: Vec<char> = secret.chars().collect();
    for w in chars.windows(10) {
        let w: String = w.iter().collect();
        assert!(
            shown.contains(&w) || !log.contains(&w),
            "part of {what} ({w:?}) appears in the log"
        );
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log() {
    if !common::in_own_process(module_path!(), "no_secret_reaches_the_log") {
        return;
    }
    let captured = Captured::default();
    let sink = captured.clone();
    init_with(
        LogFormat::Json,
        EnvFilter::new("debug"),
        move || sink.clone(),
        false,
    )
    .expect("the only subscriber of this process");

    let app = TestApp::new().await;
    let mut secrets: Vec<(&str, String)> = vec![("the bootstrap admin key", app.admin_key.clone())];
    let mut sent = 0;
    macro_rules! req {
        ($e:expr) => {{
            sent += 1;
            $e
        }};
    }

    let project = req!(app.create_project("secretive").await);
    let (_, key, key_id) = req!(app.create_account(&project, "worker").await);
    secrets.push(("a service-account key", key.clone()));
    let r = req!(
        app.post(
            "/v1/organization/admin_api_keys",
            json!({ "name": "second" })
        )
        .await
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let admin2 = r.body["value"].as_str().unwrap().to_owned();
    secrets.push(("a second admin key", admin2.clone()));

    // Keycard: an account, a credential (client secret), a token.
    let r = req!(
        app.request(
            "POST",
            &kc_accounts(KC_ORG),
            Some(&admin2),
            &[(
                "x-client-request-id",
                "123e4567-e89b-12d3-a456-426614174000"
            )],
            Some(("application/json", br#"{"name":"robot"}"#.to_vec())),
        )
        .await
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let account = r.body["id"].as_str().unwrap().to_owned();
    let cred = req!(app.kc_create_credential(&account, "c").await);
    let client_id = cred["client_id"].as_str().unwrap().to_owned();
    let client_secret = cred["client_secret"].as_str().unwrap().to_owned();
    secrets.push(("a client secret", client_secret.clone()));
    let token = req!(app.kc_token(&client_id, &client_secret).await);
    secrets.push(("an access token", token.clone()));
    // Form-body credentials, and a wrong secret.
    let form = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}"
    );
    assert_eq!(req!(app.token_request(&form, None).await).status, 200);
    let wrong_secret = format!("{client_secret}x");
    let r = req!(
        app.token_request(
            "grant_type=client_credentials",
            Some((&client_id, &wrong_secret))
        )
        .await
    );
    assert_eq!(r.status, 401);

    // Uses: auth/check with a key and a token, keys/verify with the key in the body, the token
    // on the Keycard API.
    let check = |k: String| {
        let app = &app;
        async move { app.send("GET", "/v1/auth/check", Some(&k), None).await }
    };
    assert_eq!(req!(check(key.clone()).await).status, 204);
    assert_eq!(req!(check(token.clone()).await).status, 204);
    let r = req!(app.post("/v1/keys/verify", json!({ "key": key })).await);
    assert_eq!(r.body["valid"], true);
    let r = req!(
        app.send("GET", &kc_accounts(KC_ORG), Some(&token), None)
            .await
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // Failures: unknown and malformed keys, a wrong admin key, a tampered token.
    let unknown = PlainKey::generate(KeyKind::ServiceAccount)
        .unwrap()
        .expose()
        .to_owned();
    secrets.push(("an unknown key", unknown.clone()));
    let wrong_admin = PlainKey::generate(KeyKind::Admin)
        .unwrap()
        .expose()
        .to_owned();
    secrets.push(("a wrong admin key", wrong_admin.clone()));
    let malformed = format!("{}tail", &key[..key.len() - 4]);
    secrets.push(("a malformed key", malformed.clone()));
    assert_eq!(req!(check(unknown.clone()).await).status, 401);
    assert_eq!(req!(check(malformed.clone()).await).status, 401);
    let r = req!(
        app.send("GET", "/v1/organization/projects", Some(&wrong_admin), None)
            .await
    );
    assert_eq!(r.status, 401);
    let r = req!(
        app.send("GET", &kc_accounts(KC_ORG), Some(&wrong_admin), None)
            .await
    );
    assert_eq!(r.status, 401);
    let r = req!(app.post("/v1/keys/verify", json!({ "key": unknown })).await);
    assert_eq!(r.body["valid"], false);
    let r = req!(
        app.post("/v1/keys/verify", json!({ "key": malformed }))
            .await
    );
    assert_eq!(r.body["valid"], false);
    let tampered = common::tamper(&token);
    assert_eq!(req!(check(tampered).await).status, 401);
    // Revocation, then the revoked key.
    let r = req!(
        app.delete(&format!(
            "/v1/organization/projects/{project}/api_keys/{key_id}"
        ))
        .await
    );
    assert_eq!(r.status, 200);
    assert_eq!(req!(check(key.clone()).await).status, 401);
    // A body that does not parse, carrying a key.
    let r = req!(
        app.send(
            "POST",
            "/v1/keys/verify",
            Some(&app.admin_key),
            Some(format!("{{\"key\": \"{key}\""))
        )
        .await
    );
    assert_eq!(r.status, 400);

    // Usage flushes log at debug too.
    let _ = app.service.flush_usage().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.lines().count() > sent, "debug logging was captured");
    for (what, secret) in &secrets {
        assert_absent(&log, what, secret);
    }

    let admin_id = app.get("/v1/organization/admin_api_keys").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let mut request_lines = 0;
    let mut actors = std::collections::BTreeSet::new();
    let mut client_request_ids = 0;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["message"] != "request" {
            continue;
        }
        request_lines += 1;
        for field in ["request_id", "method", "route", "path"] {
            assert!(v[field].is_string(), "{field} missing: {line}");
        }
        assert!(v["status"].is_u64() && v["latency_us"].is_u64(), "{line}");
        assert!(
            !v["route"].as_str().unwrap().contains(&project),
            "a path as route: {line}"
        );
        if let Some(a) = v["actor"].as_str() {
            actors.insert(a.to_owned());
        }
        if v["client_request_id"] == "123e4567-e89b-12d3-a456-426614174000" {
            client_request_ids += 1;
        }
        if v["status"] == 200
            && v["route"] == "/v1/organization/projects/{project_id}/service_accounts"
        {
            assert!(
                admin_id.iter().any(|id| v["actor"] == *id),
                "admin actor: {line}"
            );
        }
    }
    assert_eq!(request_lines, sent, "exactly one line per request");
    assert_eq!(client_request_ids, 1);
    // Both admin keys, the checked key, and the credential behind the token.
    for id in &admin_id {
        assert!(actors.contains(id), "{id} not among {actors:?}");
    }
    assert!(actors.contains(&key_id), "{key_id} not among {actors:?}");
    let cred_id = cred["id"].as_str().unwrap();
    assert!(
        actors.contains(&format!("credential:{cred_id}")),
        "{actors:?}"
    );
}

#[test]
fn the_detector_finds_whole_and_partial_secrets_but_allows_the_redacted_form() {
    let key = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    let key = key.expose();
    let caught = |log: String| std::panic::catch_unwind(|| assert_absent(&log, "k", key)).is_err();
    assert!(caught(format!("x {key} y")));
    assert!(caught(format!("x {} y", &key[3..key.len() - 3])));
    assert!(!caught(format!("{{\"redacted\":\"{}\"}}", redact(key))));
}

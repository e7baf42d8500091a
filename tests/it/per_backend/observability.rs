//! `/readyz` and `/metrics`, in-process: readiness on both stores (ready, schema mismatch,
//! store closed), and a scrape after known traffic, parsed strictly, with every counter
//! checked against the requests made.

use crate::common::prometheus::Exposition;
use crate::common::{self, kc_accounts, kc_credentials, TestApp, TestStore, KC_ORG};
use keyplane::domain::keys::{KeyKind, PlainKey};
use serde_json::json;

/// A migration this build does not know: recorded with `Some(version)`, removed with `None`
/// (on a connection of its own, as another process would).
async fn fake_migration(app: &TestApp, version: Option<i64>) {
    let sql = match version {
        Some(v) => format!(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES ({v}, 'from the future', TRUE, {}, 0)",
            if app.backing.pg.is_some() {
                "'\\x00'::bytea"
            } else {
                "X'00'"
            }
        ),
        None => "DELETE FROM _sqlx_migrations WHERE version >= 1000000".to_owned(),
    };
    app.backing.execute_raw(&sql).await;
}

async fn readiness_cycle(app: TestApp) {
    let r = app.send("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["schema_version"], keyplane::store::schema_version());

    // A newer build migrated the database: this one must not take traffic.
    let future = 1_000_000_i64;
    fake_migration(&app, Some(future)).await;
    let r = app.send("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "not_ready");
    let reason = r.body["reason"].as_str().unwrap();
    assert!(reason.contains(&future.to_string()), "{reason}");
    fake_migration(&app, None).await;
    assert_eq!(app.send("GET", "/readyz", None, None).await.status, 200);

    app.store.close().await;
    let r = app.send("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "not_ready");
    // A generic reason: the driver's error text (pool state, host names) stays in the log.
    assert_eq!(r.body["reason"], "the store does not answer", "{}", r.text);
    // The process itself is still up.
    assert_eq!(app.send("GET", "/healthz", None, None).await.status, 200);
}

#[tokio::test]
async fn readyz_follows_the_store_on_sqlite() {
    readiness_cycle(TestApp::with_store(TestStore::sqlite().await).await).await;
}

#[tokio::test]
async fn readyz_follows_the_store_on_postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    readiness_cycle(TestApp::with_store(store).await).await;
}

async fn check(app: &TestApp, key: &str) -> u16 {
    app.send("GET", "/v1/auth/check", Some(key), None)
        .await
        .status
        .as_u16()
}

async fn scrape(app: &TestApp) -> Exposition {
    let r = app.send("GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Exposition::parse(&r.text)
}

fn requests(e: &Exposition, route: &str, method: &str, status: &str) -> f64 {
    let labels = [("route", route), ("method", method), ("status", status)];
    let total = e.value("keyplane_http_requests_total", &labels);
    assert_eq!(
        total,
        e.value("keyplane_http_request_duration_seconds_count", &labels),
        "{route} {method} {status}: counter and histogram disagree"
    );
    total
}

#[tokio::test]
async fn metrics_count_what_was_asked() {
    let app = TestApp::new().await;
    let project = app.create_project("metered").await;
    let (_, key, key_id) = app.create_account(&project, "worker").await;
    // Keys: 3 valid (1 store read + 2 cache hits), 2 malformed, 2 unknown (a read, then the
    // negative cache), 1 valid through the catch-all route, 1 valid through keys/verify.
    for _ in 0..3 {
        assert_eq!(check(&app, &key).await, 204);
    }
    for _ in 0..2 {
        assert_eq!(check(&app, "sk-proj-not-a-key").await, 401);
    }
    let unknown = PlainKey::generate(KeyKind::ServiceAccount).unwrap();
    for _ in 0..2 {
        assert_eq!(check(&app, unknown.expose()).await, 401);
    }
    let r = app
        .send("POST", "/v1/auth/check/upstream/path", Some(&key), None)
        .await;
    assert_eq!(r.status, 204);
    let r = app.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(r.body["valid"], true, "{}", r.text);
    // Then revoked.
    let r = app
        .delete(&format!(
            "/v1/organization/projects/{project}/api_keys/{key_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(check(&app, &key).await, 401);

    // Routes: templates, not paths; an unknown path is "unmatched".
    for _ in 0..2 {
        assert_eq!(
            app.get(&format!("/v1/organization/projects/{project}"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        app.get("/v1/organization/projects/proj_nope").await.status,
        404
    );
    assert_eq!(app.get("/no/such/thing").await.status, 404);
    assert_eq!(app.get("/v1/no/such/thing").await.status, 404);

    // Tokens: a grant, a refused grant, a valid token and a tampered one.
    let account = app.kc_create_account("robot").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cred = app.kc_create_credential(&account, "c").await;
    let (client_id, secret) = (
        cred["client_id"].as_str().unwrap(),
        cred["client_secret"].as_str().unwrap(),
    );
    let token = app.kc_token(client_id, secret).await;
    let refused = app
        .token_request("grant_type=client_credentials", Some((client_id, "wrong")))
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(check(&app, &token).await, 204);
    let tampered = common::tamper(&token);
    assert_eq!(check(&app, &tampered).await, 401);
    let _ = (kc_accounts(KC_ORG), kc_credentials(KC_ORG, &account));

    let m = scrape(&app).await;
    let check_route = "/v1/auth/check";
    assert_eq!(requests(&m, check_route, "GET", "204"), 4.0);
    assert_eq!(requests(&m, check_route, "GET", "401"), 6.0);
    assert_eq!(requests(&m, "/v1/auth/check/{*path}", "POST", "204"), 1.0);
    assert_eq!(requests(&m, "/v1/keys/verify", "POST", "200"), 1.0);
    let one_project = "/v1/organization/projects/{project_id}";
    assert_eq!(requests(&m, one_project, "GET", "200"), 2.0);
    assert_eq!(requests(&m, one_project, "GET", "404"), 1.0);
    assert_eq!(requests(&m, "unmatched", "GET", "404"), 2.0);
    assert_eq!(
        requests(&m, "/v1/organization/projects", "POST", "200"),
        1.0
    );
    assert_eq!(requests(&m, "/service-account-token", "POST", "200"), 1.0);
    assert_eq!(requests(&m, "/service-account-token", "POST", "401"), 1.0);
    // No raw path ever becomes a label.
    for (labels, _) in m.matching("keyplane_http_requests_total", &[]) {
        assert!(!labels["route"].contains(&project), "{labels:?}");
    }

    let keys = |outcome| m.value("keyplane_key_verifications_total", &[("outcome", outcome)]);
    assert_eq!(keys("valid"), 5.0);
    assert_eq!(keys("malformed"), 2.0);
    assert_eq!(keys("unknown"), 2.0);
    assert_eq!(keys("revoked"), 1.0);
    assert_eq!(keys("expired"), 0.0);
    let tokens = |outcome| {
        m.value(
            "keyplane_token_verifications_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(tokens("valid"), 1.0);
    assert_eq!(tokens("bad_signature"), 1.0);
    let grants = |outcome| m.value("keyplane_token_grants_total", &[("outcome", outcome)]);
    assert_eq!(grants("issued"), 1.0);
    assert_eq!(grants("wrong_secret"), 1.0);

    let cache = |result| {
        m.value(
            "keyplane_verification_cache_lookups_total",
            &[("result", result)],
        )
    };
    assert_eq!(cache("negative_hit"), 1.0, "the second unknown key");
    assert!(
        cache("hit") >= 4.0,
        "valid keys after the first read, and admin keys"
    );
    assert!(
        cache("miss") >= 2.0,
        "the first valid key and the first unknown one"
    );
    assert!(
        m.value(
            "keyplane_verification_cache_entries",
            &[("cache", "negative")]
        ) >= 1.0
    );

    let store = |op| {
        m.value(
            "keyplane_store_operation_duration_seconds_count",
            &[("operation", op)],
        )
    };
    assert_eq!(store("insert_project"), 1.0);
    assert!(store("api_key_by_hash") >= 2.0);
    assert!(store("revoke_api_key") >= 1.0);

    let pools = m.matching("keyplane_store_pool_max_connections", &[]);
    assert!(!pools.is_empty());
    for (labels, max) in pools {
        assert!(max >= 1.0, "{labels:?}");
        let pool = labels["pool"].as_str();
        let in_use = m.value(
            "keyplane_store_pool_connections",
            &[("pool", pool), ("state", "in_use")],
        );
        let idle = m.value(
            "keyplane_store_pool_connections",
            &[("pool", pool), ("state", "idle")],
        );
        assert!(in_use + idle <= max, "{pool}: {in_use} + {idle} > {max}");
    }

    // Counters only grow, and the scrape before this one is counted now.
    let again = scrape(&app).await;
    assert_eq!(requests(&again, "/metrics", "GET", "200"), 1.0);
    assert_eq!(requests(&again, check_route, "GET", "204"), 4.0);
}

//! Valid keys reach the upstream with their identity; every refused key stops at nginx.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_keys_through_with_identity_and_stops_the_rest() {
    let Some(bin) = nginx_or_skip() else {
        return;
    };
    let started = Instant::now();

    let app = TestApp::new().await;
    let stack = Stack::start(&bin, app.service.clone()).await;
    let (nginx, log) = (&stack.nginx, stack.log.clone());
    let seen = |log: &Log| log.lock().unwrap().clone();
    let gw = nginx.addr;

    // Keys: one to use, one to revoke, one that expires, one in a project that gets archived.
    let p = app.create_project("gateway").await;
    let (svc, value, key_id) = app.create_account(&p, "svc").await;
    let (_, revoked, revoked_id) = app.create_account(&p, "to-revoke").await;
    let doomed = app.create_project("doomed").await;
    let (_, archived, _) = app.create_account(&doomed, "svc").await;
    let expiring = app
        .post(
            &format!("/v1/organization/projects/{p}/service_accounts/{svc}/api_keys"),
            json!({"expires_in_seconds": 2}),
        )
        .await;
    assert_eq!(expiring.status, 200, "{}", expiring.text);
    // The key expires at most 2 s after this instant.
    let expiring_created = Instant::now();
    let expiring = expiring.body["value"].as_str().unwrap().to_owned();
    let org = app
        .send("GET", "/v1/auth/check", Some(&value), None)
        .await
        .header("x-keyplane-organization")
        .expect("keyplane names the organization")
        .to_owned();
    assert!(org.starts_with("org-"), "{org}");

    // Every key works through nginx before it is refused (so each 401 below is the refusal).
    for k in [&value, &revoked, &archived, &expiring] {
        let r = send(gw, "GET", "/ping", Some(k), &[], None).await;
        assert_eq!(r.status, 200, "{}\n{}", r.head, nginx.error_log());
        assert_eq!(r.body, "upstream ok");
    }
    assert_eq!(seen(&log).len(), 4);

    // No scopes yet: the (empty) scopes header is not sent, and a forged one is not passed on.
    let r = send(
        gw,
        "GET",
        "/forged",
        Some(&value),
        &[
            ("X-Keyplane-Scopes", "admin"),
            ("X-Keyplane-Project", "proj-forged"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let s = seen(&log).pop().unwrap();
    assert_eq!(s.uri, "/forged");
    assert_eq!(s.header("x-keyplane-scopes"), None, "{s:?}");
    assert_eq!(s.header("x-keyplane-project"), Some(p.as_str()), "{s:?}");

    // With scopes: the full identity reaches the upstream, the key does not; method, path,
    // query and body pass through untouched.
    let r = app
        .post(
            &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
            json!({"scopes": ["a.read"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        gw,
        "POST",
        "/v1/things/42?x=1&y=two",
        Some(&value),
        &[("X-Keyplane-Key-Id", "key-forged")],
        Some(r#"{"hello":"world"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, nginx.error_log());
    assert_eq!(r.body, "upstream ok");
    let s = seen(&log).pop().unwrap();
    assert_eq!(s.method, "POST");
    assert_eq!(s.uri, "/v1/things/42?x=1&y=two");
    assert_eq!(s.body, r#"{"hello":"world"}"#);
    assert_eq!(s.header("x-keyplane-organization"), Some(org.as_str()));
    assert_eq!(s.header("x-keyplane-project"), Some(p.as_str()));
    assert_eq!(s.header("x-keyplane-service-account"), Some(svc.as_str()));
    assert_eq!(s.header("x-keyplane-key-id"), Some(key_id.as_str()));
    assert_eq!(s.header("x-keyplane-scopes"), Some("a.read"));
    assert_eq!(
        s.header("authorization"),
        None,
        "the key leaked upstream: {s:?}"
    );
    assert!(
        s.headers.iter().all(|(_, v)| !v.contains(&value)),
        "the key leaked upstream: {s:?}"
    );
    for name in [
        "x-keyplane-organization",
        "x-keyplane-project",
        "x-keyplane-service-account",
        "x-keyplane-key-id",
        "x-keyplane-scopes",
    ] {
        let n = s.headers.iter().filter(|(h, _)| h == name).count();
        assert_eq!(n, 1, "{name} sent {n} times: {s:?}");
    }

    // Refusals stop at nginx: 401, keyplane's challenge passed on, nothing reaches upstream.
    let r = app
        .delete(&format!(
            "/v1/organization/projects/{p}/api_keys/{revoked_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &format!("/v1/organization/projects/{doomed}/archive"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = seen(&log).len();
    let bogus = format!("sk-svcacct-{}", "Zq9".repeat(20));
    let refusals: [(&str, Option<&str>); 5] = [
        ("no key", None),
        ("bogus key", Some(&bogus)),
        ("garbage", Some("not a key at all")),
        ("revoked key", Some(&revoked)),
        ("archived project's key", Some(&archived)),
    ];
    for (what, key) in refusals {
        for (method, body) in [("GET", None), ("POST", Some("{}"))] {
            let r = send(gw, method, "/secret?q=1", key, &[], body).await;
            assert_eq!(r.status, 401, "{what} ({method}): {}\n{}", r.head, r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
            assert!(!r.body.contains("upstream ok"), "{what}");
        }
    }
    // The expired key: wait (only) until it has expired.
    let expired_at = expiring_created + Duration::from_millis(2_100);
    tokio::time::sleep_until(expired_at.into()).await;
    let r = send(gw, "GET", "/secret", Some(&expiring), &[], None).await;
    assert_eq!(r.status, 401, "expired key: {}\n{}", r.head, r.body);
    let after = seen(&log);
    assert_eq!(
        after.len(),
        before,
        "refused requests reached the upstream: {:?}",
        &after[before..]
    );

    // The valid key still passes after all that.
    let r = send(gw, "GET", "/still", Some(&value), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(seen(&log).len(), before + 1);

    stack.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

//! Brute-force throttling through nginx: 429 with `Retry-After`.

use super::*;

/// A client that keeps guessing gets 429 with `Retry-After` through nginx (not the 500 nginx
/// makes of any status but 2xx, 401 and 403 from the check), for its valid key too, until the
/// cool-down ends; other clients' refusals stay 401 (and a plain 403 stays 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_answers_a_throttled_client_429_with_retry_after() {
    const LIMIT: u32 = 3;
    const COOLDOWN: Duration = Duration::from_secs(3);
    let Some(bin) = nginx_or_skip() else {
        return;
    };
    // A fixed clock, advanced past the cool-down at the end instead of sleeping through it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let clock = Clock::fixed(now.as_millis() as i64);
    let app = TestApp::with_clock(clock.clone()).await;
    let p = app.create_project("throttled").await;
    let (_, valid, _) = app.create_account(&p, "svc").await;
    // nginx (127.0.0.1) is the trusted proxy and forwards its clients' addresses.
    let service = app.service.clone().with_auth_throttle(ThrottleSettings {
        max_failures: LIMIT,
        window: Duration::from_secs(60),
        cooldown: COOLDOWN,
        trusted_proxies: parse_cidrs("127.0.0.1/32").unwrap(),
        ..Default::default()
    });
    let stack = Stack::start(&bin, service).await;
    let gw = stack.nginx.addr;
    let upstream_saw = || stack.log.lock().unwrap().len();
    let x: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let y: IpAddr = Ipv4Addr::new(127, 0, 0, 3).into();
    let bogus = format!("sk-svcacct-{}", "Zq9".repeat(20));

    // X's key works; then X guesses, and each guess is refused by keyplane: 401.
    let r = send_from(x, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, stack.nginx.error_log());
    for i in 0..LIMIT {
        let r = send_from(x, gw, "GET", "/api", Some(&bogus), &[], None).await;
        assert_eq!(r.status, 401, "guess {i}: {}", r.head);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let before = upstream_saw();

    // X is blocked: 429 with Retry-After, whatever key, method or headers it sends (neither
    // the mode nor the address counted against is the client's to choose).
    let forged = [
        ("X-Keyplane-Gateway", "none"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Real-IP", "198.51.100.8"),
    ];
    let no_headers: &[(&str, &str)] = &[];
    let cases = [
        ("GET", bogus.as_str(), no_headers, None),
        ("GET", valid.as_str(), no_headers, None),
        ("POST", valid.as_str(), no_headers, Some(r#"{"a":1}"#)),
        ("GET", valid.as_str(), &forged[..], None),
    ];
    let mut wait = 0;
    for (i, (method, key, extra, body)) in cases.into_iter().enumerate() {
        let r = send_from(x, gw, method, "/api?q=1", Some(key), extra, body).await;
        assert_eq!(
            r.status,
            429,
            "case {i}: {}\n{}\n{}",
            r.head,
            r.body,
            stack.nginx.error_log()
        );
        wait = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("case {i}: no Retry-After: {}", r.head));
        assert!((1..=COOLDOWN.as_secs()).contains(&wait), "{}", r.head);
        assert_eq!(r.header("x-keyplane-reason"), Some("rate_limited"));
        assert_eq!(r.header("www-authenticate"), None, "{}", r.head);
        assert!(!r.body.contains("upstream ok"), "case {i}");
    }
    assert_eq!(
        upstream_saw(),
        before,
        "a blocked client reached the upstream"
    );
    let log = stack.nginx.error_log();
    assert!(!log.contains("auth request unexpected status"), "{log}");

    // Y, behind the same nginx, is not blocked: refusals are 401, its key passes.
    for key in [None, Some(bogus.as_str())] {
        let r = send_from(y, gw, "GET", "/api", key, &[], None).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.head);
        assert_eq!(r.header("retry-after"), None);
    }
    let r = send_from(y, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    // A check's 403 without Retry-After stays a plain 403 (the snippet's other branch).
    let r = send_from(y, gw, "GET", "/forbidden", Some(&valid), &[], None).await;
    assert_eq!(r.status, 403, "{}\n{}", r.head, stack.nginx.error_log());
    assert_eq!(r.header("retry-after"), None);

    // After the cool-down X's key passes again.
    clock.advance((Duration::from_secs(wait) + Duration::from_millis(100)).as_millis() as i64);
    let r = send_from(x, gw, "GET", "/api", Some(&valid), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(upstream_saw(), before + 2);
    stack.stop().await;
}

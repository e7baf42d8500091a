//! Admission control through nginx: an admitted request reaches the upstream and the client
//! gets OpenAI's `x-ratelimit-*` headers; a request over a limit is 429 with `Retry-After`;
//! allowlist and disabled-key refusals are 403 with their reason; none of the refused reach
//! the upstream. The model travels in `X-Keyplane-Model`, the client address in
//! `X-Forwarded-For` (nginx is the trusted proxy).

use super::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_rate_limit_headers_and_turns_admission_refusals_into_429_and_403() {
    let Some(bin) = nginx_or_skip() else {
        return;
    };
    let app = TestApp::new()
        .await
        .with_models(common::catalogue(&[
            ("gpt-4o", 2, 100),
            ("*", 1000, 1_000_000),
        ]))
        .await;
    let limited = app.create_project("limited").await;
    let (_, key, _) = app.create_account(&limited, "svc").await;
    let metered = app.create_project("metered").await;
    let (_, metered_key, metered_id) = app.create_account(&metered, "svc").await;
    let guarded = app.create_project("guarded").await;
    let (_, fenced, fenced_id) = app.create_account(&guarded, "fenced").await;
    let (_, off, off_id) = app.create_account(&guarded, "off").await;
    let keys = format!("/v1/organization/projects/{guarded}/api_keys");
    let r = app
        .post(
            &format!("{keys}/{fenced_id}"),
            json!({ "allowed_ips": ["127.0.0.2"] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &format!("{keys}/{off_id}/disable"),
            json!({ "reason": "exposed" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let service = app.service.clone().with_auth_throttle(ThrottleSettings {
        trusted_proxies: parse_cidrs("127.0.0.1/32").unwrap(),
        ..Default::default()
    });
    let stack = Stack::start(&bin, service).await;
    let gw = stack.nginx.addr;
    let upstream_saw = || stack.log.lock().unwrap().len();
    let gpt = [("X-Keyplane-Model", "gpt-4o")];

    // Two requests fit gpt-4o's 2 a minute: the client sees the limit count down.
    for remaining in ["1", "0"] {
        let r = send(gw, "GET", "/v1/chat", Some(&key), &gpt, None).await;
        assert_eq!(r.status, 200, "{}\n{}", r.head, stack.nginx.error_log());
        assert_eq!(r.body, "upstream ok");
        assert_eq!(
            r.header("x-ratelimit-limit-requests"),
            Some("2"),
            "{}",
            r.head
        );
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some(remaining));
        let reset = r.header("x-ratelimit-reset-requests").unwrap_or("");
        assert!(reset.ends_with('s'), "OpenAI's duration: {}", r.head);
        assert_eq!(r.header("x-ratelimit-limit-tokens"), Some("100"));
    }
    let reached = upstream_saw();
    // The third is over the limit: 429 with Retry-After, and the upstream never sees it.
    let r = send(gw, "GET", "/v1/chat", Some(&key), &gpt, None).await;
    assert_eq!(r.status, 429, "{}\n{}", r.head, stack.nginx.error_log());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{}", r.head);
    assert_eq!(r.header("x-keyplane-reason"), Some("rate_limit_exceeded"));
    assert_eq!(upstream_saw(), reached);
    // The catch-all is counted apart: no model is still admitted, with its own limit.
    let r = send(gw, "GET", "/v1/chat", Some(&key), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("1000"));

    // Tokens, reported by the gateway after the upstream answered, bind post-paid.
    let report = json!({ "data": [{ "key_id": metered_id, "model": "gpt-4o",
        "input_tokens": 70, "output_tokens": 30 }] });
    let r = app.post("/v1/usage", report).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(gw, "GET", "/v1/chat", Some(&metered_key), &gpt, None).await;
    assert_eq!(r.status, 429, "{}", r.head);
    assert_eq!(r.header("x-keyplane-reason"), Some("rate_limit_exceeded"));

    // The allowlist sees the client nginx forwards, not nginx.
    let inside: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let outside: IpAddr = Ipv4Addr::new(127, 0, 0, 3).into();
    let r = send_from(inside, gw, "GET", "/v1/chat", Some(&fenced), &[], None).await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, stack.nginx.error_log());
    let before = upstream_saw();
    let r = send_from(outside, gw, "GET", "/v1/chat", Some(&fenced), &[], None).await;
    assert_eq!(r.status, 403, "{}", r.head);
    assert_eq!(r.header("x-keyplane-reason"), Some("ip_not_allowed"));
    assert_eq!(r.header("retry-after"), None);
    // A forged X-Forwarded-For is appended to by nginx, which keyplane reads from the right.
    let forged = [("X-Forwarded-For", "127.0.0.2")];
    let r = send_from(outside, gw, "GET", "/v1/chat", Some(&fenced), &forged, None).await;
    assert_eq!(r.status, 403, "{}", r.head);

    // A disabled key: 403 with its reason.
    let r = send(gw, "GET", "/v1/chat", Some(&off), &[], None).await;
    assert_eq!(r.status, 403, "{}", r.head);
    assert_eq!(r.header("x-keyplane-reason"), Some("key_disabled"));
    assert_eq!(
        upstream_saw(),
        before,
        "a refused request reached the upstream"
    );
    let log = stack.nginx.error_log();
    assert!(!log.contains("auth request unexpected status"), "{log}");
    stack.stop().await;
}

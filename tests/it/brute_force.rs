//! Brute-force throttling on a real socket (so requests have a peer address): a source that
//! keeps failing authentication gets 429 with `Retry-After`, other sources and valid keys from
//! them do not, and after the cool-down the source works again (on a fixed clock, advanced
//! past it rather than slept through). Also measures how many guesses an attacker gets, in
//! real time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{http_with, TestApp};
use keyplane::domain::time::Clock;
use keyplane::service::throttle::{parse_cidrs, ThrottleSettings};

const LIMIT: u32 = 5;
const COOLDOWN: Duration = Duration::from_secs(2);
const BAD_KEY: &str = "sk-svcacct-0000000000000000000000000000000000000000000000000";

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// The app's service, throttled with a small limit and cool-down, on 127.0.0.1.
async fn serve(app: &TestApp, trusted_proxies: &str) -> Running {
    let settings = ThrottleSettings {
        max_failures: LIMIT,
        window: Duration::from_secs(60),
        cooldown: COOLDOWN,
        trusted_proxies: parse_cidrs(trusted_proxies).unwrap(),
        ..Default::default()
    };
    let service = app.service.clone().with_auth_throttle(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keyplane::app::serve_on(listener, service, async {
        let _ = rx.await;
    }));
    Running { addr, stop, task }
}

/// One request from `client` (forwarded by the trusted proxy at 127.0.0.1, when given);
/// returns (status, head, body).
async fn call(
    addr: SocketAddr,
    client: Option<&str>,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, String, String) {
    let (method, path) = (method.to_owned(), path.to_owned());
    let key = key.map(str::to_owned);
    let client = client.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let forwarded: Vec<(&str, &str)> = client
            .as_deref()
            .map(|c| vec![("X-Forwarded-For", c)])
            .unwrap_or_default();
        let body = (method == "POST").then_some("{}");
        http_with(addr, &method, &path, key.as_deref(), &forwarded, body)
    })
    .await
    .unwrap()
}

fn retry_after(head: &str) -> Option<u64> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessing_source_is_slowed_and_no_one_else_is() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let clock = Clock::fixed(now.as_millis() as i64);
    let app = TestApp::with_clock(clock.clone()).await;
    let project = app.create_project("throttled").await;
    let (_, valid, _) = app.create_account(&project, "gateway client").await;
    let server = serve(&app, "127.0.0.1/32").await;
    let addr = server.addr;
    let x = Some("203.0.113.1");
    let y = Some("203.0.113.2");

    // X guesses: the first LIMIT are looked up and refused, then X is refused outright.
    for i in 0..LIMIT {
        let (status, _, body) = call(addr, x, "GET", "/v1/auth/check", Some(BAD_KEY)).await;
        assert_eq!(status, 401, "guess {i}: {body}");
    }
    let (status, head, body) = call(addr, x, "GET", "/v1/auth/check", Some(BAD_KEY)).await;
    assert_eq!(status, 429, "{body}");
    let wait = retry_after(&head).expect("Retry-After");
    assert!((1..=COOLDOWN.as_secs()).contains(&wait), "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded", "{body}");
    // Before any lookup: X's valid key is refused too, and so is every dialect's credential.
    let (status, _, _) = call(addr, x, "GET", "/v1/auth/check", Some(&valid)).await;
    assert_eq!(status, 429);
    let (status, _, body) = call(
        addr,
        x,
        "GET",
        "/v1/organization/projects",
        Some(&app.admin_key),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let (status, _, body) = call(
        addr,
        x,
        "GET",
        "/organizations/default/service-accounts",
        Some(&app.admin_key),
    )
    .await;
    assert_eq!(status, 429);
    let kc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(kc["code"], "too_many_requests", "{body}");
    assert_eq!(kc["status"], 429, "{body}");
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        http_with(
            addr,
            "POST",
            "/service-account-token",
            None,
            &[
                ("X-Forwarded-For", "203.0.113.1"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some("grant_type=client_credentials&client_id=x&client_secret=y"),
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("\"error\""), "OAuth error: {body}");
    // Requests without credentials are never refused (health checks share gateways' addresses).
    assert_eq!(call(addr, x, "GET", "/healthz", None).await.0, 200);
    // Nor are endpoints that ignore credentials, even when a client sends one with everything.
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
    ] {
        assert_eq!(
            call(addr, x, "GET", path, Some(&valid)).await.0,
            200,
            "{path}"
        );
    }

    // Y, behind the same gateway, is unaffected.
    assert_eq!(
        call(addr, y, "GET", "/v1/auth/check", Some(&valid)).await.0,
        204
    );
    assert_eq!(
        call(addr, y, "GET", "/v1/auth/check", Some(BAD_KEY))
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            addr,
            y,
            "GET",
            "/v1/organization/projects",
            Some(&app.admin_key)
        )
        .await
        .0,
        200
    );

    // After the cool-down X works again.
    clock.advance((Duration::from_secs(wait) + Duration::from_millis(100)).as_millis() as i64);
    assert_eq!(
        call(addr, x, "GET", "/v1/auth/check", Some(&valid)).await.0,
        204
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_refused_credential_counts() {
    let app = TestApp::new().await;
    let server = serve(&app, "127.0.0.1/32").await;
    let addr = server.addr;
    let cases: [(&str, &str, &str, &str); 3] = [
        // A bad admin key on the admin API.
        ("198.51.100.1", "GET", "/v1/organization/projects", BAD_KEY),
        (
            "198.51.100.2",
            "GET",
            "/organizations/default/service-accounts",
            "sk-admin-x",
        ),
        // Unknown keys at /v1/keys/verify (200 `valid: false`) with a valid admin key.
        ("198.51.100.3", "POST", "/v1/keys/verify", ""),
    ];
    for (client, method, path, key) in cases {
        let key = if key.is_empty() { &app.admin_key } else { key };
        for _ in 0..LIMIT {
            let (status, _, body) = tokio::task::spawn_blocking({
                let (key, client, method, path) = (
                    key.to_owned(),
                    client.to_owned(),
                    method.to_owned(),
                    path.to_owned(),
                );
                move || {
                    let body = format!(r#"{{"key":"{BAD_KEY}"}}"#);
                    http_with(
                        addr,
                        &method,
                        &path,
                        Some(&key),
                        &[("X-Forwarded-For", &client)],
                        (method == "POST").then_some(body.as_str()),
                    )
                }
            })
            .await
            .unwrap();
            assert!(status == 401 || status == 200, "{path}: {status} {body}");
        }
        let (status, head, _) = call(addr, Some(client), method, path, Some(key)).await;
        assert_eq!(status, 429, "{path} after {LIMIT} failures");
        assert!(retry_after(&head).is_some(), "{head}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peer_cannot_pick_its_source() {
    let app = TestApp::new().await;
    // No trusted proxies: the source is the TCP peer, whatever the headers say.
    let server = serve(&app, "").await;
    let addr = server.addr;
    for i in 0..LIMIT {
        let spoofed = format!("192.0.2.{i}");
        let (status, _, _) =
            call(addr, Some(&spoofed), "GET", "/v1/auth/check", Some(BAD_KEY)).await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = call(
        addr,
        Some("192.0.2.200"),
        "GET",
        "/v1/auth/check",
        Some(BAD_KEY),
    )
    .await;
    assert_eq!(
        status, 429,
        "X-Forwarded-For from an untrusted peer is ignored"
    );
    server.stop().await;
}

/// An attacker hammering as fast as it can: how many guesses reach a key lookup per minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_guesses_per_minute() {
    let app = TestApp::new().await;
    let server = serve(&app, "").await;
    let addr = server.addr;
    let run = Duration::from_secs(5);
    let (guesses, refused, elapsed) = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let (mut guesses, mut refused) = (0u64, 0u64);
        while start.elapsed() < run {
            match http_with(addr, "GET", "/v1/auth/check", Some(BAD_KEY), &[], None).0 {
                401 => guesses += 1,
                429 => refused += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        (guesses, refused, start.elapsed())
    })
    .await
    .unwrap();
    let per_minute = guesses as f64 * 60.0 / elapsed.as_secs_f64();
    // Each block ends after the cool-down; the attacker then gets LIMIT more guesses.
    let bound = u64::from(LIMIT) * (elapsed.as_secs().div_ceil(COOLDOWN.as_secs()) + 1);
    println!(
        "attacker: {guesses} guesses reached a lookup and {refused} were refused with 429 in \
         {:.1} s: {per_minute:.0} guesses/min with limit {LIMIT} and a {} s cool-down \
         (at most {bound}); with the defaults (20 per 60 s window, 60 s cool-down) that is at \
         most 20 guesses a minute per address",
        elapsed.as_secs_f64(),
        COOLDOWN.as_secs()
    );
    assert!(guesses <= bound, "{guesses} > {bound}");
    assert!(refused > guesses, "most attempts are refused");
    server.stop().await;
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// nginx's `auth_request` passes on only 401 and 403 (any other status becomes a 500), so in
/// nginx mode (`X-Keyplane-Gateway: nginx`, which the documented snippet sets) the check
/// answers a throttled source 403 with the reason and `Retry-After`. Without it the check
/// answers 429, which Traefik and Envoy pass on as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_mode_turns_a_throttled_check_into_403_with_the_reason() {
    let app = TestApp::new().await;
    let project = app.create_project("nginx mode").await;
    let (_, valid, _) = app.create_account(&project, "gateway client").await;
    let server = serve(&app, "127.0.0.1/32").await;
    let addr = server.addr;
    let check = async |client: &str, path: &str, key: &str, gateway: Option<&str>| {
        let (client, path, key) = (client.to_owned(), path.to_owned(), key.to_owned());
        let gateway = gateway.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut headers = vec![("X-Forwarded-For", client.as_str())];
            if let Some(g) = &gateway {
                headers.push(("X-Keyplane-Gateway", g.as_str()));
            }
            http_with(addr, "GET", &path, Some(&key), &headers, None)
        })
        .await
        .unwrap()
    };
    let (x, y) = ("203.0.113.10", "203.0.113.11");

    // Before the block, nginx mode changes nothing: valid is 204, a guess 401.
    let (status, _, _) = check(x, "/v1/auth/check", &valid, Some("nginx")).await;
    assert_eq!(status, 204);
    for i in 0..LIMIT {
        let (status, head, body) = check(x, "/v1/auth/check", BAD_KEY, Some("nginx")).await;
        assert_eq!(status, 401, "guess {i}: {body}");
        assert_eq!(header(&head, "x-keyplane-reason"), None, "{head}");
    }

    // Blocked. Without the mode (Traefik, Envoy): 429, with the reason.
    for key in [BAD_KEY, valid.as_str()] {
        for gateway in [None, Some("traefik"), Some("")] {
            let (status, head, body) = check(x, "/v1/auth/check", key, gateway).await;
            assert_eq!(status, 429, "{gateway:?}: {body}");
            let wait = retry_after(&head).expect("Retry-After");
            assert!((1..=COOLDOWN.as_secs()).contains(&wait), "{head}");
            assert_eq!(header(&head, "x-keyplane-reason"), Some("rate_limited"));
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["code"], "rate_limit_exceeded", "{body}");
        }
    }
    // In nginx mode (any case, at any sub-path): 403, with the reason and Retry-After.
    for (key, gateway, path) in [
        (BAD_KEY, "nginx", "/v1/auth/check"),
        (valid.as_str(), "nginx", "/v1/auth/check"),
        (valid.as_str(), "NGINX", "/v1/auth/check/upstream/path"),
    ] {
        let (status, head, body) = check(x, path, key, Some(gateway)).await;
        assert_eq!(status, 403, "{gateway} {path}: {body}");
        let wait = retry_after(&head).expect("Retry-After");
        assert!((1..=COOLDOWN.as_secs()).contains(&wait), "{head}");
        assert_eq!(header(&head, "x-keyplane-reason"), Some("rate_limited"));
        assert_eq!(header(&head, "x-should-retry"), None, "{head}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "rate_limit_exceeded", "{body}");
    }
    // The mode belongs to the check: the admin API still answers 429, without a reason.
    let (status, head, _) = tokio::task::spawn_blocking({
        let admin = app.admin_key.clone();
        move || {
            http_with(
                addr,
                "GET",
                "/v1/organization/projects",
                Some(&admin),
                &[("X-Forwarded-For", x), ("X-Keyplane-Gateway", "nginx")],
                None,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 429, "{head}");
    assert_eq!(header(&head, "x-keyplane-reason"), None, "{head}");

    // Another source in nginx mode: other refusals stay 401, valid keys 204.
    let (status, head, _) = check(y, "/v1/auth/check", BAD_KEY, Some("nginx")).await;
    assert_eq!(status, 401);
    assert_eq!(header(&head, "www-authenticate"), Some("Bearer"), "{head}");
    assert_eq!(header(&head, "x-keyplane-reason"), None, "{head}");
    let (status, _, _) = check(y, "/v1/auth/check", &valid, Some("nginx")).await;
    assert_eq!(status, 204);
    server.stop().await;
}

/// Failed token exchanges (`invalid_grant`, 400) count as failed authentications of their
/// source: a flood of forged subject tokens is throttled like guessed keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_token_exchanges_count_toward_the_throttle() {
    let app = TestApp::new().await;
    let server = serve(&app, "127.0.0.1/32").await;
    let addr = server.addr;
    let exchange = |client: &'static str| {
        tokio::task::spawn_blocking(move || {
            let body = serde_json::json!({
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": "a.forged.token",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "identity_provider_id": "idp_aaaaaaaaaaaaaaaaaaaaaaaaaa",
                "service_account_id": "svc_acct_aaaaaaaaaaaaaaaaaaaaaaaaaa",
            })
            .to_string();
            http_with(
                addr,
                "POST",
                "/oauth/token",
                None,
                &[
                    ("X-Forwarded-For", client),
                    ("Content-Type", "application/json"),
                ],
                Some(&body),
            )
        })
    };
    for i in 0..LIMIT {
        let (status, _, body) = exchange("203.0.113.7").await.unwrap();
        assert_eq!(status, 400, "attempt {i}: {body}");
        assert!(body.contains("invalid_grant"), "{body}");
    }
    let (status, head, body) = exchange("203.0.113.7").await.unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(retry_after(&head).is_some(), "{head}");
    assert!(
        body.contains("temporarily_unavailable"),
        "OAuth envelope: {body}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    // Another source is unaffected.
    let (status, _, _) = exchange("203.0.113.8").await.unwrap();
    assert_eq!(status, 400);
    server.stop().await;
}

/// Failed console sign-ins (401) count like failed keys: a source guessing admin keys at
/// the sign-in form is throttled (429 in the OpenAI envelope, with `Retry-After`), and then
/// even a right key from it waits; another source signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_console_sign_ins_count_toward_the_throttle() {
    let app = TestApp::new().await;
    let server = serve(&app, "127.0.0.1/32").await;
    let addr = server.addr;
    let sign_in = |client: &'static str, key: String| {
        tokio::task::spawn_blocking(move || {
            let body = serde_json::json!({ "admin_key": key }).to_string();
            http_with(
                addr,
                "POST",
                "/console/api/session",
                None,
                &[
                    ("X-Forwarded-For", client),
                    ("Content-Type", "application/json"),
                ],
                Some(&body),
            )
        })
    };
    let wrong = "sk-admin-0000000000000000000000000000000000000000000000000".to_owned();
    for i in 0..LIMIT {
        let (status, head, body) = sign_in("203.0.113.9", wrong.clone()).await.unwrap();
        assert_eq!(status, 401, "attempt {i}: {body}");
        assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
    }
    let (status, head, body) = sign_in("203.0.113.9", app.admin_key.clone()).await.unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(retry_after(&head).is_some(), "{head}");
    assert!(body.contains("rate_limit_exceeded"), "{body}");
    let (status, head, _) = sign_in("203.0.113.10", app.admin_key.clone())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: keyplane_console="),
        "{head}"
    );
    server.stop().await;
}

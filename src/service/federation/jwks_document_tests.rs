//! The rules of what is fetched and read: URLs, redirects, documents, bodies, statuses,
//! timeouts; and the cache's life cycle (uploaded sets, forget, failed refreshes).

use super::*;

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let issuer = Issuer::start(standard).await;
    let cache = JwksCache::new(JwksSettings::default(), Clock::fixed(0));
    let source = issuer.source();
    let keys = cache.keys(&provider(), discovery_source(&source)).await;
    assert_eq!(keys.unwrap_err(), JwksError::NotHttps);
    let refetched = cache.refetch(&provider(), discovery_source(&source)).await;
    assert_eq!(refetched.unwrap_err(), JwksError::NotHttps);
    assert!(issuer.requests().is_empty());
    assert_eq!(cache.fetches(), 0);
}

#[tokio::test]
async fn a_plain_http_jwks_uri_is_refused_unless_allowed() {
    // Discovery over https cannot be served here; the check on jwks_uri is the same one, made
    // before any request (see urls_must_be_https_or_allowed_http).
    let agent = ureq::AgentBuilder::new().build();
    assert_eq!(
        Origin::of(&agent, "http://127.0.0.1:1/jwks", false).unwrap_err(),
        JwksError::NotHttps
    );
}

#[test]
fn urls_must_be_https_or_allowed_http() {
    let agent = ureq::AgentBuilder::new().build();
    let https = Origin::of(&agent, "https://Accounts.Example.com/.well-known/x", false).unwrap();
    assert_eq!(
        https,
        Origin {
            scheme: "https".into(),
            host: "accounts.example.com".into(),
            port: Some(443)
        }
    );
    assert!(Origin::of(&agent, "HTTPS://example.com/", false).is_ok());
    assert!(Origin::of(&agent, "http://127.0.0.1:8080/x", true).is_ok());
    for refused in [
        "http://example.com/",
        "ftp://example.com/jwks",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
    ] {
        assert_eq!(
            Origin::of(&agent, refused, false).unwrap_err(),
            JwksError::NotHttps,
            "{refused}"
        );
    }
    assert_eq!(
        Origin::of(&agent, "file:///etc/passwd", true).unwrap_err(),
        JwksError::NotHttps
    );
    for invalid in ["example.com/jwks", "", "https://", "https://user@/x"] {
        assert!(
            matches!(
                Origin::of(&agent, invalid, false),
                Err(JwksError::Invalid(_))
            ),
            "{invalid}"
        );
    }
}

#[test]
fn redirects_stay_on_the_scheme_host_and_port() {
    let agent = ureq::AgentBuilder::new().build();
    let from = "https://issuer.example/keys";
    let strict = Policy {
        allow_http: false,
        max_bytes: 1,
    };
    let origin = Origin::of(&agent, from, false).unwrap();
    let to = |location: &str| redirect(&agent, from, Some(location), &origin, strict);
    assert_eq!(to("/jwks").unwrap(), "https://issuer.example/jwks");
    assert_eq!(
        to("https://issuer.example:443/v2").unwrap(),
        "https://issuer.example/v2"
    );
    assert_eq!(to("http://issuer.example/jwks"), Err(JwksError::NotHttps));
    assert!(matches!(
        to("https://evil.example/jwks"),
        Err(JwksError::Redirect(_))
    ));
    assert!(matches!(
        to("https://issuer.example:8443/jwks"),
        Err(JwksError::Redirect(_))
    ));
    assert!(matches!(
        to("//evil.example/jwks"),
        Err(JwksError::Redirect(_))
    ));
    assert!(matches!(
        redirect(&agent, from, None, &origin, strict),
        Err(JwksError::Fetch(_))
    ));
}

#[tokio::test]
async fn the_discovery_document_must_name_the_issuer_exactly() {
    let (error, requests) = failure(settings(), |base, path| match path {
        DISCOVERY => ok(json!({"issuer": format!("{base}/"), "jwks_uri": format!("{base}/jwks")})),
        _ => standard(base, path),
    })
    .await;
    assert_eq!(error, JwksError::IssuerMismatch);
    assert_eq!(requests, [DISCOVERY]);

    let (error, _) = failure(settings(), |base, path| match path {
        DISCOVERY => {
            ok(json!({"issuer": "https://accounts.example", "jwks_uri": format!("{base}/jwks")}))
        }
        _ => standard(base, path),
    })
    .await;
    assert_eq!(error, JwksError::IssuerMismatch);
}

#[tokio::test]
async fn oversized_documents_are_refused() {
    let small = JwksSettings {
        max_bytes: 1024,
        ..settings()
    };
    let (error, requests) = failure(small.clone(), |base, path| match path {
        "/jwks" => ok(json!({"keys": [rsa_jwk()], "padding": "x".repeat(2048)})),
        _ => standard(base, path),
    })
    .await;
    assert_eq!(error, JwksError::TooLarge);
    assert_eq!(requests, [DISCOVERY, "/jwks"]);

    let (error, _) = failure(small, |base, path| match path {
        DISCOVERY => ok(json!({"issuer": base, "jwks_uri": format!("{base}/jwks"),
                               "padding": "x".repeat(2048)})),
        _ => standard(base, path),
    })
    .await;
    assert_eq!(error, JwksError::TooLarge);
}

#[test]
fn bodies_are_read_up_to_the_cap_and_no_further() {
    let body = [b'x'; 100];
    assert_eq!(read_capped(&body[..], 100, "body").unwrap().len(), 100);
    assert_eq!(read_capped(&body[..], 99, "body"), Err(JwksError::TooLarge));
    // A body without a length (chunked, or endless) is cut off one byte past the cap.
    let endless = std::io::repeat(b'x');
    assert_eq!(read_capped(endless, 1024, "body"), Err(JwksError::TooLarge));
}

/// A document served by the issuer at `base`.
type Document = fn(&str) -> Reply;

#[tokio::test]
async fn documents_that_are_not_what_they_should_be_are_invalid() {
    let cases: [(&str, Document); 4] = [
        ("key set not JSON", |_| status(200, "<html>keys</html>")),
        ("key set without keys", |_| ok(json!({"jwks": []}))),
        ("empty key set", |_| ok(json!({"keys": []}))),
        ("only unusable keys", |_| {
            ok(json!({"keys": [
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {"kty": "RSA", "kid": "broken"},
                {"kty": "PQC", "kid": "future"},
            ]}))
        }),
    ];
    for (case, jwks) in cases {
        let (error, requests) = failure(settings(), move |base, path| match path {
            "/jwks" => jwks(base),
            _ => standard(base, path),
        })
        .await;
        assert!(matches!(error, JwksError::Invalid(_)), "{case}: {error:?}");
        assert_eq!(requests, [DISCOVERY, "/jwks"], "{case}");
    }

    let discoveries: [(&str, Document); 4] = [
        ("discovery not JSON", |_| status(200, "not json")),
        ("no jwks_uri", |base| ok(json!({"issuer": base}))),
        ("no issuer", |base| {
            ok(json!({"jwks_uri": format!("{base}/jwks")}))
        }),
        ("jwks_uri not a URL", |base| {
            ok(json!({"issuer": base, "jwks_uri": "/jwks"}))
        }),
    ];
    for (case, doc) in discoveries {
        let (error, requests) = failure(settings(), move |base, path| match path {
            DISCOVERY => doc(base),
            _ => standard(base, path),
        })
        .await;
        assert!(matches!(error, JwksError::Invalid(_)), "{case}: {error:?}");
        assert_eq!(requests, [DISCOVERY], "{case}");
    }
}

#[tokio::test]
async fn keys_this_build_cannot_read_are_skipped() {
    let issuer = Issuer::start(|base, path| match path {
        "/jwks" => ok(json!({"keys": [
            {"kty": "PQC", "kid": "future", "x": "AAAA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa_jwk()["n"], "e": "AQAB"},
            rsa_jwk(),
        ]})),
        _ => standard(base, path),
    })
    .await;
    let cache = cache(&Clock::fixed(0));
    let keys = cache
        .keys(&provider(), discovery_source(&issuer.source()))
        .await
        .unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert!(keys.find("rsa").is_some());
}

#[tokio::test]
async fn an_error_status_fails_without_its_body() {
    let (error, _) = failure(settings(), |base, path| match path {
        "/jwks" => status(503, "internal detail: db password hunter2"),
        _ => standard(base, path),
    })
    .await;
    let JwksError::Fetch(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("503"), "{message}");
    assert!(!error.to_string().contains("hunter2"));

    let (error, requests) = failure(settings(), |_, _| status(404, "")).await;
    assert!(
        matches!(&error, JwksError::Fetch(m) if m.contains("404")),
        "{error:?}"
    );
    assert_eq!(requests, [DISCOVERY]);

    // A 3xx that is not a redirect is just an unexpected status.
    let (error, _) = failure(settings(), |_, _| status(304, "")).await;
    assert!(
        matches!(&error, JwksError::Fetch(m) if m.contains("304")),
        "{error:?}"
    );
}

#[tokio::test]
async fn redirects_on_the_same_host_are_followed() {
    let issuer = Issuer::start(|base, path| match path {
        DISCOVERY => ok(json!({"issuer": base, "jwks_uri": format!("{base}/old-keys")})),
        "/old-keys" => moved("/older-keys".into()),
        "/older-keys" => moved(format!("{base}/keys-v2")),
        "/keys-v2" => moved("jwks".into()),
        _ => standard(base, path),
    })
    .await;
    let cache = cache(&Clock::fixed(0));
    let keys = cache
        .keys(&provider(), discovery_source(&issuer.source()))
        .await
        .unwrap();
    assert!(keys.find("rsa").is_some());
    assert_eq!(
        issuer.requests(),
        [DISCOVERY, "/old-keys", "/older-keys", "/keys-v2", "/jwks"]
    );
}

#[tokio::test]
async fn redirects_to_another_host_or_port_are_refused() {
    let elsewhere = Issuer::start(standard).await;
    let other_port = elsewhere.base.clone();
    let (error, requests) = failure(settings(), move |base, path| match path {
        "/jwks" => moved(format!("{other_port}/jwks")),
        _ => standard(base, path),
    })
    .await;
    assert!(matches!(error, JwksError::Redirect(_)), "{error:?}");
    assert_eq!(requests, [DISCOVERY, "/jwks"]);

    let (error, _) = failure(settings(), |base, path| match path {
        DISCOVERY => moved(base.replace("127.0.0.1", "localhost") + DISCOVERY),
        _ => standard(base, path),
    })
    .await;
    assert!(matches!(error, JwksError::Redirect(_)), "{error:?}");
    assert!(elsewhere.requests().is_empty());
}

#[tokio::test]
async fn a_redirect_loop_ends_after_three_redirects() {
    let (error, requests) = failure(settings(), |base, path| match path {
        "/jwks" => moved("/jwks".into()),
        _ => standard(base, path),
    })
    .await;
    assert!(matches!(error, JwksError::Redirect(_)), "{error:?}");
    assert_eq!(requests, [DISCOVERY, "/jwks", "/jwks", "/jwks", "/jwks"]);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Connections complete in the kernel's backlog and are never read or answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let source = (format!("{base}{DISCOVERY}"), base);
    let cache = JwksCache::new(
        JwksSettings {
            timeout: Duration::from_millis(300),
            ..settings()
        },
        Clock::fixed(0),
    );
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        cache.keys(&provider(), discovery_source(&source)),
    )
    .await
    .expect("the fetch outlived its timeout");
    assert!(
        matches!(&outcome, Err(JwksError::Fetch(m)) if m.contains("timed out")),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);
}

#[tokio::test]
async fn uploaded_sets_need_no_io() {
    let cache = cache(&Clock::fixed(0));
    let uploaded = jwks();
    let keys = cache
        .keys(&provider(), KeySource::Uploaded(&uploaded))
        .await
        .unwrap();
    assert!(keys.find("rsa").is_some());
    let again = cache
        .refetch(&provider(), KeySource::Uploaded(&uploaded))
        .await
        .unwrap();
    assert!(again.find("rsa").is_some());
    assert_eq!(cache.fetches(), 0);
    let empty = json!({"keys": []});
    let refused = cache.keys(&provider(), KeySource::Uploaded(&empty)).await;
    assert!(matches!(refused, Err(JwksError::Invalid(_))));
}

#[tokio::test]
async fn forget_forces_a_new_fetch() {
    let issuer = Issuer::start(standard).await;
    let cache = cache(&Clock::fixed(0));
    let source = issuer.source();
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    cache.forget(&provider());
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 2);
    // Nor does a forgotten provider's refetch history hold a refetch back.
    cache.forget(&provider());
    cache
        .refetch(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 3);
    assert_eq!(issuer.count("/jwks"), 3);
}

#[tokio::test]
async fn another_source_for_the_same_provider_is_not_served_the_old_keys() {
    let first = Issuer::start(standard).await;
    let second = Issuer::start(standard).await;
    let cache = cache(&Clock::fixed(0));
    cache
        .keys(&provider(), discovery_source(&first.source()))
        .await
        .unwrap();
    cache
        .keys(&provider(), discovery_source(&second.source()))
        .await
        .unwrap();
    assert_eq!(first.count("/jwks"), 1);
    assert_eq!(second.count("/jwks"), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_cached_set_until_max_age_then_fails_closed() {
    let down = Arc::new(AtomicBool::new(false));
    let issuer = Issuer::start({
        let down = down.clone();
        move |base, path| match path {
            "/jwks" if down.load(Ordering::Relaxed) => status(500, ""),
            _ => standard(base, path),
        }
    })
    .await;
    let clock = Clock::fixed(0);
    let cache = cache(&clock);
    let source = issuer.source();
    let s = settings();
    let cached = cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();

    down.store(true, Ordering::Relaxed);
    clock.advance(ms(s.min_refetch_interval));
    let refetched = cache.refetch(&provider(), discovery_source(&source)).await;
    assert!(matches!(refetched, Err(JwksError::Fetch(_))));
    let still = cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&cached, &still));
    // A failed refetch counts against the interval like a successful one.
    let again = cache.refetch(&provider(), discovery_source(&source)).await;
    assert_eq!(again.unwrap_err(), JwksError::RefetchTooSoon);

    clock.advance(ms(s.max_age));
    let expired = cache.keys(&provider(), discovery_source(&source)).await;
    assert!(matches!(expired, Err(JwksError::Fetch(_))), "{expired:?}");

    down.store(false, Ordering::Relaxed);
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_share_a_failure_too() {
    let issuer = Issuer::start_slow(Duration::from_millis(50), |base, path| match path {
        "/jwks" => status(500, ""),
        _ => standard(base, path),
    })
    .await;
    let cache = Arc::new(cache(&Clock::fixed(0)));
    let source = issuer.source();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (cache, source) = (cache.clone(), source.clone());
            tokio::spawn(async move { cache.keys(&provider(), discovery_source(&source)).await })
        })
        .collect();
    for caller in callers {
        assert!(matches!(caller.await.unwrap(), Err(JwksError::Fetch(_))));
    }
    assert_eq!(cache.fetches(), 1);
    assert_eq!(issuer.requests(), [DISCOVERY, "/jwks"]);
}

//! Against real HTTP servers on 127.0.0.1 (axum), each counting what it was asked for.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::json;

use super::*;

const RSA_JWK: &str = r#"{"kty":"RSA","kid":"rsa","alg":"RS256","use":"sig","n":"kDM7uxiUtSUDJpN59klCBfO7u_lWElVQeTDpk2T0DvleyIMT0YtpuP0O0VkNom_qelBxSzRfwfhIw92Rc5xSAFR9RL0N7ZI-y1kuOzm2CUc2KO1grriUyORc_87CAHhyxoUj8SyOZqMwa5qGIUJqKm7eTXEe8nNPfKKB2DbrszzKxIwXoRaYBgQ7FzIyiOIUDPkfVUcilwCCssVGnB0PRmcpuCPB323P_Wk_8A44L1BlK8yFhtpFSrxm2lRw1sFBLlK2N8fYi8SvtYV_e54OSi29NfkoD7W7GDVs_JCrimeHMP7oQXI5Me_GSl3kg0J0TFxCZtejQJgw3oMVh3ioEQ","e":"AQAB"}"#;
/// The private half of `RSA_JWK` (the domain tests' throwaway key).
const RSA_PEM: &str = include_str!("../../domain/federation/testdata/rsa.pem");

const DISCOVERY: &str = "/.well-known/openid-configuration";

fn rsa_jwk() -> Value {
    serde_json::from_str(RSA_JWK).unwrap()
}

fn jwks() -> Value {
    json!({"keys": [rsa_jwk()]})
}

fn provider() -> Id {
    Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

fn status(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

fn moved(to: String) -> Reply {
    Reply {
        status: 302,
        headers: vec![("location", to)],
        body: String::new(),
    }
}

/// A discovery document for the server at `base`, which is also its issuer.
fn discovery(base: &str) -> Reply {
    ok(json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}))
}

/// The well-behaved issuer: discovery at the usual place, keys at `/jwks`.
fn standard(base: &str, path: &str) -> Reply {
    match path {
        DISCOVERY => discovery(base),
        "/jwks" => ok(jwks()),
        _ => status(404, ""),
    }
}

type Respond = dyn Fn(&str, &str) -> Reply + Send + Sync;

struct Issuer {
    /// `http://127.0.0.1:<port>`: the issuer, and the base of every URL it serves.
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    async fn start(respond: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_slow(Duration::ZERO, respond).await
    }

    /// An issuer taking `delay` over each answer, so concurrent callers overlap.
    async fn start_slow(
        delay: Duration,
        respond: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let app = axum::Router::new().fallback({
            let (base, requests) = (base.clone(), requests.clone());
            move |uri: axum::http::Uri| async move {
                requests.lock().unwrap().push(uri.path().to_owned());
                tokio::time::sleep(delay).await;
                let reply = respond(&base, uri.path());
                let mut response = axum::response::Response::builder().status(reply.status);
                for (name, value) in reply.headers {
                    response = response.header(name, value);
                }
                response.body(axum::body::Body::from(reply.body)).unwrap()
            }
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            requests,
            server,
        }
    }

    fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY}", self.base)
    }

    fn source(&self) -> (String, String) {
        (self.discovery_url(), self.base.clone())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|p| *p == path).count()
    }
}

fn discovery_source<'a>(source: &'a (String, String)) -> KeySource<'a> {
    KeySource::Discovery {
        discovery_url: &source.0,
        issuer: &source.1,
    }
}

fn settings() -> JwksSettings {
    JwksSettings {
        allow_http: true,
        ..JwksSettings::default()
    }
}

fn cache(clock: &Clock) -> JwksCache {
    JwksCache::new(settings(), clock.clone())
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// `keys` against an issuer answering with `respond`: the error, and the paths requested.
async fn failure(
    settings: JwksSettings,
    respond: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
) -> (JwksError, Vec<String>) {
    let issuer = Issuer::start(respond).await;
    let cache = JwksCache::new(settings, Clock::fixed(0));
    let error = cache
        .keys(&provider(), discovery_source(&issuer.source()))
        .await
        .unwrap_err();
    (error, issuer.requests())
}

#[tokio::test]
async fn discovery_and_keys_are_fetched_once_then_cached() {
    let issuer = Issuer::start(standard).await;
    let clock = Clock::fixed(1_000);
    let cache = cache(&clock);
    let source = issuer.source();
    let keys = cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert!(keys.find("rsa").is_some());
    assert_eq!(issuer.requests(), [DISCOVERY, "/jwks"]);
    assert_eq!(cache.fetches(), 1);

    clock.advance(60_000);
    let again = cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&keys, &again));
    assert_eq!(issuer.requests().len(), 2);
    assert_eq!(cache.fetches(), 1);
}

#[tokio::test]
async fn fetched_keys_verify_the_issuers_tokens() {
    use crate::domain::federation::subject_token::{verify, Expectations};
    let issuer = Issuer::start(standard).await;
    let cache = cache(&Clock::fixed(0));
    let keys = cache
        .keys(&provider(), discovery_source(&issuer.source()))
        .await
        .unwrap();
    let now = 1_800_000_000;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa".into());
    let claims = json!({"iss": issuer.base, "aud": "keyplane", "sub": "repo:acme/api",
                        "iat": now - 10, "exp": now + 300});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let expect = Expectations {
        issuer: &issuer.base,
        audience: "keyplane",
        now,
    };
    assert_eq!(
        verify(&token, &keys, &expect).unwrap().subject,
        "repo:acme/api"
    );
}

#[tokio::test]
async fn a_set_older_than_max_age_is_fetched_again() {
    let issuer = Issuer::start(standard).await;
    let clock = Clock::fixed(0);
    let cache = cache(&clock);
    let source = issuer.source();
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    let max_age = ms(settings().max_age);
    clock.advance(max_age - 1);
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 1);
    clock.advance(1);
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 2);
    assert_eq!(issuer.requests(), [DISCOVERY, "/jwks", DISCOVERY, "/jwks"]);
}

#[tokio::test]
async fn refetch_goes_to_the_network_at_most_once_per_interval() {
    let issuer = Issuer::start(standard).await;
    let clock = Clock::fixed(0);
    let cache = cache(&clock);
    let source = issuer.source();
    let interval = ms(settings().min_refetch_interval);
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    // The fetch `keys` just made counts: the set is as new as a refetch would make it.
    let early = cache.refetch(&provider(), discovery_source(&source)).await;
    assert_eq!(early.unwrap_err(), JwksError::RefetchTooSoon);
    assert_eq!(issuer.requests().len(), 2);

    clock.advance(interval);
    cache
        .refetch(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 2);
    assert_eq!(issuer.requests().len(), 4);

    clock.advance(interval - 1);
    let again = cache.refetch(&provider(), discovery_source(&source)).await;
    assert_eq!(again.unwrap_err(), JwksError::RefetchTooSoon);
    assert_eq!(cache.fetches(), 2);
    assert_eq!(issuer.requests().len(), 4);

    clock.advance(1);
    cache
        .refetch(&provider(), discovery_source(&source))
        .await
        .unwrap();
    assert_eq!(cache.fetches(), 3);
    assert_eq!(issuer.count("/jwks"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refetches_makes_at_most_one_fetch() {
    let issuer = Issuer::start_slow(Duration::from_millis(50), standard).await;
    let clock = Clock::fixed(0);
    let cache = Arc::new(cache(&clock));
    let source = issuer.source();
    cache
        .keys(&provider(), discovery_source(&source))
        .await
        .unwrap();
    clock.advance(ms(settings().min_refetch_interval));
    let flood: Vec<_> = (0..100)
        .map(|_| {
            let (cache, source) = (cache.clone(), source.clone());
            tokio::spawn(async move { cache.refetch(&provider(), discovery_source(&source)).await })
        })
        .collect();
    let mut answered = 0;
    for task in flood {
        match task.await.unwrap() {
            Ok(keys) => assert!(keys.find("rsa").is_some()),
            Err(e) => assert_eq!(e, JwksError::RefetchTooSoon),
        }
        answered += 1;
    }
    assert_eq!(answered, 100);
    assert_eq!(cache.fetches(), 2);
    assert_eq!(issuer.count("/jwks"), 2);
    assert_eq!(issuer.count(DISCOVERY), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_share_one_fetch() {
    let issuer = Issuer::start_slow(Duration::from_millis(50), standard).await;
    let cache = Arc::new(cache(&Clock::fixed(0)));
    let source = issuer.source();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (cache, source) = (cache.clone(), source.clone());
            tokio::spawn(async move { cache.keys(&provider(), discovery_source(&source)).await })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().is_ok());
    }
    assert_eq!(cache.fetches(), 1);
    assert_eq!(issuer.requests(), [DISCOVERY, "/jwks"]);
}

#[path = "jwks_document_tests.rs"]
mod documents;

//! Audit webhook delivery against a real receiver on loopback: signed bodies, retries after
//! failures, and nothing lost when the sending service is replaced (a restart).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{self, TestStore};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use keyplane::domain::time::Clock;
use keyplane::service::{NewProject, Principal, Service, WebhookSettings};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "test-webhook-secret-0123456789";

#[derive(Default)]
struct Receiver {
    /// Answer 500 to this many requests before accepting.
    fail_first: usize,
    seen: Vec<(HeaderMap, Bytes)>,
}

async fn receive(
    State(r): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut r = r.lock().unwrap();
    r.seen.push((headers, body));
    if r.seen.len() <= r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn start_receiver(fail_first: usize) -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver {
        fail_first,
        seen: vec![],
    }));
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

fn settings(url: &str) -> WebhookSettings {
    let mut s = WebhookSettings::new(url.to_owned(), SECRET.to_owned());
    s.initial_backoff = Duration::from_millis(50);
    s.max_backoff = Duration::from_millis(200);
    s.timeout = Duration::from_secs(2);
    s
}

/// Bootstraps the store without a webhook (so its two events are not queued) and returns the
/// first admin key's principal.
async fn admin(service: &Service, store: &TestStore) -> Principal {
    let plain = Service::new(store.store.clone(), Clock::system());
    let key = match plain.bootstrap(None).await.unwrap() {
        keyplane::service::Bootstrapped::Created { key, .. } => key,
        _ => panic!("fresh store"),
    };
    service
        .authenticate_admin(Some(key.expose()))
        .await
        .unwrap()
}

/// Runs delivery rounds until nothing is pending or 10 s pass.
async fn drain(service: &Service, store: &TestStore) {
    let client = ureq::AgentBuilder::new().build();
    for _ in 0..200 {
        service.deliver_audit_webhooks(&client).await.unwrap();
        if store.store.pending_webhook_deliveries().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("webhook deliveries still pending after 10 s");
}

fn verify_signature(headers: &HeaderMap, body: &[u8]) {
    let sig = headers["x-keyplane-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, want, "signature verifies with the shared secret");
}

#[tokio::test]
async fn events_are_signed_retried_and_delivered_once_accepted() {
    let (url, receiver) = start_receiver(2).await;
    let store = TestStore::from_env().await;
    let service =
        Service::new(store.store.clone(), Clock::system()).with_audit_webhook(settings(&url));
    let who = admin(&service, &store).await;
    let project = service
        .create_project(
            &who,
            NewProject {
                name: "Hooked".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    drain(&service, &store).await;

    let r = receiver.lock().unwrap();
    let bodies: Vec<Value> = r
        .seen
        .iter()
        .map(|(h, b)| {
            verify_signature(h, b);
            assert_eq!(h["content-type"], "application/json");
            let v: Value = serde_json::from_slice(b).unwrap();
            assert_eq!(h["x-keyplane-event-id"].to_str().unwrap(), v["id"]);
            assert_eq!(h["x-keyplane-event-type"].to_str().unwrap(), v["type"]);
            v
        })
        .collect();
    assert_eq!(bodies.len(), 3, "two refusals, then accepted");
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "a retry resends the same event"
    );
    assert_eq!(bodies[0]["type"], "project.created");
    assert_eq!(
        bodies[0]["project.created"]["id"],
        format!("proj_{}", project.id.as_str())
    );
}

#[tokio::test]
async fn undelivered_events_survive_a_restart() {
    // Nothing listens on this port: every attempt of the first service fails.
    let dead = format!("http://127.0.0.1:{}/hook", common::free_port());
    let store = TestStore::from_env().await;
    let first =
        Service::new(store.store.clone(), Clock::system()).with_audit_webhook(settings(&dead));
    let who = admin(&first, &store).await;
    for name in ["a", "b", "c"] {
        first
            .create_project(
                &who,
                NewProject {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let client = ureq::AgentBuilder::new().build();
    assert_eq!(first.deliver_audit_webhooks(&client).await.unwrap(), 0);
    assert_eq!(store.store.pending_webhook_deliveries().await.unwrap(), 3);
    drop(first);

    // A new process (same store) with a reachable receiver delivers all of them.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (url, receiver) = start_receiver(0).await;
    let second =
        Service::new(store.store.clone(), Clock::system()).with_audit_webhook(settings(&url));
    drain(&second, &store).await;
    let r = receiver.lock().unwrap();
    let mut names: Vec<String> = r
        .seen
        .iter()
        .map(|(_, b)| {
            let v: Value = serde_json::from_slice(b).unwrap();
            v["project.created"]["data"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

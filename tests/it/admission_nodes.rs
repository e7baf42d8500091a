//! Rate limits on three nodes sharing one PostgreSQL, behind a round-robin client: the figures
//! the README's error bound promises. Time is simulated (a fixed clock advanced in 250 ms
//! steps, each node syncing through the real database every step, as its 200 ms task would),
//! so three one-minute windows take seconds, not minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{self, TestStore};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use keyplane::domain::catalogue::ModelCatalogue;
use keyplane::domain::time::Clock;
use keyplane::http::{router, AppState};
use keyplane::service::{Bootstrapped, Service};
use keyplane::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Node {
    service: Service,
    router: axum::Router,
}

impl Node {
    fn new(store: Arc<dyn Store>, clock: &Clock) -> Self {
        let service = Service::new(store, clock.clone()).with_models(ModelCatalogue::default());
        let router = router(AppState::new(service.clone()));
        Node { service, router }
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

const STEP_MS: i64 = 250;

/// Drives `key` round-robin over the nodes, one request every `every_ms` of simulated time,
/// for three minutes; returns the requests admitted in each minute and the refusals.
async fn drive(nodes: &[Node], clock: &Clock, key: &str, every_ms: i64) -> (Vec<u32>, u32) {
    let mut admitted = vec![0u32; 3];
    let mut refused = 0;
    let mut next_send = 0;
    let mut turn = 0;
    let mut t = 0;
    while t < 180_000 {
        while next_send <= t {
            let node = &nodes[turn % nodes.len()];
            turn += 1;
            let (status, body) = node.call("GET", "/v1/auth/check", key, None).await;
            match status {
                204 => admitted[(t / 60_000) as usize] += 1,
                429 => refused += 1,
                other => panic!("unexpected {other}: {body}"),
            }
            next_send += every_ms;
        }
        clock.advance(STEP_MS);
        t += STEP_MS;
        for n in nodes {
            n.service.sync_admission().await.unwrap();
        }
    }
    (admitted, refused)
}

#[tokio::test]
async fn three_nodes_admit_within_five_percent_and_a_lowered_limit_binds_everywhere() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    // Whole seconds, so the simulated minutes line up with the one-second buckets.
    let start = (Clock::system().now() / 1000 + 1) * 1000;
    let clock = Clock::fixed(start);
    let stores = [
        db.store.clone(),
        db.another_node().await,
        db.another_node().await,
    ];
    let nodes: Vec<Node> = stores
        .iter()
        .map(|s| Node::new(s.clone(), &clock))
        .collect();
    let Bootstrapped::Created { key: admin, .. } = nodes[0].service.bootstrap(None).await.unwrap()
    else {
        panic!("not bootstrapped")
    };
    let admin = admin.expose().to_owned();
    for n in &nodes {
        common::wait_until_trusted(&n.service).await;
        n.service.load_admission().await.unwrap();
        n.service.sync_admission().await.unwrap();
    }
    let (_, project) = nodes[0]
        .call(
            "POST",
            "/v1/organization/projects",
            &admin,
            Some(json!({ "name": "p" })),
        )
        .await;
    let p = project["id"].as_str().unwrap().to_owned();
    let (_, account) = nodes[0]
        .call(
            "POST",
            &format!("/v1/organization/projects/{p}/service_accounts"),
            &admin,
            Some(json!({ "name": "bot", "create_service_account_only": true })),
        )
        .await;
    let account = account["id"].as_str().unwrap().to_owned();
    const N: i64 = 60;
    let new_key = |rpm: i64| {
        let path = format!("/v1/organization/projects/{p}/service_accounts/{account}/api_keys");
        let node = &nodes[0];
        let admin = admin.clone();
        async move {
            let (status, body) = node
                .call(
                    "POST",
                    &path,
                    &admin,
                    Some(json!({ "max_requests_per_1_minute": rpm })),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            (
                body["value"].as_str().unwrap().to_owned(),
                body["id"].as_str().unwrap().to_owned(),
            )
        }
    };

    // 2 × N a minute, round-robin over three nodes, three windows.
    let (flooded, _) = new_key(N).await;
    let (per_minute, refused) = drive(&nodes, &clock, &flooded, 60_000 / (2 * N)).await;
    println!("2N/min over 3 nodes, N = {N}: admitted per minute {per_minute:?}, refused {refused}");
    for admitted in &per_minute {
        let admitted = i64::from(*admitted);
        assert!(
            admitted * 100 >= 95 * N && admitted * 100 <= 105 * N,
            "admitted {admitted} of N = {N} in a minute: {per_minute:?}"
        );
    }

    // 80% of the limit is never refused.
    let (steady, steady_id) = new_key(N).await;
    let (per_minute, refused) = drive(&nodes, &clock, &steady, 60_000 * 100 / (80 * N)).await;
    println!("0.8N/min over 3 nodes: admitted per minute {per_minute:?}, refused {refused}");
    assert_eq!(refused, 0, "a client at 80% was refused");

    // A limit lowered on one node binds on all within a second (the change feed).
    let (status, body) = nodes[0]
        .call(
            "POST",
            &format!("/v1/organization/projects/{p}/api_keys/{steady_id}"),
            &admin,
            Some(json!({ "max_requests_per_1_minute": 0 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changed = Instant::now();
    for node in &nodes[1..] {
        loop {
            let (status, _) = node.call("GET", "/v1/auth/check", &steady, None).await;
            if status == 429 {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "the lowered limit did not bind within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "lowered limit binding on every node after {:?}",
        changed.elapsed()
    );
}

//! Several keyplane nodes on one PostgreSQL database, and a stuck database.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::TestStore;
use http_body_util::BodyExt;
use keyplane::domain::time::Clock;
use keyplane::http::{router, AppState};
use keyplane::service::{Bootstrapped, Service};
use keyplane::store::{PoolSettings, PostgresStore, Store};
use serde_json::{json, Value};
use sqlx::Connection;
use tower::ServiceExt;

struct Node(axum::Router);

impl Node {
    fn new(store: Arc<dyn Store>) -> Self {
        Node(router(AppState {
            service: Service::new(store, Clock::system()),
        }))
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = self.0.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn two_nodes_see_each_others_writes_at_once() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let a_store = db.store.clone();
    let b_store = db.another_node().await;
    let Bootstrapped::Created { key, .. } = Service::new(a_store.clone(), Clock::system())
        .bootstrap(None)
        .await
        .unwrap()
    else {
        panic!("not bootstrapped")
    };
    let key = key.expose().to_owned();
    // Node B starting on the same database does not initialise it again.
    let again = Service::new(b_store.clone(), Clock::system())
        .bootstrap(None)
        .await
        .unwrap();
    assert!(matches!(again, Bootstrapped::AlreadyInitialised));
    let (a, b) = (Node::new(a_store), Node::new(b_store));

    let (s, p) = a
        .call(
            "POST",
            "/v1/organization/projects",
            &key,
            Some(json!({"name": "shared"})),
        )
        .await;
    assert_eq!(s, 200);
    let project = p["id"].as_str().unwrap().to_owned();
    let accounts = format!("/v1/organization/projects/{project}/service_accounts");
    let mut created = vec![];
    for i in 0..5 {
        // Alternate nodes: each create is visible to the other in the very next request.
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (s, sa) = writer
            .call(
                "POST",
                &accounts,
                &key,
                Some(json!({"name": format!("svc{i}")})),
            )
            .await;
        assert_eq!(s, 200);
        let id = sa["id"].as_str().unwrap().to_owned();
        let (s, got) = reader
            .call("GET", &format!("{accounts}/{id}"), &key, None)
            .await;
        assert_eq!((s, got["name"].clone()), (200, json!(format!("svc{i}"))));
        created.push(id);
    }
    // Paginate on B what was written through both.
    let mut seen = vec![];
    let mut url = format!("{accounts}?limit=2");
    loop {
        let (s, page) = b.call("GET", &url, &key, None).await;
        assert_eq!(s, 200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_str().unwrap().to_owned()),
        );
        if page["has_more"] == false {
            break;
        }
        url = format!(
            "{accounts}?limit=2&after={}",
            page["last_id"].as_str().unwrap()
        );
    }
    assert_eq!(seen, created);
    // A delete on A is seen by B immediately.
    let (s, _) = a
        .call("DELETE", &format!("{accounts}/{}", created[0]), &key, None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = b
        .call("GET", &format!("{accounts}/{}", created[0]), &key, None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_stuck_database_answers_503_within_the_statement_timeout() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let url = db.pg.as_ref().unwrap().url.clone();
    let settings = PoolSettings {
        statement_timeout: Duration::from_millis(300),
        ..PoolSettings::default()
    };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&url, &settings).await.unwrap());
    let Bootstrapped::Created { key, .. } = Service::new(store.clone(), Clock::system())
        .bootstrap(None)
        .await
        .unwrap()
    else {
        panic!()
    };
    let node = Node::new(store);
    // Another session holds an exclusive lock on projects: every read of it blocks.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    let started = Instant::now();
    let (status, body) = node
        .call("GET", "/v1/organization/projects", key.expose(), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let (status, _) = node
        .call("GET", "/v1/organization/projects", key.expose(), None)
        .await;
    assert_eq!(status, 200, "recovers once the database does");
}

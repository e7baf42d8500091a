//! Several keyplane nodes on one PostgreSQL database, and a stuck database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{self, TestStore};
use axum::body::Body;
use axum::http::Request;
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
        Node(router(AppState::new(Service::new(store, Clock::system()))))
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

/// A node with its own store connection pool, service (cache, change feed) and router.
struct FullNode {
    service: Service,
    router: axum::Router,
}

impl FullNode {
    async fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        let service = Service::new(store, clock);
        common::wait_until_trusted(&service).await;
        let router = router(AppState::new(service.clone()));
        FullNode { service, router }
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        Node(self.router.clone())
            .call(method, path, key, body)
            .await
    }

    async fn check(&self, key: &str) -> u16 {
        self.call("GET", "/v1/auth/check", key, None).await.0
    }
}

/// Polls until every node refuses `key`; returns how long that took.
async fn until_refused_everywhere(nodes: &[&FullNode], key: &str) -> Duration {
    let started = Instant::now();
    loop {
        let mut all = true;
        for n in nodes {
            all &= n.check(key).await == 401;
        }
        if all {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a node kept accepting a dead key"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn three_nodes(db: &TestStore) -> (FullNode, FullNode, FullNode, String) {
    let a = FullNode::new(db.store.clone(), Clock::system()).await;
    let Bootstrapped::Created { key, .. } = a.service.bootstrap(None).await.unwrap() else {
        panic!("not bootstrapped")
    };
    let b = FullNode::new(db.another_node().await, Clock::system()).await;
    let c = FullNode::new(db.another_node().await, Clock::system()).await;
    (a, b, c, key.expose().to_owned())
}

async fn delete_key(node: &FullNode, admin: &str, project: &str, key_id: &str) {
    let (s, _) = node
        .call(
            "DELETE",
            &format!("/v1/organization/projects/{project}/api_keys/{key_id}"),
            admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
}

/// Three nodes and a project to put keys in.
async fn three_nodes_with_a_project(
    db: &TestStore,
) -> (FullNode, FullNode, FullNode, String, String) {
    let (a, b, c, admin) = three_nodes(db).await;
    let (_, p) = a
        .call(
            "POST",
            "/v1/organization/projects",
            &admin,
            Some(json!({"name": "p"})),
        )
        .await;
    let p = p["id"].as_str().unwrap().to_owned();
    (a, b, c, admin, p)
}

async fn new_key(node: &FullNode, admin: &str, project: &str) -> (String, String, String) {
    let (s, sa) = node
        .call(
            "POST",
            &format!("/v1/organization/projects/{project}/service_accounts"),
            admin,
            Some(json!({"name": "svc"})),
        )
        .await;
    assert_eq!(s, 200);
    (
        sa["id"].as_str().unwrap().to_owned(),
        sa["api_key"]["value"].as_str().unwrap().to_owned(),
        sa["api_key"]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_change_on_one_node_stops_the_key_on_every_node_within_a_second() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let (a, b, c, admin, p) = three_nodes_with_a_project(&db).await;

    // Created on A, verified (and so cached) on B and C, deleted on C.
    let (_, key, key_id) = new_key(&a, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    delete_key(&c, &admin, &p, &key_id).await;
    let took = until_refused_everywhere(&[&a, &b, &c], &key).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // Expired by an update on B.
    let (_, key, key_id) = new_key(&a, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    b.call(
        "POST",
        &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
        &admin,
        Some(json!({"expires_in_seconds": 1})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let took = until_refused_everywhere(&[&a, &b, &c], &key).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // Account deleted on A.
    let (sa, key, _) = new_key(&b, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    a.call(
        "DELETE",
        &format!("/v1/organization/projects/{p}/service_accounts/{sa}"),
        &admin,
        None,
    )
    .await;
    assert!(until_refused_everywhere(&[&a, &b, &c], &key).await < Duration::from_secs(1));

    // Project archived on C.
    let (_, key, _) = new_key(&a, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    c.call(
        "POST",
        &format!("/v1/organization/projects/{p}/archive"),
        &admin,
        None,
    )
    .await;
    assert!(until_refused_everywhere(&[&a, &b, &c], &key).await < Duration::from_secs(1));
}

#[tokio::test]
async fn a_cut_notification_connection_does_not_let_a_dead_key_through() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let (a, b, c, admin, p) = three_nodes_with_a_project(&db).await;
    let url = db.pg.as_ref().unwrap().url.clone();
    let mut ops = sqlx::PgConnection::connect(&url).await.unwrap();
    let cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
               WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()";

    for round in 0..2 {
        let (_, key, key_id) = new_key(&a, &admin, &p).await;
        for n in [&a, &b, &c] {
            assert_eq!(n.check(&key).await, 204);
        }
        // Every node loses its change feed; the delete on C is announced to nobody.
        let cut_count = sqlx::query(cut)
            .execute(&mut ops)
            .await
            .unwrap()
            .rows_affected();
        assert!(cut_count >= 3, "round {round}: cut {cut_count} listeners");
        delete_key(&c, &admin, &p, &key_id).await;
        let took = until_refused_everywhere(&[&a, &b, &c], &key).await;
        assert!(
            took < Duration::from_secs(1),
            "round {round}: took {took:?}"
        );
        // The feeds come back and the caches are trusted (and used) again.
        for n in [&a, &b, &c] {
            common::wait_until_trusted(&n.service).await;
        }
    }
    // After reconnecting, invalidation by notification works as before.
    let (_, key, key_id) = new_key(&a, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    b.call(
        "DELETE",
        &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
        &admin,
        None,
    )
    .await;
    assert!(until_refused_everywhere(&[&a, &b, &c], &key).await < Duration::from_secs(1));
}

#[tokio::test]
async fn garbage_on_the_change_channel_does_not_end_the_feed() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let (a, b, c, admin, p) = three_nodes_with_a_project(&db).await;
    let (_, key, key_id) = new_key(&a, &admin, &p).await;
    for n in [&a, &b, &c] {
        assert_eq!(n.check(&key).await, 204);
    }
    // Anyone who can connect to the database can NOTIFY the channel with any text. 64 bytes
    // that are not 64 characters used to panic the listener and leave the cache trusted
    // with nobody invalidating it.
    let url = db.pg.as_ref().unwrap().url.clone();
    let mut ops = sqlx::PgConnection::connect(&url).await.unwrap();
    let garbage = [
        format!("h:a{}a", "\u{e9}".repeat(31)),
        format!("h:{}", "\u{e9}".repeat(32)),
        format!("h:{}", "\u{1f511}".repeat(16)),
        format!("k:{}", "\u{fc}".repeat(26)),
        format!("h:{}", "zz".repeat(32)),
        "h:".into(),
        ":".into(),
        "garbage".into(),
        "x".repeat(7900),
    ];
    for payload in &garbage {
        sqlx::query("SELECT pg_notify('keyplane_changes', $1)")
            .bind(payload)
            .execute(&mut ops)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in [&a, &b, &c] {
        assert!(n.service.cache().is_trusted());
        assert_eq!(n.check(&key).await, 204, "still served from the cache");
    }
    // The feed still works: a delete on C reaches A and B within the bound.
    delete_key(&c, &admin, &p, &key_id).await;
    let took = until_refused_everywhere(&[&a, &b, &c], &key).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn last_used_at_batches_from_several_nodes_keep_the_latest_use() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    const T0: i64 = 1_800_000_000_000;
    let a = FullNode::new(db.store.clone(), Clock::fixed(T0 + 1_000)).await;
    let Bootstrapped::Created { key, .. } = a.service.bootstrap(None).await.unwrap() else {
        panic!()
    };
    let admin = key.expose().to_owned();
    let b = FullNode::new(db.another_node().await, Clock::fixed(T0 + 5_000)).await;
    let (_, p) = a
        .call(
            "POST",
            "/v1/organization/projects",
            &admin,
            Some(json!({"name": "p"})),
        )
        .await;
    let p = p["id"].as_str().unwrap().to_owned();
    let (_, key, key_id) = new_key(&a, &admin, &p).await;
    assert_eq!(a.check(&key).await, 204);
    assert_eq!(b.check(&key).await, 204);
    // The later use is written first; the earlier batch must not move it back.
    b.service.flush_usage().await.unwrap();
    a.service.flush_usage().await.unwrap();
    let (_, k) = a
        .call(
            "GET",
            &format!("/v1/organization/projects/{p}/api_keys/{key_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(k["last_used_at"], (T0 + 5_000) / 1000);
}

//! Crash safety: concurrent creates against the binary, SIGKILL at a random moment, restart on
//! the same data. Every create that was answered must still be there, whole, with its audit
//! entry, and its key or secret must still authenticate; a create that was cut off may be
//! there or not, but never half-written.
//!
//! `CRASH_SEED=<n>` replays a run (the seed is printed). `KEYPLANE_BIN` picks the binary
//! (scripts/test runs this once more against the release build).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{try_request, TestStore};
use base64::Engine;
use keyplane::domain::keys::{KeyKind, PlainKey};
use serde_json::Value;
use sqlx::Connection;

const ROUNDS: usize = 3;
const CLIENTS: u64 = 16;

/// splitmix64: a seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// What the server acknowledged (a complete 2xx answer reached the client).
#[derive(Default)]
struct Acked {
    /// (`svc_acct_…`, key values with their `key_…` ids)
    accounts: Vec<(String, Vec<(String, String)>)>,
    /// Keycard account ids.
    kc_accounts: Vec<String>,
    /// (account id, credential id, client id, client secret)
    credentials: Vec<(String, String, String, String)>,
}

impl Acked {
    fn merge(&mut self, other: Acked) {
        self.accounts.extend(other.accounts);
        self.kc_accounts.extend(other.kc_accounts);
        self.credentials.extend(other.credentials);
    }

    fn creates(&self) -> usize {
        self.accounts
            .iter()
            .map(|(_, k)| 1 + k.len())
            .sum::<usize>()
            + self.kc_accounts.len()
            + self.credentials.len()
    }
}

/// A JSON answer with one of `ok` statuses, or `None`: refused, cut off or unreachable.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
    ok: u16,
) -> Option<Value> {
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _, body) = try_request(addr, method, path, &headers, body).ok()?;
    // A body cut off by the kill does not parse: the create was not acknowledged.
    (status == ok).then(|| serde_json::from_str(&body).ok())?
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_else(|| panic!("no {path:?} in {v}"))
}

/// One client: creates until `stop`, recording what was acknowledged.
fn client(addr: SocketAddr, admin: &str, project: &str, mut rng: Rng, stop: &AtomicBool) -> Acked {
    let mut acked = Acked::default();
    let accounts = format!("/v1/organization/projects/{project}/service_accounts");
    let kc_accounts = "/organizations/default/service-accounts";
    while !stop.load(Ordering::Relaxed) {
        match rng.below(10) {
            0..=4 => {
                if let Some(v) = call(addr, "POST", &accounts, admin, r#"{"name":"crash"}"#, 200) {
                    let key = (
                        str_at(&v, &["api_key", "value"]).to_owned(),
                        str_at(&v, &["api_key", "id"]).to_owned(),
                    );
                    acked
                        .accounts
                        .push((str_at(&v, &["id"]).to_owned(), vec![key]));
                }
            }
            5 | 6 if !acked.accounts.is_empty() => {
                let i = rng.below(acked.accounts.len() as u64) as usize;
                let path = format!("{accounts}/{}/api_keys", acked.accounts[i].0);
                if let Some(v) = call(addr, "POST", &path, admin, r#"{"name":"more"}"#, 200) {
                    let key = (
                        str_at(&v, &["value"]).to_owned(),
                        str_at(&v, &["id"]).to_owned(),
                    );
                    acked.accounts[i].1.push(key);
                }
            }
            _ => {
                let Some(v) = call(addr, "POST", kc_accounts, admin, r#"{"name":"kc"}"#, 201)
                else {
                    continue;
                };
                let account = str_at(&v, &["id"]).to_owned();
                acked.kc_accounts.push(account.clone());
                let path = format!("{kc_accounts}/{account}/credentials");
                if let Some(c) = call(addr, "POST", &path, admin, r#"{"name":"cred"}"#, 201) {
                    acked.credentials.push((
                        account,
                        str_at(&c, &["id"]).to_owned(),
                        str_at(&c, &["client_id"]).to_owned(),
                        str_at(&c, &["client_secret"]).to_owned(),
                    ));
                }
            }
        }
    }
    acked
}

/// Runs the clients for `run_for`, then SIGKILLs the server mid-load.
fn load_then_kill(
    mut server: Server,
    admin: &str,
    project: &str,
    rng: &mut Rng,
    run_for: Duration,
) -> Acked {
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (admin, project, stop) = (admin.to_owned(), project.to_owned(), stop.clone());
            let rng = Rng(rng.next());
            std::thread::spawn(move || client(addr, &admin, &project, rng, &stop))
        })
        .collect();
    std::thread::sleep(run_for);
    // Child::kill is SIGKILL: no shutdown code runs.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acked::default();
    for w in workers {
        acked.merge(w.join().unwrap());
    }
    acked
}

/// Every acknowledged create is present through the API, authenticates, and has its audit entry.
fn check_acknowledged(addr: SocketAddr, admin: &str, project: &str, acked: &Acked) {
    let get = |path: &str| {
        let auth = format!("Bearer {admin}");
        try_request(addr, "GET", path, &[("Authorization", &auth)], "").unwrap()
    };
    let mut audited: Vec<(String, &str)> = vec![];
    for (account, keys) in &acked.accounts {
        let (status, _, body) = get(&format!(
            "/v1/organization/projects/{project}/service_accounts/{account}"
        ));
        assert_eq!(
            status, 200,
            "acknowledged account {account} is gone: {body}"
        );
        audited.push((account.clone(), "service_account.created"));
        for (value, id) in keys {
            let auth = format!("Bearer {value}");
            let (status, _, body) = try_request(
                addr,
                "GET",
                "/v1/auth/check",
                &[("Authorization", &auth)],
                "",
            )
            .unwrap();
            assert_eq!(status, 204, "acknowledged key {id} does not verify: {body}");
            audited.push((id.clone(), "api_key.created"));
        }
    }
    for account in &acked.kc_accounts {
        let (status, _, body) = get(&format!(
            "/organizations/default/service-accounts/{account}"
        ));
        assert_eq!(
            status, 200,
            "acknowledged Keycard account {account} is gone: {body}"
        );
        audited.push((format!("svc_acct_{account}"), "service_account.created"));
    }
    for (account, credential, client_id, secret) in &acked.credentials {
        let (status, _, body) = get(&format!(
            "/organizations/default/service-accounts/{account}/credentials/{credential}"
        ));
        assert_eq!(
            status, 200,
            "acknowledged credential {credential} is gone: {body}"
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        );
        let headers = [
            ("Authorization", basic.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        let (status, _, body) = try_request(
            addr,
            "POST",
            "/service-account-token",
            &headers,
            "grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!(
            status, 200,
            "acknowledged credential {credential} gets no token: {body}"
        );
        audited.push((credential.clone(), "credential.created"));
    }
    // Up to 20 resources per audit query, each with a single creation event.
    for chunk in audited.chunks(20) {
        let query: Vec<String> = chunk
            .iter()
            .map(|(id, _)| format!("resource_ids%5B%5D={id}"))
            .collect();
        let (status, _, body) = get(&format!(
            "/v1/organization/audit_logs?limit=100&{}",
            query.join("&")
        ));
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let entries = page["data"].as_array().unwrap();
        for (id, event_type) in chunk {
            assert!(
                entries.iter().any(|e| e["type"] == *event_type
                    && e[*event_type]["id"].as_str() == Some(id.as_str())),
                "no {event_type} audit entry for acknowledged {id}"
            );
        }
    }
}

/// Whatever is in the database is whole: read directly, so creates nobody saw an answer for
/// are checked too. Each query counts violations.
const WHOLENESS: [(&str, &str); 6] = [
    (
        "a live project service account without a live key",
        "SELECT COUNT(*) FROM service_accounts s WHERE s.deleted_at IS NULL \
         AND s.project_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM api_keys k \
         WHERE k.service_account_id = s.id AND k.revoked_at IS NULL)",
    ),
    (
        "a service-account key without its account",
        "SELECT COUNT(*) FROM api_keys k WHERE k.kind = 'service_account' AND NOT EXISTS \
         (SELECT 1 FROM service_accounts s WHERE s.id = k.service_account_id)",
    ),
    (
        "a credential without its account",
        "SELECT COUNT(*) FROM credentials c WHERE NOT EXISTS \
         (SELECT 1 FROM service_accounts s WHERE s.id = c.service_account_id)",
    ),
    (
        "a service account without its creation audit event",
        "SELECT COUNT(*) FROM service_accounts s WHERE NOT EXISTS (SELECT 1 FROM audit_events e \
         WHERE e.resource_id = 'svc_acct_' || s.id AND e.event_type = 'service_account.created')",
    ),
    (
        "a service-account key without its creation audit event",
        "SELECT COUNT(*) FROM api_keys k WHERE k.kind = 'service_account' AND NOT EXISTS \
         (SELECT 1 FROM audit_events e WHERE e.resource_id = 'key_' || k.id \
         AND e.event_type = 'api_key.created')",
    ),
    (
        "a credential without its creation audit event",
        "SELECT COUNT(*) FROM credentials c WHERE NOT EXISTS (SELECT 1 FROM audit_events e \
         WHERE e.resource_id = c.id AND e.event_type = 'credential.created')",
    ),
];

async fn check_whole(db: &TestStore) {
    let mut violations = vec![];
    match &db.pg {
        Some(pg) => {
            let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
            for (what, sql) in WHOLENESS {
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
                violations.push((what, n));
            }
        }
        None => {
            let url = format!(
                "sqlite://{}?mode=ro",
                db.dir.path().join("keyplane.db").display()
            );
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for (what, sql) in WHOLENESS {
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
                violations.push((what, n));
            }
        }
    }
    for (what, n) in violations {
        assert_eq!(n, 0, "{n} × {what}");
    }
}

async fn survives_sigkill(db: TestStore) {
    db.store.close().await;
    let seed = seed();
    eprintln!("crash_safety {:?}: CRASH_SEED={seed}", db.backend);
    let mut rng = Rng(seed);
    let admin = PlainKey::generate(KeyKind::Admin).unwrap();
    let admin = admin.expose();
    let started = Instant::now();
    let mut server = Server::start(&db, Some(admin));
    let (status, _, body) = try_request(
        server.addr,
        "POST",
        "/v1/organization/projects",
        &[
            ("Authorization", &format!("Bearer {admin}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"crash"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let project = str_at(&serde_json::from_str(&body).unwrap(), &["id"]).to_owned();

    let mut acked = Acked::default();
    for round in 1..=ROUNDS {
        let run_for = Duration::from_millis(300 + rng.below(1200));
        let this_round = load_then_kill(server, admin, &project, &mut rng, run_for);
        eprintln!(
            "crash_safety {:?} round {round}: killed after {run_for:?} with {} acknowledged creates",
            db.backend,
            this_round.creates()
        );
        acked.merge(this_round);
        server = Server::start(&db, None);
        // Cumulative: a later crash must not lose what an earlier round wrote.
        check_acknowledged(server.addr, admin, &project, &acked);
        check_whole(&db).await;
    }
    assert!(acked.creates() > 0, "the load created nothing");
    server.stop();
    eprintln!(
        "crash_safety {:?}: {} acknowledged creates verified in {:?}",
        db.backend,
        acked.creates(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_keeps_every_acknowledged_create_across_sigkill() {
    survives_sigkill(TestStore::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_keeps_every_acknowledged_create_across_sigkill() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    survives_sigkill(db).await;
}

//! Isolation and authorization, for every documented operation of both dialects. The list of
//! operations comes from the app's own OpenAPI document, so a new endpoint is covered (or, if
//! it has a new kind of path parameter, this test fails until it is taught which object of
//! organization A the parameter names).
//!
//! - Organization B's admin key gets 404 for every object of organization A, and sees none of
//!   A's IDs where it names no object;
//! - A's read-only admin key (`api.management.read`) reads, and gets 403 `missing_scope` on
//!   every write;
//! - a service account's key (`sk-svcacct-…`) is never an admin key, and a Keycard access
//!   token never changes anything;
//! - and A's objects are exactly as they were afterwards.

use crate::common::{Resp, TestApp, KC_ORG};
use serde_json::{json, Value};

/// Operations that use POST to read (the body carries a secret, which a URL must not).
const READS_BY_POST: [&str; 1] = ["/v1/keys/verify"];

struct Operation {
    method: String,
    path: String,
    /// Authenticated with an admin key (either dialect), as opposed to a service key, a client
    /// secret or nothing.
    admin: bool,
}

impl Operation {
    fn keycard(&self) -> bool {
        self.path.starts_with("/organizations/")
    }

    fn writes(&self) -> bool {
        self.method != "GET" && !READS_BY_POST.contains(&self.path.as_str())
    }

    /// Names an object other than the organization.
    fn has_object_ids(&self) -> bool {
        self.path.replace("{organization_id}", "").contains('{')
    }
}

fn operations() -> Vec<Operation> {
    let doc = serde_json::to_value(keyplane::http::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let admin = op["security"].as_array().is_some_and(|reqs| {
                reqs.iter()
                    .any(|r| r.get("admin_key").is_some() || r.get("keycard_bearer").is_some())
            });
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                admin,
            });
        }
    }
    assert!(
        out.iter().filter(|o| o.admin).count() >= 25,
        "suspiciously few admin operations"
    );
    out
}

/// Organization A's objects, in both dialects' forms.
struct World {
    org: String,
    project: String,
    account: String,
    key_id: String,
    key_value: String,
    admin_key_id: String,
    kc_account: String,
    credential: String,
    token: String,
    reader: String,
    provider: String,
    rule: String,
}

impl World {
    async fn build(app: &TestApp) -> Self {
        let project = app.create_project("A's project").await;
        let (account, key_value, key_id) = app.create_account(&project, "A's account").await;
        let r = app
            .post(
                "/v1/organization/admin_api_keys",
                json!({"name": "A's second admin key"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let admin_key_id = r.id();
        let r = app
            .post(
                "/v1/organization/admin_api_keys",
                json!({"name": "A's reader", "scopes": ["api.management.read"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["scopes"],
            json!(["api.management.read"]),
            "{}",
            r.text
        );
        let reader = r.body["value"].as_str().unwrap().to_owned();
        let kc = app.kc_create_account("A's keycard account").await;
        let kc_account = kc["id"].as_str().unwrap().to_owned();
        let c = app
            .kc_create_credential(&kc_account, "A's credential")
            .await;
        let token = app
            .kc_token(
                c["client_id"].as_str().unwrap(),
                c["client_secret"].as_str().unwrap(),
            )
            .await;
        let r = app
            .post(
                "/v1/organization/workload_identity_providers",
                json!({"name": "A's provider", "type": "oidc",
                       "issuer": "https://issuer.example", "audience": "keyplane"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let provider = r.id();
        let r = app
            .post(
                &format!(
                    "/v1/organization/workload_identity_providers/{provider}/federation_rules"
                ),
                json!({"project_id": project, "service_account_id": account,
                       "attribute_matchers": {"sub": "repo:a/b:ref:refs/heads/main"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let rule = r.id();
        Self {
            provider,
            rule,
            org: app.org_id_of(&app.admin_key).await,
            project,
            account,
            key_id,
            key_value,
            admin_key_id,
            kc_account,
            credential: c["id"].as_str().unwrap().to_owned(),
            token,
            reader,
        }
    }

    /// `op`'s path naming A's objects, in the organization `org` (Keycard paths).
    fn fill(&self, op: &Operation, org: &str) -> String {
        let account = if op.keycard() {
            &self.kc_account
        } else {
            &self.account
        };
        let path = op
            .path
            .replace("{organization_id}", org)
            .replace("{project_id}", &self.project)
            .replace("{service_account_id}", account)
            .replace("{api_key_id}", &self.key_id)
            .replace("{key_id}", &self.admin_key_id)
            .replace("{credential_id}", &self.credential)
            .replace("{rate_limit_id}", "rl-*")
            .replace("{workload_identity_provider_id}", &self.provider)
            .replace("{workload_identity_federation_rule_id}", &self.rule);
        assert!(
            !path.contains('{'),
            "{} {}: a path parameter this matrix does not know; add which object of \
             organization A it names to World::fill",
            op.method,
            op.path
        );
        path
    }

    /// A's object IDs without prefixes: none may appear in what B sees.
    fn bare_ids(&self) -> Vec<String> {
        [
            &self.project,
            &self.account,
            &self.key_id,
            &self.admin_key_id,
            &self.kc_account,
            &self.credential,
            &self.provider,
            &self.rule,
        ]
        .iter()
        .map(|id| id.rsplit('_').next().unwrap().to_owned())
        .collect()
    }

    /// Everything of A's, read with A's full admin key, minus the usage timestamps reading
    /// moves.
    async fn snapshot(&self, app: &TestApp) -> Value {
        let (p, a, o) = (&self.project, &self.account, &self.kc_account);
        let paths = [
            "/v1/organization/projects?limit=100&include_archived=true".to_owned(),
            format!("/v1/organization/projects/{p}"),
            format!("/v1/organization/projects/{p}/service_accounts?limit=100"),
            format!("/v1/organization/projects/{p}/service_accounts/{a}"),
            format!("/v1/organization/projects/{p}/api_keys?limit=100"),
            format!("/v1/organization/projects/{p}/api_keys/{}", self.key_id),
            "/v1/organization/admin_api_keys?limit=100".to_owned(),
            format!("/v1/organization/admin_api_keys/{}", self.admin_key_id),
            format!("/organizations/{KC_ORG}/service-accounts?limit=100"),
            format!("/organizations/{KC_ORG}/service-accounts/{o}"),
            format!("/organizations/{KC_ORG}/service-accounts/{o}/credentials"),
            format!(
                "/organizations/{KC_ORG}/service-accounts/{o}/credentials/{}",
                self.credential
            ),
            "/v1/organization/workload_identity_providers?limit=100".to_owned(),
            format!(
                "/v1/organization/workload_identity_providers/{}",
                self.provider
            ),
            format!(
                "/v1/organization/workload_identity_providers/{}/federation_rules?limit=100",
                self.provider
            ),
            format!(
                "/v1/organization/workload_identity_providers/{}/federation_rules/{}",
                self.provider, self.rule
            ),
        ];
        let mut out = serde_json::Map::new();
        for path in paths {
            let r = app.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            out.insert(path, without_usage(r.body));
        }
        Value::Object(out)
    }
}

fn without_usage(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with("last_used"))
                .map(|(k, v)| (k, without_usage(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_usage).collect()),
        other => other,
    }
}

async fn call(app: &TestApp, op: &Operation, path: &str, key: &str, world: &World) -> Resp {
    let body = (op.method != "GET" && op.method != "DELETE").then(|| {
        // Valid for every write, so a refusal is about who asks, not about the body.
        json!({"name": "matrix", "key": world.key_value, "data": [],
               "type": "oidc", "issuer": "https://matrix.example", "audience": "matrix",
               "project_id": world.project, "service_account_id": world.account,
               "attribute_matchers": {"sub": "matrix"}})
        .to_string()
    });
    app.send(&op.method, path, Some(key), body).await
}

/// The code of an error in `op`'s dialect, after checking its envelope and status.
fn error_code(op: &Operation, r: &Resp, status: u16) -> String {
    if op.keycard() {
        r.kc_error(status).to_owned()
    } else {
        assert_eq!(r.status.as_u16(), status, "{}", r.text);
        r.error()["code"].as_str().unwrap_or_default().to_owned()
    }
}

#[tokio::test]
async fn another_organizations_admin_key_finds_nothing_of_a() {
    let app = TestApp::new().await;
    let world = World::build(&app).await;
    let b_key = app.other_org("bravo").await;
    let b_org = app.org_id_of(&b_key).await;
    let before = world.snapshot(&app).await;
    let a_ids = world.bare_ids();
    let mut checked = 0;
    for op in operations().iter().filter(|o| o.admin) {
        let what = format!("{} {}", op.method, op.path);
        if op.keycard() {
            // A's organization in the path is itself "not found" to B.
            let r = call(&app, op, &world.fill(op, &world.org), &b_key, &world).await;
            assert_eq!(error_code(op, &r, 404), "not_found", "{what}");
        }
        let path = world.fill(op, &b_org);
        let r = call(&app, op, &path, &b_key, &world).await;
        if op.has_object_ids() {
            assert_eq!(error_code(op, &r, 404), "not_found", "{what}: {}", r.text);
        } else {
            // Lists, creates, the audit log, keys/verify: B's own world, with nothing of A's.
            assert!(r.status.is_success(), "{what}: {}", r.text);
            for id in &a_ids {
                assert!(
                    !r.text.contains(id.as_str()),
                    "{what} shows A's {id}: {}",
                    r.text
                );
            }
            if path == "/v1/keys/verify" {
                assert_eq!(r.body["valid"], false, "B verifies A's key: {}", r.text);
            }
        }
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
    assert_eq!(world.snapshot(&app).await, before, "A's objects changed");
}

#[tokio::test]
async fn a_read_only_admin_key_reads_and_writes_nothing() {
    let app = TestApp::new().await;
    let world = World::build(&app).await;
    let before = world.snapshot(&app).await;
    let mut writes = 0;
    for op in operations().iter().filter(|o| o.admin) {
        let what = format!("{} {}", op.method, op.path);
        let r = call(&app, op, &world.fill(op, &world.org), &world.reader, &world).await;
        if op.writes() {
            assert_eq!(error_code(op, &r, 403), "missing_scope", "{what}");
            let message = if op.keycard() {
                r.body["message"].as_str()
            } else {
                r.body["error"]["message"].as_str()
            };
            // Usage reports need `api.usage.write`, which `api.management.write` implies.
            let scope = if op.path == "/v1/usage" {
                "api.usage.write"
            } else {
                "api.management.write"
            };
            assert!(
                message.unwrap().contains(scope),
                "{what}: the message names the missing scope: {}",
                r.text
            );
            writes += 1;
        } else {
            assert_eq!(r.status, 200, "{what}: {}", r.text);
        }
    }
    assert!(writes >= 14, "{writes}");
    assert_eq!(world.snapshot(&app).await, before, "A's objects changed");

    // Keycard shows it truthfully.
    let r = app
        .send(
            "GET",
            &format!(
                "/organizations/{KC_ORG}/service-accounts/{}?expand=permissions",
                world.kc_account
            ),
            Some(&world.reader),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = r.text.clone();
    assert!(
        text.contains("\"create\":false") && text.contains("\"read\":true"),
        "{text}"
    );
}

#[tokio::test]
async fn service_account_keys_and_access_tokens_are_never_admin_keys() {
    let app = TestApp::new().await;
    let world = World::build(&app).await;
    let before = world.snapshot(&app).await;
    for op in operations().iter().filter(|o| o.admin) {
        let what = format!("{} {}", op.method, op.path);
        let path = world.fill(op, &world.org);
        let r = call(&app, op, &path, &world.key_value, &world).await;
        let expected = if op.keycard() {
            "unauthorized"
        } else {
            "invalid_api_key"
        };
        assert_eq!(error_code(op, &r, 401), expected, "{what}");
        assert!(
            !r.text.contains(&world.key_value),
            "{what}: the key is echoed: {}",
            r.text
        );
        // Access tokens may read the Keycard view (their documented use), nothing else.
        if op.keycard() && !op.writes() {
            continue;
        }
        let r = call(&app, op, &path, &world.token, &world).await;
        assert!(
            r.status == 401 || r.status == 403,
            "{what} with an access token: {} {}",
            r.status,
            r.text
        );
    }
    assert_eq!(world.snapshot(&app).await, before, "A's objects changed");
}

#[tokio::test]
async fn admin_key_scopes_are_checked_shown_and_minted_by_the_command() {
    let app = TestApp::new().await;
    for bad in [json!([]), json!(["api.management.delete"]), json!("x")] {
        let r = app
            .post(
                "/v1/organization/admin_api_keys",
                json!({"name": "bad", "scopes": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.error()["param"], "scopes", "{}", r.text);
    }
    // Write alone implies read; the default is both.
    let r = app
        .post(
            "/v1/organization/admin_api_keys",
            json!({"name": "writer", "scopes": ["api.management.write"]}),
        )
        .await;
    assert_eq!(
        r.body["scopes"],
        json!(["api.management.read", "api.management.write"]),
        "{}",
        r.text
    );
    let r = app.get("/v1/organization/admin_api_keys?limit=100").await;
    for k in r.body["data"].as_array().unwrap() {
        assert!(k["scopes"].as_array().is_some(), "{k}");
    }
    // `keyplane admin-key create --read-only` goes through this.
    let reader = app
        .service
        .create_admin_key_for_label(KC_ORG, true)
        .await
        .unwrap();
    let who = app
        .service
        .authenticate_admin(Some(reader.expose()))
        .await
        .unwrap();
    assert!(matches!(
        who.access,
        keyplane::service::Access::AdminReader(_)
    ));
    let r = app
        .send(
            "POST",
            "/v1/organization/projects",
            Some(reader.expose()),
            Some(json!({"name": "nope"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error()["code"], "missing_scope");
}

//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1 and self-consistent, it describes
//! exactly what the router serves, real responses conform to it, and the docs page renders every
//! operation in a real (headless) Chromium.
//!
//! The Chromium test needs the Debian `chromium` package; without it the test is skipped, with
//! the reason printed, except under `CI=true`, where it fails.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{kc_accounts, kc_credentials, TestApp, KC_ORG};
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let r = app.send("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.body.is_object(),
        "not JSON: {}",
        &r.text[..r.text.len().min(200)]
    );
    r.body
}

/// (METHOD, path) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) || method == "head" || method == "options" {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_self_consistent() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "suspiciously few $refs: {}", refs.len());
    for r in refs {
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r}");
    }

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = HashSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{what} has no responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what} has no success response"
        );
        let id = op["operationId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} is not unique");
        assert!(op["tags"][0].is_string(), "{what} has no tag");
        assert!(op["summary"].is_string(), "{what} has no summary");
        // Every `{name}` in the path is a documented, required path parameter.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                "{what}: path parameter {name} is not documented"
            );
        }
        for requirement in op["security"].as_array().cloned().unwrap_or_default() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains_key(scheme),
                    "{what}: unknown scheme {scheme}"
                );
            }
        }
        // Authenticated API operations state their 4xx in the dialect's envelope.
        if path.starts_with("/v1/organization") || path.starts_with("/organizations/") {
            for status in ["400", "401"] {
                assert!(responses.contains_key(status), "{what} lacks {status}");
            }
            if path.contains('{') {
                assert!(responses.contains_key("404"), "{what} lacks 404");
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{what} lacks 413");
            }
        }
    }
    let token = &doc["paths"]["/service-account-token"]["post"];
    assert!(token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
}

/// Path parameters replaced by plausible values, so the request reaches the route.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x0" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a response came from a router fallback rather than a route.
fn unrouted(status: u16, body: &Value) -> bool {
    let code = body["error"]["code"]
        .as_str()
        .or(body["code"].as_str())
        .unwrap_or("");
    let message = body["message"].as_str().unwrap_or("");
    status == 405
        || (status == 404 && (code == "unknown_url" || message.starts_with("No route for")))
}

#[tokio::test]
async fn the_document_lists_exactly_what_the_router_serves() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS.map(str::to_uppercase) {
            let req = Request::builder()
                .method(method.as_str())
                .uri(concrete(path))
                .body(Body::empty())
                .unwrap();
            let r = app.raw(req).await;
            let served = !unrouted(r.status.as_u16(), &r.body);
            let listed = documented.contains(&(method.clone(), path.clone()));
            // The gateway check answers every method; the document lists GET and POST.
            if path.starts_with("/v1/auth/check") && served && !listed {
                continue;
            }
            assert_eq!(
                served, listed,
                "{method} {path}: served {served} ({} {}), documented {listed}",
                r.status, r.text
            );
        }
    }
    // The other direction: routes exist only through `routes!`, which documents them; the one
    // plain `.route(…)` is the wildcard form of a documented path. A new plain route fails here.
    let mut plain_routes = Vec::new();
    for file in rust_files(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http"
    ))) {
        let text = std::fs::read_to_string(&file).unwrap();
        // A route registration names its path as a literal: `.route("/…", …)`.
        for line in text.lines().filter(|l| l.contains(".route(\"")) {
            plain_routes.push(line.trim().to_owned());
        }
    }
    assert_eq!(
        plain_routes,
        vec![r#".route("/auth/check/{*path}", any(verify::check))"#],
        "routes registered without documentation"
    );
    assert!(documented.contains(&("GET".into(), "/v1/auth/check/{path}".into())));
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Responses against the document: a small JSON Schema check covering what the document uses
// (type incl. type arrays, required, properties, items, additionalProperties, $ref, allOf,
// oneOf, enum, minimum/maximum).

fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = resolve(doc, r).ok_or(format!("{at}: unresolved {r}"))?;
        return check(doc, target, v, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, v, at)?;
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let matching = one.iter().filter(|s| check(doc, s, v, at).is_ok()).count();
        if matching == 0 {
            return Err(format!("{at}: matches none of oneOf: {v}"));
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            return Err(format!("{at}: {v} not in enum"));
        }
    }
    if let Value::Object(obj) = v {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                return Err(format!("{at}: required {name} missing in {v}"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, x, &format!("{at}.{k}"))?,
                None => {
                    if let Some(extra) = schema.get("additionalProperties") {
                        if extra.is_object() {
                            check(doc, extra, x, &format!("{at}.{k}"))?;
                        }
                    }
                }
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, x) in items.iter().enumerate() {
            check(doc, s, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_schema_check_is_not_vacuous() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let project = json!({"$ref": "#/components/schemas/Project"});
    assert!(check(&doc, &project, &json!({}), "$").is_err());
    let mut p = json!({"id": "proj_1", "object": "organization.project", "name": "n",
        "created_at": 1, "archived_at": null, "status": "active", "external_key_id": null});
    assert_eq!(check(&doc, &project, &p, "$"), Ok(()));
    p["archived_at"] = json!("yesterday");
    assert!(check(&doc, &project, &p, "$").is_err());
    let error = json!({"$ref": "#/components/schemas/KeycardError"});
    assert!(check(&doc, &error, &json!({"message": "m", "code": "c"}), "$").is_err());
}

/// Checks a response against the documented one for its operation and status.
fn conforms(doc: &Value, method: &str, path: &str, r: &common::Resp) {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let status = r.status.as_u16().to_string();
    let documented = &op["responses"][&status];
    assert!(
        documented.is_object(),
        "{method} {path}: status {status} is not documented ({})",
        r.text
    );
    match documented["content"].as_object() {
        None => assert!(
            r.text.is_empty(),
            "{method} {path} {status}: undocumented body"
        ),
        Some(content) => {
            let (media, body) = content.iter().next().unwrap();
            if media == "application/json" {
                let schema = &body["schema"];
                if let Err(e) = check(doc, schema, &r.body, "$") {
                    panic!("{method} {path} {status}: {e}\n{}", r.text);
                }
            }
        }
    }
}

#[tokio::test]
async fn real_responses_conform_to_the_document() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let key = app.admin_key.clone();
    let k = Some(key.as_str());
    let call = async |method: &str, template: &str, path: &str, body: Option<Value>| {
        let r = app.send(method, path, k, body.map(|b| b.to_string())).await;
        conforms(&doc, method, template, &r);
        r
    };

    // OpenAI dialect.
    let p = call(
        "POST",
        "/v1/organization/projects",
        "/v1/organization/projects",
        Some(json!({"name": "Docs"})),
    )
    .await;
    let project = p.id();
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?limit=2",
        None,
    )
    .await;
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?limit=0",
        None,
    )
    .await;
    let one = "/v1/organization/projects/{project_id}";
    call(
        "GET",
        one,
        &format!("/v1/organization/projects/{project}"),
        None,
    )
    .await;
    call("GET", one, "/v1/organization/projects/proj_nope", None).await;
    call(
        "POST",
        one,
        &format!("/v1/organization/projects/{project}"),
        Some(json!({"external_key_id": "ext"})),
    )
    .await;
    call(
        "POST",
        one,
        &format!("/v1/organization/projects/{project}"),
        Some(json!({"name": 5})),
    )
    .await;
    let sas = "/v1/organization/projects/{project_id}/service_accounts";
    let created = call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        Some(json!({"name": "w"})),
    )
    .await;
    let account = created.id();
    call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        Some(json!({"name": "bare", "create_service_account_only": true})),
    )
    .await;
    call(
        "GET",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        None,
    )
    .await;
    let sa = "/v1/organization/projects/{project_id}/service_accounts/{service_account_id}";
    let sa_path = format!("/v1/organization/projects/{project}/service_accounts/{account}");
    call("GET", sa, &sa_path, None).await;
    call("POST", sa, &sa_path, Some(json!({"role": "owner"}))).await;
    let new_key = call(
        "POST",
        &format!("{sa}/api_keys"),
        &format!("{sa_path}/api_keys"),
        Some(json!({"name": "rot", "scopes": ["a"], "expires_in_seconds": 600})),
    )
    .await;
    let key_id = new_key.id();
    let value = new_key.body["value"].as_str().unwrap().to_owned();
    let keys = "/v1/organization/projects/{project_id}/api_keys";
    call(
        "GET",
        keys,
        &format!("/v1/organization/projects/{project}/api_keys?owner_project_access=active"),
        None,
    )
    .await;
    let kp = format!("/v1/organization/projects/{project}/api_keys/{key_id}");
    call("GET", &format!("{keys}/{{api_key_id}}"), &kp, None).await;
    call(
        "POST",
        &format!("{keys}/{{api_key_id}}"),
        &kp,
        Some(json!({"expires_in_seconds": null})),
    )
    .await;
    call(
        "POST",
        "/v1/keys/verify",
        "/v1/keys/verify",
        Some(json!({"key": value})),
    )
    .await;
    call(
        "POST",
        "/v1/keys/verify",
        "/v1/keys/verify",
        Some(json!({"key": "sk-svcacct-nope"})),
    )
    .await;
    call(
        "DELETE",
        &format!("{keys}/{{api_key_id}}"),
        &format!("{kp}?grace_period_seconds=5"),
        None,
    )
    .await;
    let admins = "/v1/organization/admin_api_keys";
    let admin = call("POST", admins, admins, Some(json!({"name": "second"}))).await;
    call("GET", admins, &format!("{admins}?order=desc"), None).await;
    call(
        "GET",
        &format!("{admins}/{{key_id}}"),
        &format!("{admins}/{}", admin.id()),
        None,
    )
    .await;
    call(
        "DELETE",
        &format!("{admins}/{{key_id}}"),
        &format!("{admins}/{}", admin.id()),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/organization/projects/{project_id}/archive",
        &format!("/v1/organization/projects/{project}/archive"),
        None,
    )
    .await;
    call("DELETE", sa, &sa_path, None).await;
    let big = json!({"name": "x".repeat(70 * 1024)});
    call(
        "POST",
        "/v1/organization/projects",
        "/v1/organization/projects",
        Some(big),
    )
    .await;
    let anonymous = app
        .send("GET", "/v1/organization/projects", None, None)
        .await;
    conforms(&doc, "GET", "/v1/organization/projects", &anonymous);

    // Keycard dialect.
    let list = "/organizations/{organization_id}/service-accounts";
    let kc = call(
        "POST",
        list,
        &kc_accounts(KC_ORG),
        Some(json!({"name": "kc", "description": "d"})),
    )
    .await;
    let kc_id = kc.body["id"].as_str().unwrap().to_owned();
    call(
        "GET",
        list,
        &format!("{}?limit=1&expand=permissions", kc_accounts(KC_ORG)),
        None,
    )
    .await;
    call(
        "GET",
        list,
        &format!("{}?after=forged", kc_accounts(KC_ORG)),
        None,
    )
    .await;
    let one = format!("{list}/{{service_account_id}}");
    let one_path = format!("{}/{kc_id}", kc_accounts(KC_ORG));
    call(
        "GET",
        &one,
        &format!("{one_path}?expand[]=permissions"),
        None,
    )
    .await;
    call("PATCH", &one, &one_path, Some(json!({"description": null}))).await;
    let creds = format!("{one}/credentials");
    let cred = call(
        "POST",
        &creds,
        &kc_credentials(KC_ORG, &kc_id),
        Some(json!({"name": "ci"})),
    )
    .await;
    let cred_id = cred.body["id"].as_str().unwrap().to_owned();
    call("GET", &creds, &kc_credentials(KC_ORG, &kc_id), None).await;
    let cred_path = format!("{}/{cred_id}", kc_credentials(KC_ORG, &kc_id));
    call(
        "GET",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        None,
    )
    .await;
    call(
        "PATCH",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        Some(json!({"name": "ci2"})),
    )
    .await;
    let (id, secret) = (
        cred.body["client_id"].as_str().unwrap(),
        cred.body["client_secret"].as_str().unwrap(),
    );
    let token = app
        .token_request(
            &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
            None,
        )
        .await;
    conforms(&doc, "POST", "/service-account-token", &token);
    let refused = app
        .token_request("grant_type=client_credentials", Some((id, "wrong")))
        .await;
    conforms(&doc, "POST", "/service-account-token", &refused);
    let jwt = token.body["access_token"].as_str().unwrap().to_owned();
    let as_token = app.send("DELETE", &one_path, Some(&jwt), None).await;
    conforms(&doc, "DELETE", &one, &as_token);
    let checked = app.send("GET", "/v1/auth/check", Some(&jwt), None).await;
    conforms(&doc, "GET", "/v1/auth/check", &checked);
    let verified = app
        .send(
            "POST",
            "/v1/keys/verify",
            k,
            Some(json!({"key": jwt}).to_string()),
        )
        .await;
    conforms(&doc, "POST", "/v1/keys/verify", &verified);
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let r = app.send("GET", path, None, None).await;
        conforms(&doc, "GET", path, &r);
    }
    call(
        "DELETE",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        None,
    )
    .await;
    call("DELETE", &one, &one_path, None).await;
    call("GET", &one, &one_path, None).await;
}

// ---------------------------------------------------------------------------------------------
// The page itself, in a real browser.

fn find_chromium() -> Result<String, String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(path) = found.filter(|p| !p.is_empty()) {
            return Ok(path);
        }
    }
    Err("chromium is not installed (Debian package `chromium`)".into())
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_in_chromium() {
    let chromium = match find_chromium() {
        Ok(bin) => bin,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("chromium is required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let app = TestApp::new().await;
    let doc = document(&app).await;

    let page = app.send("GET", "/docs", None, None).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "external reference in the page"
    );
    for asset in ["/docs/app.js", "/docs/app.css"] {
        let r = app.send("GET", asset, None, None).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(
            !r.text.contains("https://"),
            "{asset} loads something from elsewhere"
        );
    }

    // A real socket: the browser loads the page, its assets and /openapi.json from keyplane.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(keyplane::app::serve_on(
        listener,
        app.service.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/docs");
    let args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-extensions".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
        "--virtual-time-budget=10000".to_owned(),
        "--dump-dom".to_owned(),
        url,
    ];
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || Command::new(chromium).args(args).output()),
    )
    .await
    .expect("chromium did not finish within 90 s")
    .unwrap()
    .expect("chromium could not be started");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && !dom.is_empty(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert!(
        dom.contains(r#"data-state="ready""#),
        "the page did not finish rendering (did its script run?):\n{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(
        !dom.contains(r#"data-state="error""#),
        "the page reports an error"
    );
    let ops = operations(&doc);
    for (method, path, _) in &ops {
        let marker = format!(r#"data-op="{method} {path}""#);
        assert!(dom.contains(&marker), "{method} {path} is not on the page");
    }
    assert!(dom.contains(&format!("{} operations", ops.len())));
    // Schemas were expanded through their $refs, not just named.
    assert!(dom.contains("redacted_value") && dom.contains("has_next_page"));
}

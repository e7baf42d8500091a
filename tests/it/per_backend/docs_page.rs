//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1 and self-consistent, it describes
//! exactly what the router serves, real responses conform to it, and the docs page renders every
//! operation in a real (headless) Chromium.
//!
//! The Chromium test needs the Debian `chromium` package; without it the test is skipped, with
//! the reason printed, except under `CI=true`, where it fails.

use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::Duration;

use crate::common::{kc_accounts, kc_credentials, TestApp, KC_ORG};
use axum::body::Body;
use axum::http::Request;
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

/// Every `summary` and `description` in the document, with where it is.
fn collect_texts<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let here = format!("{at}/{k}");
                match (k.as_str(), x) {
                    ("summary" | "description", Value::String(s)) => out.push((here, s)),
                    _ => collect_texts(x, &here, out),
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_texts(x, &format!("{at}/{i}"), out);
            }
        }
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

    // Summaries and descriptions come from doc comments: the right ones, and no rustdoc in them.
    // The sub-path check once showed the doc comment of the function below its own.
    for method in ["get", "post"] {
        let op = &doc["paths"]["/v1/auth/check/{path}"][method];
        let summary = op["summary"].as_str().unwrap();
        assert_eq!(
            summary,
            "Check a service account's key or access token under any sub-path (for gateways)."
        );
        assert!(!summary.contains("An access token's identity"), "{summary}");
        let description = op["description"].as_str().unwrap();
        assert!(description.contains("`/v1/auth/check`"), "{description}");
    }
    let mut texts = Vec::new();
    collect_texts(&doc, "#", &mut texts);
    assert!(texts.len() > 100, "suspiciously few texts: {}", texts.len());
    for (at, text) in texts {
        assert!(
            !text.contains("[`") && !text.contains("crate::"),
            "{at}: rustdoc in the document: {text}"
        );
    }

    // Every schema in it is a JSON Schema (draft 2020-12, as OpenAPI 3.1 has it).
    let mut schemas = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        schemas.push((format!("components.schemas.{name}"), schema.clone()));
    }
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            schemas.push((
                format!("{method} {path} parameter {}", p["name"]),
                p["schema"].clone(),
            ));
        }
        let bodies = op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten();
        let answers = op["responses"].as_object().unwrap().values();
        let answers = answers.flat_map(|r| r["content"].as_object().into_iter().flatten());
        for (media, content) in bodies.chain(answers) {
            schemas.push((
                format!("{method} {path} {media}"),
                content["schema"].clone(),
            ));
        }
    }
    assert!(
        schemas.len() > 100,
        "suspiciously few schemas: {}",
        schemas.len()
    );
    for (what, schema) in schemas {
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{what} is not a JSON Schema: {e}\n{schema}");
        }
    }
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
    // The other direction: routes exist only through `routes!`, which documents them; the
    // plain `.route(…)`s are the gateway check served from the root (documented under the
    // `/v1` nest, as `/v1/auth/check` and its wildcard `{path}`). A new plain route fails here.
    let mut plain_routes = Vec::new();
    for file in rust_files(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http"
    ))) {
        let text = std::fs::read_to_string(&file).unwrap();
        // A route registration names its path as a literal: `.route("/…", …)` or
        // `.route_service("/…", …)`.
        for line in text
            .lines()
            .filter(|l| l.contains(".route(\"") || l.contains(".route_service(\""))
        {
            plain_routes.push(line.trim().to_owned());
        }
    }
    assert_eq!(
        plain_routes,
        vec![
            r#".route_service("/v1/auth/check", check.clone())"#,
            r#".route_service("/v1/auth/check/{*path}", check)"#
        ],
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

#[path = "docs_page/federation_responses.rs"]
mod federation_responses;
#[path = "docs_page/responses.rs"]
mod responses;
#[path = "docs_page/validator.rs"]
mod validator;

use validator::*;

#[tokio::test]
async fn the_schema_check_is_not_vacuous() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let schemas = Schemas::of(&doc);
    let reject = |schemas: &Schemas, pointer: &str, v: &Value, why: &str| {
        let e = schemas.validate(pointer, v);
        assert!(e.is_err(), "{pointer} accepts {v}, {why}");
        e.unwrap_err()
    };

    let project = "/components/schemas/Project";
    reject(&schemas, project, &json!({}), "with no field");
    let valid = json!({"id": "proj_1", "object": "organization.project", "name": "n",
        "created_at": 1, "archived_at": null, "status": "active", "external_key_id": null,
        "allowed_ips": null});
    assert_eq!(schemas.validate(project, &valid), Ok(()));
    let mut p = valid.clone();
    p["archived_at"] = json!("yesterday");
    let e = reject(&schemas, project, &p, "with a string for a timestamp");
    assert!(e.starts_with("$/archived_at:"), "{e}");
    p["archived_at"] = json!(null);
    p["status"] = json!("deleted");
    reject(&schemas, project, &p, "with a status outside its enum");
    let error = "/components/schemas/KeycardError";
    let no_status = json!({"message": "m", "code": "c"});
    reject(&schemas, error, &no_status, "without status");
    // A response's schema, found by operation and status as `Conformance::check` finds it (the
    // path's braces percent-encoded), with its refs resolved inside the document.
    let retrieve = format!(
        "/paths/{}/get/responses/200/content/application~1json/schema",
        segment("/v1/organization/projects/{project_id}")
    );
    assert_eq!(schemas.validate(&retrieve, &valid), Ok(()));
    reject(&schemas, &retrieve, &p, "with a status outside its enum");
    let list = format!(
        "/paths/{}/get/responses/200/content/application~1json/schema",
        segment("/v1/organization/projects")
    );
    let page = |item: &Value| {
        json!({"object": "list", "data": [item], "first_id": null, "last_id": null,
            "has_more": false})
    };
    assert_eq!(schemas.validate(&list, &page(&valid)), Ok(()));
    let e = reject(
        &schemas,
        &list,
        &page(&p),
        "with an item outside its schema",
    );
    assert!(e.starts_with("$/data/0/status:"), "{e}");

    // What the hand-written checker it replaces let through.
    // `oneOf` is exactly one: a verification that is a key's and a token's at once matches two.
    let account = json!({"id": "svc_acct_1", "name": "a", "role": "member", "created_at": 1});
    let key = json!({"id": "key_1", "name": "k", "redacted_value": "sk-…", "scopes": [],
        "created_at": 1, "expires_at": null, "last_used_at": null});
    let token = json!({"jti": "j", "credential_id": "c", "issued_at": 1, "expires_at": 2});
    let verified = "/components/schemas/VerifyResult";
    let as_key = json!({"valid": true, "key": key, "service_account": account, "project": null,
        "admission": {"allowed": true}});
    assert_eq!(schemas.validate(verified, &as_key), Ok(()));
    let mut both = as_key.clone();
    both["token"] = token;
    reject(
        &schemas,
        verified,
        &both,
        "matching two branches of its oneOf",
    );
    // minimum / maximum.
    let status = |s: i64| json!({"message": "m", "code": "c", "status": s});
    assert_eq!(schemas.validate(error, &status(404)), Ok(()));
    reject(
        &schemas,
        error,
        &status(-1),
        "with a status below its minimum",
    );
    let new_key = "/components/schemas/CreateServiceAccountKeyRequest";
    let lifetime = |s: i64| json!({ "expires_in_seconds": s });
    assert_eq!(schemas.validate(new_key, &lifetime(600)), Ok(()));
    reject(
        &schemas,
        new_key,
        &lifetime(0),
        "with a lifetime below its minimum",
    );
    let too_long = lifetime(315_360_001);
    reject(
        &schemas,
        new_key,
        &too_long,
        "with a lifetime above its maximum",
    );
    // `additionalProperties: false` (the served document has none; this one is made for it),
    // and a oneOf whose two branches both match, through a ref between components.
    let made = Schemas::of(&json!({"components": {"schemas": {
        "Closed": {"type": "object", "properties": {"a": {"type": "integer"}},
            "additionalProperties": false},
        "Either": {"oneOf": [{"$ref": "#/components/schemas/Closed"}, {"type": "object"}]},
    }}}));
    let closed_one = "/components/schemas/Closed";
    assert_eq!(made.validate(closed_one, &json!({"a": 1})), Ok(()));
    let e = reject(&made, closed_one, &json!({"a": 1, "b": 2}), "with b");
    assert!(e.contains("'b'"), "{e}");
    let either = "/components/schemas/Either";
    reject(&made, either, &json!({"a": 1}), "matching both branches");
    assert_eq!(made.validate(either, &json!({"b": 1})), Ok(()));

    // Responses are checked against the document closed: a field must be documented.
    let strict = Schemas::of(&closed(&doc));
    let mut extra = valid.clone();
    extra["owner"] = json!("someone");
    assert_eq!(schemas.validate(&retrieve, &extra), Ok(()));
    let e = reject(&strict, &retrieve, &extra, "with an undocumented field");
    assert!(e.contains("'owner'"), "{e}");
    assert_eq!(strict.validate(&retrieve, &valid), Ok(()));
    reject(
        &strict,
        &list,
        &page(&extra),
        "with an undocumented field in an item",
    );
    // Through `allOf`, either member documents a field; through `oneOf`, the matching branch.
    let created = format!(
        "/paths/{}/post/responses/200/content/application~1json/schema",
        segment("/v1/organization/projects/{project_id}/service_accounts")
    );
    let mut account = json!({"object": "organization.project.service_account", "id": "svc_acct_1",
        "name": "a", "role": "member", "created_at": 1, "api_key": null});
    assert_eq!(strict.validate(&created, &account), Ok(()));
    account["api_key"] = json!({"object": "organization.project.service_account.api_key",
        "value": "sk-svcacct-x", "name": "k", "created_at": 1, "id": "key_1", "expires_at": null});
    assert_eq!(strict.validate(&created, &account), Ok(()));
    account["api_key"]["secret"] = json!("x");
    reject(
        &strict,
        &created,
        &account,
        "with an undocumented field in api_key",
    );
    account["api_key"] = json!(null);
    account["scopes"] = json!([]);
    reject(&strict, &created, &account, "with an undocumented field");
    let verify = format!(
        "/paths/{}/post/responses/200/content/application~1json/schema",
        segment("/v1/keys/verify")
    );
    assert_eq!(strict.validate(&verify, &as_key), Ok(()));
    let mut odd = as_key.clone();
    odd["reason"] = json!("unknown");
    reject(&strict, &verify, &odd, "with a field of another branch");
    // Free-form objects stay open: the document itself, permission maps.
    let itself = format!(
        "/paths/{}/get/responses/200/content/application~1json/schema",
        segment("/openapi.json")
    );
    assert_eq!(strict.validate(&itself, &doc), Ok(()));
    let with_permissions = json!({"id": "a", "name": "n", "created_at": "t", "updated_at": "t",
        "permissions": {"credentials": {"read": true}}});
    let kc_retrieve = format!(
        "/paths/{}/get/responses/200/content/application~1json/schema",
        segment("/organizations/{organization_id}/service-accounts/{service_account_id}")
    );
    assert_eq!(strict.validate(&kc_retrieve, &with_permissions), Ok(()));
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

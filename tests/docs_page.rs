//! `/openapi.json` and `/docs`: the document is OpenAPI 3.1 and self-consistent, it describes
//! exactly what the router serves, real responses conform to it, and the docs page renders every
//! operation in a real (headless) Chromium.
//!
//! The Chromium test needs the Debian `chromium` package; without it the test is skipped, with
//! the reason printed, except under `CI=true`, where it fails.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{kc_accounts, kc_credentials, TestApp, KC_ORG};
use jsonschema::Draft;
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
// Responses against the document, checked by a real JSON Schema validator: the `jsonschema`
// crate, draft 2020-12 (the dialect of OpenAPI 3.1). The whole document is registered as one
// resource, so a schema is validated where it stands in the document and its
// `#/components/schemas/…` refs resolve against the document.

/// The name the document is registered under; never fetched.
const DOC_URI: &str = "https://keyplane.invalid/openapi.json";

/// The schemas of one document: the served one, or a hand-made one (for the checker's own test).
struct Schemas {
    registry: jsonschema::Registry<'static>,
}

impl Schemas {
    fn of(doc: &Value) -> Self {
        let registry = jsonschema::Registry::new()
            .draft(Draft::Draft202012)
            .add(DOC_URI, doc.clone())
            .and_then(|builder| builder.prepare())
            .expect("the document is a JSON Schema resource");
        Self { registry }
    }

    /// Validates `instance` against the schema at `pointer` (a JSON pointer into the document,
    /// e.g. `/components/schemas/Project`), formats included. The error lists every violation
    /// with its place in the instance.
    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let schema = json!({"$ref": format!("{DOC_URI}#{}", fragment(pointer))});
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .offline()
            .with_registry(&self.registry)
            .build(&schema)
            .unwrap_or_else(|e| panic!("no usable schema at {pointer}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("${}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}

/// The document with every object it describes closed, for responses: a field a real response
/// carries must be documented. `unevaluatedProperties: false` goes where a schema that names
/// fields is used (the response's schema, each property's, each item's, each `oneOf` branch),
/// not on the components themselves nor on an `allOf`'s members, which the other members
/// extend; it sees through `$ref`, `allOf` and `oneOf`, so a field passes when any schema that
/// applies documents it. Free-form objects (`{"type": "object"}`, maps with
/// `additionalProperties`) stay open.
fn closed(doc: &Value) -> Value {
    /// Closes `schema` (when `here`) and every schema inside it.
    fn close(schema: &mut Value, here: bool) {
        let Value::Object(m) = schema else { return };
        let names_fields = ["properties", "$ref", "allOf", "oneOf", "anyOf"];
        let open = ["additionalProperties", "unevaluatedProperties"];
        if here
            && names_fields.iter().any(|k| m.contains_key(*k))
            && !open.iter().any(|k| m.contains_key(*k))
        {
            m.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
        for (keyword, inner) in m.iter_mut() {
            match (keyword.as_str(), inner) {
                ("allOf", Value::Array(members)) => {
                    members.iter_mut().for_each(|s| close(s, false))
                }
                ("oneOf" | "anyOf" | "prefixItems", Value::Array(branches)) => {
                    branches.iter_mut().for_each(|s| close(s, true))
                }
                ("properties" | "patternProperties" | "$defs", Value::Object(named)) => {
                    named.values_mut().for_each(|s| close(s, true))
                }
                ("items" | "additionalProperties" | "not", s) => close(s, true),
                _ => {}
            }
        }
    }
    let mut doc = doc.clone();
    for component in doc["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        close(component, false);
    }
    for item in doc["paths"].as_object_mut().unwrap().values_mut() {
        for op in item.as_object_mut().unwrap().values_mut() {
            let Some(Value::Object(responses)) = op.get_mut("responses") else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(Value::Object(content)) = response.get_mut("content") else {
                    continue;
                };
                for media in content.values_mut() {
                    if let Some(schema) = media.get_mut("schema") {
                        close(schema, true);
                    }
                }
            }
        }
    }
    doc
}

/// A JSON pointer as a URI fragment (RFC 6901 §6): `{`, `}` and the like percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::new();
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One segment of a JSON pointer (RFC 6901 §3).
fn segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

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
        "created_at": 1, "archived_at": null, "status": "active", "external_key_id": null});
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
    let as_key = json!({"valid": true, "key": key, "service_account": account, "project": null});
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
        "value": "sk-svcacct-x", "name": "k", "created_at": 1, "id": "key_1"});
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

/// Real responses against the document, remembering which operations answered with success.
struct Conformance<'d> {
    doc: &'d Value,
    schemas: Schemas,
    succeeded: RefCell<BTreeSet<(String, String)>>,
}

impl<'d> Conformance<'d> {
    fn of(doc: &'d Value) -> Self {
        Self {
            doc,
            schemas: Schemas::of(&closed(doc)),
            succeeded: RefCell::default(),
        }
    }

    /// Checks a response against the documented one for its operation and status.
    fn check(&self, method: &str, path: &str, r: &common::Resp) {
        let lower = method.to_lowercase();
        let op = &self.doc["paths"][path][&lower];
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
                let (media, _) = content.iter().next().unwrap();
                let sent = r.header("content-type").unwrap_or_default();
                assert!(
                    sent.starts_with(media.as_str()),
                    "{method} {path} {status}: documented as {media}, sent as {sent}"
                );
                if media == "application/json" {
                    let pointer = format!(
                        "/paths/{}/{lower}/responses/{status}/content/{}/schema",
                        segment(path),
                        segment(media)
                    );
                    if let Err(e) = self.schemas.validate(&pointer, &r.body) {
                        panic!("{method} {path} {status}:\n{e}\n{}", r.text);
                    }
                }
            }
        }
        if r.status.is_success() {
            self.succeeded
                .borrow_mut()
                .insert((method.to_owned(), path.to_owned()));
        }
    }

    /// Checks a request body the server accepted against the documented one.
    fn accepted(&self, method: &str, path: &str, body: &Value) {
        let pointer = format!(
            "/paths/{}/{}/requestBody/content/application~1json/schema",
            segment(path),
            method.to_lowercase()
        );
        if let Err(e) = self.schemas.validate(&pointer, body) {
            panic!("{method} {path}: an accepted request body does not conform:\n{e}\n{body}");
        }
    }

    /// Documented operations no checked response succeeded on.
    fn never_succeeded(&self) -> Vec<String> {
        let succeeded = self.succeeded.borrow();
        operations(self.doc)
            .into_iter()
            .filter(|(m, p, _)| !succeeded.contains(&(m.clone(), p.clone())))
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }
}

#[tokio::test]
async fn real_responses_conform_to_the_document() {
    let app = TestApp::new().await;
    let doc = document(&app).await;
    let conformance = Conformance::of(&doc);
    let key = app.admin_key.clone();
    let k = Some(key.as_str());
    let call = async |method: &str, template: &str, path: &str, body: Option<Value>| {
        let r = app
            .send(method, path, k, body.as_ref().map(Value::to_string))
            .await;
        conformance.check(method, template, &r);
        if let (Some(body), true) = (&body, r.status.is_success()) {
            conformance.accepted(method, template, body);
        }
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
    conformance.check("GET", "/v1/organization/projects", &anonymous);

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
    conformance.check("POST", "/service-account-token", &token);
    let refused = app
        .token_request("grant_type=client_credentials", Some((id, "wrong")))
        .await;
    conformance.check("POST", "/service-account-token", &refused);
    let jwt = token.body["access_token"].as_str().unwrap().to_owned();
    let as_token = app.send("DELETE", &one_path, Some(&jwt), None).await;
    conformance.check("DELETE", &one, &as_token);
    let checked = app.send("GET", "/v1/auth/check", Some(&jwt), None).await;
    conformance.check("GET", "/v1/auth/check", &checked);
    let verified = app
        .send(
            "POST",
            "/v1/keys/verify",
            k,
            Some(json!({"key": jwt}).to_string()),
        )
        .await;
    conformance.check("POST", "/v1/keys/verify", &verified);
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let r = app.send("GET", path, None, None).await;
        conformance.check("GET", path, &r);
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

    // The gateway check and verification, with a key of a fresh account and a fresh token.
    let fresh = app.create_project("Docs gateway").await;
    let (_, service_key, service_key_id) = app.create_account(&fresh, "gw").await;
    let holder = app.kc_create_account("gw-token").await;
    let issued = app
        .kc_create_credential(holder["id"].as_str().unwrap(), "gw")
        .await;
    let jwt = app
        .kc_token(
            issued["client_id"].as_str().unwrap(),
            issued["client_secret"].as_str().unwrap(),
        )
        .await;
    for (method, template, path) in [
        ("GET", "/v1/auth/check", "/v1/auth/check"),
        ("POST", "/v1/auth/check", "/v1/auth/check"),
        (
            "GET",
            "/v1/auth/check/{path}",
            "/v1/auth/check/upstream/a/b",
        ),
        ("POST", "/v1/auth/check/{path}", "/v1/auth/check/upstream"),
    ] {
        for bearer in [
            Some(service_key.as_str()),
            Some(&jwt),
            Some("sk-svcacct-nope"),
            Some(&key),
            None,
        ] {
            let r = app.send(method, path, bearer, None).await;
            conformance.check(method, template, &r);
        }
    }
    let verify = async |bearer: Option<&str>, body: &[u8]| {
        let json = Some(("application/json", body.to_vec()));
        let r = app
            .request("POST", "/v1/keys/verify", bearer, &[], json)
            .await;
        conformance.check("POST", "/v1/keys/verify", &r);
        r
    };
    let of = |value: &str| json!({ "key": value }).to_string().into_bytes();
    assert_eq!(verify(k, &of(&service_key)).await.body["valid"], true);
    let fresh_key = format!("/v1/organization/projects/{fresh}/api_keys/{service_key_id}");
    call(
        "DELETE",
        &format!("{keys}/{{api_key_id}}"),
        &fresh_key,
        None,
    )
    .await;
    assert_eq!(verify(k, &of(&service_key)).await.body["reason"], "revoked");
    verify(k, b"{").await;
    verify(k, &[b'x'; 70 * 1024]).await;
    verify(None, &of(&service_key)).await;
    verify(Some(&service_key), &of(&service_key)).await;
    let (_, archived_key, _) = app.create_account(&fresh, "gw2").await;
    let (gone, _, _) = app.create_account(&fresh, "gw3").await;
    call(
        "DELETE",
        sa,
        &format!("/v1/organization/projects/{fresh}/service_accounts/{gone}"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/organization/projects/{project_id}/archive",
        &format!("/v1/organization/projects/{fresh}/archive"),
        None,
    )
    .await;
    let archived = verify(k, &of(&archived_key)).await;
    assert_eq!(
        archived.body["reason"], "project_archived",
        "{}",
        archived.text
    );
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?include_archived=true",
        None,
    )
    .await;
    call(
        "GET",
        keys,
        &format!("/v1/organization/projects/{fresh}/api_keys?owner_project_access=any"),
        None,
    )
    .await;
    call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{fresh}/service_accounts"),
        Some(json!({"name": "late"})),
    )
    .await;

    // The audit log of all the above, filtered and not.
    let audit = "/v1/organization/audit_logs";
    for query in [
        "",
        "?limit=3",
        &format!("?project_ids[]={project}&limit=100"),
        "?event_types[]=project.created&event_types[]=api_key.deleted",
        "?limit=0",
        "?after=forged",
        "?effective_at[gte]=soon",
    ] {
        call("GET", audit, &format!("{audit}{query}"), None).await;
    }

    // Errors the calls above did not meet: a read-only admin key writing, bodies that are not
    // JSON objects, the Keycard dialect's refusals, OAuth's.
    let read_only = call(
        "POST",
        admins,
        admins,
        Some(json!({"name": "ro", "scopes": ["api.management.read"]})),
    )
    .await;
    let ro = read_only.body["value"].as_str().unwrap().to_owned();
    let projects = "/v1/organization/projects";
    let no = json!({"name": "no"}).to_string();
    let r = app.send("POST", projects, Some(&ro), Some(no)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    conformance.check("POST", projects, &r);
    let accounts = kc_accounts(KC_ORG);
    let holder_path = format!("{accounts}/{}", holder["id"].as_str().unwrap());
    let big = "x".repeat(70 * 1024);
    let json = "application/json";
    for (method, template, path, body) in [
        ("POST", projects, projects, Some(("text/plain", "{}"))),
        ("POST", projects, projects, Some((json, "[]"))),
        ("POST", list, accounts.as_str(), Some(("text/plain", "{}"))),
        ("POST", list, &accounts, Some((json, "{"))),
        ("POST", list, &accounts, Some((json, big.as_str()))),
        ("POST", list, &accounts, Some((json, r#"{"name": ""}"#))),
        ("GET", list, &kc_accounts("nope"), None),
        ("GET", list, &format!("{accounts}?limit=-1"), None),
        ("PATCH", &one, &holder_path, Some((json, r#"{"name": 5}"#))),
        (
            "GET",
            &format!("{creds}/{{credential_id}}"),
            &format!("{cred_path}x"),
            None,
        ),
    ] {
        let body = body.map(|(t, b)| (t, b.as_bytes().to_vec()));
        let r = app.request(method, path, k, &[], body).await;
        assert!(r.status.is_client_error(), "{method} {path}: {}", r.text);
        conformance.check(method, template, &r);
    }
    let odd_id = [("x-client-request-id", "not-a-uuid")];
    let r = app.request("GET", &accounts, k, &odd_id, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    conformance.check("GET", list, &r);
    let r = app
        .send("GET", &accounts, Some("sk-admin-nope"), None)
        .await;
    conformance.check("GET", list, &r);
    let token_path = "/service-account-token";
    for (form, basic) in [
        ("", None),
        ("grant_type=password", None),
        ("grant_type=client_credentials", None),
        (
            "grant_type=client_credentials&client_id=a",
            Some(("a", "b")),
        ),
    ] {
        let r = app.token_request(form, basic).await;
        assert!(r.status.is_client_error(), "{form}: {}", r.text);
        conformance.check("POST", token_path, &r);
    }

    // A source that keeps failing authentication is refused with 429, in each dialect's
    // envelope (in-process requests have no peer address unless given one).
    let from = |method: &str, path: &str, bearer: Option<&str>, body: Option<(&str, &str)>| {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some((content_type, _)) = body {
            req = req.header("content-type", content_type);
        }
        let body = Body::from(body.map(|(_, b)| b.to_owned()).unwrap_or_default());
        let mut req = req.body(body).unwrap();
        let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    };
    for _ in 0..100 {
        let r = app
            .raw(from("GET", projects, Some("sk-admin-nope"), None))
            .await;
        conformance.check("GET", projects, &r);
        if r.status == 429 {
            break;
        }
    }
    let form = (
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials",
    );
    let unknown = (json, r#"{"key": "sk-svcacct-nope"}"#);
    let (check, verify_path) = ("/v1/auth/check", "/v1/keys/verify");
    for (method, template, path, bearer, body) in [
        ("GET", projects, projects, k, None),
        ("GET", list, accounts.as_str(), k, None),
        ("GET", check, check, Some(archived_key.as_str()), None),
        ("POST", verify_path, verify_path, k, Some(unknown)),
        ("POST", token_path, token_path, None, Some(form)),
    ] {
        let r = app.raw(from(method, path, bearer, body)).await;
        assert_eq!(r.status, 429, "{method} {path}: {}", r.text);
        conformance.check(method, template, &r);
    }

    // Meta: probes, the document and the page.
    for path in [
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/app.js",
        "/docs/app.css",
    ] {
        let r = app.send("GET", path, None, None).await;
        conformance.check("GET", path, &r);
    }

    let missing = conformance.never_succeeded();
    assert!(
        missing.is_empty(),
        "no successful response checked for {missing:#?}"
    );
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

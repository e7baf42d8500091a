//! The checker of tests/it/per_backend/docs_page.rs: responses against the served OpenAPI
//! document, with a real JSON Schema validator.

use std::cell::RefCell;
use std::collections::BTreeSet;

use jsonschema::Draft;
use serde_json::{json, Value};

use super::operations;
use crate::common;

// ---------------------------------------------------------------------------------------------
// Responses against the document, checked by a real JSON Schema validator: the `jsonschema`
// crate, draft 2020-12 (the dialect of OpenAPI 3.1). The whole document is registered as one
// resource, so a schema is validated where it stands in the document and its
// `#/components/schemas/…` refs resolve against the document.

/// The name the document is registered under; never fetched.
pub const DOC_URI: &str = "https://keyplane.invalid/openapi.json";

/// The schemas of one document: the served one, or a hand-made one (for the checker's own test).
pub struct Schemas {
    registry: jsonschema::Registry<'static>,
}

impl Schemas {
    pub fn of(doc: &Value) -> Self {
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
    pub fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
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
pub fn closed(doc: &Value) -> Value {
    /// Closes `schema` (when `here`) and every schema inside it.
    pub fn close(schema: &mut Value, here: bool) {
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
pub fn fragment(pointer: &str) -> String {
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
pub fn segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Real responses against the document, remembering which operations answered with success.
pub struct Conformance<'d> {
    doc: &'d Value,
    schemas: Schemas,
    succeeded: RefCell<BTreeSet<(String, String)>>,
}

impl<'d> Conformance<'d> {
    pub fn of(doc: &'d Value) -> Self {
        Self {
            doc,
            schemas: Schemas::of(&closed(doc)),
            succeeded: RefCell::default(),
        }
    }

    /// Checks a response against the documented one for its operation and status.
    pub fn check(&self, method: &str, path: &str, r: &common::Resp) {
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
                let sent = r.header("content-type").unwrap_or_default();
                let documented: Vec<&String> = content.keys().collect();
                let media = documented
                    .iter()
                    .find(|m| sent.starts_with(m.as_str()))
                    .copied()
                    .unwrap_or_else(|| {
                        panic!("{method} {path} {status}: documented as {documented:?}, sent as {sent}")
                    });
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
    pub fn accepted(&self, method: &str, path: &str, body: &Value) {
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
    pub fn never_succeeded(&self) -> Vec<String> {
        let succeeded = self.succeeded.borrow();
        operations(self.doc)
            .into_iter()
            .filter(|(m, p, _)| !succeeded.contains(&(m.clone(), p.clone())))
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }
}

//! Strict JSON bodies: at most [`MAX_BODY_BYTES`], a JSON object, no repeated keys, whole-number
//! floats read as integers, and errors that name the field without quoting the body.

use axum::extract::Request;
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Rejection;
use crate::http::MAX_BODY_BYTES;

/// Reads and parses a request's JSON object body. An empty body counts as `{}` so endpoints
/// whose fields are all optional accept a bare POST. Unknown fields are ignored.
pub async fn read_json<T: DeserializeOwned>(req: Request) -> Result<T, Rejection> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(Rejection::payload_too_large());
    }
    let declared_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if crate::connections::is_body_timeout(&e) {
                Rejection::body_timeout()
            } else {
                Rejection::payload_too_large()
            }
        })?;
    // Only a body has a type: SDKs send `application/json` on body-less requests, and bare
    // POSTs send no type at all.
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    if !blank && declared_type.is_some_and(|t| !is_json_type(&t)) {
        return Err(Rejection::unsupported_media_type());
    }
    parse_json(&bytes)
}

/// `application/json` or any `+json` type, parameters (`charset`) aside.
fn is_json_type(value: &header::HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// With `#[serde(default, deserialize_with = "present")]`, tells a field sent as `null`
/// (`Some(None)`) from one not sent at all (`None`).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    let mut value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice::<StrictValue>(bytes)
            .map(|v| v.0)
            .map_err(|e| {
                Rejection::bad_request(
                    None,
                    "invalid_json",
                    format!(
                    "We could not parse the JSON body of your request: {} at line {} column {}.",
                    json_error_kind(&e),
                    e.line(),
                    e.column()
                ),
                )
            })?
    };
    if !value.is_object() {
        return Err(Rejection::bad_request(
            None,
            "invalid_type",
            format!(
                "The request body must be a JSON object, but got {}.",
                json_type(&value)
            ),
        ));
    }
    whole_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(&value).map_err(|e| field_error(&value, e))
}

/// JSON Schema, and so the OpenAPI document, counts `24444.0` as an integer; serde does not.
/// Rewriting whole-number floats as integers makes the body parser agree with the document.
fn whole_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) else {
                return;
            };
            // `as` saturates; the bounds keep only values that convert exactly.
            if (i64::MIN as f64..i64::MAX as f64).contains(&f) {
                *n = serde_json::Number::from(f as i64);
            } else if (0.0..u64::MAX as f64).contains(&f) {
                *n = serde_json::Number::from(f as u64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// serde_json's own messages can quote input; describe the failure by category only.
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    if e.to_string().starts_with(DUPLICATE_KEY) {
        return DUPLICATE_KEY;
    }
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    }
}

fn field_error(root: &Value, err: serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let segments: Vec<_> = err.path().iter().cloned().collect();
    let mut field = err.path().to_string();
    let inner = err.into_inner().to_string();
    if let Some(missing) = inner
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        let param = if field == "." {
            missing.to_owned()
        } else {
            format!("{field}.{missing}")
        };
        return Rejection::bad_request(
            Some(&param),
            "missing_required_parameter",
            format!("Missing required parameter: '{param}'."),
        );
    }
    if field == "." {
        field = "body".to_owned();
    }
    let expected = inner
        .rsplit_once(", expected ")
        .map(|(_, exp)| describe_expected(exp))
        .unwrap_or("a valid value");
    let got = value_at(root, &segments)
        .map(json_type)
        .unwrap_or("something else");
    let (code, verb) = if inner.starts_with("invalid type") {
        ("invalid_type", "type")
    } else {
        ("invalid_value", "value")
    };
    Rejection::bad_request(
        Some(&field),
        code,
        format!("Invalid {verb} for '{field}': expected {expected}, but got {got}."),
    )
}

fn describe_expected(serde_expected: &str) -> &'static str {
    match serde_expected {
        "a string" => "a string",
        "a boolean" => "a boolean",
        "a sequence" => "an array",
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "an integer",
        "f32" | "f64" => "a number",
        s if s.starts_with("struct") || s.starts_with("a map") => "an object",
        _ => "a valid value",
    }
}

fn value_at<'a>(root: &'a Value, path: &[serde_path_to_error::Segment]) -> Option<&'a Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(root, |v, seg| match seg {
        Segment::Map { key } => v.get(key),
        Segment::Seq { index } => v.get(index),
        _ => None,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const DUPLICATE_KEY: &str = "duplicate object key";

/// A JSON value whose objects have no repeated keys. `serde_json::Value` keeps the last of
/// them silently, so `{"name": "a", "name": "b"}` would mean whatever the last parser along
/// the way (a gateway, a WAF, us) decides; refusing it leaves no room for disagreement.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if object.insert(key, v).is_some() {
                // The key itself is not quoted: error messages never echo the body.
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
        }
        Ok(Value::Object(object))
    }
}

/// A rejection's status, code and message, for assertions.
#[cfg(test)]
fn parts(r: Rejection) -> (axum::http::StatusCode, Option<&'static str>, String) {
    match r {
        Rejection::Request {
            status,
            code,
            message,
            ..
        } => (status, code, message),
        Rejection::Auth(why) => panic!("not a body rejection: {why:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth_without_quoting_them() {
        for body in [
            r#"{"name":"a","name":"b"}"#,
            r#"{"x":{"secret":1,"secret":2}}"#,
            r#"{"x":[{"k":1,"k":1}]}"#,
        ] {
            let (_, code, message) = parts(parse_json::<Value>(body.as_bytes()).unwrap_err());
            assert_eq!(code, Some("invalid_json"), "{body}");
            assert!(message.contains(DUPLICATE_KEY), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        let v: Value = parse_json(br#"{"a":{"b":[1,-2,3.5,null,true,"s"]},"c":{}}"#).unwrap();
        assert_eq!(v["a"]["b"][2], 3.5);
    }

    #[test]
    fn json_content_types_are_recognised() {
        let t = |s: &str| is_json_type(&header::HeaderValue::from_str(s).unwrap());
        assert!(t("application/json"));
        assert!(t("Application/JSON; charset=utf-8"));
        assert!(t("application/merge-patch+json"));
        assert!(!t("text/plain"));
        assert!(!t("application/jsonx"));
        assert!(!t("text/json+xml"));
        assert!(!t(""));
    }
}

#[cfg(test)]
mod whole_float_tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        n: u32,
        #[serde(default)]
        nested: Vec<i64>,
    }

    #[test]
    fn whole_number_floats_are_integers() {
        let b: Body = parse_json(br#"{"n": 24444.0, "nested": [-3.0, 1e3]}"#).unwrap();
        assert_eq!((b.n, b.nested), (24444, vec![-3, 1000]));
    }

    #[test]
    fn fractions_and_huge_values_are_still_refused() {
        for (body, code) in [
            (r#"{"n": 1.5}"#, "invalid_type"),
            (r#"{"n": 1e300}"#, "invalid_type"),
            // Refused as the integer 4294967296 is: out of range.
            (r#"{"n": 4294967296.0}"#, "invalid_value"),
        ] {
            let (status, got, _) = parts(parse_json::<Body>(body.as_bytes()).unwrap_err());
            assert_eq!(status, axum::http::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(got, Some(code), "{body}");
        }
    }
}

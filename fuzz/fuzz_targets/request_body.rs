//! JSON request bodies: any bytes become either a value or a 4xx (the shared parser's
//! `Rejection`, which both dialects wrap in their envelopes), never a panic or a 5xx.
#![no_main]

use keyplane::http::extract::{parse_json, Rejection};
use keyplane::http::keycard::service_accounts::{CreateBody, UpdateBody};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;

/// Shaped like the dialects' bodies: required and optional fields, numbers, nesting.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Shaped {
    name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
    #[serde(default)]
    nested: Option<Inner>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Inner {
    role: String,
    limit: u32,
}

fn check<T>(result: Result<T, Rejection>) {
    match result {
        Ok(_) => {}
        Err(Rejection::Request {
            status, message, ..
        }) => {
            assert!(status.is_client_error(), "{status}");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("a body refused as a credential: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(parse_json::<Value>(data));
    check(parse_json::<Shaped>(data));
    check(parse_json::<CreateBody>(data));
    check(parse_json::<UpdateBody>(data));
});

//! JSON request bodies: any bytes become either a value or a 4xx in the OpenAI envelope (the
//! Keycard dialect re-wraps the same errors), never a panic or a 5xx.
#![no_main]

use keyplane::http::keycard::service_accounts::{CreateBody, UpdateBody};
use keyplane::http::openai::extract::parse_json;
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

fn check<T>(result: Result<T, keyplane::http::openai::error::ApiError>) {
    if let Err(e) = result {
        assert!(e.status().is_client_error(), "{}", e.status());
        assert!(!e.message().is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    check(parse_json::<Value>(data));
    check(parse_json::<Shaped>(data));
    check(parse_json::<CreateBody>(data));
    check(parse_json::<UpdateBody>(data));
});

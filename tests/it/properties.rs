//! Property tests for everything that parses untrusted input: API keys, pagination cursors,
//! IDs in both dialects, access tokens, client secrets and JSON request bodies. The fuzz
//! targets in `fuzz/` cover the same functions with coverage guidance; these run on every
//! `cargo test`.

use axum::body::Body as HttpBody;
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use keyplane::domain::client_secret::{generate_secret, plausible_client_id, secret_matches};
use keyplane::domain::cursor::CursorSigner;
use keyplane::domain::ids::{Id, Kind, ID_LEN};
use keyplane::domain::jwt::{self, Claims};
use keyplane::domain::keys::{self, KeyHash, KeyKind, PlainKey};
use keyplane::http::keycard::extract::KcJson;
use keyplane::http::keycard::service_accounts::{CreateBody, UpdateBody};
use keyplane::http::openai::error::ApiError;
use keyplane::http::openai::extract::JsonBody;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

const KINDS: [Kind; 5] = [
    Kind::Organization,
    Kind::Project,
    Kind::ServiceAccount,
    Kind::ApiKey,
    Kind::Credential,
];

fn key_kind() -> impl Strategy<Value = KeyKind> {
    prop_oneof![Just(KeyKind::Admin), Just(KeyKind::ServiceAccount)]
}

fn canonical_id() -> impl Strategy<Value = Id> {
    "[0-9a-z]{26}".prop_map(|s| Id::parse(&s).expect("the strategy yields canonical IDs"))
}

/// Any JSON value, nested a few levels, with the awkward numbers and strings included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "(name|description|role|scopes|project_id)".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "(name|description|role|scopes|project_id|expires_at)".boxed(),
                    any::<String>().boxed()
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Shaped like the dialects' request bodies: required and optional fields, nesting, numbers.
#[derive(Debug, Deserialize)]
#[expect(
    dead_code,
    reason = "a parse target: its shape is what is tested, no field is read"
)]
struct Shaped {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    nested: Option<Inner>,
}

#[derive(Debug, Deserialize)]
#[expect(
    dead_code,
    reason = "a parse target: its shape is what is tested, no field is read"
)]
struct Inner {
    role: String,
    limit: u32,
}

fn bytes_or_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        any::<String>().prop_map(String::into_bytes),
    ]
}

/// The OpenAI envelope: `{"error": {"message", "type", "param", "code"}}` with a 4xx.
async fn assert_openai_4xx(res: axum::response::Response) {
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(status.is_client_error(), "{status}: {body}");
    let e = &body["error"];
    assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{body}"
    );
}

/// The Keycard envelope: `{"message", "code", "status"}` with a 4xx it repeats.
async fn assert_keycard_4xx(res: axum::response::Response) {
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(status.is_client_error(), "{status}: {body}");
    assert!(
        body["message"].is_string() && body["code"].is_string(),
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
}

fn json_request(bytes: Vec<u8>) -> Request<HttpBody> {
    Request::post("/")
        .header("content-type", "application/json")
        .body(HttpBody::from(bytes))
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // ---- API keys ------------------------------------------------------------------------

    #[test]
    fn key_parsing_never_panics(s in any::<String>()) {
        let _ = keys::parse(&s);
        let _ = keys::redact(&s);
    }

    #[test]
    fn key_parsing_never_panics_past_the_prefix(kind in key_kind(), body in any::<String>()) {
        let s = format!("{}{body}", kind.prefix());
        let _ = keys::parse(&s);
        let _ = keys::redact(&s);
        let _ = PlainKey::from_supplied(&s);
    }

    #[test]
    fn generated_keys_parse_and_round_trip(kind in key_kind()) {
        let key = PlainKey::generate(kind).unwrap();
        prop_assert_eq!(keys::parse(key.expose()), Ok(kind));
        let again = PlainKey::from_supplied(key.expose()).unwrap();
        prop_assert_eq!(again.kind(), kind);
        prop_assert_eq!(again.hash(), key.hash());
        prop_assert_eq!(key.hash(), KeyHash::of(key.expose()));
        let debug = format!("{key:?}");
        prop_assert!(!debug.contains(key.expose()));
    }

    #[test]
    fn any_single_character_change_is_rejected(
        kind in key_kind(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let key = PlainKey::generate(kind).unwrap();
        let mut chars: Vec<char> = key.expose().chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(keys::parse(&changed).is_err(), "{} accepted", i);
        prop_assert_ne!(KeyHash::of(&changed), key.hash());
    }

    // ---- Cursors --------------------------------------------------------------------------

    #[test]
    fn cursor_decoding_never_panics_or_accepts_junk(
        secret in prop::collection::vec(any::<u8>(), 0..64),
        junk in any::<String>(),
        raw in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        use base64::Engine;
        let signer = CursorSigner::new(secret);
        prop_assert!(signer.decode("sa:org", &junk).is_err());
        // Junk that gets past base64 still fails the tag.
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        prop_assert!(signer.decode("sa:org", &encoded).is_err());
    }

    #[test]
    fn cursors_round_trip_only_in_their_own_list_and_server(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        other_secret in prop::collection::vec(any::<u8>(), 1..64),
        scope in "[a-z]{1,6}:[0-9a-z|]{0,40}",
        other_scope in "[a-z]{1,6}:[0-9a-z|]{0,40}",
        id in canonical_id(),
    ) {
        let signer = CursorSigner::new(secret.clone());
        let cursor = signer.encode(&scope, &id);
        prop_assert_eq!(signer.decode(&scope, &cursor), Ok(id.clone()));
        if other_scope != scope {
            prop_assert!(signer.decode(&other_scope, &cursor).is_err());
        }
        if other_secret != secret {
            prop_assert!(CursorSigner::new(other_secret).decode(&scope, &cursor).is_err());
        }
    }

    #[test]
    fn a_changed_cursor_is_refused(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        id in canonical_id(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let signer = CursorSigner::new(secret);
        let cursor = signer.encode("sa:org", &id);
        let mut chars: Vec<char> = cursor.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(signer.decode("sa:org", &changed).is_err());
    }

    // ---- IDs ------------------------------------------------------------------------------

    #[test]
    fn id_parsing_accepts_exactly_the_canonical_form(s in any::<String>()) {
        let canonical = s.len() == ID_LEN
            && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        let parsed = Id::parse(&s);
        prop_assert_eq!(parsed.is_some(), canonical);
        if let Some(id) = parsed {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn ids_round_trip_in_both_dialects(id in canonical_id()) {
        // Keycard shows the bare form.
        prop_assert_eq!(Id::parse(id.as_str()), Some(id.clone()));
        for kind in KINDS {
            let rendered = kind.render_openai(&id);
            prop_assert_eq!(kind.parse_openai(&rendered), Some(id.clone()));
            for other in KINDS.into_iter().filter(|k| *k != kind) {
                prop_assert_eq!(other.parse_openai(&rendered), None);
            }
            // The bare form is not an OpenAI ID, and the prefixed one not a Keycard ID.
            prop_assert_eq!(kind.parse_openai(id.as_str()), None);
            prop_assert_eq!(Id::parse(&rendered), None);
        }
    }

    #[test]
    fn openai_id_parsing_never_panics_and_is_exact(s in any::<String>(), tail in any::<String>()) {
        for kind in KINDS {
            for candidate in [s.clone(), format!("{}{tail}", kind.openai_prefix())] {
                if let Some(id) = kind.parse_openai(&candidate) {
                    prop_assert_eq!(kind.render_openai(&id), candidate);
                }
            }
        }
    }

    // ---- Access tokens --------------------------------------------------------------------

    #[test]
    fn jwt_parsing_never_panics_on_junk(
        junk in any::<String>(),
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 3),
        public in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let shaped = format!("{}.{}.{}", b64(&parts[0]), b64(&parts[1]), b64(&parts[2]));
        for token in [junk.as_str(), shaped.as_str()] {
            let _ = jwt::looks_like_jwt(token);
            let _ = jwt::key_id(token);
            prop_assert!(jwt::verify(token, &public).is_err());
        }
    }

    #[test]
    fn a_modified_token_never_verifies(
        sub in "[0-9a-z]{26}",
        exp in any::<i64>(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let (seed, public) = jwt::generate_keypair().unwrap();
        let claims = Claims {
            iss: "http://127.0.0.1:8080".into(),
            sub,
            aud: "keyplane".into(),
            exp,
            iat: 0,
            jti: "j".into(),
            org: "o".repeat(26),
            cid: "c".repeat(26),
            project: None,
            fr: None,
            idp: None,
            scope: None,
        };
        let token = jwt::sign(&claims, "k1", &seed).unwrap();
        prop_assert_eq!(jwt::verify(&token, &public), Ok(claims));
        let mut chars: Vec<char> = token.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(jwt::verify(&changed, &public).is_err(), "accepted a change at {}", i);
    }

    // ---- Client secrets -------------------------------------------------------------------

    #[test]
    fn only_the_secret_itself_matches(other in any::<String>()) {
        let (secret, hash) = generate_secret().unwrap();
        prop_assert!(secret_matches(&secret, &hash));
        if other != secret {
            prop_assert!(!secret_matches(&other, &hash));
        }
        let _ = plausible_client_id(&other);
    }

    // ---- Request bodies -------------------------------------------------------------------

    #[test]
    fn body_parsing_yields_a_value_or_a_4xx(bytes in bytes_or_json()) {
        for result in [
            parse_json::<Value>(&bytes).map(drop),
            parse_json::<Shaped>(&bytes).map(drop),
            parse_json::<CreateBody>(&bytes).map(drop),
            parse_json::<UpdateBody>(&bytes).map(drop),
        ] {
            if let Err(e) = result {
                prop_assert!(e.status().is_client_error(), "{}", e.status());
                runtime().block_on(assert_openai_4xx(e.into_response()));
            }
        }
    }

    #[test]
    fn any_json_value_yields_a_value_or_a_4xx(value in json_value()) {
        let bytes = value.to_string().into_bytes();
        match parse_json::<Shaped>(&bytes) {
            Ok(_) => prop_assert!(value.get("name").is_some_and(Value::is_string)),
            Err(e) => runtime().block_on(assert_openai_4xx(e.into_response())),
        }
        if let Err(e) = parse_json::<Value>(&bytes) {
            // Only objects are bodies.
            prop_assert!(!value.is_object());
            prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn both_body_extractors_answer_in_their_envelope(bytes in bytes_or_json()) {
        let rt = runtime();
        rt.block_on(async {
            if let Err(e) = JsonBody::<Shaped>::from_request(json_request(bytes.clone()), &()).await {
                assert_openai_4xx(e.into_response()).await;
            }
            if let Err(e) = KcJson::<CreateBody>::from_request(json_request(bytes), &()).await {
                assert_keycard_4xx(e.into_response()).await;
            }
        });
    }
}

/// The shared body parser, its refusals in the OpenAI envelope.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    keyplane::http::extract::parse_json(bytes).map_err(ApiError::from)
}

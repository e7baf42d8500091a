//! Hostile requests on both dialects and the token endpoint: oversized bodies (declared,
//! undeclared and streamed), deep nesting, invalid UTF-8 and NUL bytes in bodies, paths and
//! query strings, huge numbers, duplicate keys, wrong content types and empty bodies. Each is a
//! clear 4xx in the dialect's own envelope, never a 5xx, and leaves nothing behind.

use crate::common::{self, kc_accounts, kc_credentials, Resp, TestApp, KC_ORG};
use axum::body::{Body, Bytes};
use axum::http::Request;
use serde_json::Value;

const PROJECTS: &str = "/v1/organization/projects";
const ADMIN_KEYS: &str = "/v1/organization/admin_api_keys";
const TOKEN: &str = "/service-account-token";
const LIMIT: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum Dialect {
    OpenAi,
    Keycard,
    OAuth,
}

/// How a body travels: with its length declared, or streamed in chunks with none (what
/// `Transfer-Encoding: chunked` becomes inside the server).
#[derive(Clone, Copy, Debug)]
enum Framing {
    Declared,
    Chunked,
}

fn body(bytes: Vec<u8>, framing: Framing) -> (Body, Option<usize>) {
    match framing {
        Framing::Declared => {
            let n = bytes.len();
            (Body::from(bytes), Some(n))
        }
        Framing::Chunked => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                .chunks(16 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            (Body::from_stream(futures_util::stream::iter(chunks)), None)
        }
    }
}

async fn post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
    framing: Framing,
) -> Resp {
    let mut req = Request::post(path).header("authorization", format!("Bearer {}", app.admin_key));
    if path == TOKEN {
        // The token endpoint authenticates clients, not admins.
        req = Request::post(path);
    }
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let (body, length) = body(bytes, framing);
    if let Some(n) = length {
        req = req.header("content-length", n);
    }
    app.raw(req.body(body).unwrap()).await
}

/// A 4xx in the dialect's envelope; returns its code.
fn rejected<'a>(r: &'a Resp, dialect: Dialect, what: &str) -> &'a str {
    assert!(
        r.status.is_client_error(),
        "{what} ({dialect:?}): {} {}",
        r.status,
        r.text
    );
    match dialect {
        Dialect::OpenAi => r.error()["code"].as_str().unwrap_or_default(),
        Dialect::Keycard => r.kc_error(r.status.as_u16()),
        Dialect::OAuth => r.oauth_error(r.status.as_u16()),
    }
}

/// What a hostile request could have changed: every list it could have added to.
async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        format!("{PROJECTS}?limit=100&include_archived=true"),
        format!("{ADMIN_KEYS}?limit=100"),
        format!("{}?limit=100", kc_accounts(KC_ORG)),
        "/v1/organization/audit_logs?limit=100".to_owned(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        state.push(r.body["data"].clone());
    }
    state
}

/// Where each dialect takes a JSON body that would create something.
fn json_targets(account: &str) -> Vec<(Dialect, String)> {
    vec![
        (Dialect::OpenAi, PROJECTS.to_owned()),
        (Dialect::OpenAi, ADMIN_KEYS.to_owned()),
        (Dialect::Keycard, kc_accounts(KC_ORG)),
        (Dialect::Keycard, kc_credentials(KC_ORG, account)),
    ]
}

async fn setup() -> (TestApp, String, Vec<Value>) {
    let app = TestApp::new().await;
    let account = app.kc_create_account("target").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(&app).await;
    (app, account, before)
}

#[tokio::test]
async fn oversized_bodies_are_refused_however_they_arrive() {
    let (app, account, before) = setup().await;
    let just_over = {
        // Valid JSON, so only the size is wrong.
        let mut b = br#"{"name":""#.to_vec();
        b.resize(LIMIT - 1, b'a');
        b.extend_from_slice(br#""}"#);
        b
    };
    assert_eq!(just_over.len(), LIMIT + 1);
    // Deeply nested as well as huge: the size limit refuses it before any parsing.
    let huge = vec![b'['; 10 * 1024 * 1024];
    let form_over = {
        let mut b = b"grant_type=client_credentials&pad=".to_vec();
        b.resize(LIMIT + 1, b'a');
        b
    };
    let form_huge = {
        let mut b = b"grant_type=client_credentials&pad=".to_vec();
        b.resize(10 * 1024 * 1024, b'a');
        b
    };
    for framing in [Framing::Declared, Framing::Chunked] {
        for (dialect, path) in json_targets(&account) {
            for (what, bytes) in [
                ("64 KiB + 1", &just_over),
                ("100k [", &huge[..100_000].to_vec()),
                ("10 MB", &huge),
            ] {
                let r = post(
                    &app,
                    &path,
                    Some("application/json"),
                    bytes.clone(),
                    framing,
                )
                .await;
                let what = format!("{what} {framing:?} to {path}");
                assert_eq!(r.status, 413, "{what}: {}", r.text);
                assert_eq!(rejected(&r, dialect, &what), "request_too_large", "{what}");
            }
        }
        for (what, bytes) in [("64 KiB + 1", &form_over), ("10 MB", &form_huge)] {
            let r = post(
                &app,
                TOKEN,
                Some("application/x-www-form-urlencoded"),
                bytes.clone(),
                framing,
            )
            .await;
            let what = format!("{what} {framing:?} to {TOKEN}");
            assert_eq!(rejected(&r, Dialect::OAuth, &what), "invalid_request");
        }
    }
    // A declared length over the limit is refused before the body is read.
    let r = app
        .raw(
            Request::post(PROJECTS)
                .header("authorization", format!("Bearer {}", app.admin_key))
                .header("content-type", "application/json")
                .header("content-length", "10485760")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(
        snapshot(&app).await,
        before,
        "an oversized body changed state"
    );
}

#[tokio::test]
async fn malformed_json_bodies_are_400_in_each_envelope() {
    let (app, account, before) = setup().await;
    // Under the size limit, so the parser's depth limit is what refuses them.
    let deep_array = "[".repeat(60_000).into_bytes();
    let deep_object = {
        let mut b = br#"{"name":"#.to_vec();
        b.extend(std::iter::repeat_n(&b"{\"a\":"[..], 10_000).flatten());
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("60k [", deep_array, "invalid_json"),
        ("deep object", deep_object, "invalid_json"),
        (
            "invalid UTF-8 in a string",
            b"{\"name\":\"\xff\xfe\xc3\x28\"}".to_vec(),
            "invalid_json",
        ),
        (
            "invalid UTF-8 in a key",
            b"{\"\xffname\":\"x\"}".to_vec(),
            "invalid_json",
        ),
        (
            "raw NUL in a string",
            b"{\"name\":\"a\0b\"}".to_vec(),
            "invalid_json",
        ),
        (
            "NUL before the body",
            b"\0{\"name\":\"x\"}".to_vec(),
            "invalid_json",
        ),
        (
            "escaped NUL in a name",
            br#"{"name":"a\u0000b"}"#.to_vec(),
            "",
        ),
        (
            "lone surrogate",
            br#"{"name":"\ud800"}"#.to_vec(),
            "invalid_json",
        ),
        (
            "huge number as name",
            br#"{"name":1e999}"#.to_vec(),
            "invalid_json",
        ),
        (
            "huge integer as name",
            br#"{"name":123456789012345678901234567890}"#.to_vec(),
            "invalid_type",
        ),
        (
            "duplicate keys",
            br#"{"name":"a","name":"b"}"#.to_vec(),
            "invalid_json",
        ),
        ("a JSON string", br#""name""#.to_vec(), "invalid_type"),
        (
            "a JSON array",
            br#"[{"name":"x"}]"#.to_vec(),
            "invalid_type",
        ),
        ("null", b"null".to_vec(), "invalid_type"),
        ("empty body", Vec::new(), "missing_required_parameter"),
        (
            "whitespace body",
            b" \r\n\t ".to_vec(),
            "missing_required_parameter",
        ),
        ("truncated", br#"{"name":"#.to_vec(), "invalid_json"),
        (
            "trailing garbage",
            br#"{"name":"x"} {}"#.to_vec(),
            "invalid_json",
        ),
        (
            "BOM",
            b"\xef\xbb\xbf{\"name\":\"x\"}".to_vec(),
            "invalid_json",
        ),
    ];
    for (dialect, path) in json_targets(&account) {
        for framing in [Framing::Declared, Framing::Chunked] {
            for (what, bytes, code) in &cases {
                let r = post(
                    &app,
                    &path,
                    Some("application/json"),
                    bytes.clone(),
                    framing,
                )
                .await;
                let what = format!("{what} {framing:?} to {path}");
                assert_eq!(r.status, 400, "{what}: {}", r.text);
                let got = rejected(&r, dialect, &what);
                if !code.is_empty() {
                    assert_eq!(got, *code, "{what}: {}", r.text);
                }
                // Error messages describe, they do not quote the body back.
                assert!(
                    !r.text.contains("\\u0000") && !r.text.contains("\\ud800"),
                    "{what}"
                );
            }
        }
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "a malformed body changed state"
    );
}

#[tokio::test]
async fn huge_numbers_in_numeric_fields_are_400() {
    let (app, _, before) = setup().await;
    for n in [
        "1e999",
        "-1e999",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "-1",
        "0",
    ] {
        let body = format!(r#"{{"name":"n","expires_in_seconds":{n}}}"#).into_bytes();
        let r = post(
            &app,
            ADMIN_KEYS,
            Some("application/json"),
            body,
            Framing::Declared,
        )
        .await;
        assert_eq!(r.status, 400, "{n}: {}", r.text);
        rejected(&r, Dialect::OpenAi, n);
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn wrong_content_types_are_415_and_bodiless_requests_need_none() {
    let (app, account, before) = setup().await;
    let valid = br#"{"name":"would-be-created"}"#.to_vec();
    for (dialect, path) in json_targets(&account) {
        for t in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/jsonx",
            "",
        ] {
            let r = post(&app, &path, Some(t), valid.clone(), Framing::Declared).await;
            let what = format!("{t:?} to {path}");
            assert_eq!(r.status, 415, "{what}: {}", r.text);
            assert_eq!(rejected(&r, dialect, &what), "unsupported_media_type");
        }
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "a wrongly typed body changed state"
    );

    // JSON under its other spellings, and no type at all, are accepted.
    for (i, t) in [
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some("application/merge-patch+json"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!(r#"{{"name":"typed {i}"}}"#).into_bytes();
        let r = post(&app, PROJECTS, t, body, Framing::Declared).await;
        assert_eq!(r.status, 200, "{t:?}: {}", r.text);
    }
    // A body-less archive works whatever type the client declares (SDKs send JSON's).
    let p = app.create_project("archive-me").await;
    let r = post(
        &app,
        &format!("{PROJECTS}/{p}/archive"),
        Some("text/plain"),
        Vec::new(),
        Framing::Declared,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The token endpoint wants a form and says so in OAuth terms.
    for t in [Some("application/json"), Some("text/plain"), None] {
        let r = post(
            &app,
            TOKEN,
            t,
            b"grant_type=client_credentials".to_vec(),
            Framing::Declared,
        )
        .await;
        assert_eq!(rejected(&r, Dialect::OAuth, "token"), "invalid_request");
    }
}

#[tokio::test]
async fn hostile_token_requests_are_oauth_errors() {
    let (app, _, before) = setup().await;
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "invalid UTF-8",
            b"grant_type=\xff\xfe&client_id=\xc3\x28".to_vec(),
        ),
        (
            "percent-encoded invalid UTF-8",
            b"grant_type=%FF%FE&client_id=%C3%28".to_vec(),
        ),
        (
            "NUL bytes",
            b"grant_type=client_credentials\0&client_id=a%00b&client_secret=\0".to_vec(),
        ),
        (
            "repeated",
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
        ),
        ("JSON", br#"{"grant_type":"client_credentials"}"#.to_vec()),
        ("deep", "[".repeat(100_000).into_bytes()),
    ];
    for (what, bytes) in cases {
        for framing in [Framing::Declared, Framing::Chunked] {
            let r = post(&app, TOKEN, Some(form), bytes.clone(), framing).await;
            let code = rejected(&r, Dialect::OAuth, what);
            assert!(
                [
                    "invalid_request",
                    "invalid_client",
                    "unsupported_grant_type"
                ]
                .contains(&code),
                "{what}: {}",
                r.text
            );
        }
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn invalid_utf8_and_nul_in_paths_and_queries_are_4xx_in_the_envelope() {
    let (app, account, before) = setup().await;
    let p = app.create_project("p").await;
    let before = {
        let _ = before;
        snapshot(&app).await
    };
    let openai = [
        format!("{PROJECTS}/%FF%FE"),
        format!("{PROJECTS}/proj_%00"),
        format!("{PROJECTS}/{p}/service_accounts/svc_acct_%C3%28"),
        format!("{PROJECTS}?limit=%FF"),
        format!("{PROJECTS}?limit=%00"),
        format!("{PROJECTS}?limit=99999999999999999999999999"),
        format!("{PROJECTS}?after=%FF%FE"),
        format!("{PROJECTS}?after=proj_%00"),
        format!("{PROJECTS}/{p}/service_accounts?after=%C3%28"),
        "/v1/organization/audit_logs?after=%FF&limit=1".to_owned(),
        "/v1/organization/audit_logs?effective_at[gt]=%FF".to_owned(),
        "/v1/organization/audit_logs?effective_at[gt]=99999999999999999999999".to_owned(),
    ];
    for path in &openai {
        let r = app.get(path).await;
        rejected(&r, Dialect::OpenAi, path);
    }
    let keycard = [
        "/organizations/%FF%FE/service-accounts".to_owned(),
        "/organizations/%00/service-accounts".to_owned(),
        format!("{}/%FF", kc_accounts(KC_ORG)),
        format!("{}/%00", kc_accounts(KC_ORG)),
        format!("{}/%C3%28/credentials", kc_accounts(KC_ORG)),
        format!("{}?after=%FF%FE", kc_accounts(KC_ORG)),
        format!("{}?before=%00", kc_accounts(KC_ORG)),
        format!("{}?limit=%FF", kc_accounts(KC_ORG)),
        format!("{}?limit=99999999999999999999999999", kc_accounts(KC_ORG)),
        format!("{}?after={}", kc_accounts(KC_ORG), "A".repeat(10_000)),
        format!("{}?after=%FF", kc_credentials(KC_ORG, &account)),
    ];
    for path in &keycard {
        let r = app.get(path).await;
        rejected(&r, Dialect::Keycard, path);
    }
    // Writes to mangled paths create nothing.
    for path in [
        format!("{PROJECTS}/%FF/service_accounts"),
        format!("{}/%FF/credentials", kc_accounts(KC_ORG)),
        "/organizations/%FF/service-accounts".to_owned(),
    ] {
        let r = post(
            &app,
            &path,
            Some("application/json"),
            br#"{"name":"x"}"#.to_vec(),
            Framing::Declared,
        )
        .await;
        let dialect = if path.starts_with("/v1") {
            Dialect::OpenAi
        } else {
            Dialect::Keycard
        };
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        rejected(&r, dialect, &path);
    }
    assert_eq!(snapshot(&app).await, before);
}

/// Sends `request` as raw bytes and returns (status, body) of the answer; the server may
/// answer before it has read everything, so failed writes are not errors.
fn raw_exchange(addr: std::net::SocketAddr, head: &[u8], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = stream.write_all(head).and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// What only a real socket can carry: raw (not percent-encoded) invalid UTF-8 and NUL bytes in
/// the request line, a real chunked 10 MB upload, and a declared length never sent.
#[tokio::test]
async fn raw_hostile_bytes_on_a_real_socket_are_4xx_and_the_server_keeps_serving() {
    use common::server::{empty_db, Server};
    use keyplane::domain::keys::{KeyKind, PlainKey};
    let db = empty_db().await;
    let key = PlainKey::generate(KeyKind::Admin).unwrap();
    let s = Server::start(&db, Some(key.expose()));
    let auth = format!("Authorization: Bearer {}\r\n", key.expose());
    let line = |target: &[u8]| {
        let mut h = b"GET ".to_vec();
        h.extend_from_slice(target);
        h.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        h.extend_from_slice(auth.as_bytes());
        h.extend_from_slice(b"\r\n");
        h
    };
    for target in [
        &b"/v1/organization/projects/\xff\xfe"[..],
        b"/v1/organization/projects?limit=\xff",
        b"/v1/organization/projects/\x00",
        b"/organizations/\xff/service-accounts",
        b"/organizations/default/service-accounts?after=\xc3\x28",
    ] {
        // hyper's parser refuses these request lines before any routing, with a bare 400 (no
        // body, so no envelope is possible); their percent-encoded forms reach the dialects
        // and are tested in-process above.
        let (status, body) = raw_exchange(s.addr, &line(target), b"");
        let what = String::from_utf8_lossy(target);
        assert_eq!(status, 400, "{what}: {body}");
    }

    let post = |path: &str, framing: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\n{framing}\r\n"
        )
        .into_bytes()
    };
    let mut chunked = Vec::new();
    for _ in 0..160 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend(std::iter::repeat_n(b'[', 64 * 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for path in [
        "/v1/organization/projects",
        "/organizations/default/service-accounts",
    ] {
        let (status, body) = raw_exchange(
            s.addr,
            &post(path, "Transfer-Encoding: chunked\r\n"),
            &chunked,
        );
        assert_eq!(status, 413, "chunked to {path}: {body}");
        assert!(body.contains("request_too_large"), "{path}: {body}");
        // Declared but never sent: refused on the header alone, without waiting for it.
        let (status, body) = raw_exchange(s.addr, &post(path, "Content-Length: 10485760\r\n"), b"");
        assert_eq!(status, 413, "declared 10 MB to {path}: {body}");
    }
    let (status, body) = raw_exchange(
        s.addr,
        b"POST /service-account-token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunked,
    );
    assert_eq!(status, 400, "chunked 10 MB token request: {body}");
    assert!(body.contains("invalid_request"), "{body}");

    let (status, _, body) = common::http(
        s.addr,
        "GET",
        "/v1/organization/projects",
        Some(key.expose()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let projects: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        projects["data"].as_array().map(Vec::len),
        Some(1),
        "only the default project"
    );
    s.stop();
}

//! Slow and silent clients over real sockets (slowloris): a request head or body that does not
//! arrive within its read timeout, or a keep-alive connection left idle, is closed (a stalled
//! body first gets a 408 in the dialect's envelope) while other clients are served normally.
//! The server runs with 1 s timeouts so every test is bounded by a few seconds.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keyplane::connections::ReadTimeouts;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(1);
/// How long past its timeout a connection may linger before the test calls it a failure.
const SLACK: Duration = Duration::from_secs(3);

struct Running {
    addr: SocketAddr,
    key: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _app: common::TestApp,
}

impl Running {
    async fn start() -> Self {
        let app = common::TestApp::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(keyplane::app::serve_with_timeouts(
            listener,
            app.service.clone(),
            ReadTimeouts {
                header: TIMEOUT,
                body: TIMEOUT,
            },
            async {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            key: app.admin_key.clone(),
            stop: Some(tx),
            server,
            _app: app,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.server)
            .await
            .expect("graceful shutdown finishes")
            .unwrap()
            .unwrap();
    }

    /// A complete request on its own connection, answered promptly.
    async fn list_projects(&self) -> String {
        let mut c = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET /v1/organization/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.key
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let (text, waited) = read_to_close(&mut c).await;
        assert!(waited < TIMEOUT, "a normal request took {waited:?}");
        text
    }
}

/// Everything the server sends until it closes the connection, and how long that took.
async fn read_to_close(c: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT + SLACK, async {
        let mut chunk = [0u8; 4096];
        loop {
            match c.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past its timeout; got so far: {:?}",
        String::from_utf8_lossy(&buf)
    );
    (
        String::from_utf8_lossy(&buf).into_owned(),
        started.elapsed(),
    )
}

fn status_of(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

fn json_of(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}

#[tokio::test]
async fn a_half_sent_request_line_is_closed_while_others_are_served() {
    let s = Running::start().await;
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    stalled.write_all(b"GET /v1/organiz").await.unwrap();
    // Meanwhile, an ordinary client is not held up.
    let ok = s.list_projects().await;
    assert_eq!(status_of(&ok), Some(200), "{ok}");

    let (text, waited) = read_to_close(&mut stalled).await;
    assert!(waited >= TIMEOUT / 2, "closed too early: {waited:?}");
    // hyper may say 408 before closing, or just close.
    assert!(
        text.is_empty() || status_of(&text) == Some(408),
        "unexpected answer to a stalled head: {text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn headers_trickled_one_at_a_time_are_cut_off_at_the_header_timeout() {
    let s = Running::start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    // One header line every 300 ms would never finish on its own; the deadline is for the
    // whole head, not between bytes.
    let mut closed = false;
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        if started.elapsed() > TIMEOUT + SLACK {
            break;
        }
    }
    if !closed {
        let (text, _) = read_to_close(&mut c).await;
        assert!(
            text.is_empty() || status_of(&text) == Some(408),
            "unexpected answer to a trickled head: {text}"
        );
    }
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "trickled head held the connection for {:?}",
        started.elapsed()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_body_gets_408_in_the_openai_envelope_and_the_connection_is_closed() {
    let s = Running::start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/organization/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n",
        s.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(br#"{"name": "#).await.unwrap();

    let ok = s.list_projects().await;
    assert_eq!(status_of(&ok), Some(200), "{ok}");

    let (text, waited) = read_to_close(&mut c).await;
    assert!(waited >= TIMEOUT / 2, "answered too early: {waited:?}");
    assert_eq!(status_of(&text), Some(408), "{text}");
    let body = json_of(&text);
    assert_eq!(body["error"]["code"], "request_timeout", "{text}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{text}");
    s.stop().await;
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_body_timeout_in_the_keycard_envelope() {
    let s = Running::start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /organizations/default/service-accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n",
        s.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every 200 ms keeps the socket busy but never finishes the body.
    let writer = async {
        for _ in 0..40 {
            if c.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if started.elapsed() > TIMEOUT * 2 {
                break;
            }
        }
    };
    writer.await;
    let (text, _) = read_to_close(&mut c).await;
    assert!(started.elapsed() < TIMEOUT + SLACK);
    assert_eq!(status_of(&text), Some(408), "{text}");
    let body = json_of(&text);
    assert_eq!(body["status"], 408, "{text}");
    assert_eq!(body["code"], "request_timeout", "{text}");
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = Running::start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The response arrives and the connection stays open for the next request...
    let mut first = [0u8; 512];
    let n = tokio::time::timeout(TIMEOUT, c.read(&mut first))
        .await
        .expect("a prompt response")
        .unwrap();
    let first = String::from_utf8_lossy(&first[..n]).into_owned();
    assert_eq!(status_of(&first), Some(200), "{first}");
    assert!(first.ends_with("ok"), "whole response in one read: {first}");
    // ...which can reuse it while it is fresh,
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut second = [0u8; 512];
    let n = tokio::time::timeout(TIMEOUT, c.read(&mut second))
        .await
        .expect("a prompt response")
        .unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&second[..n])), Some(200));
    // ...but left idle, it is closed.
    let (text, waited) = read_to_close(&mut c).await;
    assert!(waited >= TIMEOUT / 2, "closed too early: {waited:?}");
    assert!(
        text.is_empty() || status_of(&text) == Some(408),
        "unexpected bytes on an idle connection: {text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_token_request_gets_408_in_the_oauth_envelope() {
    let s = Running::start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /service-account-token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=client_")
        .await
        .unwrap();
    let (text, waited) = read_to_close(&mut c).await;
    assert!(waited >= TIMEOUT / 2, "answered too early: {waited:?}");
    assert_eq!(status_of(&text), Some(408), "{text}");
    assert_eq!(json_of(&text)["error"], "invalid_request", "{text}");
    s.stop().await;
}

//! Raw HTTP/1.1 requests from a chosen loopback address (all of 127.0.0.0/8 is loopback on
//! Linux), for tests where the client address matters: throttling, allowlists, proxies.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// An HTTP answer: status, head (status line and headers), body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request (`Connection: close`) from 127.0.0.1, bounded in time.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    send_from(
        Ipv4Addr::LOCALHOST.into(),
        addr,
        method,
        path,
        key,
        extra,
        body,
    )
    .await
}

/// [`send`] from another loopback address (all of 127.0.0.0/8 is loopback on Linux), so that
/// nginx sees distinct clients.
pub async fn send_from(
    from: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(key) = key {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (n, v) in extra {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut stream: TcpStream = stream;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    })
    .await
    .unwrap()
}

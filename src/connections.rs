//! The accept loop HTTP and HTTPS share, with the limits that keep slow or silent clients from
//! holding connections (slowloris): a request head must arrive within `header_read`, which also
//! bounds how long a keep-alive connection may sit idle (hyper starts that timer whenever the
//! connection waits for a head), and a request body must arrive within `body_read` of its head.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a client may take to send what it owes.
#[derive(Clone, Copy, Debug)]
pub struct ReadTimeouts {
    /// The request line and headers, counted from when the connection starts waiting for them:
    /// so also the longest a keep-alive connection stays open between requests.
    pub header: Duration,
    /// The whole request body, counted from when its head was read.
    pub body: Duration,
}

impl Default for ReadTimeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
        }
    }
}

/// The request body ran past [`ReadTimeouts::body`]; the JSON extractors answer 408 for it.
#[derive(Debug)]
pub struct BodyReadTimeout;

impl std::fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyReadTimeout {}

/// True when `err` (as returned by reading a request body) is a [`BodyReadTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<BodyReadTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A request body that fails with [`BodyReadTimeout`] once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyReadTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on every connection `listener` accepts, after `handshake` turns the TCP
/// stream into the byte stream HTTP runs over (identity for HTTP, TLS for HTTPS; `None` drops
/// the connection). When `shutdown` resolves, stops accepting and lets open connections finish
/// their in-flight requests.
pub async fn serve<H, F, Io>(
    listener: TcpListener,
    router: Router,
    timeouts: ReadTimeouts,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> F + Clone + Send + 'static,
    F: Future<Output = Option<Io>> + Send + 'static,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let body_timeout = timeouts.body;
        // Like `into_make_service_with_connect_info`: the audit log records the peer.
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |req: Request<Incoming>| {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                // Bodiless requests (the verification hot path) get no timer.
                let body = if body.is_end_stream() {
                    Body::new(body)
                } else {
                    Body::new(DeadlineBody {
                        inner: body,
                        deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    })
                };
                Request::from_parts(parts, body)
            },
        ));
        let watcher = graceful.watcher();
        let handshake = handshake.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let Some(io) = handshake(tcp, peer).await else {
                return;
            };
            let conn = http.serve_connection(TokioIo::new(io), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

//! HTTPS for `keyplane serve`: rustls (ring provider) over the same router, HTTP/1.1, with the
//! certificate and key re-read on SIGHUP. The certificate is chosen per handshake, so a reload
//! affects new connections only; open ones keep the session they negotiated.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::connections::ReadTimeouts;

/// A client that connects and never finishes the handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a PEM certificate chain and its private key.
pub fn load_certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let cert_path = files.cert.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| anyhow::anyhow!("cannot read TLS certificate {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("TLS certificate {cert_path}: {e}"))?;
    if chain.is_empty() {
        bail!("TLS certificate {cert_path} holds no PEM certificate");
    }
    let key_path = files.key.display();
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("cannot read TLS private key {key_path}: {e}"))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("TLS private key {key_path} is not usable"))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .with_context(|| format!("TLS private key {key_path} does not match {cert_path}"))?;
    Ok(certified)
}

/// The certificate currently served, replaceable while the server runs.
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    pub fn load(files: &TlsFiles) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(load_certified_key(files)?)),
            files: files.clone(),
        }))
    }

    /// Re-reads both files; on failure the previous certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(load_certified_key(&self.files)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(current) => Some(current.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// Reloads `certs` on every SIGHUP. The handler is installed before this returns, so a SIGHUP
/// sent once the server answers never kills the process.
#[cfg(unix)]
pub fn reload_on_sighup(certs: Arc<Certificates>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
                Err(e) => tracing::error!(
                    error = %format!("{e:#}"),
                    "SIGHUP: TLS reload failed; still serving the previous certificate"
                ),
            }
        }
    }))
}

/// Serves `router` over TLS until `shutdown` resolves, then lets open connections finish their
/// in-flight requests.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    certs: Arc<Certificates>,
    timeouts: ReadTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(certs.server_config()?));
    let handshake = move |tcp, peer| {
        let acceptor = acceptor.clone();
        async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            }
        }
    };
    crate::connections::serve(listener, router, timeouts, handshake, shutdown).await
}

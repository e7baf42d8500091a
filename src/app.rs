//! Wiring: configuration → store → service → HTTP server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{Config, Database};
use crate::connections::ReadTimeouts;
use crate::domain::keys::PlainKey;
use crate::domain::time::Clock;
use crate::http::{self, AppState};
use crate::service::Service;
use crate::store::{PostgresStore, SqliteStore, Store};

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match &config.database {
        Database::SqliteFile(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            }
            Arc::new(SqliteStore::open_file(path, &config.pool).await?)
        }
        Database::SqliteUrl(url) => Arc::new(SqliteStore::open_url(url, &config.pool).await?),
        Database::Postgres(url) => Arc::new(PostgresStore::open(url, &config.pool).await?),
    };
    Ok(store)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve_on(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_timeouts(listener, service, ReadTimeouts::default(), shutdown).await
}

/// [`serve_on`] with other read timeouts than the defaults (tests use short ones).
pub async fn serve_with_timeouts(
    listener: TcpListener,
    service: Service,
    timeouts: ReadTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = http::router(AppState::new(service));
    crate::connections::serve(
        listener,
        router,
        timeouts,
        |tcp, _peer| async move { Some(tcp) },
        shutdown,
    )
    .await
    .context("HTTP server failed")
}

/// `keyplane serve`.
pub async fn serve(mut config: Config) -> anyhow::Result<()> {
    // Read before anything else so a bad file fails the start at once.
    let certs = match &config.tls {
        Some(files) => Some(crate::tls::Certificates::load(files)?),
        None => None,
    };
    let store = open_store(&config).await?;
    let mut service = Service::with_cache(store.clone(), Clock::system(), config.key_cache)
        .with_token_settings(config.tokens.clone())
        .with_models(config.models.clone());
    service = service
        .with_auth_throttle(config.throttle.clone())
        .with_federation(config.federation.clone())
        .with_console(config.console.clone());
    if let Some(webhook) = &config.audit_webhook {
        service = service.with_audit_webhook(webhook.delivery());
    }
    let supplied = config.bootstrap_admin_key.take();
    announce_bootstrap(&service, supplied, &config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let flusher = tokio::spawn(flush_usage_periodically(service.clone()));
    // Counts of earlier runs (per-day windows survive a restart) and of other nodes, before
    // the first request is decided.
    if let Err(e) = service.load_admission().await {
        tracing::warn!(error = %e, "could not load stored rate-limit counts");
    }
    let persister = service.spawn_admission_persistence();
    // Without a webhook nothing is queued; with one, undelivered events of earlier runs are
    // picked up first.
    let deliverer = config
        .audit_webhook
        .is_some()
        .then(|| tokio::spawn(crate::service::webhook::run(service.clone(), WEBHOOK_POLL)));
    match certs {
        None => {
            tracing::info!(listen = %config.listen, "keyplane is serving");
            serve_with_timeouts(
                listener,
                service.clone(),
                config.read_timeouts,
                shutdown_signal(),
            )
            .await?;
        }
        Some(certs) => {
            let reloader = crate::tls::reload_on_sighup(certs.clone())?;
            tracing::info!(listen = %config.listen, "keyplane is serving HTTPS");
            let router = http::router(AppState::new(service.clone()));
            crate::tls::serve_on(
                listener,
                router,
                certs,
                config.read_timeouts,
                shutdown_signal(),
            )
            .await?;
            reloader.abort();
        }
    }
    flusher.abort();
    if let Some(p) = persister {
        p.abort();
    }
    // Counts since the last sync survive a clean stop too.
    if let Err(e) = service.sync_admission().await {
        tracing::warn!(error = %e, "could not store the last rate-limit counts");
    }
    if let Some(d) = deliverer {
        d.abort();
    }
    // Uses recorded since the last periodic flush are not lost on a clean stop.
    if let Err(e) = service.flush_usage().await {
        tracing::warn!(error = %e, "could not record the last key uses");
    }
    if let Err(e) = service.flush_credential_usage().await {
        tracing::warn!(error = %e, "could not record the last credential uses");
    }
    store.close().await;
    tracing::info!("keyplane stopped");
    Ok(())
}

async fn announce_bootstrap(
    service: &Service,
    supplied: Option<PlainKey>,
    config: &Config,
) -> anyhow::Result<()> {
    let was_supplied = supplied.is_some();
    match service.bootstrap(supplied).await? {
        crate::service::Bootstrapped::Created { key, generated } => {
            tracing::info!(
                "initialised an empty store: organization \"default\" with its default project"
            );
            if generated {
                // Printed, not logged: this is the operator's one chance to copy it.
                eprintln!("\nkeyplane: first start. Admin API key for organization \"default\" (shown only once):\n\n    {}\n", key.expose());
                eprintln!(
                    "Use it as: curl -H \"Authorization: Bearer <key>\" http://{}/v1/organization/projects\n",
                    config.listen
                );
            }
        }
        crate::service::Bootstrapped::AlreadyInitialised => {
            if was_supplied {
                tracing::info!(
                    "store already initialised; KEYPLANE_BOOTSTRAP_ADMIN_KEY is ignored"
                );
            }
        }
    }
    Ok(())
}

/// How often an idle node looks for audit events to deliver.
const WEBHOOK_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// How often batched `last_used_at` updates are written.
const USAGE_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

async fn flush_usage_periodically(service: Service) {
    let mut tick = tokio::time::interval(USAGE_FLUSH);
    loop {
        tick.tick().await;
        if let Err(e) = service.flush_usage().await {
            tracing::warn!(error = %e, "could not record key uses; will retry");
        }
        if let Err(e) = service.flush_credential_usage().await {
            tracing::warn!(error = %e, "could not record credential uses; will retry");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

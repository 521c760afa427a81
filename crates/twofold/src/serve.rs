//! `twofold serve`: the HTTPS server with graceful shutdown.

pub mod connections;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use twofold_core::{AdminService, Ctx};
use twofold_web::AppState;

use crate::config::Config;
use crate::{logging, runtime, startup, tls};

/// How often a running server re-reads settings that affect the process
/// itself (file logging); changes made through this node apply at once.
const SETTINGS_POLL: Duration = Duration::from_secs(5);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const SESSION_PURGE: Duration = Duration::from_mins(10);
/// How often audit events past `audit.retention_days` are deleted (and
/// challenges decided more than a day ago).
const AUDIT_PRUNE: Duration = Duration::from_hours(1);
/// How often pending challenges past their lifetime are moved to expired:
/// a request nobody asks about any more still ends within seconds.
const CHALLENGE_SWEEP: Duration = Duration::from_secs(5);
/// How often a node asks whether a scheduled synchronisation with the
/// directory is due (`sync.enabled`, `sync.interval_minutes`); the lease
/// in the database lets one node run it.
const SYNC_CHECK: Duration = Duration::from_secs(30);

pub async fn run(config: Config, config_file: Option<&std::path::Path>) -> Result<()> {
    let logging = logging::init_server(&config);
    runtime::ensure_data_dir(&config)?;
    let tls = tls::load_or_generate(&config)?;
    // `/metrics` exists only when someone may read it.
    let metrics = config.metrics.is_on().then(|| {
        std::sync::Arc::new(twofold_web::metrics::Metrics::new(
            twofold_web::metrics::MetricsAccess::new(
                config.metrics.token.as_ref().map(|t| t.0.as_str()),
                config.metrics.allow.clone(),
            ),
        ))
    });
    let opened = runtime::open_observed(
        &config,
        metrics
            .clone()
            .map(|m| m as std::sync::Arc<dyn twofold_core::telemetry::Telemetry>),
    )
    .await?;
    let engine = opened.engine;

    let mut out = std::io::stdout().lock();
    if opened.sealing_key_created {
        writeln!(
            out,
            "Created sealing key {} (mode 0600): back it up apart from the database.",
            config.sealing_key_file.display()
        )?;
    }
    writeln!(
        out,
        "TLS certificate {}{}",
        tls.cert_path.display(),
        if tls.generated {
            " (self-signed, generated now)"
        } else {
            ""
        }
    )?;
    writeln!(out, "  SHA-256 fingerprint {}", tls.fingerprint)?;
    for line in startup::first_steps(engine.as_ref(), config_file).await? {
        writeln!(out, "{line}")?;
    }
    drop(out);

    let settings = engine.settings(&Ctx::system()).await?;
    logging.switch.set(settings.portal.logging);
    let poll_engine = engine.clone();
    let switch = logging.switch.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SETTINGS_POLL);
        loop {
            tick.tick().await;
            match poll_engine.settings(&Ctx::system()).await {
                Ok(s) => switch.set(s.portal.logging),
                Err(e) => tracing::warn!(error = %e, "cannot re-read settings"),
            }
        }
    });

    let sweep_engine = engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHALLENGE_SWEEP);
        loop {
            tick.tick().await;
            match sweep_engine.expire_overdue_challenges().await {
                Ok(n) if n > 0 => tracing::debug!(expired = n, "overdue challenges expired"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot expire overdue challenges"),
            }
        }
    });

    let purge_engine = engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SESSION_PURGE);
        loop {
            tick.tick().await;
            match purge_engine.purge_sessions().await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "expired portal sessions purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot purge portal sessions"),
            }
        }
    });

    let prune_engine = engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(AUDIT_PRUNE);
        loop {
            tick.tick().await;
            match prune_engine.prune_audit(&Ctx::system()).await {
                Ok(p) if p.removed > 0 => {
                    tracing::info!(
                        removed = p.removed,
                        days = p.retention_days,
                        "old audit events deleted"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
            }
            match prune_engine.purge_old_challenges().await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "old challenges deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot delete old challenges"),
            }
        }
    });

    let sync_engine = engine.clone();
    let holder = format!("serve-{}-{}", std::process::id(), config.listen);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SYNC_CHECK);
        loop {
            tick.tick().await;
            match sync_engine.sync_when_due(&holder).await {
                Ok(Some(r)) if r.held => tracing::warn!(
                    would_remove = r.removals().count(),
                    "synchronisation held: more users would be disabled or deleted than sync.threshold; `twofold sync approve` lets it go on"
                ),
                Ok(Some(r)) => tracing::info!(
                    added = r.added,
                    updated = r.updated,
                    disabled = r.disabled,
                    deleted = r.deleted,
                    refused = r.refused,
                    "synchronised with the directory"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "synchronisation with the directory failed"),
            }
        }
    });

    let app = twofold_web::app_behind(
        AppState {
            service: engine.clone(),
        },
        Some(match metrics {
            Some(m) => twofold_web::ServerParts::of(engine.clone()).with_metrics(m),
            None => twofold_web::ServerParts::of(engine.clone()),
        }),
        twofold_web::client_ip::TrustedProxies(std::sync::Arc::new(config.trusted_proxies.clone())),
    );
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    if engine.uses_outbox() {
        tracing::warn!(
            "DEVELOPMENT OUTBOX: calls and text messages are not sent; \
             anyone reaching this server can read and answer them at /dev/outbox"
        );
        println!("{}", startup::outbox_warning(config.listen));
    }
    let announce = handle.clone();
    let listening = engine.clone();
    tokio::spawn(async move {
        if let Some(addr) = announce.listening().await {
            // The webhooks' address of last resort (no public_url, no
            // portal.url): the address actually bound.
            listening.listening_at(&format!("https://{addr}"));
            tracing::info!(%addr, "serving");
            println!("{}", startup::serving(addr));
        }
    });

    listen(config.listen, tls.server_config, handle, app)
        .await
        .with_context(|| format!("cannot serve on {}", config.listen))?;
    println!("Twofold stopped.");
    Ok(())
}

/// Serves `app` over TLS on `addr` until `handle` shuts it down, with the
/// limits of `connections` on every connection and request.
pub async fn listen(
    addr: SocketAddr,
    tls: std::sync::Arc<rustls::ServerConfig>,
    handle: axum_server::Handle,
    app: axum::Router,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn(connections::answer_in_time));
    let mut server = axum_server::bind(addr)
        .acceptor(connections::acceptor(RustlsConfig::from_config(tls)))
        .handle(handle);
    connections::configure(server.http_builder());
    server
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

async fn shutdown_on_signal(handle: axum_server::Handle) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

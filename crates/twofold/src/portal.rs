//! `twofold portal`: the User Portal alone, for a separate (internet-facing)
//! host. It holds no database and no sealing key: every decision, every
//! session and every setting comes from the MFA server through its Web
//! Service SDK over HTTPS, with a service account, trusting one CA file or
//! one pinned certificate fingerprint. Portals keep nothing locally, so any
//! number of them can sit behind a load balancer without sticky sessions.
//!
//! An unreachable SDK or refused credentials do not stop the portal: it
//! says so at start, serves its pages (which report the service as
//! unavailable), and `/readyz` answers 503 until the SDK answers again, so a
//! load balancer keeps traffic away meanwhile.

use anyhow::{Context, Result};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use twofold_core::{Ctx, PortalService};
use twofold_link::RemoteService;
use twofold_sdk::{ClientOptions, SdkClient, Trust};
use twofold_web::mobile::relay::Relay;
use twofold_web::AppState;

use crate::config::{Config, ConfigError, SdkTrust};
use crate::{logging, runtime, tls};

const SETTINGS_POLL: Duration = Duration::from_secs(5);
const SETTINGS_RETRY: Duration = Duration::from_mins(1);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const SELF_TEST_TIMEOUT: Duration = Duration::from_secs(8);

/// The SDK client from the configuration, and the relay of the Mobile App
/// Web Service to the same server with the same trust; every problem is a
/// configuration error naming its key.
fn sdk_client(config: &Config) -> Result<(SdkClient, Relay), ConfigError> {
    let target = config.portal_sdk()?;
    let trust = match &target.trust {
        SdkTrust::CaFile(path) => Trust::ca_file(path)
            .map_err(|e| ConfigError(format!("sdk.ca_file (TWOFOLD_SDK_CA_FILE): {e}")))?,
        SdkTrust::Fingerprint(fp) => Trust::Fingerprint(*fp),
    };
    let tls = twofold_sdk::client_config(&trust).map_err(|e| ConfigError(format!("sdk: {e}")))?;
    let client = SdkClient::new(ClientOptions::new(
        &target.url,
        &target.username,
        &target.password.0,
        trust,
    ))
    .map_err(|e| ConfigError(format!("sdk: {e}")))?;
    let relay = Relay::new(client.base_url(), tls).map_err(|e| ConfigError(format!("sdk: {e}")))?;
    Ok((client, relay))
}

pub async fn run(mut config: Config, listen: Option<String>) -> Result<()> {
    if let Some(listen) = listen {
        config.listen = listen
            .parse()
            .map_err(|_| ConfigError(format!("--listen: {listen:?} is not an address and port")))?;
    }
    // Configuration first: a portal that cannot be configured never starts.
    let (client, relay) = sdk_client(&config)?;
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let logging = logging::init_server(&config);
    runtime::ensure_data_dir(&config)?;
    let tls = tls::load_or_generate(&config)?;

    let mut out = std::io::stdout().lock();
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
    drop(out);

    let url = client.base_url().to_string();
    match tokio::time::timeout(SELF_TEST_TIMEOUT, client.self_test()).await {
        Ok(Ok(t)) => {
            tracing::info!(%url, account = %t.account, "Web Service SDK self-test passed");
            println!(
                "Web Service SDK {url}: signed in as {} (server version {}).",
                t.account, t.version
            );
        }
        Ok(Err(e)) => {
            let hint = if e.is_unauthorized() {
                " Check sdk.username and sdk.password (a service account of the MFA server: `twofold service-account create NAME --role portal`)."
            } else {
                ""
            };
            tracing::warn!(%url, error = %e, "Web Service SDK self-test failed");
            println!(
                "WARNING: the Web Service SDK {url} cannot be used: {e}.{hint}\n  The portal serves anyway; /readyz answers 503 until the SDK answers."
            );
        }
        Err(_) => {
            tracing::warn!(%url, "Web Service SDK self-test timed out");
            println!(
                "WARNING: the Web Service SDK {url} did not answer within {} seconds.\n  The portal serves anyway; /readyz answers 503 until the SDK answers.",
                SELF_TEST_TIMEOUT.as_secs()
            );
        }
    }

    let service = Arc::new(RemoteService::new(client));

    // File logging follows the server's `portal.logging` setting.
    let poll = service.clone();
    let switch = logging.switch.clone();
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match poll.portal_settings(&Ctx::portal_visitor(None)).await {
                Ok(s) => {
                    if failing {
                        tracing::info!("settings readable through the SDK again");
                        failing = false;
                    }
                    switch.set(s.logging);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot read settings through the SDK");
                        failing = true;
                    }
                }
            }
            // Slower while failing: refused credentials would otherwise fill
            // the MFA server's audit log (and its throttle) every few seconds.
            tokio::time::sleep(if failing {
                SETTINGS_RETRY
            } else {
                SETTINGS_POLL
            })
            .await;
        }
    });

    // Phones reach the Mobile App Web Service here and are passed on.
    let app = twofold_web::portal_app(
        AppState { service },
        Arc::new(relay),
        twofold_web::client_ip::TrustedProxies(Arc::new(config.trusted_proxies.clone())),
    );
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let announce = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = announce.listening().await {
            tracing::info!(%addr, "portal serving");
            println!("Twofold portal is serving https://{addr}/ (Ctrl-C to stop)");
        }
    });

    // The same connection limits and timeouts as `twofold serve`.
    crate::serve::listen(config.listen, tls.server_config, handle, app)
        .await
        .with_context(|| format!("cannot serve on {}", config.listen))?;
    println!("Twofold portal stopped.");
    Ok(())
}

async fn shutdown_on_signal(handle: axum_server::Handle) {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

//! Wiring: the concrete adapters behind the engine, from the configuration.

use anyhow::{Context, Result};
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use twofold_core::clock::SystemClock;
use twofold_core::password::{HashCost, SecretHasher};
use twofold_core::sealing::SealingKey;
use twofold_core::Engine;
use twofold_store::SqlStore;

use crate::config::Config;

pub struct Opened {
    pub engine: Arc<Engine>,
    pub sealing_key_created: bool,
}

/// The data directory holds the database, keys and logs: owner-only.
pub fn ensure_data_dir(config: &Config) -> Result<()> {
    if !config.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    Ok(())
}

pub async fn open(config: &Config) -> Result<Opened> {
    open_observed(config, None).await
}

/// `open`, with the engine telling `telemetry` (the server's metrics) of
/// every decision.
pub async fn open_observed(
    config: &Config,
    telemetry: Option<Arc<dyn twofold_core::telemetry::Telemetry>>,
) -> Result<Opened> {
    ensure_data_dir(config)?;
    let store = SqlStore::connect(&config.database_url, config.max_connections).await?;
    let (key, created) = SealingKey::load_or_create(&config.sealing_key_file)?;
    // Every password, PIN and answer hash is keyed with the pepper derived
    // from the sealing key, so the database alone gives nothing to guess.
    let hasher = SecretHasher::new(HashCost::Production, key.pepper());
    let engine = Engine::new(
        Arc::new(store),
        Arc::new(SystemClock),
        hasher,
        Arc::new(key),
    );
    let engine = match &config.smtp {
        Some(smtp) => engine.with_mailer(Arc::new(
            twofold_delivery::Smtp::new(smtp).map_err(|e| anyhow::anyhow!("[smtp] {e}"))?,
        )),
        None => engine,
    };
    let engine = match &config.twilio {
        Some(twilio) => engine.with_telephony(Arc::new(
            twofold_delivery::Twilio::new(twilio.clone())
                .map_err(|e| anyhow::anyhow!("[twilio] {e}"))?,
        )),
        None => engine,
    };
    // Text messages go through the generic HTTP gateway while the setting
    // `sms_gateway.url` is set.
    let engine = engine.with_sms_gateway(Arc::new(
        twofold_delivery::HttpGateway::new().map_err(|e| anyhow::anyhow!("SMS gateway: {e}"))?,
    ));
    let engine = if config.outbox {
        engine.with_outbox()
    } else {
        engine
    };
    let engine = match &config.public_url {
        Some(url) => engine.with_public_url(url),
        None => engine,
    };
    // Directories the setting `portal.primary_auth` may name. Connections
    // are made on first use, so a directory that is down does not stop the
    // server (sign-ins say so, and /readyz reports it).
    let engine = match &config.directories.ldap {
        Some(ldap) => engine.with_directory(Arc::new(
            twofold_directory::LdapDirectory::new(ldap.clone())
                .map_err(|e| anyhow::anyhow!("[ldap] {e}"))?,
        )),
        None => engine,
    };
    let engine = match &config.directories.radius {
        Some(radius) => engine.with_directory(Arc::new(
            twofold_directory::RadiusDirectory::new(radius.clone())
                .map_err(|e| anyhow::anyhow!("[radius] {e}"))?,
        )),
        None => engine,
    };
    // Mobile-app devices that asked for a wake-up get one (ntfy, webhook).
    let engine = engine.with_push(Arc::new(
        twofold_delivery::PushWake::new().map_err(|e| anyhow::anyhow!("push wake-ups: {e}"))?,
    ));
    // Activation URIs carry the fingerprint of the certificate this server
    // presents, so an app pins a self-signed server (`serve` has made or
    // loaded it before this; other commands read it when it exists).
    let engine = match crate::tls::served_certificate_sha256(config) {
        Some(fp) => engine.with_tls_fingerprint(fp),
        None => engine,
    };
    let engine = match telemetry {
        Some(t) => engine.with_telemetry(t),
        None => engine,
    };
    Ok(Opened {
        engine: Arc::new(engine),
        sealing_key_created: created,
    })
}

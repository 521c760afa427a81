//! TLS for the server: the configured certificate, or a self-signed one made
//! on first start and kept in the data directory. Its SHA-256 fingerprint is
//! what clients pin (the SDK client, browsers on first visit).

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;

pub struct LoadedTls {
    pub server_config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    pub generated: bool,
    pub cert_path: std::path::PathBuf,
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SHA-256 of the certificate the server presents (configured, or the
/// self-signed one once generated); `None` when there is none yet or it
/// cannot be read (the activation URI then goes without it).
pub fn served_certificate_sha256(config: &Config) -> Option<[u8; 32]> {
    let path = match &config.tls_files {
        Some((c, _)) => c.clone(),
        None => config.self_signed_paths().0,
    };
    let certs = read_certs(&path).ok()?;
    Some(Sha256::digest(certs.first()?.as_ref()).into())
}

pub fn load_or_generate(config: &Config) -> Result<LoadedTls> {
    let (cert_path, key_path, generated) = if let Some((c, k)) = &config.tls_files {
        (c.clone(), k.clone(), false)
    } else {
        let (c, k) = config.self_signed_paths();
        let generated = match (c.exists(), k.exists()) {
            (true, true) => false,
            (false, false) => {
                generate(&c, &k, config.listen.ip())?;
                true
            }
            _ => bail!(
                "only one of {} and {} exists; remove it to have a new pair generated",
                c.display(),
                k.display()
            ),
        };
        (c, k, generated)
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let fingerprint = fingerprint(certs[0].as_ref());
    let mut server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow!(
                "TLS certificate {} and key {} do not fit together: {e}",
                cert_path.display(),
                key_path.display()
            )
        })?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(LoadedTls {
        server_config: Arc::new(server_config),
        fingerprint,
        generated,
        cert_path,
    })
}

fn generate(cert_path: &Path, key_path: &Path, listen_ip: IpAddr) -> Result<()> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = hostname() {
        names.push(host);
    }
    if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
        names.push(listen_ip.to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).context("certificate names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Twofold self-signed");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(825);
    let key = rcgen::KeyPair::generate().context("generating TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("self-signing certificate")?;

    if let Some(dir) = cert_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut kf = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    kf.write_all(key.serialize_pem().as_bytes())?;
    kf.sync_all()?;
    fs::write(cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(())
}

fn hostname() -> Result<String> {
    let h = fs::read_to_string("/etc/hostname")?.trim().to_string();
    if h.is_empty() || h.contains(char::is_whitespace) {
        bail!("no usable hostname");
    }
    Ok(h)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem =
        fs::read(path).with_context(|| format!("reading TLS certificate {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = fs::read(path).with_context(|| format!("reading TLS key {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{} is not a PEM private key", path.display()))?
        .ok_or_else(|| anyhow!("{} holds no PEM private key", path.display()))
}

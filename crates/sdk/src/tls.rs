//! What the client trusts: certificates from a PEM file, verified the usual
//! way (chain, validity, host name), or one pinned certificate fingerprint.
//!
//! Pinning replaces the chain and name checks with one question — is this
//! exactly the certificate the administrator saw printed by `twofold serve`?
//! — answered in constant time. The handshake signatures are still verified
//! with the provider's algorithms, so the server must hold the certificate's
//! private key; presenting a copied certificate is not enough.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::SdkError;

/// How the client decides the server is the right one.
#[derive(Clone)]
pub enum Trust {
    /// PEM certificates: a CA that issued the server's certificate, or the
    /// server's (self-signed) certificate itself. Host names are checked.
    Certificates(Vec<CertificateDer<'static>>),
    /// The SHA-256 of the server's certificate (DER).
    Fingerprint([u8; 32]),
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Certificates(c) => write!(f, "Trust::Certificates({} certificates)", c.len()),
            Trust::Fingerprint(fp) => write!(f, "Trust::Fingerprint({})", colon_hex(fp)),
        }
    }
}

impl Trust {
    /// Certificates from a PEM file.
    pub fn ca_file(path: &Path) -> Result<Trust, SdkError> {
        let pem = std::fs::read(path)
            .map_err(|e| SdkError::Config(format!("cannot read {}: {e}", path.display())))?;
        Trust::ca_pem(&pem).map_err(|e| SdkError::Config(format!("{}: {e}", path.display())))
    }

    /// Certificates from PEM text.
    pub fn ca_pem(pem: &[u8]) -> Result<Trust, SdkError> {
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<_, _>>()
            .map_err(|e| SdkError::Config(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(SdkError::Config("holds no PEM certificate".into()));
        }
        Ok(Trust::Certificates(certs))
    }

    /// A fingerprint as `twofold serve` prints it (`AB:CD:...`, 32 bytes).
    pub fn fingerprint(text: &str) -> Result<Trust, SdkError> {
        parse_fingerprint(text).map(Trust::Fingerprint)
    }
}

/// Parses a SHA-256 fingerprint: 64 hex digits, with or without colons
/// between the bytes, any case.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], SdkError> {
    let bad = || {
        SdkError::Config(
            "a SHA-256 fingerprint is 32 bytes of hex, e.g. 3A:F1:...:9C as `twofold serve` prints it"
                .into(),
        )
    };
    let t = text.trim();
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let digits: String = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 32 || parts.iter().any(|p| p.len() != 2) {
            return Err(bad());
        }
        parts.concat()
    } else {
        t.to_string()
    };
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts exactly one end-entity certificate, by its SHA-256.
#[derive(Debug)]
struct PinnedCertificate {
    fingerprint: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

struct PinMismatch;

const PIN_MISMATCH: &str = "the server's certificate does not match the pinned SHA-256 fingerprint";

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PIN_MISMATCH)
    }
}

// rustls shows certificate errors with `Debug`: make that readable too.
impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PIN_MISMATCH)
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(seen.ct_eq(&self.fingerprint)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls client configuration for a trust choice, on the *ring*
/// provider (no process-wide default needed).
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, SdkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SdkError::Config(format!("TLS: {e}")))?;
    let mut config = match trust {
        Trust::Certificates(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| SdkError::Config(format!("unusable certificate: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Fingerprint(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                fingerprint: *fingerprint,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_printed() {
        let printed = (0..32)
            .map(|i| format!("{:02X}", i * 7))
            .collect::<Vec<_>>()
            .join(":");
        let fp = parse_fingerprint(&printed).unwrap();
        assert_eq!(colon_hex(&fp), printed);
        assert_eq!(parse_fingerprint(&printed.to_lowercase()).unwrap(), fp);
        assert_eq!(parse_fingerprint(&printed.replace(':', "")).unwrap(), fp);
        assert_eq!(
            parse_fingerprint(&format!("  SHA256:{printed}\n")).unwrap(),
            fp
        );
        for bad in [
            "",
            "AB:CD",
            &printed[3..],
            &format!("{printed}:00"),
            &printed.replace("00", "0G"),
            &printed.replacen(':', "", 1),
        ] {
            assert!(parse_fingerprint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        assert!(Trust::ca_pem(b"not a certificate").is_err());
        assert!(Trust::ca_file(Path::new("/nonexistent/ca.pem")).is_err());
    }
}

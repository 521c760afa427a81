//! What `activate` is given — an activation URI (the QR code's text) or the
//! service URL and code typed separately — and the account it produces.

use std::path::PathBuf;
use twofold_proto::mobile::{ActivateResponse, ActivationUri};

use crate::client::{check_service_url, TrustChoice};
use crate::store::Account;
use crate::text::clean;
use crate::Error;

/// The longest device name the server accepts (characters).
pub const MAX_DEVICE_NAME: usize = 64;
const FALLBACK_DEVICE_NAME: &str = "twofold-authenticator";

/// Where and with which code to activate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The checked service URL, without a trailing slash.
    pub url: String,
    /// The code without the spaces people type.
    pub code: String,
    /// The pinned certificate, when the URI (or `--fingerprint`) has one.
    pub fingerprint: Option<[u8; 32]>,
}

impl Target {
    /// From `twofold://activate?url=…&code=…&fp=…`.
    pub fn from_uri(uri: &str) -> Result<Target, Error> {
        let parsed = ActivationUri::parse(uri.trim())
            .map_err(|e| Error::Usage(format!("not an activation URI: {}", clean(&e))))?;
        let fingerprint = parsed
            .fingerprint
            .as_deref()
            .map(twofold_sdk::parse_fingerprint)
            .transpose()
            .map_err(|e| Error::Usage(e.to_string()))?;
        Target::new(&parsed.url, &parsed.code, fingerprint)
    }

    /// From `--url`, `--code` and `--fingerprint` (hex, colons allowed).
    pub fn from_parts(url: &str, code: &str, fingerprint: Option<&str>) -> Result<Target, Error> {
        let fingerprint = fingerprint
            .map(twofold_sdk::parse_fingerprint)
            .transpose()
            .map_err(|e| Error::Usage(format!("--fingerprint: {e}")))?;
        Target::new(url, code, fingerprint)
    }

    fn new(url: &str, code: &str, fingerprint: Option<[u8; 32]>) -> Result<Target, Error> {
        let url = check_service_url(url)?;
        let code = normalize_code(code)?;
        Ok(Target {
            url,
            code,
            fingerprint,
        })
    }

    /// How the server is trusted: the pin, else `ca_file`, else the public
    /// CAs.
    pub fn trust(&self, ca_file: Option<PathBuf>) -> TrustChoice {
        match (self.fingerprint, ca_file) {
            (Some(fp), _) => TrustChoice::Pinned(fp),
            (None, Some(path)) => TrustChoice::CaFile(path),
            (None, None) => TrustChoice::WebPki,
        }
    }

    /// The account to store after the server's answer.
    pub fn account(
        &self,
        device_name: &str,
        ca_file: Option<PathBuf>,
        private_key: String,
        response: ActivateResponse,
        unix_time: u64,
    ) -> Result<Account, Error> {
        // The device id goes into a header of every later request.
        if response.device_id.is_empty()
            || response.device_id.len() > 64
            || !response
                .device_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::Other(format!(
                "the server returned an unusable device id {:?}",
                clean(&response.device_id)
            )));
        }
        Ok(Account {
            service_url: self.url.clone(),
            fingerprint: self.fingerprint.map(|fp| crate::hex(&fp)),
            ca_file: if self.fingerprint.is_some() {
                None
            } else {
                ca_file
            },
            device_id: response.device_id,
            device_name: device_name.to_string(),
            private_key,
            username: response.username,
            account: response.account,
            oath: response.oath,
            request_lifetime_seconds: response.request_lifetime_seconds,
            activated_at: unix_time,
        })
    }
}

/// The code as sent: digits as shown, without the spaces (or dashes) that
/// are there for reading.
pub fn normalize_code(code: &str) -> Result<String, Error> {
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if code.is_empty() {
        return Err(Error::Usage("the activation code is empty".into()));
    }
    if code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::Usage(
            "the activation code is the 12 digits shown with it (spaces are ignored)".into(),
        ));
    }
    Ok(code)
}

/// A device name: the one given, else the host name, else
/// `twofold-authenticator`.
pub fn device_name(given: Option<&str>) -> Result<String, Error> {
    if let Some(name) = given {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DEVICE_NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::Usage(format!(
                "--name must be 1 to {MAX_DEVICE_NAME} printable characters"
            )));
        }
        return Ok(name.to_string());
    }
    Ok(host_name().unwrap_or_else(|| FALLBACK_DEVICE_NAME.to_string()))
}

/// The machine's host name, read where Linux keeps it (no extra crate or
/// `unsafe` call for one string).
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .find(|s| {
            !s.is_empty()
                && s.chars().count() <= MAX_DEVICE_NAME
                && !s.chars().any(char::is_control)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_proto::mobile::OathSeed;

    #[test]
    fn uris_are_parsed_with_the_proto_parser() {
        let uri = ActivationUri {
            url: "https://mfa.example.org:8443/mobile/v1".into(),
            code: "4821 0937 5526".into(),
            fingerprint: Some("5f".repeat(32)),
        }
        .render();
        let target = Target::from_uri(&format!("  {uri}\n")).unwrap();
        assert_eq!(target.url, "https://mfa.example.org:8443/mobile/v1");
        assert_eq!(target.code, "482109375526");
        assert_eq!(target.fingerprint, Some([0x5f; 32]));
        assert_eq!(
            target.trust(Some("/ca.pem".into())),
            TrustChoice::Pinned([0x5f; 32])
        );

        let no_fp = Target::from_uri(
            "twofold://activate?url=https%3A%2F%2Fmfa.example.org%2Fmobile%2Fv1&code=123456789012",
        )
        .unwrap();
        assert_eq!(no_fp.fingerprint, None);
        assert_eq!(no_fp.trust(None), TrustChoice::WebPki);
        assert_eq!(
            no_fp.trust(Some("/ca.pem".into())),
            TrustChoice::CaFile("/ca.pem".into())
        );

        for bad in [
            "otpauth://totp/x?secret=A",
            "twofold://activate?code=1",
            "twofold://activate?url=https%3A%2F%2Fx&code=",
            "twofold://activate?url=http%3A%2F%2Fmfa.example.org&code=1",
            "twofold://activate?url=https%3A%2F%2Fx&code=1&fp=zz",
        ] {
            let err = Target::from_uri(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }

    #[test]
    fn parts_accept_printed_fingerprints() {
        let printed = vec!["AB"; 32].join(":");
        let t = Target::from_parts(
            "https://mfa.example.org/mobile/v1/",
            "4821-0937 5526",
            Some(&printed),
        )
        .unwrap();
        assert_eq!(t.url, "https://mfa.example.org/mobile/v1");
        assert_eq!(t.code, "482109375526");
        assert_eq!(t.fingerprint, Some([0xab; 32]));
        assert!(Target::from_parts("https://x/mobile/v1", "1", Some("nope")).is_err());
        assert!(Target::from_parts("https://x/mobile/v1", "12/34", None).is_err());
    }

    #[test]
    fn device_names() {
        assert_eq!(device_name(Some(" Jan's phone ")).unwrap(), "Jan's phone");
        assert!(device_name(Some("")).is_err());
        assert!(device_name(Some(&"x".repeat(65))).is_err());
        assert!(device_name(Some("a\nb")).is_err());
        let default = device_name(None).unwrap();
        assert!(!default.is_empty() && default.len() <= 64 * 4);
    }

    #[test]
    fn the_account_keeps_what_later_requests_need() {
        let t = Target::from_parts(
            "https://mfa.example.org/mobile/v1",
            "1",
            Some(&"ab".repeat(32)),
        )
        .unwrap();
        let response = ActivateResponse {
            device_id: "9b2f".repeat(8),
            username: "jan".into(),
            account: "mfa.example.org".into(),
            oath: OathSeed {
                secret: "JBSWY3DPEHPK3PXP".into(),
                algorithm: "SHA1".into(),
                digits: 6,
                period: 30,
            },
            request_lifetime_seconds: 60,
        };
        let a = t
            .account(
                "phone",
                Some("/ca.pem".into()),
                "KEY".into(),
                response.clone(),
                7,
            )
            .unwrap();
        assert_eq!(a.fingerprint.as_deref(), Some("ab".repeat(32).as_str()));
        // The pin is what is trusted; a CA file given too is not kept.
        assert_eq!(a.ca_file, None);
        assert_eq!(a.label(), "jan@mfa.example.org");
        assert_eq!(a.activated_at, 7);

        let mut bad = response;
        bad.device_id = "9b2f\r\nx".into();
        assert!(t.account("phone", None, "KEY".into(), bad, 7).is_err());
    }
}

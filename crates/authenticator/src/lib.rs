//! The reference authenticator of Twofold's Mobile App Web Service
//! (`docs/mobile-protocol.md`): what a phone app does, as a command-line
//! program and a small library the binary and its tests share.
//!
//! - [`store`]: the accounts file (0600, written atomically).
//! - [`signing`]: the device's Ed25519 key and the request signatures.
//! - [`client`]: signed HTTPS calls to `/mobile/v1`, with the account's trust.
//! - [`session`]: one account ready to talk to its server; polling several.
//! - [`select`]: which stored account(s) `--account` names.
//! - [`activation`]: what `activate` is given (URI or URL + code).
//! - [`totp`]: the RFC 6238 codes of the OATH fallback.
//! - [`text`]: server text made safe for a terminal.

pub mod activation;
pub mod client;
pub mod error;
pub mod select;
pub mod session;
pub mod signing;
pub mod store;
pub mod text;
pub mod totp;

pub use error::Error;

/// Seconds since the Unix epoch, the clock of signatures and TOTP codes.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lowercase hex, the form fingerprints and device ids take in the store.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

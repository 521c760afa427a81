//! Twofold's Web Service SDK from the outside: [`SdkClient`], a typed async
//! client of every `/sdk/v1` operation, and [`RemoteService`], the
//! `PortalService` of a User Portal that runs on a separate server and reaches
//! the MFA server only through the SDK.
//!
//! The client speaks HTTPS only (rustls with *ring*) and trusts exactly what
//! it is told to: the certificates of a PEM file (a CA, or the server's own
//! certificate), or one pinned SHA-256 certificate fingerprint as
//! `twofold serve` prints it.

mod client;
mod error;
mod remote;
mod tls;

pub use client::{check_url, ClientOptions, SdkClient, DEFAULT_TIMEOUT};
pub use error::SdkError;
pub use remote::{RemoteService, RemoteVerifier};
pub use tls::{parse_fingerprint, Trust};

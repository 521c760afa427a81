//! Twofold's Web Service SDK from the outside: [`SdkClient`], a typed async
//! client of every `/sdk/v1` operation, and the transport of the private
//! portal link (`SdkClient::link`), on which `twofold_link::RemoteService`
//! runs a User Portal on a separate server.
//!
//! The client speaks HTTPS only (rustls with *ring*) and trusts exactly what
//! it is told to: the certificates of a PEM file (a CA, or the server's own
//! certificate), or one pinned SHA-256 certificate fingerprint as
//! `twofold serve` prints it.
//!
//! It depends on the wire types (`twofold-proto`) only, not on the engine:
//! a third party can use it as is. `twofold_link` maps its errors and
//! answers onto the engine's types for those who want them.

mod client;
mod error;
mod tls;

pub use client::{check_url, ClientOptions, SdkClient, DEFAULT_TIMEOUT};
pub use error::SdkError;
pub use tls::{client_config, parse_fingerprint, Trust};

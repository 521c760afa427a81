//! The private portal link between a User Portal on a separate server
//! (`twofold portal`) and the MFA server, on the engine's side of the wire:
//!
//! * [`convert`] — engine types to and from the link's own wire types
//!   (`twofold_proto::link`), used by the server's link endpoint and by
//! * [`RemoteService`] — `PortalService` over `POST /link/v1`, what the
//!   portal runs on;
//! * [`RemoteVerifier`] — `Verifier` over the public SDK, for applications
//!   on other hosts that want the engine's types, with [`views`] turning the
//!   SDK's answers into them and [`domain_error`] its errors.
//!
//! The public client (`twofold-sdk`) and the wire types (`twofold-proto`)
//! know nothing of the engine's types beyond what this crate converts.

pub mod convert;
mod error;
mod remote;
mod verifier;
pub mod views;

pub use error::domain_error;
pub use remote::RemoteService;
pub use verifier::RemoteVerifier;

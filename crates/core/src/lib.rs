//! Twofold core: the domain model, runtime settings, the engine and the ports
//! (traits) that adapters implement. Nothing here speaks HTTP or SQL.

pub mod audit;
pub mod challenge;
pub mod clock;
pub mod directory;
pub mod display;
pub mod engine;
pub mod error;
pub mod factors;
pub mod import;
pub mod methods;
pub mod mobile;
pub mod oath;
pub mod outbox;
pub mod passed;
pub mod password;
pub mod pin;
pub mod portal;
pub mod ports;
pub mod principal;
pub mod questions;
pub mod reports;
pub mod sealing;
pub mod service;
pub mod settings;
pub mod sync;
pub mod telemetry;
pub mod throttle;
pub mod token_import;
pub mod user;
pub mod validate;

pub use engine::Engine;
pub use error::{ConflictReason, Error, Result};
pub use principal::{Access, Permissions, Role, Scope};
pub use service::{
    Actor, AdminService, CallerAuthenticator, Ctx, PortalService, SdkBackend, Verifier,
};

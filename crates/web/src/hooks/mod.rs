//! Provider webhooks under `/hooks/`: what a telephony provider tells
//! Twofold about the calls and text messages it placed. Handlers hand the
//! request over as it came (path, form fields, signature, address) to the
//! engine's `ProviderHooks`, which checks the signature and decides; they
//! only speak the provider's dialect (`twilio`: TwiML).

pub mod gateway;
pub mod twilio;

use axum::Router;
use std::sync::Arc;
use twofold_core::service::ProviderHooks;

/// Every provider's webhooks.
pub fn router(hooks: Arc<dyn ProviderHooks>) -> Router {
    twilio::router(hooks.clone()).merge(gateway::router(hooks))
}

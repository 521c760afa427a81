//! Provider webhooks under `/hooks/`: what a telephony provider tells
//! Twofold about the calls and text messages it placed. Handlers hand the
//! request over as it came (path, form fields, signature, address) to the
//! engine's `ProviderHooks`, which checks the signature and decides; they
//! only speak the provider's dialect (`twilio`: TwiML).

pub mod twilio;

pub use twilio::router;

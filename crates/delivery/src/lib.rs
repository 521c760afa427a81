//! Delivery adapters behind the `Delivery` port of `twofold-core`: the
//! engine says *what* to deliver (`Outgoing`), an adapter says it to a
//! provider. Today: a Twilio-compatible REST provider (`twilio`) for voice
//! calls and text messages, and the signature its webhooks carry
//! (`signature`), which the web layer checks on every webhook.

pub mod signature;
pub mod twilio;

pub use twilio::{Twilio, TwilioConfig};

//! Delivery adapters behind the `Delivery` port of `twofold-core`: the
//! engine says *what* to deliver (`Outgoing`), an adapter says it to a
//! provider. Today: a Twilio-compatible REST provider (`twilio`) for voice
//! calls and text messages, the signature its webhooks carry (`signature`),
//! and mail over SMTP (`mail`, with lettre).

pub mod gateway;
pub mod mail;
pub mod signature;
pub mod twilio;

pub use gateway::HttpGateway;
pub use mail::{MailTls, Smtp, SmtpConfig};
pub use twilio::{Twilio, TwilioConfig};

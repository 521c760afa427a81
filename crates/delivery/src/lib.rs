//! Delivery adapters behind the `Delivery` port of `twofold-core`: the
//! engine says *what* to deliver (`Outgoing`), an adapter says it to a
//! provider. Today: a Twilio-compatible REST provider (`twilio`) for voice
//! calls and text messages, the signature its webhooks carry (`signature`),
//! mail over SMTP (`mail`, with lettre), and the mobile app's push
//! wake-ups (`push`: ntfy, webhook).

pub mod gateway;
pub mod mail;
pub mod push;
pub mod signature;
pub mod twilio;

pub use gateway::HttpGateway;
pub use mail::{MailTls, Smtp, SmtpConfig};
pub use push::PushWake;
pub use twilio::{Twilio, TwilioConfig};

//! Mail over SMTP (lettre): STARTTLS on the submission port, implicit TLS,
//! or plain SMTP to a relay on this machine only. Used for the welcome mail
//! with the User Portal's address.

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::net::IpAddr;
use std::time::Duration;
use twofold_core::ports::{Delivery, Outgoing};
use twofold_core::{Error, Result};
use zeroize::Zeroizing;

/// A mail server that has not answered by then is down, for this mail.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (port 587); required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only to a relay on a loopback address.
    None,
}

impl MailTls {
    pub fn parse(s: &str) -> Option<MailTls> {
        match s {
            "starttls" => Some(MailTls::StartTls),
            "tls" => Some(MailTls::Tls),
            "none" => Some(MailTls::None),
            _ => None,
        }
    }
}

/// `[smtp]` of the process configuration.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: MailTls,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("from", &self.from)
            .finish()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpConfig {
    /// Refuses what could not work or would send a password in the clear.
    pub fn check(&self) -> Result<Mailbox> {
        if self.host.trim().is_empty() {
            return Err(Error::invalid("smtp.host", "is required"));
        }
        if self.tls == MailTls::None && !is_loopback(&self.host) {
            return Err(Error::invalid(
                "smtp.tls",
                "none is allowed only to a relay on a loopback address; use starttls or tls",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Error::invalid(
                "smtp.password",
                "smtp.username and smtp.password go together",
            ));
        }
        self.from.trim().parse::<Mailbox>().map_err(|_| {
            Error::invalid(
                "smtp.from",
                "is not a mail address such as Twofold <mfa@example.org>",
            )
        })
    }
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(config: &SmtpConfig) -> Result<Smtp> {
        let from = config.check()?;
        let host = config.host.trim();
        let builder = match config.tls {
            MailTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            MailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| Error::invalid("smtp.host", format!("cannot use it for TLS: {e}")))?;
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        Ok(Smtp {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Delivery for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, message: &Outgoing) -> Result<String> {
        let Outgoing::Mail { to, subject, body } = message else {
            return Err(Error::Internal("the mail server delivers mail only".into()));
        };
        let to: Mailbox = to
            .parse()
            .map_err(|_| Error::invalid("email", "is not a mail address"))?;
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| Error::Internal(format!("mail: {e}")))?;
        let response = self.transport.send(mail).await.map_err(|e| {
            tracing::warn!(error = %e, "mail server refused or did not answer");
            Error::Unavailable("the mail server did not take the mail".into())
        })?;
        Ok(response.code().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "mail.example.org".into(),
            port: 587,
            tls: MailTls::StartTls,
            username: Some("mfa".into()),
            password: Some("s3cret-pass".to_string().into()),
            from: "Twofold <mfa@example.org>".into(),
        }
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        assert!(config().check().is_ok());
        let mut c = config();
        c.tls = MailTls::None;
        assert!(c.check().is_err());
        c.host = "127.0.0.1".into();
        assert!(c.check().is_ok());
        c.host = "::1".into();
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_configurations_name_their_key() {
        let field = |c: SmtpConfig| match c.check() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut c = config();
        c.from = "not an address".into();
        assert_eq!(field(c), "smtp.from");
        let mut c = config();
        c.password = None;
        assert_eq!(field(c), "smtp.password");
        let mut c = config();
        c.host = " ".into();
        assert_eq!(field(c), "smtp.host");
        assert!(!format!("{:?}", config()).contains("s3cret"));
    }
}

//! A Twilio-compatible REST provider: `POST {base_url}/2010-04-01/Accounts/
//! {sid}/Messages.json` sends a text message, `.../Calls.json` places a call
//! whose `Url` is Twofold's voice webhook for the challenge (which answers
//! TwiML). HTTP basic authentication with the account SID and auth token.
//!
//! The provider's answer bodies go to the log (escaped, shortened), never to
//! the person: a refusal is `Error::Unavailable` with the status alone.

use async_trait::async_trait;
use std::time::Duration;
use twofold_core::ports::{Delivery, Outgoing};
use twofold_core::{Error, Result};
use zeroize::Zeroizing;

/// The provider's public API, when `[twilio] base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Ring this long before a call counts as not answered.
const RING_SECONDS: u32 = 30;
/// A provider that has not answered by then is down, for this challenge.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a provider's refusal reaches the log.
const LOGGED_BODY_MAX: usize = 300;

/// `[twilio]` of the process configuration.
#[derive(Clone)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Zeroizing<String>,
    /// Caller id of calls and sender of text messages (E.164).
    pub from: String,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"(set)")
            .field("from", &self.from)
            .finish()
    }
}

impl TwilioConfig {
    /// Refuses a configuration that could not work or would leak the auth
    /// token: plain HTTP to anything but loopback, an empty SID or token.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, message: &str| Err(Error::invalid(field, message));
        if self.account_sid.trim().is_empty() {
            return bad("twilio.account_sid", "is required");
        }
        if self.auth_token.trim().is_empty() {
            return bad("twilio.auth_token", "is required");
        }
        if self.from.trim().is_empty() {
            return bad(
                "twilio.from",
                "is required (the caller id and SMS sender, E.164)",
            );
        }
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|_| Error::invalid("twilio.base_url", "is not a URL"))?;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => Ok(()),
            "http" if loopback => Ok(()),
            _ => bad(
                "twilio.base_url",
                "must be https:// (plain http only to a loopback address)",
            ),
        }
    }
}

pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
}

impl Twilio {
    pub fn new(config: TwilioConfig) -> Result<Twilio> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(Twilio { config, http })
    }

    fn resource(&self, name: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{name}.json",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        )
    }

    /// A webhook of this server as the provider calls it, under the
    /// server's public URL `base`.
    pub fn hook(base: &str, path: &str) -> String {
        format!("{}/hooks/twilio/{path}", base.trim_end_matches('/'))
    }

    /// Creates `resource` from `form`; the provider's id of it.
    async fn create(&self, resource: &str, form: &[(&str, String)]) -> Result<String> {
        let res = self
            .http
            .post(self.resource(resource))
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.as_str()),
            )
            .form(form)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(resource, error = %e, "telephony provider unreachable");
                Error::Unavailable("the telephony provider did not answer".into())
            })?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !status.is_success() {
            tracing::warn!(
                resource,
                status = status.as_u16(),
                body = %shown(&body),
                "telephony provider refused"
            );
            return Err(Error::Unavailable(format!(
                "the telephony provider refused the request (HTTP {})",
                status.as_u16()
            )));
        }
        let sid = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["sid"].as_str().map(str::to_string))
            .filter(|s| {
                !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
            });
        sid.ok_or_else(|| {
            tracing::warn!(resource, body = %shown(&body), "telephony provider answered without a sid");
            Error::Unavailable("the telephony provider gave an unreadable answer".into())
        })
    }
}

/// A provider's body as it may appear in a log line: shortened, control
/// characters escaped.
fn shown(body: &str) -> String {
    let short: String = body.chars().take(LOGGED_BODY_MAX).collect();
    short.escape_default().to_string()
}

#[async_trait]
impl Delivery for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn verify_callback(&self, url: &str, fields: &[(String, String)], signature: &str) -> bool {
        crate::signature::verify(&self.config.auth_token, url, fields, signature)
    }

    async fn send(&self, message: &Outgoing) -> Result<String> {
        match message {
            Outgoing::Sms { to, text } => {
                self.create(
                    "Messages",
                    &[
                        ("To", to.clone()),
                        ("From", self.config.from.clone()),
                        ("Body", text.clone()),
                    ],
                )
                .await
            }
            Outgoing::VoiceCall {
                to,
                extension,
                challenge_id,
                hooks_base,
                ..
            } => {
                let mut form = vec![
                    ("To", to.clone()),
                    ("From", self.config.from.clone()),
                    (
                        "Url",
                        Self::hook(hooks_base, &format!("voice/{challenge_id}")),
                    ),
                    ("Method", "POST".into()),
                    ("Timeout", RING_SECONDS.to_string()),
                    (
                        "StatusCallback",
                        Self::hook(hooks_base, &format!("status/{challenge_id}")),
                    ),
                    ("StatusCallbackMethod", "POST".into()),
                ];
                if let Some(ext) = extension.as_deref().filter(|e| !e.is_empty()) {
                    // Each `w` waits half a second for the switchboard.
                    form.push(("SendDigits", format!("ww{ext}")));
                }
                self.create("Calls", &form).await
            }
            Outgoing::Mail { .. } | Outgoing::PushWake { .. } | Outgoing::GatewaySms { .. } => {
                Err(Error::Internal(
                    "the telephony provider delivers calls and text messages only".into(),
                ))
            }
        }
    }
}

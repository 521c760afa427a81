//! `ProviderHooks`: what a telephony provider tells Twofold about the calls
//! and text messages it placed — a call connected, keys were pressed, a call
//! ended, a text message came in. The front-end (the web's `/hooks/...`
//! routes) hands over the request as it came, signature included; the
//! engine checks the signature with the provider's adapter, so a forged
//! callback is refused (and audited) in the engine like any other refusal.

use async_trait::async_trait;
use std::net::IpAddr;

use crate::error::Result;

/// A provider's callback as it arrived.
#[derive(Debug, Clone, Default)]
pub struct SignedHook {
    /// The path and query under the hooks' base (`voice/{id}`,
    /// `gather/{id}?n=1`, `sms`): the adapter rebuilds the full URL the
    /// provider signed from its configured public URL.
    pub path_and_query: String,
    /// The form fields, in the order they came.
    pub fields: Vec<(String, String)>,
    /// The signature header (empty when missing).
    pub signature: String,
    pub source_ip: Option<IpAddr>,
}

impl SignedHook {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the call does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStep {
    /// Say `say` and gather keys, `#` finishing, for the challenge.
    Gather { voice: &'static str, say: String },
    /// Say `say` and hang up.
    Hangup { voice: &'static str, say: String },
}

#[async_trait]
pub trait ProviderHooks: Send + Sync + 'static {
    /// The call for challenge `id` connected: what to say and gather.
    async fn call_answered(&self, hook: &SignedHook, id: &str) -> Result<CallStep>;

    /// The keys pressed on the call for challenge `id` (`Digits`, and
    /// whether `#` ended them — `FinishedOnKey`).
    async fn call_keys(&self, hook: &SignedHook, id: &str) -> Result<CallStep>;

    /// The call for challenge `id` changed status (`CallStatus`): one that
    /// ends while the challenge waits rejects it.
    async fn call_status(&self, hook: &SignedHook, id: &str) -> Result<()>;

    /// A text message came in (`From`, `Body`): a reply to a two-way
    /// text message challenge.
    async fn sms_received(&self, hook: &SignedHook) -> Result<()>;

    /// A text message came in through the generic SMS gateway (`from`,
    /// `text`); `hook.signature` is the shared secret it sent
    /// (`sms_gateway.inbound_secret`; none set refuses them all).
    async fn gateway_sms_received(&self, hook: &SignedHook) -> Result<()>;
}

/// One message of the development outbox, with where its challenge stands.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub message: crate::ports::OutboxMessage,
    /// The call's challenge, while it exists (text messages: none).
    pub state: Option<crate::challenge::ChallengeState>,
    pub reason: Option<crate::challenge::ChallengeReason>,
    /// What a waiting call says when answered.
    pub says: Option<String>,
}

/// The development outbox's page: read the calls and text messages that
/// were kept instead of sent, and play the phone — answer a call and press
/// keys, let it ring out, reply to a text. Only while the server runs with
/// `[delivery] provider = "outbox"`; otherwise every call is `NotFound`.
#[async_trait]
pub trait DevOutbox: Send + Sync + 'static {
    /// The newest messages, newest first.
    async fn outbox(&self, ctx: &super::Ctx) -> Result<Vec<OutboxEntry>>;

    /// Answers the call `message` and presses `keys` (`#` at the end
    /// finishes them, as on a phone); `None` lets it ring out unanswered.
    /// What the call said back.
    async fn outbox_call(
        &self,
        ctx: &super::Ctx,
        message: i64,
        keys: Option<&str>,
    ) -> Result<Option<CallStep>>;

    /// Replies `body` to the text message `message`, from its number.
    async fn outbox_reply(&self, ctx: &super::Ctx, message: i64, body: &str) -> Result<()>;
}

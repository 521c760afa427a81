//! `DevOutbox` for the engine: the development outbox plays the provider.
//! Its actions go through the same code as the provider's signed callbacks
//! (`phone_hooks`), as actor `provider:outbox`, so what a developer tries on
//! the page is what a real phone would do.

use async_trait::async_trait;

use crate::challenge::ChallengeReason;
use crate::error::{Error, Result};
use crate::ports::OutboxKind;
use crate::principal::Access;
use crate::service::{Actor, CallStep, Ctx, DevOutbox, OutboxEntry};

use super::Engine;

/// Messages the page shows.
const SHOWN: u32 = 50;

impl Engine {
    /// The same engine keeping calls and text messages in the development
    /// outbox instead of sending them.
    pub fn with_outbox(mut self) -> Self {
        self.telephony = Some(std::sync::Arc::new(crate::outbox::Outbox::new(
            self.store.clone(),
            self.clock.clone(),
        )));
        self.outbox = true;
        self
    }

    /// Whether calls and text messages go to the development outbox.
    pub fn uses_outbox(&self) -> bool {
        self.outbox
    }

    /// The outbox's own caller, once the mode is known to be on.
    fn outbox_caller(&self, ctx: &Ctx) -> Result<Ctx> {
        if !self.outbox {
            return Err(Error::NotFound("outbox"));
        }
        Ok(Ctx::new(
            Actor::Provider("outbox"),
            Access::none(),
            ctx.source_ip,
        ))
    }
}

#[async_trait]
impl DevOutbox for Engine {
    async fn outbox(&self, ctx: &Ctx) -> Result<Vec<OutboxEntry>> {
        let ctx = self.outbox_caller(ctx)?;
        let mut out = Vec::new();
        for message in self.store.outbox(SHOWN).await? {
            let challenge = match &message.challenge_id {
                Some(id) => self.store.challenge(id).await?,
                None => None,
            };
            let challenge = match challenge {
                Some(c) => Some(self.settle(&ctx, c).await?),
                None => None,
            };
            let says = match &challenge {
                Some(c) if !c.state.is_final() => match self.call_script(&ctx, &c.id).await? {
                    CallStep::Gather { say, .. } | CallStep::Hangup { say, .. } => Some(say),
                },
                _ => None,
            };
            out.push(OutboxEntry {
                state: challenge.as_ref().map(|c| c.state),
                reason: challenge
                    .as_ref()
                    .and_then(|c| c.reason.as_deref())
                    .and_then(ChallengeReason::parse),
                message,
                says,
            });
        }
        Ok(out)
    }

    async fn outbox_call(
        &self,
        ctx: &Ctx,
        message: i64,
        keys: Option<&str>,
    ) -> Result<Option<CallStep>> {
        let ctx = self.outbox_caller(ctx)?;
        let m = self
            .store
            .outbox_message(message)
            .await?
            .filter(|m| m.kind == OutboxKind::Call)
            .ok_or(Error::NotFound("call"))?;
        let id = m.challenge_id.unwrap_or_default();
        match keys {
            None => {
                self.call_ended(&ctx, &id, "no-answer").await?;
                Ok(None)
            }
            Some(keys) => {
                let keys = keys.trim();
                let (digits, finished) = match keys.strip_suffix('#') {
                    Some(d) => (d, true),
                    None => (keys, false),
                };
                if !digits.chars().all(|c| c.is_ascii_digit() || c == '*') {
                    return Err(Error::invalid("keys", "press 0-9, * and # only"));
                }
                let step = self.press_keys(&ctx, &id, digits, finished).await?;
                if matches!(step, CallStep::Hangup { .. }) {
                    // The phone is put down after the goodbye.
                    self.call_ended(&ctx, &id, "completed").await?;
                }
                Ok(Some(step))
            }
        }
    }

    async fn outbox_reply(&self, ctx: &Ctx, message: i64, body: &str) -> Result<()> {
        let ctx = self.outbox_caller(ctx)?;
        let m = self
            .store
            .outbox_message(message)
            .await?
            .filter(|m| m.kind == OutboxKind::Sms)
            .ok_or(Error::NotFound("text message"))?;
        self.text_in(&ctx, &m.destination, body).await
    }
}

//! The development outbox (`[delivery] provider = "outbox"`): a `Delivery`
//! that keeps calls and text messages in the database instead of sending
//! them, so the whole product can be tried with no provider account. The
//! page `/dev/outbox` shows them and plays the phone (keys on a call, a
//! reply to a text) through `service::DevOutbox`. Off unless configured;
//! loudly logged at start.

use async_trait::async_trait;
use std::sync::Arc;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ports::{Delivery, NewOutboxMessage, OutboxKind, Outgoing, Store};

pub struct Outbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Outbox {
        Outbox { store, clock }
    }
}

#[async_trait]
impl Delivery for Outbox {
    async fn send(&self, message: &Outgoing) -> Result<String> {
        let (kind, destination, body, challenge_id) = match message {
            Outgoing::Sms { to, text } => (OutboxKind::Sms, to.clone(), text.clone(), None),
            Outgoing::VoiceCall {
                to,
                extension,
                language,
                challenge_id,
                ..
            } => (
                OutboxKind::Call,
                match extension.as_deref().filter(|e| !e.is_empty()) {
                    Some(ext) => format!("{to} ext. {ext}"),
                    None => to.clone(),
                },
                language.clone(),
                Some(challenge_id.clone()),
            ),
            Outgoing::Mail { .. } | Outgoing::PushWake { .. } | Outgoing::GatewaySms { .. } => {
                return Err(Error::Internal(
                    "the development outbox keeps calls and text messages only".into(),
                ))
            }
        };
        let id = self
            .store
            .outbox_put(&NewOutboxMessage {
                at: self.clock.now(),
                kind,
                destination,
                body,
                challenge_id,
            })
            .await?;
        Ok(format!("OB{id}"))
    }

    fn name(&self) -> &'static str {
        "outbox"
    }
}

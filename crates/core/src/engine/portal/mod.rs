//! The User Portal's flows: sign-in with its second step and fallbacks,
//! the enrollment wizard, account maintenance, one-time bypass. Every rule
//! the settings table states is enforced here, not by hiding a button.

mod account;
mod account_app;
mod account_phone;
mod enrollment;
mod enrollment_phone;
pub mod phone;
mod sign_in;
mod verify;

use serde::{Deserialize, Serialize};

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{oath_seed_label, NewOathToken, OathParams, SecurityQuestion};
use crate::oath;
use crate::pin;
use crate::questions::{normalize_answer, ANSWERS_REQUIRED_AT_ENROLLMENT};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{MethodKind, User};

use super::Engine;

/// How long a generated secret may wait for its first code.
const PENDING_OATH_MINUTES: i64 = 10;
/// How long a confirmed token may wait for the wizard to finish.
const CONFIRMED_OATH_MINUTES: i64 = 30;

/// The sealed round trip of an OATH secret through the portal session.
#[derive(Serialize, Deserialize)]
struct SealedOath {
    user_id: i64,
    secret: String,
    params: OathParams,
    counter: i64,
    issued_at: i64,
    confirmed: bool,
    imported: bool,
}

fn pending_label(user_id: i64, confirmed: bool) -> String {
    if confirmed {
        format!("oath-confirmed:{user_id}")
    } else {
        format!("oath-pending:{user_id}")
    }
}

impl Engine {
    /// Methods the portal's wizard can set up: OATH always; a phone call or
    /// text message when a provider (or the development outbox) is set up.
    fn available(&self, kind: MethodKind, settings: &Settings) -> bool {
        self.portal_method(kind, settings).is_some()
    }

    /// The module of `kind` when the portal's wizard can set it up.
    fn portal_method(
        &self,
        kind: MethodKind,
        settings: &Settings,
    ) -> Option<&'static dyn crate::methods::Method> {
        crate::methods::method(kind).filter(|m| match m.enrollment() {
            crate::methods::Enrollment::OathSecret => true,
            crate::methods::Enrollment::Phone => self.can_deliver(kind, settings),
            crate::methods::Enrollment::MobileApp => settings.portal.allow_mobile_app_activation,
        })
    }
}

impl Engine {
    pub(super) async fn audit_result(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &str,
        result: ResultCode,
        detail: Option<String>,
    ) -> Result<()> {
        let mut ev = self.event(ctx, event, Some(user), result);
        ev.detail = detail;
        self.store.append_audit(&ev).await.map(|_| ())
    }

    async fn user_questions(&self, user: &User) -> Result<Vec<SecurityQuestion>> {
        let answered: Vec<i64> = self
            .store
            .answers(user.id)
            .await?
            .into_iter()
            .map(|a| a.question_id)
            .collect();
        Ok(self
            .store
            .questions(None)
            .await?
            .into_iter()
            .filter(|q| answered.contains(&q.id))
            .collect())
    }

    /// The questions users pick from: their saved language's, else
    /// English's. Without a saved language, every language's: the portal
    /// shows those of the language it speaks (the browser's), which only it
    /// knows.
    async fn question_choices(&self, user: &User) -> Result<Vec<SecurityQuestion>> {
        let Some(lang) = user.language.as_deref() else {
            return self.store.questions(None).await;
        };
        // Questions are written per language: `de-AT` reads `de`'s.
        let lang = crate::validate::base_language(lang).unwrap_or("en");
        let mut qs = self.store.questions(Some(lang)).await?;
        if qs.len() < ANSWERS_REQUIRED_AT_ENROLLMENT && lang != "en" {
            qs = self.store.questions(Some("en")).await?;
        }
        Ok(qs)
    }

    fn questions_needed(settings: &Settings, choices: &[SecurityQuestion]) -> usize {
        if settings.portal.security_questions_fallback
            && choices.len() >= ANSWERS_REQUIRED_AT_ENROLLMENT
        {
            ANSWERS_REQUIRED_AT_ENROLLMENT
        } else {
            0
        }
    }

    fn open_oath(&self, sealed: &str, user: &User, confirmed: bool) -> Result<SealedOath> {
        let expired = || Error::invalid("code", "this setup has expired; start again");
        let bytes = self
            .sealing
            .open(sealed, &pending_label(user.id, confirmed))
            .map_err(|_| expired())?;
        let s: SealedOath = serde_json::from_slice(&bytes).map_err(|_| expired())?;
        let max_age = if confirmed {
            CONFIRMED_OATH_MINUTES
        } else {
            PENDING_OATH_MINUTES
        };
        if s.user_id != user.id
            || s.confirmed != confirmed
            || self.clock.now().unix_timestamp() - s.issued_at > max_age * 60
        {
            return Err(expired());
        }
        Ok(s)
    }

    /// Turns a confirmed sealed token into a row to store.
    fn confirmed_token(&self, user: &User, confirmed: &str, label: &str) -> Result<NewOathToken> {
        let s = self.open_oath(confirmed, user, true)?;
        let secret = oath::parse_base32_secret(&s.secret)?;
        let label = label.trim();
        if label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(Error::invalid("label", "must be at most 64 characters"));
        }
        let label = if label.is_empty() {
            if s.imported {
                "OATH token"
            } else {
                "Authenticator app"
            }
            .to_string()
        } else {
            label.to_string()
        };
        Ok(NewOathToken {
            label,
            params: s.params,
            sealed_secret: self.sealing.seal(&secret, &oath_seed_label(user.id))?,
            counter: s.counter,
        })
    }

    async fn hashed_answers(
        &self,
        answers: &[(i64, String)],
        choices: &[SecurityQuestion],
    ) -> Result<Vec<(i64, String)>> {
        if answers.len() != ANSWERS_REQUIRED_AT_ENROLLMENT {
            return Err(Error::invalid(
                "answers",
                format!("choose and answer {ANSWERS_REQUIRED_AT_ENROLLMENT} different questions"),
            ));
        }
        let mut out = Vec::new();
        for (qid, answer) in answers {
            if !choices.iter().any(|q| q.id == *qid) {
                return Err(Error::invalid("answers", "choose questions from the list"));
            }
            if out.iter().any(|(id, _): &(i64, String)| id == qid) {
                return Err(Error::invalid(
                    "answers",
                    format!("choose {ANSWERS_REQUIRED_AT_ENROLLMENT} different questions"),
                ));
            }
            let normalized = normalize_answer(answer)?;
            out.push((*qid, self.hasher.hash(normalized).await?));
        }
        Ok(out)
    }

    async fn checked_pin_hash(
        &self,
        user: &User,
        pin_code: &str,
        settings: &Settings,
    ) -> Result<String> {
        pin::check_pin(pin_code, &settings.pin, &user.phones())?;
        let keep = settings.pin.history as usize;
        let mut earlier: Vec<String> = self
            .store
            .pin(user.id)
            .await?
            .map(|p| p.hash)
            .into_iter()
            .collect();
        earlier.extend(self.store.pin_history(user.id).await?);
        let mut reused = false;
        for h in earlier.into_iter().take(keep) {
            reused |= self.hasher.verify(pin_code.to_string(), h).await;
        }
        if reused {
            return Err(pin::PinProblem::Recent(settings.pin.history).error());
        }
        self.hasher.hash(pin_code.to_string()).await
    }
}

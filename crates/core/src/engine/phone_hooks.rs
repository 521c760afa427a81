//! `ProviderHooks` for the engine: the provider's callbacks about the calls
//! and text messages of challenges. Each is believed only with the
//! provider's signature (checked by its adapter); a forgery is refused,
//! audited and counted against its address like a wrong secret.
//!
//! A call: connected → say the prompt and gather keys (`#` finishing);
//! keys → `#` alone approves (`standard`), the PIN and `#` approves (`pin`,
//! argon2id, wrong PINs count towards the user's lockout), the fraud code
//! and `#` reports fraud; silence or a hang-up rejects (`no_answer`).
//! A text message in → the newest two-way challenge waiting for a reply
//! from that number takes it as its answer.

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use crate::audit::ResultCode;
use crate::challenge::{is_challenge_id, Challenge, ChallengeReason, ChallengeState, Prompt};
use crate::error::{Error, Result};
use crate::factors::Factor;
use crate::principal::Access;
use crate::service::{Actor, CallStep, Ctx, ProviderHooks, SignedHook};
use crate::settings::Settings;
use crate::user::{MethodKind, Mode, User};

use super::challenges::MAX_ATTEMPTS;
use super::phone_texts::{spoken_digits, texts, PhoneTexts};
use super::telephony::masked;
use super::Engine;

const CALL: &str = "hooks.call";
const SMS: &str = "hooks.sms";
const FRAUD: &str = "user.fraud_block";

/// The longest key sequence or text message body looked at.
const ANSWER_MAX: usize = 64;

fn hangup(t: &PhoneTexts, say: &str) -> CallStep {
    CallStep::Hangup {
        voice: t.voice,
        say: say.to_string(),
    }
}

/// What the call says when it connects (and after a wrong key).
fn prompt(t: &PhoneTexts, mode: Mode, settings: &Settings) -> String {
    let ask = if mode == Mode::Pin {
        t.call_pin
    } else {
        t.call_standard
    };
    if settings.fraud.allow_report {
        let hint = t
            .call_fraud_hint
            .replace("{fraud}", &spoken_digits(&settings.fraud.code));
        format!("{ask} {hint}")
    } else {
        ask.to_string()
    }
}

impl Engine {
    /// The caller of a hook, once its signature is checked.
    async fn hook_caller(&self, hook: &SignedHook, event: &str) -> Result<Ctx> {
        let Some(provider) = self.telephony.clone() else {
            return Err(Error::NotFound("hook"));
        };
        let ctx = Ctx::new(
            Actor::Provider(provider.name()),
            Access::none(),
            hook.source_ip,
        );
        self.rate_limit(&ctx)?;
        let settings = self.settings_now().await?;
        let url = format!(
            "{}/hooks/{}/{}",
            self.public_base(&settings),
            provider.name(),
            hook.path_and_query
        );
        if provider.verify_callback(&url, &hook.fields, &hook.signature) {
            return Ok(ctx);
        }
        self.source_throttle
            .fail(ctx.guess_source, self.clock.now());
        let mut ev = self.event(&ctx, event, None, ResultCode::FailedForgedRequest);
        ev.detail = Some(format!(
            "signature missing or wrong on /hooks/{}/{}",
            provider.name(),
            crate::display::escape_control(
                &hook.path_and_query.chars().take(80).collect::<String>()
            )
        ));
        self.store.append_audit(&ev).await?;
        Err(Error::Forbidden(
            "the request does not carry the provider's signature".into(),
        ))
    }

    /// The phone call challenge `id`, settled, with its user.
    async fn call_challenge(&self, ctx: &Ctx, id: &str) -> Result<(Challenge, Option<User>)> {
        let found = if is_challenge_id(id) {
            self.store.challenge(id).await?
        } else {
            None
        };
        let Some(c) = found.filter(|c| c.method.method == MethodKind::PhoneCall) else {
            let mut ev = self.event(ctx, CALL, None, ResultCode::FailedInvalidInput);
            ev.detail = Some("no such call".into());
            self.store.append_audit(&ev).await?;
            return Err(Error::NotFound("challenge"));
        };
        let c = self.settle(ctx, c).await?;
        let user = self.store.find_user(&c.username).await?;
        Ok((c, user))
    }

    /// Rejects a waiting call's challenge and says why.
    async fn end_call(
        &self,
        ctx: &Ctx,
        c: Challenge,
        reason: ChallengeReason,
        code: ResultCode,
        say: &str,
        t: &PhoneTexts,
    ) -> Result<CallStep> {
        self.finish(ctx, c, ChallengeState::Rejected, reason, code)
            .await?;
        Ok(hangup(t, say))
    }

    /// Fraud reported on the call: the challenge is rejected and, when the
    /// settings say so, the user blocked until an administrator unblocks.
    pub(super) async fn report_fraud(
        &self,
        ctx: &Ctx,
        c: Challenge,
        settings: &Settings,
    ) -> Result<()> {
        let username = c.username.clone();
        let (won, _) = self
            .finish(
                ctx,
                c,
                ChallengeState::Rejected,
                ChallengeReason::FraudReported,
                ResultCode::FailedFraudReported,
            )
            .await?;
        if !won || !settings.fraud.block_on_report {
            return Ok(());
        }
        // A concurrent change to the user (a new version) is retried: the
        // block must not be lost to an unrelated edit.
        for _ in 0..3 {
            let Some(mut user) = self.store.find_user(&username).await? else {
                return Ok(());
            };
            if user.fraud_blocked {
                return Ok(());
            }
            user.fraud_blocked = true;
            let mut ev = self.event(ctx, FRAUD, Some(&username), ResultCode::FailedFraudReported);
            ev.detail = Some("blocked: fraud reported; an administrator must unblock".into());
            match self.store.update_user(&user, &ev).await {
                Ok(_) => return Ok(()),
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable(
            "could not block the user; try again".into(),
        ))
    }
}

#[async_trait]
impl ProviderHooks for Engine {
    async fn call_answered(&self, hook: &SignedHook, id: &str) -> Result<CallStep> {
        let ctx = self.hook_caller(hook, CALL).await?;
        self.call_script(&ctx, id).await
    }

    async fn call_keys(&self, hook: &SignedHook, id: &str) -> Result<CallStep> {
        let ctx = self.hook_caller(hook, CALL).await?;
        let digits = hook.field("Digits").unwrap_or_default();
        let finished = hook.field("FinishedOnKey") == Some("#");
        self.press_keys(&ctx, id, digits, finished).await
    }

    async fn call_status(&self, hook: &SignedHook, id: &str) -> Result<()> {
        let ctx = self.hook_caller(hook, CALL).await?;
        self.call_ended(&ctx, id, hook.field("CallStatus").unwrap_or_default())
            .await
    }

    async fn sms_received(&self, hook: &SignedHook) -> Result<()> {
        let ctx = self.hook_caller(hook, SMS).await?;
        self.text_in(
            &ctx,
            hook.field("From").unwrap_or_default(),
            hook.field("Body").unwrap_or_default(),
        )
        .await
    }

    async fn gateway_sms_received(&self, hook: &SignedHook) -> Result<()> {
        let ctx = self.gateway_caller(hook).await?;
        self.text_in(
            &ctx,
            hook.field("from").unwrap_or_default(),
            hook.field("text").unwrap_or_default(),
        )
        .await
    }
}

impl Engine {
    /// Believes the generic gateway's inbound request only with the shared
    /// secret of the settings (constant time); refuses and audits others.
    async fn gateway_caller(&self, hook: &SignedHook) -> Result<Ctx> {
        let ctx = Ctx::new(Actor::Provider("gateway"), Access::none(), hook.source_ip);
        self.rate_limit(&ctx)?;
        let settings = self.settings_now().await?;
        let secret = settings.sms_gateway.inbound_secret.reveal();
        let presented = hook.signature.as_bytes();
        if !secret.is_empty()
            && presented.len() == secret.len()
            && bool::from(presented.ct_eq(secret.as_bytes()))
        {
            return Ok(ctx);
        }
        self.source_throttle
            .fail(ctx.guess_source, self.clock.now());
        let mut ev = self.event(&ctx, SMS, None, ResultCode::FailedForgedRequest);
        ev.detail = Some(if secret.is_empty() {
            "inbound text through the SMS gateway, but sms_gateway.inbound_secret is not set".into()
        } else {
            "inbound text through the SMS gateway without the shared secret".into()
        });
        self.store.append_audit(&ev).await?;
        Err(Error::Forbidden(
            "the request does not carry the gateway's shared secret".into(),
        ))
    }
}

/// What the provider's callbacks (and the development outbox, which plays
/// the provider) do once their caller is known.
impl Engine {
    /// What the call for challenge `id` says when it connects.
    pub(super) async fn call_script(&self, ctx: &Ctx, id: &str) -> Result<CallStep> {
        let ctx = ctx.clone();
        let (c, user) = self.call_challenge(&ctx, id).await?;
        let t = texts(user.as_ref().and_then(|u| u.language.as_deref()));
        if c.state.is_final() {
            return Ok(hangup(t, t.call_not_waiting));
        }
        let settings = self.settings_now().await?;
        Ok(CallStep::Gather {
            voice: t.voice,
            say: prompt(t, c.method.mode, &settings),
        })
    }

    /// The keys pressed on the call for challenge `id`; `finished`: `#`
    /// ended them.
    pub(super) async fn press_keys(
        &self,
        ctx: &Ctx,
        id: &str,
        digits: &str,
        finished: bool,
    ) -> Result<CallStep> {
        let ctx = ctx.clone();
        let (c, user) = self.call_challenge(&ctx, id).await?;
        let t = texts(user.as_ref().and_then(|u| u.language.as_deref()));
        let (Some(user), false) = (user, c.state.is_final()) else {
            return Ok(hangup(t, t.call_not_waiting));
        };
        if let Some((reason, code)) = self.stop(&user, &c) {
            return self
                .end_call(&ctx, c, reason, code, t.call_refused, t)
                .await;
        }
        let settings = self.settings_now().await?;
        let digits: String = digits.chars().take(ANSWER_MAX).collect();
        if !digits.chars().all(|d| d.is_ascii_digit() || d == '*') {
            return Err(Error::invalid("Digits", "keys are 0-9 and *"));
        }
        if digits.is_empty() && !finished {
            return self
                .end_call(
                    &ctx,
                    c,
                    ChallengeReason::NoAnswer,
                    ResultCode::FailedNoAnswer,
                    t.call_no_keys,
                    t,
                )
                .await;
        }
        if settings.fraud.allow_report && finished && digits == settings.fraud.code {
            self.report_fraud(&ctx, c, &settings).await?;
            return Ok(hangup(t, t.call_fraud_reported));
        }
        let (right, wrong_say, reason) = if c.method.mode == Mode::Pin {
            match self.gate(&ctx, CALL, &user, Factor::Code, &settings).await {
                Ok(()) => {}
                // Guessing is paused for this user: no PIN is looked at.
                Err(Error::RateLimited { .. }) => {
                    return self
                        .end_call(
                            &ctx,
                            c,
                            ChallengeReason::UserLocked,
                            ResultCode::FailedRateLimited,
                            t.call_refused,
                            t,
                        )
                        .await;
                }
                Err(e) => return Err(e),
            }
            let Some(pin_hash) = self.challenge_pin_hash(&user, &c).await? else {
                return self
                    .end_call(
                        &ctx,
                        c,
                        ChallengeReason::PinNotSet,
                        ResultCode::FailedPinWrong,
                        t.call_refused,
                        t,
                    )
                    .await;
            };
            let right = finished
                && !digits.is_empty()
                && self.pin_matches(&user, digits.clone(), pin_hash).await;
            (right, t.call_wrong_pin, ChallengeReason::WrongPin)
        } else {
            (
                finished && digits.is_empty(),
                t.call_wrong_key,
                ChallengeReason::WrongPasscode,
            )
        };
        if right {
            if c.method.mode == Mode::Pin {
                let policy = super::guessing::guess_policy(&settings, Factor::Code);
                if let Some(until) = self
                    .store
                    .record_success(user.id, Factor::Code, self.clock.now(), &policy)
                    .await?
                {
                    return self
                        .closed(&ctx, CALL, &user.username, Factor::Code, until)
                        .await;
                }
            }
            let (won, now) = self
                .finish(
                    &ctx,
                    c,
                    ChallengeState::Accepted,
                    ChallengeReason::Accepted,
                    ResultCode::SuccessPhoneCall,
                )
                .await?;
            let say = if won && now.state == ChallengeState::Accepted {
                t.call_accepted
            } else {
                t.call_not_waiting
            };
            return Ok(hangup(t, say));
        }
        // Wrong: counted like a wrong passcode, and asked again while the
        // challenge has attempts left.
        let code = if reason == ChallengeReason::WrongPin {
            ResultCode::FailedPinWrong
        } else {
            ResultCode::FailedInvalidInput
        };
        let mut ev = self.event_with_method(
            &ctx,
            CALL,
            Some(&user.username),
            Some(c.method.to_string()),
            code,
        );
        ev.detail = Some(format!("challenge {}: {}", &c.id[..8], reason.as_str()));
        self.store.append_audit(&ev).await?;
        let locked = reason == ChallengeReason::WrongPin
            && self
                .count_failure(&ctx, CALL, &user, Factor::Code, &settings)
                .await?;
        let mode = c.method.mode;
        let last_try = c.attempts + 1 >= MAX_ATTEMPTS;
        let after = if last_try && !locked && reason == ChallengeReason::WrongPin {
            // The last wrong PIN of a call says so in the final reason.
            self.store.count_attempt(&c.id).await?;
            let (_, c) = self
                .finish(&ctx, c, ChallengeState::Rejected, reason, code)
                .await?;
            crate::challenge::Authentication::of(&c)
        } else {
            match self.after_wrong_answer(&ctx, c, locked, reason).await {
                Ok(a) => a,
                Err(Error::Conflict { .. }) => {
                    return Ok(hangup(t, t.call_not_waiting));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(if after.state == ChallengeState::Pending {
            CallStep::Gather {
                voice: t.voice,
                say: format!("{wrong_say} {}", prompt(t, mode, &settings)),
            }
        } else {
            hangup(t, &format!("{wrong_say} {}", t.call_refused))
        })
    }

    /// The call for challenge `id` changed status (`CallStatus`).
    pub(super) async fn call_ended(&self, ctx: &Ctx, id: &str, status: &str) -> Result<()> {
        let (c, _) = self.call_challenge(ctx, id).await?;
        if c.state.is_final() {
            return Ok(());
        }
        let (reason, code) = match status {
            // Still on its way.
            "queued" | "initiated" | "ringing" | "in-progress" | "answered" => return Ok(()),
            "failed" => (
                ChallengeReason::ProviderError,
                ResultCode::FailedProviderError,
            ),
            // busy, no-answer, canceled, and completed (hung up) without a
            // decision.
            _ => (ChallengeReason::NoAnswer, ResultCode::FailedNoAnswer),
        };
        self.finish(ctx, c, ChallengeState::Rejected, reason, code)
            .await?;
        Ok(())
    }

    /// A text message came in from `from`: the answer of the newest two-way
    /// challenge waiting for a reply from that number.
    pub(super) async fn text_in(&self, ctx: &Ctx, from: &str, body: &str) -> Result<()> {
        let body: String = body.chars().take(ANSWER_MAX).collect();
        let waiting = if from.starts_with('+') && from.len() <= 20 {
            self.store
                .pending_challenges_to(from, self.clock.now())
                .await?
        } else {
            Vec::new()
        };
        let Some(c) = waiting.into_iter().find(|c| {
            crate::methods::method(c.method.method)
                .is_some_and(|m| m.prompt(c.method.mode) == Prompt::SmsReply)
        }) else {
            let mut ev = self.event(ctx, SMS, None, ResultCode::FailedInvalidInput);
            ev.detail = Some(format!(
                "no challenge waits for a reply from {}",
                masked(from)
            ));
            self.store.append_audit(&ev).await?;
            return Ok(());
        };
        match self.answer(ctx, c, &body, Prompt::SmsReply).await {
            // A late or refused reply is audited; the provider gets 200
            // either way (a retry would not change it).
            Ok(_) | Err(Error::Conflict { .. } | Error::RateLimited { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

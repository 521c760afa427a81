//! Authenticating a user with their method in separate requests: an
//! application starts a challenge, follows it and answers it (see
//! `crate::challenge` for the state machine).
//!
//! Rules:
//! * starting refuses exactly whom `validate` refuses, with its reasons and
//!   audit codes, and costs about what `validate`'s refusals cost (no hash
//!   is computed before an answer arrives);
//! * the id is a bearer secret, usable only by the actor that started it;
//!   anyone else (and any malformed or unknown id) gets `NotFound`;
//! * an answer is checked by `check_passcode` like `validate`'s passcode,
//!   and a wrong one counts towards the user's lockout (`deny`) and the
//!   challenge's attempts (atomically, so racing answers get distinct
//!   numbers); the `MAX_ATTEMPTS`th wrong answer rejects the challenge
//!   (`too_many_attempts`). Wrong answers are counted after the check, so
//!   a right answer racing wrong ones is only pre-empted by that many wrong
//!   ones, never by fewer;
//! * every move out of `pending` is a compare-and-set in the store, so of
//!   racing answers (or nodes, or the clock) exactly one decides; an answer
//!   that loses that race gets the same `Conflict` as a late one.

use rand::RngCore;
use std::fmt::Write as _;

use crate::audit::ResultCode;
use crate::challenge::{
    is_challenge_id, Authentication, Challenge, ChallengeReason, ChallengeState, NewChallenge,
    PhoneChoice, Prompt,
};
use crate::error::{ConflictReason, Error, Result};
use crate::factors::Factor;
use crate::methods::{self, Holdings};
use crate::service::Ctx;
use crate::user::{DefaultMethod, User};

use super::oath_check::PasscodeCheck;
use super::validate_passcode::status_refusal;
use super::Engine;

/// How long a challenge waits for its answer (a text message's code: see
/// `telephony::lifetime`).
pub const CHALLENGE_SECONDS: i64 = 120;
/// Wrong answers a challenge takes; the last one rejects it.
pub const MAX_ATTEMPTS: u32 = 3;

const START: &str = "sdk.authenticate_start";
const STATUS: &str = "sdk.authenticate_status";
const ANSWER: &str = "sdk.authenticate_answer";
const FINISH: &str = "sdk.authenticate_finish";

pub(super) fn new_challenge_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        // Writing to a `String` cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What the audit log shows of an id: enough to correlate, not to use it.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn answer_reason(check: PasscodeCheck) -> ChallengeReason {
    match check {
        PasscodeCheck::Accepted => ChallengeReason::Accepted,
        PasscodeCheck::ReplayedPasscode => ChallengeReason::ReplayedPasscode,
        PasscodeCheck::WrongPin => ChallengeReason::WrongPin,
        PasscodeCheck::PinNotSet => ChallengeReason::PinNotSet,
        PasscodeCheck::NoToken => ChallengeReason::NoToken,
        PasscodeCheck::WrongPasscode => ChallengeReason::WrongPasscode,
        // Answered as 429 before a reason is given; were it ever given,
        // the user cannot be verified now.
        PasscodeCheck::Closed(_) => ChallengeReason::UserLocked,
    }
}

impl Engine {
    pub(super) async fn start_challenge(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        self.rate_limit(ctx)?;
        let Some(user) = self.store.find_user(username).await? else {
            self.source_throttle
                .fail(ctx.guess_source, self.clock.now());
            self.audit_result(
                ctx,
                START,
                username.trim(),
                ResultCode::FailedUserNotFound,
                None,
            )
            .await?;
            return Ok(Authentication::refused(ChallengeReason::UnknownUser));
        };
        let now = self.clock.now();
        let mut refused =
            status_refusal(&user, now).map(|(r, code)| (ChallengeReason::from(r), code));
        if let (None, Some(m)) = (refused, user.default_method) {
            // A challenge that could never be answered is refused at once.
            refused = self.unready(&user, m, phone).await?;
        }
        let method = match (user.default_method, refused) {
            (Some(m), None) => m,
            (_, refused) => {
                // `status_refusal` lets only enrolled users through.
                let (reason, code) = refused
                    .unwrap_or((ChallengeReason::NotEnrolled, ResultCode::FailedNotEnrolled));
                self.audit_result(ctx, START, &user.username, code, None)
                    .await?;
                return Ok(Authentication::refused(reason));
            }
        };
        let settings = self.settings_now().await?;
        if method.method == crate::user::MethodKind::MobileApp {
            return self
                .start_app_challenge(
                    ctx,
                    &user,
                    super::mobile_app::AppAsk {
                        method,
                        enrolling: false,
                        pin_hash: None,
                    },
                    START,
                    &settings,
                )
                .await;
        }
        if let Some(route) = super::telephony::route(&user, method, phone) {
            let proof = super::telephony::PhoneProof {
                method,
                route,
                enrolling: false,
                pin_hash: None,
            };
            return self
                .start_phone_challenge(ctx, &user, proof, START, "", &settings)
                .await;
        }
        // Whole seconds, as stored: what the start says is what every node sees.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let new = NewChallenge {
            id: new_challenge_id(),
            user_id: user.id,
            method,
            created_at: now,
            expires_at: now + time::Duration::seconds(CHALLENGE_SECONDS),
            created_by: ctx.actor.to_string(),
            destination: None,
            sealed_code: None,
            enrolling: false,
            extension: None,
            sealed_pin: None,
            number: None,
            source_address: None,
        };
        let mut ev = self.event_with_method(
            ctx,
            START,
            Some(&user.username),
            Some(method.to_string()),
            ResultCode::Success,
        );
        ev.detail = Some(format!("challenge {}", short(&new.id)));
        self.store.create_challenge(&new, &ev).await?;
        Ok(Authentication::of(&new.stored(user.username)))
    }

    /// Why a challenge with `method` could never be answered by `user` now
    /// (`None`: it could): the reason `validate` would give for any
    /// passcode, or what the method lacks.
    async fn unready(
        &self,
        user: &User,
        method: DefaultMethod,
        phone: PhoneChoice,
    ) -> Result<Option<(ChallengeReason, ResultCode)>> {
        let Some(module) = methods::method(method.method) else {
            return Ok(Some((
                ChallengeReason::MethodNotSupported,
                ResultCode::FailedMethodNotSupported,
            )));
        };
        let tokens = if module.code_held_by_user() {
            self.store.oath_tokens(user.id).await?.len()
        } else {
            0
        };
        let app = method.method == crate::user::MethodKind::MobileApp;
        let devices = if app {
            self.store.mobile_devices(user.id).await?.len()
        } else {
            0
        };
        let holdings = Holdings::of(user, tokens).with_devices(devices);
        if !module.ready(&holdings) {
            return Ok(Some(if module.code_held_by_user() {
                (ChallengeReason::NoToken, ResultCode::FailedNoToken)
            } else if app {
                (ChallengeReason::NoDevice, ResultCode::FailedNoDevice)
            } else {
                (ChallengeReason::NoPhone, ResultCode::FailedNoPhone)
            }));
        }
        if !module.code_held_by_user() && !app {
            if phone == PhoneChoice::Backup && !holdings.backup_phone {
                return Ok(Some((ChallengeReason::NoPhone, ResultCode::FailedNoPhone)));
            }
            if !self.can_deliver(method.method, &self.settings_now().await?) {
                return Ok(Some((
                    ChallengeReason::ProviderError,
                    ResultCode::FailedProviderError,
                )));
            }
        }
        if method.mode.needs_pin() && self.store.pin(user.id).await?.is_none() {
            return Ok(Some((
                ChallengeReason::PinNotSet,
                PasscodeCheck::PinNotSet.failure_code(),
            )));
        }
        Ok(None)
    }

    pub(super) async fn challenge_status(
        &self,
        ctx: &Ctx,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let c = self.own_challenge(ctx, STATUS, id).await?;
        let c = self.settle(ctx, c).await?;
        let c = match wait {
            Some(wait) if !c.state.is_final() => self.wait_for_decision(ctx, c, wait).await?,
            _ => c,
        };
        crate::service::AdminService::record_read(self, ctx, STATUS, Some(&c.username)).await?;
        Ok(Authentication::of(&c))
    }

    pub(super) async fn answer_challenge(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication> {
        self.rate_limit(ctx)?;
        let c = self.own_challenge(ctx, ANSWER, id).await?;
        self.answer(ctx, c, passcode, Prompt::Passcode).await
    }

    /// Answers `c` with what the user typed (`channel` `Passcode`) or
    /// replied to a text message (`SmsReply`); each challenge takes its
    /// answer only through its own method's channel.
    pub(super) async fn answer(
        &self,
        ctx: &Ctx,
        c: Challenge,
        passcode: &str,
        channel: Prompt,
    ) -> Result<Authentication> {
        let settings = self.settings_now().await?;
        let c = self.settle(ctx, c).await?;
        if c.state.is_final() {
            return self.no_more_answers(ctx, &c).await;
        }
        let Some(user) = self.store.find_user(&c.username).await? else {
            // Deleted since: its challenges went with it.
            return self
                .refuse(ctx, ANSWER, None, Error::NotFound("challenge"))
                .await;
        };
        let Some(module) = methods::method(c.method.method) else {
            return self
                .refuse(ctx, ANSWER, None, Error::NotFound("challenge"))
                .await;
        };
        if module.prompt(c.method.mode) != channel {
            return self
                .refuse(
                    ctx,
                    ANSWER,
                    Some(&c.username),
                    Error::conflict(
                        ConflictReason::AnsweredElsewhere,
                        "this challenge is answered on the phone, not here",
                    ),
                )
                .await;
        }
        if let Some((reason, code)) = self.stop(&user, &c) {
            return self
                .decide(ctx, c, ChallengeState::Rejected, reason, code)
                .await;
        }

        self.gate(ctx, ANSWER, &user, Factor::Code, &settings)
            .await?;
        let held = module.code_held_by_user();
        // Written (and counted) only if a held code is right.
        let mut success = self.draft_event(
            ctx,
            ANSWER,
            Some(&user.username),
            ResultCode::SuccessPasscode,
        );
        success.method = Some(c.method.to_string());
        success.detail = Some(format!("challenge {}", short(&c.id)));
        let check = if held {
            self.check_passcode(&user, passcode, &settings, &success)
                .await?
        } else {
            self.check_sent_code(&user, &c, passcode).await?
        };
        if check == PasscodeCheck::Accepted {
            if held {
                self.count(ctx, &success);
            }
            let code = if held {
                ResultCode::Success
            } else {
                ResultCode::SuccessSmsCode
            };
            return self
                .decide(
                    ctx,
                    c,
                    ChallengeState::Accepted,
                    ChallengeReason::Accepted,
                    code,
                )
                .await;
        }
        if let PasscodeCheck::Closed(until) = check {
            return self
                .closed(ctx, ANSWER, &user.username, Factor::Code, until)
                .await;
        }
        let mut ev = self.event_with_method(
            ctx,
            ANSWER,
            Some(&user.username),
            success.method,
            check.failure_code(),
        );
        ev.detail = success.detail;
        self.store.append_audit(&ev).await?;
        let locked = check.is_guess()
            && self
                .count_failure(ctx, ANSWER, &user, Factor::Code, &settings)
                .await?;
        self.after_wrong_answer(ctx, c, locked, answer_reason(check))
            .await
    }

    /// What ends a pending challenge before its answer is looked at: the
    /// user disabled, locked or blocked meanwhile, their method changed, or
    /// no attempts left.
    pub(super) fn stop(&self, user: &User, c: &Challenge) -> Option<(ChallengeReason, ResultCode)> {
        let refused = if c.enrolling {
            // Not enrolled is what an enrolling user is.
            match user.status(self.clock.now()) {
                crate::user::UserStatus::Enabled => None,
                crate::user::UserStatus::Disabled => Some((
                    super::ValidateReason::UserDisabled,
                    ResultCode::FailedUserDisabled,
                )),
                _ => Some((
                    super::ValidateReason::UserLocked,
                    ResultCode::FailedUserLocked,
                )),
            }
        } else {
            status_refusal(user, self.clock.now())
        };
        if let Some((reason, code)) = refused {
            Some((ChallengeReason::from(reason), code))
        } else if !c.enrolling && user.default_method != Some(c.method) {
            // (An enrollment's challenge proves a phone for a method the
            // user does not have yet.)
            Some((
                ChallengeReason::MethodChanged,
                ResultCode::FailedMethodNotSupported,
            ))
        } else if c.attempts >= MAX_ATTEMPTS {
            Some((
                ChallengeReason::TooManyAttempts,
                ResultCode::FailedTooManyAttempts,
            ))
        } else {
            None
        }
    }

    /// After a wrong answer (already audited and counted towards the
    /// user's lockout): counts the challenge's attempt and rejects it when
    /// the user is now locked or it has no attempts left (`last` then names
    /// why, `too_many_attempts` by default); otherwise it stays pending and
    /// the answer says what was wrong (`reason`).
    pub(super) async fn after_wrong_answer(
        &self,
        ctx: &Ctx,
        c: Challenge,
        locked: bool,
        reason: ChallengeReason,
    ) -> Result<Authentication> {
        let wrong = self.store.count_attempt(&c.id).await?;
        if locked {
            self.decide(
                ctx,
                c,
                ChallengeState::Rejected,
                ChallengeReason::UserLocked,
                ResultCode::FailedUserLocked,
            )
            .await
        } else if wrong >= MAX_ATTEMPTS {
            self.decide(
                ctx,
                c,
                ChallengeState::Rejected,
                ChallengeReason::TooManyAttempts,
                ResultCode::FailedTooManyAttempts,
            )
            .await
        } else if wrong == 0 {
            // Decided by another answer (or node) meanwhile.
            let now = self.store.challenge(&c.id).await?.unwrap_or(c);
            self.no_more_answers(ctx, &now).await
        } else {
            Ok(Authentication {
                reason: Some(reason),
                ..Authentication::of(&c)
            })
        }
    }

    /// An answer's decision: the challenge as decided, or — when another
    /// answer, node or the clock decided first — that answer's `Conflict`.
    pub(super) async fn decide(
        &self,
        ctx: &Ctx,
        c: Challenge,
        to: ChallengeState,
        reason: ChallengeReason,
        code: ResultCode,
    ) -> Result<Authentication> {
        let (won, c) = self.finish(ctx, c, to, reason, code).await?;
        // Not won, or expired by now instead: the answer came too late.
        if won && c.state == to {
            Ok(Authentication::of(&c))
        } else {
            self.no_more_answers(ctx, &c).await
        }
    }

    /// The caller's own challenge; every other id — malformed, unknown, or
    /// another account's — is the same `NotFound`, audited.
    pub(super) async fn own_challenge(
        &self,
        ctx: &Ctx,
        event: &str,
        id: &str,
    ) -> Result<Challenge> {
        let found = if is_challenge_id(id) {
            self.store.challenge(id).await?
        } else {
            None
        };
        let (subject, code, detail) = match found {
            Some(c) if c.created_by == ctx.actor.to_string() => return Ok(c),
            Some(c) => (
                Some(c.username),
                ResultCode::FailedNotAllowed,
                format!("challenge {} belongs to another account", short(&c.id)),
            ),
            None => (
                None,
                ResultCode::FailedInvalidInput,
                "no such challenge".to_string(),
            ),
        };
        let mut ev = self.event(ctx, event, subject.as_deref(), code);
        ev.detail = Some(detail);
        if let Err(audit_err) = self.store.append_audit(&ev).await {
            tracing::warn!(%audit_err, event, "could not record refusal in the audit log");
        }
        Err(Error::NotFound("challenge"))
    }

    /// A pending challenge whose time is up becomes `expired` (stored, so
    /// every node sees it so); anything else is returned as it is.
    pub(super) async fn settle(&self, ctx: &Ctx, c: Challenge) -> Result<Challenge> {
        if c.state != ChallengeState::Pending || self.clock.now() < c.expires_at {
            return Ok(c);
        }
        let (_, c) = self
            .finish(
                ctx,
                c,
                ChallengeState::Expired,
                ChallengeReason::Expired,
                ResultCode::FailedChallengeExpired,
            )
            .await?;
        Ok(c)
    }

    /// Moves a pending challenge to a final state (to `expired` instead when
    /// its time is up by now). Returns whether this call decided, and the
    /// challenge as it now is: when another answer, node or the clock got
    /// there first, their decision stands.
    pub(super) async fn finish(
        &self,
        ctx: &Ctx,
        c: Challenge,
        to: ChallengeState,
        reason: ChallengeReason,
        code: ResultCode,
    ) -> Result<(bool, Challenge)> {
        let now = self.clock.now();
        let (to, reason, code) = if now >= c.expires_at {
            (
                ChallengeState::Expired,
                ChallengeReason::Expired,
                ResultCode::FailedChallengeExpired,
            )
        } else {
            (to, reason, code)
        };
        let reason_name = reason.as_str();
        let mut ev = self.event_with_method(
            ctx,
            FINISH,
            Some(&c.username),
            Some(c.method.to_string()),
            code,
        );
        ev.detail = Some(format!("challenge {} {to}: {reason_name}", short(&c.id)));
        if self
            .store
            .finish_challenge(
                &c.id,
                ChallengeState::Pending,
                to,
                Some(&reason_name),
                now,
                &ev,
            )
            .await?
        {
            self.publish(&super::waiting::challenge_topic(&c.id)).await;
            return Ok((
                true,
                Challenge {
                    state: to,
                    reason: Some(reason_name),
                    completed_at: Some(now),
                    ..c
                },
            ));
        }
        let stored = self
            .store
            .challenge(&c.id)
            .await?
            .ok_or(Error::NotFound("challenge"))?;
        Ok((false, stored))
    }

    /// An answer to a challenge that is no longer pending: a stable
    /// `Conflict` naming the state, audited.
    pub(super) async fn no_more_answers(&self, ctx: &Ctx, c: &Challenge) -> Result<Authentication> {
        let message = if c.state.is_final() {
            format!("challenge is {} and takes no more answers", c.state)
        } else {
            "challenge takes no more answers".to_string()
        };
        self.refuse(
            ctx,
            ANSWER,
            Some(&c.username),
            Error::conflict(ConflictReason::Finished, message),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let a = new_challenge_id();
        assert!(is_challenge_id(&a), "{a}");
        assert_ne!(a, new_challenge_id());
        assert_eq!(short(&a).len(), 8);
        assert_eq!(short("abc"), "abc");
    }
}

//! The second step: an OATH code (the method or the OATH fallback) or
//! security answers, each failure counting towards lockout.

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::Factor;
use crate::methods;
use crate::portal::{Proof, Verified};
use crate::questions::normalize_answer;
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{User, UserStatus};

use crate::engine::guessing::{guess_policy, seconds_until};
use crate::engine::oath_check::PasscodeCheck;
use crate::engine::Engine;

impl Engine {
    pub(in crate::engine) async fn portal_verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified> {
        const EVENT: &str = "portal.verify";
        let settings = self.settings_now().await?;
        self.rate_limit(ctx)?;
        let user = self.user(username).await?;
        if user.status(self.clock.now()) != UserStatus::Enabled {
            self.audit_result(
                ctx,
                EVENT,
                &user.username,
                ResultCode::FailedUserLocked,
                None,
            )
            .await?;
            return Ok(Verified::Rejected {
                locked: true,
                attempts_left: None,
                paused_seconds: None,
                reason: None,
            });
        }
        let factor = match proof {
            Proof::Method | Proof::OathFallback => {
                let is_fallback = proof == Proof::OathFallback;
                let permitted = if is_fallback {
                    settings.portal.oath_fallback
                } else {
                    // The method's own proof here is a typed passcode; other
                    // methods (a call, an app) prove themselves elsewhere.
                    user.default_method.is_some_and(|m| {
                        methods::method(m.method).is_some_and(methods::Method::code_held_by_user)
                    })
                };
                if !permitted {
                    return self
                        .refuse(
                            ctx,
                            EVENT,
                            Some(&user.username),
                            Error::Forbidden("this way of verifying is not allowed".into()),
                        )
                        .await;
                }
                let (success_code, minutes) = if is_fallback {
                    (
                        ResultCode::SuccessOathFallback,
                        Some(settings.portal.oath_fallback_session_minutes),
                    )
                } else {
                    (ResultCode::SuccessOathCode, None)
                };
                self.gate(ctx, EVENT, &user, Factor::Code, &settings)
                    .await?;
                // A PIN mode without a PIN (set by an administrator after
                // enrollment): the code alone, and the portal then has the
                // user choose their PIN.
                let choose_pin = self.pin_not_chosen(&user).await?;
                // Written (and counted) only if the code is right.
                let mut success = self.draft_event(ctx, EVENT, Some(&user.username), success_code);
                if choose_pin && !is_fallback {
                    success.detail = Some("no PIN chosen yet: code alone, PIN next".into());
                }
                let code = code.unwrap_or_default();
                let check = if is_fallback || choose_pin {
                    // The fallback is the code alone, whatever the user's mode.
                    let tokens = self.store.oath_tokens(user.id).await?;
                    self.check_code(&tokens, &code, &settings, &success).await?
                } else {
                    self.check_passcode(&user, &code, &settings, &success)
                        .await?
                };
                if check == PasscodeCheck::Accepted {
                    self.count(ctx, &success);
                    return Ok(Verified::Accepted {
                        user: Box::new(user),
                        session_minutes: minutes,
                        choose_pin,
                    });
                }
                if let PasscodeCheck::Closed(until) = check {
                    return self
                        .closed(ctx, EVENT, &user.username, Factor::Code, until)
                        .await;
                }
                self.audit_result(ctx, EVENT, &user.username, check.failure_code(), None)
                    .await?;
                if !check.is_guess() {
                    return Ok(Verified::Rejected {
                        locked: false,
                        attempts_left: None,
                        paused_seconds: None,
                        reason: None,
                    });
                }
                Factor::Code
            }
            Proof::SecurityQuestions => {
                if !settings.portal.security_questions_fallback {
                    return self
                        .refuse(
                            ctx,
                            EVENT,
                            Some(&user.username),
                            Error::Forbidden("security questions are not allowed".into()),
                        )
                        .await;
                }
                self.gate(ctx, EVENT, &user, Factor::Answers, &settings)
                    .await?;
                if self
                    .check_answers(
                        &user,
                        &answers,
                        settings.portal.security_questions_required as usize,
                    )
                    .await?
                {
                    self.count_success(ctx, EVENT, &user, Factor::Answers, &settings)
                        .await?;
                    self.audit_result(
                        ctx,
                        EVENT,
                        &user.username,
                        ResultCode::SuccessSecurityQuestions,
                        None,
                    )
                    .await?;
                    let choose_pin = self.pin_not_chosen(&user).await?;
                    return Ok(Verified::Accepted {
                        user: Box::new(user),
                        session_minutes: None,
                        choose_pin,
                    });
                }
                self.audit_result(
                    ctx,
                    EVENT,
                    &user.username,
                    ResultCode::FailedSecurityAnswers,
                    None,
                )
                .await?;
                Factor::Answers
            }
        };
        let locked = self
            .count_failure(ctx, EVENT, &user, factor, &settings)
            .await?;
        let (attempts_left, paused_seconds) = if locked {
            (None, None)
        } else {
            self.attempts_left(&user, factor, &settings).await?
        };
        Ok(Verified::Rejected {
            locked,
            attempts_left,
            paused_seconds,
            reason: None,
        })
    }

    /// How many more wrong secrets of `factor` the user has before the
    /// next one pauses the factor or locks them: the smallest of the
    /// back-off streak, the hard lock and the hourly bound on codes.
    /// `None` when nothing bounds it (lockout off, no hourly limit). With
    /// it, how long the factor is paused, when this failure paused it.
    async fn attempts_left(
        &self,
        user: &User,
        factor: Factor,
        settings: &Settings,
    ) -> Result<(Option<u32>, Option<u64>)> {
        let policy = guess_policy(settings, factor);
        let state = self.store.failures(user.id, factor).await?;
        let now = self.clock.now();
        // An hour's count from a window that has ended no longer bounds.
        let hour_failures = if state
            .hour_start
            .is_some_and(|start| now - start < time::Duration::hours(1))
        {
            state.hour_failures
        } else {
            0
        };
        if let Some(until) = state.blocked_until.filter(|until| *until > now) {
            return Ok((Some(0), Some(seconds_until(until, now))));
        }
        let bounds = [
            policy.backoff.map(|b| b.after.saturating_sub(state.streak)),
            policy
                .hard_lock_after
                .map(|n| n.saturating_sub(state.consecutive)),
            policy.hourly_limit.map(|n| n.saturating_sub(hour_failures)),
        ];
        Ok((bounds.into_iter().flatten().min(), None))
    }

    /// All of `answers` must be right, and there must be at least `required`
    /// of them about questions the user answered. Every hash is checked even
    /// after a wrong one, so timing says nothing about which was wrong.
    /// When all are right, answers hashed unpeppered or at a lower cost are
    /// re-hashed in place (compare-and-set on the old hash, so answers
    /// replaced meanwhile stay); a failed write is logged, never a failure.
    async fn check_answers(
        &self,
        user: &User,
        answers: &[(i64, String)],
        required: usize,
    ) -> Result<bool> {
        let stored = self.store.answers(user.id).await?;
        let mut seen = Vec::new();
        let mut all_ok = answers.len() >= required && required > 0;
        // (question, old hash, new hash) of right answers whose hash is outdated.
        let mut upgrades = Vec::new();
        for (qid, answer) in answers {
            if seen.contains(qid) {
                all_ok = false;
                continue;
            }
            seen.push(*qid);
            let normalized = normalize_answer(answer).unwrap_or_default();
            if let Some(a) = stored.iter().find(|a| a.question_id == *qid) {
                let verified = self
                    .hasher
                    .verify_upgrading(normalized, a.hash.clone())
                    .await;
                all_ok &= verified.matched;
                if let Some(new) = verified.rehashed {
                    upgrades.push((*qid, &a.hash, new));
                }
            } else {
                self.hasher.verify_dummy(normalized).await;
                all_ok = false;
            }
        }
        if all_ok {
            for (qid, old, new) in upgrades {
                if let Err(e) = self.store.rehash_answer(user.id, qid, old, &new).await {
                    tracing::warn!(
                        error = %e,
                        user = %user.username,
                        "could not store an upgraded answer hash; it is tried again at the next check"
                    );
                }
            }
        }
        Ok(all_ok)
    }
}

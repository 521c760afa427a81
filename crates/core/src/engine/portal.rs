//! The User Portal's flows: sign-in with its second step and fallbacks,
//! the enrollment wizard, account maintenance, one-time bypass. Every rule
//! the settings table states is enforced here, not by hiding a button.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{
    oath_seed_label, DenialPolicy, Enrollment, NewOathToken, OathKind, OathParams, OathToken,
    SecurityQuestion,
};
use crate::oath;
use crate::pin;
use crate::portal::*;
use crate::questions::{normalize_answer, ANSWERS_REQUIRED_AT_ENROLLMENT};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{DefaultMethod, MethodKind, User, UserStatus};
use crate::validate;

use super::oath_check::PasscodeCheck;
use super::Engine;

/// How long a generated secret may wait for its first code.
const PENDING_OATH_MINUTES: i64 = 10;
/// How long a confirmed token may wait for the wizard to finish.
const CONFIRMED_OATH_MINUTES: i64 = 30;
const ISSUER: &str = "Twofold";

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

fn lockout_policy(s: &Settings) -> DenialPolicy {
    DenialPolicy {
        threshold: s.lockout.enabled.then_some(s.lockout.denials_to_lock),
        window_seconds: i64::from(s.lockout.reset_counter_minutes) * 60,
        lock_seconds: match s.lockout.auto_unblock_minutes {
            0 => None,
            m => Some(i64::from(m) * 60),
        },
    }
}

fn available(kind: MethodKind) -> bool {
    AVAILABLE_METHODS.contains(&kind)
}

impl Engine {
    pub(super) fn rate_limit(&self, ctx: &Ctx) -> Result<()> {
        match self.throttle.check(ctx.source_ip, self.clock.now()) {
            Some(retry_after_seconds) => Err(Error::RateLimited {
                retry_after_seconds,
            }),
            None => Ok(()),
        }
    }

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

    /// A failed secret: counts towards the user's lockout and the source's
    /// throttle. Returns whether the user is now locked.
    pub(super) async fn deny(&self, ctx: &Ctx, user: &User, settings: &Settings) -> Result<bool> {
        self.throttle.fail(ctx.source_ip, self.clock.now());
        let outcome = self
            .store
            .record_denial(user.id, self.clock.now(), &lockout_policy(settings))
            .await?;
        if outcome.locked {
            self.audit_result(
                ctx,
                "user.lockout",
                &user.username,
                ResultCode::FailedLockedOut,
                Some(format!(
                    "after {} denials",
                    settings.lockout.denials_to_lock
                )),
            )
            .await?;
        }
        Ok(outcome.locked)
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

    /// The questions users pick from: their language's, else English's.
    async fn question_choices(&self, user: &User) -> Result<Vec<SecurityQuestion>> {
        let lang = user.language.as_deref().unwrap_or("en");
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

    pub(super) async fn portal_begin_sign_in(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<SignIn> {
        const EVENT: &str = "portal.sign_in";
        let settings = self.settings_now().await?;
        if !settings.portal.allow_login {
            self.audit_result(
                ctx,
                EVENT,
                username.trim(),
                ResultCode::FailedLoginDisabled,
                None,
            )
            .await?;
            return Ok(SignIn::LoginDisabled);
        }
        self.rate_limit(ctx)?;
        let (user, matched) = self.primary_check(ctx, username, password).await?;
        let Some(user) = user else {
            self.throttle.fail(ctx.source_ip, self.clock.now());
            return Ok(SignIn::Rejected);
        };
        if !matched {
            if user.status(self.clock.now()) == UserStatus::Enabled {
                self.deny(ctx, &user, &settings).await?;
            } else {
                self.throttle.fail(ctx.source_ip, self.clock.now());
            }
            return Ok(SignIn::Rejected);
        }
        if user.status(self.clock.now()) != UserStatus::Enabled {
            return Ok(SignIn::Blocked { user });
        }
        self.store.clear_denials(user.id).await?;

        if let Some(ip) = ctx
            .source_ip
            .filter(|ip| settings.trusted_ips.contains(*ip))
        {
            self.audit_result(
                ctx,
                EVENT,
                &user.username,
                ResultCode::SuccessTrustedIp,
                Some(ip.to_string()),
            )
            .await?;
            return Ok(SignIn::Complete {
                user,
                skip: Skip::TrustedIp,
            });
        }
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessBypassUsed,
        );
        if self
            .store
            .consume_bypass(user.id, self.clock.now(), &ev)
            .await?
        {
            return Ok(SignIn::Complete {
                user,
                skip: Skip::Bypass,
            });
        }

        let tokens = self.store.oath_tokens(user.id).await?;
        // Not enrolled: no method yet, or an OATH method configured in advance
        // by an administrator but no token to go with it.
        let method = match user.default_method {
            Some(m) if !(m.method == MethodKind::OathToken && tokens.is_empty()) => m,
            _ => {
                return Ok(if settings.portal.allow_enrollment {
                    SignIn::Enroll { user }
                } else {
                    self.audit_result(
                        ctx,
                        EVENT,
                        &user.username,
                        ResultCode::FailedNotEnrolled,
                        None,
                    )
                    .await?;
                    SignIn::NotEnrolled { user }
                });
            }
        };
        let method_available = available(method.method)
            && (method.method != MethodKind::OathToken || !tokens.is_empty());
        let fallback_questions = if settings.portal.security_questions_fallback {
            let mut mine = self.user_questions(&user).await?;
            let need = settings.portal.security_questions_required as usize;
            if mine.len() >= need {
                mine.shuffle(&mut rand::thread_rng());
                mine.truncate(need);
                mine
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        let fallback_oath = settings.portal.oath_fallback
            && method.method != MethodKind::OathToken
            && !tokens.is_empty();
        Ok(SignIn::SecondStep {
            user,
            step: SecondStep {
                method,
                method_available,
                fallback_questions,
                fallback_oath,
            },
        })
    }

    pub(super) async fn portal_verify(
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
            return Ok(Verified::Rejected { locked: true });
        }
        match proof {
            Proof::Method | Proof::OathFallback => {
                let is_fallback = proof == Proof::OathFallback;
                let permitted = if is_fallback {
                    settings.portal.oath_fallback
                } else {
                    user.default_method.map(|m| m.method) == Some(MethodKind::OathToken)
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
                let success = self.event(ctx, EVENT, Some(&user.username), success_code);
                let code = code.unwrap_or_default();
                let check = if is_fallback {
                    // The fallback is the code alone, whatever the user's mode.
                    let tokens = self.store.oath_tokens(user.id).await?;
                    self.check_code(&tokens, &code, &settings, &success).await?
                } else {
                    self.check_passcode(&user, &code, &settings, &success)
                        .await?
                };
                if check == PasscodeCheck::Accepted {
                    return Ok(Verified::Accepted {
                        user: Box::new(user),
                        session_minutes: minutes,
                    });
                }
                self.audit_result(ctx, EVENT, &user.username, check.failure_code(), None)
                    .await?;
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
                if self
                    .check_answers(
                        &user,
                        &answers,
                        settings.portal.security_questions_required as usize,
                    )
                    .await?
                {
                    self.store.clear_denials(user.id).await?;
                    self.audit_result(
                        ctx,
                        EVENT,
                        &user.username,
                        ResultCode::SuccessSecurityQuestions,
                        None,
                    )
                    .await?;
                    return Ok(Verified::Accepted {
                        user: Box::new(user),
                        session_minutes: None,
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
            }
        }
        let locked = self.deny(ctx, &user, &settings).await?;
        Ok(Verified::Rejected { locked })
    }

    /// All of `answers` must be right, and there must be at least `required`
    /// of them about questions the user answered. Every hash is checked even
    /// after a wrong one, so timing says nothing about which was wrong.
    async fn check_answers(
        &self,
        user: &User,
        answers: &[(i64, String)],
        required: usize,
    ) -> Result<bool> {
        let stored = self.store.answers(user.id).await?;
        let mut seen = Vec::new();
        let mut all_ok = answers.len() >= required && required > 0;
        for (qid, answer) in answers {
            if seen.contains(qid) {
                all_ok = false;
                continue;
            }
            seen.push(*qid);
            let normalized = normalize_answer(answer).unwrap_or_default();
            match stored.iter().find(|a| a.question_id == *qid) {
                Some(a) => all_ok &= self.hasher.verify(normalized, a.hash.clone()).await,
                None => {
                    self.hasher.verify_dummy(normalized).await;
                    all_ok = false;
                }
            }
        }
        Ok(all_ok)
    }

    pub(super) async fn portal_enrollment_options(
        &self,
        _ctx: &Ctx,
        username: &str,
    ) -> Result<EnrollmentOptions> {
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let mut methods: Vec<MethodKind> = settings
            .portal
            .selectable_methods
            .iter()
            .copied()
            .filter(|m| available(*m))
            .collect();
        let preset = user.default_method.filter(|m| available(m.method));
        if let Some(p) = preset {
            methods = vec![p.method];
        } else if !settings.portal.allow_select_method {
            methods.truncate(1);
        }
        if methods.is_empty() {
            return Err(Error::Forbidden(
                "no verification method can be enrolled here; ask your administrator".into(),
            ));
        }
        let questions = self.question_choices(&user).await?;
        Ok(EnrollmentOptions {
            methods,
            preset,
            allow_third_party_oath: settings.portal.enrollment_prompt_oath_token,
            questions_required: Self::questions_needed(&settings, &questions),
            questions,
            pin_rules: settings.pin.clone(),
        })
    }

    fn seal_oath(&self, s: &SealedOath) -> Result<String> {
        let json = serde_json::to_vec(s).map_err(|e| Error::Internal(e.to_string()))?;
        self.sealing
            .seal(&json, &pending_label(s.user_id, s.confirmed))
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

    fn pending(
        &self,
        user: &User,
        secret: &[u8],
        params: OathParams,
        imported: bool,
    ) -> Result<PendingOath> {
        let sealed = self.seal_oath(&SealedOath {
            user_id: user.id,
            secret: oath::encode_base32(secret),
            params,
            counter: if params.kind == OathKind::Totp {
                i64::MIN
            } else {
                0
            },
            issued_at: self.clock.now().unix_timestamp(),
            confirmed: false,
            imported,
        })?;
        Ok(PendingOath {
            sealed,
            secret_base32: oath::encode_base32(secret),
            uri: oath::otpauth_uri(ISSUER, &user.username, secret, &params),
            params,
        })
    }

    pub(super) async fn portal_new_oath_secret(
        &self,
        _ctx: &Ctx,
        username: &str,
    ) -> Result<PendingOath> {
        let user = self.user(username).await?;
        let params = OathParams::default();
        let secret = oath::generate_secret(params.algorithm);
        self.pending(&user, &secret, params, false)
    }

    pub(super) async fn portal_import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        const EVENT: &str = "portal.oath_import";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let allowed = if user.default_method.is_none() {
            settings.portal.enrollment_prompt_oath_token
        } else {
            settings.portal.allow_third_party_oath
        };
        if !allowed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("third-party OATH tokens are not allowed".into()),
                )
                .await;
        }
        let parsed = oath::parse_base32_secret(&import.secret_base32).and_then(|secret| {
            let params = OathParams {
                kind: import.kind,
                digits: import.digits.unwrap_or(6),
                ..OathParams::default()
            };
            oath::validate_params(&params).map(|_| (secret, params))
        });
        match parsed {
            Ok((secret, params)) => self.pending(&user, &secret, params, true),
            Err(e) => self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
    }

    pub(super) async fn portal_confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        const EVENT: &str = "portal.oath_confirm";
        let settings = self.settings_now().await?;
        self.rate_limit(ctx)?;
        let user = self.user(username).await?;
        let mut s = match self.open_oath(&pending, &user, false) {
            Ok(s) => s,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let code = self
            .checked(
                ctx,
                EVENT,
                Some(&user.username),
                oath::normalize_code(&code, s.params.digits),
            )
            .await?;
        let secret = oath::parse_base32_secret(&s.secret)?;
        let matched = match s.params.kind {
            OathKind::Totp => oath::verify_totp(
                &secret,
                &s.params,
                &code,
                self.clock.now().unix_timestamp(),
                settings.oath.time_step_window,
                s.counter,
            ),
            OathKind::Hotp => oath::verify_hotp(
                &secret,
                &s.params,
                &code,
                s.counter,
                settings.oath.hotp_look_ahead,
            )
            .map(|c| c + 1),
        };
        let Some(next) = matched else {
            self.throttle.fail(ctx.source_ip, self.clock.now());
            return self
                .refuse(ctx, EVENT, Some(&user.username), Error::invalid("code", "the code does not match; check that your device's clock is right and try the next code"))
                .await;
        };
        s.counter = next;
        s.confirmed = true;
        s.issued_at = self.clock.now().unix_timestamp();
        self.audit_result(
            ctx,
            EVENT,
            &user.username,
            ResultCode::SuccessOathConfirmed,
            None,
        )
        .await?;
        self.seal_oath(&s)
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
            return Err(Error::invalid(
                "pin",
                format!("choose a PIN you have not used for your last {keep} PINs"),
            ));
        }
        self.hasher.hash(pin_code.to_string()).await
    }

    pub(super) async fn portal_finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        const EVENT: &str = "portal.enroll";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let result: Result<Enrollment> = async {
            if !settings.portal.allow_enrollment {
                return Err(Error::Forbidden("enrollment is not allowed".into()));
            }
            let options = self.portal_enrollment_options(ctx, username).await?;
            if !options.methods.contains(&finish.method.method)
                || options.mode_for(finish.method.method) != finish.method.mode
            {
                return Err(Error::invalid("method", "this method cannot be chosen"));
            }
            let token = match finish.method.method {
                MethodKind::OathToken => Some(self.confirmed_token(
                    &user,
                    finish.oath.as_deref().ok_or_else(|| {
                        Error::invalid("code", "confirm your token with a code first")
                    })?,
                    "",
                )?),
                _ => None,
            };
            let pin_hash = if finish.method.mode.needs_pin() {
                let p = finish
                    .pin
                    .as_deref()
                    .ok_or_else(|| Error::invalid("pin", "create a PIN"))?;
                Some(self.checked_pin_hash(&user, p, &settings).await?)
            } else {
                None
            };
            let answers = if options.questions_required > 0 {
                self.hashed_answers(&finish.answers, &options.questions)
                    .await?
            } else {
                Vec::new()
            };
            Ok(Enrollment {
                method: finish.method,
                token,
                pin_hash,
                answers,
                expected_version: Some(user.version),
            })
        }
        .await;
        let enrollment = match result {
            Ok(e) => e,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessEnrolled,
        );
        ev.method = Some(enrollment.method.to_string());
        match self
            .store
            .complete_enrollment(user.id, &enrollment, &ev)
            .await
        {
            Ok(u) => Ok(u),
            Err(e) => self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
    }

    pub(super) async fn portal_account(&self, _ctx: &Ctx, username: &str) -> Result<Account> {
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let tokens = self.store.oath_tokens(user.id).await?;
        let pin = self.store.pin(user.id).await?;
        let now = self.clock.now();
        let choices = self.question_choices(&user).await?;
        let p = &settings.portal;
        let needs_pin = user
            .default_method
            .map(|m| m.mode.needs_pin())
            .unwrap_or(false);
        Ok(Account {
            has_pin: pin.is_some(),
            pin_expired: pin
                .as_ref()
                .map(|p| pin::pin_expired(p.set_at, now, settings.pin.expiry_days))
                .unwrap_or(false),
            pin_rules: settings.pin.clone(),
            answers_set: self.store.answers(user.id).await?.len(),
            bypass_until: self.store.bypass_until(user.id).await?.filter(|t| *t > now),
            allow: AccountAllows {
                select_method: p.allow_select_method,
                select_language: p.allow_select_language,
                bypass: p.allow_bypass,
                bypass_prompt_seconds: p.bypass_prompt_seconds,
                bypass_default_seconds: p.bypass_default_seconds,
                bypass_max_seconds: p.bypass_max_seconds,
                third_party_oath: p.allow_third_party_oath,
                security_questions: Self::questions_needed(&settings, &choices) > 0,
                change_pin: needs_pin || pin.is_some(),
            },
            selectable_methods: p
                .selectable_methods
                .iter()
                .copied()
                .filter(|m| available(*m))
                .collect(),
            questions_required: Self::questions_needed(&settings, &choices),
            questions: choices,
            tokens,
            user,
        })
    }

    pub(super) async fn portal_change_pin(
        &self,
        ctx: &Ctx,
        username: &str,
        new_pin: String,
    ) -> Result<()> {
        const EVENT: &str = "portal.pin";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let allowed = user
            .default_method
            .map(|m| m.mode.needs_pin())
            .unwrap_or(false)
            || self.store.pin(user.id).await?.is_some();
        if !allowed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("your method does not use a PIN".into()),
                )
                .await;
        }
        let hash = match self.checked_pin_hash(&user, &new_pin, &settings).await {
            Ok(h) => h,
            Err(e) => {
                let mut ev =
                    self.event(ctx, EVENT, Some(&user.username), ResultCode::FailedPinRule);
                ev.detail = Some(e.to_string());
                self.store.append_audit(&ev).await?;
                return Err(e);
            }
        };
        let keep = settings.pin.history.saturating_sub(1);
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessPinChanged,
        );
        self.store
            .set_pin(user.id, &hash, self.clock.now(), keep, &ev)
            .await
    }

    pub(super) async fn portal_change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        const EVENT: &str = "portal.answers";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let choices = self.question_choices(&user).await?;
        if Self::questions_needed(&settings, &choices) == 0 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("security questions are not in use".into()),
                )
                .await;
        }
        let hashed = match self.hashed_answers(&answers, &choices).await {
            Ok(h) => h,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAnswersChanged,
        );
        self.store.set_answers(user.id, &hashed, &ev).await
    }

    pub(super) async fn portal_add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        const EVENT: &str = "portal.token_add";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let token = self
            .checked(
                ctx,
                EVENT,
                Some(&user.username),
                self.confirmed_token(&user, &confirmed, &label),
            )
            .await?;
        let imported = self
            .open_oath(&confirmed, &user, true)
            .map(|s| s.imported)
            .unwrap_or(true);
        if imported && !settings.portal.allow_third_party_oath {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("third-party OATH tokens are not allowed".into()),
                )
                .await;
        }
        if self.store.oath_tokens(user.id).await?.len() >= 10 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid("token", "at most 10 tokens per user"),
                )
                .await;
        }
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessTokenAdded,
        );
        self.store.add_oath_token(user.id, &token, &ev).await
    }

    pub(super) async fn portal_delete_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
    ) -> Result<()> {
        const EVENT: &str = "portal.token_delete";
        let user = self.user(username).await?;
        let tokens = self.store.oath_tokens(user.id).await?;
        if !tokens.iter().any(|t| t.id == token_id) {
            return self
                .refuse(ctx, EVENT, Some(&user.username), Error::NotFound("token"))
                .await;
        }
        if tokens.len() == 1 && user.default_method.map(|m| m.method) == Some(MethodKind::OathToken)
        {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Conflict(
                        "this is your only token and your method needs it; add another token first"
                            .into(),
                    ),
                )
                .await;
        }
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessTokenDeleted,
        );
        if self.store.delete_oath_token(user.id, token_id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, Some(&user.username), Error::NotFound("token"))
                .await
        }
    }

    pub(super) async fn portal_change_language(
        &self,
        ctx: &Ctx,
        username: &str,
        language: String,
    ) -> Result<User> {
        const EVENT: &str = "portal.language";
        let settings = self.settings_now().await?;
        let mut user = self.user(username).await?;
        if !settings.portal.allow_select_language {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("changing the language is not allowed".into()),
                )
                .await;
        }
        match validate::language(&language) {
            Ok(l) => user.language = l,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
        self.save(
            ctx,
            EVENT,
            user,
            ResultCode::SuccessLanguageChanged,
            Some(language),
        )
        .await
    }

    pub(super) async fn portal_change_method(
        &self,
        ctx: &Ctx,
        username: &str,
        method: MethodKind,
    ) -> Result<User> {
        const EVENT: &str = "portal.method";
        let settings = self.settings_now().await?;
        let mut user = self.user(username).await?;
        let refusal = if !settings.portal.allow_select_method {
            Some(Error::Forbidden(
                "changing the method is not allowed".into(),
            ))
        } else if !settings.portal.selectable_methods.contains(&method) || !available(method) {
            Some(Error::invalid("method", "this method cannot be chosen"))
        } else if method == MethodKind::OathToken
            && self.store.oath_tokens(user.id).await?.is_empty()
        {
            Some(Error::invalid("method", "add an OATH token first"))
        } else {
            None
        };
        if let Some(e) = refusal {
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        user.default_method = Some(DefaultMethod {
            method,
            mode: method.modes()[0],
        });
        self.save(
            ctx,
            EVENT,
            user,
            ResultCode::SuccessMethodChanged,
            Some(method.as_str().into()),
        )
        .await
    }

    pub(super) async fn portal_start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        const EVENT: &str = "portal.bypass";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let p = &settings.portal;
        let checked = if !p.allow_bypass {
            Err(Error::Forbidden("one-time bypass is not allowed".into()))
        } else {
            match seconds {
                None => Ok(p.bypass_default_seconds),
                Some(_) if !p.bypass_prompt_seconds => Err(Error::Forbidden(
                    "choosing the bypass seconds is not allowed".into(),
                )),
                Some(s) if s == 0 || s > p.bypass_max_seconds => Err(Error::invalid(
                    "seconds",
                    format!("choose between 1 and {} seconds", p.bypass_max_seconds),
                )),
                Some(s) => Ok(s),
            }
        };
        let secs = self
            .checked(ctx, EVENT, Some(&user.username), checked)
            .await?;
        let until = self.clock.now() + Duration::seconds(i64::from(secs));
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessBypassStarted,
        );
        ev.detail = Some(format!("{secs} seconds"));
        self.store.set_bypass(user.id, Some(until), &ev).await?;
        Ok(until)
    }
}

//! "Call Me Now to Authenticate" / "Text Me Now to Authenticate": the
//! enrollment wizard proves the phone a user enrolls — and the PIN they
//! choose with it, which the call or the reply asks for — before anything
//! is saved. The proof is a challenge of purpose `enroll` to the typed
//! number; finishing the wizard takes the accepted challenge and saves its
//! number (and the PIN it carried) with the method, in one transaction.

use std::time::Duration;

use crate::challenge::{Authentication, Challenge, ChallengeState};
use crate::error::{Error, Result};
use crate::factors::EnrolledPhones;
use crate::methods;
use crate::portal::{EnrollPhone, FinishEnrollment};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{DefaultMethod, MethodKind, User};
use crate::validate;

use crate::engine::telephony::{PhoneProof, Route};
use crate::engine::Engine;

const EVENT: &str = "portal.enroll_phone";

/// An accepted proof is good for finishing the wizard this long.
const PROOF_MINUTES: i64 = 15;

impl Engine {
    pub(in crate::engine) async fn portal_enrollment_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: EnrollPhone,
    ) -> Result<Authentication> {
        let settings = self.settings_now().await?;
        self.rate_limit(ctx)?;
        let user = self.user(username).await?;
        if phone.method == MethodKind::MobileApp {
            return self
                .portal_enrollment_app(ctx, &user, phone, &settings)
                .await;
        }
        let checked: Result<(DefaultMethod, Route, Option<String>)> = async {
            if !settings.portal.allow_enrollment {
                return Err(Error::Forbidden("enrollment is not allowed".into()));
            }
            let options = self.portal_enrollment_options(ctx, username).await?;
            let module = methods::method(phone.method)
                .filter(|m| m.enrollment() == methods::Enrollment::Phone)
                .filter(|_| options.methods.contains(&phone.method))
                .ok_or_else(|| Error::invalid("method", "this method cannot be chosen"))?;
            let method = DefaultMethod {
                method: module.kind(),
                mode: options.mode_for(module.kind()),
            };
            let country = Some(settings.phone.default_country.as_str()).filter(|c| !c.is_empty());
            let to = validate::phone("phone", &phone.phone, country)?
                .ok_or_else(|| Error::invalid("phone", "type your phone number"))?;
            let extension = if method.method == MethodKind::PhoneCall {
                validate::extension(&phone.extension)?
            } else {
                None
            };
            let pin_hash = if method.mode.needs_pin() {
                let p = phone
                    .pin
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| crate::pin::PinProblem::Empty.error())?;
                Some(self.checked_pin_hash(&user, p, &settings).await?)
            } else {
                None
            };
            if !self.can_deliver(method.method, &settings) {
                return Err(Error::Unavailable(
                    "no telephony provider is configured".into(),
                ));
            }
            Ok((method, Route { to, extension }, pin_hash))
        }
        .await;
        let (method, route, pin_hash) = match checked {
            Ok(c) => c,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let proof = PhoneProof {
            method,
            route,
            enrolling: true,
            pin_hash,
        };
        self.start_phone_challenge(ctx, &user, proof, EVENT, "", &settings)
            .await
    }

    pub(in crate::engine) async fn portal_enrollment_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        id: &str,
        code: Option<String>,
        wait: Option<Duration>,
    ) -> Result<Authentication> {
        let user = self.user(username).await?;
        let c = self.enrollment_challenge(ctx, &user, id).await?;
        self.follow_or_answer(ctx, c, code, wait).await
    }

    /// The wizard's own enrollment challenge `id` for `user`.
    pub(in crate::engine) async fn enrollment_challenge(
        &self,
        ctx: &Ctx,
        user: &User,
        id: &str,
    ) -> Result<Challenge> {
        let c = self.own_challenge(ctx, EVENT, id).await?;
        if c.user_id != user.id || !c.enrolling {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::NotFound("challenge"),
                )
                .await;
        }
        Ok(c)
    }

    /// "Authenticate Me Now": asks the devices the user activated in the
    /// wizard to approve (with the PIN chosen there, in PIN mode). Nothing
    /// is saved; `finish` takes the accepted challenge.
    async fn portal_enrollment_app(
        &self,
        ctx: &Ctx,
        user: &User,
        ask: EnrollPhone,
        settings: &Settings,
    ) -> Result<Authentication> {
        let checked: Result<(DefaultMethod, Option<String>)> = async {
            if !settings.portal.allow_enrollment {
                return Err(Error::Forbidden("enrollment is not allowed".into()));
            }
            let options = self.portal_enrollment_options(ctx, &user.username).await?;
            if !options.methods.contains(&MethodKind::MobileApp)
                || self
                    .portal_method(MethodKind::MobileApp, settings)
                    .is_none()
            {
                return Err(Error::invalid("method", "this method cannot be chosen"));
            }
            let method = DefaultMethod {
                method: MethodKind::MobileApp,
                mode: options.mode_for(MethodKind::MobileApp),
            };
            let pin_hash = if method.mode.needs_pin() {
                let p = ask
                    .pin
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| crate::pin::PinProblem::Empty.error())?;
                Some(self.checked_pin_hash(user, p, settings).await?)
            } else {
                None
            };
            Ok((method, pin_hash))
        }
        .await;
        let (method, pin_hash) = match checked {
            Ok(c) => c,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        self.start_app_challenge(
            ctx,
            user,
            crate::engine::mobile_app::AppAsk {
                method,
                enrolling: true,
                pin_hash,
            },
            EVENT,
            settings,
        )
        .await
    }

    /// The wizard's proof `finish` names: the user's own enrollment
    /// challenge, accepted for the method being saved, less than
    /// `PROOF_MINUTES` ago; anything else is `not_proved`.
    async fn accepted_proof(
        &self,
        ctx: &Ctx,
        user: &User,
        finish: &FinishEnrollment,
        not_proved: impl Fn() -> Error,
    ) -> Result<Challenge> {
        let id = finish.phone_challenge.as_deref().ok_or_else(&not_proved)?;
        let c = self.enrollment_challenge(ctx, user, id).await?;
        let fresh = c
            .completed_at
            .is_some_and(|at| self.clock.now() - at < time::Duration::minutes(PROOF_MINUTES));
        if c.state != ChallengeState::Accepted || c.method != finish.method || !fresh {
            return Err(not_proved());
        }
        Ok(c)
    }

    /// The PIN hash (chosen in the wizard) an accepted "Authenticate Me
    /// Now" carried, for `finish`.
    pub(in crate::engine) async fn proved_app(
        &self,
        ctx: &Ctx,
        user: &User,
        finish: &FinishEnrollment,
    ) -> Result<Option<String>> {
        let not_proved = || {
            Error::invalid(
                "app",
                "approve a sign-in in the app with Authenticate Me Now first",
            )
        };
        let c = self.accepted_proof(ctx, user, finish, not_proved).await?;
        match &c.sealed_pin {
            Some(_) => self.challenge_pin_hash(user, &c).await,
            None => Ok(None),
        }
    }

    /// The phones (and the PIN hash chosen with them) an accepted
    /// enrollment challenge proved, for `finish`.
    pub(in crate::engine) async fn proved_phone(
        &self,
        ctx: &Ctx,
        user: &User,
        finish: &FinishEnrollment,
        settings: &Settings,
    ) -> Result<(EnrolledPhones, Option<String>)> {
        let not_proved = || Error::invalid("phone", "prove the phone with a call or text first");
        let c = self.accepted_proof(ctx, user, finish, not_proved).await?;
        let number = c.destination.clone().ok_or_else(not_proved)?;
        let country = Some(settings.phone.default_country.as_str()).filter(|c| !c.is_empty());
        let backup = match finish.backup_phone.as_deref() {
            Some(b) if settings.portal.enrollment_prompt_backup_phone => {
                validate::phone("backup_phone", b, country)?
            }
            _ => None,
        };
        let pin_hash = match &c.sealed_pin {
            Some(_) => self.challenge_pin_hash(user, &c).await?,
            None => None,
        };
        Ok((
            EnrolledPhones {
                method: c.method.method,
                number,
                extension: c.extension.clone(),
                backup,
            },
            pin_hash,
        ))
    }
}

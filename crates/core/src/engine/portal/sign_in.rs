//! Sign-in: the primary check, then trusted address, bypass, enrollment or
//! the second step with its fallbacks.

use rand::seq::SliceRandom;

use crate::audit::ResultCode;
use crate::error::Result;
use crate::methods::{self, Holdings};
use crate::portal::{SecondStep, SignIn, Skip};
use crate::service::Ctx;
use crate::user::UserStatus;

use crate::engine::Engine;

impl Engine {
    pub(in crate::engine) async fn portal_begin_sign_in(
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
        // Bounded per address, per user and factor, inside the check.
        let (user, matched) = self.primary_check(ctx, username, password).await?;
        let Some(user) = user.filter(|_| matched) else {
            return Ok(SignIn::Rejected);
        };
        if user.status(self.clock.now()) != UserStatus::Enabled {
            return Ok(SignIn::Blocked { user });
        }

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
        let holdings = Holdings::of(&user, tokens.len())
            .with_devices(self.store.mobile_devices(user.id).await?.len());
        // A phone PIN mode without a PIN (an administrator chose it in
        // advance): the call could never pass, so the wizard sets up the
        // phone and the PIN together.
        let phone_pin_missing = match user.default_method {
            Some(m)
                if m.mode.needs_pin()
                    && methods::method(m.method).is_some_and(|x| !x.code_held_by_user()) =>
            {
                self.store.pin(user.id).await?.is_none()
            }
            _ => false,
        };
        // Not enrolled: no method yet, or a method configured in advance by
        // an administrator without what it needs (an OATH token, a phone,
        // a phone's PIN).
        let method = match user.default_method {
            Some(m)
                if !(phone_pin_missing && self.portal_method(m.method, &settings).is_some())
                    && self
                        .portal_method(m.method, &settings)
                        .is_none_or(|x| x.ready(&holdings)) =>
            {
                m
            }
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
        // A typed OATH code, or a call or text when a provider is set up.
        let method_available = methods::method(method.method).is_some_and(|x| {
            (x.code_held_by_user() || self.can_deliver(x.kind(), &settings)) && x.ready(&holdings)
        });
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
        // An administrator may have moved an enrolled user to a PIN mode:
        // without a PIN they could never pass, so the code alone verifies
        // and the portal then has them choose one.
        let choose_pin = method_available && self.pin_not_chosen(&user).await?;
        let fallback = methods::fallback();
        let fallback_oath = settings.portal.oath_fallback
            && method.method != fallback.kind()
            && fallback.ready(&holdings);
        let backup_phone = user.backup_phone.is_some();
        Ok(SignIn::SecondStep {
            user,
            step: SecondStep {
                method,
                method_available,
                fallback_questions,
                fallback_oath,
                choose_pin,
                backup_phone,
            },
        })
    }
}

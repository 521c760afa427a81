//! `validate`: one call for an application (VPN, IdP) that has a username
//! and the passcode the user typed. The hot path of the SDK.

use serde::{Deserialize, Serialize};

use crate::audit::ResultCode;
use crate::error::Result;
use crate::factors::Factor;
use crate::methods;
use crate::service::Ctx;
use crate::user::{User, UserStatus};
use time::OffsetDateTime;

use super::oath_check::PasscodeCheck;
use super::Engine;

/// The stable reason codes of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidateReason {
    Accepted,
    WrongPasscode,
    ReplayedPasscode,
    WrongPin,
    PinNotSet,
    NoToken,
    NotEnrolled,
    MethodNotSupported,
    UserDisabled,
    UserLocked,
    UnknownUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub accepted: bool,
    pub reason: ValidateReason,
}

impl Validation {
    fn reject(reason: ValidateReason) -> Self {
        Validation {
            accepted: false,
            reason,
        }
    }
}

/// Why `user` cannot be asked for a passcode at all (`None`: they can):
/// disabled or locked, not enrolled, or a method other than OATH. Shared by
/// `validate` and the start of a challenge, so both refuse alike.
pub(super) fn refusal(user: &User, now: OffsetDateTime) -> Option<(ValidateReason, ResultCode)> {
    status_refusal(user, now).or_else(|| match user.default_method {
        // Only a code the user already holds (an OATH token) can be
        // validated in one call; a sent code or a call needs a challenge.
        Some(m) if !methods::method(m.method).is_some_and(methods::Method::code_held_by_user) => {
            Some((
                ValidateReason::MethodNotSupported,
                ResultCode::FailedMethodNotSupported,
            ))
        }
        _ => None,
    })
}

/// Why `user` cannot be verified with any method now: disabled, locked or
/// blocked, or not enrolled. A challenge starts for whom this lets through
/// (and whose method is ready).
pub(super) fn status_refusal(
    user: &User,
    now: OffsetDateTime,
) -> Option<(ValidateReason, ResultCode)> {
    match user.status(now) {
        UserStatus::Enabled => match user.default_method {
            None => Some((ValidateReason::NotEnrolled, ResultCode::FailedNotEnrolled)),
            Some(_) => None,
        },
        UserStatus::Disabled => {
            Some((ValidateReason::UserDisabled, ResultCode::FailedUserDisabled))
        }
        _ => Some((ValidateReason::UserLocked, ResultCode::FailedUserLocked)),
    }
}

impl Engine {
    pub(super) async fn validate_passcode(
        &self,
        ctx: &Ctx,
        username: &str,
        passcode: &str,
    ) -> Result<Validation> {
        const EVENT: &str = "sdk.validate";
        let settings = self.settings_shared().await?;
        self.rate_limit(ctx)?;
        // The user, the code factor's record and the tokens in one read.
        let Some(view) = self.store.passcode_view(username).await? else {
            self.source_throttle
                .fail(ctx.guess_source, self.clock.now());
            self.audit_result(
                ctx,
                EVENT,
                username.trim(),
                ResultCode::FailedUserNotFound,
                None,
            )
            .await?;
            return Ok(Validation::reject(ValidateReason::UnknownUser));
        };
        let user = view.user;
        if let Some((reason, code)) = refusal(&user, self.clock.now()) {
            self.audit_result(ctx, EVENT, &user.username, code, None)
                .await?;
            return Ok(Validation::reject(reason));
        }
        self.gate_on(
            ctx,
            EVENT,
            &user,
            Factor::Code,
            &settings,
            &view.code_failures,
        )
        .await?;
        // Written (and counted) only if the code is right.
        let mut success = self.draft_event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessPasscode,
        );
        success.method = user.default_method.map(|m| m.to_string());
        let check = self
            .check_passcode_with(&user, &view.tokens, passcode, &settings, &success)
            .await?;
        if check == PasscodeCheck::Accepted {
            self.count(ctx, &success);
            return Ok(Validation {
                accepted: true,
                reason: ValidateReason::Accepted,
            });
        }
        if let PasscodeCheck::Closed(until) = check {
            return self
                .closed(ctx, EVENT, &user.username, Factor::Code, until)
                .await;
        }
        let ev = self.event_with_method(
            ctx,
            EVENT,
            Some(&user.username),
            success.method,
            check.failure_code(),
        );
        self.store.append_audit(&ev).await?;
        let locked = check.is_guess()
            && self
                .count_failure(ctx, EVENT, &user, Factor::Code, &settings)
                .await?;
        let reason = match check {
            _ if locked => ValidateReason::UserLocked,
            PasscodeCheck::ReplayedPasscode => ValidateReason::ReplayedPasscode,
            PasscodeCheck::WrongPin => ValidateReason::WrongPin,
            PasscodeCheck::PinNotSet => ValidateReason::PinNotSet,
            PasscodeCheck::NoToken => ValidateReason::NoToken,
            _ => ValidateReason::WrongPasscode,
        };
        Ok(Validation::reject(reason))
    }
}

//! The second step by phone in the portal: "Call me" / "Text me" start a
//! challenge for the user's own phone method (primary or backup phone), and
//! the portal asks where it stands — answered on the phone, or with the
//! code of a one-way text typed into the page — until it is decided. The
//! challenge is the SDK's (`engine::challenges`): started by `user:NAME`,
//! so only that user's portal session can follow it.

use std::time::Duration;

use crate::audit::ResultCode;
use crate::challenge::{Authentication, ChallengeReason, ChallengeState, PhoneChoice, Prompt};
use crate::error::{Error, Result};
use crate::methods;
use crate::portal::Verified;
use crate::service::Ctx;
use crate::user::MethodKind;

use crate::engine::Engine;

const EVENT: &str = "portal.verify";

/// The longest a portal page waits for a call's decision (a portal on a
/// separate server gives up on the MFA server after 10 seconds).
pub const PORTAL_WAIT: Duration = Duration::from_secs(8);

impl Engine {
    pub(in crate::engine) async fn portal_call_or_text(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        let user = self.user(username).await?;
        let by_phone = user
            .default_method
            .and_then(|m| methods::method(m.method))
            .is_some_and(|m| !m.code_held_by_user());
        if !by_phone {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("this way of verifying is not allowed".into()),
                )
                .await;
        }
        self.start_challenge(ctx, &user.username, phone).await
    }

    pub(in crate::engine) async fn portal_verify_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        id: &str,
        code: Option<String>,
        wait: Option<Duration>,
    ) -> Result<Verified> {
        let user = self.user(username).await?;
        let c = self.own_challenge(ctx, EVENT, id).await?;
        // A proof of a number for the wizard or the account page never
        // signs anyone in.
        if c.user_id != user.id || c.enrolling {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::NotFound("challenge"),
                )
                .await;
        }
        let a = self.follow_or_answer(ctx, c, code, wait).await?;
        match a.state {
            ChallengeState::Accepted => {
                let result = match a.method.map(|m| m.method) {
                    Some(MethodKind::PhoneCall) => ResultCode::SuccessPhoneCall,
                    Some(MethodKind::MobileApp) => ResultCode::SuccessMobileApp,
                    _ => ResultCode::SuccessSmsCode,
                };
                self.audit_result(ctx, EVENT, &user.username, result, None)
                    .await?;
                let choose_pin = self.pin_not_chosen(&user).await?;
                Ok(Verified::Accepted {
                    user: Box::new(user),
                    session_minutes: None,
                    choose_pin,
                })
            }
            ChallengeState::Pending => Ok(Verified::Waiting {
                phone: a.phone,
                prompt: a.prompt.unwrap_or(Prompt::Passcode),
                reason: a.reason,
                number: a.number,
            }),
            ChallengeState::Rejected | ChallengeState::Expired => Ok(Verified::Rejected {
                locked: a.reason == Some(ChallengeReason::UserLocked),
                attempts_left: None,
                paused_seconds: None,
                reason: a.reason.or(Some(ChallengeReason::Expired)),
            }),
        }
    }
}

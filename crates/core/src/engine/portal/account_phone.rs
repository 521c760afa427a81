//! Changing a number on the account page: the new number is proved with a
//! call (press `#`) or a text (type its code) before it replaces the old
//! one — the same enrollment challenge as the wizard's "Call Me Now", with
//! no PIN. A text proves a mobile number, or any number of a user who
//! verifies by text; a call proves the others.

use std::time::Duration;

use crate::audit::ResultCode;
use crate::challenge::{Authentication, ChallengeState};
use crate::error::{Error, Result};
use crate::portal::{ChangePhone, PhoneSlot};
use crate::service::Ctx;
use crate::user::{DefaultMethod, MethodKind, Mode};
use crate::validate;

use crate::engine::telephony::{PhoneProof, Route};
use crate::engine::Engine;

const EVENT: &str = "portal.change_phone";

impl Engine {
    pub(in crate::engine) async fn portal_change_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        change: ChangePhone,
    ) -> Result<Authentication> {
        let settings = self.settings_now().await?;
        self.rate_limit(ctx)?;
        let user = self.user(username).await?;
        let checked: Result<(DefaultMethod, Route)> = (|| {
            if !self.can_deliver(MethodKind::PhoneCall, &settings)
                && !self.can_deliver(MethodKind::TextMessage, &settings)
            {
                return Err(Error::Forbidden(
                    "numbers cannot be verified here; ask your administrator".into(),
                ));
            }
            let field = match change.slot {
                PhoneSlot::Phone => "phone",
                PhoneSlot::Backup => "backup_phone",
                PhoneSlot::Mobile => "mobile_phone",
            };
            let country = Some(settings.phone.default_country.as_str()).filter(|c| !c.is_empty());
            let to = validate::phone(field, &change.phone, country)?
                .ok_or_else(|| Error::invalid(field, "type the phone number"))?;
            let extension = if change.slot == PhoneSlot::Phone {
                validate::extension(&change.extension)?
            } else {
                None
            };
            let texts = change.slot == PhoneSlot::Mobile
                || !self.can_deliver(MethodKind::PhoneCall, &settings)
                || user
                    .default_method
                    .is_some_and(|m| m.method == MethodKind::TextMessage);
            let method = if texts {
                DefaultMethod {
                    method: MethodKind::TextMessage,
                    mode: Mode::SmsOneWayOtp,
                }
            } else {
                DefaultMethod {
                    method: MethodKind::PhoneCall,
                    mode: Mode::Standard,
                }
            };
            Ok((method, Route { to, extension }))
        })();
        let (method, route) = match checked {
            Ok(c) => c,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let proof = PhoneProof {
            method,
            route,
            enrolling: true,
            pin_hash: None,
        };
        let detail = format!("proving a new {} number, ", change.slot.as_str());
        self.start_phone_challenge(ctx, &user, proof, EVENT, &detail, &settings)
            .await
    }

    pub(in crate::engine) async fn portal_change_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        id: &str,
        slot: PhoneSlot,
        code: Option<String>,
        wait: Option<Duration>,
    ) -> Result<Authentication> {
        let user = self.user(username).await?;
        let c = self.enrollment_challenge(ctx, &user, id).await?;
        let a = self.follow_or_answer(ctx, c.clone(), code, wait).await?;
        if a.state != ChallengeState::Accepted {
            return Ok(a);
        }
        // Proved: save the number where the user asked (once; a repeated
        // question finds it saved).
        let number = c.destination.clone().unwrap_or_default();
        let current = match slot {
            PhoneSlot::Phone => &user.phone,
            PhoneSlot::Backup => &user.backup_phone,
            PhoneSlot::Mobile => &user.mobile_phone,
        };
        if current.as_deref() == Some(number.as_str())
            && (slot != PhoneSlot::Phone || user.phone_extension == c.extension)
        {
            return Ok(a);
        }
        // Checked when the proof started (E.164, the extension's digits).
        let mut changed = user.clone();
        match slot {
            PhoneSlot::Phone => {
                changed.phone = Some(number);
                changed.phone_extension.clone_from(&c.extension);
            }
            PhoneSlot::Backup => changed.backup_phone = Some(number),
            PhoneSlot::Mobile => changed.mobile_phone = Some(number),
        }
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessUserUpdated,
        );
        ev.detail = Some(format!(
            "{} number changed to {}",
            slot.as_str(),
            crate::engine::telephony::masked(c.destination.as_deref().unwrap_or_default())
        ));
        self.store.update_user(&changed, &ev).await?;
        Ok(a)
    }
}

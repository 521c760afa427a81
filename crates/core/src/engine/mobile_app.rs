//! Starting a mobile-app challenge: the request every activated device of
//! the user is asked, with the number the application shows. The devices
//! learn of it at once: a device long-polling on any node is woken through
//! `Wakeups`, and devices with a push target get a wake-up (best effort:
//! it carries nothing, and the long-poll finds the request without it).

use rand::Rng;
use std::sync::Arc;

use crate::audit::ResultCode;
use crate::challenge::{challenge_pin_label, Authentication, ChallengeReason, NewChallenge};
use crate::error::Result;
use crate::mobile::MobileDevice;
use crate::ports::{Delivery, Outgoing};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{DefaultMethod, User};

use super::Engine;

/// The number to show: two digits, never starting with 0 (so "07" and "7"
/// cannot be confused).
fn new_number() -> u8 {
    rand::rngs::OsRng.gen_range(10..=99)
}

/// What a mobile-app challenge asks: a sign-in with the user's method, or
/// the wizard's proof (`enrolling`) with the PIN chosen there.
pub(super) struct AppAsk {
    pub method: DefaultMethod,
    pub enrolling: bool,
    /// argon2id hash of the PIN chosen in the wizard.
    pub pin_hash: Option<String>,
}

impl Engine {
    /// The same engine waking devices that asked for it (ntfy, webhook).
    pub fn with_push(mut self, push: Arc<dyn Delivery>) -> Self {
        self.push = Some(push);
        self
    }

    /// Starts a request to `user`'s devices for `method` (mobile app),
    /// audited as `event`: a sign-in, or the wizard's proof (`enrolling`,
    /// with `pin_hash`, the PIN chosen there).
    pub(super) async fn start_app_challenge(
        &self,
        ctx: &Ctx,
        user: &User,
        ask: AppAsk,
        event: &str,
        settings: &Settings,
    ) -> Result<Authentication> {
        let AppAsk {
            method,
            enrolling,
            pin_hash,
        } = ask;
        let devices = self.store.mobile_devices(user.id).await?;
        if devices.is_empty() {
            let ev = self.event_with_method(
                ctx,
                event,
                Some(&user.username),
                Some(method.to_string()),
                ResultCode::FailedNoDevice,
            );
            self.store.append_audit(&ev).await?;
            return Ok(Authentication::refused(ChallengeReason::NoDevice));
        }
        let now = self.clock.now();
        // Whole seconds, as stored: what the start says is what every node sees.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let id = super::challenges::new_challenge_id();
        let sealed_pin = pin_hash
            .map(|h| self.sealing.seal(h.as_bytes(), &challenge_pin_label(&id)))
            .transpose()?;
        let new = NewChallenge {
            id,
            user_id: user.id,
            method,
            created_at: now,
            expires_at: now
                + time::Duration::seconds(i64::from(settings.mobile_app.request_lifetime_seconds)),
            created_by: ctx.actor.to_string(),
            destination: None,
            sealed_code: None,
            enrolling,
            extension: None,
            sealed_pin,
            number: Some(new_number()),
            source_address: ctx.guess_source.map(|ip| ip.to_string()),
        };
        let mut ev = self.event_with_method(
            ctx,
            event,
            Some(&user.username),
            Some(method.to_string()),
            ResultCode::SuccessDeliverySent,
        );
        ev.detail = Some(format!(
            "challenge {} to {} device(s)",
            &new.id[..8],
            devices.len()
        ));
        self.store.create_challenge(&new, &ev).await?;
        self.publish(&super::waiting::user_topic(user.id)).await;
        self.push_wakeups(&devices);
        Ok(Authentication::of(&new.stored(user.username.clone())))
    }

    /// Sends the devices' wake-ups in the background: a slow push service
    /// must not hold up the sign-in, and a failed one changes nothing.
    fn push_wakeups(&self, devices: &[MobileDevice]) {
        let Some(push) = self.push.clone() else {
            return;
        };
        for d in devices {
            let Some(target) = d.push.clone() else {
                continue;
            };
            let push = push.clone();
            let message = Outgoing::PushWake {
                device_id: d.id.clone(),
                target,
            };
            tokio::spawn(async move {
                if let Err(e) = push.send(&message).await {
                    tracing::warn!(error = %e, "mobile-app wake-up not delivered");
                }
            });
        }
    }
}

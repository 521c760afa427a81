//! The mobile app on the portal: "Generate Activation Code" (in the wizard
//! and on the account page, while `portal.allow_mobile_app_activation`) and
//! removing a device from the account page.

use crate::error::{ConflictReason, Error, Result};
use crate::methods::{self, Holdings};
use crate::mobile::ActivationOffer;
use crate::service::Ctx;

use crate::engine::Engine;

impl Engine {
    pub(in crate::engine) async fn portal_activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<ActivationOffer> {
        const EVENT: &str = "portal.activation_code";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        if !settings.portal.allow_mobile_app_activation {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("activating the mobile app is not allowed".into()),
                )
                .await;
        }
        self.issue_activation_code(ctx, EVENT, &user, &settings)
            .await
    }

    pub(in crate::engine) async fn portal_remove_device(
        &self,
        ctx: &Ctx,
        username: &str,
        device_id: &str,
    ) -> Result<()> {
        const EVENT: &str = "portal.device_remove";
        let user = self.user(username).await?;
        let devices = self.store.mobile_devices(user.id).await?.len();
        let tokens = self.store.oath_tokens(user.id).await?.len();
        // Refused when the user's method stands on this device alone.
        let before = Holdings::of(&user, tokens).with_devices(devices);
        let after = Holdings::of(&user, tokens).with_devices(devices.saturating_sub(1));
        let needed = user
            .default_method
            .and_then(|m| methods::method(m.method))
            .is_some_and(|m| m.ready(&before) && !m.ready(&after));
        if needed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::conflict(
                        ConflictReason::LastFactor,
                        "this is your only device and your method needs it; activate another device first",
                    ),
                )
                .await;
        }
        self.remove_device(ctx, EVENT, &user, device_id).await
    }
}

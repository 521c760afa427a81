//! Mobile-app devices from the user's and the helpdesk's side: activation
//! codes (shown with the service URL and the activation URI for the QR
//! code), the list of devices and their removal.

use rand::Rng;

use crate::audit::ResultCode;
use crate::error::{ConflictReason, Error, Result};
use crate::mobile::{
    activation_code_hash, ActivationOffer, DeviceView, ACTIVATION_CODE_DIGITS,
    ACTIVATION_CODE_LIFETIME, SERVICE_PATH,
};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::User;

use super::Engine;

fn new_activation_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..ACTIVATION_CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// RFC 3986 unreserved characters stay, everything else is %XX: the
/// activation URI's query values (`twofold_proto::mobile::ActivationUri`
/// parses them; a test in `web` holds the two equal).
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `twofold://activate?url=…&code=…&fp=…`.
pub fn activation_uri(url: &str, code: &str, fingerprint: Option<&str>) -> String {
    let mut uri = format!(
        "twofold://activate?url={}&code={}",
        percent_encode(url),
        percent_encode(code)
    );
    if let Some(fp) = fingerprint {
        uri.push_str("&fp=");
        uri.push_str(fp);
    }
    uri
}

impl Engine {
    /// The same engine putting the fingerprint of the TLS certificate it
    /// serves into activation URIs (an app pins it).
    pub fn with_tls_fingerprint(mut self, sha256: [u8; 32]) -> Self {
        self.tls_fingerprint = Some(sha256);
        self
    }

    /// The Mobile App Web Service URL devices are given.
    pub(super) fn mobile_service_url(&self, settings: &Settings) -> String {
        format!("{}{SERVICE_PATH}", self.public_base(settings))
    }

    /// Issues an activation code for `user` (audited as `event`), refused
    /// when they already have as many devices as they may.
    pub(super) async fn issue_activation_code(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        settings: &Settings,
    ) -> Result<ActivationOffer> {
        let devices = self.store.mobile_devices(user.id).await?.len();
        let max = settings.portal.max_mobile_devices;
        if devices >= usize::try_from(max).unwrap_or(usize::MAX) {
            return self
                .refuse(
                    ctx,
                    event,
                    Some(&user.username),
                    Error::conflict(
                        ConflictReason::DeviceLimit,
                        format!("already {devices} device(s): at most {max} may be activated; remove one first"),
                    ),
                )
                .await;
        }
        let code = new_activation_code();
        let now = self.clock.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let expires_at = now + ACTIVATION_CODE_LIFETIME;
        let ev = self.event_with_method(
            ctx,
            event,
            Some(&user.username),
            Some("mobile_app".into()),
            ResultCode::SuccessActivationCode,
        );
        self.store
            .create_activation_code(user.id, &activation_code_hash(&code), expires_at, &ev)
            .await?;
        let url = self.mobile_service_url(settings);
        let fingerprint = self
            .tls_fingerprint
            .filter(|_| settings.mobile_app.pin_certificate)
            .map(hex::encode);
        Ok(ActivationOffer {
            uri: activation_uri(&url, &code, fingerprint.as_deref()),
            code,
            url,
            fingerprint,
            expires_at,
        })
    }

    pub(super) async fn device_views(&self, user: &User) -> Result<Vec<DeviceView>> {
        Ok(self
            .store
            .mobile_devices(user.id)
            .await?
            .iter()
            .map(DeviceView::from)
            .collect())
    }

    /// Removes one of `user`'s devices (and its OATH token), audited as
    /// `event`; `NotFound` when they have no such device.
    pub(super) async fn remove_device(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        device_id: &str,
    ) -> Result<()> {
        let mut ev = self.event(
            ctx,
            event,
            Some(&user.username),
            ResultCode::SuccessDeviceRemoved,
        );
        ev.detail = Some(format!(
            "device {}",
            device_id.get(..8).unwrap_or(device_id)
        ));
        let removed = crate::challenge::is_challenge_id(device_id)
            && self
                .store
                .remove_mobile_device(user.id, device_id, &ev)
                .await?;
        if removed {
            Ok(())
        } else {
            self.refuse(ctx, event, Some(&user.username), Error::NotFound("device"))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twelve_random_digits() {
        let a = new_activation_code();
        assert_eq!(a.len(), ACTIVATION_CODE_DIGITS);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(a, new_activation_code());
    }

    #[test]
    fn uris_carry_url_code_and_fingerprint() {
        assert_eq!(
            activation_uri("https://mfa.example.org:8443/mobile/v1", "123456789012", Some("ab")),
            "twofold://activate?url=https%3A%2F%2Fmfa.example.org%3A8443%2Fmobile%2Fv1&code=123456789012&fp=ab"
        );
    }
}

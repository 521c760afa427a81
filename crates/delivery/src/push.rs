//! Push wake-ups of mobile-app devices: a POST to the device's ntfy topic
//! (a short text) or to its webhook (`{"event":"request","device_id":…}`).
//! A wake-up carries nothing about the sign-in — no user, application or
//! number — so a push service learns only that the device has something to
//! fetch; the device fetches it from Twofold, signed. Optional: a device
//! without a push target finds its requests by long-poll.

use async_trait::async_trait;
use std::time::Duration;
use twofold_core::mobile::PushKind;
use twofold_core::ports::{Delivery, Outgoing};
use twofold_core::{Error, Result};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The ntfy message: what a locked phone's notification shows.
pub const NTFY_TEXT: &str = "Sign-in request waiting";

pub struct PushWake {
    http: reqwest::Client,
}

impl PushWake {
    pub fn new() -> Result<PushWake> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twofold/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(PushWake { http })
    }
}

#[async_trait]
impl Delivery for PushWake {
    async fn send(&self, message: &Outgoing) -> Result<String> {
        let Outgoing::PushWake { device_id, target } = message else {
            return Err(Error::Internal(
                "the push adapter only wakes devices".into(),
            ));
        };
        let request = match target.kind {
            PushKind::Ntfy => self
                .http
                .post(&target.url)
                .header("Title", "Twofold")
                .header("Tags", "lock")
                .body(NTFY_TEXT),
            PushKind::Webhook => self.http.post(&target.url).json(&serde_json::json!({
                "event": "request",
                "device_id": device_id,
            })),
        };
        let resp = request
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("push wake-up: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Unavailable(format!(
                "push wake-up answered HTTP {}",
                status.as_u16()
            )));
        }
        Ok(format!("push:{}", status.as_u16()))
    }

    fn name(&self) -> &'static str {
        "push"
    }
}

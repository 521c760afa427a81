//! The Mobile App Web Service (`/mobile/v1`): what an activated device may
//! do, each call proved by the device's signature. The engine checks the
//! signature, the timestamp and the nonce itself — the front-end hands over
//! the request as received — so no handler can forget to.

use async_trait::async_trait;
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;

use crate::challenge::{ChallengeReason, ChallengeState};
use crate::error::Result;
use crate::factors::OathParams;
use crate::mobile::PushTarget;

/// A device's request as it arrived: the signature headers and exactly the
/// bytes they sign.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// `X-Twofold-Device` (absent on activation).
    pub device_id: Option<String>,
    pub timestamp: String,
    pub nonce: String,
    /// base64url Ed25519 signature.
    pub signature: String,
    /// `GET`, `POST`.
    pub method: String,
    /// The path and query as on the request line.
    pub path_and_query: String,
    pub body: Vec<u8>,
    /// The connecting address (throttled on failures).
    pub source_ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct ActivateDevice {
    pub code: String,
    pub device_name: String,
    /// base64url, 32 bytes.
    pub public_key: String,
    pub push: Option<PushTarget>,
}

#[derive(Debug, Clone)]
pub struct DeviceActivated {
    pub device_id: String,
    pub username: String,
    pub account: String,
    /// The TOTP secret, base32 without padding.
    pub oath_secret: String,
    pub oath: OathParams,
    pub request_lifetime_seconds: u32,
}

/// A sign-in waiting for a device's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub id: String,
    pub username: String,
    pub account: String,
    pub application: String,
    pub source_address: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub pin_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceDecision {
    Approve {
        number: Option<u32>,
        pin: Option<String>,
    },
    Deny,
    Fraud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAnswered {
    pub state: ChallengeState,
    pub reason: Option<ChallengeReason>,
}

#[async_trait]
pub trait MobileService: Send + Sync + 'static {
    /// Activates a device with a code (the request signed with the key it
    /// registers).
    async fn activate_device(
        &self,
        request: &SignedRequest,
        activate: ActivateDevice,
    ) -> Result<DeviceActivated>;

    /// The device's user's pending requests; waits up to `wait` (at most a
    /// minute) for the first one.
    async fn device_requests(
        &self,
        request: &SignedRequest,
        wait: Duration,
    ) -> Result<Vec<DeviceRequest>>;

    async fn answer_device_request(
        &self,
        request: &SignedRequest,
        id: &str,
        decision: DeviceDecision,
    ) -> Result<DeviceAnswered>;

    /// Removes the device (and its OATH token).
    async fn deactivate_device(&self, request: &SignedRequest) -> Result<()>;
}

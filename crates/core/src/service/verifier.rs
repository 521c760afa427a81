//! `Verifier`: checking who someone is. Shared by every application-facing
//! front-end (the SDK today; RADIUS, forward-auth and OIDC later). Callers
//! need the `verify` grant (service accounts of role `validate` or `admin`).

use async_trait::async_trait;

use super::{Ctx, PrimaryOutcome};
use crate::challenge::{Authentication, PhoneChoice};
use crate::engine::Validation;
use crate::error::Result;

#[async_trait]
pub trait Verifier: Send + Sync + 'static {
    /// Primary authentication (username + password) against the configured
    /// source. Failures count towards the user's lockout and the source's
    /// throttle, like the portal's sign-in.
    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome>;

    /// Checks a passcode (OTP, or PIN + OTP when the mode needs a PIN) in one
    /// call; failures count towards lockout.
    async fn validate(&self, ctx: &Ctx, username: &str, passcode: &str) -> Result<Validation>;

    /// Starts authenticating a user with their method, for applications
    /// that collect the answer in a later request. Refuses (without storing
    /// anything) whom `validate` would refuse, with the same reasons.
    /// A phone call or text message goes to the user's `phone` (primary or
    /// backup) — placed, or sent, before this returns.
    async fn start_authentication(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication>;

    /// Where a challenge stands; only its starter may ask (others: not
    /// found). With `wait`, a pending challenge is answered when it is
    /// decided or when `wait` (at most 60 s) has passed, whichever is first.
    async fn authentication_status(
        &self,
        ctx: &Ctx,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication>;

    /// Answers a pending challenge (a passcode, like `validate`'s); wrong
    /// answers count towards lockout, the third rejects the challenge.
    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication>;
}

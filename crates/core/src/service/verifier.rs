//! `Verifier`: checking who someone is. Shared by every application-facing
//! front-end (the SDK today; RADIUS, forward-auth and OIDC later). Callers
//! need the `verify` grant (service accounts of role `validate` or `admin`).

use async_trait::async_trait;

use super::{Ctx, PrimaryOutcome};
use crate::challenge::Authentication;
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
    async fn start_authentication(&self, ctx: &Ctx, username: &str) -> Result<Authentication>;

    /// Where a challenge stands; only its starter may ask (others: not found).
    async fn authentication_status(&self, ctx: &Ctx, id: &str) -> Result<Authentication>;

    /// Answers a pending challenge (a passcode, like `validate`'s); wrong
    /// answers count towards lockout, the third rejects the challenge.
    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication>;
}

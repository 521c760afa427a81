//! `Verifier` for the engine: every call needs the `verify` grant; the
//! checks themselves live in `validate_passcode` and `challenges`.

use async_trait::async_trait;

use super::{Engine, Validation};
use crate::challenge::{Authentication, PhoneChoice};
use crate::error::Result;
use crate::principal::{Need, Subject};
use crate::service::{Ctx, PrimaryOutcome, Verifier};
use crate::user::UserStatus;
use crate::validate;

#[async_trait]
impl Verifier for Engine {
    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome> {
        validate::identifier("username", username)?;
        self.authorize(ctx, "primary.password", Need::Verify, Subject::Global)
            .await?;
        let (user, matched) = self.primary_check(ctx, username, password).await?;
        Ok(match user {
            Some(u) if matched && u.status(self.clock.now()) == UserStatus::Enabled => {
                PrimaryOutcome::Accepted
            }
            _ => PrimaryOutcome::Rejected,
        })
    }

    async fn validate(&self, ctx: &Ctx, username: &str, passcode: &str) -> Result<Validation> {
        validate::username_lookup(username)?;
        self.authorize(ctx, "sdk.validate", Need::Verify, Subject::Global)
            .await?;
        let username = self.local_name(username).await?;
        self.validate_passcode(ctx, &username, passcode).await
    }

    async fn start_authentication(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        validate::username_lookup(username)?;
        self.authorize(ctx, "sdk.authenticate_start", Need::Verify, Subject::Global)
            .await?;
        let username = self.local_name(username).await?;
        self.start_challenge(ctx, &username, phone).await
    }

    async fn authentication_status(
        &self,
        ctx: &Ctx,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        self.authorize(
            ctx,
            "sdk.authenticate_status",
            Need::Verify,
            Subject::Global,
        )
        .await?;
        self.challenge_status(ctx, id, wait).await
    }

    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication> {
        self.authorize(
            ctx,
            "sdk.authenticate_answer",
            Need::Verify,
            Subject::Global,
        )
        .await?;
        self.answer_challenge(ctx, id, passcode).await
    }
}

//! `Verifier` over the public Web Service SDK, for an application on
//! another host (a RADIUS or IdP front-end written in Rust) that wants the
//! engine's types and errors. Needs an account of role `validate`.

use async_trait::async_trait;
use twofold_core::challenge::{Authentication, ChallengeReason, PhoneChoice};
use twofold_core::engine::{ValidateReason, Validation};
use twofold_core::service::PrimaryOutcome;
use twofold_core::{Ctx, Error, Result, Verifier};
use twofold_proto::ValidateResult;
use twofold_sdk::{SdkClient, SdkError};

use crate::domain_error;
use crate::views::{challenge_state, phone_choice, prompt};

/// An answer this version cannot read, as the engine's `Error`.
fn decode(detail: String) -> Error {
    domain_error(SdkError::Decode(detail))
}

fn sdk_time(s: &str) -> Result<time::OffsetDateTime> {
    crate::convert::time_of("expires_at", s).map_err(|e| decode(e.to_string()))
}

/// The MFA server's `Verifier`, reached through the SDK with an account of
/// role `validate`: for an application on another host (a RADIUS or IdP
/// front-end) that wants the engine's types and errors.
#[derive(Debug, Clone)]
pub struct RemoteVerifier {
    client: SdkClient,
}

impl RemoteVerifier {
    pub fn new(client: SdkClient) -> RemoteVerifier {
        RemoteVerifier { client }
    }

    fn as_(&self, ctx: &Ctx) -> SdkClient {
        self.client.acting_for(ctx.source_ip)
    }
}

fn challenge_reason(reason: Option<String>) -> Result<Option<ChallengeReason>> {
    reason
        .map(|r| {
            ChallengeReason::parse(&r)
                .ok_or_else(|| decode(format!("unknown authentication reason {r:?}")))
        })
        .transpose()
}

#[async_trait]
impl Verifier for RemoteVerifier {
    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome> {
        match self
            .as_(ctx)
            .primary(username, &password)
            .await
            .map_err(domain_error)?
            .result
        {
            ValidateResult::Accept => Ok(PrimaryOutcome::Accepted),
            ValidateResult::Reject => Ok(PrimaryOutcome::Rejected),
        }
    }

    async fn validate(&self, ctx: &Ctx, username: &str, passcode: &str) -> Result<Validation> {
        let r = self
            .as_(ctx)
            .validate(username, passcode)
            .await
            .map_err(domain_error)?;
        let reason: ValidateReason =
            serde_json::from_value(serde_json::Value::String(r.reason.clone()))
                .map_err(|_| decode(format!("unknown validate reason {:?}", r.reason)))?;
        Ok(Validation {
            accepted: r.result == ValidateResult::Accept,
            reason,
        })
    }

    async fn start_authentication(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        let r = self
            .as_(ctx)
            .start_authentication(username, Some(phone_choice(phone)))
            .await
            .map_err(domain_error)?;
        Ok(Authentication {
            id: r.id,
            state: challenge_state(r.state),
            reason: challenge_reason(r.reason)?,
            method: r
                .method
                .map(|m| m.parse())
                .transpose()
                .map_err(|e: Error| decode(format!("method: {e}")))?,
            prompt: r.prompt.map(prompt),
            pin_required: r.pin_required,
            expires_at: r.expires_at.as_deref().map(sdk_time).transpose()?,
            phone: r.phone,
            number: r.number,
        })
    }

    async fn authentication_status(
        &self,
        ctx: &Ctx,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let wait = wait.map(|w| u32::try_from(w.as_secs()).unwrap_or(u32::MAX).min(60));
        let r = self
            .as_(ctx)
            .authentication_status(id, wait)
            .await
            .map_err(domain_error)?;
        Ok(Authentication {
            id: Some(r.id),
            state: challenge_state(r.state),
            reason: challenge_reason(r.reason)?,
            method: None,
            prompt: None,
            pin_required: false,
            expires_at: Some(sdk_time(&r.expires_at)?),
            phone: None,
            number: None,
        })
    }

    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication> {
        let r = self
            .as_(ctx)
            .answer_authentication(id, passcode)
            .await
            .map_err(domain_error)?;
        Ok(Authentication {
            id: Some(id.to_string()),
            state: challenge_state(r.state),
            reason: challenge_reason(r.reason)?,
            method: None,
            prompt: None,
            pin_required: false,
            expires_at: None,
            phone: None,
            number: None,
        })
    }
}

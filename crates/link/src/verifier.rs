//! `Verifier` over the public Web Service SDK, for an application on
//! another host (a RADIUS or IdP front-end written in Rust) that wants the
//! engine's types and errors. Needs an account of role `validate`.

use async_trait::async_trait;
use twofold_core::challenge::{Authentication, ChallengeReason, Prompt};
use twofold_core::engine::{ValidateReason, Validation};
use twofold_core::service::PrimaryOutcome;
use twofold_core::{Ctx, Error, Result, Verifier};
use twofold_proto::{AuthenticationPrompt, ValidateResult};
use twofold_sdk::{SdkClient, SdkError};

fn sdk_time(s: &str) -> Result<time::OffsetDateTime, SdkError> {
    crate::convert::time_of("expires_at", s).map_err(|e| SdkError::Decode(e.to_string()))
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

fn challenge_reason(reason: Option<String>) -> Result<Option<ChallengeReason>, SdkError> {
    reason
        .map(|r| {
            ChallengeReason::parse(&r)
                .ok_or_else(|| SdkError::Decode(format!("unknown authentication reason {r:?}")))
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
        match self.as_(ctx).primary(username, &password).await?.result {
            ValidateResult::Accept => Ok(PrimaryOutcome::Accepted),
            ValidateResult::Reject => Ok(PrimaryOutcome::Rejected),
        }
    }

    async fn validate(&self, ctx: &Ctx, username: &str, passcode: &str) -> Result<Validation> {
        let r = self.as_(ctx).validate(username, passcode).await?;
        let reason: ValidateReason =
            serde_json::from_value(serde_json::Value::String(r.reason.clone())).map_err(|_| {
                Error::from(SdkError::Decode(format!(
                    "unknown validate reason {:?}",
                    r.reason
                )))
            })?;
        Ok(Validation {
            accepted: r.result == ValidateResult::Accept,
            reason,
        })
    }

    async fn start_authentication(&self, ctx: &Ctx, username: &str) -> Result<Authentication> {
        let r = self.as_(ctx).start_authentication(username).await?;
        Ok(Authentication {
            id: r.id,
            state: r.state.into(),
            reason: challenge_reason(r.reason)?,
            method: r
                .method
                .map(|m| m.parse())
                .transpose()
                .map_err(|e: Error| SdkError::Decode(format!("method: {e}")))?,
            prompt: r.prompt.map(|p| match p {
                AuthenticationPrompt::Passcode => Prompt::Passcode,
            }),
            pin_required: r.pin_required,
            expires_at: r.expires_at.as_deref().map(sdk_time).transpose()?,
        })
    }

    async fn authentication_status(&self, ctx: &Ctx, id: &str) -> Result<Authentication> {
        let r = self.as_(ctx).authentication_status(id).await?;
        Ok(Authentication {
            id: Some(r.id),
            state: r.state.into(),
            reason: challenge_reason(r.reason)?,
            method: None,
            prompt: None,
            pin_required: false,
            expires_at: Some(sdk_time(&r.expires_at)?),
        })
    }

    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<Authentication> {
        let r = self.as_(ctx).answer_authentication(id, passcode).await?;
        Ok(Authentication {
            id: Some(id.to_string()),
            state: r.state.into(),
            reason: challenge_reason(r.reason)?,
            method: None,
            prompt: None,
            pin_required: false,
            expires_at: None,
        })
    }
}

//! `PortalService` over HTTPS: what `twofold portal` runs on. Every call is
//! one SDK request made with a service account of role `portal`; the end
//! user's address (`Ctx::source_ip`) travels in `X-Twofold-Client-Ip`, and
//! errors come back as the same domain `Error` variants the engine returns,
//! so the portal renders identical messages.
//!
//! Only the portal's own trait is implemented: a remote portal has no
//! business verifying for applications or administering users, and its
//! account is not allowed to.

use async_trait::async_trait;
use time::OffsetDateTime;
use twofold_core::challenge::{Authentication, ChallengeReason, Prompt};
use twofold_core::engine::{ValidateReason, Validation};
use twofold_core::factors::OathToken;
use twofold_core::portal::{
    Account, EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath, Proof, SignIn, Verified,
};
use twofold_core::service::PrimaryOutcome;
use twofold_core::settings::Settings;
use twofold_core::user::{MethodKind, User};
use twofold_core::{Ctx, Error, PortalService, Result, Verifier};
use twofold_proto::{AuthenticationPrompt, ValidateResult};

use crate::client::parse_time;
use crate::{SdkClient, SdkError};

/// The MFA server, reached through its Web Service SDK.
#[derive(Debug, Clone)]
pub struct RemoteService {
    client: SdkClient,
}

impl RemoteService {
    pub fn new(client: SdkClient) -> RemoteService {
        RemoteService { client }
    }

    pub fn client(&self) -> &SdkClient {
        &self.client
    }

    fn as_(&self, ctx: &Ctx) -> SdkClient {
        self.client.acting_for(ctx.source_ip)
    }
}

#[async_trait]
impl PortalService for RemoteService {
    async fn ready(&self, _ctx: &Ctx) -> Result<()> {
        Ok(self.client.ready().await?)
    }

    async fn portal_settings(&self, _ctx: &Ctx) -> Result<Settings> {
        Ok(self.client.settings().await?)
    }

    async fn portal_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        Ok(self.as_(ctx).portal_user(username).await?)
    }

    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn> {
        Ok(self.as_(ctx).sign_in(username, password).await?)
    }

    async fn verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified> {
        Ok(self.as_(ctx).verify(username, proof, code, answers).await?)
    }

    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions> {
        Ok(self.as_(ctx).enrollment_options(username).await?)
    }

    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath> {
        Ok(self.as_(ctx).new_oath_secret(username).await?)
    }

    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        Ok(self.as_(ctx).import_oath_secret(username, import).await?)
    }

    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        Ok(self.as_(ctx).confirm_oath(username, pending, code).await?)
    }

    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        Ok(self.as_(ctx).finish_enrollment(username, finish).await?)
    }

    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account> {
        Ok(self.as_(ctx).account(username).await?)
    }

    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()> {
        Ok(self.as_(ctx).change_pin(username, pin).await?)
    }

    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        Ok(self.as_(ctx).change_answers(username, answers).await?)
    }

    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        Ok(self
            .as_(ctx)
            .add_portal_token(username, confirmed, label)
            .await?)
    }

    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        Ok(self
            .as_(ctx)
            .delete_portal_token(username, token_id)
            .await?)
    }

    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User> {
        Ok(self.as_(ctx).change_language(username, language).await?)
    }

    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User> {
        Ok(self.as_(ctx).change_method(username, method).await?)
    }

    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        Ok(self.as_(ctx).start_bypass(username, seconds).await?)
    }

    async fn session_load(&self, _ctx: &Ctx, id_hash: &str) -> Result<Option<String>> {
        Ok(self.client.session_load(id_hash).await?)
    }

    async fn session_save(
        &self,
        _ctx: &Ctx,
        id_hash: &str,
        data: String,
        ttl_seconds: i64,
    ) -> Result<()> {
        Ok(self.client.session_save(id_hash, data, ttl_seconds).await?)
    }

    async fn session_drop(&self, _ctx: &Ctx, id_hash: &str) -> Result<()> {
        Ok(self.client.session_drop(id_hash).await?)
    }
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
            expires_at: r.expires_at.as_deref().map(parse_time).transpose()?,
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
            expires_at: Some(parse_time(&r.expires_at)?),
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

//! `MfaService` over HTTPS: what `twofold portal` runs on. Every call is one
//! SDK request; the end user's address (`Ctx::source_ip`) travels in
//! `X-Twofold-Client-Ip`, and errors come back as the same domain `Error`
//! variants the engine returns, so the portal renders identical messages.
//!
//! The portal's flows, its sessions, the settings and `get_user` map one to
//! one onto SDK operations. The other administrative methods go through the
//! public user API, whose `UserView` carries no database id or version:
//! users returned by them have `id` and `version` 0 (the portal does not use
//! those methods).

use async_trait::async_trait;
use time::OffsetDateTime;
use twofold_core::audit::{AuditEvent, AuditQuery, ResultCode};
use twofold_core::challenge::{Authentication, ChallengeReason, Prompt};
use twofold_core::engine::{ValidateReason, Validation};
use twofold_core::factors::OathToken;
use twofold_core::portal::{
    Account, EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath, Proof, SignIn, Verified,
};
use twofold_core::ports::UserQuery;
use twofold_core::service::{CreateUser, PrimaryOutcome};
use twofold_core::settings::Settings;
use twofold_core::user::{MethodKind, User, UserPatch};
use twofold_core::{Ctx, Error, MfaService, Result};
use twofold_proto::AuthenticationPrompt;
use twofold_proto::{AuditView, CreateUserRequest, UpdateUserRequest, UserView, ValidateResult};

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

fn user_from_view(v: UserView) -> Result<User, SdkError> {
    let (locked_until, fraud_blocked) = match v.status.as_str() {
        s if s.starts_with("locked until ") => (
            Some(parse_time(s.trim_start_matches("locked until "))?),
            false,
        ),
        "blocked (fraud reported)" => (None, true),
        _ => (None, false),
    };
    Ok(User {
        id: 0,
        username: v.username,
        display_name: v.display_name,
        email: v.email,
        groups: v.groups,
        language: v.language,
        phone: v.phone,
        phone_extension: v.phone_extension,
        backup_phone: v.backup_phone,
        mobile_phone: v.mobile_phone,
        enabled: v.enabled,
        locked_until,
        fraud_blocked,
        default_method: v
            .method
            .map(|m| m.parse())
            .transpose()
            .map_err(|e: Error| SdkError::Decode(format!("method: {e}")))?,
        created_at: parse_time(&v.created_at)?,
        updated_at: parse_time(&v.updated_at)?,
        version: 0,
    })
}

fn challenge_reason(reason: Option<String>) -> Result<Option<ChallengeReason>, SdkError> {
    reason
        .map(|r| {
            ChallengeReason::parse(&r)
                .ok_or_else(|| SdkError::Decode(format!("unknown authentication reason {r:?}")))
        })
        .transpose()
}

fn event_from_view(v: AuditView) -> Result<AuditEvent, SdkError> {
    Ok(AuditEvent {
        id: v.id,
        at: parse_time(&v.at)?,
        actor: v.actor,
        subject: v.subject,
        event: v.event,
        method: v.method,
        result: ResultCode::parse(&v.result)
            .ok_or_else(|| SdkError::Decode(format!("unknown result code {:?}", v.result)))?,
        source_ip: v
            .source_ip
            .map(|s| s.parse())
            .transpose()
            .map_err(|_| SdkError::Decode("source_ip is not an IP address".into()))?,
        detail: v.detail,
    })
}

#[async_trait]
impl MfaService for RemoteService {
    async fn ready(&self) -> Result<()> {
        Ok(self.client.ready().await?)
    }

    async fn settings(&self) -> Result<Settings> {
        Ok(self.client.settings().await?)
    }

    async fn set_setting(
        &self,
        ctx: &Ctx,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Settings> {
        Ok(self.as_(ctx).set_setting(key, value).await?)
    }

    async fn reset_setting(&self, ctx: &Ctx, key: &str) -> Result<Settings> {
        Ok(self.as_(ctx).reset_setting(key).await?)
    }

    async fn create_user(&self, ctx: &Ctx, req: CreateUser) -> Result<User> {
        let v = self
            .as_(ctx)
            .create_user(&CreateUserRequest {
                username: req.username,
                display_name: req.display_name,
                email: req.email,
                groups: req.groups,
                language: req.language,
                password: req.password,
            })
            .await?;
        Ok(user_from_view(v)?)
    }

    async fn get_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        // The portal's read: the complete record, unaudited as in process.
        Ok(self.as_(ctx).portal_user(username).await?)
    }

    async fn list_users(&self, ctx: &Ctx, query: UserQuery) -> Result<Vec<User>> {
        let list = self
            .as_(ctx)
            .list_users(
                query.prefix.as_deref(),
                query.group.as_deref(),
                query.after.as_deref(),
                query.limit,
            )
            .await?;
        Ok(list
            .users
            .into_iter()
            .map(user_from_view)
            .collect::<Result<_, _>>()?)
    }

    async fn update_user(&self, ctx: &Ctx, username: &str, patch: UserPatch) -> Result<User> {
        let v = self
            .as_(ctx)
            .update_user(
                username,
                &UpdateUserRequest {
                    display_name: patch.display_name,
                    email: patch.email,
                    groups: patch.groups,
                    language: patch.language,
                    method: patch.default_method,
                    phone: patch.phone,
                    phone_extension: patch.phone_extension,
                    backup_phone: patch.backup_phone,
                    mobile_phone: patch.mobile_phone,
                },
            )
            .await?;
        Ok(user_from_view(v)?)
    }

    async fn set_user_enabled(&self, ctx: &Ctx, username: &str, enabled: bool) -> Result<User> {
        let c = self.as_(ctx);
        let v = if enabled {
            c.enable_user(username).await?
        } else {
            c.disable_user(username).await?
        };
        Ok(user_from_view(v)?)
    }

    async fn unblock_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        Ok(user_from_view(self.as_(ctx).unblock_user(username).await?)?)
    }

    async fn delete_user(&self, ctx: &Ctx, username: &str) -> Result<()> {
        Ok(self.as_(ctx).delete_user(username).await?)
    }

    async fn set_password(&self, ctx: &Ctx, username: &str, password: String) -> Result<()> {
        Ok(self.as_(ctx).set_password(username, &password).await?)
    }

    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome> {
        let c = self.as_(ctx);
        match c.primary(username, &password).await?.result {
            ValidateResult::Accept => Ok(PrimaryOutcome::Accepted(Box::new(
                c.portal_user(username).await?,
            ))),
            ValidateResult::Reject => Ok(PrimaryOutcome::Rejected),
        }
    }

    async fn audit_events(&self, ctx: &Ctx, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        let page = self
            .as_(ctx)
            .audit(
                query.limit,
                query.before_id,
                query.after_id,
                query.subject.as_deref(),
            )
            .await?;
        Ok(page
            .events
            .into_iter()
            .map(event_from_view)
            .collect::<Result<_, _>>()?)
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

    async fn session_load(&self, id_hash: &str) -> Result<Option<String>> {
        Ok(self.client.session_load(id_hash).await?)
    }

    async fn session_save(&self, id_hash: &str, data: String, ttl_seconds: i64) -> Result<()> {
        Ok(self.client.session_save(id_hash, data, ttl_seconds).await?)
    }

    async fn session_drop(&self, id_hash: &str) -> Result<()> {
        Ok(self.client.session_drop(id_hash).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_views_become_users() {
        let v = UserView {
            username: "jan".into(),
            display_name: None,
            email: None,
            groups: vec!["staff".into()],
            language: Some("nl".into()),
            phone: Some("+31207948261".into()),
            phone_extension: None,
            backup_phone: None,
            mobile_phone: None,
            status: "locked until 2030-01-02T03:04:05Z".into(),
            enabled: true,
            method: Some("oath_token:oath".into()),
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-02T00:00:00Z".into(),
        };
        let u = user_from_view(v.clone()).unwrap();
        assert_eq!(u.username, "jan");
        assert_eq!(u.phone.as_deref(), Some("+31207948261"));
        assert_eq!(u.locked_until.unwrap().year(), 2030);
        assert_eq!(u.default_method.unwrap().to_string(), "oath_token:oath");
        let blocked = user_from_view(UserView {
            status: "blocked (fraud reported)".into(),
            ..v.clone()
        })
        .unwrap();
        assert!(blocked.fraud_blocked);
        assert!(user_from_view(UserView {
            created_at: "yesterday".into(),
            ..v
        })
        .is_err());
    }
}

//! `PortalService` over the private portal link: what `twofold portal` runs
//! on. Every call is one `POST /link/v1` made with a service account of role
//! `portal`; the end user's address (`Ctx::source_ip`) travels in
//! `X-Twofold-Client-Ip`, and errors come back as the same domain `Error`
//! variants the engine returns, so the portal renders identical messages.
//!
//! Only the portal's own trait is implemented: a remote portal has no
//! business verifying for applications or administering users, and its
//! account is not allowed to.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use twofold_core::challenge::{Authentication, PhoneChoice};
use twofold_core::factors::OathToken;
use twofold_core::passed::{PassedTicket, PassedVia, ReturnRefused};
use twofold_core::portal::{
    Account, ChangePhone, EnrollPhone, EnrollmentOptions, FinishEnrollment, ImportOath,
    PendingOath, PhoneSlot, PortalConfig, Proof, SignIn, Verified,
};
use twofold_core::user::{MethodKind, User};
use twofold_core::{Ctx, PortalService, Result};
use twofold_proto::link::{
    Bypass, Confirmed, Done, LinkAccount, LinkCookieDomain, LinkEnrollmentOptions, LinkPassed,
    LinkPendingOath, LinkPhoneStarted, LinkRequest, LinkSignIn, LinkToken, LinkUser, LinkVerified,
    PortalSettings, Ready, SessionData,
};
use twofold_sdk::SdkClient;

use crate::convert::{
    answers_to_wire, from_account, from_enrollment_options, from_pending, from_phone_started,
    from_sign_in, from_token, from_user, from_verified, name, time_of,
};
use crate::domain_error;

/// The MFA server, reached through the private portal link.
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

    /// One link operation for the person behind `ctx`.
    async fn call<R: DeserializeOwned>(&self, ctx: &Ctx, request: LinkRequest) -> Result<R> {
        self.client
            .acting_for(ctx.source_ip)
            .link(&request)
            .await
            .map_err(domain_error)
    }
}

#[async_trait]
impl PortalService for RemoteService {
    async fn ready(&self, ctx: &Ctx) -> Result<twofold_core::directory::Readiness> {
        let r: Ready = self.call(ctx, LinkRequest::Ready).await?;
        Ok(twofold_core::directory::Readiness {
            directory: r.directory.and_then(|d| {
                let kind = match d.kind.as_str() {
                    "ldap" => twofold_core::settings::PrimaryAuth::Ldap,
                    "radius" => twofold_core::settings::PrimaryAuth::Radius,
                    _ => return None,
                };
                Some(twofold_core::directory::DirectoryHealth {
                    kind,
                    reachable: d.status == "reachable",
                    error: d.error,
                })
            }),
        })
    }

    async fn portal_settings(&self, ctx: &Ctx) -> Result<PortalConfig> {
        let s: PortalSettings = self.call(ctx, LinkRequest::Settings).await?;
        let defaults = PortalConfig::default();
        Ok(PortalConfig {
            allow_login: s.allow_login,
            logging: s.logging,
            languages: if s.languages.is_empty() {
                defaults.languages
            } else {
                s.languages
            },
            time_zone: s.time_zone.unwrap_or(defaults.time_zone),
        })
    }

    async fn portal_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        let u: LinkUser = self
            .call(
                ctx,
                LinkRequest::User {
                    username: username.into(),
                },
            )
            .await?;
        from_user(u)
    }

    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn> {
        let s: LinkSignIn = self
            .call(
                ctx,
                LinkRequest::SignIn {
                    username: username.into(),
                    password,
                },
            )
            .await?;
        from_sign_in(s)
    }

    async fn verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified> {
        let v: LinkVerified = self
            .call(
                ctx,
                LinkRequest::Verify {
                    username: username.into(),
                    proof: name(&proof),
                    code,
                    answers: answers_to_wire(answers),
                },
            )
            .await?;
        from_verified(v)
    }

    async fn call_or_text(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        let s: LinkPhoneStarted = self
            .call(
                ctx,
                LinkRequest::CallOrText {
                    username: username.into(),
                    phone: Some(name(&phone)),
                },
            )
            .await?;
        from_phone_started(s)
    }

    async fn verify_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Verified> {
        let v: LinkVerified = self
            .call(
                ctx,
                LinkRequest::VerifyPhone {
                    username: username.into(),
                    challenge: challenge.into(),
                    code,
                    wait_seconds: wait.map(|w| u32::try_from(w.as_secs()).unwrap_or(8).min(8)),
                },
            )
            .await?;
        from_verified(v)
    }

    async fn change_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        change: ChangePhone,
    ) -> Result<Authentication> {
        let s: LinkPhoneStarted = self
            .call(
                ctx,
                LinkRequest::ChangePhone {
                    username: username.into(),
                    slot: change.slot.as_str().into(),
                    phone: change.phone,
                    extension: change.extension,
                },
            )
            .await?;
        from_phone_started(s)
    }

    async fn change_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        slot: PhoneSlot,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let s: LinkPhoneStarted = self
            .call(
                ctx,
                LinkRequest::ChangePhoneStatus {
                    username: username.into(),
                    challenge: challenge.into(),
                    slot: slot.as_str().into(),
                    code,
                    wait_seconds: wait.map(|w| u32::try_from(w.as_secs()).unwrap_or(8).min(8)),
                },
            )
            .await?;
        from_phone_started(s)
    }

    async fn enrollment_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: EnrollPhone,
    ) -> Result<Authentication> {
        let s: LinkPhoneStarted = self
            .call(
                ctx,
                LinkRequest::EnrollmentPhone {
                    username: username.into(),
                    method: phone.method.as_str().into(),
                    phone: phone.phone,
                    extension: phone.extension,
                    pin: phone.pin,
                },
            )
            .await?;
        from_phone_started(s)
    }

    async fn enrollment_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let s: LinkPhoneStarted = self
            .call(
                ctx,
                LinkRequest::EnrollmentPhoneStatus {
                    username: username.into(),
                    challenge: challenge.into(),
                    code,
                    wait_seconds: wait.map(|w| u32::try_from(w.as_secs()).unwrap_or(8).min(8)),
                },
            )
            .await?;
        from_phone_started(s)
    }

    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions> {
        let o: LinkEnrollmentOptions = self
            .call(
                ctx,
                LinkRequest::EnrollmentOptions {
                    username: username.into(),
                },
            )
            .await?;
        from_enrollment_options(o)
    }

    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath> {
        let p: LinkPendingOath = self
            .call(
                ctx,
                LinkRequest::NewOathSecret {
                    username: username.into(),
                },
            )
            .await?;
        from_pending(p)
    }

    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        let p: LinkPendingOath = self
            .call(
                ctx,
                LinkRequest::ImportOathSecret {
                    username: username.into(),
                    secret_base32: import.secret_base32,
                    kind: name(&import.kind),
                    digits: import.digits,
                },
            )
            .await?;
        from_pending(p)
    }

    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        let c: Confirmed = self
            .call(
                ctx,
                LinkRequest::ConfirmOath {
                    username: username.into(),
                    pending,
                    code,
                },
            )
            .await?;
        Ok(c.confirmed)
    }

    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        let u: LinkUser = self
            .call(
                ctx,
                LinkRequest::FinishEnrollment {
                    username: username.into(),
                    method: finish.method.to_string(),
                    oath: finish.oath,
                    pin: finish.pin,
                    answers: answers_to_wire(finish.answers),
                    phone_challenge: finish.phone_challenge,
                    backup_phone: finish.backup_phone,
                },
            )
            .await?;
        from_user(u)
    }

    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account> {
        let a: LinkAccount = self
            .call(
                ctx,
                LinkRequest::Account {
                    username: username.into(),
                },
            )
            .await?;
        from_account(a)
    }

    async fn activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<twofold_core::mobile::ActivationOffer> {
        let a: twofold_proto::link::LinkActivation = self
            .call(
                ctx,
                LinkRequest::ActivationCode {
                    username: username.into(),
                },
            )
            .await?;
        crate::convert::from_activation(a)
    }

    async fn remove_device(&self, ctx: &Ctx, username: &str, device_id: &str) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::RemoveDevice {
                username: username.into(),
                device_id: device_id.into(),
            },
        )
        .await
        .map(|_| ())
    }

    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::ChangePin {
                username: username.into(),
                pin,
            },
        )
        .await
        .map(|_| ())
    }

    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::ChangeAnswers {
                username: username.into(),
                answers: answers_to_wire(answers),
            },
        )
        .await
        .map(|_| ())
    }

    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        let t: LinkToken = self
            .call(
                ctx,
                LinkRequest::AddToken {
                    username: username.into(),
                    confirmed,
                    label,
                },
            )
            .await?;
        // The portal does not know the user's id; it never needs it.
        from_token(t, 0)
    }

    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::DeleteToken {
                username: username.into(),
                token_id,
            },
        )
        .await
        .map(|_| ())
    }

    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User> {
        let u: LinkUser = self
            .call(
                ctx,
                LinkRequest::ChangeLanguage {
                    username: username.into(),
                    language,
                },
            )
            .await?;
        from_user(u)
    }

    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User> {
        let u: LinkUser = self
            .call(
                ctx,
                LinkRequest::ChangeMethod {
                    username: username.into(),
                    method: method.as_str().into(),
                },
            )
            .await?;
        from_user(u)
    }

    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        let b: Bypass = self
            .call(
                ctx,
                LinkRequest::StartBypass {
                    username: username.into(),
                    seconds,
                },
            )
            .await?;
        time_of("until", &b.until)
    }

    async fn pass_session(
        &self,
        ctx: &Ctx,
        username: &str,
        via: PassedVia,
        return_to: Option<String>,
    ) -> Result<Option<PassedTicket>> {
        let p: LinkPassed = self
            .call(
                ctx,
                LinkRequest::PassSession {
                    username: username.into(),
                    via: via.as_str().into(),
                    return_to,
                },
            )
            .await?;
        Ok(p.enabled.then(|| PassedTicket {
            token: p.token,
            cookie_domain: p.cookie_domain,
            max_age_seconds: p.max_age_seconds,
            return_to: p.return_to,
            refused: p.refused.as_deref().and_then(ReturnRefused::parse),
        }))
    }

    async fn end_passed_session(&self, ctx: &Ctx, token: &str) -> Result<Option<String>> {
        let d: LinkCookieDomain = self
            .call(
                ctx,
                LinkRequest::EndPassedSession {
                    token: token.into(),
                },
            )
            .await?;
        Ok(d.cookie_domain)
    }

    async fn session_load(&self, ctx: &Ctx, id_hash: &str) -> Result<Option<String>> {
        let s: SessionData = self
            .call(
                ctx,
                LinkRequest::SessionLoad {
                    id_hash: id_hash.into(),
                },
            )
            .await?;
        Ok(s.data)
    }

    async fn session_save(
        &self,
        ctx: &Ctx,
        id_hash: &str,
        data: String,
        ttl_seconds: i64,
    ) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::SessionSave {
                id_hash: id_hash.into(),
                data,
                ttl_seconds,
            },
        )
        .await
        .map(|_| ())
    }

    async fn session_drop(&self, ctx: &Ctx, id_hash: &str) -> Result<()> {
        self.call::<Done>(
            ctx,
            LinkRequest::SessionDrop {
                id_hash: id_hash.into(),
            },
        )
        .await
        .map(|_| ())
    }
}

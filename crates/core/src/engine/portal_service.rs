//! `PortalService` for the engine: every call needs the `portal` grant (the
//! in-process portal's end users, a `portal` service account, or a full
//! administrator); the flows themselves live in `portal` and `sessions`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Engine;
use crate::challenge::{Authentication, PhoneChoice};
use crate::error::Result;
use crate::factors::OathToken;
use crate::portal::{
    Account, ChangePhone, EnrollPhone, EnrollmentOptions, FinishEnrollment, ImportOath,
    PendingOath, PhoneSlot, PortalConfig, Proof, SignIn, Verified,
};
use crate::principal::Need;
use crate::service::{Ctx, PortalService};
use crate::user::{MethodKind, User};
use crate::validate;

impl Engine {
    /// Refuses — audited — a caller without the `portal` grant.
    async fn portal_caller(&self, ctx: &Ctx, event: &str) -> Result<()> {
        self.require(ctx, event, Need::Portal, None).await
    }
}

#[async_trait]
impl PortalService for Engine {
    async fn ready(&self, ctx: &Ctx) -> Result<crate::directory::Readiness> {
        // Not audited when allowed: load balancers poll it.
        self.portal_caller(ctx, "portal.ready").await?;
        self.store.ping().await?;
        Ok(crate::directory::Readiness {
            directory: self.directory_health().await?,
        })
    }

    async fn portal_settings(&self, ctx: &Ctx) -> Result<PortalConfig> {
        self.portal_caller(ctx, "portal.settings").await?;
        Ok(PortalConfig::of(&self.load_settings().await?))
    }

    async fn portal_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.user").await?;
        self.user(username).await
    }

    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn> {
        validate::identifier("username", username)?;
        self.portal_caller(ctx, "portal.sign_in").await?;
        self.portal_begin_sign_in(ctx, username, password).await
    }

    async fn verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.verify").await?;
        self.portal_verify(ctx, username, proof, code, answers)
            .await
    }

    async fn call_or_text(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.verify").await?;
        self.portal_call_or_text(ctx, username, phone).await
    }

    async fn verify_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Verified> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.verify").await?;
        self.portal_verify_phone(ctx, username, challenge, code, wait)
            .await
    }

    async fn change_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        change: ChangePhone,
    ) -> Result<Authentication> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.change_phone").await?;
        self.portal_change_phone(ctx, username, change).await
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
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.change_phone").await?;
        self.portal_change_phone_status(ctx, username, challenge, slot, code, wait)
            .await
    }

    async fn enrollment_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: EnrollPhone,
    ) -> Result<Authentication> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.enroll_phone").await?;
        self.portal_enrollment_phone(ctx, username, phone).await
    }

    async fn enrollment_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.enroll_phone").await?;
        self.portal_enrollment_phone_status(ctx, username, challenge, code, wait)
            .await
    }

    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.enrollment_options").await?;
        self.portal_enrollment_options(ctx, username).await
    }

    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.oath_new").await?;
        self.portal_new_oath_secret(ctx, username).await
    }

    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.oath_import").await?;
        self.portal_import_oath_secret(ctx, username, import).await
    }

    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.oath_confirm").await?;
        self.portal_confirm_oath(ctx, username, pending, code).await
    }

    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.enroll").await?;
        self.portal_finish_enrollment(ctx, username, finish).await
    }

    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.account").await?;
        self.portal_account(ctx, username).await
    }

    async fn activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::mobile::ActivationOffer> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.activation_code").await?;
        self.portal_activation_code(ctx, username).await
    }

    async fn remove_device(&self, ctx: &Ctx, username: &str, device_id: &str) -> Result<()> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.device_remove").await?;
        self.portal_remove_device(ctx, username, device_id).await
    }

    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.pin").await?;
        self.portal_change_pin(ctx, username, pin).await
    }

    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.answers").await?;
        self.portal_change_answers(ctx, username, answers).await
    }

    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        validate::username_lookup(username)?;
        validate::token_label(&label)?;
        self.portal_caller(ctx, "portal.token_add").await?;
        self.portal_add_oath_token(ctx, username, confirmed, label)
            .await
    }

    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.token_delete").await?;
        self.portal_delete_oath_token(ctx, username, token_id).await
    }

    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.language").await?;
        self.portal_change_language(ctx, username, language).await
    }

    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.method").await?;
        self.portal_change_method(ctx, username, method).await
    }

    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "portal.bypass").await?;
        self.portal_start_bypass(ctx, username, seconds).await
    }

    async fn pass_session(
        &self,
        ctx: &Ctx,
        username: &str,
        via: crate::passed::PassedVia,
        return_to: Option<String>,
    ) -> Result<Option<crate::passed::PassedTicket>> {
        validate::username_lookup(username)?;
        self.portal_caller(ctx, "passed.open").await?;
        self.open_passed_session(ctx, username, via, return_to)
            .await
    }

    async fn end_passed_session(&self, ctx: &Ctx, token: &str) -> Result<Option<String>> {
        self.portal_caller(ctx, "passed.close").await?;
        self.close_passed_session(ctx, token).await
    }

    async fn session_load(&self, ctx: &Ctx, id_hash: &str) -> Result<Option<String>> {
        validate::identifier("session", id_hash)?;
        self.portal_caller(ctx, "portal.session").await?;
        self.sessions_load(id_hash).await
    }

    async fn session_save(
        &self,
        ctx: &Ctx,
        id_hash: &str,
        data: String,
        ttl_seconds: i64,
    ) -> Result<()> {
        validate::identifier("session", id_hash)?;
        validate::storable_text("session", &data)?;
        self.portal_caller(ctx, "portal.session").await?;
        self.sessions_save(id_hash, data, ttl_seconds).await
    }

    async fn session_drop(&self, ctx: &Ctx, id_hash: &str) -> Result<()> {
        validate::identifier("session", id_hash)?;
        self.portal_caller(ctx, "portal.session").await?;
        self.store.session_delete(id_hash).await
    }
}

//! The engine: every business rule, behind `MfaService`. Handlers and CLI
//! commands parse, call one method here, and render.

mod admin_factors;
mod challenges;
mod oath_check;
mod portal;
mod service_accounts;
mod sessions;
mod validate_passcode;

pub use oath_check::PasscodeCheck;
pub use validate_passcode::{ValidateReason, Validation};

use async_trait::async_trait;
use std::sync::Arc;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditQuery, NewAuditEvent, ResultCode};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::factors::OathToken;
use crate::password::SecretHasher;
use crate::portal::{
    Account, EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath, Proof, SignIn, Verified,
};
use crate::ports::{Store, UserQuery};
use crate::sealing::SealingKey;
use crate::service::{CreateUser, Ctx, MfaService, PrimaryOutcome};
use crate::settings::{key_def, Settings};
use crate::throttle::Throttle;
use crate::user::{Admin, DefaultMethod, MethodKind, NewUser, Permission, User, UserPatch};
use crate::validate;

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: SecretHasher,
    sealing: Arc<SealingKey>,
    throttle: Throttle,
    /// Settings are read on every request; a second of staleness across
    /// nodes saves a query per request on the hot path.
    settings_cache: std::sync::Mutex<Option<(std::time::Instant, Settings)>>,
    directory_cache: std::sync::Mutex<service_accounts::DirectoryCache>,
}

const SETTINGS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Failed secrets one source address may try per window, across all users.
const SOURCE_FAILURES: u32 = 50;
const SOURCE_WINDOW: time::Duration = time::Duration::minutes(5);

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: SecretHasher,
        sealing: Arc<SealingKey>,
    ) -> Self {
        Engine {
            store,
            clock,
            hasher,
            sealing,
            throttle: Throttle::new(SOURCE_FAILURES, SOURCE_WINDOW),
            settings_cache: std::sync::Mutex::new(None),
            directory_cache: std::sync::Mutex::new(Default::default()),
        }
    }

    pub async fn settings_now(&self) -> Result<Settings> {
        if let Some((at, s)) = self
            .settings_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < SETTINGS_CACHE_TTL {
                return Ok(s.clone());
            }
        }
        let fresh = self.load_settings().await?;
        *self
            .settings_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    fn forget_settings(&self) {
        *self
            .settings_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn load_settings(&self) -> Result<Settings> {
        let rows = self.store.settings_rows().await?;
        let (settings, unknown) = Settings::from_rows(rows)?;
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "ignoring stored settings this version does not know"
            );
        }
        Ok(settings)
    }

    /// Checks a local password; returns the user (if one exists) and whether
    /// the password matched. Unknown users cost the same hash as real ones.
    /// Audits the outcome.
    async fn primary_check(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<(Option<User>, bool)> {
        const EVENT: &str = "primary.password";
        if password.len() > validate::PASSWORD_MAX_BYTES
            || username.len() > 4 * validate::USERNAME_MAX
        {
            self.hasher.verify_dummy(String::new()).await;
            let mut ev = self.event(ctx, EVENT, None, ResultCode::FailedInvalidInput);
            ev.detail = Some("oversized credentials".into());
            self.store.append_audit(&ev).await?;
            return Ok((None, false));
        }
        let user = self.store.find_user(username).await?;
        let hash = match &user {
            Some(u) => self.store.password_hash(u.id).await?,
            None => None,
        };
        let matched = match hash {
            Some(h) => self.hasher.verify(password, h).await,
            None => {
                self.hasher.verify_dummy(password).await;
                false
            }
        };
        let now = self.clock.now();
        let code = match &user {
            None => ResultCode::FailedUserNotFound,
            Some(_) if !matched => ResultCode::FailedPasswordWrong,
            Some(u) => match u.status(now) {
                crate::user::UserStatus::Enabled => ResultCode::SuccessPasswordVerified,
                crate::user::UserStatus::Disabled => ResultCode::FailedUserDisabled,
                _ => ResultCode::FailedUserLocked,
            },
        };
        let subject = user
            .as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_else(|| username.trim().to_string());
        let ev = self.event(ctx, EVENT, Some(&subject), code);
        self.store.append_audit(&ev).await?;
        Ok((user, matched))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn sealing(&self) -> &Arc<SealingKey> {
        &self.sealing
    }

    fn event(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        result: ResultCode,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            actor: ctx.actor.to_string(),
            subject: subject.map(str::to_string),
            event: event.to_string(),
            method: None,
            result,
            source_ip: ctx.source_ip,
            detail: None,
        }
    }

    /// Records a refusal; the refusal itself is what the caller gets back,
    /// even if the audit write fails (that failure is logged).
    async fn refuse<T>(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        err: Error,
    ) -> Result<T> {
        let result = match &err {
            Error::InvalidInput { .. } => ResultCode::FailedInvalidInput,
            Error::NotFound(_) => ResultCode::FailedUserNotFound,
            Error::Conflict(m) if m.contains("already exists") => ResultCode::FailedUserExists,
            Error::Conflict(_) => ResultCode::FailedConcurrentChange,
            Error::Forbidden(_) => ResultCode::FailedNotAllowed,
            Error::RateLimited { .. } => ResultCode::FailedRateLimited,
            // Nothing was decided when the database is down or a bug struck.
            Error::Unavailable(_) | Error::Internal(_) => return Err(err),
        };
        let mut ev = self.event(ctx, event, subject, result);
        ev.detail = Some(err.to_string());
        if let Err(audit_err) = self.store.append_audit(&ev).await {
            tracing::warn!(%audit_err, event, "could not record refusal in the audit log");
        }
        Err(err)
    }

    /// `result`'s value, or its refusal — audited — when it is one.
    async fn checked<T>(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        result: Result<T>,
    ) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => self.refuse(ctx, event, subject, e).await,
        }
    }

    /// The user an action is about; an unknown one is a refusal, audited.
    async fn subject(&self, ctx: &Ctx, event: &str, username: &str) -> Result<User> {
        match self.user(username).await {
            Ok(u) => Ok(u),
            Err(e) => self.refuse(ctx, event, Some(username), e).await,
        }
    }

    async fn user(&self, username: &str) -> Result<User> {
        self.store
            .find_user(username)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    async fn save(
        &self,
        ctx: &Ctx,
        event: &str,
        user: User,
        result: ResultCode,
        detail: Option<String>,
    ) -> Result<User> {
        let mut ev = self.event(ctx, event, Some(&user.username), result);
        ev.detail = detail;
        let username = user.username.clone();
        match self.store.update_user(&user, &ev).await {
            Ok(u) => Ok(u),
            Err(e) => self.refuse(ctx, event, Some(&username), e).await,
        }
    }

    async fn validated_new_user(&self, req: CreateUser) -> Result<NewUser> {
        let username = validate::username(&req.username)?;
        let display_name = validate::display_name(req.display_name.as_deref().unwrap_or(""))?;
        let email = validate::email(req.email.as_deref().unwrap_or(""))?;
        let language = validate::language(req.language.as_deref().unwrap_or(""))?;
        let groups = validate::groups(&req.groups)?;
        let password_hash = match req.password {
            Some(pw) => {
                validate::password(&pw)?;
                Some(self.hasher.hash(pw).await?)
            }
            None => None,
        };
        Ok(NewUser {
            username,
            display_name,
            email,
            groups,
            language,
            password_hash,
        })
    }

    fn apply_patch(user: &mut User, patch: UserPatch, country: &str) -> Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        let country = Some(country);
        if let Some(v) = patch.phone {
            user.phone = validate::phone("phone", &v, country)?;
            changed.push("phone");
        }
        if let Some(v) = patch.phone_extension {
            user.phone_extension = validate::extension(&v)?;
            changed.push("phone_extension");
        }
        if let Some(v) = patch.backup_phone {
            user.backup_phone = validate::phone("backup_phone", &v, country)?;
            changed.push("backup_phone");
        }
        if let Some(v) = patch.mobile_phone {
            user.mobile_phone = validate::phone("mobile_phone", &v, country)?;
            changed.push("mobile_phone");
        }
        if let Some(v) = patch.display_name {
            user.display_name = validate::display_name(&v)?;
            changed.push("display_name");
        }
        if let Some(v) = patch.email {
            user.email = validate::email(&v)?;
            changed.push("email");
        }
        if let Some(v) = patch.groups {
            user.groups = validate::groups(&v)?;
            changed.push("groups");
        }
        if let Some(v) = patch.language {
            user.language = validate::language(&v)?;
            changed.push("language");
        }
        if let Some(v) = patch.default_method {
            user.default_method = if v.trim().is_empty() {
                None
            } else {
                Some(v.parse::<DefaultMethod>()?)
            };
            changed.push("default_method");
        }
        Ok(changed)
    }

    /// Makes the first portal administrator: creates the user when missing
    /// (a password is then required) and grants every permission over all
    /// users. Refused once any administrator exists.
    pub async fn bootstrap_admin(
        &self,
        ctx: &Ctx,
        username: &str,
        password: Option<String>,
    ) -> Result<Admin> {
        const EVENT: &str = "admin.bootstrap";
        if self.store.count_admins().await? > 0 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(username),
                    Error::Conflict(
                        "an administrator already exists; bootstrap only makes the first one"
                            .into(),
                    ),
                )
                .await;
        }
        let user = match self.store.find_user(username).await? {
            Some(u) => {
                if let Some(pw) = password {
                    self.set_password(ctx, &u.username, pw).await?;
                }
                u
            }
            None => {
                if password.is_none() {
                    return self
                        .refuse(
                            ctx,
                            EVENT,
                            Some(username),
                            Error::invalid("password", "a new administrator needs a password"),
                        )
                        .await;
                }
                self.create_user(
                    ctx,
                    CreateUser {
                        username: username.to_string(),
                        password,
                        ..Default::default()
                    },
                )
                .await?
            }
        };
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAdminGranted,
        );
        self.store
            .put_admin(user.id, &Permission::ALL, None, &ev)
            .await?;
        Ok(Admin {
            user_id: user.id,
            username: user.username,
            permissions: Permission::ALL.to_vec(),
            scope_group: None,
        })
    }

    pub async fn admins(&self) -> Result<Vec<Admin>> {
        self.store.list_admins().await
    }

    pub async fn admin_count(&self) -> Result<u64> {
        self.store.count_admins().await
    }
}

#[async_trait]
impl MfaService for Engine {
    async fn ready(&self) -> Result<()> {
        self.store.ping().await
    }

    async fn settings(&self) -> Result<Settings> {
        let rows = self.store.settings_rows().await?;
        let (settings, unknown) = Settings::from_rows(rows)?;
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "ignoring stored settings this version does not know"
            );
        }
        Ok(settings)
    }

    async fn set_setting(
        &self,
        ctx: &Ctx,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Settings> {
        const EVENT: &str = "settings.set";
        let current = self.load_settings().await?;
        let (next, value) = match current.with_value(key, value) {
            Ok(v) => v,
            Err(e) => return self.refuse(ctx, EVENT, None, e).await,
        };
        let def = key_def(key)?;
        let default = Settings::default().to_map().get(def.key).cloned();
        let row = if default.as_ref() == Some(&value) {
            None
        } else {
            Some(value.to_string())
        };
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessSettingChanged);
        ev.detail = Some(format!("{}={}", def.key, value));
        self.store
            .write_settings(&[(def.key.to_string(), row)], &ev)
            .await?;
        self.forget_settings();
        Ok(next)
    }

    async fn reset_setting(&self, ctx: &Ctx, key: &str) -> Result<Settings> {
        let def = match key_def(key) {
            Ok(d) => d,
            Err(e) => return self.refuse(ctx, "settings.reset", None, e).await,
        };
        let default = Settings::default().to_map()[def.key].clone();
        self.set_setting(ctx, def.key, default).await
    }

    async fn create_user(&self, ctx: &Ctx, req: CreateUser) -> Result<User> {
        const EVENT: &str = "user.create";
        let subject = req.username.trim().to_string();
        let new = match self.validated_new_user(req).await {
            Ok(n) => n,
            Err(e) => return self.refuse(ctx, EVENT, Some(&subject), e).await,
        };
        let ev = self.event(
            ctx,
            EVENT,
            Some(&new.username),
            ResultCode::SuccessUserCreated,
        );
        match self.store.create_user(&new, &ev).await {
            Ok(u) => Ok(u),
            Err(e) => self.refuse(ctx, EVENT, Some(&new.username), e).await,
        }
    }

    async fn get_user(&self, _ctx: &Ctx, username: &str) -> Result<User> {
        self.user(username).await
    }

    async fn list_users(&self, _ctx: &Ctx, query: UserQuery) -> Result<Vec<User>> {
        self.store.list_users(&query).await
    }

    async fn update_user(&self, ctx: &Ctx, username: &str, patch: UserPatch) -> Result<User> {
        const EVENT: &str = "user.update";
        let mut user = self.subject(ctx, EVENT, username).await?;
        if patch.is_empty() {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(username),
                    Error::invalid("patch", "nothing to change"),
                )
                .await;
        }
        let country = self.settings_now().await?.phone.default_country;
        let changed = self
            .checked(
                ctx,
                EVENT,
                Some(username),
                Self::apply_patch(&mut user, patch, &country),
            )
            .await?;
        self.save(
            ctx,
            EVENT,
            user,
            ResultCode::SuccessUserUpdated,
            Some(changed.join(",")),
        )
        .await
    }

    async fn set_user_enabled(&self, ctx: &Ctx, username: &str, enabled: bool) -> Result<User> {
        let (event, code) = if enabled {
            ("user.enable", ResultCode::SuccessUserEnabled)
        } else {
            ("user.disable", ResultCode::SuccessUserDisabled)
        };
        let mut user = self.subject(ctx, event, username).await?;
        user.enabled = enabled;
        self.save(ctx, event, user, code, None).await
    }

    async fn unblock_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        const EVENT: &str = "user.unblock";
        let mut user = self.subject(ctx, EVENT, username).await?;
        user.locked_until = None;
        user.fraud_blocked = false;
        self.save(ctx, EVENT, user, ResultCode::SuccessUserUnlocked, None)
            .await
    }

    async fn delete_user(&self, ctx: &Ctx, username: &str) -> Result<()> {
        const EVENT: &str = "user.delete";
        let user = self.subject(ctx, EVENT, username).await?;
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessUserDeleted,
        );
        if self.store.delete_user(user.id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, Some(username), Error::NotFound("user"))
                .await
        }
    }

    async fn set_password(&self, ctx: &Ctx, username: &str, password: String) -> Result<()> {
        const EVENT: &str = "user.password";
        let user = self.subject(ctx, EVENT, username).await?;
        if let Err(e) = validate::password(&password) {
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let hash = self.hasher.hash(password).await?;
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessPasswordChanged,
        );
        self.store.set_password_hash(user.id, &hash, &ev).await
    }

    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome> {
        let (user, matched) = self.primary_check(ctx, username, password).await?;
        Ok(match user {
            Some(u)
                if matched && u.status(self.clock.now()) == crate::user::UserStatus::Enabled =>
            {
                PrimaryOutcome::Accepted(Box::new(u))
            }
            _ => PrimaryOutcome::Rejected,
        })
    }

    async fn audit_events(&self, _ctx: &Ctx, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        self.store.audit_events(&query).await
    }

    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn> {
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
        self.portal_verify(ctx, username, proof, code, answers)
            .await
    }

    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions> {
        self.portal_enrollment_options(ctx, username).await
    }

    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath> {
        self.portal_new_oath_secret(ctx, username).await
    }

    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        self.portal_import_oath_secret(ctx, username, import).await
    }

    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        self.portal_confirm_oath(ctx, username, pending, code).await
    }

    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        self.portal_finish_enrollment(ctx, username, finish).await
    }

    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account> {
        self.portal_account(ctx, username).await
    }

    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()> {
        self.portal_change_pin(ctx, username, pin).await
    }

    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        self.portal_change_answers(ctx, username, answers).await
    }

    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        self.portal_add_oath_token(ctx, username, confirmed, label)
            .await
    }

    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        self.portal_delete_oath_token(ctx, username, token_id).await
    }

    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User> {
        self.portal_change_language(ctx, username, language).await
    }

    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User> {
        self.portal_change_method(ctx, username, method).await
    }

    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        self.portal_start_bypass(ctx, username, seconds).await
    }

    async fn validate(&self, ctx: &Ctx, username: &str, passcode: &str) -> Result<Validation> {
        self.validate_passcode(ctx, username, passcode).await
    }

    async fn start_authentication(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::challenge::Authentication> {
        self.start_challenge(ctx, username).await
    }

    async fn authentication_status(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<crate::challenge::Authentication> {
        self.challenge_status(ctx, id).await
    }

    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<crate::challenge::Authentication> {
        self.answer_challenge(ctx, id, passcode).await
    }

    async fn session_load(&self, id_hash: &str) -> Result<Option<String>> {
        self.sessions_load(id_hash).await
    }

    async fn session_save(&self, id_hash: &str, data: String, ttl_seconds: i64) -> Result<()> {
        self.sessions_save(id_hash, data, ttl_seconds).await
    }

    async fn session_drop(&self, id_hash: &str) -> Result<()> {
        self.store.session_delete(id_hash).await
    }
}

//! `AdminService` for the engine: users, settings, the audit log and
//! administrators. Each operation first asks `authorize`/`subject_for` with
//! the permission it needs; the bodies of tokens, questions and service
//! accounts live in `admin_factors` and `service_accounts`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::guessing::guess_policy;
use super::Engine;
use crate::audit::{AuditEvent, AuditQuery, ResultCode};
use crate::error::{ConflictReason, Error, Result};
use crate::factors::{
    Factor, FactorFailures, OathParams, OathToken, SecurityQuestion, ServiceAccount, HOUR_SECONDS,
};
use crate::ports::UserQuery;
use crate::principal::{Access, Need, Permissions, Scope, Subject};
use crate::service::{Actor, AddedToken, AdminService, CreateUser, Ctx, ServiceAccountSpec};
use crate::settings::{key_def, Settings};
use crate::user::{Admin, Permission, User, UserPatch};
use crate::validate;

const fn perm(p: Permission) -> Need {
    Need::Permission(p)
}

/// The permissions a profile change needs, field by field.
pub(super) fn patch_needs(patch: &UserPatch) -> Vec<Need> {
    let mut needs = Vec::new();
    if patch.display_name.is_some()
        || patch.email.is_some()
        || patch.groups.is_some()
        || patch.language.is_some()
    {
        needs.push(perm(Permission::EditUsers));
    }
    if patch.phone.is_some()
        || patch.phone_extension.is_some()
        || patch.backup_phone.is_some()
        || patch.mobile_phone.is_some()
    {
        needs.push(perm(Permission::ChangePhone));
    }
    if patch.default_method.is_some() {
        needs.push(perm(Permission::ChangeMethod));
    }
    needs
}

/// A group-scoped administrator keeps the users they touch inside their
/// group: a user they create or edit must stay a member of it.
pub(super) fn keeps_in_scope(scope: &Scope, groups: &[String]) -> Result<()> {
    match scope {
        Scope::All => Ok(()),
        Scope::Group(g) if groups.iter().any(|x| x.eq_ignore_ascii_case(g)) => Ok(()),
        Scope::Group(g) => Err(Error::Forbidden(format!(
            "your scope is members of {g}: the user must stay in group {g}"
        ))),
    }
}

#[async_trait]
impl AdminService for Engine {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    async fn settings(&self, ctx: &Ctx) -> Result<Settings> {
        // Administrators only: a portal gets its projection over the link
        // (`PortalService::portal_settings`), never the whole set.
        self.require(ctx, "settings.read", Need::Administer, None)
            .await?;
        self.load_settings().await
    }

    async fn set_setting(
        &self,
        ctx: &Ctx,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Settings> {
        const EVENT: &str = "settings.set";
        validate::identifier("key", key)?;
        self.authorize_global(ctx, EVENT, perm(Permission::ManageSettings))
            .await?;
        let current = self.load_settings().await?;
        let (next, value) = match current.with_value(key, &value).and_then(|v| {
            if v.0.portal.primary_auth == current.portal.primary_auth {
                Ok(v)
            } else {
                self.check_directory_setting(&v.0).map(|()| v)
            }
        }) {
            Ok(v) => v,
            Err(e) => return self.refuse(ctx, EVENT, None, e).await,
        };
        let def = key_def(key)?;
        let default = Settings::default().to_map().get(def.key).cloned();
        let row = if default.as_ref() == Some(&value) {
            None
        } else if def.kind.is_secret() {
            Some(self.seal_setting(def.key, &value)?)
        } else {
            Some(value.to_string())
        };
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessSettingChanged);
        // Old and new value; a secret's audit line says that it changed
        // (`(set)` or empty), never from or to what.
        let shown = next.public_map()[def.key].clone();
        let was = current.public_map()[def.key].clone();
        ev.detail = Some(format!("{}={} (was {})", def.key, shown, was));
        self.store
            .write_settings(&[(def.key.to_string(), row)], &ev)
            .await?;
        self.forget_settings();
        Ok(next)
    }

    async fn reset_setting(&self, ctx: &Ctx, key: &str) -> Result<Settings> {
        const EVENT: &str = "settings.reset";
        validate::identifier("key", key)?;
        self.authorize_global(ctx, EVENT, perm(Permission::ManageSettings))
            .await?;
        let def = match key_def(key) {
            Ok(d) => d,
            Err(e) => return self.refuse(ctx, EVENT, None, e).await,
        };
        let default = Settings::default().to_map()[def.key].clone();
        self.set_setting(ctx, def.key, default).await
    }

    async fn create_user(&self, ctx: &Ctx, req: CreateUser) -> Result<User> {
        const EVENT: &str = "user.create";
        validate::identifier("username", &req.username)?;
        let subject = req.username.trim().to_string();
        self.require(ctx, EVENT, perm(Permission::AddUsers), Some(&subject))
            .await?;
        let scoped = keeps_in_scope(ctx.access.scope(), &req.groups);
        self.checked(ctx, EVENT, Some(&subject), scoped).await?;
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
            Ok(u) => {
                self.welcome(ctx, &u).await?;
                Ok(u)
            }
            Err(e) => self.refuse(ctx, EVENT, Some(&new.username), e).await,
        }
    }

    async fn get_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        validate::username_lookup(username)?;
        self.subject_for(ctx, "user.read", username, Need::Administer)
            .await
    }

    async fn failures(&self, ctx: &Ctx, username: &str) -> Result<Vec<FactorFailures>> {
        validate::username_lookup(username)?;
        let user = self
            .subject_for(ctx, "user.read", username, Need::Administer)
            .await?;
        let settings = self.settings_now().await?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for factor in Factor::ALL {
            let s = self.store.failures(user.id, factor).await?;
            let hour_open = s
                .hour_start
                .is_some_and(|t| t + time::Duration::seconds(HOUR_SECONDS) > now);
            out.push(FactorFailures {
                factor,
                in_a_row: s.streak,
                since_success: s.consecutive,
                this_hour: if hour_open { s.hour_failures } else { 0 },
                paused_until: s.closed_until(now, &guess_policy(&settings, factor)),
            });
        }
        Ok(out)
    }

    async fn list_users(&self, ctx: &Ctx, mut query: UserQuery) -> Result<Vec<User>> {
        const EVENT: &str = "user.list";
        validate::user_query(&query)?;
        self.require(ctx, EVENT, Need::Administer, None).await?;
        if let Scope::Group(g) = ctx.access.scope() {
            match &query.group {
                None => query.group = Some(g.clone()),
                Some(asked) if asked.eq_ignore_ascii_case(g) => {}
                Some(_) => {
                    let e = Error::Forbidden(format!("your scope is members of {g}"));
                    return self.refuse(ctx, EVENT, None, e).await;
                }
            }
        }
        self.store.list_users(&query).await
    }

    async fn update_user(&self, ctx: &Ctx, username: &str, patch: UserPatch) -> Result<User> {
        const EVENT: &str = "user.update";
        validate::username_lookup(username)?;
        let needs = patch_needs(&patch);
        for need in &needs {
            self.require(ctx, EVENT, *need, Some(username)).await?;
        }
        let mut user = self.subject(ctx, EVENT, username).await?;
        for need in needs {
            self.authorize(ctx, EVENT, need, Subject::User(&user))
                .await?;
        }
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
        let scoped = keeps_in_scope(ctx.access.scope(), &user.groups);
        self.checked(ctx, EVENT, Some(username), scoped).await?;
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
        validate::username_lookup(username)?;
        let (event, code) = if enabled {
            ("user.enable", ResultCode::SuccessUserEnabled)
        } else {
            ("user.disable", ResultCode::SuccessUserDisabled)
        };
        let mut user = self
            .subject_for(ctx, event, username, perm(Permission::EnableDisable))
            .await?;
        user.enabled = enabled;
        self.save(ctx, event, user, code, None).await
    }

    async fn unblock_user(&self, ctx: &Ctx, username: &str) -> Result<User> {
        const EVENT: &str = "user.unblock";
        validate::username_lookup(username)?;
        let mut user = self
            .subject_for(ctx, EVENT, username, perm(Permission::Unblock))
            .await?;
        user.locked_until = None;
        user.fraud_blocked = false;
        let user = self
            .save(ctx, EVENT, user, ResultCode::SuccessUserUnlocked, None)
            .await?;
        // Pauses in progress end too. A lock's own records went with the
        // lock in `save`; if this second write fails, a pause outlives the
        // unblock by at most `lockout.auto_unblock_minutes`.
        self.store.clear_failures(user.id).await?;
        Ok(user)
    }

    async fn delete_user(&self, ctx: &Ctx, username: &str) -> Result<()> {
        const EVENT: &str = "user.delete";
        validate::username_lookup(username)?;
        let user = self
            .subject_for(ctx, EVENT, username, perm(Permission::DeleteUsers))
            .await?;
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
        validate::username_lookup(username)?;
        let user = self
            .subject_for(ctx, EVENT, username, perm(Permission::EditUsers))
            .await?;
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

    async fn reset_answers(&self, ctx: &Ctx, username: &str) -> Result<()> {
        validate::username_lookup(username)?;
        self.admin_reset_answers(ctx, username).await
    }

    async fn set_pin(&self, ctx: &Ctx, username: &str, pin: &str) -> Result<()> {
        validate::username_lookup(username)?;
        self.admin_set_pin(ctx, username, pin).await
    }

    async fn grant_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
        reason: Option<&str>,
    ) -> Result<OffsetDateTime> {
        validate::username_lookup(username)?;
        self.admin_grant_bypass(ctx, username, seconds, reason)
            .await
    }

    async fn add_token(
        &self,
        ctx: &Ctx,
        username: &str,
        secret_base32: &str,
        params: OathParams,
        label: &str,
    ) -> Result<AddedToken> {
        validate::username_lookup(username)?;
        self.admin_add_token(ctx, username, secret_base32, params, label)
            .await
    }

    async fn tokens(&self, ctx: &Ctx, username: &str) -> Result<Vec<OathToken>> {
        validate::username_lookup(username)?;
        let user = self
            .subject_for(
                ctx,
                "token.list",
                username,
                perm(Permission::ManageOathTokens),
            )
            .await?;
        self.store.oath_tokens(user.id).await
    }

    async fn delete_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        validate::username_lookup(username)?;
        self.admin_delete_token(ctx, username, token_id).await
    }

    async fn device_activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::mobile::ActivationOffer> {
        const EVENT: &str = "device.activation_code";
        validate::username_lookup(username)?;
        let user = self
            .subject_for(ctx, EVENT, username, perm(Permission::ManageDevices))
            .await?;
        let settings = self.settings_now().await?;
        self.issue_activation_code(ctx, EVENT, &user, &settings)
            .await
    }

    async fn mobile_devices(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<Vec<crate::mobile::DeviceView>> {
        validate::username_lookup(username)?;
        let user = self
            .subject_for(
                ctx,
                "device.list",
                username,
                perm(Permission::ManageDevices),
            )
            .await?;
        self.device_views(&user).await
    }

    async fn remove_mobile_device(&self, ctx: &Ctx, username: &str, device_id: &str) -> Result<()> {
        const EVENT: &str = "device.remove";
        validate::username_lookup(username)?;
        let user = self
            .subject_for(ctx, EVENT, username, perm(Permission::ManageDevices))
            .await?;
        self.remove_device(ctx, EVENT, &user, device_id).await
    }

    async fn resync_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
        code1: &str,
        code2: &str,
    ) -> Result<()> {
        validate::username_lookup(username)?;
        self.admin_resync_token(ctx, username, token_id, code1, code2)
            .await
    }

    async fn import_tokens(
        &self,
        ctx: &Ctx,
        tokens: crate::token_import::ImportedTokens,
        dry_run: bool,
    ) -> Result<crate::token_import::TokenImportReport> {
        self.admin_import_tokens(ctx, tokens, dry_run).await
    }

    async fn inventory(
        &self,
        ctx: &Ctx,
        serial_prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::token_import::InventoryToken>> {
        self.admin_inventory(ctx, serial_prefix, limit).await
    }

    async fn assign_token(
        &self,
        ctx: &Ctx,
        username: &str,
        serial: &str,
        label: &str,
    ) -> Result<AddedToken> {
        validate::username_lookup(username)?;
        self.admin_assign_token(ctx, username, serial, label).await
    }

    async fn delete_inventory_token(&self, ctx: &Ctx, serial: &str) -> Result<()> {
        self.admin_delete_inventory_token(ctx, serial).await
    }

    async fn add_question(
        &self,
        ctx: &Ctx,
        language: &str,
        text: &str,
    ) -> Result<SecurityQuestion> {
        self.admin_add_question(ctx, language, text).await
    }

    async fn questions(&self, ctx: &Ctx, language: Option<&str>) -> Result<Vec<SecurityQuestion>> {
        validate::identifier("language", language.unwrap_or_default())?;
        self.require(ctx, "question.list", Need::Administer, None)
            .await?;
        self.store.questions(language).await
    }

    async fn delete_question(&self, ctx: &Ctx, id: i64) -> Result<()> {
        self.admin_delete_question(ctx, id).await
    }

    async fn move_question(&self, ctx: &Ctx, id: i64, up: bool) -> Result<()> {
        self.admin_move_question(ctx, id, up).await
    }

    async fn audit_events(&self, ctx: &Ctx, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        const EVENT: &str = "audit.read";
        validate::identifier("subject", query.subject.as_deref().unwrap_or_default())?;
        let need = perm(Permission::ViewAuditLog);
        match (&query.subject, ctx.access.scope()) {
            // A group-scoped administrator reads the log of one user in
            // their group at a time.
            (Some(name), Scope::Group(_)) => {
                self.subject_for(ctx, EVENT, name, need).await?;
            }
            _ => self.authorize(ctx, EVENT, need, Subject::Global).await?,
        }
        self.store.audit_events(&query).await
    }

    async fn record_read(&self, ctx: &Ctx, event: &str, subject: Option<&str>) -> Result<()> {
        let ev = self.event(ctx, event, subject, ResultCode::Success);
        self.store.append_audit(&ev).await.map(|_| ())
    }

    async fn bootstrap_admin(
        &self,
        ctx: &Ctx,
        username: &str,
        password: Option<String>,
    ) -> Result<Admin> {
        const EVENT: &str = "admin.bootstrap";
        validate::username_lookup(username)?;
        self.authorize_global(ctx, EVENT, perm(Permission::ManageAdministrators))
            .await?;
        if self.store.count_admins().await? > 0 {
            let err = Error::conflict(
                ConflictReason::BootstrapClosed,
                "an administrator already exists; bootstrap only makes the first one",
            );
            // Audited as what it is, a step no longer allowed: `refuse` would
            // file this conflict under a clash of two changes.
            let mut ev = self.event(ctx, EVENT, Some(username), ResultCode::FailedNotAllowed);
            ev.detail = Some(err.to_string());
            if let Err(audit_err) = self.store.append_audit(&ev).await {
                tracing::warn!(%audit_err, event = EVENT, "could not record refusal in the audit log");
            }
            return Err(err);
        }
        let user = if let Some(u) = self.store.find_user(username).await? {
            if let Some(pw) = password {
                self.set_password(ctx, &u.username, pw).await?;
            }
            u
        } else {
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

    async fn admins(&self, ctx: &Ctx) -> Result<Vec<Admin>> {
        self.require(ctx, "admin.list", Need::Administer, None)
            .await?;
        self.store.list_admins().await
    }

    async fn grant_admin(
        &self,
        ctx: &Ctx,
        username: &str,
        permissions: Permissions,
        scope: Scope,
    ) -> Result<Admin> {
        const EVENT: &str = "admin.grant";
        validate::username_lookup(username)?;
        validate::identifier("group", scope.group().unwrap_or_default())?;
        let manage = perm(Permission::ManageAdministrators);
        self.authorize_global(ctx, EVENT, manage).await?;
        let user = self.subject(ctx, EVENT, username).await?;
        if permissions.is_empty() {
            let e = Error::invalid("permission", "grant at least one permission (or --all)");
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let beyond: Vec<&str> = permissions
            .to_vec()
            .into_iter()
            .filter(|p| !ctx.access.permissions().contains(*p))
            .map(Permission::as_str)
            .collect();
        if !beyond.is_empty() {
            let e = Error::Forbidden(format!(
                "you cannot grant what you do not hold: {}",
                beyond.join(", ")
            ));
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAdminGranted,
        );
        ev.detail = Some(format!(
            "permissions {}, scope {scope}",
            permissions.describe()
        ));
        self.store
            .put_admin(user.id, &permissions.to_vec(), scope.group(), &ev)
            .await?;
        Ok(Admin {
            user_id: user.id,
            username: user.username,
            permissions: permissions.to_vec(),
            scope_group: scope.group().map(str::to_string),
        })
    }

    async fn revoke_admin(&self, ctx: &Ctx, username: &str) -> Result<()> {
        const EVENT: &str = "admin.revoke";
        validate::username_lookup(username)?;
        let manage = perm(Permission::ManageAdministrators);
        self.authorize_global(ctx, EVENT, manage).await?;
        let user = self.subject(ctx, EVENT, username).await?;
        let admins = self.store.list_admins().await?;
        let keepers = |a: &&Admin| {
            a.scope_group.is_none() && a.permissions.contains(&Permission::ManageAdministrators)
        };
        let is_last = admins.iter().filter(keepers).count() == 1
            && admins.iter().filter(keepers).any(|a| a.user_id == user.id);
        if is_last {
            let e = Error::conflict(
                ConflictReason::LastAdministrator,
                "this is the last administrator who can manage administrators; grant another first",
            );
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAdminRevoked,
        );
        if self.store.delete_admin(user.id, &ev).await? {
            Ok(())
        } else {
            let e = Error::NotFound("administrator");
            self.refuse(ctx, EVENT, Some(&user.username), e).await
        }
    }

    async fn admin_count(&self, _ctx: &Ctx) -> Result<u64> {
        // Says only whether bootstrap is still open; no permission needed.
        self.store.count_admins().await
    }

    async fn act_as(&self, ctx: &Ctx, username: &str) -> Result<Ctx> {
        const EVENT: &str = "admin.act_as";
        validate::username_lookup(username)?;
        if !ctx.access.is_full_admin() {
            let e = Error::Forbidden("only a full administrator may act as another".into());
            return self.refuse(ctx, EVENT, Some(username), e).await;
        }
        let admins = self.store.list_admins().await?;
        let Some(admin) = admins
            .into_iter()
            .find(|a| a.username.eq_ignore_ascii_case(username.trim()))
        else {
            let e = Error::NotFound("administrator");
            return self.refuse(ctx, EVENT, Some(username), e).await;
        };
        let user = self.subject(ctx, EVENT, &admin.username).await?;
        if user.status(self.clock.now()) != crate::user::UserStatus::Enabled {
            let e = Error::Forbidden(format!("{} cannot sign in now", user.username));
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        Ok(Ctx {
            actor: Actor::Admin(admin.username),
            via: Some(ctx.actor.clone()),
            access: Access::administrator(
                admin.permissions.into_iter().collect::<Permissions>(),
                Scope::from_group(admin.scope_group),
            ),
            source_ip: ctx.source_ip,
            guess_source: ctx.guess_source,
        })
    }

    async fn create_service_account(
        &self,
        ctx: &Ctx,
        name: &str,
        spec: ServiceAccountSpec,
    ) -> Result<(ServiceAccount, String)> {
        validate::identifier("name", name)?;
        validate::identifier("group", spec.scope.group().unwrap_or_default())?;
        self.service_account_create(ctx, name, spec).await
    }

    async fn rotate_service_account(&self, ctx: &Ctx, name: &str) -> Result<String> {
        validate::identifier("name", name)?;
        self.service_account_rotate(ctx, name).await
    }

    async fn delete_service_account(&self, ctx: &Ctx, name: &str) -> Result<()> {
        validate::identifier("name", name)?;
        self.service_account_delete(ctx, name).await
    }

    async fn service_accounts(&self, ctx: &Ctx) -> Result<Vec<ServiceAccount>> {
        self.authorize_global(
            ctx,
            "sdk.account_list",
            perm(Permission::ManageServiceAccounts),
        )
        .await?;
        self.store.service_accounts().await
    }
}

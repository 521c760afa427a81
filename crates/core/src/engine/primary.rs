//! The primary factor: a password, checked by the directory the setting
//! `portal.primary_auth` names — Twofold's own users (`local`), LDAP /
//! Active Directory, or a RADIUS server. Every front-end's password check
//! (portal sign-in, the SDK's `primary`, SDK administrators) comes here.

use std::sync::Arc;

use crate::audit::ResultCode;
use crate::directory::DirectoryHealth;
use crate::display::escape_control;
use crate::error::{Error, Result};
use crate::factors::Factor;
use crate::ports::{Directory, PasswordCheck};
use crate::service::Ctx;
use crate::settings::{PrimaryAuth, Settings};
use crate::user::User;
use crate::validate;

use super::{guessing, Engine};

/// The directories this node can use. Local always; LDAP and RADIUS when
/// this process is configured for them (`[ldap]`, `[radius]`).
pub(super) struct Directories {
    local: Arc<dyn Directory>,
    ldap: Option<Arc<dyn Directory>>,
    radius: Option<Arc<dyn Directory>>,
}

impl Directories {
    pub(super) fn new(local: Arc<dyn Directory>) -> Self {
        Directories {
            local,
            ldap: None,
            radius: None,
        }
    }

    pub(super) fn add(&mut self, directory: Arc<dyn Directory>) {
        match directory.kind() {
            PrimaryAuth::Local => self.local = directory,
            PrimaryAuth::Ldap => self.ldap = Some(directory),
            PrimaryAuth::Radius => self.radius = Some(directory),
        }
    }

    pub(super) fn get(&self, kind: PrimaryAuth) -> Option<&Arc<dyn Directory>> {
        match kind {
            PrimaryAuth::Local => Some(&self.local),
            PrimaryAuth::Ldap => self.ldap.as_ref(),
            PrimaryAuth::Radius => self.radius.as_ref(),
        }
    }
}

const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a person sees when the directory cannot answer: the same words
/// whatever went wrong (the details go to the log and the audit line).
const DIRECTORY_DOWN: &str = "the directory that checks passwords cannot be reached";

impl Engine {
    /// Whether this node can use `kind` (its configuration is present).
    pub fn has_directory(&self, kind: PrimaryAuth) -> bool {
        self.directories.get(kind).is_some()
    }

    /// The setting `portal.primary_auth` may only name a directory this
    /// node is configured for: otherwise every sign-in would fail.
    pub(super) fn check_directory_setting(&self, settings: &Settings) -> Result<()> {
        let kind = settings.portal.primary_auth;
        if self.has_directory(kind) {
            return Ok(());
        }
        let name = PrimaryAuth::as_str(kind);
        Err(Error::invalid(
            "portal.primary_auth",
            format!(
                "{name} needs the [{name}] section in the configuration of every node (TWOFOLD_{}_...); this node has none",
                name.to_ascii_uppercase()
            ),
        ))
    }

    /// The directory the settings name.
    fn directory_for(&self, settings: &Settings) -> Result<Arc<dyn Directory>> {
        let kind = settings.portal.primary_auth;
        self.directories.get(kind).cloned().ok_or_else(|| {
            Error::Unavailable(format!(
                "portal.primary_auth is {}, but this node has no [{}] configuration",
                PrimaryAuth::as_str(kind),
                PrimaryAuth::as_str(kind)
            ))
        })
    }

    /// The primary directory's health when it is not the local one.
    pub async fn directory_health(&self) -> Result<Option<DirectoryHealth>> {
        let settings = self.settings_now().await?;
        let kind = settings.portal.primary_auth;
        if kind == PrimaryAuth::Local {
            return Ok(None);
        }
        // Within `/readyz`'s own deadline, which a slow directory must not
        // make the database's answer miss.
        let outcome = match self.directory_for(&settings) {
            Ok(d) => tokio::time::timeout(PROBE_TIMEOUT, d.probe())
                .await
                .unwrap_or_else(|_| Err(Error::Unavailable("no answer within 2 seconds".into()))),
            Err(e) => Err(e),
        };
        Ok(Some(DirectoryHealth {
            kind,
            reachable: outcome.is_ok(),
            error: outcome.err().map(|e| e.to_string()),
        }))
    }

    /// A sign-in name as the directory knows it (`EXAMPLE\alice`,
    /// `alice@example.org` → `alice` under Active Directory), for the
    /// passcode front-ends (`validate`, `authenticate`), whose clients send
    /// what people type. Only asked when no local user has the name as
    /// typed and it has a domain part, so the hot path stays local.
    pub(super) async fn local_name(&self, login: &str) -> Result<String> {
        let typed = login.trim();
        if !(typed.contains('\\') || typed.contains('@')) {
            return Ok(typed.to_string());
        }
        let settings = self.settings_now().await?;
        if settings.portal.primary_auth != PrimaryAuth::Ldap
            || self.store.find_user(typed).await?.is_some()
        {
            return Ok(typed.to_string());
        }
        Ok(self
            .directory_for(&settings)?
            .resolve(typed)
            .await?
            .unwrap_or_else(|| typed.to_string()))
    }

    /// Checks a password (the primary factor) within every bound: the
    /// person's address, the user's password record — or, for a name that
    /// does not exist, a phantom record slowed alike. Returns the user (if
    /// one exists) and whether the password matched; `RateLimited` while
    /// guessing is paused; `Unavailable` when the directory cannot answer
    /// (not counted against the user). Unknown users cost what known ones
    /// cost. Audits the outcome.
    pub(super) async fn primary_check(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<(Option<User>, bool)> {
        const EVENT: &str = "primary.password";
        self.rate_limit(ctx)?;
        if password.len() > validate::PASSWORD_MAX_BYTES
            || username.len() > 4 * validate::USERNAME_MAX
        {
            self.hasher.verify_dummy(String::new()).await;
            let mut ev = self.event(ctx, EVENT, None, ResultCode::FailedInvalidInput);
            ev.detail = Some("oversized credentials".into());
            self.store.append_audit(&ev).await?;
            return Ok((None, false));
        }
        let settings = self.settings_now().await?;
        let typed = username.trim();
        let directory = match self.directory_for(&settings) {
            Ok(d) => d,
            Err(e) => return self.directory_down(ctx, EVENT, typed, &e).await,
        };
        let resolved = match directory.resolve(typed).await {
            Ok(r) => r,
            Err(e) => return self.directory_down(ctx, EVENT, typed, &e).await,
        };
        let name = resolved.as_deref().unwrap_or(typed);
        let policy = guessing::guess_policy(&settings, Factor::Password);
        let phantom = validate::username_key(name);
        let user = match &resolved {
            Some(n) => self.store.find_user(n).await?,
            None => None,
        };
        match &user {
            Some(u) => {
                self.gate(ctx, EVENT, u, Factor::Password, &settings)
                    .await?;
            }
            None => {
                if let Some(until) = self
                    .phantoms
                    .closed_until(&phantom, self.clock.now(), &policy)
                {
                    return self.closed(ctx, EVENT, name, Factor::Password, until).await;
                }
            }
        }
        let check = match directory
            .check_password(name, user.as_ref(), password)
            .await
        {
            Ok(c) => c,
            Err(e) => return self.directory_down(ctx, EVENT, name, &e).await,
        };
        let matched = check.accepted();
        let mut user = user;
        match &user {
            Some(u) if matched => {
                self.count_success(ctx, EVENT, u, Factor::Password, &settings)
                    .await?;
            }
            Some(u) => {
                self.count_failure(ctx, EVENT, u, Factor::Password, &settings)
                    .await?;
            }
            None => {
                let now = self.clock.now();
                self.source_throttle.fail(ctx.guess_source, now);
                self.phantoms.fail(&phantom, now, &policy);
            }
        }
        if let (
            Some(u),
            PasswordCheck::Accepted {
                groups: Some(groups),
            },
        ) = (&user, &check)
        {
            user = Some(self.groups_from_directory(u, groups).await);
        }
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
            .map_or_else(|| escape_control(name).into_owned(), |u| u.username.clone());
        let method = (directory.kind() != PrimaryAuth::Local)
            .then(|| PrimaryAuth::as_str(directory.kind()).to_string());
        let ev = self.event_with_method(ctx, EVENT, Some(&subject), method, code);
        self.store.append_audit(&ev).await?;
        Ok((user, matched))
    }

    /// The directory did not answer: audited, logged, and a clear error for
    /// the caller — not a wrong password, so nobody's failures count.
    async fn directory_down<T>(
        &self,
        ctx: &Ctx,
        event: &str,
        name: &str,
        error: &Error,
    ) -> Result<T> {
        tracing::warn!(error = %error, "primary directory unavailable");
        let mut ev = self.event(
            ctx,
            event,
            Some(&escape_control(name)),
            ResultCode::FailedDirectoryUnavailable,
        );
        ev.detail = Some(escape_control(&error.to_string()).into_owned());
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::error!(error = %e, "audit write failed");
        }
        Err(Error::Unavailable(DIRECTORY_DOWN.into()))
    }

    /// Brings the local record's groups in line with the directory's at a
    /// successful sign-in, so administrator scopes and `sdk.admin_group`
    /// follow the directory. A failure here does not fail the sign-in.
    async fn groups_from_directory(&self, user: &User, groups: &[String]) -> User {
        let mut wanted: Vec<String> = groups.to_vec();
        wanted.sort_by_key(|g| g.to_lowercase());
        wanted.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let mut have = user.groups.clone();
        have.sort_by_key(|g| g.to_lowercase());
        if have.len() == wanted.len()
            && have
                .iter()
                .zip(&wanted)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
        {
            return user.clone();
        }
        let mut next = user.clone();
        next.groups = wanted;
        let ctx = Ctx::system_job("directory");
        let mut ev = self.event(
            &ctx,
            "user.groups_from_directory",
            Some(&user.username),
            ResultCode::SuccessUserUpdated,
        );
        ev.detail = Some(escape_control(&format!("groups={}", next.groups.join(","))).into_owned());
        match self.store.update_user(&next, &ev).await {
            Ok(updated) => updated,
            Err(e) => {
                tracing::warn!(error = %e, user = %user.username, "could not update groups from the directory");
                user.clone()
            }
        }
    }
}

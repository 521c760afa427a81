//! The engine: every business rule, behind the service traits (`Verifier`,
//! `PortalService`, `AdminService`), each implemented in its own file.
//! Handlers and CLI commands parse, call one trait method, and render.
//! Every operation asks `authorize` (or `subject_for`) first.

mod admin;
mod admin_factors;
mod challenges;
mod console;
mod dev_outbox;
pub mod devices;
mod guessing;
mod import;
pub(crate) mod mobile_app;
mod mobile_service;
mod oath_check;
mod passed_sessions;
mod phone_hooks;
pub mod phone_texts;
mod portal;
mod portal_service;
mod primary;
mod reports;
mod retention;
pub use retention::Pruned;
mod service_accounts;
mod sessions;
mod sync;
pub mod telephony;
mod token_inventory;
mod validate_passcode;
mod verifier;
pub mod waiting;
mod welcome;

pub use devices::activation_uri;
pub use mobile_service::signed_message as mobile_signed_message;
pub use oath_check::PasscodeCheck;
pub use validate_passcode::{ValidateReason, Validation};

use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

use crate::audit::{NewAuditEvent, ResultCode};
use crate::clock::Clock;
use crate::directory::LocalDirectory;
use crate::error::{ConflictReason, Error, Result};
use crate::password::SecretHasher;
use crate::ports::{
    CacheGenerations, Delivery, Directory, Store, SERVICE_ACCOUNT_CHANGED, SETTINGS_CHANGED,
};
use crate::principal::{Need, Subject};
use crate::sealing::SealingKey;
use crate::service::{CreateUser, Ctx};
use crate::settings::{key_def, Settings};
use crate::telemetry::{Decision, Telemetry};
use crate::throttle::{Phantoms, Throttle};
use crate::user::{DefaultMethod, NewUser, User, UserPatch};
use crate::validate;

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: SecretHasher,
    sealing: Arc<SealingKey>,
    /// Primary authentication: the directories this node can use; the
    /// setting `portal.primary_auth` picks one.
    directories: primary::Directories,
    /// Failed end-user secrets per person's address (`Ctx::guess_source`).
    source_throttle: Throttle,
    /// Failed SDK credentials per connecting address.
    caller_throttle: Throttle,
    /// Password records of usernames that do not exist (see `throttle`).
    phantoms: Phantoms,
    /// What this node caches of rarely changing data read on every request
    /// (the settings, the service accounts callers authenticate as), and
    /// how it learns of changes made elsewhere (see `Caches`).
    caches: Arc<Caches>,
    directory_cache: std::sync::Mutex<service_accounts::DirectoryCache>,
    /// Mail (SMTP), when configured: the welcome mail.
    mailer: Option<Arc<dyn Delivery>>,
    /// Calls and text messages (a Twilio-compatible provider), when configured.
    telephony: Option<Arc<dyn Delivery>>,
    /// Callers waiting for a challenge's decision or a device's request.
    waiting: Arc<waiting::Waiting>,
    /// Push wake-ups of mobile-app devices (ntfy, webhook).
    push: Option<Arc<dyn Delivery>>,
    /// SHA-256 of the TLS certificate this server presents, for the
    /// activation URI (an app pins it).
    tls_fingerprint: Option<[u8; 32]>,
    /// Calls and text messages go to the development outbox.
    outbox: bool,
    /// The generic HTTP SMS gateway's adapter, used for text messages while
    /// the setting `sms_gateway.url` is set.
    gateway: Option<Arc<dyn Delivery>>,
    /// Where providers reach the webhooks (`public_url`), when configured.
    public_url: Option<String>,
    /// The address the server listens on, as a URL (set once it is bound):
    /// the public URL of last resort.
    listen_url: std::sync::OnceLock<String>,
    /// Counts every decision for `GET /metrics`, when metrics are on.
    telemetry: Option<Arc<dyn Telemetry>>,
}

/// How often at most a node reads the caches' generation counters: the
/// bound on how long a change another process made (the CLI on the same
/// SQLite file, a node whose notification was lost) may go unseen.
const GENERATION_CHECK: time::Duration = time::Duration::seconds(1);

/// The node's caches of the settings and of service accounts, kept right
/// across nodes two ways. Every change commits with a notification
/// (`ports::SETTINGS_CHANGED`, `ports::SERVICE_ACCOUNT_CHANGED`; PostgreSQL
/// NOTIFY sent by the changing transaction), which a task per engine hears
/// and drops the matching entries — at once, on every node. And every
/// change bumps the cache's generation counter in the same transaction,
/// which a node reads at most once per `GENERATION_CHECK`: what a lost
/// notification (a listener reconnecting) or another process on one SQLite
/// file (which has no notifications) changed is seen within that bound.
/// The node that makes a change drops its own entries itself, at once.
#[derive(Default)]
struct Caches {
    generations: std::sync::Mutex<Generations>,
    settings: std::sync::Mutex<SettingsCache>,
    accounts: std::sync::Mutex<service_accounts::AccountCache>,
    /// The task hearing the change notifications has been started.
    listening: std::sync::OnceLock<()>,
}

/// The store's generation counters as last read, and when.
#[derive(Default)]
struct Generations {
    seen: CacheGenerations,
    read_at: Option<time::OffsetDateTime>,
}

#[derive(Default)]
struct SettingsCache {
    /// The settings and the generation counter read before loading them.
    current: Option<(i64, Arc<Settings>)>,
    /// Bumped by every drop, so a load that began before one does not
    /// put back what it read (possibly before the change).
    epoch: u64,
}

fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Caches {
    /// A change announced by the store (`topic`, from any node).
    fn changed(&self, topic: &str) {
        if topic == SETTINGS_CHANGED {
            self.forget_settings();
        } else if let Some(key) = topic.strip_prefix(SERVICE_ACCOUNT_CHANGED) {
            locked(&self.accounts).forget(Some(key));
        }
    }

    /// Drops everything: notifications were missed.
    fn forget_all(&self) {
        self.forget_settings();
        locked(&self.accounts).forget(None);
    }

    fn forget_settings(&self) {
        let mut cache = locked(&self.settings);
        cache.current = None;
        cache.epoch += 1;
    }
}

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
            directories: primary::Directories::new(Arc::new(LocalDirectory::new(
                store.clone(),
                hasher.clone(),
            ))),
            store,
            clock,
            hasher,
            sealing,
            source_throttle: Throttle::new(SOURCE_FAILURES, SOURCE_WINDOW),
            caller_throttle: Throttle::new(SOURCE_FAILURES, SOURCE_WINDOW),
            phantoms: Phantoms::default(),
            caches: Arc::default(),
            directory_cache: std::sync::Mutex::new(service_accounts::DirectoryCache::default()),
            mailer: None,
            telephony: None,
            waiting: Arc::default(),
            push: None,
            tls_fingerprint: None,
            outbox: false,
            gateway: None,
            public_url: None,
            listen_url: std::sync::OnceLock::new(),
            telemetry: None,
        }
    }

    /// The same engine telling `telemetry` of every audited decision.
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// The same engine sending mail through `mailer` (SMTP).
    pub fn with_mailer(mut self, mailer: Arc<dyn Delivery>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The settings, as an owned copy of `settings_shared`. Kept for the
    /// call sites that move fields out of it or expect a `Settings` (in
    /// files being changed by others at the time); new code and hot paths
    /// take `settings_shared`, which costs no copy.
    pub async fn settings_now(&self) -> Result<Settings> {
        Ok(Settings::clone(&*self.settings_shared().await?))
    }

    /// The settings, shared: read from the store only after a change (see
    /// `Caches`), not per request.
    pub async fn settings_shared(&self) -> Result<Arc<Settings>> {
        let seen = self.generations(false).await?;
        let epoch = {
            let cache = locked(&self.caches.settings);
            match &cache.current {
                Some((generation, s)) if *generation == seen.settings => return Ok(s.clone()),
                _ => cache.epoch,
            }
        };
        // The counter read before the rows: a change committing in between
        // leaves the copy tagged older, so the next check reloads it.
        let generation = self.generations(true).await?.settings;
        let fresh = Arc::new(self.load_settings().await?);
        let mut cache = locked(&self.caches.settings);
        if cache.epoch == epoch {
            cache.current = Some((generation, fresh.clone()));
        }
        Ok(fresh)
    }

    /// After this node changed a setting: its next read reloads them, and
    /// the other nodes hear of the change from the store.
    fn forget_settings(&self) {
        self.caches.forget_settings();
    }

    /// The store's cache generation counters: as read within the last
    /// `GENERATION_CHECK`, or read now (`fresh`, or when older). Starts
    /// hearing change notifications first, so none committed after the
    /// read is missed.
    async fn generations(&self, fresh: bool) -> Result<CacheGenerations> {
        self.listen_for_changes();
        let now = self.clock.now();
        {
            let mut g = locked(&self.caches.generations);
            // A clock set back counts as expired, not as years of validity.
            let recent = g
                .read_at
                .is_some_and(|at| at <= now && now - at < GENERATION_CHECK);
            if recent && !fresh {
                return Ok(g.seen);
            }
            if g.read_at.is_some() && !fresh {
                // Claimed: concurrent requests go on with the counters read
                // last while this one reads, rather than all reading at once.
                g.read_at = Some(now);
            }
        }
        let read = self.store.cache_generations().await?;
        let mut g = locked(&self.caches.generations);
        g.seen = read;
        g.read_at = Some(now);
        Ok(read)
    }

    /// Starts (once) the task that drops cached entries as the store
    /// announces changes, from this node or any other. It ends with the
    /// engine (its caches) or the store's channel.
    fn listen_for_changes(&self) {
        if self.caches.listening.get().is_some() || self.caches.listening.set(()).is_err() {
            return;
        }
        let mut rx = self.store.subscribe();
        let caches = Arc::downgrade(&self.caches);
        tokio::spawn(async move {
            loop {
                let topic = rx.recv().await;
                let Some(caches) = caches.upgrade() else {
                    return;
                };
                match topic {
                    Ok(topic) => caches.changed(&topic),
                    // Some were missed, which ones is unknown.
                    Err(RecvError::Lagged(_)) => caches.forget_all(),
                    // No more notifications: the generation counters
                    // still bound the staleness.
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// A secret setting's stored row: its JSON sealed with the sealing key
    /// (bound to the key's name, so a row cannot be moved to another key),
    /// as a JSON string.
    fn seal_setting(&self, key: &str, value: &serde_json::Value) -> Result<String> {
        let sealed = self
            .sealing
            .seal(value.to_string().as_bytes(), &setting_label(key))?;
        Ok(serde_json::Value::String(sealed).to_string())
    }

    /// The JSON of a sealed secret setting's row.
    fn open_setting(&self, key: &str, row: &str) -> Result<String> {
        let sealed: String = serde_json::from_str(row)
            .map_err(|_| Error::Internal(format!("stored secret {key} is not sealed")))?;
        let plain = self.sealing.open(&sealed, &setting_label(key))?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| Error::Internal(format!("stored secret {key} is not text")))
    }

    async fn load_settings(&self) -> Result<Settings> {
        let rows = self.store.settings_rows().await?;
        let rows = rows
            .into_iter()
            .map(|(key, text)| {
                let secret = key_def(&key).is_ok_and(|d| d.kind.is_secret());
                let text = if secret {
                    self.open_setting(&key, &text)?
                } else {
                    text
                };
                Ok((key, text))
            })
            .collect::<Result<Vec<_>>>()?;
        let (settings, unknown) = Settings::from_rows(rows)?;
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "ignoring stored settings this version does not know"
            );
        }
        Ok(settings)
    }

    /// The same engine able to use `directory` (LDAP, RADIUS) when the
    /// setting `portal.primary_auth` names its kind.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directories.add(directory);
        self
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

    /// An audit event of a decision, counted for the metrics: every event
    /// is built here, so every decision is counted once.
    fn event(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        result: ResultCode,
    ) -> NewAuditEvent {
        self.event_with_method(ctx, event, subject, None, result)
    }

    /// `event` about a method: the method is counted too.
    fn event_with_method(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        method: Option<String>,
        result: ResultCode,
    ) -> NewAuditEvent {
        let mut ev = self.draft_event(ctx, event, subject, result);
        ev.method = method;
        self.count(ctx, &ev);
        ev
    }

    /// An event that is written only if a check passes (the success of a
    /// code, handed to `check_passcode`): not counted here, or every wrong
    /// code would count as a success too; `count` it once it is written.
    fn draft_event(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        result: ResultCode,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            actor: ctx.actor.to_string(),
            via: ctx.via.as_ref().map(ToString::to_string),
            subject: subject.map(str::to_string),
            event: event.to_string(),
            method: None,
            result,
            source_ip: ctx.source_ip,
            detail: None,
        }
    }

    /// Tells the telemetry (if any) of the decision `ev` records.
    fn count(&self, ctx: &Ctx, ev: &NewAuditEvent) {
        if let Some(t) = &self.telemetry {
            t.decision(&Decision {
                front_end: crate::telemetry::front_end(ctx),
                event: &ev.event,
                method: ev.method.as_deref(),
                result: ev.result,
            });
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
            Error::Conflict {
                reason: ConflictReason::Exists,
                ..
            } => ResultCode::FailedUserExists,
            Error::Conflict { .. } => ResultCode::FailedConcurrentChange,
            Error::Forbidden(_) => ResultCode::FailedNotAllowed,
            Error::Unauthenticated {
                reason: crate::error::AuthFailure::ActivationCode,
                ..
            } => ResultCode::FailedActivationCode,
            Error::Unauthenticated { .. } => ResultCode::FailedForgedRequest,
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

    /// Refuses — audited — unless `ctx` may do `need` to `subject`.
    async fn authorize(
        &self,
        ctx: &Ctx,
        event: &str,
        need: Need,
        subject: Subject<'_>,
    ) -> Result<()> {
        match ctx.access.authorize(need, subject) {
            Ok(()) => Ok(()),
            Err(e) => {
                let name = match subject {
                    Subject::User(u) => Some(u.username.as_str()),
                    Subject::Global => None,
                };
                self.refuse(ctx, event, name, e).await
            }
        }
    }

    /// `authorize` for what concerns every user (settings, questions,
    /// accounts, administrators): a group scope never reaches that far.
    async fn authorize_global(&self, ctx: &Ctx, event: &str, need: Need) -> Result<()> {
        self.authorize(ctx, event, need, Subject::Global).await
    }

    /// Refuses — audited — unless `ctx` holds `need` at all, before anything
    /// is looked up: a caller without it learns nothing about who exists.
    async fn require(&self, ctx: &Ctx, event: &str, need: Need, named: Option<&str>) -> Result<()> {
        if ctx.access.allows(need) {
            return Ok(());
        }
        self.refuse(
            ctx,
            event,
            named,
            Error::Forbidden(format!("not allowed: this needs {need}")),
        )
        .await
    }

    /// The user an administrative action is about, once `ctx` may do `need`
    /// to them (permission, then existence, then scope; each refusal audited).
    async fn subject_for(
        &self,
        ctx: &Ctx,
        event: &str,
        username: &str,
        need: Need,
    ) -> Result<User> {
        self.require(ctx, event, need, Some(username)).await?;
        let user = self.subject(ctx, event, username).await?;
        self.authorize(ctx, event, need, Subject::User(&user))
            .await?;
        Ok(user)
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
        // Phones and method by the rules an edit applies.
        let country = self.settings_shared().await?.phone.default_country.clone();
        let phone = |field: &str, v: Option<String>| -> Result<Option<String>> {
            Ok(match v {
                Some(v) => validate::phone(field, &v, Some(&country))?,
                None => None,
            })
        };
        let phone_number = phone("phone", req.phone)?;
        let backup_phone = phone("backup_phone", req.backup_phone)?;
        let mobile_phone = phone("mobile_phone", req.mobile_phone)?;
        let phone_extension = match req.phone_extension {
            Some(v) => validate::extension(&v)?,
            None => None,
        };
        let default_method = match req.default_method.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => Some(m.parse::<DefaultMethod>()?),
            _ => None,
        };
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
            phone: phone_number,
            phone_extension,
            backup_phone,
            mobile_phone,
            default_method,
            ..NewUser::default()
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
}

/// The sealing label of a secret setting's row.
fn setting_label(key: &str) -> String {
    format!("setting:{key}")
}

//! Who may use the Web Service SDK: service accounts (a name and a
//! 256-bit secret shown once), or — as the original product allowed — an
//! account of the primary directory that belongs to the administrators'
//! group named by the setting `sdk.admin_group`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

use crate::audit::ResultCode;
use crate::display::escape_control;
use crate::error::{Error, Result};
use crate::factors::ServiceAccount;
use crate::principal::{Access, Need, Permissions, Role, Scope};
use crate::service::{Actor, CallerAuthenticator, Ctx, ServiceAccountSpec};
use crate::user::Permission;
use crate::validate;

use super::{locked, Engine};

/// A directory account's password is checked with argon2 once, then trusted
/// for this long, so an application calling the SDK in a loop does not pay
/// a password hash per call.
const DIRECTORY_CACHE: Duration = Duration::from_mins(1);
/// A service account's last use is written when the stored one is older
/// than this: enough to tell a live integration from a forgotten one,
/// without a database write on every SDK request.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);
const SECRET_PREFIX: &str = "tfs_";

fn secret_hash(secret: &str) -> String {
    hex_lower(&Sha256::digest(secret.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a `String` cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

fn account_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::invalid("name", "must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::invalid("name", "use letters, digits and . _ - only"));
    }
    Ok(name.to_string())
}

#[derive(Default)]
pub(super) struct DirectoryCache {
    entries: HashMap<[u8; 32], Instant>,
}

/// The most service accounts a node keeps cached: far more than any
/// installation has; past it, further accounts are read per request.
const MAX_CACHED_ACCOUNTS: usize = 4096;

/// Service accounts callers authenticated as, by name key
/// (`validate::username_key`), with their secret hashes, so an SDK request
/// costs no database read. Kept right across nodes as `Caches` says. Only
/// accounts that exist are cached: names sprayed by an attacker cost a
/// read, as before, and no memory.
#[derive(Default)]
pub(super) struct AccountCache {
    entries: HashMap<String, (ServiceAccount, String)>,
    /// The store's generation counter read before the entries were.
    generation: i64,
    /// Bumped by every drop, so a read that began before one does not put
    /// back what it found (possibly before the change).
    epoch: u64,
}

impl AccountCache {
    /// Drops the account with name key `key`, or every account.
    pub(super) fn forget(&mut self, key: Option<&str>) {
        match key {
            Some(key) => {
                self.entries.remove(key);
            }
            None => self.entries.clear(),
        }
        self.epoch += 1;
    }
}

/// Permissions and scope belong to `admin` accounts only: saying them for
/// another role is a mistake worth telling, not something to drop silently.
fn check_spec(spec: &ServiceAccountSpec) -> Result<()> {
    if spec.role != Role::Admin && (!spec.permissions.is_empty() || spec.scope != Scope::All) {
        return Err(Error::invalid(
            "role",
            format!(
                "permissions and scope apply to admin accounts only, not {}",
                spec.role
            ),
        ));
    }
    if spec.role == Role::Admin && spec.permissions.is_empty() {
        return Err(Error::invalid(
            "permission",
            "an admin account needs at least one permission (or all)",
        ));
    }
    Ok(())
}

const MANAGE: Need = Need::Permission(Permission::ManageServiceAccounts);

impl Engine {
    pub(super) async fn service_account_create(
        &self,
        ctx: &Ctx,
        name: &str,
        spec: ServiceAccountSpec,
    ) -> Result<(ServiceAccount, String)> {
        const EVENT: &str = "sdk.account_create";
        self.authorize_global(ctx, EVENT, MANAGE).await?;
        let name = self
            .checked(ctx, EVENT, Some(name), account_name(name))
            .await?;
        self.checked(ctx, EVENT, Some(&name), check_spec(&spec))
            .await?;
        let secret = new_secret();
        let mut ev = self.event(ctx, EVENT, Some(&name), ResultCode::Success);
        ev.detail = Some(match spec.role {
            Role::Admin => format!(
                "role admin, permissions {}, scope {}",
                spec.permissions.describe(),
                spec.scope
            ),
            role => format!("role {role}"),
        });
        match self
            .store
            .create_service_account(&name, &secret_hash(&secret), &spec, &ev)
            .await
        {
            Ok(a) => {
                self.forget_account(&name);
                Ok((a, secret))
            }
            Err(e) => self.refuse(ctx, EVENT, Some(&name), e).await,
        }
    }

    pub(super) async fn service_account_rotate(&self, ctx: &Ctx, name: &str) -> Result<String> {
        const EVENT: &str = "sdk.account_rotate";
        self.authorize_global(ctx, EVENT, MANAGE).await?;
        let secret = new_secret();
        let ev = self.event(ctx, EVENT, Some(name), ResultCode::Success);
        if self
            .store
            .rotate_service_account(name, &secret_hash(&secret), &ev)
            .await?
        {
            // The old secret stops working here at once; other nodes drop
            // the account when the store's notification reaches them.
            self.forget_account(name);
            Ok(secret)
        } else {
            self.refuse(ctx, EVENT, Some(name), Error::NotFound("service account"))
                .await
        }
    }

    pub(super) async fn service_account_delete(&self, ctx: &Ctx, name: &str) -> Result<()> {
        const EVENT: &str = "sdk.account_delete";
        self.authorize_global(ctx, EVENT, MANAGE).await?;
        let ev = self.event(ctx, EVENT, Some(name), ResultCode::Success);
        if self.store.delete_service_account(name, &ev).await? {
            self.forget_account(name);
            Ok(())
        } else {
            self.refuse(ctx, EVENT, Some(name), Error::NotFound("service account"))
                .await
        }
    }
}

#[async_trait::async_trait]
impl CallerAuthenticator for Engine {
    async fn authenticate_caller(
        &self,
        name: &str,
        secret: &str,
        source_ip: Option<std::net::IpAddr>,
    ) -> Result<Ctx> {
        let ctx = Ctx::new(Actor::System, Access::none(), source_ip);
        if let Some(retry_after_seconds) = self.caller_throttle.check(source_ip, self.clock.now()) {
            return Err(Error::RateLimited {
                retry_after_seconds,
            });
        }
        // No account is named with control characters: no lookup for them.
        if name.len() <= 256 && secret.len() <= 1024 && validate::identifier("name", name).is_ok() {
            if let Some((account, hash)) = self.service_account_cached(name).await? {
                if bool::from(secret_hash(secret).as_bytes().ct_eq(hash.as_bytes())) {
                    self.record_use(&account).await;
                    let access = Access::service_account(
                        account.role,
                        account.permissions.into_iter().collect::<Permissions>(),
                        Scope::from_group(account.scope_group),
                    );
                    return Ok(
                        Ctx::new(Actor::ServiceAccount(account.name), access, source_ip)
                            .relaying_unlocated(),
                    );
                }
                // A wrong secret costs what an unknown name costs (a
                // directory password check), so timing does not tell
                // which service accounts exist.
                self.hasher.verify_dummy(secret.to_string()).await;
            } else if let Some(actor) = self.directory_admin(name, secret, &ctx).await? {
                // The original's administrators' group could do everything.
                let access = Access::administrator(Permissions::all(), Scope::All);
                return Ok(Ctx::new(actor, access, source_ip));
            }
        }
        self.caller_throttle.fail(source_ip, self.clock.now());
        // Escaped: PostgreSQL cannot store NUL, and the log is read on terminals.
        let shown = escape_control(name.get(..64).unwrap_or(name));
        let mut ev = self.event(&ctx, "sdk.auth", Some(&shown), ResultCode::FailedNotAllowed);
        ev.detail = Some("invalid SDK credentials".into());
        self.store.append_audit(&ev).await?;
        Err(Error::Forbidden("invalid credentials".into()))
    }
}

impl Engine {
    /// The account named `name` (any case) and its secret hash: from this
    /// node's cache, or read from the store and cached when it exists.
    async fn service_account_cached(&self, name: &str) -> Result<Option<(ServiceAccount, String)>> {
        let seen = self.generations(false).await?.service_accounts;
        let key = validate::username_key(name);
        let epoch = {
            let mut cache = locked(&self.caches.accounts);
            if cache.generation != seen {
                // Changed by another process, and which account is unknown.
                cache.forget(None);
                cache.generation = seen;
            }
            if let Some(hit) = cache.entries.get(&key) {
                return Ok(Some(hit.clone()));
            }
            cache.epoch
        };
        let found = self.store.service_account(name).await?;
        if let Some(found) = &found {
            let mut cache = locked(&self.caches.accounts);
            if cache.epoch == epoch && cache.entries.len() < MAX_CACHED_ACCOUNTS {
                cache.entries.insert(key, found.clone());
            }
        }
        Ok(found)
    }

    /// After this node changed the account `name`: dropped here at once.
    fn forget_account(&self, name: &str) {
        locked(&self.caches.accounts).forget(Some(&validate::username_key(name)));
    }

    /// How many service accounts this node has cached (for tests: unknown
    /// names must not grow it).
    pub fn cached_service_accounts(&self) -> usize {
        locked(&self.caches.accounts).entries.len()
    }

    /// Notes that `account` (just authenticated, possibly from the cache)
    /// was used, unless it was within the last minute. The store's write
    /// is conditional, so nodes racing on one account write once; the
    /// cached copy learns the time it wrote, or — when another node wrote
    /// first — is dropped, so the next call reads the stored time instead
    /// of trying again on every call. A failure is logged and swallowed:
    /// bookkeeping must not turn a good call away.
    async fn record_use(&self, account: &ServiceAccount) {
        let now = self.clock.now();
        let stale_before = now - LAST_USED_GRANULARITY;
        if account.last_used_at.is_some_and(|t| t >= stale_before) {
            return;
        }
        let key = validate::username_key(&account.name);
        match self
            .store
            .record_service_account_use(account.id, now, stale_before)
            .await
        {
            Ok(true) => {
                let mut cache = locked(&self.caches.accounts);
                if let Some((cached, _)) = cache.entries.get_mut(&key) {
                    if cached.id == account.id {
                        cached.last_used_at = Some(now);
                    }
                }
            }
            Ok(false) => locked(&self.caches.accounts).forget(Some(&key)),
            Err(e) => tracing::warn!(
                account = %account.name,
                error = %e,
                "could not record a service account's last use"
            ),
        }
    }

    /// A primary-directory account in the administrators' group.
    async fn directory_admin(
        &self,
        name: &str,
        password: &str,
        ctx: &Ctx,
    ) -> Result<Option<Actor>> {
        let settings = self.settings_shared().await?;
        let key: [u8; 32] =
            Sha256::digest(format!("{}\0{password}", name.trim().to_lowercase()).as_bytes()).into();
        let cached = self
            .directory_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(&key)
            .is_some_and(|at| at.elapsed() < DIRECTORY_CACHE);
        // Only names of users Twofold has are checked against the
        // directory; others cost a hash, as before any directory.
        let local = self.local_name(name).await?;
        let Some(known) = self.store.find_user(&local).await? else {
            self.hasher.verify_dummy(password.to_string()).await;
            return Ok(None);
        };
        let user = if cached {
            Some(known)
        } else {
            // The directory's answer also refreshes the user's groups.
            let (user, matched) = self
                .primary_check(ctx, &known.username, password.to_string())
                .await?;
            user.filter(|_| matched)
        };
        let Some(user) = user else {
            return Ok(None);
        };
        let in_group = user
            .groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(&settings.sdk.admin_group));
        if !in_group || user.status(self.clock.now()) != crate::user::UserStatus::Enabled {
            return Ok(None);
        }
        let mut cache = self
            .directory_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.entries.len() > 10_000 {
            cache.entries.retain(|_, at| at.elapsed() < DIRECTORY_CACHE);
        }
        cache.entries.insert(key, Instant::now());
        Ok(Some(Actor::Admin(user.username)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_distinct() {
        let a = new_secret();
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == 4 + 43);
        assert_ne!(a, new_secret());
        assert_eq!(secret_hash("x").len(), 64);
    }

    #[test]
    fn names() {
        assert_eq!(account_name(" vpn-1 ").unwrap(), "vpn-1");
        for bad in ["", "a b", "ü", &"a".repeat(65)] {
            assert!(account_name(bad).is_err(), "{bad}");
        }
    }
}

//! LDAP / Active Directory (crate `ldap3`, TLS with rustls on ring).
//!
//! The service account (`bind_dn`) searches, on a bounded pool of
//! connections bound as it; a person's password is checked by binding as
//! the DN the search found, on a fresh connection of its own that is closed
//! right after (no pooled connection is ever bound as a person). Every
//! value typed at a sign-in is escaped (RFC 4515) before it enters a
//! filter, and no DN is ever built from input; a sign-in name matching
//! more than one entry is nobody.
//!
//! Every network step is bounded by `timeout`, and so is each call as a
//! whole (`resolve`, `check_password`, `lookup`, `probe`) except `search`,
//! which pages through the directory (`timeout` per page). An unreachable,
//! slow or failing directory, or a refused service account, answers
//! `Error::Unavailable`; passwords are never logged.

mod text;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ldap3::adapters::PagedResults;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use tokio::sync::{Semaphore, SemaphorePermit};
use twofold_core::ports::{Directory, DirectoryEntry, PasswordCheck};
use twofold_core::settings::PrimaryAuth;
use twofold_core::user::User;
use twofold_core::{Error, Result};
use zeroize::Zeroizing;

use text::{escape_filter_value, first_rdn_value};

/// Which schema the directory speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Sign in as `user`, `DOMAIN\user` or `user@upn`; `sAMAccountName`,
    /// `userPrincipalName`, groups from `memberOf`.
    ActiveDirectory,
    /// `uid`; groups from `memberOf` or a group search.
    OpenLdap,
}

/// `[ldap]` of the process configuration.
#[derive(Clone)]
pub struct LdapConfig {
    /// `ldap://host:port` (with `starttls`) or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS (required unless the
    /// host is a loopback address).
    pub starttls: bool,
    /// PEM CA certificates trusted for the directory's certificate; the
    /// system's roots when unset.
    pub ca_file: Option<PathBuf>,
    /// The service account that searches.
    pub bind_dn: String,
    pub bind_password: Zeroizing<String>,
    pub base_dn: String,
    pub preset: Preset,
    /// A filter with a `{username}` placeholder, replacing the preset's.
    pub user_filter: Option<String>,
    /// The attribute holding group DNs (default `memberOf`).
    pub group_attribute: Option<String>,
    /// Connect and per-operation timeout.
    pub timeout: Duration,
    /// Service-account connections kept open.
    pub pool_size: usize,
}

/// Entries a `search` asks for per page.
const PAGE_SIZE: i32 = 500;

/// The attributes read of a person (plus the group attribute).
const PERSON_ATTRIBUTES: &[&str] = &[
    "uid",
    "sAMAccountName",
    "displayName",
    "cn",
    "mail",
    "preferredLanguage",
    "telephoneNumber",
    "mobile",
];

/// Groups of every kind OpenLDAP keeps (and Active Directory's `group`).
const GROUP_CLASSES: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                             (objectClass=posixGroup)(objectClass=group))";

/// The directory behind `portal.primary_auth = "ldap"`.
pub struct LdapDirectory {
    url: String,
    /// The connection settings (timeout, StartTLS, rustls configuration).
    settings: LdapConnSettings,
    bind_dn: String,
    bind_password: Zeroizing<String>,
    base_dn: String,
    preset: Preset,
    user_filter: Option<String>,
    group_attribute: String,
    timeout: Duration,
    /// A DN under `base_dn` nobody has: an unknown person's password is
    /// tried against it so that the answer takes as long as for a real one.
    decoy_dn: String,
    pool: Pool,
}

/// Names the directory; never the password.
impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .field("preset", &self.preset)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool.size)
            .finish_non_exhaustive()
    }
}

/// Service-account connections: at most `pool_size` in use at once, idle
/// ones kept for the next operation.
struct Pool {
    permits: Semaphore,
    size: usize,
    idle: Mutex<Vec<Ldap>>,
}

/// A connection taken from the pool, bound as the service account.
struct Pooled<'a> {
    ldap: Ldap,
    /// Taken from `idle` (it may have gone stale), not opened just now.
    reused: bool,
    _permit: SemaphorePermit<'a>,
}

/// One search by the service account.
struct Query<'a> {
    base: &'a str,
    scope: Scope,
    filter: &'a str,
    attrs: Vec<String>,
    /// `Some(n)`: one plain search returning at most `n` entries (more is
    /// reported as it is: ambiguous); `None`: paged, everything.
    limit: Option<i32>,
}

/// How a service-account operation failed.
enum Failure {
    /// The connection is broken or timed out: drop it, maybe retry.
    Connection(String),
    /// The directory answered with an error; the connection is fine.
    Answer(Error),
}

impl LdapDirectory {
    /// Checks the configuration (no connection is made): an `ldap://` or
    /// `ldaps://` URL, TLS unless the host is a loopback address, a
    /// `{username}` in `user_filter`, a readable `ca_file`.
    pub fn new(config: LdapConfig) -> Result<LdapDirectory> {
        let LdapConfig {
            url,
            starttls,
            ca_file,
            bind_dn,
            bind_password,
            base_dn,
            preset,
            user_filter,
            group_attribute,
            timeout,
            pool_size,
        } = config;
        let (scheme, host) = text::url_scheme_and_host(url.trim()).ok_or_else(|| {
            Error::invalid(
                "ldap.url",
                format!(
                    "{url:?} is not an LDAP URL: use ldaps://host[:port] or \
                     ldap://host[:port] with starttls"
                ),
            )
        })?;
        let tls = scheme == "ldaps" || starttls;
        if !tls && !text::is_loopback(&host) {
            return Err(Error::invalid(
                "ldap.starttls",
                format!(
                    "{} would send passwords in clear text: set starttls = true or use ldaps:// \
                     (plain ldap:// is allowed only to a loopback address such as 127.0.0.1)",
                    url.trim()
                ),
            ));
        }
        if bind_dn.trim().is_empty() {
            return Err(Error::invalid(
                "ldap.bind_dn",
                "the service account's DN is required (it searches the directory)",
            ));
        }
        if bind_password.is_empty() {
            return Err(Error::invalid(
                "ldap.bind_password",
                "the service account's password is required (an empty password is an \
                 unauthenticated, anonymous bind)",
            ));
        }
        if base_dn.trim().is_empty() {
            return Err(Error::invalid("ldap.base_dn", "the base DN is required"));
        }
        if let Some(filter) = &user_filter {
            if !filter.contains("{username}") {
                return Err(Error::invalid(
                    "ldap.user_filter",
                    "must contain the placeholder {username}",
                ));
            }
            let sample = wrap_filter(&filter.replace("{username}", "x"));
            if ldap3::parse_filter(&sample).is_err() {
                return Err(Error::invalid(
                    "ldap.user_filter",
                    format!("{filter:?} is not an LDAP filter (RFC 4515)"),
                ));
            }
        }
        let group_attribute = group_attribute.unwrap_or_else(|| "memberOf".to_string());
        if !text::valid_attribute(&group_attribute) {
            return Err(Error::invalid(
                "ldap.group_attribute",
                format!("{group_attribute:?} is not an attribute name"),
            ));
        }
        if pool_size == 0 {
            return Err(Error::invalid("ldap.pool_size", "must be at least 1"));
        }
        if timeout.is_zero() {
            return Err(Error::invalid("ldap.timeout", "must be more than zero"));
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(starttls && scheme == "ldap");
        if tls {
            settings = settings.set_config(tls_config(ca_file.as_deref())?);
        }
        let base_dn = base_dn.trim().to_string();
        Ok(LdapDirectory {
            url: url.trim().to_string(),
            settings,
            bind_dn: bind_dn.trim().to_string(),
            bind_password,
            decoy_dn: format!("cn=twofold-no-such-person,{base_dn}"),
            base_dn,
            preset,
            user_filter,
            group_attribute,
            timeout,
            pool: Pool {
                permits: Semaphore::new(pool_size),
                size: pool_size,
                idle: Mutex::new(Vec::new()),
            },
        })
    }

    fn username_attribute(&self) -> &'static str {
        match self.preset {
            Preset::ActiveDirectory => "sAMAccountName",
            Preset::OpenLdap => "uid",
        }
    }

    /// Who the preset counts as a person (computer accounts, whose
    /// `sAMAccountName` ends in `$`, are not).
    fn person_filter(&self) -> &'static str {
        match self.preset {
            Preset::ActiveDirectory => {
                "(&(objectClass=person)(sAMAccountName=*)(!(sAMAccountName=*$)))"
            }
            Preset::OpenLdap => "(&(uid=*)(|(objectClass=person)(objectClass=posixAccount)))",
        }
    }

    /// The filter finding the person a sign-in name stands for; `None` when
    /// the name cannot be anyone's.
    fn login_filter(&self, login: &str) -> Option<String> {
        let login = login.trim();
        if login.is_empty() || login.contains('\0') {
            return None;
        }
        let (name, by_upn) = match self.preset {
            Preset::ActiveDirectory => match login.split_once('\\') {
                // DOMAIN\user: the domain part is the NetBIOS name.
                Some((_, user)) => (user.trim(), false),
                None => (login, true),
            },
            Preset::OpenLdap => (login, false),
        };
        if name.is_empty() {
            return None;
        }
        let value = escape_filter_value(name);
        if let Some(filter) = &self.user_filter {
            return Some(wrap_filter(&filter.replace("{username}", &value)));
        }
        Some(match self.preset {
            Preset::ActiveDirectory if by_upn => format!(
                "(&{}(|(sAMAccountName={value})(userPrincipalName={value})))",
                self.person_filter()
            ),
            Preset::ActiveDirectory => {
                format!("(&{}(sAMAccountName={value}))", self.person_filter())
            }
            Preset::OpenLdap => format!("(&{}(uid={value}))", self.person_filter()),
        })
    }

    fn person_attributes(&self) -> Vec<String> {
        let mut attrs: Vec<String> = PERSON_ATTRIBUTES.iter().map(ToString::to_string).collect();
        attrs.push(self.group_attribute.clone());
        attrs
    }

    /// The one person `login` stands for: `None` when nobody matches, or
    /// more than one entry does (ambiguous — never the first of them).
    async fn find(&self, login: &str) -> Result<Option<SearchEntry>> {
        let Some(filter) = self.login_filter(login) else {
            return Ok(None);
        };
        let mut entries = self
            .service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Subtree,
                filter: &filter,
                attrs: self.person_attributes(),
                limit: Some(2),
            })
            .await?;
        if entries.len() > 1 {
            tracing::warn!(
                url = %self.url,
                login,
                "LDAP: more than one entry matches this sign-in name; treated as unknown"
            );
            return Ok(None);
        }
        Ok(entries
            .pop()
            .filter(|e| !e.dn.is_empty() && first_value(e, self.username_attribute()).is_some()))
    }

    /// The group names of a person: the first RDN value of each DN in the
    /// group attribute; for OpenLDAP without `memberOf`, of each group
    /// listing the person (`member`, `uniqueMember`, `memberUid`).
    async fn groups_of(&self, entry: &SearchEntry) -> Result<Vec<String>> {
        let dns = values(entry, &self.group_attribute);
        if !dns.is_empty() || self.preset != Preset::OpenLdap {
            return Ok(group_names(dns));
        }
        let dn = escape_filter_value(&entry.dn);
        let mut filter = format!(
            "(|(&(objectClass=groupOfNames)(member={dn}))\
               (&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))"
        );
        if let Some(uid) = first_value(entry, "uid") {
            let _ = write!(
                filter,
                "(&(objectClass=posixGroup)(memberUid={}))",
                escape_filter_value(uid)
            );
        }
        filter.push(')');
        let groups = self
            .service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Subtree,
                filter: &filter,
                attrs: vec!["cn".to_string()],
                limit: None,
            })
            .await?;
        Ok(group_names(groups.iter().map(|g| g.dn.as_str())))
    }

    fn to_entry(&self, entry: &SearchEntry, groups: Vec<String>) -> Option<DirectoryEntry> {
        Some(DirectoryEntry {
            username: first_value(entry, self.username_attribute())?.to_string(),
            display_name: first_value(entry, "displayName")
                .or_else(|| first_value(entry, "cn"))
                .map(str::to_string),
            email: first_value(entry, "mail").map(str::to_string),
            groups,
            language: first_value(entry, "preferredLanguage").map(str::to_string),
            phone: first_value(entry, "telephoneNumber").map(str::to_string),
            mobile_phone: first_value(entry, "mobile").map(str::to_string),
            dn: entry.dn.clone(),
        })
    }

    /// Whether `password` opens `dn`: a simple bind on a fresh connection,
    /// closed afterwards. invalidCredentials (49) is `false`; anything
    /// else that is not success is `Unavailable`.
    async fn bind_as(&self, dn: &str, password: &str) -> Result<bool> {
        let mut ldap = self
            .connect()
            .await
            .map_err(|e| self.unavailable("cannot connect", &e))?;
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await;
        let _ = tokio::time::timeout(self.timeout, ldap.unbind()).await;
        match result {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == 49 => Ok(false),
            Ok(r) => {
                Err(self.unavailable("the bind to check a password failed", &LdapError::from(r)))
            }
            Err(e) => Err(self.unavailable("the bind to check a password failed", &e)),
        }
    }

    /// A new connection (TCP, then StartTLS or TLS), bounded by `timeout`.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        let (conn, ldap) = LdapConnAsync::with_settings(self.settings.clone(), &self.url).await?;
        let url = self.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url = %url, error = %e, "LDAP connection closed");
            }
        });
        Ok(ldap)
    }

    /// A connection bound as the service account: an idle one from the
    /// pool, or a new one.
    async fn checkout(&self) -> Result<Pooled<'_>> {
        let permit = tokio::time::timeout(self.timeout, self.pool.permits.acquire())
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "LDAP directory {}: all {} service-account connections stayed busy for {:?}",
                    self.url, self.pool.size, self.timeout
                ))
            })?
            .map_err(|_| Error::Internal("LDAP pool closed".into()))?;
        loop {
            let idle = self
                .pool
                .idle
                .lock()
                .map(|mut idle| idle.pop())
                .ok()
                .flatten();
            match idle {
                Some(mut ldap) => {
                    if !ldap.is_closed() {
                        return Ok(Pooled {
                            ldap,
                            reused: true,
                            _permit: permit,
                        });
                    }
                }
                None => break,
            }
        }
        let mut ldap = self
            .connect()
            .await
            .map_err(|e| self.unavailable("cannot connect", &e))?;
        match ldap
            .with_timeout(self.timeout)
            .simple_bind(&self.bind_dn, &self.bind_password)
            .await
        {
            Ok(r) if r.rc == 0 => Ok(Pooled {
                ldap,
                reused: false,
                _permit: permit,
            }),
            Ok(r) => {
                let message = if r.rc == 49 {
                    format!(
                        "the service account {} was refused: invalid credentials (check \
                         ldap.bind_dn and ldap.bind_password)",
                        self.bind_dn
                    )
                } else {
                    format!(
                        "the service account {} could not bind: {}",
                        self.bind_dn,
                        LdapError::from(r)
                    )
                };
                tracing::error!(url = %self.url, "LDAP: {message}");
                Err(Error::Unavailable(format!(
                    "LDAP directory {}: {message}",
                    self.url
                )))
            }
            Err(e) => Err(self.unavailable("the service account's bind failed", &e)),
        }
    }

    fn checkin(&self, conn: Pooled<'_>) {
        if let Ok(mut idle) = self.pool.idle.lock() {
            if idle.len() < self.pool.size {
                idle.push(conn.ldap);
            }
        }
    }

    /// Runs a search as the service account; a pooled connection found
    /// broken is replaced once.
    async fn service_search(&self, query: &Query<'_>) -> Result<Vec<SearchEntry>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.checkout().await?;
            match self.search_on(&mut conn.ldap, query).await {
                Ok(entries) => {
                    self.checkin(conn);
                    return Ok(entries);
                }
                Err(Failure::Answer(e)) => {
                    self.checkin(conn);
                    return Err(e);
                }
                Err(Failure::Connection(message)) => {
                    if conn.reused && attempt == 1 {
                        tracing::debug!(url = %self.url, error = %message, "LDAP: stale pooled connection replaced");
                        continue;
                    }
                    tracing::warn!(url = %self.url, error = %message, "LDAP search failed");
                    return Err(Error::Unavailable(format!(
                        "LDAP directory {}: {message}",
                        self.url
                    )));
                }
            }
        }
    }

    async fn search_on(
        &self,
        ldap: &mut Ldap,
        query: &Query<'_>,
    ) -> std::result::Result<Vec<SearchEntry>, Failure> {
        let t = self.timeout;
        let timed_out = || Failure::Connection(format!("no answer within {t:?}"));
        let (entries, result) = if let Some(limit) = query.limit {
            let search = ldap
                .with_search_options(SearchOptions::new().sizelimit(limit))
                .with_timeout(t)
                .search(query.base, query.scope, query.filter, query.attrs.clone());
            let result = tokio::time::timeout(t, search)
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| self.classify(e))?;
            (
                result
                    .0
                    .into_iter()
                    .filter(|e| !e.is_ref() && !e.is_intermediate())
                    .map(SearchEntry::construct)
                    .collect::<Vec<_>>(),
                result.1,
            )
        } else {
            let start = ldap.with_timeout(t).streaming_search_with(
                PagedResults::new(PAGE_SIZE),
                query.base,
                query.scope,
                query.filter,
                query.attrs.clone(),
            );
            let mut stream = tokio::time::timeout(t, start)
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| self.classify(e))?;
            let mut entries = Vec::new();
            loop {
                match tokio::time::timeout(t, stream.next()).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Err(e)) => return Err(self.classify(e)),
                    Ok(Ok(None)) => break,
                    Ok(Ok(Some(e))) if e.is_ref() || e.is_intermediate() => {}
                    Ok(Ok(Some(e))) => entries.push(SearchEntry::construct(e)),
                }
            }
            let result = tokio::time::timeout(t, stream.finish())
                .await
                .map_err(|_| timed_out())?;
            (entries, result)
        };
        match result.rc {
            // success; referral (outside what we search).
            0 | 10 => Ok(entries),
            // sizeLimitExceeded of a limited search: the caller sees the
            // extra entry.
            4 if query.limit.is_some() => Ok(entries),
            4 => Err(Failure::Answer(Error::Unavailable(format!(
                "LDAP directory {}: the directory's size limit stopped the search after {} \
                 entries; allow the service account more (OpenLDAP: limits ... size=unlimited)",
                self.url,
                entries.len()
            )))),
            32 => Err(Failure::Answer(Error::Unavailable(format!(
                "LDAP directory {}: {} does not exist (check ldap.base_dn)",
                self.url, query.base
            )))),
            _ => {
                let e = LdapError::from(result);
                Err(Failure::Answer(self.unavailable("search failed", &e)))
            }
        }
    }

    /// An `LdapError` of an operation: a result code is the directory's
    /// answer (the connection is fine); anything else broke the connection.
    fn classify(&self, e: LdapError) -> Failure {
        match e {
            LdapError::LdapResult { result } if result.rc == 32 => {
                Failure::Answer(Error::Unavailable(format!(
                    "LDAP directory {}: {} does not exist (check ldap.base_dn)",
                    self.url, self.base_dn
                )))
            }
            LdapError::LdapResult { .. } => Failure::Answer(self.unavailable("search failed", &e)),
            LdapError::FilterParsing => {
                Failure::Answer(Error::invalid("filter", "not an LDAP filter (RFC 4515)"))
            }
            other => Failure::Connection(other.to_string()),
        }
    }

    fn unavailable(&self, what: &str, e: &LdapError) -> Error {
        tracing::warn!(url = %self.url, error = %e, "LDAP: {what}");
        Error::Unavailable(format!("LDAP directory {}: {what}: {e}", self.url))
    }

    /// `fut`, or `Unavailable` once `timeout` has passed.
    async fn bounded<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(url = %self.url, timeout = ?self.timeout, "LDAP: no answer in time");
                Err(Error::Unavailable(format!(
                    "LDAP directory {}: no answer within {:?}",
                    self.url, self.timeout
                )))
            })
    }

    /// The DNs of the groups `group` names: a DN as it is, or the groups
    /// under the base DN whose `cn` it is.
    async fn group_dns(&self, group: &str) -> Result<Vec<String>> {
        let group = group.trim();
        if group.is_empty() {
            return Err(Error::invalid("group", "a group name is required"));
        }
        if group.contains('=') {
            return Ok(vec![group.to_string()]);
        }
        let filter = format!("(&{GROUP_CLASSES}(cn={}))", escape_filter_value(group));
        let found = self
            .service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Subtree,
                filter: &filter,
                attrs: vec!["1.1".to_string()],
                limit: None,
            })
            .await?;
        if found.is_empty() {
            return Err(Error::invalid(
                "group",
                format!(
                    "the directory has no group named {group:?} under {}",
                    self.base_dn
                ),
            ));
        }
        Ok(found.into_iter().map(|g| g.dn).collect())
    }

    /// For OpenLDAP entries without `memberOf`: every group's DN by the
    /// member DNs (lower case) and `memberUid`s it lists.
    async fn group_map(&self) -> Result<GroupMap> {
        let groups = self
            .service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Subtree,
                filter: GROUP_CLASSES,
                attrs: vec![
                    "member".to_string(),
                    "uniqueMember".to_string(),
                    "memberUid".to_string(),
                ],
                limit: None,
            })
            .await?;
        let mut map = GroupMap::default();
        for group in groups {
            for member in values(&group, "member")
                .into_iter()
                .chain(values(&group, "uniqueMember"))
            {
                map.by_dn
                    .entry(normalize_dn(member))
                    .or_default()
                    .push(group.dn.clone());
            }
            for uid in values(&group, "memberUid") {
                map.by_uid
                    .entry(uid.to_lowercase())
                    .or_default()
                    .push(group.dn.clone());
            }
        }
        Ok(map)
    }
}

#[derive(Default)]
struct GroupMap {
    by_dn: HashMap<String, Vec<String>>,
    by_uid: HashMap<String, Vec<String>>,
}

#[async_trait]
impl Directory for LdapDirectory {
    fn kind(&self) -> PrimaryAuth {
        PrimaryAuth::Ldap
    }

    async fn resolve(&self, login: &str) -> Result<Option<String>> {
        self.bounded(async {
            Ok(self
                .find(login)
                .await?
                .and_then(|e| first_value(&e, self.username_attribute()).map(str::to_string)))
        })
        .await
    }

    async fn check_password(
        &self,
        username: &str,
        _local: Option<&User>,
        password: String,
    ) -> Result<PasswordCheck> {
        let password = Zeroizing::new(password);
        // An empty password would make an unauthenticated bind, which
        // succeeds (RFC 4513 §5.1.2); NUL cannot be in a real password.
        if password.is_empty() || password.contains('\0') {
            return Ok(PasswordCheck::Rejected);
        }
        self.bounded(async {
            let Some(entry) = self.find(username).await? else {
                // The same round trip as for a real person, bound to fail.
                let _ = self.bind_as(&self.decoy_dn, &password).await?;
                return Ok(PasswordCheck::Rejected);
            };
            if !self.bind_as(&entry.dn, &password).await? {
                return Ok(PasswordCheck::Rejected);
            }
            let groups = self.groups_of(&entry).await?;
            Ok(PasswordCheck::Accepted {
                groups: Some(groups),
            })
        })
        .await
    }

    async fn lookup(&self, username: &str) -> Result<Option<DirectoryEntry>> {
        self.bounded(async {
            let Some(entry) = self.find(username).await? else {
                return Ok(None);
            };
            let groups = self.groups_of(&entry).await?;
            Ok(self.to_entry(&entry, groups))
        })
        .await
    }

    async fn search(
        &self,
        filter: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<DirectoryEntry>> {
        let mut combined = String::from("(&");
        match &self.user_filter {
            Some(user_filter) => {
                combined.push_str(&wrap_filter(&user_filter.replace("{username}", "*")));
            }
            None => combined.push_str(self.person_filter()),
        }
        if let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) {
            let filter = wrap_filter(filter);
            if ldap3::parse_filter(&filter).is_err() {
                return Err(Error::invalid(
                    "filter",
                    format!("{filter:?} is not an LDAP filter (RFC 4515)"),
                ));
            }
            combined.push_str(&filter);
        }
        let group_dns = match group {
            Some(group) => Some(self.group_dns(group).await?),
            None => None,
        };
        // Active Directory keeps memberOf itself: ask the server. OpenLDAP
        // may not (no memberof overlay): compare below.
        if let (Some(dns), Preset::ActiveDirectory) = (&group_dns, self.preset) {
            combined.push_str("(|");
            for dn in dns {
                let _ = write!(
                    combined,
                    "({}={})",
                    self.group_attribute,
                    escape_filter_value(dn)
                );
            }
            combined.push(')');
        }
        combined.push(')');
        let found = self
            .service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Subtree,
                filter: &combined,
                attrs: self.person_attributes(),
                limit: None,
            })
            .await?;
        let needs_map = self.preset == Preset::OpenLdap
            && found
                .iter()
                .any(|e| values(e, &self.group_attribute).is_empty());
        let map = if needs_map {
            Some(self.group_map().await?)
        } else {
            None
        };
        let wanted: Option<Vec<String>> = group_dns
            .as_ref()
            .map(|dns| dns.iter().map(|d| normalize_dn(d)).collect());
        let mut people = Vec::with_capacity(found.len());
        for entry in &found {
            let mut dns: Vec<String> = values(entry, &self.group_attribute)
                .into_iter()
                .map(str::to_string)
                .collect();
            if dns.is_empty() {
                if let Some(map) = &map {
                    dns.extend(
                        map.by_dn
                            .get(&normalize_dn(&entry.dn))
                            .into_iter()
                            .flatten()
                            .cloned(),
                    );
                    if let Some(uid) = first_value(entry, "uid") {
                        dns.extend(
                            map.by_uid
                                .get(&uid.to_lowercase())
                                .into_iter()
                                .flatten()
                                .cloned(),
                        );
                    }
                }
            }
            if let (Some(wanted), Preset::OpenLdap) = (&wanted, self.preset) {
                if !dns.iter().any(|d| wanted.contains(&normalize_dn(d))) {
                    continue;
                }
            }
            if let Some(person) = self.to_entry(entry, group_names(dns.iter().map(String::as_str)))
            {
                people.push(person);
            }
        }
        people.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(people)
    }

    async fn probe(&self) -> Result<()> {
        self.bounded(async {
            self.service_search(&Query {
                base: &self.base_dn,
                scope: Scope::Base,
                filter: "(objectClass=*)",
                attrs: vec!["1.1".to_string()],
                limit: Some(1),
            })
            .await
            .map(|_| ())
        })
        .await
    }
}

/// The rustls configuration (ring): the CAs of `ca_file`, else the public
/// web roots.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::invalid(
                "ldap.ca_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let mut count = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                Error::invalid(
                    "ldap.ca_file",
                    format!("{} is not valid PEM: {e}", path.display()),
                )
            })?;
            roots.add(cert).map_err(|e| {
                Error::invalid(
                    "ldap.ca_file",
                    format!("{}: unusable CA certificate: {e}", path.display()),
                )
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(Error::invalid(
                "ldap.ca_file",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Internal(format!("TLS configuration: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `filter` in parentheses (`uid=x` → `(uid=x)`).
fn wrap_filter(filter: &str) -> String {
    let filter = filter.trim();
    if filter.starts_with('(') {
        filter.to_string()
    } else {
        format!("({filter})")
    }
}

/// The values of `attr` (any case).
fn values<'e>(entry: &'e SearchEntry, attr: &str) -> Vec<&'e str> {
    entry
        .attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attr))
        .flat_map(|(_, values)| values.iter().map(String::as_str))
        .collect()
}

fn first_value<'e>(entry: &'e SearchEntry, attr: &str) -> Option<&'e str> {
    values(entry, attr)
        .into_iter()
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// Group names from group DNs: each one's first RDN value, once each.
fn group_names<'a>(dns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in dns.into_iter().filter_map(first_rdn_value) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A DN for comparing: lower case, no spaces around separators.
fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

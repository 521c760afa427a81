//! What the front-ends need from the MFA server, as three narrow traits:
//!
//! * [`Verifier`] — primary check, validate, start/follow/answer a challenge:
//!   what the SDK's applications (and later RADIUS, forward-auth, OIDC) share;
//! * [`PortalService`] — the User Portal's self-service flows and sessions;
//! * [`AdminService`] — users, tokens, questions, settings, the audit log,
//!   administrators and service accounts.
//!
//! `Engine` implements all three in-process; the remote portal's client
//! implements `PortalService` only. Every call takes a [`Ctx`]: who asks
//! (audited), through whom (`via`), what they may do (`Access`), and from
//! which address. The engine decides with `Access::authorize`; front-ends
//! only hide what it would refuse.

pub mod admin;
pub mod console;
pub mod forward;
pub mod hooks;
pub mod import;
pub mod mobile;
mod portal;
pub mod reports;
pub mod sync;
mod verifier;

pub use admin::{AddedToken, AdminService, ServiceAccountSpec};
pub use console::{AdminConsole, ConsoleGrant};
pub use forward::ForwardAuth;
pub use hooks::{CallStep, DevOutbox, OutboxEntry, ProviderHooks, SignedHook};
pub use import::ImportService;
pub use mobile::MobileService;
pub use portal::PortalService;
pub use reports::ReportService;
pub use sync::SyncService;
pub use verifier::Verifier;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

use crate::principal::Access;

/// Who is calling the Web Service SDK.
#[async_trait::async_trait]
pub trait CallerAuthenticator: Send + Sync + 'static {
    /// Checks HTTP Basic credentials: a service account (its role,
    /// permissions and scope), or a directory account in the SDK
    /// administrators' group. Failures are throttled per source and audited;
    /// the error (`Forbidden`) says nothing about which part was wrong.
    async fn authenticate_caller(
        &self,
        name: &str,
        secret: &str,
        source_ip: Option<IpAddr>,
    ) -> crate::Result<Ctx>;
}

/// Everything the server's HTTP front-end serves besides the portal: the
/// SDK, the providers' webhooks, the Mobile App Web Service and
/// forward-auth.
pub trait ServerBackend: SdkBackend + ProviderHooks + MobileService + ForwardAuth {}
impl<T: SdkBackend + ProviderHooks + MobileService + ForwardAuth> ServerBackend for T {}

/// Everything the Web Service SDK serves: its callers may hold any role.
pub trait SdkBackend:
    Verifier + PortalService + AdminService + ImportService + CallerAuthenticator
{
}
impl<T: Verifier + PortalService + AdminService + ImportService + CallerAuthenticator> SdkBackend
    for T
{
}

/// Who is asking; recorded in every audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The local command line (whoever can read the configuration).
    Cli,
    Admin(String),
    ServiceAccount(String),
    User(String),
    /// A telephony provider's callback (signature checked): `provider:twilio`.
    Provider(&'static str),
    /// A mobile-app device's signed request (`via` of its user), by the
    /// first 8 digits of its id: `device:9b2f41c0`.
    Device(String),
    System,
    /// A background job of the server: `system:sync`, `system:directory`.
    Job(&'static str),
    /// A reverse proxy asking whether a request may pass (forward-auth).
    Proxy,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli => f.write_str("cli"),
            Actor::Admin(n) => write!(f, "admin:{n}"),
            Actor::ServiceAccount(n) => write!(f, "sdk:{n}"),
            Actor::User(n) => write!(f, "user:{n}"),
            Actor::Provider(n) => write!(f, "provider:{n}"),
            Actor::Device(id) => write!(f, "device:{}", id.get(..8).unwrap_or(id)),
            Actor::System => f.write_str("system"),
            Actor::Job(name) => write!(f, "system:{name}"),
            Actor::Proxy => f.write_str("proxy"),
        }
    }
}

/// One call's principal and address.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Who the call is for, as audited (`user:jan`, `sdk:vpn`, `cli`, ...).
    pub actor: Actor,
    /// Who relayed it for `actor`: a remote portal's service account.
    pub via: Option<Actor>,
    /// What the principal may do; checked by the engine on every operation.
    pub access: Access,
    pub source_ip: Option<IpAddr>,
    /// The address whose failed secrets are throttled: the person's own.
    /// `None` when a service account checks its users' secrets without
    /// saying where they are — a VPN gateway is one address for thousands
    /// of people, and its users' failures must not block it (per-user
    /// limits still apply).
    pub guess_source: Option<IpAddr>,
}

impl Ctx {
    pub fn new(actor: Actor, access: Access, source_ip: Option<IpAddr>) -> Self {
        Ctx {
            actor,
            via: None,
            access,
            source_ip,
            guess_source: source_ip,
        }
    }

    /// The call comes from a service account's own address, on behalf of
    /// people it does not locate: their failures are not the address's.
    #[must_use]
    pub fn relaying_unlocated(mut self) -> Self {
        self.guess_source = None;
        self
    }

    /// The caller reports the end user's address (`X-Twofold-Client-Ip`):
    /// audited, throttled and matched against trusted IPs as theirs.
    #[must_use]
    pub fn located_at(mut self, end_user: IpAddr) -> Self {
        self.source_ip = Some(end_user);
        self.guess_source = Some(end_user);
        self
    }

    /// The local command line: a full administrator (whoever can read the
    /// configuration can read the database anyway).
    pub fn cli() -> Self {
        Ctx::new(Actor::Cli, Access::full(), None)
    }

    /// The engine's own housekeeping and the process's health checks.
    pub fn system() -> Self {
        Ctx::new(Actor::System, Access::full(), None)
    }

    /// A background job (`system:sync`), with full access.
    pub fn system_job(name: &'static str) -> Self {
        Ctx::new(Actor::Job(name), Access::full(), None)
    }

    /// An end user in the in-process portal, from their browser's address.
    pub fn end_user(username: &str, source_ip: Option<IpAddr>) -> Self {
        Ctx::new(
            Actor::User(username.to_string()),
            Access::end_user(),
            source_ip,
        )
    }

    /// A reverse proxy asking about a browser's request (forward-auth),
    /// from the browser's address when the proxy is trusted to say it.
    /// Passed sessions are the portal's, so it holds the portal grant.
    pub fn forward_proxy(client: Option<IpAddr>) -> Self {
        Ctx::new(Actor::Proxy, Access::end_user(), client)
    }

    /// A portal visitor not yet known (loading the session, readiness).
    pub fn portal_visitor(source_ip: Option<IpAddr>) -> Self {
        Ctx::new(Actor::System, Access::end_user(), source_ip)
    }

    /// The same caller acting for an end user it relays (a remote portal):
    /// audited as that user, via this caller; the access stays the caller's.
    pub fn relayed_for(&self, username: &str) -> Self {
        Ctx {
            actor: Actor::User(username.trim().to_string()),
            via: Some(self.actor.clone()),
            access: self.access.clone(),
            source_ip: self.source_ip,
            guess_source: self.guess_source,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Local password; users of a directory have none here.
    #[serde(default)]
    pub password: Option<String>,
    /// Phones: E.164, or national in the `phone.default_country`.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// "method" or "method:mode", e.g. `oath_token`, `phone_call:pin`.
    #[serde(default)]
    pub default_method: Option<String>,
}

/// Result of a primary (username + password) check. Deliberately says nothing
/// about why a sign-in was refused: the audit log has that.
#[derive(Debug, Clone)]
pub enum PrimaryOutcome {
    Accepted,
    Rejected,
}

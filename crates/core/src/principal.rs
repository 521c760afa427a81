//! Who is asking and what they may do. Every call into the engine carries a
//! principal in its `Ctx`; every operation asks `Access` before it acts, so the
//! CLI, the SDK, the portal and the admin pages are held to one rule.
//!
//! Three kinds of thing can be granted:
//! * **verify** — check a user's password or passcode, start, follow and
//!   answer a challenge (what a VPN gateway, RADIUS or an IdP needs);
//! * **portal** — act for an end user in the self-service flows (what a User
//!   Portal needs: in-process, or on a separate server over the portal link);
//! * **administration** — a set of `Permission`s over a `Scope` of users.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::user::{Permission, User};

/// Over whom an administrator's permissions reach.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every user, and the settings that apply to all of them.
    #[default]
    All,
    /// Only the members of this group (any case).
    Group(String),
}

impl Scope {
    pub fn covers(&self, user: &User) -> bool {
        match self {
            Scope::All => true,
            Scope::Group(g) => user.groups.iter().any(|ug| ug.eq_ignore_ascii_case(g)),
        }
    }

    /// The group, for storage: `None` means all users.
    pub fn group(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Group(g) => Some(g),
        }
    }

    pub fn from_group(group: Option<String>) -> Scope {
        match group {
            Some(g) if !g.trim().is_empty() => Scope::Group(g.trim().to_string()),
            _ => Scope::All,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl FromStr for Scope {
    type Err = Error;
    /// `all` or `group:NAME`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Scope::All);
        }
        match s.split_once(':') {
            Some((kind, group)) if kind.eq_ignore_ascii_case("group") => {
                let group = crate::validate::groups(&[group.to_string()])?;
                match group.into_iter().next() {
                    Some(g) => Ok(Scope::Group(g)),
                    None => Err(Error::invalid("scope", "group:NAME needs a group name")),
                }
            }
            _ => Err(Error::invalid(
                "scope",
                format!("{s:?} is not a scope; use all or group:NAME"),
            )),
        }
    }
}

/// A set of permissions, as bits: a `Ctx` is cloned per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Permissions(u32);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    pub fn all() -> Permissions {
        Permission::ALL.into_iter().collect()
    }

    fn bit(p: Permission) -> u32 {
        1 << (p as u32)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_all(self) -> bool {
        self == Self::all()
    }

    pub fn to_vec(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .collect()
    }

    /// Comma-separated names, e.g. `reset_pin,unblock`; `all` when complete.
    pub fn describe(self) -> String {
        if self.is_all() {
            "all".into()
        } else if self.is_empty() {
            "none".into()
        } else {
            self.to_vec()
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }
    }

    /// `all`, or names separated by commas (spaces allowed).
    pub fn parse_list(s: &str) -> Result<Permissions> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(Permissions::all());
        }
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse::<Permission>)
            .collect()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Permissions(iter.into_iter().fold(0, |acc, p| acc | Self::bit(p)))
    }
}

/// What a service account of the Web Service SDK is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Verify users: `test`, `validate`, `authenticate`, `primary`.
    Validate,
    /// Relay a User Portal on a separate server.
    Portal,
    /// Administer users, tokens, settings and the audit log, limited by its
    /// permissions and scope (and verify users, like a `validate` account).
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Validate, Role::Portal, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Validate => "validate",
            Role::Portal => "portal",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("{s:?} is not a role; choose validate, portal or admin"),
                )
            })
    }
}

/// What a principal may do. Built only by the constructors below, from what
/// the store says about the account (or from the CLI's own trust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    verify: bool,
    portal: bool,
    permissions: Permissions,
    scope: Scope,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Checking a user's credentials (the `Verifier`).
    Verify,
    /// Acting for an end user in the self-service flows (`PortalService`).
    Portal,
    /// Reading users, settings, questions and administrators: any
    /// administrative permission will do.
    Administer,
    /// One administrative permission.
    Permission(Permission),
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Verify => f.write_str("the role validate or admin"),
            Need::Portal => f.write_str("the role portal"),
            Need::Administer => f.write_str("an administrative permission"),
            Need::Permission(p) => write!(f, "the permission {}", p.as_str()),
        }
    }
}

impl Access {
    /// Everything: the local CLI and the engine's own housekeeping.
    pub fn full() -> Access {
        Access {
            verify: true,
            portal: true,
            permissions: Permissions::all(),
            scope: Scope::All,
        }
    }

    /// Nothing at all (e.g. before credentials are checked).
    pub fn none() -> Access {
        Access {
            verify: false,
            portal: false,
            permissions: Permissions::NONE,
            scope: Scope::All,
        }
    }

    /// An end user's own browser through the in-process portal.
    pub fn end_user() -> Access {
        Access {
            portal: true,
            ..Access::none()
        }
    }

    /// A portal administrator: their permissions over their scope; they may
    /// verify users too (an administrator can test what they configure).
    pub fn administrator(permissions: Permissions, scope: Scope) -> Access {
        let mut a = Access {
            verify: true,
            portal: false,
            permissions,
            scope,
        };
        a.portal = a.is_full_admin();
        a
    }

    /// A service account of the given role.
    ///
    /// An `admin` account holding every permission over all users may also
    /// relay a portal: that gives it nothing it could not already do (reset
    /// any PIN, set any method, grant any bypass), and it is what accounts
    /// made before roles existed become, so separate portals keep working
    /// across the upgrade. New portals get their own `portal` account.
    pub fn service_account(role: Role, permissions: Permissions, scope: Scope) -> Access {
        match role {
            Role::Validate => Access {
                verify: true,
                ..Access::none()
            },
            Role::Portal => Access::end_user(),
            Role::Admin => Access::administrator(permissions, scope),
        }
    }

    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn is_full_admin(&self) -> bool {
        self.permissions.is_all() && self.scope == Scope::All
    }

    /// Whether this access meets `need`, ignoring whom it concerns.
    pub fn allows(&self, need: Need) -> bool {
        match need {
            Need::Verify => self.verify,
            Need::Portal => self.portal,
            Need::Administer => !self.permissions.is_empty(),
            Need::Permission(p) => self.permissions.contains(p),
        }
    }

    /// The one authorization rule: `need` is granted, and the user it
    /// concerns (if any) is within scope. Operations that concern no single
    /// user (settings, questions, service accounts) need the scope of all
    /// users. Verification and portal access are not limited by scope.
    pub fn authorize(&self, need: Need, subject: Subject<'_>) -> Result<()> {
        if !self.allows(need) {
            return Err(Error::Forbidden(format!("not allowed: this needs {need}")));
        }
        if matches!(need, Need::Verify | Need::Portal) {
            return Ok(());
        }
        match (subject, &self.scope) {
            (_, Scope::All) => Ok(()),
            (Subject::User(u), scope) if scope.covers(u) => Ok(()),
            (Subject::User(_), Scope::Group(g)) => Err(Error::Forbidden(format!(
                "this user is outside your scope (members of {g})"
            ))),
            (Subject::Global, Scope::Group(g)) => Err(Error::Forbidden(format!(
                "this applies to all users; your scope is members of {g}"
            ))),
        }
    }
}

/// Whom an operation concerns.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User(&'a User),
    /// Everyone: settings, questions, service accounts, administrators.
    Global,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> User {
        let now = time::macros::datetime!(2026-01-01 12:00 UTC);
        User {
            id: 1,
            username: "jan".into(),
            display_name: None,
            email: None,
            groups: groups.iter().map(ToString::to_string).collect(),
            language: None,
            phone: None,
            phone_extension: None,
            backup_phone: None,
            mobile_phone: None,
            enabled: true,
            locked_until: None,
            fraud_blocked: false,
            default_method: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn permission_sets() {
        let p = Permissions::parse_list("reset_pin, unblock").unwrap();
        assert!(p.contains(Permission::ResetPin) && p.contains(Permission::Unblock));
        assert!(!p.contains(Permission::DeleteUsers));
        assert_eq!(p.describe(), "reset_pin,unblock");
        assert!(Permissions::parse_list("all").unwrap().is_all());
        assert!(Permissions::parse_list("fly").is_err());
        assert_eq!(Permissions::all().to_vec(), Permission::ALL.to_vec());
    }

    #[test]
    fn scopes() {
        assert_eq!("all".parse::<Scope>().unwrap(), Scope::All);
        assert_eq!(
            "group:Sales".parse::<Scope>().unwrap(),
            Scope::Group("Sales".into())
        );
        assert!("group:".parse::<Scope>().is_err());
        assert!("sales".parse::<Scope>().is_err());
        assert!(Scope::Group("sales".into()).covers(&user(&["Sales"])));
        assert!(!Scope::Group("sales".into()).covers(&user(&["VPN"])));
    }

    #[test]
    fn roles_grant_what_they_say() {
        let none = Permissions::NONE;
        let v = Access::service_account(Role::Validate, none, Scope::All);
        assert!(v.allows(Need::Verify) && !v.allows(Need::Portal) && !v.allows(Need::Administer));
        let p = Access::service_account(Role::Portal, none, Scope::All);
        assert!(p.allows(Need::Portal) && !p.allows(Need::Verify));
        assert!(p
            .authorize(Need::Permission(Permission::ResetPin), Subject::Global)
            .is_err());
        let full = Access::service_account(Role::Admin, Permissions::all(), Scope::All);
        assert!(full.allows(Need::Portal) && full.allows(Need::Verify));
        let some = Access::service_account(
            Role::Admin,
            Permissions::parse_list("reset_pin").unwrap(),
            Scope::Group("sales".into()),
        );
        assert!(!some.allows(Need::Portal));
        let need = Need::Permission(Permission::ResetPin);
        assert!(some
            .authorize(need, Subject::User(&user(&["sales"])))
            .is_ok());
        assert!(some
            .authorize(need, Subject::User(&user(&["vpn"])))
            .is_err());
        assert!(some.authorize(need, Subject::Global).is_err());
        assert!(some
            .authorize(
                Need::Permission(Permission::DeleteUsers),
                Subject::User(&user(&["sales"]))
            )
            .is_err());
    }
}

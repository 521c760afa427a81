//! Users and what describes them. Secrets (password hash, PIN, seeds) are not
//! part of `User`: they live behind their own store calls so that a `User`
//! can be shown, logged or serialised without leaking anything.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

use crate::error::Error;

pub type UserId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub language: Option<String>,
    /// Primary phone in E.164, with an optional extension.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    pub fraud_blocked: bool,
    pub default_method: Option<DefaultMethod>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Bumped by every write; a write based on an older version is refused
    /// instead of silently overwriting a concurrent change.
    pub version: i64,
}

impl User {
    /// Every phone number of the user (for the PIN rule on phone digits).
    pub fn phones(&self) -> Vec<&str> {
        [&self.phone, &self.backup_phone, &self.mobile_phone]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect()
    }

    pub fn status(&self, now: OffsetDateTime) -> UserStatus {
        if !self.enabled {
            UserStatus::Disabled
        } else if self.fraud_blocked {
            UserStatus::FraudBlocked
        } else if let Some(until) = self.locked_until.filter(|u| *u > now) {
            UserStatus::LockedUntil(until)
        } else {
            UserStatus::Enabled
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Enabled,
    Disabled,
    LockedUntil(OffsetDateTime),
    FraudBlocked,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserStatus::Enabled => f.write_str("enabled"),
            UserStatus::Disabled => f.write_str("disabled"),
            UserStatus::FraudBlocked => f.write_str("blocked (fraud reported)"),
            UserStatus::LockedUntil(t) => write!(
                f,
                "locked until {}",
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
        }
    }
}

/// What a new user row is made of; validated by the engine before it gets here.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub language: Option<String>,
    pub password_hash: Option<String>,
    /// Phones in E.164 (import, synchronisation): a new user arrives with
    /// them in the same transaction.
    pub phone: Option<String>,
    pub phone_extension: Option<String>,
    pub backup_phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub default_method: Option<DefaultMethod>,
    /// The sync item that adds this user (synchronisation), in the same
    /// transaction.
    pub synced_by: Option<i64>,
}

/// A change to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `Some("")` clears the display name.
    pub display_name: Option<String>,
    /// `Some("")` clears the address.
    pub email: Option<String>,
    pub groups: Option<Vec<String>>,
    /// `Some("")` returns to the browser's language.
    pub language: Option<String>,
    /// "method" or "method:mode", e.g. `oath_token`, `phone_call:pin`; "" clears.
    pub default_method: Option<String>,
    /// Phones: E.164, or national in the `phone.default_country`; "" clears.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.email.is_none()
            && self.groups.is_none()
            && self.language.is_none()
            && self.default_method.is_none()
            && self.phone.is_none()
            && self.phone_extension.is_none()
            && self.backup_phone.is_none()
            && self.mobile_phone.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    PhoneCall,
    TextMessage,
    MobileApp,
    OathToken,
}

impl MethodKind {
    pub const ALL: [MethodKind; 4] = [
        MethodKind::PhoneCall,
        MethodKind::TextMessage,
        MethodKind::MobileApp,
        MethodKind::OathToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::PhoneCall => "phone_call",
            MethodKind::TextMessage => "text_message",
            MethodKind::MobileApp => "mobile_app",
            MethodKind::OathToken => "oath_token",
        }
    }

    /// The modes a method can run in, the first being its default.
    pub fn modes(self) -> &'static [Mode] {
        match self {
            MethodKind::PhoneCall => &[Mode::Standard, Mode::Pin],
            MethodKind::TextMessage => &[
                Mode::SmsOneWayOtp,
                Mode::SmsOneWayOtpPlusPin,
                Mode::SmsTwoWayOtp,
                Mode::SmsTwoWayOtpPlusPin,
            ],
            MethodKind::MobileApp => &[Mode::PhoneAppStandard, Mode::PhoneAppPin],
            MethodKind::OathToken => &[Mode::Oath, Mode::OathPin],
        }
    }
}

impl FromStr for MethodKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        MethodKind::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "method",
                    format!(
                        "{s:?} is not a method; choose one of {}",
                        MethodKind::ALL.map(MethodKind::as_str).join(", ")
                    ),
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Standard,
    Pin,
    SmsOneWayOtp,
    SmsOneWayOtpPlusPin,
    SmsTwoWayOtp,
    SmsTwoWayOtpPlusPin,
    PhoneAppStandard,
    PhoneAppPin,
    Oath,
    /// The PIN typed before the code (`PIN` + `OTP` in one passcode).
    OathPin,
}

impl Mode {
    const ALL: [Mode; 10] = [
        Mode::Standard,
        Mode::Pin,
        Mode::SmsOneWayOtp,
        Mode::SmsOneWayOtpPlusPin,
        Mode::SmsTwoWayOtp,
        Mode::SmsTwoWayOtpPlusPin,
        Mode::PhoneAppStandard,
        Mode::PhoneAppPin,
        Mode::Oath,
        Mode::OathPin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standard => "standard",
            Mode::Pin => "pin",
            Mode::SmsOneWayOtp => "sms_one_way_otp",
            Mode::SmsOneWayOtpPlusPin => "sms_one_way_otp_plus_pin",
            Mode::SmsTwoWayOtp => "sms_two_way_otp",
            Mode::SmsTwoWayOtpPlusPin => "sms_two_way_otp_plus_pin",
            Mode::PhoneAppStandard => "phone_app_standard",
            Mode::PhoneAppPin => "phone_app_pin",
            Mode::Oath => "oath",
            Mode::OathPin => "oath_pin",
        }
    }

    pub fn needs_pin(self) -> bool {
        matches!(
            self,
            Mode::Pin
                | Mode::SmsOneWayOtpPlusPin
                | Mode::SmsTwoWayOtpPlusPin
                | Mode::PhoneAppPin
                | Mode::OathPin
        )
    }
}

/// The method a user is verified with by default, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultMethod {
    pub method: MethodKind,
    pub mode: Mode,
}

impl fmt::Display for DefaultMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.method.as_str(), self.mode.as_str())
    }
}

impl FromStr for DefaultMethod {
    type Err = Error;
    /// `method` (its default mode) or `method:mode`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (m, mode) = match s.trim().split_once(':') {
            Some((m, mode)) => (m, Some(mode)),
            None => (s.trim(), None),
        };
        let method: MethodKind = m.parse()?;
        let modes = method.modes();
        let mode = match mode {
            None => modes[0],
            Some(name) => *modes.iter().find(|x| x.as_str() == name).ok_or_else(|| {
                Error::invalid(
                    "method",
                    format!(
                        "{name:?} is not a mode of {}; choose one of {}",
                        method.as_str(),
                        modes
                            .iter()
                            .map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
        };
        Ok(DefaultMethod { method, mode })
    }
}

impl DefaultMethod {
    /// Rebuilds a stored pair; refuses a combination that cannot exist.
    pub fn from_parts(method: &str, mode: &str) -> Result<Self, Error> {
        let parsed: DefaultMethod = format!("{method}:{mode}").parse()?;
        debug_assert!(Mode::ALL.contains(&parsed.mode));
        Ok(parsed)
    }
}

/// What a portal administrator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    AddUsers,
    EditUsers,
    ChangePhone,
    ResetPin,
    ChangeMethod,
    ResetSecurityQuestions,
    ManageOathTokens,
    ManageDevices,
    GrantBypass,
    EnableDisable,
    Unblock,
    DeleteUsers,
    ViewAuditLog,
    ManageSettings,
    ManageAdministrators,
    ManageServiceAccounts,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::AddUsers,
        Permission::EditUsers,
        Permission::ChangePhone,
        Permission::ResetPin,
        Permission::ChangeMethod,
        Permission::ResetSecurityQuestions,
        Permission::ManageOathTokens,
        Permission::ManageDevices,
        Permission::GrantBypass,
        Permission::EnableDisable,
        Permission::Unblock,
        Permission::DeleteUsers,
        Permission::ViewAuditLog,
        Permission::ManageSettings,
        Permission::ManageAdministrators,
        Permission::ManageServiceAccounts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AddUsers => "add_users",
            Permission::EditUsers => "edit_users",
            Permission::ChangePhone => "change_phone",
            Permission::ResetPin => "reset_pin",
            Permission::ChangeMethod => "change_method",
            Permission::ResetSecurityQuestions => "reset_security_questions",
            Permission::ManageOathTokens => "manage_oath_tokens",
            Permission::ManageDevices => "manage_devices",
            Permission::GrantBypass => "grant_bypass",
            Permission::EnableDisable => "enable_disable",
            Permission::Unblock => "unblock",
            Permission::DeleteUsers => "delete_users",
            Permission::ViewAuditLog => "view_audit_log",
            Permission::ManageSettings => "manage_settings",
            Permission::ManageAdministrators => "manage_administrators",
            Permission::ManageServiceAccounts => "manage_service_accounts",
        }
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "permission",
                    format!(
                        "{s:?} is not a permission; choose from {}",
                        Permission::ALL.map(Permission::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A portal administrator: a user, what they may do, and over whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub user_id: UserId,
    pub username: String,
    pub permissions: Vec<Permission>,
    /// `None`: all users; `Some(group)`: members of that group only.
    pub scope_group: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_parsing() {
        let m: DefaultMethod = "phone_call".parse().unwrap();
        assert_eq!(m.mode, Mode::Standard);
        let m: DefaultMethod = "text_message:sms_two_way_otp_plus_pin".parse().unwrap();
        assert!(m.mode.needs_pin());
        assert_eq!(m.to_string(), "text_message:sms_two_way_otp_plus_pin");
        assert!("phone_call:oath".parse::<DefaultMethod>().is_err());
        assert!("fax".parse::<DefaultMethod>().is_err());
        assert_eq!(
            DefaultMethod::from_parts("oath_token", "oath")
                .unwrap()
                .mode,
            Mode::Oath
        );
    }

    #[test]
    fn status_precedence() {
        let now = time::macros::datetime!(2026-01-01 12:00 UTC);
        let mut u = User {
            id: 1,
            username: "a".into(),
            display_name: None,
            email: None,
            groups: vec![],
            language: None,
            phone: None,
            phone_extension: None,
            backup_phone: None,
            mobile_phone: None,
            enabled: true,
            locked_until: Some(now + time::Duration::minutes(1)),
            fraud_blocked: false,
            default_method: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        assert!(matches!(u.status(now), UserStatus::LockedUntil(_)));
        assert_eq!(
            u.status(now + time::Duration::minutes(2)),
            UserStatus::Enabled
        );
        u.enabled = false;
        assert_eq!(u.status(now), UserStatus::Disabled);
    }
}

//! Runtime settings: every row of the original User Portal settings table plus
//! the server-wide policies (PIN rules, lockout, fraud alert, trusted IPs...).
//!
//! Settings are addressed by dotted keys (`portal.allow_login`). `KEYS` is the
//! one table that says which keys exist, what values each takes and why; the
//! CLI, the admin pages and the API all go through it, so a range is checked in
//! exactly one place. Only changed keys are stored; the rest are defaults.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::user::MethodKind;

/// Declares every runtime setting once: its section and field (the key is
/// `section.field`), type, default, rule (`Kind`) and help. From this one
/// declaration come the `Settings` model, its `Default` and the `KEYS` table
/// that the CLI, the API and the admin pages go through.
macro_rules! settings_model {
    ($(
        $(#[$smeta:meta])*
        $section:ident : $Struct:ident {
            $( $field:ident : $ty:ty = $default:expr, $kind:expr, $help:literal; )*
        }
    )*) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $( pub $section: $Struct, )*
        }

        $(
            $(#[$smeta])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $Struct {
                $( #[doc = $help] pub $field: $ty, )*
            }
        )*

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $( $section: $Struct { $( $field: $default, )* }, )*
                }
            }
        }

        impl Settings {
            /// Dotted key → value, in `KEYS` order, secrets included: the
            /// engine's own view (checking, storing). Never show it; every
            /// outward view goes through `Serialize` or `public_map`, which
            /// hide secrets.
            pub fn to_map(&self) -> BTreeMap<&'static str, Value> {
                let mut map = BTreeMap::new();
                $( $(
                    map.insert(
                        concat!(stringify!($section), ".", stringify!($field)),
                        SettingField::inner_value(&self.$section.$field),
                    );
                )* )*
                map
            }
        }

        pub const KEYS: &[KeyDef] = &[
            $( $( KeyDef {
                key: concat!(stringify!($section), ".", stringify!($field)),
                kind: $kind,
                help: $help,
            }, )* )*
        ];
    };
}

/// The methods with a module in this build (`methods::AVAILABLE`; a test
/// keeps the two equal): a method that does nothing is never offered.
const METHODS: &[&str] = &["oath_token", "phone_call", "text_message", "mobile_app"];

settings_model! {
    portal: PortalSettings {
        url: String = String::new(),
            Kind::Url,
            "User Portal URL, included in emails sent to imported users";
        organization_name: String = String::new(),
            Kind::Text { min: 0, max: 64 },
            "Organisation name, the issuer of authenticator-app entries (empty: the portal URL's host)";
        primary_auth: PrimaryAuth = PrimaryAuth::Local,
            Kind::Choice(&["local", "ldap", "radius"]),
            "Primary authentication used to sign in to the portal";
        allow_login: bool = true,
            Kind::Bool,
            "Allow users to log in with username and password";
        allow_enrollment: bool = true,
            Kind::Bool,
            "Allow user enrollment (setup screen on first sign-in)";
        enrollment_prompt_backup_phone: bool = false,
            Kind::Bool,
            "Enrollment prompts for a backup phone";
        enrollment_prompt_oath_token: bool = false,
            Kind::Bool,
            "Enrollment prompts for a third-party OATH token";
        allow_bypass: bool = false,
            Kind::Bool,
            "Allow users to initiate a One-Time Bypass";
        bypass_prompt_seconds: bool = false,
            Kind::Bool,
            "Prompt for bypass seconds (else the default applies)";
        bypass_default_seconds: u32 = 300,
            Kind::Int { min: 1, max: 86_400 },
            "Seconds a One-Time Bypass stays valid by default";
        bypass_max_seconds: u32 = 3600,
            Kind::Int { min: 1, max: 86_400 },
            "Most seconds a user may ask for when prompted";
        allow_select_method: bool = false,
            Kind::Bool,
            "Allow users to select their method";
        selectable_methods: Vec<MethodKind> = crate::methods::AVAILABLE.iter().map(|m| m.kind()).collect(),
            Kind::ChoiceSet(METHODS),
            "Methods users may select";
        allow_select_language: bool = false,
            Kind::Bool,
            "Allow users to select their language";
        languages: Vec<String> = crate::validate::SUPPORTED_LANGUAGES.iter().map(|l| (*l).to_string()).collect(),
            Kind::ChoiceSet(crate::validate::SUPPORTED_LANGUAGES),
            "Languages the portal speaks and users may pick (none fits: English if listed, else the first)";
        time_zone: String = "UTC".into(),
            Kind::TimeZone,
            "Time zone of times and dates on the portal's pages (IANA name, e.g. Europe/Amsterdam)";
        allow_mobile_app_activation: bool = false,
            Kind::Bool,
            "Allow users to activate the mobile app";
        max_mobile_devices: u32 = 1,
            Kind::Int { min: 1, max: 10 },
            "Devices a user may activate the mobile app on";
        security_questions_fallback: bool = false,
            Kind::Bool,
            "Use security questions for fallback";
        security_questions_required: u32 = 3,
            Kind::Int { min: 1, max: 4 },
            "Security questions that must be answered correctly";
        allow_third_party_oath: bool = false,
            Kind::Bool,
            "Allow users to associate a third-party OATH token";
        oath_fallback: bool = false,
            Kind::Bool,
            "Use OATH token for fallback";
        oath_fallback_session_minutes: u32 = 60,
            Kind::Int { min: 1, max: 1440 },
            "Session timeout in minutes after an OATH fallback";
        logging: bool = false,
            Kind::Bool,
            "Enable logging: JSON log lines to rolling files in the log directory";
    }
    passed_sessions: PassedSessions {
        enabled: bool = false,
            Kind::Bool,
            "Pass verified sessions on to web sites behind a reverse proxy (forward-auth at /auth/nginx and /auth/forward)";
        lifetime_seconds: u32 = 1800,
            Kind::Int { min: 5, max: 86_400 },
            "Seconds without a request after which a passed session ends (inactivity timeout)";
        max_lifetime_seconds: u32 = 43_200,
            Kind::Int { min: 60, max: 2_592_000 },
            "Seconds after sign-in at which a passed session ends however active it is (absolute lifetime)";
        cookie_domain: String = String::new(),
            Kind::Domain,
            "Domain of the passed-session cookie, covering the portal and every protected site (e.g. example.com); empty: the portal's host alone";
        sites: Vec<String> = Vec::new(),
            Kind::SiteList,
            "Protected sites: host names or *.domain patterns; the portal sends signed-in browsers back only to these";
        rules: Vec<String> = Vec::new(),
            Kind::RuleList,
            "Access rules, first match wins: HOST PATH POLICY [GROUPS], policy bypass, one_factor, two_factor or deny; a protected site no rule matches needs two_factor, any other host is denied";
        bypass_counts: bool = false,
            Kind::Bool,
            "A one-time bypass counts as the second step for two_factor sites";
        trusted_ip_counts: bool = false,
            Kind::Bool,
            "A sign-in from a trusted IP counts as the second step for two_factor sites";
    }
    trusted_ips: TrustedIps {
        enabled: bool = false,
            Kind::Bool,
            "Skip the second step from trusted IPs";
        ranges: Vec<String> = Vec::new(),
            Kind::CidrList,
            "Trusted IP addresses and ranges";
    }
    pin: PinRules {
        min_length: u32 = 4,
            Kind::Int { min: 4, max: 16 },
            "Minimum PIN length";
        prevent_weak: bool = true,
            Kind::Bool,
            "Refuse sequential, repeated and phone-number PINs";
        expiry_days: u32 = 0,
            Kind::Int { min: 0, max: 3650 },
            "Days before a PIN must be changed (0: never)";
        history: u32 = 5,
            Kind::Int { min: 1, max: 10 },
            "Earlier PINs that may not be reused";
    }
    lockout: Lockout {
        enabled: bool = true,
            Kind::Bool,
            "Slow down and lock out guessing after repeated wrong secrets";
        denials_to_lock: u32 = 5,
            Kind::Int { min: 1, max: 100 },
            "Wrong secrets in a row (each factor counted alone) before a growing pause of 1, 2, 4 ... minutes";
        reset_counter_minutes: u32 = 5,
            Kind::Int { min: 1, max: 1440 },
            "Minutes without a wrong secret after which the count in a row starts again";
        auto_unblock_minutes: u32 = 15,
            Kind::Int { min: 0, max: 10_080 },
            "Longest pause in minutes (0: the first pause is a lock only an administrator ends)";
        hard_lock_after: u32 = 100,
            Kind::Int { min: 10, max: 100 },
            "Wrong secrets of one factor since the last success that lock the user until an administrator unblocks";
        code_failures_per_hour: u32 = 10,
            Kind::Int { min: 1, max: 10 },
            "Wrong one-time codes (with PIN) checked per user per hour, across every source and channel";
    }
    fraud: FraudAlert {
        allow_report: bool = true,
            Kind::Bool,
            "Allow users to report fraud";
        block_on_report: bool = true,
            Kind::Bool,
            "Block the user when fraud is reported";
        code: String = "0".into(),
            Kind::Digits { min: 1, max: 8 },
            "Code entered before # on a call to report fraud";
    }
    mobile_app: MobileAppSettings {
        account_name: String = String::new(),
            Kind::Text { min: 0, max: 64 },
            "Account name the mobile app shows (empty: the host of the server's public URL)";
        request_lifetime_seconds: u32 = 60,
            Kind::Int { min: 15, max: 300 },
            "Seconds a sign-in request waits for the mobile app's answer";
        pin_certificate: bool = true,
            Kind::Bool,
            "Activation codes carry the SHA-256 of this server's certificate for the app to pin (off: phones reach the server through a proxy with a certificate of its own, verified the usual way)";
    }
    oath: OathSettings {
        time_step_window: u32 = 1,
            Kind::Int { min: 0, max: 10 },
            "TOTP time steps accepted either side of now";
        hotp_look_ahead: u32 = 10,
            Kind::Int { min: 1, max: 100 },
            "HOTP counter values looked ahead of the last one used";
    }
    sdk: SdkSettings {
        admin_group: String = "PhoneFactor Admins".into(),
            Kind::Text { min: 1, max: 256 },
            "Directory group whose members may use the Web Service SDK";
    }
    sync: SyncSettings {
        enabled: bool = false,
            Kind::Bool,
            "Synchronise users with the LDAP directory on a schedule (the sync items of `twofold sync`)";
        interval_minutes: u32 = 60,
            Kind::Int { min: 1, max: 1440 },
            "Minutes between scheduled synchronisations (1 minute to 24 hours)";
        threshold: u32 = 5,
            Kind::Int { min: 1, max: 999 },
            "Users a synchronisation may disable or delete before it stops and waits for approval (`twofold sync approve`)";
    }
    admin: AdminPages {
        idle_minutes: u32 = 15,
            Kind::Int { min: 1, max: 240 },
            "Minutes without a request after which an administrator's session of the admin pages ends";
    }
    audit: AuditSettings {
        retention_days: u32 = 365,
            Kind::Int { min: 0, max: 36_500 },
            "Days audit events are kept; older ones are deleted hourly (0: keep them all)";
    }
    sms_gateway: SmsGateway {
        url: String = String::new(),
            Kind::Url,
            "Generic HTTP SMS gateway: the URL text messages are sent to (empty: not used)";
        method: String = "POST".into(),
            Kind::Choice(&["POST", "PUT"]),
            "HTTP method of the gateway request";
        body_format: String = "form".into(),
            Kind::Choice(&["form", "json"]),
            "Body of the gateway request: form fields or a JSON object";
        body_template: String = "to={to}&text={text}".into(),
            Kind::Text { min: 1, max: 2000 },
            "Body with {to} (E.164 number) and {text} placeholders, escaped for the body format";
        authorization: Secret = Secret::default(),
            Kind::Secret { max: 1000 },
            "Authorization header sent to the gateway, e.g. Bearer <token> (secret)";
        success_status: u32 = 0,
            Kind::Int { min: 0, max: 299 },
            "HTTP status that means sent (0: any 2xx)";
        inbound_secret: Secret = Secret::default(),
            Kind::Secret { max: 256 },
            "Shared secret the gateway sends with inbound replies (secret; empty refuses them)";
    }
    phone: PhoneSettings {
        default_country: String = String::new(),
            Kind::Text { min: 0, max: 2 },
            "Country (ISO code, e.g. NL) for phone numbers typed without +; empty requires +";
        user_deliveries_per_hour: u32 = 10,
            Kind::Int { min: 1, max: 100 },
            "Calls and text messages one user may be sent per hour (toll fraud, SMS pumping)";
        number_deliveries_per_hour: u32 = 20,
            Kind::Int { min: 1, max: 1000 },
            "Calls and text messages one phone number may be sent per hour, across users";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryAuth {
    Local,
    Ldap,
    Radius,
}

impl PrimaryAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryAuth::Local => "local",
            PrimaryAuth::Ldap => "ldap",
            PrimaryAuth::Radius => "radius",
        }
    }
}

/// How a field of the model turns into its key's JSON value for the
/// engine: as it serialises, except a secret, which serialises hidden.
trait SettingField {
    fn inner_value(&self) -> Value;
}

macro_rules! field_as_serialised {
    ($($t:ty),*) => {$(
        impl SettingField for $t {
            fn inner_value(&self) -> Value {
                serde_json::to_value(self).unwrap_or(Value::Null)
            }
        }
    )*};
}
field_as_serialised!(bool, u32, String, Vec<String>, Vec<MethodKind>, PrimaryAuth);

impl SettingField for Secret {
    fn inner_value(&self) -> Value {
        Value::String(self.reveal().to_string())
    }
}

/// The value of a secret setting (a provider's token, a shared secret).
/// It serialises as `"(set)"` or `""` — so the API, `settings show` and
/// anything else that serialises settings never carry it — prints as
/// `(set)`, and is stored sealed. Only `reveal` gives the text, to the
/// adapter that sends it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

/// What a set secret shows as, wherever settings are shown.
pub const SECRET_SET: &str = "(set)";

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(zeroize::Zeroizing::new(text.into()))
    }
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
    /// The secret itself, for the one place that needs it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
    fn shown(&self) -> &'static str {
        if self.is_set() {
            SECRET_SET
        } else {
            ""
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl PassedSessions {
    fn check_consistency(&self) -> Result<()> {
        if self.lifetime_seconds > self.max_lifetime_seconds {
            return Err(Error::invalid(
                "passed_sessions.lifetime_seconds",
                format!(
                    "{} is more than passed_sessions.max_lifetime_seconds ({})",
                    self.lifetime_seconds, self.max_lifetime_seconds
                ),
            ));
        }
        // The browser sends the cookie only within its domain: a site
        // outside it could never see a passed session.
        let domain = &self.cookie_domain;
        if !domain.is_empty() {
            let suffix = format!(".{domain}");
            for site in &self.sites {
                let host = site.strip_prefix("*.").unwrap_or(site);
                if host != domain && !host.ends_with(&suffix) {
                    return Err(Error::invalid(
                        "passed_sessions.sites",
                        format!(
                            "{site} is outside passed_sessions.cookie_domain ({domain}): browsers would not send it the passed-session cookie"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl TrustedIps {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.enabled
            && self
                .ranges
                .iter()
                .filter_map(|r| r.parse::<IpNet>().ok())
                .any(|net| net.contains(&ip))
    }
}

/// The values a key takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Choice(&'static [&'static str]),
    ChoiceSet(&'static [&'static str]),
    /// Empty, or an absolute http(s) URL.
    Url,
    /// A string of digits of the given length range.
    Digits {
        min: usize,
        max: usize,
    },
    /// Comma-separated IP addresses or CIDR ranges.
    CidrList,
    Text {
        min: usize,
        max: usize,
    },
    /// An IANA time-zone name (`Europe/Amsterdam`, `UTC`).
    TimeZone,
    /// Text that is written, never read back: sealed at rest, `(set)` when
    /// shown, redacted in the audit log.
    Secret {
        max: usize,
    },
    /// Empty, or a domain name (a cookie's `Domain`).
    Domain,
    /// Comma-separated host names or `*.domain` patterns (protected sites).
    SiteList,
    /// Access rules `HOST PATH POLICY [GROUPS]`, separated by `;` or new
    /// lines when typed (commas separate a rule's groups).
    RuleList,
}

/// The smallest set of CIDR ranges covering exactly `first` to `last`
/// (`10.0.0.1-10.0.0.50`), both of one family; `None` when it is no range.
fn address_range(first: &str, last: &str) -> Option<Vec<IpNet>> {
    match (first.parse::<IpAddr>().ok()?, last.parse::<IpAddr>().ok()?) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
            Some(ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect())
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => {
            Some(ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect())
        }
        _ => None,
    }
}

/// How a secret's value shows: `(set)`, or empty when it is not.
fn shown_secret(v: &Value) -> &'static str {
    if v.as_str().is_some_and(|s| !s.is_empty()) {
        SECRET_SET
    } else {
        ""
    }
}

impl Kind {
    pub fn is_secret(&self) -> bool {
        matches!(self, Kind::Secret { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Kind::Bool => "true | false".into(),
            Kind::Int { min, max } => format!("integer {min}..={max}"),
            Kind::Choice(c) => format!("one of {}", c.join(" | ")),
            Kind::ChoiceSet(c) => format!("comma-separated subset of {}", c.join(", ")),
            Kind::Url => "https:// URL or empty".into(),
            Kind::Digits { min, max } => format!("{min} to {max} digits"),
            Kind::CidrList => {
                "comma-separated IP addresses, ranges (first-last) or CIDR ranges".into()
            }
            Kind::Text { min, max } => format!("text of {min} to {max} characters"),
            Kind::Secret { max } => {
                format!("secret text of up to {max} characters (write-only; empty clears)")
            }
            Kind::TimeZone => "IANA time zone such as UTC or Europe/Amsterdam".into(),
            Kind::Domain => "domain name such as example.com, or empty".into(),
            Kind::SiteList => {
                "comma-separated host names or *.domain patterns (app.example.com, *.example.com)"
                    .into()
            }
            Kind::RuleList => "access rules HOST PATH POLICY [GROUPS] separated by ; (policy bypass, one_factor, two_factor or deny)".into(),
        }
    }
}

pub struct KeyDef {
    pub key: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

pub fn key_def(key: &str) -> Result<&'static KeyDef> {
    KEYS.iter().find(|d| d.key == key).ok_or_else(|| {
        let section = key.split('.').next().unwrap_or("");
        let near: Vec<&str> = KEYS
            .iter()
            .filter(|d| d.key.starts_with(&format!("{section}.")))
            .map(|d| d.key)
            .collect();
        let hint = if near.is_empty() {
            "run `twofold settings show` for the list".to_string()
        } else {
            format!("keys in {section}: {}", near.join(", "))
        };
        Error::invalid(key, format!("unknown setting; {hint}"))
    })
}

/// Turns text typed by a person (CLI, form) into the key's JSON value.
pub fn parse_text(def: &KeyDef, raw: &str) -> Result<Value> {
    let raw = raw.trim();
    let bad = |msg: String| Error::invalid(def.key, msg);
    let v = match def.kind {
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(bad(format!("{raw:?} is not true or false"))),
        },
        Kind::Int { .. } => Value::from(
            raw.parse::<i64>()
                .map_err(|_| bad(format!("{raw:?} is not a whole number")))?,
        ),
        Kind::RuleList => Value::Array(
            raw.split([';', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Kind::ChoiceSet(_) | Kind::CidrList | Kind::SiteList => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Choice(_)
        | Kind::Url
        | Kind::Digits { .. }
        | Kind::Text { .. }
        | Kind::TimeZone
        | Kind::Domain
        | Kind::Secret { .. } => Value::String(raw.to_string()),
    };
    check_value(def, &v)
}

/// Checks (and normalises) a JSON value for a key: ranges, choices, formats.
pub fn check_value(def: &KeyDef, v: &Value) -> Result<Value> {
    let bad = |msg: String| Error::invalid(def.key, msg);
    let want = || bad(format!("expected {}", def.kind.describe()));
    match def.kind {
        Kind::Bool => v.as_bool().map(Value::Bool).ok_or_else(want),
        Kind::Int { min, max } => {
            let n = v.as_i64().ok_or_else(want)?;
            if n < min || n > max {
                return Err(bad(format!("{n} is out of range {min}..={max}")));
            }
            Ok(Value::from(n))
        }
        Kind::Choice(choices) => {
            let s = v.as_str().ok_or_else(want)?;
            if choices.contains(&s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err(bad(format!("{s:?} is not {}", def.kind.describe())))
            }
        }
        Kind::ChoiceSet(choices) => {
            let items = v.as_array().ok_or_else(want)?;
            let mut out: Vec<&str> = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(want)?;
                if !choices.contains(&s) {
                    return Err(bad(format!("{s:?} is not one of {}", choices.join(", "))));
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            // Keep the canonical order so equal sets compare equal.
            let ordered: Vec<Value> = choices
                .iter()
                .filter(|c| out.contains(c))
                .map(|c| Value::String(c.to_string()))
                .collect();
            Ok(Value::Array(ordered))
        }
        Kind::Url => {
            let s = v.as_str().ok_or_else(want)?.trim();
            if s.is_empty() {
                return Ok(Value::String(String::new()));
            }
            let rest = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"))
                .ok_or_else(|| bad(format!("{s:?} must start with https://")))?;
            if rest.is_empty()
                || rest.starts_with('/')
                || s.len() > 2048
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(format!("{s:?} is not a valid URL")));
            }
            Ok(Value::String(s.to_string()))
        }
        Kind::Digits { min, max } => {
            let s = v.as_str().ok_or_else(want)?;
            if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("{s:?} must be {min} to {max} digits")));
            }
            Ok(Value::String(s.to_string()))
        }
        Kind::CidrList => {
            let items = v.as_array().ok_or_else(want)?;
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(want)?.trim();
                let nets: Vec<IpNet> = if let Some((a, b)) = s.split_once('-') {
                    address_range(a.trim(), b.trim()).ok_or_else(|| {
                        bad(format!(
                            "{s:?} is not a range of addresses (first-last, the first not after the last)"
                        ))
                    })?
                } else {
                    vec![match s.parse::<IpNet>() {
                        Ok(n) => n.trunc(),
                        Err(_) => s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                            bad(format!(
                                "{s:?} is not an IP address, a range (first-last) or a CIDR range"
                            ))
                        })?,
                    }]
                };
                for net in nets {
                    let text = net.to_string();
                    if !out.contains(&text) {
                        out.push(text);
                    }
                }
            }
            if out.len() > 1000 {
                return Err(bad("at most 1000 ranges".into()));
            }
            Ok(Value::Array(out.into_iter().map(Value::String).collect()))
        }
        Kind::Text { min, max } => {
            let s = v.as_str().ok_or_else(want)?.trim();
            let n = s.chars().count();
            if n < min || n > max || s.chars().any(char::is_control) {
                return Err(bad(format!(
                    "must be {min} to {max} characters without control characters"
                )));
            }
            Ok(Value::String(s.to_string()))
        }
        Kind::TimeZone => {
            let s = v.as_str().ok_or_else(want)?.trim();
            if s.len() > 64 || jiff::tz::TimeZone::get(s).is_err() {
                return Err(bad(format!(
                    "{:?} is not a time zone; use an IANA name such as UTC or Europe/Amsterdam",
                    crate::display::escape_control(s)
                )));
            }
            Ok(Value::String(s.to_string()))
        }
        Kind::Domain => {
            let s = v.as_str().ok_or_else(want)?;
            crate::passed::check_cookie_domain(s)
                .map(Value::String)
                .map_err(|_| bad(format!("{s:?} is not {}", def.kind.describe())))
        }
        Kind::SiteList => {
            let items = v.as_array().ok_or_else(want)?;
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(want)?;
                let site = crate::passed::HostPattern::parse_site(s).map_err(|e| match e {
                    Error::InvalidInput { message, .. } => bad(message),
                    other => other,
                })?;
                let text = site.to_string();
                if !out.contains(&text) {
                    out.push(text);
                }
            }
            if out.len() > 200 {
                return Err(bad("at most 200 sites".into()));
            }
            Ok(Value::Array(out.into_iter().map(Value::String).collect()))
        }
        Kind::RuleList => {
            let items = v.as_array().ok_or_else(want)?;
            if items.len() > 500 {
                return Err(bad("at most 500 rules".into()));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let s = item.as_str().ok_or_else(want)?;
                let rule = s
                    .parse::<crate::passed::AccessRule>()
                    .map_err(|e| match e {
                        Error::InvalidInput { message, .. } => bad(message),
                        other => other,
                    })?;
                out.push(Value::String(rule.to_string()));
            }
            Ok(Value::Array(out))
        }
        Kind::Secret { max } => {
            let s = v.as_str().ok_or_else(want)?.trim();
            // Never echo any of it back: the message names the rule only.
            if s.chars().count() > max || s.chars().any(char::is_control) {
                return Err(bad(format!(
                    "must be at most {max} characters without control characters"
                )));
            }
            if s == SECRET_SET {
                return Err(bad(format!(
                    "{SECRET_SET:?} is how a set secret is shown, not a value; type the secret itself"
                )));
            }
            Ok(Value::String(s.to_string()))
        }
    }
}

impl Settings {
    /// Dotted key → value as shown to people and programs: a secret as
    /// `"(set)"` or `""`.
    pub fn public_map(&self) -> BTreeMap<&'static str, Value> {
        let mut map = self.to_map();
        for def in KEYS {
            if let (Kind::Secret { .. }, Some(v)) = (&def.kind, map.get_mut(def.key)) {
                *v = Value::String(shown_secret(v).into());
            }
        }
        map
    }

    fn from_map(map: &BTreeMap<&'static str, Value>) -> Result<Settings> {
        let mut tree = Map::new();
        for (key, value) in map {
            let (section, field) = key.split_once('.').unwrap_or((key, ""));
            tree.entry(section.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .map(|o| o.insert(field.to_string(), value.clone()));
        }
        serde_json::from_value(Value::Object(tree))
            .map_err(|e| Error::Internal(format!("settings do not fit the model: {e}")))
    }

    /// Builds settings from stored rows (key, JSON text) over the defaults.
    /// Unknown keys (written by a newer version) are returned, not fatal; a
    /// stored value that breaks its rule is an error, never silently replaced.
    pub fn from_rows<I>(rows: I) -> Result<(Settings, Vec<String>)>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut map = Settings::default().to_map();
        let mut unknown = Vec::new();
        for (key, text) in rows {
            let Some(def) = KEYS.iter().find(|d| d.key == key) else {
                unknown.push(key);
                continue;
            };
            let mut value: Value = serde_json::from_str(&text)
                .map_err(|_| Error::invalid(def.key, "stored value is not valid JSON"))?;
            if let (Kind::ChoiceSet(choices), Value::Array(items)) = (&def.kind, &mut value) {
                // A choice another build offered (a method this one lacks)
                // is left out and reported, as an unknown key is.
                items.retain(|item| {
                    let known = item.as_str().is_some_and(|s| choices.contains(&s));
                    if !known {
                        unknown.push(format!("{}={item}", def.key));
                    }
                    known
                });
            }
            map.insert(def.key, check_value(def, &value)?);
        }
        let settings = Settings::from_map(&map)?;
        settings.check_consistency()?;
        Ok((settings, unknown))
    }

    /// Returns these settings with one key changed, or why it cannot be.
    pub fn with_value(&self, key: &str, value: &Value) -> Result<(Settings, Value)> {
        let def = key_def(key)?;
        let value = check_value(def, value)?;
        let mut map = self.to_map();
        map.insert(def.key, value.clone());
        let next = Settings::from_map(&map)?;
        next.check_consistency()?;
        Ok((next, value))
    }

    /// Rules that tie keys together.
    pub fn check_consistency(&self) -> Result<()> {
        let p = &self.portal;
        if p.languages.is_empty() {
            return Err(Error::invalid(
                "portal.languages",
                "must name at least one language",
            ));
        }
        if p.allow_select_method && p.selectable_methods.is_empty() {
            return Err(Error::invalid(
                "portal.selectable_methods",
                "must name at least one method while portal.allow_select_method is on",
            ));
        }
        let country = &self.phone.default_country;
        if !country.is_empty() && !crate::validate::is_country(country) {
            return Err(Error::invalid(
                "phone.default_country",
                format!("{country:?} is not an ISO country code such as NL or US"),
            ));
        }
        self.passed_sessions.check_consistency()?;
        if p.bypass_default_seconds > p.bypass_max_seconds {
            return Err(Error::invalid(
                "portal.bypass_default_seconds",
                format!(
                    "{} is more than portal.bypass_max_seconds ({})",
                    p.bypass_default_seconds, p.bypass_max_seconds
                ),
            ));
        }
        Ok(())
    }

    /// Keys whose value differs from the default, with their stored JSON.
    pub fn changed_rows(&self) -> Vec<(String, String)> {
        let defaults = Settings::default().to_map();
        self.to_map()
            .into_iter()
            .filter(|(k, v)| defaults.get(k) != Some(v))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// Shows a value as a person would type it back in.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &Settings, key: &str, raw: &str) -> Result<Settings> {
        let def = key_def(key)?;
        let v = parse_text(def, raw)?;
        Ok(s.with_value(key, &v)?.0)
    }

    #[test]
    fn every_key_maps_to_the_model_and_back() {
        let d = Settings::default();
        let map = d.to_map();
        assert_eq!(map.len(), KEYS.len());
        for (k, v) in &map {
            assert!(!v.is_null(), "{k} has no field in the model");
            check_value(key_def(k).unwrap(), v).unwrap_or_else(|e| panic!("default of {k}: {e}"));
        }
        assert_eq!(Settings::from_map(&map).unwrap(), d);
        assert!(d.changed_rows().is_empty());
    }

    #[test]
    fn trusted_ips_take_addresses_ranges_and_cidrs() {
        let d = Settings::default();
        let s = set(
            &d,
            "trusted_ips.ranges",
            "192.0.2.7, 10.0.0.0-10.0.0.9, 198.51.100.0/24, 2001:db8::/64",
        )
        .unwrap();
        assert_eq!(
            s.trusted_ips.ranges,
            vec![
                "192.0.2.7/32",
                "10.0.0.0/29",
                "10.0.0.8/31",
                "198.51.100.0/24",
                "2001:db8::/64"
            ]
        );
        for bad in [
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "10.0.0.1-x",
            "nonsense",
        ] {
            assert!(set(&d, "trusted_ips.ranges", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passed_session_settings_check_sites_rules_and_domain_together() {
        let d = Settings::default();
        let s = set(
            &d,
            "passed_sessions.sites",
            "App.Example.com, *.example.com",
        )
        .unwrap();
        assert_eq!(
            s.passed_sessions.sites,
            vec!["app.example.com", "*.example.com"]
        );
        let s = set(&s, "passed_sessions.cookie_domain", ".Example.com").unwrap();
        assert_eq!(s.passed_sessions.cookie_domain, "example.com");
        let err = set(&s, "passed_sessions.sites", "intranet.example.org").unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(set(&d, "passed_sessions.sites", "*").is_err());
        let s = set(
            &s,
            "passed_sessions.rules",
            "app.example.com /public/* bypass; app.example.com /admin/* two_factor Domain Admins, helpdesk",
        )
        .unwrap();
        assert_eq!(s.passed_sessions.rules.len(), 2);
        assert_eq!(
            s.passed_sessions.rules[1],
            "app.example.com /admin/* two_factor Domain Admins, helpdesk"
        );
        let err = set(&s, "passed_sessions.rules", "app.example.com /x maybe").unwrap_err();
        assert!(err.to_string().contains("passed_sessions.rules"), "{err}");
        let err = set(&d, "passed_sessions.lifetime_seconds", "50000").unwrap_err();
        assert!(err.to_string().contains("max_lifetime_seconds"), "{err}");
        assert!(set(&d, "passed_sessions.cookie_domain", "exa mple.com").is_err());
    }

    #[test]
    fn every_int_boundary_is_enforced() {
        let d = Settings::default();
        for def in KEYS {
            if let Kind::Int { min, max } = def.kind {
                // bypass_default must stay <= bypass_max; test it against a large max.
                let base = if def.key == "portal.bypass_default_seconds" {
                    set(&d, "portal.bypass_max_seconds", "86400").unwrap()
                } else {
                    d.clone()
                };
                let base = if def.key == "portal.bypass_max_seconds" {
                    set(&base, "portal.bypass_default_seconds", "1").unwrap()
                } else {
                    base
                };
                // Likewise the passed session's inactivity timeout and lifetime.
                let base = match def.key {
                    "passed_sessions.lifetime_seconds" => {
                        set(&base, "passed_sessions.max_lifetime_seconds", "2592000").unwrap()
                    }
                    "passed_sessions.max_lifetime_seconds" => {
                        set(&base, "passed_sessions.lifetime_seconds", "5").unwrap()
                    }
                    _ => base,
                };
                for ok in [min, max] {
                    set(&base, def.key, &ok.to_string())
                        .unwrap_or_else(|e| panic!("{} {ok}: {e}", def.key));
                }
                for bad in [min - 1, max + 1] {
                    let err = set(&base, def.key, &bad.to_string())
                        .unwrap_err()
                        .to_string();
                    assert!(
                        err.contains(def.key) && err.contains("out of range"),
                        "{err}"
                    );
                }
            }
        }
    }

    #[test]
    fn named_ranges_of_the_product() {
        let d = Settings::default();
        assert!(set(&d, "portal.max_mobile_devices", "10").is_ok());
        assert!(set(&d, "portal.max_mobile_devices", "11").is_err());
        assert!(set(&d, "portal.max_mobile_devices", "0").is_err());
        assert!(set(&d, "pin.history", "10").is_ok());
        assert!(set(&d, "pin.history", "0").is_err());
        assert_eq!(d.portal.bypass_default_seconds, 300);
        assert_eq!(d.pin.history, 5);
    }

    #[test]
    fn bad_values_name_the_key() {
        let d = Settings::default();
        let cases = [
            ("portal.allow_login", "maybe"),
            ("portal.max_mobile_devices", "three"),
            ("portal.primary_auth", "kerberos"),
            ("portal.selectable_methods", "oath_token,fax"),
            ("portal.url", "ftp://x"),
            ("portal.url", "https://"),
            ("fraud.code", "12a"),
            ("fraud.code", ""),
            ("fraud.code", "123456789"),
            ("trusted_ips.ranges", "10.0.0.0/33"),
            ("trusted_ips.ranges", "not-an-ip"),
            ("sdk.admin_group", ""),
            ("phone.default_country", "XX"),
            ("phone.default_country", "NLD"),
        ];
        for (k, v) in cases {
            let err = set(&d, k, v).unwrap_err().to_string();
            assert!(err.starts_with(k), "{k}={v}: {err}");
        }
        let err = set(&d, "portal.allow_logn", "true")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown setting") && err.contains("portal.allow_login"),
            "{err}"
        );
        assert!(set(&d, "nosuch.key", "1")
            .unwrap_err()
            .to_string()
            .contains("settings show"));
    }

    #[test]
    fn cross_key_rules() {
        let d = Settings::default();
        let s = set(&d, "portal.allow_select_method", "true").unwrap();
        assert!(set(&s, "portal.selectable_methods", "").is_err());
        assert!(set(&d, "portal.selectable_methods", "").is_ok());
        assert!(set(&d, "portal.bypass_default_seconds", "3601").is_err());
        // Whether this node has the directory is the engine's check.
        assert!(set(&d, "portal.primary_auth", "ldap").is_ok());
    }

    #[test]
    fn normalisation_and_rows() {
        let d = Settings::default();
        let s = set(
            &d,
            "trusted_ips.ranges",
            "10.1.2.3/8, 192.168.1.7, ::1, 10.0.0.0/8",
        )
        .unwrap();
        assert_eq!(
            s.trusted_ips.ranges,
            vec!["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
        );
        let s = set(&s, "trusted_ips.enabled", "on").unwrap();
        assert!(s.trusted_ips.contains("10.200.0.1".parse().unwrap()));
        assert!(!s.trusted_ips.contains("11.0.0.1".parse().unwrap()));
        let s = set(&s, "portal.selectable_methods", "oath_token, oath_token").unwrap();
        assert_eq!(s.portal.selectable_methods, vec![MethodKind::OathToken]);
        let rows = s.changed_rows();
        // Both changed, and the methods (all of this build by default).
        assert_eq!(rows.len(), 3);
        let (back, unknown) = Settings::from_rows(
            rows.into_iter()
                .chain([("future.key".to_string(), "1".to_string())]),
        )
        .unwrap();
        assert_eq!(back, s);
        assert_eq!(unknown, vec!["future.key"]);
    }

    #[test]
    fn only_methods_of_this_build_are_selectable() {
        let built: Vec<&str> = crate::methods::AVAILABLE
            .iter()
            .map(|m| m.kind().as_str())
            .collect();
        assert_eq!(METHODS, built.as_slice());
        let s = Settings::default();
        for absent in MethodKind::ALL
            .iter()
            .filter(|k| !crate::methods::is_available(**k))
        {
            let err = set(&s, "portal.selectable_methods", absent.as_str()).unwrap_err();
            assert!(err.to_string().contains("is not one of"), "{err}");
        }
        // A value stored by a build with more methods loads without them,
        // and says so.
        let (back, unknown) = Settings::from_rows([(
            "portal.selectable_methods".to_string(),
            r#"["webauthn","oath_token"]"#.to_string(),
        )])
        .unwrap();
        assert_eq!(back.portal.selectable_methods, vec![MethodKind::OathToken]);
        assert_eq!(unknown, vec![r#"portal.selectable_methods="webauthn""#]);
    }

    #[test]
    fn corrupt_stored_values_are_errors() {
        let err = Settings::from_rows([("pin.history".to_string(), "42".to_string())]).unwrap_err();
        assert!(err.to_string().contains("pin.history"));
        assert!(Settings::from_rows([("pin.history".to_string(), "{".to_string())]).is_err());
    }
}

//! Process configuration: a TOML file, then `TWOFOLD_*` environment variables
//! over it, then defaults. `KEYS` is the single table of what exists: it
//! drives parsing, environment names, error messages and `config example`.
//!
//! This is the static part (where to listen, which database, which files).
//! Everything an administrator tunes at run time lives in the database as
//! settings (`twofold settings`), so all nodes share it.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod directory;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Path,
    Addr,
    Int {
        min: i64,
        max: i64,
    },
    Choice(&'static [&'static str]),
    /// `true` or `false` (a TOML boolean).
    Bool,
    /// A TOML array of strings; in the environment, comma-separated.
    List,
}

struct Key {
    path: &'static str,
    env: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
    /// Secrets may also come from a file named by `<ENV>_FILE`.
    secret: bool,
}

const KEYS: &[Key] = &[
    Key { path: "data_dir", env: "TWOFOLD_DATA_DIR", kind: Kind::Path, default: "./twofold-data", help: "Directory for the SQLite database, the sealing key, the generated certificate and logs. Created on first start.", secret: false },
    Key { path: "listen", env: "TWOFOLD_LISTEN", kind: Kind::Addr, default: "127.0.0.1:8443", help: "Address and port the HTTPS server listens on.", secret: false },
    Key { path: "public_url", env: "TWOFOLD_PUBLIC_URL", kind: Kind::Text, default: "<unset>: the setting portal.url, else the listen address", help: "Base URL at which the telephony provider reaches Twofold's webhooks (/hooks/twilio/...), e.g. https://mfa.example.org. Must be reachable from the provider: a loopback address only works with a provider on this machine.", secret: false },
    Key { path: "database.url", env: "TWOFOLD_DATABASE_URL", kind: Kind::Text, default: "sqlite://<data_dir>/twofold.db", help: "sqlite://PATH (one server) or postgres://USER:PASSWORD@HOST/DB (several nodes).", secret: true },
    Key { path: "database.max_connections", env: "TWOFOLD_DATABASE_MAX_CONNECTIONS", kind: Kind::Int { min: 1, max: 256 }, default: "8", help: "Connections in the pool. On PostgreSQL a node also holds up to half as many (at most 8) for the sign-in's reads and one per group-commit lane (one per two cores, at most 4).", secret: false },
    Key { path: "tls.cert_file", env: "TWOFOLD_TLS_CERT_FILE", kind: Kind::Path, default: "<data_dir>/tls/cert.pem, self-signed, generated when missing", help: "PEM certificate chain. Set together with tls.key_file to use your own certificate.", secret: false },
    Key { path: "tls.key_file", env: "TWOFOLD_TLS_KEY_FILE", kind: Kind::Path, default: "<data_dir>/tls/key.pem, generated when missing", help: "PEM private key of the certificate.", secret: false },
    Key { path: "secrets.sealing_key_file", env: "TWOFOLD_SEALING_KEY_FILE", kind: Kind::Path, default: "<data_dir>/sealing.key, created with mode 0600 when missing", help: "Key that seals OATH seeds at rest and peppers every password, PIN and answer hash. Keep it out of database backups, but back it up: without it sealed secrets cannot be opened nor peppered hashes verified. Every node needs the same file.", secret: false },
    Key { path: "log.level", env: "TWOFOLD_LOG_LEVEL", kind: Kind::Text, default: "info", help: "tracing filter, e.g. info or twofold=debug,sqlx=warn.", secret: false },
    Key { path: "log.format", env: "TWOFOLD_LOG_FORMAT", kind: Kind::Choice(&["text", "json"]), default: "text", help: "Format of log lines on standard error.", secret: false },
    Key { path: "log.directory", env: "TWOFOLD_LOG_DIR", kind: Kind::Path, default: "<data_dir>/logs", help: "Where JSON log files roll daily while the setting portal.logging is on.", secret: false },
    Key { path: "proxy.trusted", env: "TWOFOLD_TRUSTED_PROXIES", kind: Kind::Text, default: "none", help: "Comma-separated addresses or CIDR ranges of reverse proxies / load balancers whose X-Forwarded-For is believed. The client is then the rightmost address in that header that is not one of them. Leave unset when clients connect directly.", secret: false },
    Key { path: "metrics.token", env: "TWOFOLD_METRICS_TOKEN", kind: Kind::Text, default: "<unset>", help: "Bearer token that opens GET /metrics (Prometheus) to any address: at least 16 visible characters. Prefer token_file (TWOFOLD_METRICS_TOKEN_FILE). With neither metrics.token nor metrics.allow, /metrics does not exist.", secret: true },
    Key { path: "metrics.allow", env: "TWOFOLD_METRICS_ALLOW", kind: Kind::List, default: "<unset>", help: "Addresses or CIDR ranges that may read GET /metrics without the token (comma-separated in the environment), e.g. the Prometheus server's. The client address is the one proxy.trusted resolves.", secret: false },
    Key { path: "sdk.url", env: "TWOFOLD_SDK_URL", kind: Kind::Text, default: "<unset>; required by `twofold portal`", help: "`twofold portal` only: the MFA server's HTTPS address, e.g. https://mfa.internal:8443. The portal reaches the server only through its Web Service SDK; http:// is refused.", secret: false },
    Key { path: "sdk.username", env: "TWOFOLD_SDK_USERNAME", kind: Kind::Text, default: "<unset>; required by `twofold portal`", help: "`twofold portal` only: the service account the portal uses (`twofold service-account create portal` on the MFA server).", secret: false },
    Key { path: "sdk.password", env: "TWOFOLD_SDK_PASSWORD", kind: Kind::Text, default: "<unset>; required by `twofold portal`", help: "`twofold portal` only: the service account's secret. Prefer TWOFOLD_SDK_PASSWORD_FILE.", secret: true },
    Key { path: "sdk.ca_file", env: "TWOFOLD_SDK_CA_FILE", kind: Kind::Path, default: "<unset>; set this or sdk.fingerprint", help: "`twofold portal` only: PEM file with the CA of the MFA server's certificate, or that certificate itself (its name must match sdk.url's host). Exactly one of sdk.ca_file and sdk.fingerprint.", secret: false },
    Key { path: "sdk.fingerprint", env: "TWOFOLD_SDK_FINGERPRINT", kind: Kind::Text, default: "<unset>; set this or sdk.ca_file", help: "`twofold portal` only: the SHA-256 fingerprint of the MFA server's certificate as `twofold serve` prints it (AB:CD:...). Only that certificate is accepted.", secret: false },
    Key { path: "smtp.host", env: "TWOFOLD_SMTP_HOST", kind: Kind::Text, default: "<unset>: no mail is sent", help: "Mail server for the welcome mail (sent to a user added with an email address while the setting portal.url is set).", secret: false },
    Key { path: "smtp.port", env: "TWOFOLD_SMTP_PORT", kind: Kind::Int { min: 1, max: 65535 }, default: "587", help: "Mail server port; when unset 587 for starttls, 465 for tls, 25 for none.", secret: false },
    Key { path: "smtp.tls", env: "TWOFOLD_SMTP_TLS", kind: Kind::Choice(&["starttls", "tls", "none"]), default: "starttls", help: "starttls (required, port 587), tls (implicit, port 465) or none (only to a relay on a loopback address).", secret: false },
    Key { path: "smtp.username", env: "TWOFOLD_SMTP_USERNAME", kind: Kind::Text, default: "<unset>: no authentication", help: "Mail server account; set together with smtp.password.", secret: false },
    Key { path: "smtp.password", env: "TWOFOLD_SMTP_PASSWORD", kind: Kind::Text, default: "<unset>", help: "Mail server password. Prefer TWOFOLD_SMTP_PASSWORD_FILE.", secret: true },
    Key { path: "smtp.from", env: "TWOFOLD_SMTP_FROM", kind: Kind::Text, default: "<unset>; required with smtp.host", help: "Sender of Twofold's mail, e.g. Twofold <mfa@example.org>.", secret: false },
    Key { path: "ldap.url", env: "TWOFOLD_LDAP_URL", kind: Kind::Text, default: "<unset>: no LDAP / Active Directory", help: "Directory for sign-in with directory credentials (when the setting portal.primary_auth is ldap) and for `twofold import ldap`: ldaps://dc1.example.org, or ldap://... with starttls on (plain ldap:// only to a loopback address).", secret: false },
    Key { path: "ldap.starttls", env: "TWOFOLD_LDAP_STARTTLS", kind: Kind::Bool, default: "false", help: "Upgrade an ldap:// connection with StartTLS.", secret: false },
    Key { path: "ldap.ca_file", env: "TWOFOLD_LDAP_CA_FILE", kind: Kind::Path, default: "<unset>: the public CA roots", help: "PEM file with the CA certificate(s) of the directory's TLS certificate (an internal CA).", secret: false },
    Key { path: "ldap.bind_dn", env: "TWOFOLD_LDAP_BIND_DN", kind: Kind::Text, default: "<unset>; required with ldap.url", help: "The service account that searches the directory, e.g. CN=twofold,OU=Service,DC=example,DC=org.", secret: false },
    Key { path: "ldap.bind_password", env: "TWOFOLD_LDAP_BIND_PASSWORD", kind: Kind::Text, default: "<unset>; required with ldap.url", help: "The service account's password. Prefer bind_password_file (TWOFOLD_LDAP_BIND_PASSWORD_FILE).", secret: true },
    Key { path: "ldap.base_dn", env: "TWOFOLD_LDAP_BASE_DN", kind: Kind::Text, default: "<unset>; required with ldap.url", help: "Where people (and groups) are searched, e.g. DC=example,DC=org.", secret: false },
    Key { path: "ldap.preset", env: "TWOFOLD_LDAP_PRESET", kind: Kind::Choice(&["active_directory", "openldap"]), default: "active_directory", help: "active_directory: sign in as user, DOMAIN\\user or user@upn (sAMAccountName, userPrincipalName, groups from memberOf); openldap: uid, groups from memberOf or a group search.", secret: false },
    Key { path: "ldap.user_filter", env: "TWOFOLD_LDAP_USER_FILTER", kind: Kind::Text, default: "<unset>: the preset's", help: "LDAP filter finding one person, with a {username} placeholder (escaped), e.g. (&(objectClass=person)(uid={username})).", secret: false },
    Key { path: "ldap.group_attribute", env: "TWOFOLD_LDAP_GROUP_ATTRIBUTE", kind: Kind::Text, default: "memberOf", help: "Attribute of a person holding the DNs of their groups.", secret: false },
    Key { path: "ldap.timeout", env: "TWOFOLD_LDAP_TIMEOUT", kind: Kind::Int { min: 1, max: 60 }, default: "5", help: "Seconds to wait for the directory (connect, and each operation) before a sign-in fails with a clear error.", secret: false },
    Key { path: "ldap.pool_size", env: "TWOFOLD_LDAP_POOL_SIZE", kind: Kind::Int { min: 1, max: 64 }, default: "4", help: "Service-account connections kept open.", secret: false },
    Key { path: "radius.servers", env: "TWOFOLD_RADIUS_SERVERS", kind: Kind::List, default: "<unset>: no RADIUS", help: "RADIUS servers for sign-in (when the setting portal.primary_auth is radius), host:port each, tried in order, e.g. [\"nps1.example.org:1812\", \"nps2.example.org:1812\"] (environment: comma-separated). The server must send Message-Authenticator in its replies.", secret: false },
    Key { path: "radius.secret", env: "TWOFOLD_RADIUS_SECRET", kind: Kind::Text, default: "<unset>; required with radius.servers", help: "The shared secret. Prefer secret_file (TWOFOLD_RADIUS_SECRET_FILE).", secret: true },
    Key { path: "radius.timeout", env: "TWOFOLD_RADIUS_TIMEOUT", kind: Kind::Int { min: 1, max: 30 }, default: "3", help: "Seconds to wait for one reply.", secret: false },
    Key { path: "radius.retries", env: "TWOFOLD_RADIUS_RETRIES", kind: Kind::Int { min: 0, max: 10 }, default: "1", help: "Retransmissions to one server before the next is tried.", secret: false },
    Key { path: "radius.nas_identifier", env: "TWOFOLD_RADIUS_NAS_IDENTIFIER", kind: Kind::Text, default: "twofold", help: "NAS-Identifier sent in each request (a server's client rules may match it).", secret: false },
    Key { path: "delivery.provider", env: "TWOFOLD_DELIVERY_PROVIDER", kind: Kind::Choice(&["twilio", "outbox"]), default: "twilio", help: "Where calls and text messages go: twilio (the [twilio] account, when set) or outbox (DEVELOPMENT ONLY: nothing is sent; they are kept for the page /dev/outbox, which anyone reaching the server can use).", secret: false },
    Key { path: "twilio.base_url", env: "TWOFOLD_TWILIO_BASE_URL", kind: Kind::Text, default: "https://api.twilio.com", help: "REST API of a Twilio-compatible provider (calls and text messages). https:// (plain http only to a loopback address).", secret: false },
    Key { path: "twilio.account_sid", env: "TWOFOLD_TWILIO_ACCOUNT_SID", kind: Kind::Text, default: "<unset>: no calls or text messages", help: "Account SID; setting it turns phone call and text message verification on.", secret: false },
    Key { path: "twilio.auth_token", env: "TWOFOLD_TWILIO_AUTH_TOKEN", kind: Kind::Text, default: "<unset>; required with twilio.account_sid", help: "Auth token: authenticates Twofold to the provider and the provider's webhooks to Twofold. Prefer TWOFOLD_TWILIO_AUTH_TOKEN_FILE.", secret: true },
    Key { path: "twilio.from", env: "TWOFOLD_TWILIO_FROM", kind: Kind::Text, default: "<unset>; required with twilio.account_sid", help: "Caller id of calls and sender of text messages, E.164 (+3197010260001).", secret: false },
];

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must not appear in logs or debug output.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where `twofold portal` finds the MFA server's Web Service SDK. Each field
/// is checked when given; `Config::portal_sdk` says which are required.
#[derive(Debug, Clone, Default)]
pub struct SdkConfig {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub fingerprint: Option<[u8; 32]>,
}

/// How `twofold portal` trusts the MFA server.
#[derive(Debug, Clone)]
pub enum SdkTrust {
    CaFile(PathBuf),
    Fingerprint([u8; 32]),
}

/// Everything `twofold portal` needs to reach the SDK.
#[derive(Debug, Clone)]
pub struct PortalSdk {
    pub url: String,
    pub username: String,
    pub password: Secret,
    pub trust: SdkTrust,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    pub max_connections: u32,
    /// Both set, or neither (then a self-signed pair lives in the data dir).
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub sealing_key_file: PathBuf,
    pub log_level: String,
    pub log_format: LogFormat,
    pub log_dir: PathBuf,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub sdk: SdkConfig,
    /// `[smtp]`, when `smtp.host` is set.
    pub smtp: Option<twofold_delivery::SmtpConfig>,
    /// `[twilio]`, when `twilio.account_sid` is set.
    pub twilio: Option<twofold_delivery::TwilioConfig>,
    /// `delivery.provider = "outbox"`: the development outbox.
    pub outbox: bool,
    /// Where providers reach the webhooks, when set.
    pub public_url: Option<String>,
    /// `[ldap]` and `[radius]`, when set.
    pub directories: directory::Directories,
    /// `[metrics]`: who may read `GET /metrics`.
    pub metrics: MetricsConfig,
}

/// `[metrics]`; `/metrics` exists when either is set.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    pub token: Option<Secret>,
    pub allow: Vec<ipnet::IpNet>,
}

impl MetricsConfig {
    pub fn is_on(&self) -> bool {
        self.token.is_some() || !self.allow.is_empty()
    }
}

impl Config {
    /// The SDK settings `twofold portal` requires: URL, service account and
    /// exactly one of a CA file or a fingerprint.
    pub fn portal_sdk(&self) -> Result<PortalSdk, ConfigError> {
        let missing = |p: &str, why: &str| {
            ConfigError(format!(
                "{p} ({}) is required by `twofold portal`: {why}",
                key(p).env
            ))
        };
        let url = self.sdk.url.clone().ok_or_else(|| {
            missing(
                "sdk.url",
                "the MFA server's HTTPS address, e.g. https://mfa.internal:8443",
            )
        })?;
        let username = self.sdk.username.clone().ok_or_else(|| {
            missing(
                "sdk.username",
                "the service account the portal signs in to the SDK with",
            )
        })?;
        let password = self.sdk.password.clone().ok_or_else(|| {
            missing(
                "sdk.password",
                "the service account's secret (or TWOFOLD_SDK_PASSWORD_FILE)",
            )
        })?;
        let trust = match (&self.sdk.ca_file, &self.sdk.fingerprint) {
            (Some(path), None) => SdkTrust::CaFile(path.clone()),
            (None, Some(fp)) => SdkTrust::Fingerprint(*fp),
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "sdk.ca_file (TWOFOLD_SDK_CA_FILE) and sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT) are both set; `twofold portal` trusts one of them: use one".into(),
                ))
            }
            (None, None) => {
                return Err(ConfigError(
                    "`twofold portal` needs one of sdk.ca_file (TWOFOLD_SDK_CA_FILE) or sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT) to trust the MFA server's certificate; the fingerprint is printed by `twofold serve`".into(),
                ))
            }
        };
        Ok(PortalSdk {
            url,
            username,
            password,
            trust,
        })
    }

    pub fn self_signed_paths(&self) -> (PathBuf, PathBuf) {
        let dir = self.data_dir.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    }

    /// Loads `file` (when given) and the environment read through `env`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut raw: BTreeMap<&'static str, String> = BTreeMap::new();
        if let Some(path) = file {
            read_file(path, &mut raw)?;
        }
        read_env(env, &mut raw)?;
        resolve(&raw)
    }
}

fn key(path: &str) -> &'static Key {
    KEYS.iter()
        .find(|k| k.path == path)
        .expect("key is in KEYS")
}

fn read_file(path: &Path, raw: &mut BTreeMap<&'static str, String>) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e| {
        ConfigError(format!(
            "config file {} is not valid TOML: {e}",
            path.display()
        ))
    })?;
    let mut flat = Vec::new();
    flatten("", &toml::Value::Table(table), &mut flat);
    let names: Vec<String> = flat.iter().map(|(n, _)| n.clone()).collect();
    for (name, value) in flat {
        // `bind_password_file = "/etc/twofold/ldap.pass"`: a secret read
        // from a file, as <VARIABLE>_FILE does in the environment.
        if let Some(k) = name
            .strip_suffix("_file")
            .and_then(|base| KEYS.iter().find(|k| k.path == base && k.secret))
        {
            let toml::Value::String(file) = value else {
                return Err(ConfigError(format!("{name}: expected a file name")));
            };
            if names.iter().any(|n| n == k.path) {
                return Err(ConfigError(format!(
                    "{}: {} and {name} are both set; use one",
                    path.display(),
                    k.path
                )));
            }
            let v = std::fs::read_to_string(&file)
                .map_err(|e| ConfigError(format!("{name}: cannot read {file}: {e}")))?;
            let v = v.trim().to_string();
            if v.is_empty() {
                return Err(ConfigError(format!("{name}: {file} is empty")));
            }
            raw.insert(k.path, v);
            continue;
        }
        let Some(k) = KEYS.iter().find(|k| k.path == name) else {
            let known: Vec<&str> = KEYS.iter().map(|k| k.path).collect();
            return Err(ConfigError(format!(
                "{}: unknown key {name:?}; known keys: {}",
                path.display(),
                known.join(", ")
            )));
        };
        let text = match (&k.kind, value) {
            (Kind::Int { .. }, toml::Value::Integer(i)) => i.to_string(),
            (Kind::Int { .. }, other) => {
                return Err(ConfigError(format!(
                    "{name}: expected an integer, found {}",
                    other.type_str()
                )))
            }
            (Kind::Bool, toml::Value::Boolean(b)) => b.to_string(),
            (Kind::List, toml::Value::Array(items)) => {
                let mut texts = Vec::new();
                for item in items {
                    let toml::Value::String(t) = item else {
                        return Err(ConfigError(format!(
                            "{name}: expected a list of strings, found a {} in it",
                            item.type_str()
                        )));
                    };
                    texts.push(t);
                }
                texts.join(",")
            }
            (_, toml::Value::String(s)) => s,
            (_, other) => {
                return Err(ConfigError(format!(
                    "{name}: expected a string, found {}",
                    other.type_str()
                )))
            }
        };
        raw.insert(k.path, text);
    }
    Ok(())
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, child) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                // A table where a value belongs is reported as an unknown key.
                if matches!(child, toml::Value::Table(_))
                    && !KEYS
                        .iter()
                        .any(|key| key.path.starts_with(&format!("{name}.")))
                {
                    out.push((name, child.clone()));
                } else {
                    flatten(&name, child, out);
                }
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn read_env(
    env: &dyn Fn(&str) -> Option<String>,
    raw: &mut BTreeMap<&'static str, String>,
) -> Result<(), ConfigError> {
    for k in KEYS {
        let direct = env(k.env);
        let file_var = format!("{}_FILE", k.env);
        let from_file = if k.secret { env(&file_var) } else { None };
        match (direct, from_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(format!(
                    "{} and {file_var} are both set; use one",
                    k.env
                )))
            }
            (Some(v), None) => {
                if v.trim().is_empty() {
                    return Err(ConfigError(format!("{} is set but empty", k.env)));
                }
                raw.insert(k.path, v);
            }
            (None, Some(path)) => {
                let v = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("{file_var}: cannot read {path}: {e}")))?;
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(ConfigError(format!("{file_var}: {path} is empty")));
                }
                raw.insert(k.path, v);
            }
            (None, None) => {}
        }
    }
    Ok(())
}

fn resolve(raw: &BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
    let get = |p: &str| raw.get(key(p).path).cloned();
    let bad = |p: &str, msg: String| ConfigError(format!("{p} ({}): {msg}", key(p).env));

    let path_of = |p: &str| -> Result<Option<PathBuf>, ConfigError> {
        match get(p) {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Err(bad(p, "must not be empty".into())),
            Some(s) => Ok(Some(PathBuf::from(s.trim()))),
        }
    };

    let data_dir = path_of("data_dir")?.unwrap_or_else(|| PathBuf::from("./twofold-data"));

    let listen_text = get("listen").unwrap_or_else(|| key("listen").default.to_string());
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        bad(
            "listen",
            format!(
                "{listen_text:?} is not an address and port such as 127.0.0.1:8443 or [::]:443"
            ),
        )
    })?;

    let database_url = match get("database.url") {
        Some(u) => {
            let u = u.trim().to_string();
            let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|s| u.starts_with(s));
            if !scheme_ok {
                // Never echo the URL: it may hold a password.
                return Err(bad(
                    "database.url",
                    "must start with sqlite:// or postgres://".into(),
                ));
            }
            u
        }
        None => format!("sqlite://{}", data_dir.join("twofold.db").display()),
    };

    let max_connections = u32::try_from(int_of(raw, "database.max_connections")?)
        .map_err(|_| bad("database.max_connections", "out of range".into()))?;

    let tls_files = match (path_of("tls.cert_file")?, path_of("tls.key_file")?) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(bad(
                "tls.key_file",
                "must be set together with tls.cert_file".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(bad(
                "tls.cert_file",
                "must be set together with tls.key_file".into(),
            ))
        }
    };

    let sealing_key_file =
        path_of("secrets.sealing_key_file")?.unwrap_or_else(|| data_dir.join("sealing.key"));

    let log_level = get("log.level").unwrap_or_else(|| "info".into());
    tracing_subscriber::EnvFilter::try_new(&log_level).map_err(|e| {
        bad(
            "log.level",
            format!("{log_level:?} is not a log filter: {e}"),
        )
    })?;

    let log_format = match choice_of(raw, "log.format")? {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let log_dir = path_of("log.directory")?.unwrap_or_else(|| data_dir.join("logs"));

    let trusted_proxies = match get("proxy.trusted") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "none")
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        bad(
                            "proxy.trusted",
                            format!("{s:?} is not an IP address or CIDR range"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };

    let sdk = SdkConfig {
        url: match get("sdk.url") {
            None => None,
            // The message never echoes the URL: a careless one may hold a password.
            Some(u) => Some(twofold_sdk::check_url(&u).map_err(|e| bad("sdk.url", e.to_string()))?),
        },
        username: match get("sdk.username") {
            None => None,
            Some(u) if u.trim().is_empty() || u.contains(':') || u.len() > 256 => {
                return Err(bad(
                    "sdk.username",
                    "must be a service account name (no ':')".into(),
                ))
            }
            Some(u) => Some(u.trim().to_string()),
        },
        password: get("sdk.password").map(Secret),
        ca_file: path_of("sdk.ca_file")?,
        fingerprint: match get("sdk.fingerprint") {
            None => None,
            Some(f) => Some(
                twofold_sdk::parse_fingerprint(&f)
                    .map_err(|e| bad("sdk.fingerprint", e.to_string()))?,
            ),
        },
    };

    let smtp = smtp_of(raw)?;
    let twilio = twilio_of(raw)?;
    let outbox = choice_of(raw, "delivery.provider")? == "outbox";
    if outbox && twilio.is_some() {
        return Err(bad(
            "delivery.provider",
            "is outbox, which sends nothing, but [twilio] is set too; unset one".into(),
        ));
    }
    let public_url = match get("public_url") {
        None => None,
        Some(u) => {
            let u = u.trim().trim_end_matches('/').to_string();
            let ok = reqwest::Url::parse(&u).is_ok_and(|p| {
                matches!(p.scheme(), "https" | "http")
                    && p.host_str().is_some()
                    && p.query().is_none()
                    && p.username().is_empty()
            });
            if !ok {
                return Err(bad(
                    "public_url",
                    "must be an https:// URL such as https://mfa.example.org".into(),
                ));
            }
            Some(u)
        }
    };

    Ok(Config {
        data_dir,
        listen,
        database_url,
        max_connections,
        tls_files,
        sealing_key_file,
        log_level,
        log_format,
        log_dir,
        trusted_proxies,
        sdk,
        smtp,
        twilio,
        outbox,
        public_url,
        directories: directory::Directories {
            ldap: directory::ldap_of(raw)?,
            radius: directory::radius_of(raw)?,
        },
        metrics: metrics_of(raw)?,
    })
}

/// `[metrics]`: a token a Prometheus server can send as a bearer token,
/// and the ranges allowed without it (parsed as `proxy.trusted` is).
fn metrics_of(raw: &BTreeMap<&'static str, String>) -> Result<MetricsConfig, ConfigError> {
    let bad = |p: &str, msg: String| ConfigError(format!("{p} ({}): {msg}", key(p).env));
    let token = match raw.get("metrics.token").map(|t| t.trim()) {
        None => None,
        // Never echo the token. Visible ASCII: it travels in a header.
        Some(t) if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(bad(
                "metrics.token",
                "must be at least 16 visible ASCII characters, without spaces".into(),
            ))
        }
        Some(t) => Some(Secret(t.to_string())),
    };
    let allow = raw
        .get("metrics.allow")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    bad(
                        "metrics.allow",
                        format!("{s:?} is not an IP address or CIDR range"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MetricsConfig { token, allow })
}

/// `[twilio]`: nothing when `twilio.account_sid` is unset, else a checked
/// whole.
fn twilio_of(
    raw: &BTreeMap<&'static str, String>,
) -> Result<Option<twofold_delivery::TwilioConfig>, ConfigError> {
    let get = |p: &str| raw.get(key(p).path).map(|s| s.trim().to_string());
    let Some(account_sid) = get("twilio.account_sid").filter(|s| !s.is_empty()) else {
        let stray = ["twilio.auth_token", "twilio.from"]
            .into_iter()
            .find(|p| raw.contains_key(key(p).path));
        return match stray {
            Some(p) => Err(ConfigError(format!(
                "{p} ({}) is set but twilio.account_sid (TWOFOLD_TWILIO_ACCOUNT_SID) is not",
                key(p).env
            ))),
            None => Ok(None),
        };
    };
    let config = twofold_delivery::TwilioConfig {
        base_url: get("twilio.base_url")
            .unwrap_or_else(|| twofold_delivery::twilio::DEFAULT_BASE_URL.to_string()),
        account_sid,
        auth_token: zeroize::Zeroizing::new(get("twilio.auth_token").unwrap_or_default()),
        from: get("twilio.from").unwrap_or_default(),
    };
    config.check().map_err(|e| match e {
        twofold_core::Error::InvalidInput { field, message } => {
            ConfigError(format!("{field} ({}): {message}", key(&field).env))
        }
        other => ConfigError(other.to_string()),
    })?;
    Ok(Some(config))
}

/// `[smtp]`: nothing when `smtp.host` is unset, else a checked whole.
fn smtp_of(
    raw: &BTreeMap<&'static str, String>,
) -> Result<Option<twofold_delivery::SmtpConfig>, ConfigError> {
    use twofold_delivery::{MailTls, SmtpConfig};
    let get = |p: &str| raw.get(key(p).path).map(|s| s.trim().to_string());
    let Some(host) = get("smtp.host").filter(|h| !h.is_empty()) else {
        let stray = ["smtp.username", "smtp.password", "smtp.from"]
            .into_iter()
            .find(|p| raw.contains_key(key(p).path));
        return match stray {
            Some(p) => Err(ConfigError(format!(
                "{p} ({}) is set but smtp.host (TWOFOLD_SMTP_HOST) is not",
                key(p).env
            ))),
            None => Ok(None),
        };
    };
    let tls = MailTls::parse(choice_of(raw, "smtp.tls")?).unwrap_or(MailTls::StartTls);
    let port = if raw.contains_key(key("smtp.port").path) {
        u16::try_from(int_of(raw, "smtp.port")?).unwrap_or(587)
    } else {
        match tls {
            MailTls::StartTls => 587,
            MailTls::Tls => 465,
            MailTls::None => 25,
        }
    };
    let from = get("smtp.from").ok_or_else(|| {
        ConfigError(
            "smtp.from (TWOFOLD_SMTP_FROM) is required with smtp.host: the sender of Twofold's mail"
                .into(),
        )
    })?;
    let config = SmtpConfig {
        host,
        port,
        tls,
        username: get("smtp.username").filter(|u| !u.is_empty()),
        password: raw
            .get(key("smtp.password").path)
            .map(|p| zeroize::Zeroizing::new(p.clone())),
        from,
    };
    config.check().map_err(|e| match e {
        twofold_core::Error::InvalidInput { field, message } => {
            ConfigError(format!("{field} ({}): {message}", key(&field).env))
        }
        other => ConfigError(other.to_string()),
    })?;
    Ok(Some(config))
}

fn int_of(raw: &BTreeMap<&'static str, String>, p: &str) -> Result<i64, ConfigError> {
    let k = key(p);
    let Kind::Int { min, max } = k.kind else {
        unreachable!("{p} is an integer key")
    };
    let text = raw.get(k.path).map_or(k.default, String::as_str);
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| ConfigError(format!("{p} ({}): {text:?} is not a whole number", k.env)))?;
    if n < min || n > max {
        return Err(ConfigError(format!(
            "{p} ({}): {n} is out of range {min}..={max}",
            k.env
        )));
    }
    Ok(n)
}

fn choice_of(raw: &BTreeMap<&'static str, String>, p: &str) -> Result<&'static str, ConfigError> {
    let k = key(p);
    let Kind::Choice(choices) = k.kind else {
        unreachable!("{p} is a choice key")
    };
    let text = raw.get(k.path).map_or(k.default, String::as_str).trim();
    choices.iter().copied().find(|c| *c == text).ok_or_else(|| {
        ConfigError(format!(
            "{p} ({}): {text:?} is not one of {}",
            k.env,
            choices.join(", ")
        ))
    })
}

/// A complete, commented configuration file: every key with its default and
/// its environment variable.
pub fn example() -> String {
    let mut out = String::from(
        "# Twofold configuration (TOML). Use with: twofold --config FILE <command>\n\
         # or TWOFOLD_CONFIG=FILE. Every key is optional; the default is shown.\n\
         # Each key can be overridden by the environment variable named beside it;\n\
         # secrets can also be read from a file named by <VARIABLE>_FILE.\n\
         # Relative paths are relative to the working directory.\n\
         #\n\
         # Runtime settings (portal options, PIN rules, lockout, ...) are not here:\n\
         # they live in the database, shared by every node; see `twofold settings show`.\n",
    );
    let mut section = "";
    // The `let _ = write!(..)`s below write to a `String`, which cannot fail.
    for k in KEYS {
        let (sec, name) = k.path.rsplit_once('.').unwrap_or(("", k.path));
        if sec == section {
            out.push('\n');
        } else {
            let _ = write!(out, "\n[{sec}]\n");
            section = sec;
        }
        let _ = writeln!(out, "# {}", k.help);
        let mut env_line = format!("# Environment: {}", k.env);
        if k.secret {
            let _ = write!(env_line, " (or {}_FILE)", k.env);
        }
        out.push_str(&env_line);
        out.push('\n');
        let kind = match k.kind {
            Kind::Int { min, max } => format!(" ({min}..={max})"),
            Kind::Bool => " (true | false)".to_string(),
            Kind::Choice(c) => format!(" ({})", c.join(" | ")),
            _ => String::new(),
        };
        let _ = writeln!(out, "# Default: {}{kind}", k.default);
        let value = match k.kind {
            Kind::Int { .. } | Kind::Bool => k.default.to_string(),
            Kind::List => {
                let _ = writeln!(out, "# {name} = []");
                continue;
            }
            _ if k.default.contains('<') => {
                let _ = writeln!(out, "# {name} = \"\"");
                continue;
            }
            _ => format!("\"{}\"", k.default),
        };
        let _ = writeln!(out, "# {name} = {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn err(file_text: Option<&str>, env: &[(&str, &str)]) -> String {
        let f = file_text.map(file);
        Config::load(f.as_ref().map(tempfile::NamedTempFile::path), &env_of(env))
            .unwrap_err()
            .0
    }

    #[test]
    fn defaults_without_anything() {
        let c = Config::load(None, &env_of(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.data_dir, PathBuf::from("./twofold-data"));
        assert_eq!(c.database_url, "sqlite://./twofold-data/twofold.db");
        assert_eq!(c.max_connections, 8);
        assert!(c.tls_files.is_none());
        assert_eq!(
            c.sealing_key_file,
            PathBuf::from("./twofold-data/sealing.key")
        );
        assert_eq!(c.log_dir, PathBuf::from("./twofold-data/logs"));
    }

    #[test]
    fn file_then_env() {
        let f = file("data_dir = \"/srv/tf\"\nlisten = \"0.0.0.0:443\"\n[database]\nmax_connections = 20\n[log]\nformat = \"json\"\n");
        let c = Config::load(
            Some(f.path()),
            &env_of(&[("TWOFOLD_LISTEN", "127.0.0.1:9443")]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(c.data_dir, PathBuf::from("/srv/tf"));
        assert_eq!(c.database_url, "sqlite:///srv/tf/twofold.db");
        assert_eq!(c.max_connections, 20);
        assert_eq!(c.log_format, LogFormat::Json);
        let c = Config::load(
            None,
            &env_of(&[("TWOFOLD_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")]),
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.trusted_proxies[1].to_string(), "192.0.2.1/32");
    }

    #[test]
    fn secret_from_file() {
        let secret = file("postgres://tf:s3cret@db/tf\n");
        let p = secret.path().to_str().unwrap();
        let c = Config::load(None, &env_of(&[("TWOFOLD_DATABASE_URL_FILE", p)])).unwrap();
        assert_eq!(c.database_url, "postgres://tf:s3cret@db/tf");
        let e = err(
            None,
            &[
                ("TWOFOLD_DATABASE_URL_FILE", p),
                ("TWOFOLD_DATABASE_URL", "sqlite://x"),
            ],
        );
        assert!(e.contains("both set"), "{e}");
        let e = err(
            None,
            &[("TWOFOLD_DATABASE_URL_FILE", "/nonexistent/secret")],
        );
        assert!(
            e.contains("TWOFOLD_DATABASE_URL_FILE") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn missing_file() {
        let e = Config::load(Some(Path::new("/nonexistent/twofold.toml")), &env_of(&[]))
            .unwrap_err()
            .0;
        assert!(
            e.contains("cannot read config file /nonexistent/twofold.toml"),
            "{e}"
        );
    }

    #[test]
    fn malformed_toml() {
        let e = err(Some("listen = \"127.0.0.1:1\n"), &[]);
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn unknown_keys() {
        let e = err(Some("lisen = \"127.0.0.1:1\"\n"), &[]);
        assert!(
            e.contains("unknown key \"lisen\"") && e.contains("listen"),
            "{e}"
        );
        let e = err(Some("[database]\nuri = \"x\"\n"), &[]);
        assert!(e.contains("unknown key \"database.uri\""), "{e}");
        let e = err(Some("[nosuch]\na = 1\n"), &[]);
        assert!(e.contains("unknown key \"nosuch\""), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (Some("listen = \"localhost\"\n"), &[], "listen (TWOFOLD_LISTEN)"),
            (Some("listen = 8443\n"), &[], "listen: expected a string"),
            (None, &[("TWOFOLD_LISTEN", "1.2.3.4:99999")], "listen (TWOFOLD_LISTEN)"),
            (Some("[database]\nmax_connections = 0\n"), &[], "database.max_connections (TWOFOLD_DATABASE_MAX_CONNECTIONS): 0 is out of range 1..=256"),
            (Some("[database]\nmax_connections = 257\n"), &[], "out of range 1..=256"),
            (Some("[database]\nmax_connections = \"8\"\n"), &[], "database.max_connections: expected an integer"),
            (None, &[("TWOFOLD_DATABASE_MAX_CONNECTIONS", "many")], "not a whole number"),
            (None, &[("TWOFOLD_DATABASE_URL", "mysql://x")], "database.url (TWOFOLD_DATABASE_URL): must start with"),
            (Some("[tls]\ncert_file = \"/c.pem\"\n"), &[], "tls.key_file (TWOFOLD_TLS_KEY_FILE): must be set together"),
            (None, &[("TWOFOLD_TLS_KEY_FILE", "/k.pem")], "tls.cert_file"),
            (Some("[log]\nformat = \"xml\"\n"), &[], "log.format (TWOFOLD_LOG_FORMAT): \"xml\" is not one of text, json"),
            (Some("[log]\nlevel = \"info,[[\"\n"), &[], "log.level"),
            (None, &[("TWOFOLD_DATA_DIR", "")], "TWOFOLD_DATA_DIR is set but empty"),
            (None, &[("TWOFOLD_TRUSTED_PROXIES", "10.0.0.0/8, proxy.lan")], "proxy.trusted (TWOFOLD_TRUSTED_PROXIES): \"proxy.lan\""),
        ];
        for (f, env, want) in cases {
            let e = err(*f, env);
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        }
    }

    #[test]
    fn portal_sdk_requires_url_account_and_one_trust() {
        let fp = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        let full: Vec<(&str, &str)> = vec![
            ("TWOFOLD_SDK_URL", "https://mfa.internal:8443/"),
            ("TWOFOLD_SDK_USERNAME", "portal"),
            ("TWOFOLD_SDK_PASSWORD", "tf_s3cret-value"),
            ("TWOFOLD_SDK_FINGERPRINT", &fp),
        ];
        let c = Config::load(None, &env_of(&full)).unwrap();
        let sdk = c.portal_sdk().unwrap();
        assert_eq!(sdk.url, "https://mfa.internal:8443");
        assert!(matches!(sdk.trust, SdkTrust::Fingerprint(f) if f == [0xAB; 32]));
        assert!(!format!("{c:?}").contains("s3cret"), "password redacted");

        // Other commands do not need any of it.
        let c = Config::load(None, &env_of(&[])).unwrap();
        let e = c.portal_sdk().unwrap_err().0;
        assert!(e.contains("sdk.url (TWOFOLD_SDK_URL) is required"), "{e}");

        let without = |name: &str| -> Vec<(&str, &str)> {
            full.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        for (gone, want) in [
            ("TWOFOLD_SDK_USERNAME", "sdk.username (TWOFOLD_SDK_USERNAME) is required"),
            ("TWOFOLD_SDK_PASSWORD", "sdk.password (TWOFOLD_SDK_PASSWORD) is required"),
            ("TWOFOLD_SDK_FINGERPRINT", "one of sdk.ca_file (TWOFOLD_SDK_CA_FILE) or sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT)"),
        ] {
            let c = Config::load(None, &env_of(&without(gone))).unwrap();
            let e = c.portal_sdk().unwrap_err().0;
            assert!(e.contains(want), "{gone}: {e}");
        }
        let mut both = full.clone();
        both.push(("TWOFOLD_SDK_CA_FILE", "/etc/twofold/mfa.pem"));
        let e = Config::load(None, &env_of(&both))
            .unwrap()
            .portal_sdk()
            .unwrap_err()
            .0;
        assert!(e.contains("both set"), "{e}");

        let secret = file("from-a-file\n");
        let mut from_file = without("TWOFOLD_SDK_PASSWORD");
        let p = secret.path().to_str().unwrap().to_string();
        from_file.push(("TWOFOLD_SDK_PASSWORD_FILE", &p));
        let c = Config::load(None, &env_of(&from_file)).unwrap();
        assert_eq!(c.portal_sdk().unwrap().password.0, "from-a-file");
    }

    #[test]
    fn sdk_values_are_checked_when_given() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (
                None,
                &[("TWOFOLD_SDK_URL", "http://mfa.internal")],
                "sdk.url (TWOFOLD_SDK_URL): the SDK URL must use https://",
            ),
            (
                None,
                &[("TWOFOLD_SDK_URL", "mfa.internal")],
                "sdk.url (TWOFOLD_SDK_URL)",
            ),
            (
                Some("[sdk]\nurl = \"ftp://x\"\n"),
                &[],
                "sdk.url (TWOFOLD_SDK_URL)",
            ),
            (
                None,
                &[("TWOFOLD_SDK_FINGERPRINT", "AB:CD")],
                "sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT)",
            ),
            (
                None,
                &[("TWOFOLD_SDK_USERNAME", "a:b")],
                "sdk.username (TWOFOLD_SDK_USERNAME)",
            ),
            (
                Some("[sdk]\nca_file = \"\"\n"),
                &[],
                "sdk.ca_file (TWOFOLD_SDK_CA_FILE): must not be empty",
            ),
        ];
        for (f, env, want) in cases {
            let e = err(*f, env);
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        }
        let e = err(
            None,
            &[("TWOFOLD_SDK_URL", "http://u:hunter22@mfa.internal")],
        );
        assert!(!e.contains("hunter22"), "{e}");
    }

    #[test]
    fn database_url_is_not_echoed() {
        let e = err(None, &[("TWOFOLD_DATABASE_URL", "mysql://u:hunter22@h/d")]);
        assert!(!e.contains("hunter22"), "{e}");
    }

    #[test]
    fn metrics_are_off_unless_a_token_or_addresses_are_given() {
        let c = Config::load(None, &env_of(&[])).unwrap();
        assert!(!c.metrics.is_on());

        let c = Config::load(
            None,
            &env_of(&[
                ("TWOFOLD_METRICS_TOKEN", "0123456789abcdef-token"),
                ("TWOFOLD_METRICS_ALLOW", "10.0.0.0/8, 192.0.2.7"),
            ]),
        )
        .unwrap();
        assert!(c.metrics.is_on());
        assert_eq!(c.metrics.token.unwrap().0, "0123456789abcdef-token");
        assert_eq!(c.metrics.allow[1].to_string(), "192.0.2.7/32");

        // In the TOML file: a list, and the token from a file.
        let token = file("0123456789abcdef-from-file\n");
        let toml = format!(
            "[metrics]\nallow = [\"127.0.0.1/32\"]\ntoken_file = {:?}\n",
            token.path()
        );
        let f = file(&toml);
        let c = Config::load(Some(f.path()), &env_of(&[])).unwrap();
        assert_eq!(c.metrics.token.unwrap().0, "0123456789abcdef-from-file");
        assert_eq!(c.metrics.allow.len(), 1);

        let e = err(None, &[("TWOFOLD_METRICS_TOKEN", "short s3cret")]);
        assert!(e.contains("metrics.token (TWOFOLD_METRICS_TOKEN)"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = err(None, &[("TWOFOLD_METRICS_ALLOW", "prometheus.lan")]);
        assert!(
            e.contains("metrics.allow (TWOFOLD_METRICS_ALLOW): \"prometheus.lan\""),
            "{e}"
        );
    }

    #[test]
    fn example_names_every_key_and_parses_back() {
        let ex = example();
        for k in KEYS {
            assert!(ex.contains(k.env), "{} missing", k.env);
            let name = k.path.rsplit('.').next().unwrap();
            assert!(ex.contains(&format!("# {name} = ")), "{} missing", k.path);
        }
        // Uncommenting every key with a concrete default gives a valid file.
        let uncommented: String = ex
            .lines()
            .map(|l| {
                if l.starts_with("# ")
                    && l.contains(" = ")
                    && !l.contains("\"\"")
                    && !l.starts_with("# Default")
                {
                    l.trim_start_matches("# ").to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let f = file(&uncommented);
        let c = Config::load(Some(f.path()), &env_of(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
    }
}

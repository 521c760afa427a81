//! Passed sessions: a web site behind a reverse proxy (nginx `auth_request`,
//! Traefik `forwardAuth`, Caddy `forward_auth`) asks Twofold whether the
//! request's browser has passed the portal's sign-in. This module is the
//! pure part: protected sites and access rules (`passed_sessions.sites`,
//! `passed_sessions.rules`), the target of a forwarded request, the return
//! address after sign-in (never an open redirect) and the stored session.
//!
//! Everything here is decided on what a browser or a backend would do with
//! the same text: URLs are parsed with the WHATWG parser (`url`), as the
//! browser that follows a redirect parses them, and paths are judged after
//! percent-decoding, as most backends route them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The cookie that carries a passed session, for the configured cookie
/// domain. `__Secure-` makes browsers refuse it unless set over HTTPS
/// with `Secure` (unlike `__Host-`, it allows a `Domain`).
pub const COOKIE_NAME: &str = "__Secure-twofold-passed";

/// Passed-session cookies looked at per request.
pub const MAX_COOKIES: usize = 4;

/// The query parameter that carries the address to return to.
pub const RETURN_PARAM: &str = "rd";

/// The longest return address accepted (browsers keep URLs far shorter in
/// practice; a cap keeps cookies and sessions small).
pub const RETURN_MAX: usize = 2048;

/// What an access rule asks of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Anyone, signed in or not.
    Bypass,
    /// Any passed session (the password, at least).
    OneFactor,
    /// A passed session whose second step was proved.
    TwoFactor,
    /// No one.
    Deny,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::Bypass,
        Policy::OneFactor,
        Policy::TwoFactor,
        Policy::Deny,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Bypass => "bypass",
            Policy::OneFactor => "one_factor",
            Policy::TwoFactor => "two_factor",
            Policy::Deny => "deny",
        }
    }

    /// Whether a session of `level` satisfies this policy.
    pub fn admits(self, level: Level) -> bool {
        match self {
            Policy::Bypass | Policy::OneFactor => true,
            Policy::TwoFactor => level == Level::TwoFactor,
            Policy::Deny => false,
        }
    }
}

/// How far a passed session's sign-in went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    OneFactor,
    TwoFactor,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::OneFactor => "one_factor",
            Level::TwoFactor => "two_factor",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "one_factor" => Some(Level::OneFactor),
            "two_factor" => Some(Level::TwoFactor),
            _ => None,
        }
    }
}

/// How the portal's sign-in that opened a passed session was completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassedVia {
    /// Password and the user's second step (method, fallback or questions).
    SecondStep,
    /// Password, then a one-time bypass instead of the second step.
    Bypass,
    /// Password from a trusted IP address, which skips the second step.
    TrustedIp,
    /// Password, then enrollment of the first method: the new method proves
    /// nothing about who enrolled it.
    Enrollment,
}

impl PassedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            PassedVia::SecondStep => "second_step",
            PassedVia::Bypass => "bypass",
            PassedVia::TrustedIp => "trusted_ip",
            PassedVia::Enrollment => "enrollment",
        }
    }

    pub fn parse(s: &str) -> Option<PassedVia> {
        [
            PassedVia::SecondStep,
            PassedVia::Bypass,
            PassedVia::TrustedIp,
            PassedVia::Enrollment,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A stored passed session. The cookie holds a random token; the store
/// holds only its SHA-256 (`id_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedSession {
    pub id_hash: String,
    pub username: String,
    pub level: Level,
    pub via: PassedVia,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// The earlier of `last_seen_at` + the inactivity timeout and
    /// `created_at` + the absolute lifetime.
    pub expires_at: OffsetDateTime,
}

/// What the portal gets when a passed session is opened: the cookie to set
/// and where to send the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedTicket {
    /// The cookie's value (a bearer secret).
    pub token: String,
    /// The cookie's `Domain` (`None`: host-only, the portal's own host).
    pub cookie_domain: Option<String>,
    /// The cookie's `Max-Age`: the session's absolute lifetime.
    pub max_age_seconds: i64,
    /// The return address, checked against the protected sites.
    pub return_to: Option<String>,
    /// Why a return address the portal was given is not followed.
    pub refused: Option<ReturnRefused>,
}

/// Why the portal does not send the browser back where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnRefused {
    /// Not an address of a protected site (or not a clean https URL).
    NotProtected,
    /// The site needs the second step, which this sign-in skipped (a
    /// bypass or trusted IP that does not count, or enrollment).
    NeedsSecondStep,
    /// No rule lets this user in.
    Denied,
}

impl ReturnRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnRefused::NotProtected => "not_protected",
            ReturnRefused::NeedsSecondStep => "needs_second_step",
            ReturnRefused::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<ReturnRefused> {
        [
            ReturnRefused::NotProtected,
            ReturnRefused::NeedsSecondStep,
            ReturnRefused::Denied,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

// --- Hosts -------------------------------------------------------------------

/// A host name, or `*.` and a domain (any host below it, not the domain
/// itself). Compared without case and without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Below(String),
    /// Every host (`*`): only in access rules, never as a protected site.
    Any,
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host == h,
            HostPattern::Below(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            HostPattern::Any => true,
        }
    }

    /// A protected site's pattern (`passed_sessions.sites`): a host or
    /// `*.domain` with a dot in the domain — never `*` or `*.com`, which
    /// would let the portal redirect anywhere.
    pub fn parse_site(s: &str) -> Result<HostPattern> {
        let p = s.parse::<HostPattern>()?;
        match &p {
            HostPattern::Any => Err(Error::invalid(
                "sites",
                "\"*\" would send signed-in users anywhere; name the hosts (app.example.com) or a domain (*.example.com)",
            )),
            HostPattern::Below(d) if !d.contains('.') => Err(Error::invalid(
                "sites",
                format!("\"*.{d}\" is a whole top-level domain; name your own domain (*.example.{d})"),
            )),
            _ => Ok(p),
        }
    }
}

impl FromStr for HostPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<HostPattern> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Ok(HostPattern::Any);
        }
        let (below, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, s.clone()),
        };
        let name = name.trim_end_matches('.').to_string();
        if !is_host_name(&name) {
            return Err(Error::invalid(
                "sites",
                format!("{s:?} is not a host name or *.domain (letters, digits, hyphens and dots)"),
            ));
        }
        Ok(if below {
            HostPattern::Below(name)
        } else {
            HostPattern::Exact(name)
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Below(d) => write!(f, "*.{d}"),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

/// A DNS name (ASCII, as the `url` parser gives hosts after IDNA) or an
/// IPv4 address.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Checks the cookie domain setting: empty (host-only) or a host name.
pub fn check_cookie_domain(s: &str) -> Result<String> {
    let d = s.trim().trim_start_matches('.').to_ascii_lowercase();
    if d.is_empty() || is_host_name(&d) {
        Ok(d)
    } else {
        Err(Error::invalid(
            "cookie_domain",
            format!("{s:?} is not a domain name (e.g. example.com), or empty for the portal's host alone"),
        ))
    }
}

// --- Access rules --------------------------------------------------------------

/// One access rule: `HOST PATH POLICY [GROUP, GROUP…]`, e.g.
/// `app.example.com /admin/* two_factor Domain Admins, helpdesk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub host: HostPattern,
    /// `*` for every path; else an absolute path where `*` matches any run
    /// of characters (including `/`), and a final `/*` also matches the
    /// path without it (`/admin/*` covers `/admin`).
    pub path: String,
    pub policy: Policy,
    /// When not empty, only members of one of these groups (any case) are
    /// let in; others are refused (403), not sent to sign in.
    pub groups: Vec<String>,
}

impl AccessRule {
    pub fn matches(&self, host: &str, path: &str) -> bool {
        self.host.matches(host) && path_matches(&self.path, path)
    }
}

impl FromStr for AccessRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<AccessRule> {
        let bad = |why: String| Error::invalid("rules", format!("{:?}: {why}", s.trim()));
        let mut words = s.split_whitespace();
        let (Some(host), Some(path), Some(policy)) = (words.next(), words.next(), words.next())
        else {
            return Err(bad(
                "a rule is HOST PATH POLICY [GROUPS], e.g. app.example.com /admin/* two_factor admins"
                    .into(),
            ));
        };
        let host = host
            .parse::<HostPattern>()
            .map_err(|_| bad(format!("{host:?} is not a host, *.domain or *")))?;
        if path != "*" && !path.starts_with('/') {
            return Err(bad(format!(
                "the path {path:?} must start with / (or be *)"
            )));
        }
        if path.len() > 512 || path.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad(
                "the path has a backslash, a control character or is too long".into(),
            ));
        }
        let policy = Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == policy)
            .ok_or_else(|| {
                bad(format!(
                    "{policy:?} is not a policy; use bypass, one_factor, two_factor or deny"
                ))
            })?;
        let rest: Vec<&str> = words.collect();
        let groups = if rest.is_empty() {
            Vec::new()
        } else {
            let joined = rest.join(" ");
            let names: Vec<&str> = joined.split(',').map(str::trim).collect();
            crate::validate::groups(&names).map_err(|e| bad(e.to_string()))?
        };
        if !groups.is_empty() && matches!(policy, Policy::Bypass | Policy::Deny) {
            return Err(bad(format!(
                "groups only apply to one_factor and two_factor, not {}",
                policy.as_str()
            )));
        }
        Ok(AccessRule {
            host,
            path: path.to_string(),
            policy,
            groups,
        })
    }
}

impl fmt::Display for AccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.host, self.path, self.policy.as_str())?;
        if !self.groups.is_empty() {
            write!(f, " {}", self.groups.join(", "))?;
        }
        Ok(())
    }
}

/// Glob match where `*` is any run of characters; a final `/*` also
/// matches the bare prefix.
fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix("/*") {
        if path == prefix || (prefix.is_empty() && path == "/") {
            return true;
        }
    }
    glob(pattern.as_bytes(), path.as_bytes())
}

/// Iterative wildcard match (`*` only), linear in practice.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The policy for a request: the first rule that matches; none — a
/// protected site's host asks for the second step, any other is denied.
pub fn policy_for<'a>(
    rules: &'a [AccessRule],
    sites: &[HostPattern],
    target: &Target,
) -> (Policy, Option<&'a AccessRule>) {
    if let Some(rule) = rules.iter().find(|r| r.matches(&target.host, &target.path)) {
        return (rule.policy, Some(rule));
    }
    if sites.iter().any(|s| s.matches(&target.host)) {
        (Policy::TwoFactor, None)
    } else {
        (Policy::Deny, None)
    }
}

/// Parses the settings' lists (already checked when they were set).
pub fn parse_sites(raw: &[String]) -> Vec<HostPattern> {
    raw.iter()
        .filter_map(|s| HostPattern::parse_site(s).ok())
        .collect()
}

pub fn parse_rules(raw: &[String]) -> Vec<AccessRule> {
    raw.iter().filter_map(|s| s.parse().ok()).collect()
}

// --- The forwarded request -------------------------------------------------------

/// The request a reverse proxy asks about, as the proxy described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Lower case, without port or trailing dot.
    pub host: String,
    /// Percent-decoded, without query; dot segments refused, runs of `/`
    /// merged (as nginx does before it routes).
    pub path: String,
    /// The original URL, for the return address after sign-in.
    pub url: String,
}

impl Target {
    /// From the URL the proxy says the browser asked for. Refuses what a
    /// backend could read differently than the rules do: dot segments
    /// (also percent-encoded), backslashes, control characters, bad UTF-8.
    pub fn parse(original_url: &str) -> Result<Target> {
        let bad = |why: &str| Error::invalid("target", why.to_string());
        if original_url.len() > RETURN_MAX * 4 {
            return Err(bad("the forwarded URL is too long"));
        }
        if original_url
            .chars()
            .any(|c| c.is_control() || c == '\\' || c == ' ')
        {
            return Err(bad(
                "the forwarded URL has a backslash, space or control character",
            ));
        }
        let url =
            url::Url::parse(original_url).map_err(|_| bad("the forwarded URL is not a URL"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("the forwarded URL is not http(s)"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("the forwarded URL has no host"))?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        // The raw path, before the parser resolved any dot segment: a
        // request that needs resolving is not one a browser sends.
        let raw_path = original_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        let raw_path = raw_path.split(['?', '#']).next().unwrap_or("/");
        let decoded = percent_decode(raw_path).ok_or_else(|| bad("the path is not UTF-8"))?;
        if decoded.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("the path has a backslash or control character"));
        }
        let mut path = String::with_capacity(decoded.len());
        for segment in decoded.split('/') {
            if segment == "." || segment == ".." {
                return Err(bad("the path has a . or .. segment"));
            }
            if !segment.is_empty() {
                path.push('/');
                path.push_str(segment);
            }
        }
        if path.is_empty() || decoded.ends_with('/') {
            path.push('/');
        }
        Ok(Target {
            host,
            path,
            url: url.to_string(),
        })
    }

    /// From the parts `X-Forwarded-Proto`, `-Host` and `-URI` give.
    pub fn from_parts(proto: &str, host: &str, uri: &str) -> Result<Target> {
        let proto = proto.trim().to_ascii_lowercase();
        if !matches!(proto.as_str(), "http" | "https") {
            return Err(Error::invalid(
                "target",
                "X-Forwarded-Proto is not http or https",
            ));
        }
        let uri = if uri.is_empty() { "/" } else { uri };
        if !uri.starts_with('/') || uri.starts_with("//") {
            return Err(Error::invalid("target", "X-Forwarded-URI is not a path"));
        }
        if host.is_empty() || host.contains(['/', '@', '\\', '?', '#']) {
            return Err(Error::invalid("target", "X-Forwarded-Host is not a host"));
        }
        Target::parse(&format!("{proto}://{host}{uri}"))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
            if let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What a reverse proxy asks: the session cookie it forwarded and the
/// request it is about.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    /// The passed-session cookies' values the browser sent, in its order
    /// (a stale cookie of an earlier domain may come beside the current
    /// one): the first that names a live session counts.
    pub tokens: Vec<String>,
    /// `None`: the proxy did not say (or is not trusted to), so nothing is
    /// known about the request and only the default applies.
    pub target: Option<Target>,
    /// The browser's address, when a trusted proxy said it.
    pub client: Option<IpAddr>,
}

/// The signed-in user, for the headers a protected site reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    pub username: String,
    pub groups: Vec<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The answer to a reverse proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardDecision {
    /// Let the request through (with the user, unless the path is `bypass`).
    Allow(Option<RemoteUser>),
    /// Not signed in (or not far enough): to the portal's sign-in, which
    /// sends the browser back to `return_to` afterwards.
    SignIn {
        portal: String,
        return_to: Option<String>,
    },
    /// Signed in but not let in (a `deny` rule, not in the rule's groups),
    /// or a request that cannot be judged.
    Forbidden,
}

impl ForwardDecision {
    /// The portal's sign-in page with the return address (`?rd=`).
    pub fn sign_in_url(portal: &str, return_to: Option<&str>) -> String {
        match return_to {
            Some(rd) => format!("{portal}?{RETURN_PARAM}={}", urlencoding::encode(rd)),
            None => portal.to_string(),
        }
    }
}

// --- Return addresses ----------------------------------------------------------------

/// Checks the address the portal is asked to send a signed-in browser to:
/// an absolute `https` URL, without user name or password, to a host of a
/// protected site. Returns it as the browser would read it.
///
/// The checks run on the text as a browser parses it (WHATWG), after
/// refusing what browsers are lenient about: backslashes (read as `/`),
/// control characters and spaces (stripped), and a missing scheme (`//host`
/// is relative to the portal's scheme, but names another host).
pub fn check_return_url(raw: &str, sites: &[HostPattern]) -> Option<String> {
    if raw.is_empty() || raw.len() > RETURN_MAX {
        return None;
    }
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    // Exactly `https://`: not `https:/host`, `https:host` or `//host`,
    // which browsers may resolve in ways other than they look.
    if !raw
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if url.scheme() != "https"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.cannot_be_a_base()
    {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        // Sites are named by host name or IPv4 address.
        url::Host::Ipv6(_) => return None,
    };
    sites
        .iter()
        .any(|s| s.matches(&host))
        .then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(list: &[&str]) -> Vec<HostPattern> {
        list.iter()
            .map(|s| HostPattern::parse_site(s).unwrap())
            .collect()
    }

    #[test]
    fn host_patterns_match_hosts_and_subdomains() {
        let below: HostPattern = "*.Example.com".parse().unwrap();
        assert!(below.matches("app.example.com"));
        assert!(below.matches("a.b.example.com"));
        assert!(!below.matches("example.com"));
        assert!(!below.matches("badexample.com"));
        assert!(!below.matches(".example.com"));
        let exact: HostPattern = "app.example.com".parse().unwrap();
        assert!(exact.matches("app.example.com") && !exact.matches("x.app.example.com"));
        assert!(HostPattern::parse_site("*").is_err());
        assert!(HostPattern::parse_site("*.com").is_err());
        assert!(HostPattern::parse_site("app example").is_err());
        assert!(HostPattern::parse_site("exa_mple.com").is_err());
        assert!(HostPattern::parse_site("127.0.0.1").is_ok());
    }

    #[test]
    fn rules_parse_print_and_refuse_nonsense() {
        let r: AccessRule = "app.example.com /admin/* two_factor Domain Admins, helpdesk"
            .parse()
            .unwrap();
        assert_eq!(r.policy, Policy::TwoFactor);
        assert_eq!(r.groups, vec!["Domain Admins", "helpdesk"]);
        assert_eq!(
            r.to_string(),
            "app.example.com /admin/* two_factor Domain Admins, helpdesk"
        );
        let any: AccessRule = "* * deny".parse().unwrap();
        assert!(any.matches("x.y", "/z"));
        for bad in [
            "",
            "app.example.com",
            "app.example.com /x",
            "app.example.com x two_factor",
            "app.example.com /x maybe",
            "app.example.com /x bypass admins",
            "app.example.com /x\\y bypass",
            "bad_host /x bypass",
        ] {
            assert!(
                bad.parse::<AccessRule>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn paths_match_globs_and_a_final_slash_star_covers_the_bare_prefix() {
        assert!(path_matches("/admin/*", "/admin"));
        assert!(path_matches("/admin/*", "/admin/"));
        assert!(path_matches("/admin/*", "/admin/users/1"));
        assert!(!path_matches("/admin/*", "/administrator"));
        assert!(path_matches("/*.css", "/a/b/site.css"));
        assert!(!path_matches("/public", "/public/x"));
        assert!(path_matches("*", "/anything"));
        assert!(path_matches("/*", "/"));
    }

    #[test]
    fn first_matching_rule_wins_then_sites_then_deny() {
        let rules: Vec<AccessRule> = [
            "app.example.com /public/* bypass",
            "app.example.com /admin/* two_factor admins",
            "*.example.com /secret/* deny",
        ]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
        let sites = sites(&["*.example.com"]);
        let t = |u: &str| Target::parse(u).unwrap();
        let p = |u: &str| policy_for(&rules, &sites, &t(u)).0;
        assert_eq!(p("https://app.example.com/public/a.css"), Policy::Bypass);
        assert_eq!(p("https://app.example.com/admin"), Policy::TwoFactor);
        assert_eq!(p("https://other.example.com/secret/x"), Policy::Deny);
        assert_eq!(p("https://other.example.com/"), Policy::TwoFactor);
        assert_eq!(p("https://evil.test/"), Policy::Deny);
    }

    #[test]
    fn targets_are_judged_as_backends_route_them() {
        let t = Target::parse("https://App.Example.com:8443//public//x.css?q=1").unwrap();
        assert_eq!(t.host, "app.example.com");
        assert_eq!(t.path, "/public/x.css");
        assert_eq!(Target::parse("https://a.example.com").unwrap().path, "/");
        assert_eq!(
            Target::parse("https://a.example.com/%61dmin/")
                .unwrap()
                .path,
            "/admin/"
        );
        for bad in [
            "https://a.example.com/public/../admin",
            "https://a.example.com/public/%2e%2e/admin",
            "https://a.example.com/public/%2E%2e%2fadmin",
            "https://a.example.com/public/.%2E/admin",
            "https://a.example.com/public\\..\\admin",
            "https://a.example.com/public/%5c../admin",
            "https://a.example.com/x%00",
            "https://a.example.com/%ff",
            "ftp://a.example.com/",
            "not a url",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let p = Target::from_parts("https", "app.example.com", "/a?b=c").unwrap();
        assert_eq!(
            (p.host.as_str(), p.path.as_str()),
            ("app.example.com", "/a")
        );
        assert!(Target::from_parts("https", "evil.test/x", "/").is_err());
        assert!(Target::from_parts("https", "a.example.com", "//evil.test/").is_err());
        assert!(Target::from_parts("gopher", "a.example.com", "/").is_err());
    }

    #[test]
    fn return_addresses_go_only_to_protected_sites() {
        let s = sites(&["*.example.com", "intranet.example.org"]);
        assert_eq!(
            check_return_url("https://app.example.com/x?y=1#z", &s).as_deref(),
            Some("https://app.example.com/x?y=1#z")
        );
        assert!(check_return_url("https://intranet.example.org:8443/", &s).is_some());
        for bad in [
            "http://app.example.com/",
            "//app.example.com/",
            "/local/path",
            "https:/app.example.com/",
            "https:app.example.com",
            "https://evil.test/",
            "https://app.example.com.evil.test/",
            "https://evil.test\\@app.example.com/",
            "https:\\\\evil.test",
            "https://user:pw@app.example.com/",
            "https://app.example.com@evil.test/",
            "https://evil.test%2f@app.example.com/",
            "https://evil.test%2fapp.example.com/",
            "https://%65vil.test/",
            "https://app.example.com\t.evil.test/",
            " https://app.example.com/",
            "javascript:alert(1)",
            "https://[::1]/",
            "https://example.com/",
        ] {
            assert!(
                check_return_url(bad, &s).is_none(),
                "{bad:?} should be refused"
            );
        }
        // Percent-encoded host names are decoded by browsers: judged decoded.
        assert!(check_return_url("https://app%2eexample.com/", &s).is_some());
    }

    #[test]
    fn cookie_domains_are_host_names() {
        assert_eq!(check_cookie_domain(".Example.com").unwrap(), "example.com");
        assert_eq!(check_cookie_domain("").unwrap(), "");
        assert!(check_cookie_domain("example.com/x").is_err());
        assert!(check_cookie_domain("exa mple.com").is_err());
    }
}

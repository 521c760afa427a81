//! The strings the adapter builds: RFC 4515 filter values, RFC 4514 RDN
//! values, and the host of an LDAP URL.

use std::fmt::Write as _;

/// Escapes a value for an LDAP filter (RFC 4515): `*`, `(`, `)`, `\` and
/// NUL must be escaped; control characters and every non-ASCII byte are
/// too (`\XX`), so nothing typed at a sign-in can change a filter's
/// structure.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\{b:02x}");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// The value of a DN's first RDN, unescaped: `cn=vpn-users,ou=groups,…` →
/// `vpn-users`, `CN=Smith\, John,OU=…` → `Smith, John`. `None` when `dn`
/// has no `attr=value` start. Of a multi-valued RDN (`cn=a+uid=b`), the
/// first value.
pub fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let rest = rest.trim_start();
    let bytes = rest.as_bytes();
    let mut value = Vec::with_capacity(bytes.len());
    let mut i = 0;
    if bytes.first() == Some(&b'"') {
        // Legacy quoted value (RFC 2253 readers accept it).
        i = 1;
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                i += 1;
            }
            value.push(bytes[i]);
            i += 1;
        }
        return String::from_utf8(value).ok();
    }
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' | b';' => break,
            b'\\' if i + 1 < bytes.len() => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    value.push(b);
                    i += 3;
                } else {
                    value.push(bytes[i + 1]);
                    i += 2;
                }
            }
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    let value = String::from_utf8(value).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The scheme (`ldap`/`ldaps`, lower case) and host of an LDAP URL; `None`
/// for another scheme or no host.
pub fn url_scheme_and_host(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ldap" && scheme != "ldaps" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6.split_once(']')?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        host
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if valid_port(port) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    if host.is_empty() || host.contains('@') {
        return None;
    }
    Some((scheme, host.to_string()))
}

fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Whether `host` is `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `name` can be an attribute description (`memberOf`, an OID).
pub fn valid_attribute(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_filter_specials_controls_and_non_ascii() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value(")(uid=*"), "\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("a\0b"), "a\\00b");
        assert_eq!(escape_filter_value("a\nb"), "a\\0ab");
        assert_eq!(escape_filter_value("é"), "\\c3\\a9");
        assert_eq!(
            escape_filter_value("alice@example.org"),
            "alice@example.org"
        );
        for hostile in ["*", ")(uid=*", "alice)(|(uid=*", "\\", "\0", "é*(\u{7f}"] {
            let filter = format!("(uid={})", escape_filter_value(hostile));
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
        }
    }

    #[test]
    fn first_rdn_values() {
        assert_eq!(
            first_rdn_value("cn=vpn-users,ou=groups,dc=example,dc=org").as_deref(),
            Some("vpn-users")
        );
        assert_eq!(
            first_rdn_value("CN=VPN Users,OU=Groups,DC=corp").as_deref(),
            Some("VPN Users")
        );
        assert_eq!(
            first_rdn_value("CN=Smith\\, John,OU=People").as_deref(),
            Some("Smith, John")
        );
        assert_eq!(
            first_rdn_value("cn=caf\\c3\\a9,dc=x").as_deref(),
            Some("café")
        );
        assert_eq!(first_rdn_value("cn=a+uid=b,dc=x").as_deref(), Some("a"));
        assert_eq!(first_rdn_value("cn=\"a, b\",dc=x").as_deref(), Some("a, b"));
        assert_eq!(first_rdn_value("cn=vpn").as_deref(), Some("vpn"));
        assert_eq!(first_rdn_value("no rdn"), None);
        assert_eq!(first_rdn_value("cn=,dc=x"), None);
    }

    #[test]
    fn urls_and_loopback() {
        let host = |u: &str| url_scheme_and_host(u).map(|(s, h)| format!("{s} {h}"));
        assert_eq!(
            host("ldap://127.0.0.1:389/").as_deref(),
            Some("ldap 127.0.0.1")
        );
        assert_eq!(
            host("LDAPS://dc1.corp.example").as_deref(),
            Some("ldaps dc1.corp.example")
        );
        assert_eq!(host("ldap://[::1]:10389").as_deref(), Some("ldap ::1"));
        assert_eq!(host("http://x"), None);
        assert_eq!(host("ldap://"), None);
        assert_eq!(host("ldap://host:notaport"), None);
        assert_eq!(host("ldapi:///var/run/slapd"), None);
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("ldap.example.org"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(valid_attribute("memberOf"));
        assert!(!valid_attribute("memberOf)(x"));
    }
}

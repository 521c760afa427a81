//! `[ldap]` and `[radius]`: the directories a node can check passwords
//! against. Each is nothing when its first key is unset, else a checked
//! whole (the adapter's own checks run when the server starts).

use std::collections::BTreeMap;
use std::time::Duration;

use twofold_directory::{LdapConfig, Preset, RadiusConfig};

use super::{choice_of, int_of, key, ConfigError, Kind};

type Raw = BTreeMap<&'static str, String>;

/// The directories this node is configured for.
#[derive(Clone, Default)]
pub struct Directories {
    /// `[ldap]`, when `ldap.url` is set.
    pub ldap: Option<LdapConfig>,
    /// `[radius]`, when `radius.servers` is set.
    pub radius: Option<RadiusConfig>,
}

/// Names only: the configurations hold passwords.
impl std::fmt::Debug for Directories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directories")
            .field("ldap", &self.ldap.as_ref().map(|l| l.url.as_str()))
            .field("radius", &self.radius.as_ref().map(|r| r.servers.join(",")))
            .finish()
    }
}

fn get(raw: &Raw, p: &str) -> Option<String> {
    raw.get(key(p).path)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn named(p: &str) -> String {
    format!("{p} ({})", key(p).env)
}

/// Keys of a section set while the section's first key is not (those with
/// a default of their own may stay, as the example file writes them).
fn stray(raw: &Raw, section: &str, first: &str) -> Result<(), ConfigError> {
    match super::KEYS
        .iter()
        .filter(|k| k.path.starts_with(section) && k.path != first && k.default.contains('<'))
        .find(|k| raw.contains_key(k.path))
    {
        Some(k) => Err(ConfigError(format!(
            "{} is set but {} is not",
            named(k.path),
            named(first)
        ))),
        None => Ok(()),
    }
}

fn bool_of(raw: &Raw, p: &str) -> Result<bool, ConfigError> {
    let k = key(p);
    debug_assert_eq!(k.kind, Kind::Bool);
    match raw.get(k.path).map_or(k.default, String::as_str).trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ConfigError(format!(
            "{}: {other:?} is not true or false",
            named(p)
        ))),
    }
}

fn required(raw: &Raw, p: &str, section_key: &str, why: &str) -> Result<String, ConfigError> {
    get(raw, p).ok_or_else(|| {
        ConfigError(format!(
            "{} is required with {}: {why}",
            named(p),
            named(section_key)
        ))
    })
}

fn seconds(raw: &Raw, p: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(
        u64::try_from(int_of(raw, p)?).unwrap_or(1),
    ))
}

pub(super) fn ldap_of(raw: &Raw) -> Result<Option<LdapConfig>, ConfigError> {
    let Some(url) = get(raw, "ldap.url") else {
        stray(raw, "ldap.", "ldap.url")?;
        return Ok(None);
    };
    let preset = match choice_of(raw, "ldap.preset")? {
        "openldap" => Preset::OpenLdap,
        _ => Preset::ActiveDirectory,
    };
    Ok(Some(LdapConfig {
        url,
        starttls: bool_of(raw, "ldap.starttls")?,
        ca_file: get(raw, "ldap.ca_file").map(Into::into),
        bind_dn: required(
            raw,
            "ldap.bind_dn",
            "ldap.url",
            "the service account that searches",
        )?,
        bind_password: zeroize::Zeroizing::new(required(
            raw,
            "ldap.bind_password",
            "ldap.url",
            "the service account's password (or bind_password_file)",
        )?),
        base_dn: required(raw, "ldap.base_dn", "ldap.url", "where people are searched")?,
        preset,
        user_filter: get(raw, "ldap.user_filter"),
        group_attribute: get(raw, "ldap.group_attribute"),
        timeout: seconds(raw, "ldap.timeout")?,
        pool_size: usize::try_from(int_of(raw, "ldap.pool_size")?).unwrap_or(4),
    }))
}

pub(super) fn radius_of(raw: &Raw) -> Result<Option<RadiusConfig>, ConfigError> {
    let Some(servers) = get(raw, "radius.servers") else {
        stray(raw, "radius.", "radius.servers")?;
        return Ok(None);
    };
    let servers: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Some(RadiusConfig {
        servers,
        secret: zeroize::Zeroizing::new(required(
            raw,
            "radius.secret",
            "radius.servers",
            "the shared secret (or secret_file)",
        )?),
        timeout: seconds(raw, "radius.timeout")?,
        retries: u32::try_from(int_of(raw, "radius.retries")?).unwrap_or(1),
        nas_identifier: get(raw, "radius.nas_identifier")
            .unwrap_or_else(|| key("radius.nas_identifier").default.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::super::Config;
    use super::*;

    fn load(toml: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let file = toml.map(|t| {
            let f = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(f.path(), t).unwrap();
            f
        });
        Config::load(
            file.as_ref().map(tempfile::NamedTempFile::path),
            &|k: &str| map.get(k).cloned(),
        )
    }

    #[test]
    fn ldap_from_a_file_with_the_password_in_another() {
        let pass = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pass.path(), "s3rvice-secret\n").unwrap();
        let toml = format!(
            "[ldap]\nurl = \"ldap://dc1.example.org\"\nstarttls = true\nbind_dn = \"CN=twofold,DC=example,DC=org\"\nbind_password_file = \"{}\"\nbase_dn = \"DC=example,DC=org\"\ntimeout = 3\n",
            pass.path().display()
        );
        let c = load(Some(&toml), &[]).unwrap();
        let l = c.directories.ldap.clone().unwrap();
        assert_eq!(l.url, "ldap://dc1.example.org");
        assert!(l.starttls);
        assert_eq!(l.bind_password.as_str(), "s3rvice-secret");
        assert_eq!(l.preset, Preset::ActiveDirectory);
        assert_eq!(l.timeout, Duration::from_secs(3));
        assert_eq!(l.pool_size, 4);
        assert!(c.directories.radius.is_none());
        // The password never shows in the configuration's debug form.
        assert!(!format!("{:?}", c.directories).contains("s3rvice"));
    }

    #[test]
    fn ldap_from_the_environment() {
        let c = load(
            None,
            &[
                ("TWOFOLD_LDAP_URL", "ldaps://dc1.example.org"),
                ("TWOFOLD_LDAP_BIND_DN", "cn=twofold,dc=example,dc=org"),
                ("TWOFOLD_LDAP_BIND_PASSWORD", "pw"),
                ("TWOFOLD_LDAP_BASE_DN", "dc=example,dc=org"),
                ("TWOFOLD_LDAP_PRESET", "openldap"),
                ("TWOFOLD_LDAP_USER_FILTER", "(uid={username})"),
                ("TWOFOLD_LDAP_CA_FILE", "/etc/twofold/ca.pem"),
            ],
        )
        .unwrap();
        let l = c.directories.ldap.unwrap();
        assert_eq!(l.preset, Preset::OpenLdap);
        assert_eq!(l.user_filter.as_deref(), Some("(uid={username})"));
        assert_eq!(l.ca_file.as_deref(), Some(Path::new("/etc/twofold/ca.pem")));
    }

    #[test]
    fn radius_servers_as_a_list_or_commas() {
        let c = load(
            Some(
                "[radius]\nservers = [\"nps1:1812\", \"nps2:1812\"]\nsecret = \"s\"\nretries = 0\n",
            ),
            &[],
        )
        .unwrap();
        let r = c.directories.radius.unwrap();
        assert_eq!(r.servers, ["nps1:1812", "nps2:1812"]);
        assert_eq!(r.retries, 0);
        assert_eq!(r.nas_identifier, "twofold");
        let c = load(
            None,
            &[
                ("TWOFOLD_RADIUS_SERVERS", "10.0.0.1:1812, 10.0.0.2:1812"),
                ("TWOFOLD_RADIUS_SECRET", "s"),
            ],
        )
        .unwrap();
        assert_eq!(c.directories.radius.unwrap().servers.len(), 2);
    }

    #[test]
    fn incomplete_or_wrong_sections_name_the_key() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (Some("[ldap]\nbase_dn = \"dc=x\"\n"), &[], "ldap.base_dn (TWOFOLD_LDAP_BASE_DN) is set but ldap.url (TWOFOLD_LDAP_URL) is not"),
            (None, &[("TWOFOLD_LDAP_URL", "ldaps://dc")], "ldap.bind_dn (TWOFOLD_LDAP_BIND_DN) is required with ldap.url"),
            (Some("[ldap]\nurl = \"ldaps://dc\"\nbind_dn = \"x\"\nbind_password = \"p\"\nbind_password_file = \"/p\"\nbase_dn = \"dc=x\"\n"), &[], "both set"),
            (Some("[ldap]\nurl = \"ldaps://dc\"\nbind_dn = \"x\"\nbind_password = \"p\"\nbase_dn = \"dc=x\"\nstarttls = \"yes\"\n"), &[], "ldap.starttls (TWOFOLD_LDAP_STARTTLS): \"yes\" is not true or false"),
            (Some("[ldap]\nurl = \"ldaps://dc\"\nbind_dn = \"x\"\nbind_password_file = \"/nonexistent/p\"\nbase_dn = \"dc=x\"\n"), &[], "bind_password_file: cannot read /nonexistent/p"),
            (None, &[("TWOFOLD_LDAP_URL", "ldaps://dc"), ("TWOFOLD_LDAP_BIND_DN", "x"), ("TWOFOLD_LDAP_BIND_PASSWORD", "p"), ("TWOFOLD_LDAP_BASE_DN", "dc=x"), ("TWOFOLD_LDAP_PRESET", "novell")], "ldap.preset (TWOFOLD_LDAP_PRESET): \"novell\" is not one of active_directory, openldap"),
            (Some("[radius]\nsecret = \"s\"\n"), &[], "radius.secret (TWOFOLD_RADIUS_SECRET) is set but radius.servers (TWOFOLD_RADIUS_SERVERS) is not"),
            (None, &[("TWOFOLD_RADIUS_SERVERS", "nps:1812")], "radius.secret (TWOFOLD_RADIUS_SECRET) is required with radius.servers"),
            (Some("[radius]\nservers = [1812]\nsecret = \"s\"\n"), &[], "radius.servers: expected a list of strings"),
            (None, &[("TWOFOLD_RADIUS_SERVERS", "nps:1812"), ("TWOFOLD_RADIUS_SECRET", "s"), ("TWOFOLD_RADIUS_TIMEOUT", "0")], "radius.timeout (TWOFOLD_RADIUS_TIMEOUT): 0 is out of range 1..=30"),
        ];
        for (toml, env, want) in cases {
            let e = load(*toml, env).unwrap_err().0;
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }
}

//! A real OpenLDAP `slapd` for tests: a child process in a fresh temporary
//! directory, listening only on `ldap://127.0.0.1:<free port>/` (and
//! optionally `ldaps://`), with an `mdb` database for [`BASE_DN`], the
//! `memberof` overlay, and a small schema adding the Active Directory
//! attributes `sAMAccountName` and `userPrincipalName`.
//!
//! ```text
//! let slapd = Slapd::with_people(SlapdOptions::default());
//! // slapd.url(), SERVICE_DN / SERVICE_PASSWORD, "alice" / ALICE_PASSWORD …
//! ```
//!
//! Needs the Debian packages `slapd` and `ldap-utils` (`/usr/sbin/slapd`,
//! `ldapadd`, `ldapmodify`, `ldapwhoami`); without them every constructor
//! panics with a message saying so — tests never silently pass.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `slapd` binary.
pub const SLAPD: &str = "/usr/sbin/slapd";
/// Where Debian keeps slapd's loadable modules.
pub const MODULE_PATH: &str = "/usr/lib/ldap";
/// Where Debian keeps the schema files.
pub const SCHEMA_DIR: &str = "/etc/ldap/schema";

/// The database suffix.
pub const BASE_DN: &str = "dc=example,dc=org";
/// The root DN (bypasses every ACL).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The service account of [`PEOPLE_LDIF`]: may read and search everything
/// but passwords.
pub const SERVICE_DN: &str = "cn=twofold,ou=service,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-secret";
/// The NetBIOS-style domain for `DOMAIN\user` sign-ins.
pub const DOMAIN: &str = "EXAMPLE";
pub const ALICE_PASSWORD: &str = "alice-password";
pub const BOB_PASSWORD: &str = "bob-password";
pub const CAROL_PASSWORD: &str = "carol-password";
pub const DAVE_PASSWORD: &str = "dave-password";

/// The standard tree ([`Slapd::with_people`] loads it):
///
/// * `ou=people`, `ou=groups`, `ou=service` under [`BASE_DN`];
/// * the service account [`SERVICE_DN`] / [`SERVICE_PASSWORD`];
/// * `alice` (Alice Adams, `nl`, phone `+31 20 555 0101x204`, mobile
///   `+31 6 12345678`, in `vpn-users`), `bob` (Bob Brown, `en`, in
///   `vpn-users` and `twofold-admins`), `carol` (Carol Clark, no phone, no
///   group), each with `sAMAccountName` and `userPrincipalName`
///   (`<name>@example.org`);
/// * `dave` (OpenLDAP style only: no AD attributes), a member of the
///   `posixGroup` `legacy-users` through `memberUid`, so he has no
///   `memberOf`;
/// * the `groupOfNames` groups `vpn-users` and `twofold-admins` (the
///   `memberof` overlay gives their members `memberOf`).
///
/// Passwords are `<name>-password` ([`ALICE_PASSWORD`], …).
pub const PEOPLE_LDIF: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=service,dc=example,dc=org
objectClass: organizationalUnit
ou: service

dn: cn=twofold,ou=service,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: twofold
userPassword: service-secret

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: twofoldADUser
uid: alice
cn: Alice Adams
sn: Adams
givenName: Alice
displayName: Alice Adams
mail: alice@example.org
telephoneNumber: +31 20 555 0101x204
mobile: +31 6 12345678
preferredLanguage: nl
sAMAccountName: alice
userPrincipalName: alice@example.org
userPassword: alice-password

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: twofoldADUser
uid: bob
cn: Bob Brown
sn: Brown
displayName: Bob Brown
mail: bob@example.org
telephoneNumber: +44 20 7946 0000
preferredLanguage: en
sAMAccountName: bob
userPrincipalName: bob@example.org
userPassword: bob-password

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: twofoldADUser
uid: carol
cn: Carol Clark
sn: Clark
mail: carol@example.org
sAMAccountName: carol
userPrincipalName: carol@example.org
userPassword: carol-password

dn: uid=dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave
cn: Dave Davis
sn: Davis
userPassword: dave-password

dn: cn=vpn-users,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: vpn-users
member: uid=alice,ou=people,dc=example,dc=org
member: uid=bob,ou=people,dc=example,dc=org

dn: cn=twofold-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: twofold-admins
member: uid=bob,ou=people,dc=example,dc=org

dn: cn=legacy-users,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: legacy-users
gidNumber: 5000
memberUid: dave
";

/// The Active Directory attributes, on a private OID arc.
const AD_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )

attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )

objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'twofoldADUser'
  SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName ) )
";

/// How to start slapd.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlapdOptions {
    /// Generate a CA and a server certificate for `127.0.0.1`/`localhost`
    /// and configure them, so StartTLS works ([`Slapd::ca_file`]).
    pub tls: bool,
    /// Also listen on `ldaps://127.0.0.1:<free port>/` (implies `tls`).
    pub ldaps: bool,
}

/// A running slapd; killed (with its process group) on drop.
pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    ldaps_port: Option<u16>,
    ca_file: Option<PathBuf>,
    child: Option<Child>,
}

impl Slapd {
    /// Starts an empty slapd (no entries, not even the suffix).
    pub fn start(options: SlapdOptions) -> Slapd {
        assert!(
            Path::new(SLAPD).exists(),
            "OpenLDAP slapd not found at {SLAPD}: install the Debian packages `slapd` and `ldap-utils`"
        );
        let dir = tempfile::Builder::new()
            .prefix("twofold-slapd-")
            .tempdir()
            .expect("creating slapd's temporary directory");
        std::fs::create_dir(dir.path().join("db")).expect("creating the mdb directory");
        std::fs::write(dir.path().join("twofold-ad.schema"), AD_SCHEMA)
            .expect("writing the AD schema");
        let tls = options.tls || options.ldaps;
        let ca_file = tls.then(|| write_certificates(dir.path()));
        std::fs::write(dir.path().join("slapd.conf"), config(dir.path(), tls))
            .expect("writing slapd.conf");
        let mut slapd = Slapd {
            dir,
            port: 0,
            ldaps_port: None,
            ca_file,
            child: None,
        };
        let mut last_error = String::new();
        for _ in 0..8 {
            slapd.port = free_port();
            slapd.ldaps_port = options.ldaps.then(free_port);
            match slapd.spawn() {
                Ok(()) => return slapd,
                // Another process took the port between the probe and slapd's bind.
                Err(log) if log.contains("Address already in use") => last_error = log,
                Err(log) => panic!("slapd did not start:\n{log}"),
            }
        }
        panic!("slapd did not start (ports kept clashing):\n{last_error}");
    }

    /// Starts slapd and loads [`PEOPLE_LDIF`].
    pub fn with_people(options: SlapdOptions) -> Slapd {
        let slapd = Slapd::start(options);
        slapd.add_ldif(PEOPLE_LDIF);
        slapd
    }

    /// `ldap://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// `ldap://localhost:<port>/` (the certificate names both).
    pub fn localhost_url(&self) -> String {
        format!("ldap://localhost:{}/", self.port)
    }

    /// `ldaps://127.0.0.1:<port>/`; panics unless started with `ldaps`.
    pub fn ldaps_url(&self) -> String {
        let port = self
            .ldaps_port
            .expect("slapd was started without SlapdOptions::ldaps");
        format!("ldaps://127.0.0.1:{port}/")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed slapd's certificate; panics
    /// unless started with `tls` or `ldaps`.
    pub fn ca_file(&self) -> &Path {
        self.ca_file
            .as_deref()
            .expect("slapd was started without SlapdOptions::tls")
    }

    /// slapd's temporary directory (config, database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    pub fn admin_dn(&self) -> &'static str {
        ADMIN_DN
    }

    pub fn admin_password(&self) -> &'static str {
        ADMIN_PASSWORD
    }

    /// Adds entries as the root DN (`ldapadd`); panics on failure.
    pub fn add_ldif(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies an LDIF of changes as the root DN (`ldapmodify`); panics on
    /// failure.
    pub fn modify_ldif(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    /// What slapd logged so far (stderr, `-d stats`): one line per
    /// connection and operation, e.g. `conn=1001 op=0 BIND
    /// dn="uid=alice,ou=people,dc=example,dc=org" method=128`.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many simple binds as `dn` slapd has logged.
    pub fn binds_as(&self, dn: &str) -> usize {
        let needle = format!("BIND dn=\"{dn}\" method=128");
        self.log()
            .lines()
            .filter(|line| {
                line.to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase())
            })
            .count()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills slapd: connections are refused until [`Slapd::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // slapd leads its own process group: end the group, then it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same port(s), with the same database.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!("slapd did not restart on port {}:\n{log}", self.port),
            }
        }
    }

    /// Starts the process and waits until it answers a bind; `Err` carries
    /// slapd's log when it exits or does not answer in time.
    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("slapd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("opening slapd.log");
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(port) = self.ldaps_port {
            let _ = write!(urls, " ldaps://127.0.0.1:{port}/");
        }
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            // In the foreground, logging connections and operations
            // (`BIND dn=...`) to stderr: `Slapd::log`.
            .args(["-h", &urls, "-d", "stats"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("running {SLAPD}: {e}"));
        self.child = Some(child);
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = self.child.as_mut().expect("slapd child");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("slapd exited ({status}):\n{}", read_log()));
            }
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                let status = Command::new("ldapwhoami")
                    .args([
                        "-x",
                        "-H",
                        &self.url(),
                        "-D",
                        ADMIN_DN,
                        "-w",
                        ADMIN_PASSWORD,
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap_or_else(|e| {
                        panic!("running ldapwhoami (install the Debian package ldap-utils): {e}")
                    });
                if status.success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "slapd did not answer on {} within 10 s:\n{}",
                    self.url(),
                    read_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("running {tool} (install the Debian package ldap-utils): {e}")
            });
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("writing LDIF to the tool");
        let output = child.wait_with_output().expect("waiting for the tool");
        assert!(
            output.status.success(),
            "{tool} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA certificate (PEM) that signed nothing slapd presents: for "wrong
/// CA" tests.
pub fn unrelated_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("CA key");
    ca_params("Unrelated test CA")
        .self_signed(&key)
        .expect("unrelated CA")
        .pem()
}

fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes `ca.pem`, `server.pem` and `server.key` into `dir`; returns the
/// CA's path.
fn write_certificates(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = ca_params("Twofold test CA")
        .self_signed(&ca_key)
        .expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("writing ca.pem");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("writing server.pem");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("writing server.key");
    ca_path
}

fn config(dir: &Path, tls: bool) -> String {
    let d = dir.display();
    let mut conf = String::new();
    for schema in ["core", "cosine", "inetorgperson", "nis"] {
        let _ = writeln!(conf, "include {SCHEMA_DIR}/{schema}.schema");
    }
    let _ = writeln!(conf, "include {d}/twofold-ad.schema");
    let _ = writeln!(conf, "pidfile {d}/slapd.pid");
    let _ = writeln!(conf, "argsfile {d}/slapd.args");
    let _ = writeln!(conf, "modulepath {MODULE_PATH}");
    conf.push_str("moduleload back_mdb\nmoduleload memberof\n");
    if tls {
        let _ = writeln!(conf, "TLSCACertificateFile {d}/ca.pem");
        let _ = writeln!(conf, "TLSCertificateFile {d}/server.pem");
        let _ = writeln!(conf, "TLSCertificateKeyFile {d}/server.key");
    }
    let _ = write!(
        conf,
        "\
database mdb
maxsize 67108864
suffix \"{BASE_DN}\"
rootdn \"{ADMIN_DN}\"
rootpw {ADMIN_PASSWORD}
directory {d}/db
index objectClass eq
index uid,cn,sAMAccountName,userPrincipalName eq
index member,memberUid eq
limits dn.exact=\"{SERVICE_DN}\" size=unlimited time=unlimited
overlay memberof
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact=\"{SERVICE_DN}\" read
  by * none
"
    );
    conf
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free port")
        .port()
}

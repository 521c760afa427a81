//! RADIUS: the password check of RFC 2865 PAP against one or more servers,
//! with fail-over.
//!
//! A small client written here against RFC 2865 and RFC 3579 rather than
//! the `radius` crate (0.4): that crate carries the Message-Authenticator
//! only as opaque octets — it neither computes it for requests nor verifies
//! it in replies — and pulls in `chrono`, `log` and its own MD5. Since
//! BlastRADIUS (CVE-2024-3596) a PAP client must sign every request with a
//! Message-Authenticator placed first and must refuse any reply without a
//! valid one; that, plus hiding User-Password and checking the Response
//! Authenticator, is about three hundred lines (`packet`), tested with the
//! RFC 2865 §7.1 vectors and against a real FreeRADIUS.
//!
//! Every request: a fresh random Identifier and Request Authenticator
//! (`OsRng`), User-Name, User-Password, NAS-Identifier. Every reply must
//! match the Identifier, come from the server's address (the socket is
//! connected), be Access-Accept, -Reject or -Challenge (treated as a
//! rejection: PAP only), and carry a Response Authenticator and a
//! Message-Authenticator that verify (constant-time comparisons). Anything
//! else is logged and dropped as if it never arrived. Each server gets the
//! identical packet `retries + 1` times, `timeout` apart, then the next one
//! is asked; when none gives a valid answer the check is
//! `Error::Unavailable`, never a rejection. Worst case:
//! servers × (retries + 1) × timeout.
//!
//! The shared secret may be any length from 1 to 128 octets; one shorter
//! than 16 is accepted with a warning (RFC 2865 §3 asks for at least 16).

pub mod packet;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use twofold_core::ports::{Directory, DirectoryEntry, PasswordCheck};
use twofold_core::settings::PrimaryAuth;
use twofold_core::user::User;
use twofold_core::{Error, Result};
use zeroize::Zeroizing;

use packet::{EncodeError, ReplyError, Verdict};

/// `[radius]` of the process configuration.
#[derive(Clone)]
pub struct RadiusConfig {
    /// `host:port` of each server, tried in order (fail-over).
    pub servers: Vec<String>,
    /// The shared secret.
    pub secret: Zeroizing<String>,
    /// How long to wait for one reply.
    pub timeout: Duration,
    /// Retransmissions to one server before moving to the next.
    pub retries: u32,
    /// NAS-Identifier sent in every request.
    pub nas_identifier: String,
}

impl fmt::Debug for RadiusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusConfig")
            .field("servers", &self.servers)
            .field("secret", &"<hidden>")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("nas_identifier", &self.nas_identifier)
            .finish()
    }
}

/// The most retransmissions to one server `new` allows.
pub const MAX_RETRIES: u32 = 10;
/// The longest wait for one reply `new` allows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest shared secret `new` allows, in octets.
pub const MAX_SECRET_LEN: usize = 128;
/// Sent when `nas_identifier` is empty (RFC 2865 §4.1 wants a
/// NAS-Identifier or a NAS-IP-Address in every Access-Request).
pub const DEFAULT_NAS_IDENTIFIER: &str = "twofold";
/// The addresses of one host name tried (IPv6 and IPv4, say), each like
/// a server of its own.
pub const MAX_ADDRESSES_PER_SERVER: usize = 2;
/// The user `probe` asks about (with a random password).
pub const PROBE_USER: &str = "twofold-probe";

/// The RADIUS directory: checks passwords; cannot look people up.
pub struct RadiusDirectory {
    servers: Vec<String>,
    secret: Zeroizing<Vec<u8>>,
    timeout: Duration,
    retries: u32,
    nas_identifier: String,
}

impl fmt::Debug for RadiusDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusDirectory")
            .field("servers", &self.servers)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("nas_identifier", &self.nas_identifier)
            .finish_non_exhaustive()
    }
}

/// Checks `host:port`: an IP address with its port (`[v6]:port`), or a
/// host name (resolved at every request) with its port.
fn check_server(server: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("radius.servers", format!("{server:?}: {why}"));
    if let Ok(address) = server.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        return Ok(());
    }
    let Some((host, port)) = server.rsplit_once(':') else {
        return Err(bad("expected host:port"));
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
        Ok(_) => {}
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !name_ok {
        return Err(bad("expected host:port (an IPv6 address goes in brackets)"));
    }
    Ok(())
}

impl RadiusDirectory {
    pub fn new(config: RadiusConfig) -> Result<RadiusDirectory> {
        let RadiusConfig {
            servers,
            secret,
            timeout,
            retries,
            nas_identifier,
        } = config;
        if servers.is_empty() {
            return Err(Error::invalid(
                "radius.servers",
                "at least one RADIUS server (host:port) is needed",
            ));
        }
        let servers: Vec<String> = servers.iter().map(|s| s.trim().to_string()).collect();
        for server in &servers {
            check_server(server)?;
        }
        let secret = Zeroizing::new(secret.as_bytes().to_vec());
        if secret.is_empty() {
            return Err(Error::invalid(
                "radius.secret",
                "the shared secret is empty",
            ));
        }
        if secret.len() > MAX_SECRET_LEN {
            return Err(Error::invalid(
                "radius.secret",
                format!("the shared secret is longer than {MAX_SECRET_LEN} bytes"),
            ));
        }
        if secret.len() < 16 {
            tracing::warn!(
                "the RADIUS shared secret is shorter than 16 bytes (RFC 2865 asks for at least 16): use a long random one"
            );
        }
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(Error::invalid(
                "radius.timeout",
                format!(
                    "the timeout must be above zero and at most {} seconds",
                    MAX_TIMEOUT.as_secs()
                ),
            ));
        }
        if retries > MAX_RETRIES {
            return Err(Error::invalid(
                "radius.retries",
                format!("at most {MAX_RETRIES} retransmissions"),
            ));
        }
        let nas_identifier = match nas_identifier.trim() {
            "" => DEFAULT_NAS_IDENTIFIER.to_string(),
            name => name.to_string(),
        };
        if nas_identifier.len() > packet::MAX_VALUE_LEN {
            return Err(Error::invalid(
                "radius.nas_identifier",
                "the NAS-Identifier is longer than 253 bytes",
            ));
        }
        Ok(RadiusDirectory {
            servers,
            secret,
            timeout,
            retries,
            nas_identifier,
        })
    }

    /// The longest a check can take when no server answers:
    /// servers × (retries + 1) × timeout, where a host name that resolves
    /// to several addresses counts once per address (at most
    /// `MAX_ADDRESSES_PER_SERVER`), plus name resolution, itself bounded by
    /// the timeout per server.
    pub fn worst_case(&self) -> Duration {
        let tries = u32::try_from(self.servers.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(self.retries.saturating_add(1));
        self.timeout.saturating_mul(tries)
    }

    /// Asks the servers in order until one gives a valid answer.
    async fn authenticate(&self, username: &str, password: &[u8]) -> Result<AskResult> {
        if let Err(why) = packet::check_request(
            username.as_bytes(),
            password,
            self.nas_identifier.as_bytes(),
        ) {
            return Ok(AskResult::Unsendable(why));
        }
        let mut failures = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            let addresses = match self.resolve_server(server).await {
                Ok(addresses) => addresses,
                Err(why) => {
                    tracing::warn!(server = %server, reason = %why, "RADIUS server not resolved");
                    failures.push(format!("{server}: {why}"));
                    continue;
                }
            };
            for address in addresses {
                match self.ask(server, address, username, password).await {
                    Ok(verdict) => return Ok(AskResult::Verdict(verdict)),
                    Err(Failure::Encode(why)) => return Ok(AskResult::Unsendable(why)),
                    Err(Failure::NoAnswer(why)) => {
                        tracing::warn!(
                            server = %server,
                            address = %address,
                            reason = %why,
                            "RADIUS server gave no valid answer"
                        );
                        failures.push(format!("{server} ({address}): {why}"));
                    }
                }
            }
        }
        Err(Error::Unavailable(format!(
            "no RADIUS server gave a valid answer ({})",
            failures.join("; ")
        )))
    }

    /// The addresses of `host:port`, resolved now (within the timeout).
    async fn resolve_server(&self, server: &str) -> std::result::Result<Vec<SocketAddr>, String> {
        if let Ok(address) = server.parse::<SocketAddr>() {
            return Ok(vec![address]);
        }
        let resolved = tokio::time::timeout(self.timeout, tokio::net::lookup_host(server))
            .await
            .map_err(|_| "name resolution timed out".to_string())?
            .map_err(|e| format!("name resolution: {e}"))?;
        let mut addresses: Vec<SocketAddr> = Vec::new();
        for address in resolved {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
            if addresses.len() == MAX_ADDRESSES_PER_SERVER {
                break;
            }
        }
        if addresses.is_empty() {
            return Err("the name has no address".to_string());
        }
        Ok(addresses)
    }

    /// One server address: the same packet `retries + 1` times.
    async fn ask(
        &self,
        server: &str,
        address: SocketAddr,
        username: &str,
        password: &[u8],
    ) -> std::result::Result<Verdict, Failure> {
        let mut identifier = [0u8; 1];
        let mut authenticator = [0u8; 16];
        OsRng.fill_bytes(&mut identifier);
        OsRng.fill_bytes(&mut authenticator);
        let request = Zeroizing::new(
            packet::encode_access_request(
                identifier[0],
                &authenticator,
                &self.secret,
                username.as_bytes(),
                password,
                self.nas_identifier.as_bytes(),
            )
            .map_err(Failure::Encode)?,
        );

        let local: SocketAddr = if address.is_ipv4() {
            ([0u8; 4], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| Failure::NoAnswer(format!("socket: {e}")))?;
        // Connected: the kernel drops datagrams from any other address.
        socket
            .connect(address)
            .await
            .map_err(|e| Failure::NoAnswer(format!("connect: {e}")))?;

        let mut last = String::from("no reply");
        let mut buffer = vec![0u8; packet::MAX_PACKET_LEN + 1];
        for _ in 0..=self.retries {
            let deadline = Instant::now() + self.timeout;
            if let Err(e) = socket.send(&request).await {
                last = format!("send: {e}");
                continue;
            }
            loop {
                match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
                    Err(_) => {
                        if last.starts_with("no reply") {
                            last = format!("no reply within {:?}", self.timeout);
                        }
                        break;
                    }
                    Ok(Err(e)) => {
                        // An ICMP error (port unreachable) from the last
                        // send: nobody listens there, no point waiting.
                        last = format!("receive: {e}");
                        break;
                    }
                    Ok(Ok(n)) => {
                        match packet::verify_reply(
                            &buffer[..n],
                            identifier[0],
                            &authenticator,
                            &self.secret,
                        ) {
                            Ok(verdict) => return Ok(verdict),
                            Err(why) => {
                                if why == ReplyError::WrongIdentifier {
                                    tracing::debug!(server = %server, "RADIUS reply for another request ignored");
                                } else {
                                    tracing::warn!(server = %server, reason = %why, "RADIUS reply discarded");
                                }
                                last = format!("reply discarded: {why}");
                            }
                        }
                    }
                }
            }
        }
        Err(Failure::NoAnswer(last))
    }
}

enum AskResult {
    Verdict(Verdict),
    /// Not sendable (an empty or over-long name or password): no server
    /// could accept it.
    Unsendable(EncodeError),
}

enum Failure {
    Encode(EncodeError),
    NoAnswer(String),
}

#[async_trait]
impl Directory for RadiusDirectory {
    fn kind(&self) -> PrimaryAuth {
        PrimaryAuth::Radius
    }

    async fn resolve(&self, login: &str) -> Result<Option<String>> {
        Ok(Some(login.trim().to_string()))
    }

    async fn check_password(
        &self,
        username: &str,
        _local: Option<&User>,
        password: String,
    ) -> Result<PasswordCheck> {
        let password = Zeroizing::new(password);
        match self.authenticate(username, password.as_bytes()).await? {
            AskResult::Verdict(Verdict::Accept) => Ok(PasswordCheck::Accepted { groups: None }),
            AskResult::Verdict(Verdict::Reject) => Ok(PasswordCheck::Rejected),
            AskResult::Verdict(Verdict::Challenge) => {
                tracing::info!(
                    "RADIUS server answered Access-Challenge: only PAP is spoken, so the password is refused"
                );
                Ok(PasswordCheck::Rejected)
            }
            AskResult::Unsendable(why) => {
                tracing::debug!(reason = ?why, "RADIUS request not sent");
                Ok(PasswordCheck::Rejected)
            }
        }
    }

    async fn lookup(&self, _username: &str) -> Result<Option<DirectoryEntry>> {
        Ok(None)
    }

    async fn search(
        &self,
        _filter: Option<&str>,
        _group: Option<&str>,
    ) -> Result<Vec<DirectoryEntry>> {
        Err(Error::invalid(
            "directory",
            "a RADIUS server cannot list users: import from LDAP or a CSV file",
        ))
    }

    async fn probe(&self) -> Result<()> {
        let mut random = [0u8; 16];
        OsRng.fill_bytes(&mut random);
        let password: Zeroizing<String> =
            Zeroizing::new(random.iter().map(|b| char::from(b'a' + b % 26)).collect());
        match self.authenticate(PROBE_USER, password.as_bytes()).await? {
            AskResult::Verdict(_) => Ok(()),
            AskResult::Unsendable(why) => Err(Error::Internal(format!(
                "RADIUS probe could not be encoded: {why:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(servers: &[&str], secret: &str) -> RadiusConfig {
        RadiusConfig {
            servers: servers.iter().map(|s| (*s).to_string()).collect(),
            secret: Zeroizing::new(secret.to_string()),
            timeout: Duration::from_millis(300),
            retries: 1,
            nas_identifier: String::new(),
        }
    }

    #[test]
    fn accepts_addresses_and_names() {
        for server in [
            "127.0.0.1:1812",
            "[::1]:1812",
            "radius.example.com:1812",
            "radius-2:1645",
        ] {
            assert!(
                RadiusDirectory::new(config(&[server], "a-long-shared-secret")).is_ok(),
                "{server}"
            );
        }
    }

    #[test]
    fn refuses_bad_configurations() {
        let invalid =
            |c: RadiusConfig| matches!(RadiusDirectory::new(c), Err(Error::InvalidInput { .. }));
        assert!(invalid(config(&[], "secret")));
        for server in [
            "",
            "radius",
            "radius:",
            ":1812",
            "radius:0",
            "127.0.0.1:0",
            "radius:65536",
            "radius:port",
            "::1:1812",
            "bad host:1812",
            "host/x:1812",
        ] {
            assert!(invalid(config(&[server], "secret")), "{server:?}");
        }
        assert!(invalid(config(&["127.0.0.1:1812"], "")));
        assert!(invalid(config(&["127.0.0.1:1812"], &"x".repeat(129))));
        assert!(!invalid(config(&["127.0.0.1:1812"], &"x".repeat(128))));
        // Short secrets are accepted (with a warning).
        assert!(!invalid(config(&["127.0.0.1:1812"], "short")));

        let mut c = config(&["127.0.0.1:1812"], "secret");
        c.timeout = Duration::ZERO;
        assert!(invalid(c));
        let mut c = config(&["127.0.0.1:1812"], "secret");
        c.retries = MAX_RETRIES + 1;
        assert!(invalid(c));
        let mut c = config(&["127.0.0.1:1812"], "secret");
        c.nas_identifier = "n".repeat(254);
        assert!(invalid(c));
    }

    #[test]
    fn worst_case_is_servers_times_tries_times_timeout() {
        let d = RadiusDirectory::new(config(&["127.0.0.1:1", "127.0.0.1:2"], "secret")).unwrap();
        assert_eq!(d.worst_case(), Duration::from_millis(1200));
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = config(&["127.0.0.1:1812"], "very-secret-value");
        assert!(!format!("{c:?}").contains("very-secret-value"));
        let d = RadiusDirectory::new(c).unwrap();
        assert!(!format!("{d:?}").contains("very-secret-value"));
    }

    #[tokio::test]
    async fn unsendable_credentials_are_rejected_without_asking() {
        // Nobody listens on port 9 of the discard range here; were a
        // packet sent, the answer would be Unavailable, not Rejected.
        let d = RadiusDirectory::new(config(&["127.0.0.1:9"], "secret")).unwrap();
        for (user, password) in [
            ("alice", String::new()),
            ("alice", "p".repeat(129)),
            ("", "password".to_string()),
            (&*"u".repeat(254), "password".to_string()),
        ] {
            assert_eq!(
                d.check_password(user, None, password).await.unwrap(),
                PasswordCheck::Rejected
            );
        }
    }

    #[tokio::test]
    async fn cannot_list_or_look_up() {
        let d = RadiusDirectory::new(config(&["127.0.0.1:1812"], "secret")).unwrap();
        assert_eq!(d.kind(), PrimaryAuth::Radius);
        assert_eq!(d.resolve("  bob ").await.unwrap(), Some("bob".to_string()));
        assert_eq!(d.lookup("bob").await.unwrap(), None);
        assert!(matches!(
            d.search(None, None).await,
            Err(Error::InvalidInput { .. })
        ));
    }
}

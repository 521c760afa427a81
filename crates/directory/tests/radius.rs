//! The RADIUS adapter against a real FreeRADIUS 3 (one per test, started by
//! `twofold_testkit::freeradius`), and against deliberately malicious
//! "rogue" servers for what a real one never sends: replies without a
//! Message-Authenticator, with a wrong one, with a wrong Response
//! Authenticator, or from another address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use twofold_core::ports::{Directory, PasswordCheck};
use twofold_core::Error;
use twofold_directory::{RadiusConfig, RadiusDirectory};
use twofold_testkit::freeradius::{FreeRadius, FreeRadiusOptions};
use zeroize::Zeroizing;

const SECRET: &str = "twofold-radius-test-secret";
const TIMEOUT: Duration = Duration::from_millis(300);
const RETRIES: u32 = 1;
/// Slack over the computed worst case for scheduling.
const SLACK: Duration = Duration::from_millis(700);

const USERS: &[(&str, &str)] = &[
    ("alice", "alice-secret"),
    // Quotes, backslash, spaces, non-ASCII and more than one 16-byte block.
    (
        "bob",
        "b\"o\\b's pässwörd with several blocks — 0123456789abcdef",
    ),
];

fn freeradius() -> FreeRadius {
    FreeRadius::start(FreeRadiusOptions {
        secret: SECRET,
        users: USERS,
        ..FreeRadiusOptions::default()
    })
}

fn config(servers: &[String], secret: &str) -> RadiusConfig {
    RadiusConfig {
        servers: servers.to_vec(),
        secret: Zeroizing::new(secret.to_string()),
        timeout: TIMEOUT,
        retries: RETRIES,
        nas_identifier: "twofold-test".to_string(),
    }
}

fn directory(servers: &[String], secret: &str) -> RadiusDirectory {
    RadiusDirectory::new(config(servers, secret)).expect("valid RADIUS configuration")
}

/// A loopback port nobody listens on (ICMP port unreachable).
fn dead_port() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

async fn check(
    d: &RadiusDirectory,
    user: &str,
    password: &str,
) -> twofold_core::Result<PasswordCheck> {
    d.check_password(user, None, password.to_string()).await
}

fn assert_unavailable(result: &twofold_core::Result<PasswordCheck>) {
    assert!(
        matches!(result, Err(Error::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
}

fn accepted() -> PasswordCheck {
    PasswordCheck::Accepted { groups: None }
}

// ---------------------------------------------------------------------
// Against FreeRADIUS.

#[tokio::test]
async fn accepts_the_right_password() {
    let server = freeradius();
    let d = directory(&[server.addr()], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    assert_eq!(check(&d, "bob", USERS[1].1).await.unwrap(), accepted());
    // FreeRADIUS required (require_message_authenticator = yes) and
    // verified our Message-Authenticator.
    assert!(server.output().contains("Message-Authenticator"));
}

#[tokio::test]
async fn rejects_a_wrong_password() {
    let server = freeradius();
    let d = directory(&[server.addr()], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secreT").await.unwrap(),
        PasswordCheck::Rejected
    );
    assert_eq!(
        check(&d, "alice", "alice-secret-and-more").await.unwrap(),
        PasswordCheck::Rejected
    );
    assert_eq!(
        check(&d, "bob", "alice-secret").await.unwrap(),
        PasswordCheck::Rejected
    );
}

#[tokio::test]
async fn rejects_an_unknown_user() {
    let server = freeradius();
    let d = directory(&[server.addr()], SECRET);
    assert_eq!(
        check(&d, "mallory", "alice-secret").await.unwrap(),
        PasswordCheck::Rejected
    );
}

#[tokio::test]
async fn a_wrong_shared_secret_is_unavailable_not_rejected() {
    // The server requires a Message-Authenticator: ours does not verify
    // under its secret, so it drops the request.
    let server = freeradius();
    let d = directory(&[server.addr()], "not-the-shared-secret");
    let started = Instant::now();
    assert_unavailable(&check(&d, "alice", "alice-secret").await);
    assert!(started.elapsed() < d.worst_case() + SLACK);
    assert!(
        server
            .output()
            .contains("invalid Message-Authenticator!  (Shared secret is incorrect.)"),
        "{}",
        server.output()
    );
    // (FreeRADIUS verifies a Message-Authenticator whenever one is present,
    // even with require_message_authenticator = no, so it never answers a
    // request signed with another secret: replies that fail verification
    // come from the rogue servers below.)
}

#[tokio::test]
async fn a_real_server_that_does_not_sign_replies_is_refused() {
    // Debian 12's FreeRADIUS 3.2.1 left to itself: Access-Accept without
    // a Message-Authenticator (the pre-BlastRADIUS behaviour).
    let server = FreeRadius::start(FreeRadiusOptions {
        secret: SECRET,
        users: USERS,
        sign_replies: false,
        ..FreeRadiusOptions::default()
    });
    let d = directory(&[server.addr()], SECRET);
    assert_unavailable(&check(&d, "alice", "alice-secret").await);
    assert!(server.output().contains("Sent Access-Accept"));
    assert!(d.probe().await.is_err());
}

#[tokio::test]
async fn fails_over_from_a_dead_port_to_the_next_server() {
    let server = freeradius();
    let d = directory(&[dead_port(), server.addr()], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    assert_eq!(
        check(&d, "alice", "wrong").await.unwrap(),
        PasswordCheck::Rejected
    );
}

#[tokio::test]
async fn fails_over_from_a_stopped_server_to_the_next() {
    let mut first = freeradius();
    let second = freeradius();
    let d = directory(&[first.addr(), second.addr()], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    first.stop();
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    assert!(second.output().contains("Sent Access-Accept"));
}

#[tokio::test]
async fn fails_over_from_a_silent_server_within_its_timeout() {
    let silent = Rogue::start(Mode::Silent).await;
    let server = freeradius();
    let d = directory(&[silent.addr.to_string(), server.addr()], SECRET);
    let started = Instant::now();
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    let elapsed = started.elapsed();
    // The silent one had all its tries, then the next answered.
    assert!(elapsed >= TIMEOUT * (RETRIES + 1), "{elapsed:?}");
    assert!(elapsed < TIMEOUT * (RETRIES + 1) + SLACK, "{elapsed:?}");
    assert_eq!(
        silent.requests().len(),
        usize::try_from(RETRIES).unwrap() + 1
    );
}

#[tokio::test]
async fn all_servers_down_is_unavailable_in_bounded_time() {
    let silent = Rogue::start(Mode::Silent).await;
    let mut stopped = freeradius();
    stopped.stop();
    let d = directory(
        &[dead_port(), silent.addr.to_string(), stopped.addr()],
        SECRET,
    );
    let started = Instant::now();
    assert_unavailable(&check(&d, "alice", "alice-secret").await);
    let elapsed = started.elapsed();
    assert!(
        elapsed < d.worst_case() + SLACK,
        "{elapsed:?} against a worst case of {:?}",
        d.worst_case()
    );
    assert!(matches!(d.probe().await, Err(Error::Unavailable(_))));
}

#[tokio::test]
async fn probe_is_ok_when_a_server_answers() {
    let server = freeradius();
    assert!(directory(&[server.addr()], SECRET).probe().await.is_ok());
    assert!(directory(&[dead_port(), server.addr()], SECRET)
        .probe()
        .await
        .is_ok());
    // The probe's user is unknown: FreeRADIUS rejected it, which is an answer.
    assert!(server.output().contains("twofold-probe"));
    assert!(matches!(
        directory(&[server.addr()], "not-the-shared-secret")
            .probe()
            .await,
        Err(Error::Unavailable(_))
    ));
    assert!(matches!(
        directory(&[dead_port()], SECRET).probe().await,
        Err(Error::Unavailable(_))
    ));
}

#[tokio::test]
async fn new_refuses_bad_configurations() {
    let invalid =
        |c: RadiusConfig| matches!(RadiusDirectory::new(c), Err(Error::InvalidInput { .. }));
    assert!(invalid(config(&[], SECRET)));
    assert!(invalid(config(&["radius.example.com".to_string()], SECRET)));
    assert!(invalid(config(&["127.0.0.1:x".to_string()], SECRET)));
    assert!(invalid(config(&["127.0.0.1:0".to_string()], SECRET)));
    assert!(invalid(config(&["127.0.0.1:1812".to_string()], "")));
    assert!(!invalid(config(&["localhost:1812".to_string()], SECRET)));
}

#[tokio::test]
async fn resolves_host_names_at_send_time() {
    let server = freeradius();
    let d = directory(&[format!("localhost:{}", server.port())], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
}

// ---------------------------------------------------------------------
// Against rogue servers.

#[tokio::test]
async fn requests_carry_a_valid_message_authenticator_first_and_retransmit_identically() {
    let silent = Rogue::start(Mode::Silent).await;
    let d = directory(&[silent.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "alice-secret").await);
    let requests = silent.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0], requests[1],
        "a retransmission is the identical packet"
    );
    let request = &requests[0];
    assert_eq!(request[0], 1, "Access-Request");
    assert_eq!(
        usize::from(u16::from_be_bytes([request[2], request[3]])),
        request.len()
    );
    assert_eq!(&request[20..22], &[80, 18], "Message-Authenticator first");
    let mut zeroed = request.clone();
    zeroed[22..38].fill(0);
    assert_eq!(hmac_md5(SECRET.as_bytes(), &zeroed), request[22..38]);

    // A new check: a new Identifier/Request Authenticator pair.
    assert_unavailable(&check(&d, "alice", "alice-secret").await);
    let again = silent.requests();
    assert_ne!(again[2][4..20], again[0][4..20]);
}

#[tokio::test]
async fn a_control_rogue_that_signs_correctly_is_believed() {
    // Proves the rogue's signing is right, so the refusals below are for
    // the reason each test names.
    let rogue = Rogue::start(Mode::Valid(ACCESS_ACCEPT)).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_eq!(check(&d, "alice", "anything").await.unwrap(), accepted());
}

#[tokio::test]
async fn an_accept_without_message_authenticator_is_refused() {
    let rogue = Rogue::start(Mode::Unsigned).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "anything").await);
    assert_eq!(rogue.requests().len(), 2, "retried, then gave up");
}

#[tokio::test]
async fn an_accept_with_a_wrong_message_authenticator_is_refused() {
    let rogue = Rogue::start(Mode::WrongMessageAuthenticator).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "anything").await);
}

#[tokio::test]
async fn an_accept_with_a_wrong_response_authenticator_is_refused() {
    let rogue = Rogue::start(Mode::WrongResponseAuthenticator).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "anything").await);
}

#[tokio::test]
async fn an_accept_from_another_address_is_ignored() {
    let rogue = Rogue::start(Mode::FromAnotherSocket).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "anything").await);
}

#[tokio::test]
async fn an_accept_for_another_identifier_is_ignored() {
    let rogue = Rogue::start(Mode::OtherIdentifier).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_unavailable(&check(&d, "alice", "anything").await);
}

#[tokio::test]
async fn a_challenge_is_a_rejection() {
    let rogue = Rogue::start(Mode::Valid(ACCESS_CHALLENGE)).await;
    let d = directory(&[rogue.addr.to_string()], SECRET);
    assert_eq!(
        check(&d, "alice", "anything").await.unwrap(),
        PasswordCheck::Rejected
    );
}

#[tokio::test]
async fn fails_over_from_a_forging_server_to_a_real_one() {
    let rogue = Rogue::start(Mode::WrongMessageAuthenticator).await;
    let server = freeradius();
    let d = directory(&[rogue.addr.to_string(), server.addr()], SECRET);
    assert_eq!(
        check(&d, "alice", "alice-secret").await.unwrap(),
        accepted()
    );
    assert_eq!(
        check(&d, "alice", "wrong").await.unwrap(),
        PasswordCheck::Rejected
    );
}

// ---------------------------------------------------------------------
// The rogue server: answers every request the way its mode says.

const ACCESS_ACCEPT: u8 = 2;
const ACCESS_CHALLENGE: u8 = 11;

#[derive(Clone, Copy)]
enum Mode {
    /// Never answers (records what it receives).
    Silent,
    /// A correct, signed reply of this code.
    Valid(u8),
    /// Access-Accept with a right Response Authenticator and no
    /// Message-Authenticator.
    Unsigned,
    /// Access-Accept with a right Response Authenticator over a wrong
    /// Message-Authenticator.
    WrongMessageAuthenticator,
    /// Access-Accept with a right Message-Authenticator and a wrong
    /// Response Authenticator.
    WrongResponseAuthenticator,
    /// A correct Access-Accept, sent from another port.
    FromAnotherSocket,
    /// A correct Access-Accept for another Identifier.
    OtherIdentifier,
}

struct Rogue {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut mac = Hmac::<Md5>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// An Access-Accept (or `code`) for `request`, signed with `SECRET`:
/// a Reply-Message, then (when `sign`) a Message-Authenticator, whose
/// value `tamper` flips after signing; the Response Authenticator last.
fn reply(request: &[u8], code: u8, sign: bool, tamper_ma: bool) -> Vec<u8> {
    let request_auth = &request[4..20];
    let mut packet = vec![code, request[1], 0, 0];
    packet.extend_from_slice(request_auth);
    packet.extend_from_slice(&[18, 7]);
    packet.extend_from_slice(b"hello");
    let ma = packet.len() + 2;
    if sign {
        packet.extend_from_slice(&[80, 18]);
        packet.extend_from_slice(&[0; 16]);
    }
    let len = u16::try_from(packet.len()).unwrap();
    packet[2..4].copy_from_slice(&len.to_be_bytes());
    if sign {
        // Over the packet with the Request Authenticator in place.
        let mac = hmac_md5(SECRET.as_bytes(), &packet);
        packet[ma..ma + 16].copy_from_slice(&mac);
        if tamper_ma {
            packet[ma] ^= 0x01;
        }
    }
    let mut md5 = Md5::new();
    md5.update(&packet);
    md5.update(SECRET.as_bytes());
    let response: [u8; 16] = md5.finalize().into();
    packet[4..20].copy_from_slice(&response);
    packet
}

impl Rogue {
    async fn start(mode: Mode) -> Rogue {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let request = buffer[..n].to_vec();
                log.lock().unwrap().push(request.clone());
                if n < 20 {
                    continue;
                }
                let answer = match mode {
                    Mode::Silent => continue,
                    Mode::Valid(code) => reply(&request, code, true, false),
                    Mode::Unsigned => reply(&request, ACCESS_ACCEPT, false, false),
                    Mode::WrongMessageAuthenticator => reply(&request, ACCESS_ACCEPT, true, true),
                    Mode::WrongResponseAuthenticator => {
                        let mut p = reply(&request, ACCESS_ACCEPT, true, false);
                        p[4] ^= 0x01;
                        p
                    }
                    Mode::FromAnotherSocket => {
                        let p = reply(&request, ACCESS_ACCEPT, true, false);
                        let _ = other.send_to(&p, from).await;
                        continue;
                    }
                    Mode::OtherIdentifier => {
                        let mut other_request = request.clone();
                        other_request[1] = other_request[1].wrapping_add(1);
                        reply(&other_request, ACCESS_ACCEPT, true, false)
                    }
                };
                let _ = socket.send_to(&answer, from).await;
            }
        });
        Rogue {
            addr,
            received,
            task,
        }
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }
}

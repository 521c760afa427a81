//! `kill -9` in the middle of a stream of accepted codes, through the real
//! binary: after each restart no code that was answered "accepted" is
//! accepted again, and no code is ever accepted twice. The group commit
//! answers a request only after the transaction holding its write is
//! durable, so an acknowledged acceptance survives the crash, and one that
//! was never acknowledged may or may not have landed — but never twice.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_trusting, Env};
use serde_json::{json, Value};
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath::hotp;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(killed_mid_stream_accepts_no_code_twice);

/// RFC 4226's test secret, "12345678901234567890".
const SECRET: &[u8] = b"12345678901234567890";
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const USERS: usize = 3;
/// Clients per user, racing each other with the same codes.
const RACERS: usize = 2;
const ROUNDS: usize = 5;
/// Codes behind each user's next one re-checked after a restart.
const RECHECKED: u64 = 5;
/// Acceptances per round before the server is killed.
const ACCEPTED_BEFORE_KILL: usize = 25;

fn code(counter: u64) -> String {
    hotp(SECRET, counter, OathAlgorithm::Sha1, 6)
}

/// The answer's `result == "accept"` and its reason; `None` when there was
/// no answer (the server died under the request).
async fn validate(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    user: usize,
    counter: u64,
) -> Option<(bool, String)> {
    let res = http
        .post(url)
        .basic_auth("vpn", Some(secret))
        .json(&json!({ "username": format!("u{user}"), "passcode": code(counter) }))
        .send()
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    let body: Value = res.json().await.ok()?;
    Some((
        body["result"] == "accept",
        body["reason"].as_str().unwrap_or_default().to_string(),
    ))
}

async fn killed_mid_stream_accepts_no_code_twice(backend: Backend) {
    let env = Env::new(backend).await;
    let out = env.ok(&["service-account", "create", "vpn", "--role", "validate"]);
    let secret = out.lines().last().unwrap().trim().to_string();
    for u in 0..USERS {
        let name = format!("u{u}");
        env.ok(&["user", "add", &name]);
        env.ok(&[
            "token", "add", &name, "--type", "hotp", "--secret", SECRET_B32,
        ]);
        env.ok(&["user", "set", &name, "--method", "oath_token"]);
    }

    // (user, counter) → how often it was answered "accepted", over all rounds.
    let accepted: Arc<Mutex<HashMap<(usize, u64), usize>>> = Arc::default();
    // The next counter to try per user: past the last one answered.
    let next: Arc<Vec<AtomicU64>> = Arc::new((0..USERS).map(|_| AtomicU64::new(0)).collect());

    for round in 0..ROUNDS {
        let mut server = env.start();
        let http = client_trusting(&env.data_dir().join("tls/cert.pem"));
        let url = server.url("/sdk/v1/validate");

        // The last codes acknowledged before the crash — those a lost
        // commit would free again — are refused after it as replays. (Only
        // the last few: a code further back than the replay window counts
        // as a wrong guess, and wrong guesses are bounded per hour.)
        let recent: Vec<(usize, u64)> = {
            let accepted = accepted.lock().unwrap();
            let mut recent: Vec<(usize, u64)> = accepted.keys().copied().collect();
            recent.retain(|(u, c)| c + RECHECKED > next[*u].load(Ordering::SeqCst));
            recent
        };
        assert!(round == 0 || !recent.is_empty());
        for (u, c) in recent {
            assert_eq!(
                validate(&http, &url, &secret, u, c).await,
                Some((false, "replayed_passcode".to_string())),
                "round {round}: u{u}'s code for counter {c}, accepted before the crash, is refused after it"
            );
        }

        let count = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for u in 0..USERS {
            for _ in 0..RACERS {
                let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
                let (accepted, next, count) = (accepted.clone(), next.clone(), count.clone());
                clients.push(tokio::spawn(async move {
                    loop {
                        let c = next[u].load(Ordering::SeqCst);
                        match validate(&http, &url, &secret, u, c).await {
                            None => return,
                            Some((yes, _)) => {
                                if yes {
                                    *accepted.lock().unwrap().entry((u, c)).or_default() += 1;
                                    count.fetch_add(1, Ordering::SeqCst);
                                }
                                // Refused: the racer won it (a replay).
                                next[u].fetch_max(c + 1, Ordering::SeqCst);
                            }
                        }
                    }
                }));
            }
        }
        let deadline = Instant::now() + Duration::from_mins(1);
        while count.load(Ordering::SeqCst) < ACCEPTED_BEFORE_KILL {
            assert!(
                Instant::now() < deadline,
                "round {round}: codes were not accepted"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // SIGKILL, with requests in flight.
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        // An acceptance in flight may have committed unanswered: the next
        // round's first code is then refused as a replay, and steps on.
        for client in clients {
            client.await.unwrap();
        }
    }

    let twice: Vec<_> = accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (*k, *n))
        .collect();
    assert!(twice.is_empty(), "codes accepted more than once: {twice:?}");
    assert!(accepted.lock().unwrap().len() >= ROUNDS * ACCEPTED_BEFORE_KILL);
}

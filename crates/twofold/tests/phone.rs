//! Phone call and text message verification (issue 10), end to end through
//! the real binary configured with `[twilio]` against the provider emulator
//! (`twofold_testkit::twilio`), which places nothing but plays the phone:
//! it fetches the voice webhook, presses keys, reports a call's end and
//! texts replies — signed as the provider signs, or forged. Every mode of
//! both methods through the Web Service SDK, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::{client_trusting, Env, Server};
use serde_json::{json, Value};
use std::time::Duration;
use twofold_testkit::db::Backend;
use twofold_testkit::twilio::{text_in, PlacedCall, TwilioEmulator, ACCOUNT_SID, AUTH_TOKEN};

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)];
    phone_calls_in_every_mode,
    text_messages_in_every_mode,
    faults_and_limits,
);

const FROM: &str = "+3197010260001";
const JAN: &str = "+31612345678";
const KIM: &str = "+31687654321";
const BACKUP: &str = "+31201234567";
const PIN: &str = "4826";

struct Phone {
    emu: TwilioEmulator,
    env: Env,
    server: Server,
    http: reqwest::Client,
    vpn: String,
    admin: String,
}

fn secret_of(out: &str) -> String {
    out.lines().last().expect("secret line").trim().to_string()
}

impl Phone {
    async fn start(backend: Backend) -> Phone {
        let emu = TwilioEmulator::start().await;
        let mut env = Env::new(backend).await;
        env.extra = vec![
            ("TWOFOLD_TWILIO_BASE_URL".into(), emu.base_url.clone()),
            ("TWOFOLD_TWILIO_ACCOUNT_SID".into(), ACCOUNT_SID.into()),
            ("TWOFOLD_TWILIO_AUTH_TOKEN".into(), AUTH_TOKEN.into()),
            ("TWOFOLD_TWILIO_FROM".into(), FROM.into()),
        ];
        let vpn = secret_of(&env.ok(&["service-account", "create", "vpn", "--role", "validate"]));
        let admin = secret_of(&env.ok(&[
            "service-account",
            "create",
            "helpdesk",
            "--role",
            "admin",
            "--perm",
            "all",
        ]));
        let server = env.start();
        let mut http = client_trusting(&env.data_dir().join("tls/cert.pem"));
        // Long-polls wait longer than the harness's usual timeout.
        http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(
                    &std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap(),
                )
                .unwrap(),
            )
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap_or(http);
        Phone {
            emu,
            env,
            server,
            http,
            vpn,
            admin,
        }
    }

    async fn sdk(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (user, secret) = if path.starts_with("/sdk/v1/users") {
            ("helpdesk", &self.admin)
        } else {
            ("vpn", &self.vpn)
        };
        let mut req = self
            .http
            .request(method, self.server.url(path))
            .basic_auth(user, Some(secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("SDK request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn start_auth(&self, username: &str) -> Value {
        self.start_with(json!({ "username": username })).await
    }

    async fn start_with(&self, body: Value) -> Value {
        let (status, v) = self
            .sdk(reqwest::Method::POST, "/sdk/v1/authenticate", Some(body))
            .await;
        assert!(status == 201 || status == 200, "{status} {v}");
        v
    }

    async fn status(&self, id: &str) -> Value {
        let (status, v) = self
            .sdk(
                reqwest::Method::GET,
                &format!("/sdk/v1/authenticate/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    async fn answer(&self, id: &str, passcode: &str) -> (u16, Value) {
        self.sdk(
            reqwest::Method::POST,
            &format!("/sdk/v1/authenticate/{id}/answer"),
            Some(json!({ "passcode": passcode })),
        )
        .await
    }

    /// The newest call the provider was asked to place.
    fn last_call(&self) -> PlacedCall {
        self.emu.calls().last().cloned().expect("a call was placed")
    }

    /// The newest text message's code.
    fn last_code(&self) -> (String, String) {
        let m = self
            .emu
            .messages()
            .last()
            .cloned()
            .expect("a text was sent");
        let code: String = m
            .body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a six-digit code")
            .to_string();
        (m.to, code)
    }

    fn sms_hook(&self) -> String {
        self.server.url("/hooks/twilio/sms")
    }

    fn audit(&self) -> String {
        self.env.ok(&["audit", "tail", "-n", "300"])
    }

    async fn set_pin(&self, user: &str) {
        let (status, v) = self
            .sdk(
                reqwest::Method::PUT,
                &format!("/sdk/v1/users/{user}/pin"),
                Some(json!({ "pin": PIN })),
            )
            .await;
        assert!(status < 300, "{status} {v}");
    }
}

/// A running server reads settings changed by another process within a
/// second (its settings cache).
async fn settle_settings() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {v}"))
        .to_string()
}

async fn phone_calls_in_every_mode(backend: Backend) {
    let p = Phone::start(backend).await;
    p.env.ok(&["user", "add", "jan", "--language", "nl"]);
    p.env.ok(&[
        "user",
        "set",
        "jan",
        "--phone",
        JAN,
        "--extension",
        "42",
        "--method",
        "phone_call",
    ]);

    // validate cannot check a call.
    let (_, v) = p
        .sdk(
            reqwest::Method::POST,
            "/sdk/v1/validate",
            Some(json!({"username": "jan", "passcode": "123456"})),
        )
        .await;
    assert_eq!(v["reason"], "method_not_supported", "{v}");

    // Standard: the call asks in Dutch, `#` approves.
    let started = p.start_auth("jan").await;
    assert_eq!(started["state"], "pending", "{started}");
    assert_eq!(started["prompt"], "phone_call");
    assert_eq!(started["method"], "phone_call:standard");
    assert_eq!(started["phone"], "…78");
    let id = id_of(&started);
    let call = p.last_call();
    assert_eq!(call.field("To"), Some(JAN));
    assert_eq!(call.field("From"), Some(FROM));
    assert_eq!(call.field("SendDigits"), Some("ww42"));
    assert_eq!(
        call.field("Url"),
        Some(p.server.url(&format!("/hooks/twilio/voice/{id}")).as_str())
    );
    // The application cannot answer a call for the user.
    let (status, v) = p.answer(&id, "#").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (409, Some("answered_elsewhere")),
        "{v}"
    );
    // It waits for the decision instead (long-poll), started before the call
    // is answered: a wait that returned early would say `pending`.
    let waiting = {
        let http = p.http.clone();
        let url = p.server.url(&format!("/sdk/v1/authenticate/{id}?wait=30"));
        let secret = p.vpn.clone();
        tokio::spawn(async move {
            http.get(url)
                .basic_auth("vpn", Some(secret))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let talk = call.answer(&["#"]).await;
    assert!(talk.said[0].contains("hekje"), "{talk:?}");
    assert!(talk.said[0].contains("fraude"), "{talk:?}");
    assert!(talk.last_said().starts_with("U bent aangemeld"), "{talk:?}");
    assert!(talk.hung_up);
    let decided = waiting.await.unwrap();
    assert_eq!(decided["state"], "accepted", "{decided}");
    assert_eq!(decided["reason"], "accepted");
    // The call's end after the decision changes nothing.
    assert_eq!(call.report("completed").await, 204);
    assert_eq!(p.status(&id).await["state"], "accepted");

    // A wrong key asks again; `#` then approves.
    let id = id_of(&p.start_auth("jan").await);
    let talk = p.last_call().answer(&["5#", "#"]).await;
    assert!(
        talk.said.iter().any(|s| s.contains("niet herkend")),
        "{talk:?}"
    );
    assert_eq!(p.status(&id).await["state"], "accepted");

    // Silence until the gather times out: no keys, refused.
    let id = id_of(&p.start_auth("jan").await);
    let talk = p.last_call().answer(&[""]).await;
    assert!(talk.hung_up, "{talk:?}");
    let s = p.status(&id).await;
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("rejected"), Some("no_answer"))
    );

    // Not answered at all: the provider says so.
    let id = id_of(&p.start_auth("jan").await);
    assert_eq!(p.last_call().report("no-answer").await, 204);
    assert_eq!(p.status(&id).await["reason"], "no_answer");

    // A forged callback is refused and changes nothing; it is audited.
    let id = id_of(&p.start_auth("jan").await);
    let call = p.last_call();
    let forged = call.answer_signed_with(&["#"], "not-the-auth-token").await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(p.status(&id).await["state"], "pending");
    assert!(p.audit().contains("FAILED_FORGED_REQUEST"));
    assert_eq!(call.report("busy").await, 204);
    assert_eq!(p.status(&id).await["reason"], "no_answer");

    // PIN mode: the PIN and `#`; a wrong PIN asks again and counts.
    p.set_pin("jan").await;
    p.env
        .ok(&["user", "set", "jan", "--method", "phone_call:pin"]);
    let started = p.start_auth("jan").await;
    assert_eq!(started["method"], "phone_call:pin");
    let id = id_of(&started);
    let talk = p.last_call().answer(&["1111#", &format!("{PIN}#")]).await;
    assert!(talk.said[0].contains("pincode"), "{talk:?}");
    assert!(
        talk.said.iter().any(|s| s.contains("niet juist")),
        "{talk:?}"
    );
    assert_eq!(p.status(&id).await["state"], "accepted");
    // Three wrong PINs end the call: wrong_pin.
    let id = id_of(&p.start_auth("jan").await);
    let talk = p
        .last_call()
        .answer(&["1111#", "2222#", "3333#", "4826#"])
        .await;
    assert!(talk.hung_up, "{talk:?}");
    let s = p.status(&id).await;
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("rejected"), Some("wrong_pin")),
        "{s}"
    );
    assert!(p.audit().matches("FAILED_PIN_WRONG").count() >= 4);

    // Fraud: the fraud code and `#` refuses and blocks the user.
    let id = id_of(&p.start_auth("jan").await);
    let talk = p.last_call().answer(&["0#"]).await;
    assert!(talk.last_said().contains("fraude"), "{talk:?}");
    assert_eq!(p.status(&id).await["reason"], "fraud_reported");
    assert!(p.env.ok(&["user", "show", "jan"]).contains("fraud"));
    assert!(p.audit().contains("FAILED_FRAUD_REPORTED"));
    let refused = p.start_auth("jan").await;
    assert_eq!(refused["state"], "rejected");
    assert_eq!(refused["reason"], "user_locked");
    let calls = p.emu.calls().len();
    // Only an administrator ends the block.
    p.env.ok(&["user", "unblock", "jan"]);
    let id = id_of(&p.start_auth("jan").await);
    assert_eq!(p.emu.calls().len(), calls + 1);
    p.last_call().answer(&[&format!("{PIN}#")]).await;
    assert_eq!(p.status(&id).await["state"], "accepted");
}

async fn text_messages_in_every_mode(backend: Backend) {
    let p = Phone::start(backend).await;
    p.env.ok(&["user", "add", "kim", "--language", "de"]);
    p.env.ok(&[
        "user",
        "set",
        "kim",
        "--phone",
        JAN,
        "--mobile-phone",
        KIM,
        "--backup-phone",
        BACKUP,
        "--method",
        "text_message",
    ]);

    // One-way: the code goes to the mobile number, in German; typed once.
    let started = p.start_auth("kim").await;
    assert_eq!(started["prompt"], "passcode", "{started}");
    assert_eq!(started["method"], "text_message:sms_one_way_otp");
    assert_eq!(started["pin_required"], false);
    let id = id_of(&started);
    let (to, code) = p.last_code();
    assert_eq!(to, KIM);
    assert!(p
        .emu
        .messages()
        .last()
        .unwrap()
        .body
        .contains("Anmeldecode"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, v) = p.answer(&id, wrong).await;
    assert_eq!(
        (status, v["state"].as_str(), v["reason"].as_str()),
        (200, Some("pending"), Some("wrong_passcode"))
    );
    let (_, v) = p.answer(&id, &code).await;
    assert_eq!(v["state"], "accepted", "{v}");
    let (status, v) = p.answer(&id, &code).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (409, Some("finished")),
        "used once: {v}"
    );
    // The code is never in the audit log.
    assert!(!p.audit().contains(&code));

    // The backup phone, when the caller asks for it.
    let started = p
        .start_with(json!({"username": "kim", "phone": "backup"}))
        .await;
    assert_eq!(started["phone"], "…67");
    let (to, code) = p.last_code();
    assert_eq!(to, BACKUP);
    let (_, v) = p.answer(&id_of(&started), &code).await;
    assert_eq!(v["state"], "accepted");

    // One-way with PIN: the PIN, then the code.
    p.set_pin("kim").await;
    p.env.ok(&[
        "user",
        "set",
        "kim",
        "--method",
        "text_message:sms_one_way_otp_plus_pin",
    ]);
    let started = p.start_auth("kim").await;
    assert_eq!(started["pin_required"], true);
    let id = id_of(&started);
    let (_, code) = p.last_code();
    let (_, v) = p.answer(&id, &code).await;
    assert_eq!(v["reason"], "wrong_pin", "the code alone: {v}");
    let (_, v) = p.answer(&id, &format!("{PIN}{code}")).await;
    assert_eq!(v["state"], "accepted", "{v}");

    // Two-way: the user replies to the message; the application follows.
    p.env.ok(&[
        "user",
        "set",
        "kim",
        "--method",
        "text_message:sms_two_way_otp",
    ]);
    let started = p.start_auth("kim").await;
    assert_eq!(started["prompt"], "sms_reply", "{started}");
    let id = id_of(&started);
    let (_, code) = p.last_code();
    assert!(p.emu.messages().last().unwrap().body.contains("Antworten"));
    let (status, v) = p.answer(&id, &code).await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (409, Some("answered_elsewhere")),
        "{v}"
    );
    // A forged reply, and a reply from another number, change nothing.
    assert_eq!(
        text_in(&p.sms_hook(), KIM, FROM, &code, "forged").await,
        403
    );
    assert_eq!(
        text_in(&p.sms_hook(), JAN, FROM, &code, AUTH_TOKEN).await,
        200
    );
    assert_eq!(p.status(&id).await["state"], "pending");
    assert_eq!(
        text_in(&p.sms_hook(), KIM, FROM, &format!(" {code}\n"), AUTH_TOKEN).await,
        200
    );
    assert_eq!(p.status(&id).await["state"], "accepted");

    // Two-way with PIN: the code, then the PIN.
    p.env.ok(&[
        "user",
        "set",
        "kim",
        "--method",
        "text_message:sms_two_way_otp_plus_pin",
    ]);
    let id = id_of(&p.start_auth("kim").await);
    let (_, code) = p.last_code();
    assert_eq!(
        text_in(&p.sms_hook(), KIM, FROM, &format!("{code}1111"), AUTH_TOKEN).await,
        200
    );
    assert_eq!(
        p.status(&id).await["state"],
        "pending",
        "a wrong PIN leaves tries"
    );
    assert_eq!(
        text_in(
            &p.sms_hook(),
            KIM,
            FROM,
            &format!("{code} {PIN}"),
            AUTH_TOKEN
        )
        .await,
        200
    );
    assert_eq!(p.status(&id).await["state"], "accepted");
}

async fn faults_and_limits(backend: Backend) {
    let p = Phone::start(backend).await;
    p.env.ok(&["user", "add", "eva"]);
    p.env
        .ok(&["user", "set", "eva", "--method", "text_message"]);
    // No phone at all: refused before anything is sent.
    let refused = p.start_auth("eva").await;
    assert_eq!(
        (refused["state"].as_str(), refused["reason"].as_str()),
        (Some("rejected"), Some("no_phone"))
    );
    assert!(refused["id"].is_null());
    p.env.ok(&["user", "set", "eva", "--mobile-phone", KIM]);
    let refused = p
        .start_with(json!({"username": "eva", "phone": "backup"}))
        .await;
    assert_eq!(refused["reason"], "no_phone", "no backup phone: {refused}");

    // The provider fails: the challenge ends at once, with nothing of the
    // provider's answer.
    p.emu.fail_with(Some(500));
    let failed = p.start_auth("eva").await;
    assert_eq!(failed["state"], "rejected", "{failed}");
    assert_eq!(failed["reason"], "provider_error");
    let id = id_of(&failed);
    assert_eq!(p.status(&id).await["reason"], "provider_error");
    assert!(!failed.to_string().contains("script"));
    // ... or does not answer within its timeout.
    p.emu.fail_with(None);
    p.emu.hang(true);
    let failed = p.start_auth("eva").await;
    assert_eq!(failed["reason"], "provider_error", "{failed}");
    p.emu.hang(false);
    assert!(p.audit().contains("FAILED_PROVIDER_ERROR"));

    // Rate limits: per user, whatever became of the messages ...
    p.env
        .ok(&["settings", "set", "phone.user_deliveries_per_hour", "4"]);
    settle_settings().await;
    let sent = p.emu.messages().len();
    let ok = p.start_auth("eva").await;
    assert_eq!(ok["state"], "pending", "{ok}");
    let ok = p.start_auth("eva").await;
    assert_eq!(ok["state"], "pending", "{ok}");
    let limited = p.start_auth("eva").await;
    assert_eq!(
        (limited["state"].as_str(), limited["reason"].as_str()),
        (Some("rejected"), Some("rate_limited")),
        "{limited}"
    );
    assert_eq!(p.emu.messages().len(), sent + 2);
    assert!(p.audit().contains("calls and text messages to this user"));
    // ... and per number, across users.
    p.env
        .ok(&["settings", "set", "phone.user_deliveries_per_hour", "100"]);
    p.env
        .ok(&["settings", "set", "phone.number_deliveries_per_hour", "4"]);
    settle_settings().await;
    p.env.ok(&["user", "add", "ola"]);
    p.env.ok(&[
        "user",
        "set",
        "ola",
        "--mobile-phone",
        KIM,
        "--method",
        "text_message",
    ]);
    let limited = p.start_auth("ola").await;
    assert_eq!(limited["reason"], "rate_limited", "{limited}");
    p.env
        .ok(&["user", "set", "ola", "--mobile-phone", "+31611112222"]);
    assert_eq!(p.start_auth("ola").await["state"], "pending");

    // `wait` is bounded and checked.
    let id = id_of(&p.start_auth("ola").await);
    let (status, v) = p
        .sdk(
            reqwest::Method::GET,
            &format!("/sdk/v1/authenticate/{id}?wait=61"),
            None,
        )
        .await;
    assert_eq!((status, v["field"].as_str()), (422, Some("wait")), "{v}");
    let (status, v) = p
        .sdk(
            reqwest::Method::GET,
            &format!("/sdk/v1/authenticate/{id}?wait=1"),
            None,
        )
        .await;
    assert_eq!((status, v["state"].as_str()), (200, Some("pending")), "{v}");

    // Hooks for challenges that do not exist, or are not calls.
    let fields = [("CallSid".to_string(), "CA1".to_string())];
    let url = p.server.url(&format!("/hooks/twilio/voice/{id}"));
    let (status, _) = twofold_testkit::twilio::post_signed(&url, &fields, AUTH_TOKEN).await;
    assert_eq!(status, 404, "a text message challenge has no call");
}

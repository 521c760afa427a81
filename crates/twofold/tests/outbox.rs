//! The development outbox (issue 10): with `delivery.provider = "outbox"`
//! the real binary sends no call or text message but keeps them, loudly
//! says so at start, and `/dev/outbox` lets a developer read them and play
//! the phone — so the whole product can be tried with no provider account.
//! Without the mode the page does not exist.

#[macro_use]
mod common;

use common::{Env, Server};
use serde_json::{json, Value};
use std::time::Duration;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)];
    calls_and_texts_land_in_the_outbox,
);

struct Dev {
    env: Env,
    server: Server,
    http: reqwest::Client,
    secret: String,
}

impl Dev {
    async fn get(&self, path: &str) -> (u16, String) {
        let res = self.http.get(self.server.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .http
            .post(self.server.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn sdk(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, self.server.url(path))
            .basic_auth("app", Some(&self.secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn start(&self, user: &str) -> String {
        let v = self
            .sdk(
                reqwest::Method::POST,
                "/sdk/v1/authenticate",
                Some(json!({ "username": user })),
            )
            .await;
        assert_eq!(v["state"], "pending", "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn state(&self, id: &str) -> Value {
        self.sdk(
            reqwest::Method::GET,
            &format!("/sdk/v1/authenticate/{id}"),
            None,
        )
        .await
    }
}

/// The value of the first `name="NAME" value="..."` on the page.
fn value_of(page: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let from = page
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + key.len();
    page[from..from + page[from..].find('"').unwrap()].to_string()
}

async fn calls_and_texts_land_in_the_outbox(backend: Backend) {
    let mut env = Env::new(backend).await;
    env.extra = vec![("TWOFOLD_DELIVERY_PROVIDER".into(), "outbox".into())];
    let check = env.ok(&["config", "check"]);
    assert!(check.contains("outbox"), "{check}");
    let secret = env
        .ok(&["service-account", "create", "app", "--role", "validate"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    env.ok(&["user", "add", "jan", "--language", "nl"]);
    env.ok(&[
        "user",
        "set",
        "jan",
        "--phone",
        "+31612345678",
        "--method",
        "phone_call",
    ]);
    env.ok(&["user", "add", "kim"]);
    env.ok(&[
        "user",
        "set",
        "kim",
        "--mobile-phone",
        "+31687654321",
        "--method",
        "text_message:sms_two_way_otp",
    ]);
    let server = env.start();
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("DEVELOPMENT OUTBOX")),
        "{:?}",
        server.stdout
    );
    let pem = std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let dev = Dev {
        env,
        server,
        http,
        secret,
    };

    let (status, page) = dev.get("/dev/outbox").await;
    assert_eq!(status, 200);
    assert!(page.contains("Nothing yet"), "{page}");

    // A call: the page shows what it says, in jan's language; pressing #
    // approves it.
    let id = dev.start("jan").await;
    let (_, page) = dev.get("/dev/outbox").await;
    assert!(page.contains("Call to +31612345678"), "{page}");
    assert!(page.contains("hekje"), "{page}");
    let csrf = value_of(&page, "csrf");
    let message = value_of(&page, "message");
    // A form without this server's token is refused.
    let (status, _) = dev
        .form(
            "/dev/outbox/call",
            &[("csrf", "forged"), ("message", &message), ("keys", "#")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(dev.state(&id).await["state"], "pending");
    let (status, page) = dev
        .form(
            "/dev/outbox/call",
            &[
                ("csrf", &csrf),
                ("message", &message),
                ("keys", "#"),
                ("action", "answer"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("U bent aangemeld"), "{page}");
    assert_eq!(dev.state(&id).await["state"], "accepted");

    // A call that rings out.
    let id = dev.start("jan").await;
    let (_, page) = dev.get("/dev/outbox").await;
    let message = value_of(&page, "message");
    dev.form(
        "/dev/outbox/call",
        &[
            ("csrf", &csrf),
            ("message", &message),
            ("action", "ring-out"),
        ],
    )
    .await;
    assert_eq!(dev.state(&id).await["reason"], "no_answer");

    // A two-way text: read the code, reply with it.
    let id = dev.start("kim").await;
    let (_, page) = dev.get("/dev/outbox").await;
    assert!(page.contains("Text message to +31687654321"), "{page}");
    let message = value_of(&page, "message");
    let code: String = page
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("the code on the page")
        .to_string();
    let (status, _) = dev
        .form(
            "/dev/outbox/reply",
            &[("csrf", &csrf), ("message", &message), ("body", &code)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(dev.state(&id).await["state"], "accepted");
    let audit = dev.env.ok(&["audit", "tail", "-n", "100"]);
    assert!(audit.contains("provider:outbox"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_outbox_without_the_mode() {
    let mut env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let pem = std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let res = http.get(server.url("/dev/outbox")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(!server.stdout.iter().any(|l| l.contains("OUTBOX")));
    drop(server);

    // The outbox sends nothing, so it cannot stand beside a real provider.
    env.extra = vec![
        ("TWOFOLD_DELIVERY_PROVIDER".into(), "outbox".into()),
        ("TWOFOLD_TWILIO_ACCOUNT_SID".into(), "AC1".into()),
        ("TWOFOLD_TWILIO_AUTH_TOKEN".into(), "t".into()),
        ("TWOFOLD_TWILIO_FROM".into(), "+3197010260001".into()),
    ];
    let out = env.run(&["config", "check"]);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr().contains("delivery.provider"),
        "{}",
        out.stderr()
    );
}

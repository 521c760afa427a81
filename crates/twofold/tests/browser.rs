//! The User Portal in a real browser: headless Chromium, driven through
//! ChromeDriver, against the real `twofold serve`. A new user signs in,
//! enrolls an authenticator app and security questions, signs in again with
//! a code (a wrong one first), uses a one-time bypass and switches the
//! portal to Dutch; and, with the development outbox, enrolls by text
//! message and signs in with one; and activates the mobile app from the
//! URI on the page and approves sign-ins in it. Every page is photographed into
//! `target/e2e-screenshots/` and checked for unlabelled form controls.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs
//! them); without them the test fails, it does not skip.

// The harness's `both_backends!` is not needed here: SQLite is enough.
#[allow(unused_macros)]
#[macro_use]
mod common;

use common::Env;
use fantoccini::key::Key;
use std::time::Instant;
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;
use twofold_proto::mobile::ActivationUri;
use twofold_testkit::browser::Browser;
use twofold_testkit::db::Backend;
use twofold_testkit::mobile::TestDevice;

const USER: &str = "jan";
const PASSWORD: &str = "correct horse 1";
const QUESTIONS: [&str; 5] = [
    "What was the name of your first pet?",
    "In which city were you born?",
    "What was the name of your first school?",
    "What is your favourite book?",
    "What was the make of your first car?",
];

const SIGN_IN_FORM: &str = r#"form[action="/portal/sign-in"]"#;
const SIGN_OUT_BUTTON: &str = r#"form[action="/portal/sign-out"] button[type="submit"]"#;
const BYPASS_SECTION: &str = r#"section[aria-labelledby="h-bypass"]"#;

fn now_step() -> i64 {
    oath::totp_step(time::OffsetDateTime::now_utc().unix_timestamp(), 30)
}

/// The TOTP code (SHA-1, 6 digits, 30 s) of one time step.
fn code_at(secret: &[u8], step: i64) -> String {
    oath::hotp(
        secret,
        u64::try_from(step).expect("positive step"),
        OathAlgorithm::Sha1,
        6,
    )
}

/// A six-digit code that is none of the codes the server could accept now.
fn wrong_code(secret: &[u8]) -> String {
    let step = now_step();
    let near: Vec<String> = (step - 3..=step + 3).map(|s| code_at(secret, s)).collect();
    // Ten distinct codes (000000 to 999999) against at most seven near ones.
    (0..10)
        .map(|n: u32| format!("{:06}", n * 111_111))
        .find(|c| !near.contains(c))
        .expect("some code is wrong")
}

/// Every page the tour visits: photographed, and every form control on it
/// must have a label.
async fn page(b: &Browser, name: &str) {
    let shot = b.screenshot(name).await.expect("screenshot");
    eprintln!("page {name}: {} -> {}", b.here().await, shot.display());
    let unlabelled = b.unlabelled_controls().await.expect("label check");
    assert!(
        unlabelled.is_empty(),
        "page {name} ({}) has form controls without <label for>: {unlabelled:#?}",
        b.here().await
    );
}

async fn heading(b: &Browser, text: &str) {
    b.wait_for_text("main h1", text)
        .await
        .expect("page heading");
}

async fn focused_id(b: &Browser) -> String {
    b.js("return document.activeElement ? document.activeElement.id : '';")
        .await
        .expect("active element")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Fills the sign-in form and submits it, by click or by Enter.
async fn sign_in(b: &Browser, with_enter: bool) {
    b.fill("#username", USER).await.expect("username");
    b.fill("#password", PASSWORD).await.expect("password");
    if with_enter {
        let enter = String::from(char::from(Key::Enter));
        b.find("#password")
            .await
            .unwrap()
            .send_keys(&enter)
            .await
            .expect("press Enter");
    } else {
        b.click(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
            .await
            .expect("submit sign-in");
    }
}

/// Types `code` into the second step's code field and presses Enter.
async fn enter_code(b: &Browser, code: &str) {
    let enter = String::from(char::from(Key::Enter));
    b.fill("#code", code).await.expect("code");
    b.find("#code")
        .await
        .unwrap()
        .send_keys(&enter)
        .await
        .expect("press Enter");
}

async fn sign_out(b: &Browser) {
    b.click(SIGN_OUT_BUTTON).await.expect("sign out");
    heading(b, "Sign in").await;
    b.wait_for_text(r#"p.notice[role="status"]"#, "You have signed out")
        .await
        .expect("signed-out notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_chromium() {
    let started = Instant::now();
    let env = Env::new(Backend::Sqlite).await;
    let out = env.run_with_stdin(
        &["user", "add", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    env.ok(&["settings", "set", "portal.allow_bypass", "true"]);
    env.ok(&[
        "settings",
        "set",
        "portal.security_questions_fallback",
        "true",
    ]);
    for q in QUESTIONS {
        env.ok(&["questions", "add", "--lang", "en", q]);
    }
    let server = env.start();
    let b = Browser::start().await.expect("headless Chromium");
    eprintln!("browser up after {:?}", started.elapsed());

    // Sign-in page: the username field has the focus.
    b.goto(&server.url("/portal")).await.unwrap();
    heading(&b, "Sign in").await;
    assert_eq!(focused_id(&b).await, "username", "autofocus on sign-in");
    page(&b, "sign-in").await;

    // First sign-in: straight to enrollment.
    sign_in(&b, false).await;
    heading(&b, "Set up your account").await;
    let setup = r#"form[action="/portal/enroll/oath/new"] button[type="submit"]"#;
    assert_eq!(b.text(setup).await.unwrap(), "Set up an authenticator app");
    page(&b, "enrollment").await;
    b.click(setup).await.unwrap();

    // The secret, as text and as a QR code.
    let secret_text = b.wait_for("#secret").await.unwrap().text().await.unwrap();
    assert!(
        secret_text.contains(' '),
        "secret is shown in groups: {secret_text:?}"
    );
    let secret = oath::parse_base32_secret(&secret_text).expect("base32 secret on the page");
    assert_eq!(secret.len(), 20, "SHA-1 secret of 20 bytes");
    let qr = b.find("img.qr").await.unwrap();
    let src = qr.attr("src").await.unwrap().unwrap_or_default();
    assert!(
        src.starts_with("data:image/"),
        "QR is an inline image: {src:.40}"
    );
    let qr_width = b
        .js("return document.querySelector('img.qr').naturalWidth;")
        .await
        .unwrap();
    assert!(
        qr_width.as_u64().unwrap_or(0) > 0,
        "the QR image decodes (naturalWidth {qr_width})"
    );
    assert_eq!(focused_id(&b).await, "code", "autofocus on the code field");
    page(&b, "qr").await;
    let enrolled_step = now_step();
    b.fill("#code", &code_at(&secret, enrolled_step))
        .await
        .unwrap();
    b.click(r#"form[action="/portal/enroll/oath/confirm"] button[type="submit"]"#)
        .await
        .unwrap();

    // Security questions: four different ones, each answered.
    b.wait_for("#question-1").await.unwrap();
    page(&b, "questions").await;
    let mut chosen = Vec::new();
    for i in 1..=4 {
        let select = b.find(&format!("#question-{i}")).await.unwrap();
        select.select_by_index(i).await.expect("choose a question");
        chosen.push(select.prop("value").await.unwrap().unwrap_or_default());
        b.fill(&format!("#answer-{i}"), &format!("answer number {i}"))
            .await
            .unwrap();
    }
    let mut distinct = chosen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four different questions: {chosen:?}");
    page(&b, "questions-filled").await;
    b.click(r#"form[action="/portal/enroll/finish"] button[type="submit"]"#)
        .await
        .unwrap();

    heading(&b, "Your account").await;
    b.wait_for_text(r#"p.notice[role="status"]"#, "Your account is set up")
        .await
        .expect("enrolled notice");
    assert!(b
        .text("main")
        .await
        .unwrap()
        .contains("You have answered 4 questions"));
    page(&b, "account-enrolled").await;

    // Second sign-in: the second step, a wrong code, then a fresh right one.
    sign_out(&b).await;
    page(&b, "signed-out").await;
    sign_in(&b, false).await;
    heading(&b, "Two-step verification").await;
    assert_eq!(focused_id(&b).await, "code", "autofocus on the code field");
    page(&b, "second-step").await;

    enter_code(&b, &wrong_code(&secret)).await;
    b.wait_for_text("#form-error", "That code is not right")
        .await
        .expect("wrong code refused");
    heading(&b, "Two-step verification").await;
    page(&b, "second-step-wrong-code").await;

    // Enrollment used its time step (replay guard): the server accepts one
    // step ahead, so take the next one.
    let step = (now_step() + 1).max(enrolled_step + 1);
    enter_code(&b, &code_at(&secret, step)).await;
    heading(&b, "Your account").await;
    assert!(!b.exists("#form-error").await.unwrap());
    page(&b, "account-after-code").await;

    // A one-time bypass: the next sign-in needs no code.
    b.find(BYPASS_SECTION)
        .await
        .expect("bypass section on the account page");
    assert!(!b.exists("#bypass-active").await.unwrap());
    b.click(&format!(r#"{BYPASS_SECTION} button[type="submit"]"#))
        .await
        .unwrap();
    b.wait_for("#bypass-active")
        .await
        .expect("bypass shown as waiting");
    b.wait_for_text(r#"p.notice[role="status"]"#, "One-time bypass started")
        .await
        .unwrap();
    page(&b, "bypass-started").await;

    sign_out(&b).await;
    sign_in(&b, true).await;
    heading(&b, "Your account").await;
    b.wait_for_text(
        r#"p.notice[role="status"]"#,
        "Your one-time bypass has been used",
    )
    .await
    .expect("bypass-used notice");
    assert!(
        !b.exists("#bypass-active").await.unwrap(),
        "the bypass is used up"
    );
    page(&b, "account-via-bypass").await;

    // Dutch, from the header's language link.
    sign_out(&b).await;
    b.click(r#"header a.lang[hreflang="nl"]"#).await.unwrap();
    heading(&b, "Aanmelden").await;
    assert_eq!(
        b.find("html").await.unwrap().attr("lang").await.unwrap(),
        Some("nl".to_string())
    );
    assert_eq!(
        b.text(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
            .await
            .unwrap(),
        "Aanmelden"
    );
    page(&b, "sign-in-nl").await;

    b.close().await.expect("close the browser");
    eprintln!("browser tour done in {:?}", started.elapsed());
}

const DUTCH_USER: &str = "piet";
const DUTCH_QUESTIONS: [&str; 5] = [
    "Hoe heette uw eerste huisdier?",
    "In welke stad bent u geboren?",
    "Hoe heette uw eerste school?",
    "Wat is uw lievelingsboek?",
    "Wat was het merk van uw eerste auto?",
];

/// A phone's width (CSS pixels of a common phone).
const PHONE: (u32, u32) = (390, 844);

/// A Chrome DevTools command through ChromeDriver (`goog/cdp/execute`).
/// Headless Chromium keeps its window at least 500 px wide, so a phone's
/// screen is emulated rather than resized into.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(self.0.to_string()))
    }
}

/// Makes the page a phone's: its width, pixel density and mobile viewport.
async fn emulate_phone(b: &Browser) {
    b.client
        .issue_cmd(Cdp(serde_json::json!({
            "cmd": "Emulation.setDeviceMetricsOverride",
            "params": {
                "width": PHONE.0,
                "height": PHONE.1,
                "deviceScaleFactor": 2,
                "mobile": true,
            },
        })))
        .await
        .expect("phone emulation");
}

/// Photographs the page and checks it for unlabelled controls and for
/// content wider than the phone's screen (a sideways scroll).
async fn phone_page(b: &Browser, name: &str) {
    page(b, name).await;
    let widths = b
        .js("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await
        .expect("widths");
    let [scroll, inner]: [u64; 2] = serde_json::from_value(widths).expect("two widths");
    assert!(
        inner <= u64::from(PHONE.0) && scroll <= inner,
        "page {name} ({}) overflows the phone: {scroll} px of content in {inner} px",
        b.here().await
    );
}

/// The error is announced (role alert) right after the field it is about,
/// and the field points at it.
async fn error_beside(b: &Browser, field: &str, needle: &str) {
    let text = b
        .wait_for_text("#form-error", needle)
        .await
        .expect("error text");
    let found = b
        .js(&format!(
            r#"const f = document.querySelector("{field}");
               const e = document.getElementById("form-error");
               return [f.getAttribute("aria-invalid"),
                       (f.getAttribute("aria-describedby") || "").split(" ").includes("form-error"),
                       e.getAttribute("role"),
                       f.compareDocumentPosition(e) === Node.DOCUMENT_POSITION_FOLLOWING
                         && (f.parentElement === e.parentElement)];"#
        ))
        .await
        .expect("error placement");
    assert_eq!(
        found,
        serde_json::json!(["true", true, "alert", true]),
        "{field}: {text}"
    );
}

async fn value_of(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Issue 9: a Dutch user on a phone. A wrong password keeps the username; the
/// wizard speaks Dutch (the user's saved language, over the browser's
/// English), counts its steps, and keeps every answer through a weak PIN and
/// a question chosen twice, each refusal announced beside its field; the
/// second step and the page after sign-out stay Dutch; no page scrolls
/// sideways on a phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_user_polish_on_a_phone() {
    let env = Env::new(Backend::Sqlite).await;
    let out = env.run_with_stdin(
        &["user", "add", DUTCH_USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    env.ok(&[
        "user",
        "set",
        DUTCH_USER,
        "--language",
        "nl",
        "--method",
        "oath_token:oath_pin",
    ]);
    env.ok(&[
        "settings",
        "set",
        "portal.security_questions_fallback",
        "true",
    ]);
    for q in DUTCH_QUESTIONS {
        env.ok(&["questions", "add", "--lang", "nl", q]);
    }
    let server = env.start();
    let b = Browser::start().await.expect("headless Chromium");
    emulate_phone(&b).await;

    // Nobody known yet: the browser's English. A wrong password keeps the
    // username and says so beside the password.
    b.goto(&server.url("/portal")).await.unwrap();
    heading(&b, "Sign in").await;
    phone_page(&b, "phone-sign-in").await;
    b.fill("#username", DUTCH_USER).await.unwrap();
    b.fill("#password", "not the password").await.unwrap();
    b.click(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
        .await
        .unwrap();
    error_beside(&b, "#password", "not right").await;
    assert_eq!(value_of(&b, "#username").await, DUTCH_USER);
    assert_eq!(focused_id(&b).await, "password", "straight to the password");
    phone_page(&b, "phone-sign-in-wrong-password").await;
    b.fill("#password", PASSWORD).await.unwrap();
    b.click(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
        .await
        .unwrap();

    // The wizard, in Dutch.
    heading(&b, "Uw account instellen").await;
    assert_eq!(b.text("#wizard-step").await.unwrap(), "Stap 1 van 2");
    phone_page(&b, "phone-wizard-start").await;
    b.click(r#"form[action="/portal/enroll/oath/new"] button[type="submit"]"#)
        .await
        .unwrap();
    let secret_text = b.wait_for("#secret").await.unwrap().text().await.unwrap();
    let secret = oath::parse_base32_secret(&secret_text).expect("secret on the page");
    let link = b
        .find("#open-app")
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert!(
        link.as_deref()
            .unwrap_or_default()
            .starts_with("otpauth://totp/"),
        "{link:?}"
    );
    phone_page(&b, "phone-qr").await;
    b.fill("#code", &code_at(&secret, now_step()))
        .await
        .unwrap();
    b.click(r#"form[action="/portal/enroll/oath/confirm"] button[type="submit"]"#)
        .await
        .unwrap();
    b.wait_for("#oath-done")
        .await
        .expect("authenticator confirmed");
    assert_eq!(b.text("#wizard-step").await.unwrap(), "Stap 2 van 2");
    assert!(b
        .text("#question-1")
        .await
        .unwrap()
        .contains(DUTCH_QUESTIONS[0]));

    // A weak PIN: the rule, beside the PIN; the four answers stay.
    let finish = r#"form[action="/portal/enroll/finish"] button[type="submit"]"#;
    let mut chosen = Vec::new();
    for i in 1..=4 {
        let select = b.find(&format!("#question-{i}")).await.unwrap();
        select.select_by_index(i).await.expect("choose a question");
        chosen.push(select.prop("value").await.unwrap().unwrap_or_default());
        b.fill(&format!("#answer-{i}"), &format!("antwoord {i}"))
            .await
            .unwrap();
    }
    b.fill("#pin", "1234").await.unwrap();
    b.fill("#pin-confirm", "1234").await.unwrap();
    phone_page(&b, "phone-wizard-filled").await;
    b.click(finish).await.unwrap();
    error_beside(&b, "#pin", "opeenvolgende").await;
    for i in 1..=4 {
        assert_eq!(
            value_of(&b, &format!("#answer-{i}")).await,
            format!("antwoord {i}"),
            "answer {i} kept after a weak PIN"
        );
        assert_eq!(
            value_of(&b, &format!("#question-{i}")).await,
            chosen[i - 1],
            "question {i} kept"
        );
    }
    assert_eq!(
        value_of(&b, "#pin").await,
        "",
        "a refused PIN is not shown again"
    );
    phone_page(&b, "phone-wizard-weak-pin").await;

    // The same question twice: said so, beside the questions; answers stay.
    b.find("#question-2")
        .await
        .unwrap()
        .select_by_index(1)
        .await
        .unwrap();
    b.fill("#pin", "4826").await.unwrap();
    b.fill("#pin-confirm", "4826").await.unwrap();
    b.click(finish).await.unwrap();
    b.wait_for_text("#form-error", "twee keer dezelfde vraag")
        .await
        .expect("duplicate question refused");
    let invalid = b
        .js(r#"const e = document.getElementById("form-error");
               return e.closest("fieldset").getAttribute("aria-invalid");"#)
        .await
        .unwrap();
    assert_eq!(invalid, serde_json::json!("true"));
    for i in 1..=4 {
        assert_eq!(
            value_of(&b, &format!("#answer-{i}")).await,
            format!("antwoord {i}"),
            "answer {i} kept after a question chosen twice"
        );
    }
    phone_page(&b, "phone-wizard-duplicate").await;
    b.find("#question-2")
        .await
        .unwrap()
        .select_by_index(2)
        .await
        .unwrap();
    b.fill("#pin", "4826").await.unwrap();
    b.fill("#pin-confirm", "4826").await.unwrap();
    b.click(finish).await.unwrap();
    heading(&b, "Uw account").await;
    phone_page(&b, "phone-account").await;

    // Sign-out, sign-in and the second step stay Dutch; the PIN has focus.
    b.click(SIGN_OUT_BUTTON).await.unwrap();
    heading(&b, "Aanmelden").await;
    b.wait_for_text(r#"p.notice[role="status"]"#, "U bent afgemeld")
        .await
        .expect("Dutch signed-out notice");
    phone_page(&b, "phone-signed-out-nl").await;
    b.fill("#username", DUTCH_USER).await.unwrap();
    b.fill("#password", PASSWORD).await.unwrap();
    b.click(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
        .await
        .unwrap();
    heading(&b, "Verificatie in twee stappen").await;
    assert_eq!(focused_id(&b).await, "pin", "the PIN comes first");
    phone_page(&b, "phone-second-step-nl").await;

    b.close().await.expect("close the browser");
}

/// Issue 16: a German user enrolls on a phone, then the account page is
/// read in French and Spanish from the header's language links. Every
/// page is in its language, with nothing missing, and no page scrolls
/// sideways at a phone's width — German's long words included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_french_and_spanish_on_a_phone() {
    const GERMAN_USER: &str = "lena";
    let env = Env::new(Backend::Sqlite).await;
    let out = env.run_with_stdin(
        &[
            "user",
            "add",
            GERMAN_USER,
            "--language",
            "de-AT",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    let server = env.start();
    let b = Browser::start().await.expect("headless Chromium");
    emulate_phone(&b).await;

    b.goto(&server.url("/portal")).await.unwrap();
    heading(&b, "Sign in").await;
    b.fill("#username", GERMAN_USER).await.unwrap();
    b.fill("#password", PASSWORD).await.unwrap();
    b.click(&format!(r#"{SIGN_IN_FORM} button[type="submit"]"#))
        .await
        .unwrap();

    // The wizard speaks the user's language (de-AT: German).
    heading(&b, "Konto einrichten").await;
    no_missing_text(&b, "de").await;
    phone_page(&b, "phone-de-wizard").await;
    b.click(r#"form[action="/portal/enroll/oath/new"] button[type="submit"]"#)
        .await
        .unwrap();
    let secret_text = b.wait_for("#secret").await.unwrap().text().await.unwrap();
    let secret = oath::parse_base32_secret(&secret_text).expect("secret on the page");
    no_missing_text(&b, "de").await;
    phone_page(&b, "phone-de-qr").await;
    b.fill("#code", &code_at(&secret, now_step()))
        .await
        .unwrap();
    b.click(r#"form[action="/portal/enroll/oath/confirm"] button[type="submit"]"#)
        .await
        .unwrap();
    heading(&b, "Ihr Konto").await;
    no_missing_text(&b, "de").await;
    phone_page(&b, "phone-de-account").await;

    for (lang, title) in [("fr", "Votre compte"), ("es", "Su cuenta")] {
        b.click(&format!(r#"header a.lang[hreflang="{lang}"]"#))
            .await
            .unwrap();
        heading(&b, title).await;
        no_missing_text(&b, lang).await;
        phone_page(&b, &format!("phone-{lang}-account")).await;
    }

    b.close().await.expect("close the browser");
}

/// The page is in `lang` and shows no message key in place of a text (a
/// missing text would show its key, e.g. `err-code-pin`).
async fn no_missing_text(b: &Browser, lang: &str) {
    let html_lang = b.js("return document.documentElement.lang;").await.unwrap();
    assert_eq!(html_lang.as_str(), Some(lang));
    let text = b
        .js("return document.body.innerText;")
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string();
    let keys: Vec<&str> = include_str!("../../web/locales/en.ftl")
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| k.contains('-') && !k.starts_with('#'))
        .collect();
    for key in keys {
        assert!(!text.contains(key), "{lang}: {key} shown as a key:\n{text}");
    }
}

/// The code in the newest text message of the development outbox, read
/// from its page as a developer would.
async fn code_from_outbox(b: &Browser, outbox: &str) -> String {
    b.goto(outbox).await.unwrap();
    heading(b, "Development outbox").await;
    let text = b.text("section q").await.expect("a text message");
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("a code in {text:?}"))
        .to_string()
}

/// Issue 10 in the browser: with the development outbox, a new user enrolls
/// by text message ("Text Me Now to Authenticate"), reading the code on
/// `/dev/outbox`, and signs in again with "Text me a code" — no provider
/// account anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_by_text_message_through_the_outbox() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![("TWOFOLD_DELIVERY_PROVIDER".into(), "outbox".into())];
    let out = env.run_with_stdin(
        &["user", "add", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    env.ok(&["user", "set", USER, "--method", "text_message"]);
    let server = env.start();
    let outbox = server.url("/dev/outbox");
    let b = Browser::start().await.expect("headless Chromium");

    b.goto(&server.url("/portal")).await.unwrap();
    heading(&b, "Sign in").await;
    sign_in(&b, false).await;
    heading(&b, "Set up your account").await;
    b.wait_for_text("#phone-now", "Text Me Now to Authenticate")
        .await
        .expect("the phone step");
    page(&b, "sms-enroll-phone").await;
    b.fill("#phone", "+31 6 1234 5678").await.unwrap();
    b.click("#phone-now").await.unwrap();
    b.wait_for_text(r#"p[role="status"]"#, "We sent a code to …78")
        .await
        .expect("the code was sent");
    page(&b, "sms-enroll-code").await;

    let code = code_from_outbox(&b, &outbox).await;
    page(&b, "dev-outbox").await;
    b.goto(&server.url("/portal")).await.unwrap();
    enter_code(&b, &code).await;
    heading(&b, "Your account").await;
    b.wait_for_text(r#"p.notice[role="status"]"#, "Your account is set up")
        .await
        .expect("enrolled");
    page(&b, "sms-enrolled").await;

    // Signing in again: "Text me a code", the code from the outbox.
    sign_out(&b).await;
    sign_in(&b, false).await;
    heading(&b, "Two-step verification").await;
    b.click("#phone-primary").await.unwrap();
    b.wait_for("#code").await.expect("the code field");
    page(&b, "sms-second-step").await;
    let code = code_from_outbox(&b, &outbox).await;
    b.goto(&server.url("/portal")).await.unwrap();
    enter_code(&b, &code).await;
    heading(&b, "Your account").await;
    b.close().await.expect("close the browser");
}

/// The number the waiting page asks the user to pick in the app.
async fn number_on_page(b: &Browser) -> u64 {
    b.wait_for("#app-number").await.expect("the number to pick");
    b.text("#app-number")
        .await
        .expect("number text")
        .trim()
        .parse()
        .expect("a number")
}

/// Approves the newest request on `device` with `number`, as its user
/// would after reading the number on the screen.
async fn approve_in_app(device: &TestDevice, number: u64) {
    let pending = device.pending(10).await;
    let request = pending.last().expect("a request reached the app");
    let id = request["id"].as_str().unwrap();
    let (status, v) = device.answer(id, "approve", Some(number), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "accepted", "{v}");
}

/// Issue 11 in the browser: a new user generates an activation code in the
/// wizard, a device activates with the URI read from the page (its QR
/// code's content), "Authenticate Me Now" is approved in the app with the
/// number the page shows, and a later sign-in is approved the same way —
/// the pages continue by themselves (`portal.js`) once the app answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_and_signing_in_with_the_mobile_app() {
    let env = Env::new(Backend::Sqlite).await;
    let out = env.run_with_stdin(
        &["user", "add", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    env.ok(&["user", "set", USER, "--method", "mobile_app"]);
    env.ok(&[
        "settings",
        "set",
        "portal.allow_mobile_app_activation",
        "true",
    ]);
    let server = env.start();
    let b = Browser::start().await.expect("headless Chromium");

    b.goto(&server.url("/portal")).await.unwrap();
    sign_in(&b, false).await;
    heading(&b, "Set up your account").await;
    b.wait_for("#app-generate")
        .await
        .expect("Generate Activation Code");
    page(&b, "app-enroll").await;
    b.click("#app-generate").await.unwrap();
    b.wait_for("#activation-uri")
        .await
        .expect("the activation URI");
    b.wait_for(".qr svg").await.expect("the QR code");
    page(&b, "app-activation-code").await;

    let uri = b.text("#activation-uri").await.unwrap();
    let parsed = ActivationUri::parse(uri.trim()).expect("a twofold:// activation URI");
    let fingerprint = server.fingerprint.replace(':', "").to_lowercase();
    assert_eq!(parsed.fingerprint.as_deref(), Some(fingerprint.as_str()));
    let mut device = TestDevice::new(parsed.url.trim_end_matches("/mobile/v1"));
    let (status, v) = device.activate(&parsed.code).await;
    assert_eq!(status, 200, "{v}");

    b.click("#app-now").await.unwrap();
    let number = number_on_page(&b).await;
    page(&b, "app-enroll-waiting").await;
    approve_in_app(&device, number).await;
    heading(&b, "Your account").await;
    page(&b, "app-enrolled").await;

    // Signing in again: a request to the app, approved with the number.
    sign_out(&b).await;
    sign_in(&b, false).await;
    heading(&b, "Two-step verification").await;
    b.click("#app-request").await.unwrap();
    let number = number_on_page(&b).await;
    page(&b, "app-second-step").await;
    approve_in_app(&device, number).await;
    heading(&b, "Your account").await;
    b.wait_for_text("main", "Test phone")
        .await
        .expect("the device on the account page");
    page(&b, "app-account").await;
    b.close().await.expect("close the browser");
}

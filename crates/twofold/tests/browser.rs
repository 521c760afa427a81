//! The User Portal in a real browser: headless Chromium, driven through
//! ChromeDriver, against the real `twofold serve`. A new user signs in,
//! enrolls an authenticator app and security questions, signs in again with
//! a code (a wrong one first), uses a one-time bypass and switches the
//! portal to Dutch. Every page is photographed into
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
use twofold_testkit::browser::Browser;
use twofold_testkit::db::Backend;

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

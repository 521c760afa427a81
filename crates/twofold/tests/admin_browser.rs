//! The administration pages in a real browser: headless Chromium, driven
//! through ChromeDriver, against the real `twofold serve`. The first
//! administrator (made with `admin bootstrap`) opens `/admin`, signs in at
//! the portal with password and TOTP code, comes back to the dashboard,
//! adds a user, resets their PIN, grants them a one-time bypass and reads
//! the sign-in activity report with its chart and CSV export. Every page is
//! photographed into `target/e2e-screenshots/`, checked for unlabelled form
//! controls, inline script and errors (script errors, `console.error`,
//! resources that failed or were blocked by the CSP).
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs
//! them); without them the test fails, it does not skip.

// The harness's `both_backends!` is not needed here: SQLite is enough.
#[allow(unused_macros)]
#[macro_use]
mod common;

use common::Env;
use fantoccini::key::Key;
use std::time::{Duration, Instant};
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;
use twofold_testkit::browser::Browser;
use twofold_testkit::db::Backend;

const ADMIN: &str = "alice";
const PASSWORD: &str = "correct horse 1";
/// The RFC 6238 test secret ("12345678901234567890"), in base32.
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SECRET: &[u8] = b"12345678901234567890";
const NEW_USER: &str = "bob";
const NEW_PIN: &str = "8264";

const SIGN_IN_FORM: &str = r#"form[action="/portal/sign-in"]"#;
const NOTICE: &str = r#"main p.notice[role="status"]"#;

/// Installed in every document before its own scripts run (through the
/// DevTools protocol, so the page's CSP does not apply to it): collects
/// script errors, unhandled rejections, `console.error`, resources that
/// failed to load and CSP violations into `window.__twofoldErrors`.
const ERROR_TRAP: &str = r"(() => {
  const errs = [];
  Object.defineProperty(window, '__twofoldErrors', { value: errs });
  window.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t !== window && t.tagName) {
      errs.push('resource failed: <' + t.tagName.toLowerCase() + '> ' + (t.src || t.href || ''));
    } else {
      errs.push('script error: ' + e.message);
    }
  }, true);
  window.addEventListener('unhandledrejection', (e) => errs.push('unhandled rejection: ' + e.reason));
  document.addEventListener('securitypolicyviolation', (e) =>
    errs.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI), true);
  const original = console.error.bind(console);
  console.error = (...args) => { errs.push('console.error: ' + args.join(' ')); original(...args); };
})();";

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

/// A Chrome DevTools command through ChromeDriver (`goog/cdp/execute`).
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

/// Every document the browser opens from now on gets the error trap.
async fn trap_errors(b: &Browser) {
    b.client
        .issue_cmd(Cdp(serde_json::json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": { "source": ERROR_TRAP },
        })))
        .await
        .expect("install the error trap");
}

/// The page's HTML, for failure messages.
async fn source(b: &Browser) -> String {
    b.client
        .source()
        .await
        .unwrap_or_else(|e| format!("<no page source: {e}>"))
}

/// Fails the test with the page's address and source.
async fn fail(b: &Browser, what: &str) -> ! {
    panic!(
        "{what}\non {}\n--- page source ---\n{}",
        b.here().await,
        source(b).await
    );
}

/// Unwraps, or fails with the page source.
async fn or_fail<T>(b: &Browser, r: anyhow::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(b, &format!("{what}: {e:#}")).await,
    }
}

async fn heading(b: &Browser, text: &str) {
    let r = b.wait_for_text("main h1", text).await;
    or_fail(b, r, &format!("page heading {text:?}")).await;
}

async fn notice(b: &Browser, text: &str) {
    let r = b.wait_for_text(NOTICE, text).await;
    or_fail(b, r, &format!("notice {text:?}")).await;
}

async fn click(b: &Browser, css: &str) {
    let r = b.click(css).await;
    or_fail(b, r, &format!("click {css}")).await;
}

async fn fill(b: &Browser, css: &str, value: &str) {
    let r = b.fill(css, value).await;
    or_fail(b, r, &format!("fill {css}")).await;
}

async fn js(b: &Browser, script: &str) -> serde_json::Value {
    let r = b.js(script).await;
    or_fail(b, r, "run a script").await
}

/// Every page the tour visits: photographed; every form control labelled;
/// no inline script, inline event handler or `javascript:` URL; nothing
/// reported by the error trap; every resource loaded without an HTTP error.
async fn page(b: &Browser, name: &str) {
    let shot = b.screenshot(name).await.expect("screenshot");
    eprintln!("page {name}: {} -> {}", b.here().await, shot.display());
    let unlabelled = b.unlabelled_controls().await.expect("label check");
    if !unlabelled.is_empty() {
        fail(
            b,
            &format!("page {name} has form controls without <label for>: {unlabelled:#?}"),
        )
        .await;
    }
    let inline = js(
        b,
        r#"const found = [];
           for (const s of document.querySelectorAll("script")) {
             if (!s.src) found.push("inline <script>: " + s.outerHTML.slice(0, 120));
           }
           for (const el of document.querySelectorAll("*")) {
             for (const a of el.attributes) {
               if (a.name.startsWith("on")) found.push("handler " + a.name + " on <" + el.tagName.toLowerCase() + ">");
               if (/^\s*javascript:/i.test(a.value)) found.push("javascript: URL in " + a.name);
             }
           }
           return found;"#,
    )
    .await;
    if inline.as_array().is_none_or(|a| !a.is_empty()) {
        fail(b, &format!("page {name} has inline script: {inline:#}")).await;
    }
    let errors = js(
        b,
        r"const trapped = window.__twofoldErrors;
          const bad = performance.getEntriesByType('navigation')
            .concat(performance.getEntriesByType('resource'))
            .filter((r) => r.responseStatus >= 400)
            // Chromium asks for /favicon.ico by itself; the pages name none.
            .filter((r) => new URL(r.name).pathname !== '/favicon.ico')
            .map((r) => 'HTTP ' + r.responseStatus + ' for ' + r.name);
          return { trapped: trapped === undefined ? null : Array.from(trapped), bad };",
    )
    .await;
    if errors["trapped"].is_null() {
        fail(b, &format!("page {name}: the error trap is not installed")).await;
    }
    if errors["trapped"].as_array().is_none_or(|a| !a.is_empty())
        || errors["bad"].as_array().is_none_or(|a| !a.is_empty())
    {
        fail(b, &format!("page {name} reports errors: {errors:#}")).await;
    }
}

/// The audit events about `user`, one JSON object a line.
fn audit_of(env: &Env, user: &str) -> Vec<serde_json::Value> {
    env.ok(&["audit", "tail", "-n", "50", "--json", "--user", user])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("an audit event as JSON"))
        .collect()
}

/// The event of `user` with `result`, done by `actor`, if any.
fn audited(env: &Env, user: &str, result: &str, actor: &str) -> Option<serde_json::Value> {
    audit_of(env, user)
        .into_iter()
        .find(|e| e["result"] == result && e["actor"] == actor && e["subject"] == user)
}

/// Presses Tab until `css` has the focus; at most `limit` times.
async fn tab_to(b: &Browser, css: &str, limit: usize) -> bool {
    let tab = String::from(char::from(Key::Tab));
    let probe = format!("return document.activeElement === document.querySelector({css:?});");
    for _ in 0..limit {
        if js(b, &probe).await.as_bool() == Some(true) {
            return true;
        }
        let active = b.client.active_element().await;
        let active = or_fail(b, active.map_err(anyhow::Error::from), "active element").await;
        let sent = active.send_keys(&tab).await;
        or_fail(b, sent.map_err(anyhow::Error::from), "press Tab").await;
    }
    js(b, &probe).await.as_bool() == Some(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_runs_users_from_the_admin_pages() {
    let started = Instant::now();
    let env = Env::new(Backend::Sqlite).await;

    // The first administrator, from the CLI: password, TOTP token, bootstrap.
    let out = env.run_with_stdin(
        &["user", "add", ADMIN, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code(), 0, "user add: {}", out.stderr());
    env.ok(&[
        "token", "add", ADMIN, "--type", "totp", "--secret", SECRET_B32,
    ]);
    env.ok(&["admin", "bootstrap", ADMIN]);

    let server = env.start();
    let b = Browser::start().await.expect("headless Chromium");
    trap_errors(&b).await;
    eprintln!("browser up after {:?}", started.elapsed());

    // /admin without a session: the portal's sign-in.
    or_fail(&b, b.goto(&server.url("/admin")).await, "open /admin").await;
    heading(&b, "Sign in").await;
    if !b.here().await.contains("/portal") {
        fail(
            &b,
            "/admin did not send the browser to the portal's sign-in",
        )
        .await;
    }
    page(&b, "admin-sign-in").await;
    fill(&b, "#username", ADMIN).await;
    fill(&b, "#password", PASSWORD).await;
    click(&b, &format!(r#"{SIGN_IN_FORM} button[type="submit"]"#)).await;
    heading(&b, "Two-step verification").await;
    page(&b, "admin-second-step").await;
    fill(&b, "#code", &code_at(SECRET, now_step())).await;
    let enter = String::from(char::from(Key::Enter));
    let code = or_fail(&b, b.find("#code").await, "the code field").await;
    let pressed = code.send_keys(&enter).await.map_err(anyhow::Error::from);
    or_fail(&b, pressed, "press Enter").await;

    // Back at /admin: the dashboard with the administrator's permissions.
    heading(&b, "Administration").await;
    let here = b.here().await;
    if !here.trim_end_matches('/').ends_with("/admin") {
        fail(
            &b,
            &format!("after the second step the browser is at {here}"),
        )
        .await;
    }
    let rights = or_fail(
        &b,
        b.text(r#"section[aria-labelledby="h-rights"]"#).await,
        "rights",
    )
    .await;
    for perm in [
        "add users",
        "reset PINs",
        "grant one-time bypasses",
        "view the audit log",
    ] {
        if !rights.contains(perm) {
            fail(
                &b,
                &format!("the dashboard does not list {perm:?}: {rights:?}"),
            )
            .await;
        }
    }
    let who = or_fail(&b, b.text("header .who").await, "who").await;
    assert_eq!(who, ADMIN, "the header names the administrator");
    page(&b, "admin-home").await;

    // Users, then "Add user".
    click(&b, r#"header nav a[href="/admin/users"]"#).await;
    heading(&b, "Users").await;
    page(&b, "admin-users").await;
    // Keyboard: the search field is reachable with Tab from the page's top.
    js(
        &b,
        "document.activeElement && document.activeElement.blur(); return null;",
    )
    .await;
    if !tab_to(&b, "#q", 30).await {
        fail(&b, "the search field #q is not reachable with Tab").await;
    }
    click(&b, r#"header nav a[href="/admin/users/new"]"#).await;
    heading(&b, "Add user").await;
    page(&b, "admin-user-new").await;
    fill(&b, "#username", NEW_USER).await;
    fill(&b, "#display_name", "Bob Builder").await;
    fill(&b, "#email", "bob@example.org").await;
    fill(&b, "#groups", "Sales").await;
    click(
        &b,
        r#"form[action="/admin/users/new"] button[type="submit"]"#,
    )
    .await;

    // Bob's page.
    notice(&b, &format!("User added: {NEW_USER}")).await;
    let profile = or_fail(
        &b,
        b.text(r#"section[aria-labelledby="h-profile"]"#).await,
        "profile",
    )
    .await;
    for fact in [NEW_USER, "Bob Builder", "bob@example.org", "Sales"] {
        if !profile.contains(fact) {
            fail(&b, &format!("bob's profile lacks {fact:?}: {profile:?}")).await;
        }
    }
    if !b
        .here()
        .await
        .ends_with(&format!("/admin/users/{NEW_USER}"))
    {
        fail(&b, "not on bob's page after adding him").await;
    }
    page(&b, "admin-user-added").await;

    // Reset PIN.
    fill(&b, "#pin", NEW_PIN).await;
    click(
        &b,
        &format!(r#"form[action="/admin/users/{NEW_USER}/pin"] button[type="submit"]"#),
    )
    .await;
    notice(&b, "The PIN is reset.").await;
    if b.exists(r#"main p.error[role="alert"]"#)
        .await
        .unwrap_or(true)
    {
        fail(&b, "an error next to the PIN reset").await;
    }
    page(&b, "admin-pin-reset").await;
    let actor = format!("admin:{ADMIN}");
    assert!(
        audited(&env, NEW_USER, "SUCCESS_PIN_CHANGED", &actor).is_some(),
        "no SUCCESS_PIN_CHANGED by {actor}: {:#?}",
        audit_of(&env, NEW_USER)
    );

    // A one-time bypass for ten minutes.
    fill(&b, "#seconds", "600").await;
    fill(&b, "#reason", "lost phone").await;
    click(
        &b,
        &format!(r#"form[action="/admin/users/{NEW_USER}/bypass"] button[type="submit"]"#),
    )
    .await;
    notice(&b, "The one-time bypass is granted.").await;
    page(&b, "admin-bypass").await;
    let granted = audited(&env, NEW_USER, "SUCCESS_BYPASS_STARTED", &actor).unwrap_or_else(|| {
        panic!(
            "no SUCCESS_BYPASS_STARTED by {actor}: {:#?}",
            audit_of(&env, NEW_USER)
        )
    });
    assert_eq!(
        granted["detail"], "600 seconds: lost phone",
        "the seconds and the reason are in the audit log: {granted:#}"
    );

    // Reports: the activity chart (an image that decodes), the table, CSV.
    click(&b, r#"header nav a[href="/admin/reports/activity"]"#).await;
    heading(&b, "Reports").await;
    let chart = r#"figure.chart img[src^="/admin/reports/activity.svg"]"#;
    or_fail(&b, b.wait_for(chart).await, "the chart").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let width = loop {
        let w = js(
            &b,
            "const i = document.querySelector('figure.chart img'); \
             return i.complete ? i.naturalWidth : -1;",
        )
        .await;
        if w.as_i64() != Some(-1) || Instant::now() > deadline {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if width.as_i64().unwrap_or(0) <= 0 {
        fail(
            &b,
            &format!("the chart image did not load (naturalWidth {width})"),
        )
        .await;
    }
    let table = or_fail(&b, b.text("main table.list").await, "the activity table").await;
    if !table.contains("primary.password") {
        fail(
            &b,
            &format!("the activity table lacks primary.password: {table:?}"),
        )
        .await;
    }
    let csv = r#"main a[href^="/admin/reports/activity.csv"]"#;
    let link = or_fail(&b, b.text(csv).await, "the CSV link").await;
    assert_eq!(link, "Download as CSV");
    page(&b, "admin-report-activity").await;

    b.close().await.expect("close the browser");
    let took = started.elapsed();
    eprintln!("admin tour done in {took:?}");
    assert!(took < Duration::from_secs(90), "the tour took {took:?}");
}

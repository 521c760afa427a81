//! Issue 9, "new-user polish", over HTTPS as a browser uses the portal: forms
//! keep what was typed and say which rule failed beside the field, a wrong
//! PIN is not a clock problem, the user's language holds on every page,
//! plain words, the second step's layout, the wizard's steps, the bypass in
//! minutes, the authenticator link and the 404 page. On SQLite and
//! PostgreSQL, with the portal in process and on a separate server.

#[macro_use]
mod common;

use common::{Browser, Portal, PASSWORD};
use twofold_core::clock::Clock;
use twofold_core::user::UserPatch;
use twofold_core::AdminService;
use twofold_core::Ctx;
use twofold_testkit::db::Backend;

async fn patch(p: &Portal, user: &str, patch: UserPatch) {
    p.engine
        .update_user(&Ctx::cli(), user, patch)
        .await
        .unwrap();
}

/// An administrator requires a PIN in front of the user's code.
async fn require_pin(p: &Portal, user: &str) {
    patch(
        p,
        user,
        UserPatch {
            default_method: Some("oath_token:oath_pin".into()),
            ..Default::default()
        },
    )
    .await;
}

/// Signs in and confirms a new authenticator app; returns its secret.
async fn confirm_app(p: &Portal, b: &mut Browser, user: &str) -> String {
    b.sign_in(user, PASSWORD).await;
    b.submit("/portal/enroll/oath/new", &[]).await;
    let secret = b.secret();
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    secret
}

/// The page's text as a reader sees it: no tags, no attributes.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The opening tag of the element with `id`.
fn tag_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    html[start..=end].to_string()
}

async fn refused_forms_keep_what_was_typed(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(6).await;
    require_pin(&p, "jan").await;

    // A wrong password keeps the username; the error is the password's.
    let mut b = p.browser();
    b.sign_in("jan", "not the password").await;
    assert!(b.has("value=\"jan\""), "{}", b.page);
    let password = tag_of(&b.page, "password");
    assert!(
        password.contains("aria-invalid=\"true\"")
            && password.contains("aria-describedby=\"form-error\""),
        "{password}"
    );
    assert!(b.error().unwrap().contains("not right"));
    // The next page view forgets it.
    b.open("/portal").await;
    assert!(!b.has("value=\"jan\""));

    confirm_app(&p, &mut b, "jan").await;
    assert!(b.has("id=\"pin-confirm\""), "{}", b.page);
    let ids = b.question_ids();
    let answers = [
        ("question-1", ids[0].as_str()),
        ("answer-1", "Rex"),
        ("question-2", ids[1].as_str()),
        ("answer-2", "Amsterdam"),
        ("question-3", ids[2].as_str()),
        ("answer-3", "blue"),
        ("question-4", ids[3].as_str()),
        ("answer-4", "1999"),
    ];
    let with = |pin: &'static str, confirm: &'static str, dup: bool| {
        let mut f: Vec<(&str, &str)> = vec![("pin", pin), ("pin-confirm", confirm)];
        f.extend(answers.iter().copied());
        if dup {
            f[4].1 = ids[0].as_str();
        }
        f
    };
    let kept = |b: &Browser| {
        for a in ["Rex", "Amsterdam", "blue", "1999"] {
            assert!(b.has(&format!("value=\"{a}\"")), "{a} kept: {}", b.page);
        }
        assert!(
            b.has(&format!("<option value=\"{}\" selected>", ids[2])),
            "question kept: {}",
            b.page
        );
        assert!(!b.has("value=\"4826\""), "a PIN is never shown again");
    };

    // A weak PIN: the rule that failed, beside the PIN; answers kept.
    b.submit("/portal/enroll/finish", &with("1234", "1234", false))
        .await;
    let e = b.error().unwrap();
    assert!(e.contains("in sequence"), "{e}");
    assert!(!e.contains("recently"), "a first PIN was never used: {e}");
    assert!(tag_of(&b.page, "pin").contains("aria-invalid=\"true\""));
    assert!(b.page.find("id=\"form-error\"").unwrap() > b.page.find("id=\"pin\"").unwrap());
    kept(&b);
    b.submit("/portal/enroll/finish", &with("48", "48", false))
        .await;
    assert!(
        b.error().unwrap().contains("at least 4 digits"),
        "{}",
        b.page
    );
    b.submit("/portal/enroll/finish", &with("4826", "4862", false))
        .await;
    assert!(b.error().unwrap().contains("not the same"), "{}", b.page);
    kept(&b);

    // The same question twice: said so, beside the questions; answers kept.
    b.submit("/portal/enroll/finish", &with("4826", "4826", true))
        .await;
    assert!(
        b.error().unwrap().contains("same question twice"),
        "{}",
        b.page
    );
    assert!(b.page.find("id=\"form-error\"").unwrap() > b.page.find("id=\"answer-4\"").unwrap());
    for a in ["Rex", "Amsterdam", "blue", "1999"] {
        assert!(b.has(&format!("value=\"{a}\"")), "{a} kept");
    }

    b.submit("/portal/enroll/finish", &with("4826", "4826", false))
        .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    // Used recently: only now, of a PIN that was used.
    b.submit(
        "/portal/account/pin",
        &[("pin", "4826"), ("pin-confirm", "4826")],
    )
    .await;
    assert!(
        b.error().unwrap().contains("used that PIN recently"),
        "{}",
        b.page
    );
    b.submit(
        "/portal/account/pin",
        &[("pin", "9876"), ("pin-confirm", "9876")],
    )
    .await;
    assert!(b.error().unwrap().contains("in sequence"), "{}", b.page);
    // Control characters typed into a refused form never come back.
    let mut c = p.browser();
    c.sign_in("ja\u{7}n", "x").await;
    assert!(!c.has("ja\u{7}n"));
}

async fn a_wrong_pin_is_not_a_clock_problem(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("lockout.denials_to_lock", "3").await;
    require_pin(&p, "jan").await;
    let mut b = p.browser();
    let secret = confirm_app(&p, &mut b, "jan").await;
    b.submit(
        "/portal/enroll/finish",
        &[("pin", "4826"), ("pin-confirm", "4826")],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    // The PIN field takes the focus first.
    assert!(tag_of(&b.page, "pin").contains("autofocus"));
    assert!(!tag_of(&b.page, "code").contains("autofocus"));

    let wrong_pin = [
        ("proof", "method"),
        ("pin", "9999"),
        ("code", &p.totp(&secret, 1)),
    ];
    b.submit("/portal/verify", &wrong_pin).await;
    let e = b.error().unwrap();
    assert!(e.contains("The PIN or the code is not right"), "{e}");
    assert!(!e.contains("clock") && !e.contains("one more"), "{e}");
    // The error is announced beside the code, and both fields point at it.
    assert!(tag_of(&b.page, "code").contains("aria-invalid=\"true\""));
    assert!(tag_of(&b.page, "pin").contains("aria-describedby=\"form-error\""));

    // One attempt left before the pause: said so.
    b.submit("/portal/verify", &wrong_pin).await;
    assert!(
        b.error().unwrap().contains("one more wrong attempt"),
        "{}",
        b.page
    );
    b.submit("/portal/verify", &wrong_pin).await;
    let e = b.error().unwrap();
    assert!(e.contains("one wrong attempt too many"), "{e}");
    assert!(e.contains("Try again in 60 seconds, at <time"), "{e}");
    // The pause: how long, and until when, as a time the browser localises.
    b.submit("/portal/verify", &wrong_pin).await;
    let e = b.error().unwrap();
    assert!(
        e.contains("Try again in 60 seconds, at <time datetime="),
        "{e}"
    );
    assert!(e.contains("data-local>"), "{e}");
    assert!(b.has("<script src=\"/static/portal.js\" defer></script>"));
    let js = b
        .client
        .get(format!("{}/static/portal.js", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    // A lock: whom to ask.
    p.advance(60);
    p.set("lockout.auto_unblock_minutes", "0").await;
    for _ in 0..3 {
        b.submit("/portal/verify", &wrong_pin).await;
        if b.h1() == "Sign in" {
            break;
        }
    }
    assert_eq!(b.h1(), "Sign in", "{}", b.page);
    assert!(
        b.error().unwrap().contains("Ask your administrator"),
        "{}",
        b.page
    );
}

async fn the_users_language_everywhere(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(5).await;
    for q in [
        "Hoe heette uw eerste huisdier?",
        "In welke stad bent u geboren?",
        "Wat was uw eerste auto?",
        "Wat is uw lievelingsboek?",
        "Hoe heette uw eerste school?",
    ] {
        p.engine.add_question(&Ctx::cli(), "nl", q).await.unwrap();
    }
    patch(
        &p,
        "jan",
        UserPatch {
            language: Some("nl".into()),
            ..Default::default()
        },
    )
    .await;
    // The browser asks for English; the user's saved language wins once known.
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Uw account instellen", "{}", b.page);
    b.submit("/portal/enroll/oath/new", &[]).await;
    let secret = b.secret();
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    assert!(
        b.has("Hoe heette uw eerste huisdier?"),
        "Dutch questions: {}",
        b.page
    );
    assert!(!b.has("pet number"), "no English questions: {}", b.page);
    let ids = b.question_ids();
    let mut form = vec![];
    for (i, id) in ids.iter().take(4).enumerate() {
        form.push((format!("question-{}", i + 1), id.clone()));
        form.push((format!("answer-{}", i + 1), format!("antwoord {i}")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.submit("/portal/enroll/finish", &form).await;
    assert_eq!(b.h1(), "Uw account", "{}", b.page);
    assert!(
        b.has("Hoe heette uw eerste huisdier?"),
        "the chosen questions are shown"
    );

    // Sign-out stays Dutch; so do the sign-in and the second step after it.
    b.submit("/portal/sign-out", &[]).await;
    assert_eq!(b.h1(), "Aanmelden", "{}", b.page);
    assert!(b.notice().unwrap().contains("afgemeld"));
    assert!(b.has("<html lang=\"nl\">"));
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Verificatie in twee stappen", "{}", b.page);
    // The browser's explicit choice beats the saved language.
    b.open("/portal/lang/en").await;
    b.open("/portal").await;
    assert_eq!(b.h1(), "Two-step verification");
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 1))],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    // Choosing a language on the account page replaces the browser's choice.
    p.set("portal.allow_select_language", "true").await;
    b.submit("/portal/account/language", &[("language", "nl")])
        .await;
    assert_eq!(b.h1(), "Uw account", "{}", b.page);
    assert!(b.has("<option value=\"nl\" selected>"), "{}", b.page);
    // The header's language choice is the account's too: they agree.
    assert!(
        b.has("<input type=\"hidden\" name=\"language\" value=\"en\">"),
        "{}",
        b.page
    );
    b.submit("/portal/account/language", &[("language", "en")])
        .await;
    assert_eq!(b.h1(), "Your account");
    assert!(b.has("<option value=\"en\" selected>"));
    let saved = p.engine.get_user(&Ctx::cli(), "jan").await.unwrap();
    assert_eq!(saved.language.as_deref(), Some("en"));
}

/// A user without a saved language gets the questions of the language the
/// portal speaks to them (their browser's), not English ones.
async fn questions_in_the_browsers_language(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(5).await;
    for q in [
        "Hoe heette uw eerste huisdier?",
        "In welke stad bent u geboren?",
        "Wat was uw eerste auto?",
        "Wat is uw lievelingsboek?",
    ] {
        p.engine.add_question(&Ctx::cli(), "nl", q).await.unwrap();
    }
    let mut b = p.browser_with_language("nl-NL,nl;q=0.9");
    confirm_app(&p, &mut b, "jan").await;
    assert!(b.has("Hoe heette uw eerste huisdier?"), "{}", b.page);
    assert!(!b.has("pet number"), "{}", b.page);
    // Exactly four Dutch questions: no drop-downs either.
    assert!(!b.has("<select"));
    let q: Vec<String> = (1..=4)
        .map(|i| common::field_value(&b.page, &format!("question-{i}")).unwrap())
        .collect();
    let mut form = vec![];
    for (i, id) in q.iter().enumerate() {
        form.push((format!("question-{}", i + 1), id.clone()));
        form.push((format!("answer-{}", i + 1), format!("antwoord {i}")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.submit("/portal/enroll/finish", &form).await;
    assert_eq!(b.h1(), "Uw account", "{}", b.page);
    // An English browser is offered the English ones.
    let mut en = p.browser();
    p.user("piet").await;
    confirm_app(&p, &mut en, "piet").await;
    assert!(en.has("pet number"), "{}", en.page);
    assert!(!en.has("huisdier"), "{}", en.page);
}

async fn plain_words_and_the_account_page(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.enrollment_prompt_oath_token", "true").await;
    p.set("portal.allow_third_party_oath", "true").await;
    p.set("portal.allow_bypass", "true").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(4).await;
    p.set("portal.url", "https://mfa.example.org:8443/portal")
        .await;
    patch(
        &p,
        "jan",
        UserPatch {
            display_name: Some("Jan de Vries".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    let jargon = |b: &Browser| {
        let text = visible_text(&b.page).to_lowercase();
        for word in ["oath", "method", "base32", "event-based", "prove it is you"] {
            assert!(!text.contains(word), "{word:?} on the page: {text}");
        }
    };
    jargon(&b);
    b.submit("/portal/enroll/oath/new", &[]).await;
    jargon(&b);
    // On a phone: a link that opens the authenticator app with the secret,
    // listed under the portal's host while no organisation name is set.
    assert!(
        b.has("href=\"otpauth://totp/mfa.example.org:jan?"),
        "{}",
        b.page
    );
    assert!(b.has("class=\"secret\""));
    let secret = b.secret();
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    // Exactly four questions: no pointless drop-downs.
    assert!(!b.has("<select"), "{}", b.page);
    assert!(b.has("What was the name of pet number 3?"));
    // The four questions travel as hidden fields, as a browser sends them.
    let q: Vec<String> = (1..=4)
        .map(|i| common::field_value(&b.page, &format!("question-{i}")).unwrap())
        .collect();
    b.submit(
        "/portal/enroll/finish",
        &[
            ("question-1", &q[0]),
            ("answer-1", "a"),
            ("question-2", &q[1]),
            ("answer-2", "b"),
            ("question-3", &q[2]),
            ("answer-3", "c"),
            ("question-4", &q[3]),
            ("answer-4", "d"),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    jargon(&b);
    assert!(b.has("Welcome, Jan de Vries."), "{}", b.page);
    // Tokens with their name, when they were added, and a named Remove.
    let today = p
        .clock
        .now()
        .format(time::macros::format_description!(
            "[day padding:none] [month repr:long] [year]"
        ))
        .unwrap();
    assert!(b.has(&format!("added {today}")), "{}", b.page);
    assert!(b.has("Remove Authenticator app"), "{}", b.page);
    assert!(
        b.has("What was the name of pet number 0?"),
        "chosen questions shown"
    );
    // The bypass: minutes, one sentence on what it covers, local time.
    assert!(b.has("Valid for 5 minutes"));
    b.submit("/portal/account/bypass", &[]).await;
    let active = tag_of(&b.page, "bypass-active");
    assert!(active.starts_with("<p"), "{active}");
    assert!(b.has("<time datetime=\""), "{}", b.page);
    assert!(b.has("/static/portal.js"));
    // ...and it can be cancelled: the next sign-in asks for the code again.
    b.submit("/portal/account/bypass/cancel", &[]).await;
    assert!(b.notice().unwrap().contains("cancelled"), "{}", b.page);
    assert!(!b.has("id=\"bypass-active\""));
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"SUCCESS_BYPASS_CANCELLED".to_string()));
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification", "{}", b.page);
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 1))],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    // The token page too; its app entry carries the organisation's name.
    p.set("portal.organization_name", "Example").await;
    b.open("/portal/account/token").await;
    jargon(&b);
    b.submit("/portal/account/token/new", &[]).await;
    assert!(b.has("href=\"otpauth://totp/Example:jan?"), "{}", b.page);
}

async fn second_step_and_its_fallbacks(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.set("portal.oath_fallback", "true").await;
    p.questions(6).await;
    let mut b = p.browser();
    confirm_app(&p, &mut b, "jan").await;
    let ids = b.question_ids();
    let mut form = vec![];
    for (i, id) in ids.iter().take(4).enumerate() {
        form.push((format!("question-{}", i + 1), id.clone()));
        form.push((format!("answer-{}", i + 1), "x".to_string()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.submit("/portal/enroll/finish", &form).await;
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    // The fallbacks wait behind one question, closed.
    assert!(b.has("<details class=\"fallbacks\">"), "{}", b.page);
    assert!(b.has("Can&#39;t use your authenticator?") || b.has("Can't use your authenticator?"));
    assert_eq!(b.page.matches(">Verify</button>").count(), 1, "{}", b.page);
    assert!(tag_of(&b.page, "code").contains("autofocus"));
    let asked = b.fallback_question_ids();
    let wrong: Vec<(String, String)> = asked
        .iter()
        .map(|id| (format!("q-{id}"), "wrong".to_string()))
        .collect();
    let wrong: Vec<(&str, &str)> = std::iter::once(("proof", "security_questions"))
        .chain(wrong.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    b.submit("/portal/verify", &wrong).await;
    // Not reshuffled; open, with the error beside the answers.
    assert_eq!(b.fallback_question_ids(), asked);
    assert!(b.has("<details class=\"fallbacks\" open>"), "{}", b.page);
    assert!(b.error().unwrap().contains("answers"));
    assert!(tag_of(&b.page, &format!("q-{}", asked[0])).contains("aria-invalid=\"true\""));
}

async fn wizard_steps(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(5).await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert!(b.has("Step 1 of 2"), "{}", b.page);
    b.submit("/portal/enroll/oath/new", &[]).await;
    assert!(b.has("Step 1 of 2"));
    let secret = b.secret();
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    assert!(b.has("Step 2 of 2"), "{}", b.page);
    assert!(
        b.has("id=\"oath-done\""),
        "a confirmation of the authenticator step"
    );
    assert!(!b.has("id=\"pin\""), "no PIN for a mode without one");

    // Without questions, the authenticator is the only step.
    let p = Portal::start(backend).await;
    p.user("piet").await;
    let mut b = p.browser();
    b.sign_in("piet", PASSWORD).await;
    assert!(b.has("Step 1 of 1"), "{}", b.page);
}

async fn a_404_in_the_portals_style(backend: Backend) {
    let p = Portal::start(backend).await;
    let b = p.browser_with_language("nl");
    let res = b
        .client
        .get(format!("{}/portal/no/such/page", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body = res.text().await.unwrap();
    assert!(body.contains("<h1>Pagina niet gevonden</h1>"), "{body}");
    assert!(body.contains("/static/portal.css") && body.contains("href=\"/portal\""));
    let css = b
        .client
        .get(format!("{}/static/portal.css", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains(":focus-visible { outline: 3px solid #1d2430"));
}

/// An administrator moves an enrolled user to a PIN mode: the user is not
/// stuck at a PIN they never chose. The code alone verifies, the next page
/// asks for a PIN (its rules apply, nothing else opens meanwhile), and from
/// then on the PIN is asked in front of the code.
async fn a_pin_mode_set_after_enrollment_lets_the_user_choose_a_pin(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    let secret = confirm_app(&p, &mut b, "jan").await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    b.submit("/portal/sign-out", &[]).await;
    require_pin(&p, "jan").await;

    p.advance(30);
    b.sign_in("jan", PASSWORD).await;
    assert!(!b.has("id=\"pin\""), "no PIN to type yet: {}", b.page);
    assert!(b.has("you choose your PIN next"), "{}", b.page);
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Choose your PIN", "{}", b.page);
    // Nothing else opens before the PIN is chosen: an account form ends
    // the session, and the next sign-in asks for the PIN again.
    b.submit("/portal/account/bypass", &[("minutes", "5")])
        .await;
    assert_eq!(b.h1(), "Sign in", "{}", b.page);
    p.advance(30);
    b.sign_in("jan", PASSWORD).await;
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Choose your PIN", "{}", b.page);
    // The PIN rules apply, beside the field.
    b.submit(
        "/portal/choose-pin",
        &[("pin", "1234"), ("pin-confirm", "1234")],
    )
    .await;
    assert_eq!(b.h1(), "Choose your PIN", "{}", b.page);
    assert!(
        tag_of(&b.page, "pin").contains("aria-invalid=\"true\""),
        "{}",
        b.page
    );
    b.submit(
        "/portal/choose-pin",
        &[("pin", "4826"), ("pin-confirm", "4826")],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.has("Your PIN is saved"), "{}", b.page);
    b.submit("/portal/sign-out", &[]).await;

    // Now the PIN is part of the second step, and the code alone is refused.
    p.advance(30);
    b.sign_in("jan", PASSWORD).await;
    assert!(b.has("id=\"pin\""), "{}", b.page);
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Two-step verification", "{}", b.page);
    b.submit(
        "/portal/verify",
        &[
            ("proof", "method"),
            ("pin", "4826"),
            ("code", &p.totp(&secret, 0)),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
}

/// Issue 16: `portal.languages` decides what the portal speaks and offers,
/// `portal.time_zone` the zone of its times, and a user's regional
/// language (`de-AT`) speaks its base language.
async fn languages_and_time_zone_follow_the_settings(backend: Backend) {
    let p = Portal::start(backend).await;
    p.set("portal.languages", "nl,de").await;
    // A French browser: not offered, so the first offered language.
    let mut b = p.browser_with_language("fr");
    b.open("/portal").await;
    assert!(b.has("<html lang=\"nl\">"), "{}", b.page);
    assert!(
        b.has("hreflang=\"de\"") && !b.has("hreflang=\"fr\""),
        "{}",
        b.page
    );
    // Asking for French by hand changes nothing.
    b.open("/portal/lang/fr").await;
    b.open("/portal").await;
    assert!(b.has("<html lang=\"nl\">"), "{}", b.page);
    b.open("/portal/lang/de").await;
    b.open("/portal").await;
    assert!(b.has("<html lang=\"de\">"), "{}", b.page);

    // A user whose directory language is Austrian German.
    p.set("portal.languages", "en,nl,de,fr,es").await;
    p.set("portal.time_zone", "Europe/Amsterdam").await;
    p.set("portal.allow_bypass", "true").await;
    p.user("anna").await;
    patch(
        &p,
        "anna",
        UserPatch {
            language: Some("de-AT".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser_with_language("en");
    confirm_app(&p, &mut b, "anna").await;
    assert_eq!(b.h1(), "Ihr Konto", "{}", b.page);
    // The token the user did not name is named in their language.
    assert!(b.has("<strong>Authenticator-App</strong>"), "{}", b.page);
    assert!(!b.has("Authenticator app"), "{}", b.page);
    b.submit("/portal/account/bypass", &[]).await;
    let active = tag_of(&b.page, "bypass-active");
    assert!(active.starts_with("<p"), "{active}");
    // The time in the portal's zone, named so.
    assert!(b.has(" CET</time>") || b.has(" CEST</time>"), "{}", b.page);
    assert!(!b.has(" UTC</time>"), "{}", b.page);
}

/// Issue 16: every page of the portal in every language: the page says its
/// language and shows no message key where a text belongs (a missing text
/// would show its key, e.g. `err-code`).
async fn every_page_in_every_language(backend: Backend) {
    let en = include_str!("../locales/en.ftl");
    let values: Vec<&str> = en
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v))
        .collect();
    // Keys that read as a key, not as a word of some text ("sign-in").
    let keys: Vec<&str> = en
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| k.contains('-') && !k.starts_with('#'))
        .filter(|k| !values.iter().any(|v| v.contains(k)))
        .collect();
    let check = |b: &Browser, lang: &str, page: &str| {
        assert!(
            b.has(&format!("<html lang=\"{lang}\">")),
            "{lang} {page}: {}",
            b.page
        );
        let text = visible_text(&b.page);
        for key in &keys {
            assert!(!text.contains(key), "{lang} {page}: {key} shown:\n{text}");
        }
    };
    let p = Portal::start(backend).await;
    p.set("portal.allow_bypass", "true").await;
    for (i, lang) in ["en", "nl", "de", "fr", "es"].into_iter().enumerate() {
        let user = format!("user{i}");
        p.user(&user).await;
        patch(
            &p,
            &user,
            UserPatch {
                language: Some(lang.into()),
                ..Default::default()
            },
        )
        .await;
        let mut b = p.browser_with_language(lang);
        b.open("/portal").await;
        check(&b, lang, "sign-in");
        let res = b
            .client
            .get(format!("{}/portal/no/such/page", b.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let page = std::mem::replace(&mut b.page, res.text().await.unwrap());
        check(&b, lang, "not found");
        b.page = page;
        b.sign_in(&user, PASSWORD).await;
        check(&b, lang, "wizard");
        b.submit("/portal/enroll/oath/new", &[]).await;
        check(&b, lang, "authenticator setup");
        let secret = b.secret();
        b.submit(
            "/portal/enroll/oath/confirm",
            &[("code", &p.totp(&secret, 0))],
        )
        .await;
        check(&b, lang, "account");
        b.submit("/portal/account/bypass", &[]).await;
        check(&b, lang, "account with a bypass");
        b.open("/portal/account/token").await;
        check(&b, lang, "token");
        b.submit("/portal/sign-out", &[]).await;
        check(&b, lang, "signed out");
        b.sign_in(&user, PASSWORD).await;
        // The bypass covers this sign-in; the next one asks for the code.
        check(&b, lang, "signed in by bypass");
        b.submit("/portal/sign-out", &[]).await;
        b.sign_in(&user, PASSWORD).await;
        check(&b, lang, "second step");
        b.submit("/portal/verify", &[("proof", "method"), ("code", "000000")])
            .await;
        check(&b, lang, "wrong code");
        require_pin(&p, &user).await;
        p.advance(30);
        b.submit(
            "/portal/verify",
            &[("proof", "method"), ("code", &p.totp(&secret, 0))],
        )
        .await;
        check(&b, lang, "choose a PIN");
    }
}

portal_modes!(
    refused_forms_keep_what_was_typed,
    a_wrong_pin_is_not_a_clock_problem,
    the_users_language_everywhere,
    questions_in_the_browsers_language,
    plain_words_and_the_account_page,
    second_step_and_its_fallbacks,
    wizard_steps,
    a_404_in_the_portals_style,
    a_pin_mode_set_after_enrollment_lets_the_user_choose_a_pin,
    languages_and_time_zone_follow_the_settings,
    every_page_in_every_language,
);

//! The User Portal over HTTPS, as a browser uses it: every flow and every
//! setting that changes what the portal allows, on SQLite and PostgreSQL,
//! with the portal in process and on a separate server (through the SDK).

#[macro_use]
mod common;

use common::{Browser, Portal, PASSWORD};
use twofold_core::user::UserPatch;
use twofold_core::AdminService;
use twofold_core::Ctx;
use twofold_testkit::db::Backend;

/// Signs in a new user and enrolls an authenticator app; returns its secret.
/// The enrollment consumed the current time step.
async fn enroll_app(p: &Portal, b: &mut Browser, user: &str) -> String {
    b.sign_in(user, PASSWORD).await;
    assert_eq!(b.h1(), "Set up your account", "{}", b.page);
    b.submit("/portal/enroll/oath/new", &[]).await;
    assert!(b.has("data:image/svg+xml;base64,"), "QR code shown");
    let secret = b.secret();
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    secret
}

async fn enroll_and_sign_in_with_codes(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Set up your account");
    b.submit("/portal/enroll/oath/new", &[]).await;
    let secret = b.secret();
    assert!(b.has(&format!("secret={secret}").replace(' ', "")) || b.has("data:image/svg+xml"));

    // A wrong code is refused and nothing is saved.
    b.submit("/portal/enroll/oath/confirm", &[("code", "000000")])
        .await;
    assert!(b.error().unwrap().contains("not right"), "{}", b.page);
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .default_method
        .is_none());
    // Malformed and overlong codes get the same clear message, never a 500.
    b.submit("/portal/enroll/oath/confirm", &[("code", "12ab56")])
        .await;
    assert!(b.error().is_some());
    b.submit(
        "/portal/enroll/oath/confirm",
        &[("code", &"9".repeat(5000))],
    )
    .await;
    assert!(b.error().is_some());

    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.notice().unwrap().contains("set up"));
    let user = p.engine.get_user(&Ctx::cli(), "jan").await.unwrap();
    assert_eq!(user.default_method.unwrap().to_string(), "oath_token:oath");

    // Sign out, sign in: the second step asks for a code.
    b.submit("/portal/sign-out", &[]).await;
    assert_eq!(b.h1(), "Sign in");
    b.sign_in("JAN", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification");
    // The code used at enrollment is spent (replay), a wrong one is wrong.
    b.submit("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    assert!(b.error().unwrap().contains("not right"));
    b.submit("/portal/verify", &[("proof", "method"), ("code", "123456")])
        .await;
    assert!(b.error().is_some());
    let next = p.totp(&secret, 1);
    b.submit("/portal/verify", &[("proof", "method"), ("code", &next)])
        .await;
    assert_eq!(b.h1(), "Your account");

    // The same code cannot sign in twice, from another browser either.
    let mut other = p.browser();
    other.sign_in("jan", PASSWORD).await;
    other
        .submit("/portal/verify", &[("proof", "method"), ("code", &next)])
        .await;
    assert_eq!(other.h1(), "Two-step verification");
    let results = p.audit_results("jan").await;
    assert!(
        results.contains(&"FAILED_OATH_CODE_DUPLICATE".to_string()),
        "{results:?}"
    );
    assert!(results.contains(&"SUCCESS_ENROLLED".to_string()));
    assert!(results.contains(&"SUCCESS_OATH_CODE".to_string()));
}

async fn no_user_enumeration(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.sign_in("jan", "wrong password").await;
    let wrong_pw = b.error().unwrap();
    b.sign_in("nobody", "wrong password").await;
    let unknown = b.error().unwrap();
    assert_eq!(wrong_pw, unknown);
    assert_eq!(b.h1(), "Sign in");
    let results = p.audit_results("nobody").await;
    assert!(
        results.contains(&"FAILED_USER_NOT_FOUND".to_string()),
        "{results:?}"
    );
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"FAILED_PASSWORD_WRONG".to_string()));
    // Overlong credentials are refused like any wrong ones.
    b.sign_in(&"x".repeat(10_000), &"y".repeat(5000)).await;
    assert_eq!(b.error().unwrap(), wrong_pw);
}

async fn allow_login_off_greys_out_the_form(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.allow_login", "false").await;
    let mut b = p.browser();
    b.open("/portal").await;
    assert!(b.has("<fieldset class=\"card\" disabled>"), "{}", b.page);
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(b.h1(), "Sign in");
    assert!(b.error().unwrap().contains("switched off"));
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"FAILED_LOGIN_DISABLED".to_string()));
}

async fn enrollment_off_sends_users_to_their_administrator(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.allow_enrollment", "false").await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Sign in");
    assert!(b.error().unwrap().contains("administrator"));
    // Posting wizard steps directly gets nowhere either.
    let posted = b.post("/portal/enroll/oath/new", &[]).await;
    assert_eq!(posted.refusal.as_deref(), Some("csrf"));
}

async fn enrollment_with_security_questions(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(6).await;
    let mut b = p.browser();
    enroll_app(&p, &mut b, "jan").await;
    // The token is confirmed but nothing is stored until the questions are done.
    assert_eq!(b.h1(), "Set up your account");
    let ids = b.question_ids();
    assert_eq!(ids.len(), 6);
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .default_method
        .is_none());

    // The same question twice is refused.
    b.submit(
        "/portal/enroll/finish",
        &[
            ("question-1", &ids[0]),
            ("answer-1", "Rex"),
            ("question-2", &ids[0]),
            ("answer-2", "Rex"),
            ("question-3", &ids[2]),
            ("answer-3", "c"),
            ("question-4", &ids[3]),
            ("answer-4", "d"),
        ],
    )
    .await;
    assert!(b.error().unwrap().contains("four different"), "{}", b.page);
    // A question that is not on the list is refused.
    b.submit(
        "/portal/enroll/finish",
        &[
            ("question-1", "99999"),
            ("answer-1", "a"),
            ("question-2", &ids[1]),
            ("answer-2", "b"),
            ("question-3", &ids[2]),
            ("answer-3", "c"),
            ("question-4", &ids[3]),
            ("answer-4", "d"),
        ],
    )
    .await;
    assert!(b.error().is_some());
    // Overlong answer.
    let long = "a".repeat(500);
    b.submit(
        "/portal/enroll/finish",
        &[
            ("question-1", &ids[0]),
            ("answer-1", &long),
            ("question-2", &ids[1]),
            ("answer-2", "b"),
            ("question-3", &ids[2]),
            ("answer-3", "c"),
            ("question-4", &ids[3]),
            ("answer-4", "d"),
        ],
    )
    .await;
    assert!(b.error().is_some());
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .default_method
        .is_none());

    b.submit(
        "/portal/enroll/finish",
        &[
            ("question-1", &ids[0]),
            ("answer-1", "  Rex  the Dog "),
            ("question-2", &ids[1]),
            ("answer-2", "Amsterdam"),
            ("question-3", &ids[2]),
            ("answer-3", "blue"),
            ("question-4", &ids[3]),
            ("answer-4", "1999"),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.has("You have answered 4 questions"));

    // Fallback at sign-in: answer the questions asked (normalised: case, spaces).
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    let asked = b.fallback_question_ids();
    assert_eq!(asked.len(), 3, "security_questions_required defaults to 3");
    let answer_of = |id: &str| -> &str {
        if id == ids[0] {
            "rex THE dog"
        } else if id == ids[1] {
            "amsterdam"
        } else if id == ids[2] {
            "BLUE"
        } else {
            "1999"
        }
    };
    let wrong: Vec<(String, String)> = asked
        .iter()
        .map(|id| (format!("q-{id}"), "wrong".to_string()))
        .collect();
    let wrong_ref: Vec<(&str, &str)> = std::iter::once(("proof", "security_questions"))
        .chain(wrong.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    b.submit("/portal/verify", &wrong_ref).await;
    assert!(b.error().unwrap().contains("answers"), "{}", b.page);
    let right: Vec<(String, String)> = asked
        .iter()
        .map(|id| (format!("q-{id}"), answer_of(id).to_string()))
        .collect();
    let right_ref: Vec<(&str, &str)> = std::iter::once(("proof", "security_questions"))
        .chain(right.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    b.submit("/portal/verify", &right_ref).await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"SUCCESS_SECURITY_QUESTIONS".to_string()));
}

async fn abandoned_wizard_saves_nothing(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.security_questions_fallback", "true").await;
    p.questions(4).await;
    let mut b = p.browser();
    enroll_app(&p, &mut b, "jan").await;
    assert_eq!(b.h1(), "Set up your account");
    // The browser goes away; a new one signs in and starts over.
    let mut b2 = p.browser();
    b2.sign_in("jan", PASSWORD).await;
    assert_eq!(b2.h1(), "Set up your account");
    let jan = p.engine.get_user(&Ctx::cli(), "jan").await.unwrap();
    assert!(jan.default_method.is_none());
    assert!(p
        .engine
        .tokens(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .is_empty());
}

async fn third_party_tokens_follow_their_settings(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert!(
        !b.has("/portal/enroll/oath/import"),
        "import hidden while the setting is off"
    );
    b.submit(
        "/portal/enroll/oath/import",
        &[
            ("secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            ("kind", "hotp"),
        ],
    )
    .await;
    assert!(b.error().unwrap().contains("not allowed"));

    p.set("portal.enrollment_prompt_oath_token", "true").await;
    b.open("/portal").await;
    assert!(b.has("/portal/enroll/oath/import"));
    for bad in ["", "not base32!", "ABC", &"A".repeat(400)] {
        b.submit(
            "/portal/enroll/oath/import",
            &[("secret", bad), ("kind", "hotp")],
        )
        .await;
        // Plain words: a "secret key", never "base32".
        assert!(
            b.error().unwrap().contains("secret key"),
            "{bad}: {}",
            b.page
        );
    }
    // RFC 4226 secret "12345678901234567890": codes 755224, 287082, 359152 ...
    b.submit(
        "/portal/enroll/oath/import",
        &[
            ("secret", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq"),
            ("kind", "hotp"),
            ("digits", "6"),
        ],
    )
    .await;
    b.submit("/portal/enroll/oath/confirm", &[("code", "755224")])
        .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    b.submit("/portal/verify", &[("proof", "method"), ("code", "755224")])
        .await;
    assert_eq!(b.h1(), "Two-step verification", "an event code works once");
    b.submit("/portal/verify", &[("proof", "method"), ("code", "359152")])
        .await;
    assert_eq!(b.h1(), "Your account", "look-ahead skips an unused code");
}

async fn one_time_bypass(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    let secret = enroll_app(&p, &mut b, "jan").await;
    assert!(!b.has("h-bypass"), "bypass hidden while not allowed");
    b.submit("/portal/account/bypass", &[]).await;
    assert!(b.error().unwrap().contains("not allowed"));

    p.set("portal.allow_bypass", "true").await;
    b.open("/portal").await;
    // Minutes, not seconds (issue 9).
    assert!(b.has("Valid for 5 minutes"));
    // The time may only be chosen when the setting says so.
    b.submit("/portal/account/bypass", &[("minutes", "1")])
        .await;
    assert!(b.error().unwrap().contains("not allowed"));
    b.submit("/portal/account/bypass", &[]).await;
    assert!(b.has("id=\"bypass-active\""), "{}", b.page);

    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Your account", "bypass skips the second step");
    assert!(b.notice().unwrap().contains("bypass"));
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification", "a bypass works once");
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 1))],
    )
    .await;

    // It expires: 300 s by default.
    b.submit("/portal/account/bypass", &[]).await;
    p.advance(301);
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(
        b.h1(),
        "Two-step verification",
        "an expired bypass does nothing"
    );
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Your account");

    // Prompted seconds, within 1..=max.
    p.set("portal.bypass_prompt_seconds", "true").await;
    b.open("/portal").await;
    assert!(b.has("id=\"minutes\""));
    for bad in ["0", "61", "-5", "lots"] {
        b.submit("/portal/account/bypass", &[("minutes", bad)])
            .await;
        assert!(b.error().is_some(), "{bad}");
    }
    b.submit("/portal/account/bypass", &[("minutes", "1")])
        .await;
    assert!(b.has("id=\"bypass-active\""));
    p.advance(61);
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification", "60 s have passed");
    let results = p.audit_results("jan").await;
    assert!(results.contains(&"SUCCESS_BYPASS_STARTED".to_string()));
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == "SUCCESS_BYPASS_USED")
            .count(),
        1
    );
}

async fn languages(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut nl = p.browser_with_language("nl-NL,nl;q=0.9,en;q=0.5");
    nl.open("/portal").await;
    assert_eq!(nl.h1(), "Aanmelden");
    assert!(nl.has("<html lang=\"nl\">"));
    nl.open("/portal/lang/en").await;
    nl.open("/portal").await;
    assert_eq!(nl.h1(), "Sign in", "an explicit choice beats the browser");
    nl.open("/portal/lang/xx").await;
    nl.open("/portal").await;
    assert_eq!(nl.h1(), "Sign in", "unknown languages are ignored");

    let mut b = p.browser();
    enroll_app(&p, &mut b, "jan").await;
    assert!(!b.has("id=\"h-language\""), "hidden while not allowed");
    b.submit("/portal/account/language", &[("language", "nl")])
        .await;
    assert!(b.error().unwrap().contains("not allowed"));
    p.set("portal.allow_select_language", "true").await;
    b.submit("/portal/account/language", &[("language", "tlh")])
        .await;
    assert!(b.error().is_some());
    b.submit("/portal/account/language", &[("language", "nl")])
        .await;
    assert_eq!(b.h1(), "Uw account", "{}", b.page);
    assert_eq!(
        p.engine
            .get_user(&Ctx::cli(), "jan")
            .await
            .unwrap()
            .language
            .as_deref(),
        Some("nl")
    );
}

async fn pin_rules(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.oath_fallback", "true").await;
    let mut b = p.browser();
    let secret = enroll_app(&p, &mut b, "jan").await;
    assert!(!b.has("id=\"h-pin\""), "no PIN for an OATH-only user");
    b.submit("/portal/account/pin", &[("pin", "4826")]).await;
    assert!(b.error().unwrap().contains("not allowed"));

    // An administrator moves jan to phone calls with a PIN.
    p.engine
        .update_user(
            &Ctx::cli(),
            "jan",
            UserPatch {
                default_method: Some("phone_call:pin".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert!(
        b.has("cannot be used on this page"),
        "phone calls are not available here yet"
    );
    assert!(b.has("value=\"oath_fallback\""));
    b.submit(
        "/portal/verify",
        &[("proof", "oath_fallback"), ("code", &p.totp(&secret, 1))],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.has("id=\"h-pin\""));

    p.set("pin.min_length", "5").await;
    for bad in [
        "",
        "48a26",
        "4826",
        "12345",
        "98765",
        "51114",
        "77777",
        &"4".repeat(40),
    ] {
        b.submit("/portal/account/pin", &[("pin", bad)]).await;
        assert!(b.error().unwrap().contains("PIN"), "{bad:?}: {}", b.page);
    }
    b.submit("/portal/account/pin", &[("pin", "48261")]).await;
    assert!(b.notice().unwrap().contains("PIN"), "{}", b.page);
    b.submit("/portal/account/pin", &[("pin", "48261")]).await;
    assert!(b.error().is_some(), "the current PIN cannot be reused");
    b.submit("/portal/account/pin", &[("pin", "50817")]).await;
    b.submit("/portal/account/pin", &[("pin", "48261")]).await;
    assert!(b.error().is_some(), "history of 5 forbids reuse");
    p.set("pin.prevent_weak", "false").await;
    b.submit("/portal/account/pin", &[("pin", "11111")]).await;
    assert!(
        b.notice().is_some(),
        "weak PINs allowed when the rule is off"
    );
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"FAILED_PIN_RULE".to_string()));
}

async fn lockout_and_its_expiry(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("lockout.denials_to_lock", "3").await;
    p.set("lockout.auto_unblock_minutes", "15").await;
    let mut b = p.browser();
    let secret = enroll_app(&p, &mut b, "jan").await;
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    for _ in 0..3 {
        b.submit("/portal/verify", &[("proof", "method"), ("code", "111111")])
            .await;
        assert_eq!(b.h1(), "Two-step verification");
    }
    // Paused: even the right code waits a minute.
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert!(
        b.error().unwrap().contains("Try again in 60 seconds"),
        "{}",
        b.page
    );
    // Codes are their own factor: the password still signs in.
    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification", "{}", b.page);
    p.advance(60);
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("code", &p.totp(&secret, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "after the pause");
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"FAILED_RATE_LIMITED".to_string()));

    // Wrong passwords pause the password alike.
    b.submit("/portal/sign-out", &[]).await;
    for _ in 0..3 {
        b.sign_in("jan", "not the password").await;
    }
    b.sign_in("jan", PASSWORD).await;
    assert!(b.error().unwrap().contains("Try again in"), "{}", b.page);
    p.advance(61);
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification", "after the pause");

    // Without automatic unblock the first pause is a lock.
    p.set("lockout.auto_unblock_minutes", "0").await;
    for _ in 0..2 {
        b.submit("/portal/verify", &[("proof", "method"), ("code", "111111")])
            .await;
        assert_eq!(b.h1(), "Two-step verification");
    }
    b.submit("/portal/verify", &[("proof", "method"), ("code", "111111")])
        .await;
    assert_eq!(b.h1(), "Sign in");
    assert!(b.error().unwrap().contains("locked"), "{}", b.page);
    p.advance(24 * 3600);
    b.sign_in("jan", PASSWORD).await;
    assert!(b.error().unwrap().contains("disabled or locked"));
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"FAILED_LOCKED_OUT".to_string()));
}

async fn csrf_is_required(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.open("/portal").await;
    let posted = b
        .post_raw(
            "/portal/sign-in",
            &[("username", "jan"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(posted.refusal.as_deref(), Some("csrf"));
    let posted = b
        .post_raw(
            "/portal/sign-in",
            &[
                ("csrf", "forged"),
                ("username", "jan"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(posted.refusal.as_deref(), Some("csrf"));
    // Another session's token does not work in this one.
    let mut other = p.browser();
    other.open("/portal").await;
    let theirs = other.csrf();
    let posted = b
        .post_raw(
            "/portal/sign-in",
            &[
                ("csrf", &theirs),
                ("username", "jan"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(posted.refusal.as_deref(), Some("csrf"));
    b.open("/portal").await;
    assert!(b.error().unwrap().contains("expired"));
    assert!(
        !p.audit_results("jan")
            .await
            .iter()
            .any(|r| r == "SUCCESS_PASSWORD_VERIFIED"),
        "no sign-in happened"
    );

    // The session id and CSRF token change when the user signs in.
    b.open("/portal").await;
    let before = b.csrf();
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", PASSWORD)],
    )
    .await;
    assert_ne!(b.csrf(), before);
    // Malformed and huge bodies are refused cleanly.
    let res = b
        .client
        .post(format!("{}/portal/sign-in", b.base))
        .body(vec![b'a'; 100 * 1024])
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

async fn tokens_and_method_in_the_account(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    let first = enroll_app(&p, &mut b, "jan").await;
    let tokens = p.engine.tokens(&Ctx::cli(), "jan").await.unwrap();
    assert_eq!(tokens.len(), 1);
    // The only token of an OATH user cannot be removed.
    b.submit(
        "/portal/account/token/delete",
        &[("token", &tokens[0].id.to_string())],
    )
    .await;
    assert!(b.error().unwrap().contains("only token"), "{}", b.page);
    b.submit("/portal/account/token/delete", &[("token", "999999")])
        .await;
    assert!(b.error().is_some());

    b.open("/portal/account/token").await;
    assert!(
        !b.has("/portal/account/token/import"),
        "third-party tokens off"
    );
    b.submit("/portal/account/token/new", &[]).await;
    let second = b.secret();
    assert_ne!(first, second);
    b.submit(
        "/portal/account/token/confirm",
        &[("label", "Phone 2"), ("code", "000000")],
    )
    .await;
    assert!(b.error().is_some());
    b.submit(
        "/portal/account/token/confirm",
        &[("label", "Phone 2"), ("code", &p.totp(&second, 0))],
    )
    .await;
    assert_eq!(b.h1(), "Your account");
    assert!(b.has("Phone 2"));
    b.submit(
        "/portal/account/token/delete",
        &[("token", &tokens[0].id.to_string())],
    )
    .await;
    assert!(b.notice().unwrap().contains("removed"));
    assert_eq!(p.engine.tokens(&Ctx::cli(), "jan").await.unwrap().len(), 1);

    // Method changes only when allowed.
    b.submit("/portal/account/method", &[("method", "oath_token")])
        .await;
    assert!(b.error().unwrap().contains("not allowed"));
    p.set("portal.allow_select_method", "true").await;
    b.submit("/portal/account/method", &[("method", "phone_call")])
        .await;
    assert!(b.error().is_some(), "phone calls cannot be chosen yet");
    b.submit("/portal/account/method", &[("method", "fax")])
        .await;
    assert!(b.error().is_some());
    b.submit("/portal/account/method", &[("method", "oath_token")])
        .await;
    assert!(b.notice().unwrap().contains("How you verify"), "{}", b.page);
}

async fn pages_carry_security_headers(backend: Backend) {
    let p = Portal::start(backend).await;
    let b = p.browser();
    let res = b
        .client
        .get(format!("{}/portal", b.base))
        .send()
        .await
        .unwrap();
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(h["x-frame-options"], "DENY");
    let cookie = h["set-cookie"].to_str().unwrap();
    for part in [
        "__Host-twofold=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let body = res.text().await.unwrap();
    assert!(!body.contains("<script"), "no script at all");
    assert!(!body.contains("style=\""), "no inline style");
    let css = b
        .client
        .get(format!("{}/static/portal.css", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

/// An administrator configured OATH with a PIN before the user enrolled:
/// the wizard sets up the token and a PIN, and sign-in takes PIN + code.
async fn preset_method_with_pin(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.engine
        .update_user(
            &Ctx::cli(),
            "jan",
            UserPatch {
                default_method: Some("oath_token:oath_pin".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut b = p.browser();
    let secret = enroll_app(&p, &mut b, "jan").await;
    assert_eq!(b.h1(), "Set up your account");
    assert!(b.has("id=\"pin\""), "the wizard asks for a PIN: {}", b.page);
    assert!(
        p.engine
            .tokens(&Ctx::cli(), "jan")
            .await
            .unwrap()
            .is_empty(),
        "nothing saved yet"
    );
    b.submit("/portal/enroll/finish", &[("pin", "1234")]).await;
    assert!(b.error().unwrap().contains("PIN"), "{}", b.page);
    b.submit("/portal/enroll/finish", &[("pin", "")]).await;
    assert!(b.error().is_some());
    b.submit("/portal/enroll/finish", &[("pin", "4826")]).await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert_eq!(
        p.engine
            .get_user(&Ctx::cli(), "jan")
            .await
            .unwrap()
            .default_method
            .unwrap()
            .to_string(),
        "oath_token:oath_pin"
    );

    b.submit("/portal/sign-out", &[]).await;
    b.sign_in("jan", PASSWORD).await;
    assert!(b.has("id=\"pin\""), "second step asks for the PIN");
    b.submit(
        "/portal/verify",
        &[
            ("proof", "method"),
            ("pin", "9999"),
            ("code", &p.totp(&secret, 1)),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Two-step verification");
    b.submit(
        "/portal/verify",
        &[
            ("proof", "method"),
            ("pin", "4826"),
            ("code", &p.totp(&secret, 1)),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.error().is_none(), "the PIN is fresh");

    // With an expiry of one day, two days later the PIN must be changed.
    p.set("pin.expiry_days", "1").await;
    p.advance(2 * 86_400);
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    let code = p.totp(&secret, 0);
    b.submit(
        "/portal/verify",
        &[("proof", "method"), ("pin", "4826"), ("code", &code)],
    )
    .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
    assert!(b.error().unwrap().contains("expired"), "{}", b.page);
    b.submit("/portal/account/pin", &[("pin", "5937")]).await;
    assert!(b.notice().unwrap().contains("PIN"));
    b.open("/portal").await;
    assert!(b.error().is_none(), "a new PIN is not expired: {}", b.page);
}

async fn trusted_networks_skip_the_second_step(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    enroll_app(&p, &mut b, "jan").await;
    b.submit("/portal/sign-out", &[]).await;
    // Listed but switched off: no effect.
    p.set("trusted_ips.ranges", "127.0.0.0/8").await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification");
    b.open("/portal").await;
    b.submit("/portal/sign-out", &[]).await;
    p.set("trusted_ips.enabled", "true").await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Your account");
    assert!(b.notice().unwrap().contains("trusted network"));
    b.submit("/portal/sign-out", &[]).await;
    // Another network is not trusted; and a wrong password is still wrong.
    p.set("trusted_ips.ranges", "10.0.0.0/8").await;
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification");
    p.set("trusted_ips.ranges", "127.0.0.1").await;
    b.sign_in("jan", "wrong password").await;
    assert!(b.error().unwrap().contains("not right"));
    assert!(p
        .audit_results("jan")
        .await
        .contains(&"SUCCESS_TRUSTED_IP".to_string()));
    // X-Forwarded-For naming a trusted network, from a peer that is no
    // trusted proxy (none is configured here), is not believed.
    p.set("trusted_ips.ranges", "203.0.113.0/24").await;
    let mut spoof = p.browser_with_headers(&[
        ("accept-language", "en"),
        ("x-forwarded-for", "203.0.113.7"),
    ]);
    spoof.sign_in("jan", PASSWORD).await;
    assert_eq!(spoof.h1(), "Two-step verification");
}

portal_modes!(
    trusted_networks_skip_the_second_step,
    preset_method_with_pin,
    enroll_and_sign_in_with_codes,
    no_user_enumeration,
    allow_login_off_greys_out_the_form,
    enrollment_off_sends_users_to_their_administrator,
    enrollment_with_security_questions,
    abandoned_wizard_saves_nothing,
    third_party_tokens_follow_their_settings,
    one_time_bypass,
    languages,
    pin_rules,
    lockout_and_its_expiry,
    csrf_is_required,
    tokens_and_method_in_the_account,
    pages_carry_security_headers,
    one_source_is_throttled_across_users,
);

async fn one_source_is_throttled_across_users(backend: Backend) {
    let p = Portal::start(backend).await;
    let mut b = p.browser();
    for i in 0..50 {
        b.sign_in(&format!("user{i}"), "guess").await;
        assert!(b.error().unwrap().contains("not right"));
    }
    b.sign_in("user50", "guess").await;
    assert!(
        b.error().unwrap().contains("Too many attempts"),
        "{}",
        b.page
    );
}

//! The portal's second step by phone (issue 10): "Call me" / "Text me" (and
//! the backup phone), the page that waits for the call or takes the texted
//! code, and what a call that fails says — through the provider emulator
//! that plays the phone, on SQLite and PostgreSQL, with the portal in
//! process and on a separate server.

#[macro_use]
mod common;

use common::{Browser, Portal, PASSWORD};
use twofold_core::user::UserPatch;
use twofold_core::{AdminService, Ctx};
use twofold_testkit::db::Backend;
use twofold_testkit::twilio::PlacedCall;

const JAN: &str = "+31612345678";
const BACKUP: &str = "+31201234567";

async fn patch(p: &Portal, user: &str, patch: UserPatch) {
    p.engine
        .update_user(&Ctx::cli(), user, patch)
        .await
        .unwrap();
}

fn last_call(p: &Portal) -> PlacedCall {
    p.phone
        .as_ref()
        .expect("emulator")
        .calls()
        .last()
        .cloned()
        .expect("a call was placed")
}

fn last_code(p: &Portal) -> (String, String) {
    let m = p
        .phone
        .as_ref()
        .expect("emulator")
        .messages()
        .last()
        .cloned()
        .expect("a text was sent");
    let code = m
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a code")
        .to_string();
    (m.to, code)
}

async fn signed_in(b: &mut Browser) -> bool {
    b.open("/portal").await;
    // The account page, which only a signed-in user sees.
    b.has("href=\"/portal/account/token\"")
}

async fn a_phone_call_from_the_second_step(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    p.user("jan").await;
    patch(
        &p,
        "jan",
        UserPatch {
            phone: Some(JAN.into()),
            default_method: Some("phone_call".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert!(b.has("id=\"phone-primary\""), "{}", b.page);
    assert!(!b.has("id=\"phone-backup\""), "no backup phone yet");
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("We are calling …78"), "{}", b.page);
    assert!(b.has("data-wait"), "the page continues by itself");
    let talk = last_call(&p).answer(&["#"]).await;
    assert!(
        talk.last_said().starts_with("You are signed in"),
        "{talk:?}"
    );
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);

    // Not answered: back to the buttons, saying so; then the backup phone.
    patch(
        &p,
        "jan",
        UserPatch {
            backup_phone: Some(BACKUP.into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert_eq!(last_call(&p).report("no-answer").await, 204);
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("not answered")),
        "{:?}",
        b.error()
    );
    assert!(b.has("id=\"phone-backup\""), "{}", b.page);
    b.submit("/portal/verify/phone", &[("phone", "backup")])
        .await;
    assert!(b.has("…67"), "{}", b.page);
    let call = last_call(&p);
    assert_eq!(call.field("To"), Some(BACKUP));
    call.answer(&["#"]).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await);

    // Fraud reported on the call: refused, and the account is blocked.
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    last_call(&p).answer(&["0#"]).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(!signed_in(&mut b).await);
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert!(
        b.error()
            .is_some_and(|e| e.contains("blocked") || e.contains("locked")),
        "{:?}",
        b.error()
    );
}

async fn a_text_message_from_the_second_step(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    p.user("kim").await;
    patch(
        &p,
        "kim",
        UserPatch {
            mobile_phone: Some(JAN.into()),
            default_method: Some("text_message".into()),
            language: Some("nl".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    assert!(b.has("Sms mij een code"), "{}", b.page);
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("We hebben een code gestuurd naar …78"), "{}", b.page);
    assert!(!b.has("data-wait"), "a typed code needs no waiting");
    let (to, code) = last_code(&p);
    assert_eq!(to, JAN);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.submit("/portal/verify/phone/check", &[("code", wrong)])
        .await;
    assert!(b.error().is_some(), "a wrong code says so");
    assert!(b.has("name=\"code\""), "and asks again");
    b.submit("/portal/verify/phone/check", &[("code", &code)])
        .await;
    assert!(signed_in(&mut b).await, "{}", b.page);

    // Two-way: the reply decides; the page continues.
    patch(
        &p,
        "kim",
        UserPatch {
            default_method: Some("text_message:sms_two_way_otp".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("Beantwoord die met de code"), "{}", b.page);
    let (_, code) = last_code(&p);
    let status = twofold_testkit::twilio::text_in(
        &format!("{}/hooks/twilio/sms", p.server_base),
        JAN,
        "+3197010260001",
        &code,
        twofold_testkit::twilio::AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
}

portal_modes!(
    a_phone_call_from_the_second_step,
    a_text_message_from_the_second_step,
);

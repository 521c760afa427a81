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

/// The wizard offers the phone methods when a provider is configured.
async fn offer_phones(p: &Portal) {
    p.set("portal.allow_select_method", "true").await;
}

async fn enrolling_with_call_me_now(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    offer_phones(&p).await;
    p.set("portal.enrollment_prompt_backup_phone", "true").await;
    p.user("eva").await;
    let mut b = p.browser();
    b.sign_in("eva", PASSWORD).await;
    assert!(b.has("value=\"phone_call\""), "{}", b.page);
    b.submit("/portal/enroll/method", &[("method", "phone_call")])
        .await;
    assert!(b.has("Call Me Now to Authenticate"), "{}", b.page);
    // A number that is none: said beside the field, what was typed kept.
    b.submit(
        "/portal/enroll/phone",
        &[("phone", "12ab"), ("extension", "42")],
    )
    .await;
    assert!(b.error().is_some(), "{}", b.page);
    assert!(b.has("value=\"12ab\""), "the number typed stays");
    assert!(
        p.phone.as_ref().unwrap().calls().is_empty(),
        "nothing called"
    );
    b.submit(
        "/portal/enroll/phone",
        &[
            ("phone", "+31 6 1234 5678"),
            ("extension", "42"),
            ("backup_phone", BACKUP),
        ],
    )
    .await;
    assert!(b.has("We are calling …78"), "{}", b.page);
    // Nothing is saved before the phone answers.
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "eva")
        .await
        .unwrap()
        .phone
        .is_none());
    let call = last_call(&p);
    assert_eq!(call.field("SendDigits"), Some("ww42"));
    call.answer(&["#"]).await;
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    let eva = p.engine.get_user(&Ctx::cli(), "eva").await.unwrap();
    assert_eq!(eva.phone.as_deref(), Some(JAN));
    assert_eq!(eva.phone_extension.as_deref(), Some("42"));
    assert_eq!(eva.backup_phone.as_deref(), Some(BACKUP));
    assert_eq!(
        eva.default_method.unwrap().to_string(),
        "phone_call:standard"
    );

    // The next sign-in calls the enrolled phone.
    let mut b = p.browser();
    b.sign_in("eva", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    last_call(&p).answer(&["#"]).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await);
}

async fn enrolling_with_a_pin_and_a_text(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    offer_phones(&p).await;
    p.user("ola").await;
    // An administrator chose the method and a PIN mode in advance.
    patch(
        &p,
        "ola",
        UserPatch {
            default_method: Some("text_message:sms_one_way_otp_plus_pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("ola", PASSWORD).await;
    assert!(b.has("Text Me Now to Authenticate"), "{}", b.page);
    assert!(
        b.has("id=\"pin-confirm\""),
        "the PIN is chosen with the phone"
    );
    // PINs that differ: refused before anything is sent.
    b.submit(
        "/portal/enroll/phone",
        &[("phone", JAN), ("pin", "4826"), ("pin-confirm", "4827")],
    )
    .await;
    assert!(b.error().is_some());
    assert!(p.phone.as_ref().unwrap().messages().is_empty());
    b.submit(
        "/portal/enroll/phone",
        &[("phone", JAN), ("pin", "4826"), ("pin-confirm", "4826")],
    )
    .await;
    let (to, code) = last_code(&p);
    assert_eq!(to, JAN);
    // The code alone is not enough: the PIN just chosen goes in front.
    b.submit(
        "/portal/enroll/phone/check",
        &[("pin", "1111"), ("code", &code)],
    )
    .await;
    assert!(b.error().is_some(), "{}", b.page);
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "ola")
        .await
        .unwrap()
        .mobile_phone
        .is_none());
    b.submit(
        "/portal/enroll/phone/check",
        &[("pin", "4826"), ("code", &code)],
    )
    .await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    let ola = p.engine.get_user(&Ctx::cli(), "ola").await.unwrap();
    assert_eq!(ola.mobile_phone.as_deref(), Some(JAN));

    // Signing in: a new code, the PIN chosen at enrollment in front.
    let mut b = p.browser();
    b.sign_in("ola", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let (_, code) = last_code(&p);
    b.submit(
        "/portal/verify/phone/check",
        &[("pin", "4826"), ("code", &code)],
    )
    .await;
    assert!(signed_in(&mut b).await, "{}", b.page);
}

async fn changing_numbers_on_the_account_page(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    p.user("ada").await;
    patch(
        &p,
        "ada",
        UserPatch {
            phone: Some(JAN.into()),
            default_method: Some("phone_call".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("ada", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    last_call(&p).answer(&["#"]).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(b.has("id=\"h-phones\""), "{}", b.page);
    assert!(b.has(JAN));

    // A mobile number: proved by a text, saved once its code is typed.
    b.submit(
        "/portal/account/phone",
        &[("slot", "mobile"), ("phone", "12ab")],
    )
    .await;
    assert!(b.error().is_some(), "a number that is none: {}", b.page);
    b.submit(
        "/portal/account/phone",
        &[("slot", "mobile"), ("phone", "+31 6 8765 4321")],
    )
    .await;
    assert!(b.has("We sent a code to …21"), "{}", b.page);
    let (to, code) = last_code(&p);
    assert_eq!(to, "+31687654321");
    assert!(p
        .engine
        .get_user(&Ctx::cli(), "ada")
        .await
        .unwrap()
        .mobile_phone
        .is_none());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.submit("/portal/account/phone/check", &[("code", wrong)])
        .await;
    assert!(b.error().is_some());
    b.submit("/portal/account/phone/check", &[("code", &code)])
        .await;
    assert!(
        b.notice().is_some_and(|n| n.contains("verified and saved")),
        "{}",
        b.page
    );
    assert_eq!(
        p.engine
            .get_user(&Ctx::cli(), "ada")
            .await
            .unwrap()
            .mobile_phone
            .as_deref(),
        Some("+31687654321")
    );

    // The phone calls go to: proved by a call to the new number.
    b.submit(
        "/portal/account/phone",
        &[("slot", "phone"), ("phone", BACKUP), ("extension", "7")],
    )
    .await;
    let call = last_call(&p);
    assert_eq!(call.field("To"), Some(BACKUP));
    assert_eq!(call.field("SendDigits"), Some("ww7"));
    // Not answered: nothing changes.
    assert_eq!(call.report("no-answer").await, 204);
    b.submit("/portal/account/phone/check", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("not answered")),
        "{:?}",
        b.error()
    );
    assert_eq!(
        p.engine
            .get_user(&Ctx::cli(), "ada")
            .await
            .unwrap()
            .phone
            .as_deref(),
        Some(JAN)
    );
    b.submit(
        "/portal/account/phone",
        &[("slot", "phone"), ("phone", BACKUP), ("extension", "7")],
    )
    .await;
    last_call(&p).answer(&["#"]).await;
    b.submit("/portal/account/phone/check", &[]).await;
    let ada = p.engine.get_user(&Ctx::cli(), "ada").await.unwrap();
    assert_eq!(ada.phone.as_deref(), Some(BACKUP));
    assert_eq!(ada.phone_extension.as_deref(), Some("7"));
}

/// The PIN modes at the portal's second step: the PIN and `#` on a call,
/// the code and the PIN in a reply; wrong PINs on calls pause the user.
async fn pin_modes_and_wrong_pins_on_calls(backend: Backend) {
    let p = Portal::start_with_phones(backend).await;
    p.user("pia").await;
    p.engine.set_pin(&Ctx::cli(), "pia", "4826").await.unwrap();
    patch(
        &p,
        "pia",
        UserPatch {
            phone: Some(JAN.into()),
            default_method: Some("phone_call:pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("pia", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(
        b.has("enter your PIN followed by the pound key"),
        "{}",
        b.page
    );
    let talk = last_call(&p).answer(&["1111#", "4826#"]).await;
    assert!(
        talk.said.iter().any(|s| s.contains("PIN is not correct")),
        "{talk:?}"
    );
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);

    // Two-way with PIN: the reply is the code, then the PIN.
    patch(
        &p,
        "pia",
        UserPatch {
            mobile_phone: Some(JAN.into()),
            default_method: Some("text_message:sms_two_way_otp_plus_pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("pia", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("followed by your PIN"), "{}", b.page);
    let (_, code) = last_code(&p);
    let status = twofold_testkit::twilio::text_in(
        &format!("{}/hooks/twilio/sms", p.server_base),
        JAN,
        "+3197010260001",
        &format!("{code} 4826"),
        twofold_testkit::twilio::AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);

    // A PIN mode chosen in advance without a PIN: the wizard sets up the
    // phone and the PIN together (the call could never pass otherwise).
    p.user("pim").await;
    patch(
        &p,
        "pim",
        UserPatch {
            phone: Some(JAN.into()),
            default_method: Some("phone_call:pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("pim", PASSWORD).await;
    assert!(b.has("Call Me Now to Authenticate"), "{}", b.page);
    assert!(b.has("id=\"pin-confirm\""), "{}", b.page);

    // Wrong PINs on calls count like wrong codes: five in a row pause the
    // user, and the next call is refused without looking at the keys.
    patch(
        &p,
        "pia",
        UserPatch {
            default_method: Some("phone_call:pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("pia", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    last_call(&p).answer(&["1111#", "2222#", "3333#"]).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(
        b.has("id=\"phone-primary\""),
        "back to the buttons: {}",
        b.page
    );
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    last_call(&p).answer(&["4444#", "5555#", "6666#"]).await;
    let pia = p.engine.get_user(&Ctx::cli(), "pia").await.unwrap();
    let failures = p.engine.failures(&Ctx::cli(), "pia").await.unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f.in_a_row >= 5 || f.paused_until.is_some()),
        "{failures:?} {pia:?}"
    );
    let mut b = p.browser();
    b.sign_in("pia", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let talk = last_call(&p).answer(&["4826#"]).await;
    assert!(
        talk.last_said().contains("refused"),
        "the right PIN, but paused: {talk:?}"
    );
}

portal_modes!(
    pin_modes_and_wrong_pins_on_calls,
    changing_numbers_on_the_account_page,
    a_phone_call_from_the_second_step,
    a_text_message_from_the_second_step,
    enrolling_with_call_me_now,
    enrolling_with_a_pin_and_a_text,
);

//! The User Portal's pages for the mobile app (issue 11): "Generate
//! Activation Code" and "Authenticate Me Now" in the enrollment wizard
//! (with the PIN chosen there in a PIN mode), the second step by the app
//! (approved, denied, the wrong number picked), and the devices on the
//! account page — with a test device that activates and answers as the
//! app does, on SQLite and PostgreSQL, with the portal in process and on a
//! separate server.

#[macro_use]
mod common;

use common::{Browser, Portal, PASSWORD};
use serde_json::Value;
use twofold_core::user::{MethodKind, Mode, UserPatch};
use twofold_core::{AdminService, Ctx};
use twofold_testkit::db::Backend;
use twofold_testkit::mobile::TestDevice;

async fn patch(p: &Portal, user: &str, patch: UserPatch) {
    p.engine
        .update_user(&Ctx::cli(), user, patch)
        .await
        .unwrap();
}

fn between(page: &str, a: &str, b: &str) -> Option<String> {
    let start = page.find(a)? + a.len();
    let end = page[start..].find(b)? + start;
    Some(page[start..end].trim().to_string())
}

/// The activation code the page shows, as digits.
fn code_on_page(b: &Browser) -> String {
    let grouped = between(
        &b.page,
        "id=\"activation-code\" class=\"secret\">",
        "</code>",
    )
    .unwrap_or_else(|| panic!("an activation code on the page: {}", b.page));
    assert_eq!(grouped.len(), 14, "grouped in fours: {grouped}");
    grouped.replace(' ', "")
}

/// The number the page asks to pick in the app.
fn number_on_page(b: &Browser) -> u64 {
    between(&b.page, "id=\"app-number\">", "</p>")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number to pick on the page: {}", b.page))
}

/// Another number the app could offer (10..=99), not `n`.
fn other_number(n: u64) -> u64 {
    if n >= 99 {
        10
    } else {
        n + 1
    }
}

/// No raw error, no untranslated key, no server failure on the page.
fn assert_clean(b: &Browser) {
    for raw in [
        "internal error",
        "InvalidInput",
        "Conflict",
        "Forbidden",
        "NotFound",
        ">err-",
        ">app-",
        ">device-",
        ">ok-",
        ">enroll-",
    ] {
        assert!(!b.has(raw), "{raw} on the page: {}", b.page);
    }
}

/// The one request waiting on `device`.
async fn the_request(device: &TestDevice) -> Value {
    let requests = device.pending(5).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests[0].clone()
}

async fn signed_in(b: &mut Browser) -> bool {
    b.open("/portal").await;
    // The account page, which only a signed-in user sees.
    b.has("href=\"/portal/account/token\"")
}

async fn allow_app(p: &Portal) {
    p.set("portal.allow_mobile_app_activation", "true").await;
}

/// A user whose method is the mobile app, enrolled through the wizard
/// (preset by the administrator): the browser, signed in, and the device.
async fn enrolled_with_the_app(p: &Portal, name: &str) -> (Browser, TestDevice) {
    p.user(name).await;
    patch(
        p,
        name,
        UserPatch {
            default_method: Some("mobile_app".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in(name, PASSWORD).await;
    b.submit("/portal/enroll/app/code", &[]).await;
    let mut device = TestDevice::new(&p.server_base);
    let (status, v) = device.activate(&code_on_page(&b)).await;
    assert_eq!(status, 200, "{v}");
    b.submit("/portal/enroll/app", &[]).await;
    let n = number_on_page(&b);
    let r = the_request(&device).await;
    let (status, v) = device
        .answer(r["id"].as_str().unwrap(), "approve", Some(n), None)
        .await;
    assert_eq!(status, 200, "{v}");
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    (b, device)
}

async fn enrolling_with_the_app(backend: Backend) {
    let p = Portal::start(backend).await;
    allow_app(&p).await;
    p.set("portal.allow_select_method", "true").await;
    p.user("eva").await;
    let mut b = p.browser();
    b.sign_in("eva", PASSWORD).await;
    assert!(b.has("value=\"mobile_app\""), "{}", b.page);
    b.submit("/portal/enroll/method", &[("method", "mobile_app")])
        .await;
    assert!(b.has("Generate Activation Code"), "{}", b.page);
    assert!(b.has("Authenticate Me Now"), "{}", b.page);
    assert!(!b.has("id=\"pin-confirm\""), "no PIN in the standard mode");

    // Before the app is activated: said beside the button, nothing started.
    b.submit("/portal/enroll/app", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("No app is activated")),
        "{:?}",
        b.error()
    );
    assert!(b.has("id=\"app-now\""), "{}", b.page);
    assert_clean(&b);

    // The code: grouped, with the service's URL, a QR code drawn inline
    // (no data: URI, no script of its own) and the activation URI.
    b.submit("/portal/enroll/app/code", &[]).await;
    let code = code_on_page(&b);
    assert_eq!(code.len(), 12);
    let url = between(&b.page, "id=\"activation-url\" class=\"uri\">", "</code>").unwrap();
    assert_eq!(url, format!("{}/mobile/v1", p.server_base));
    let uri = between(&b.page, "id=\"activation-uri\" class=\"uri\">", "</code>").unwrap();
    assert!(uri.starts_with("twofold://activate?url="), "{uri}");
    assert!(uri.contains(&format!("code={code}")), "{uri}");
    assert!(b.has("<svg aria-hidden=\"true\""), "an inline QR code");
    assert!(!b.has("data:image"), "no data URI for the app's QR code");
    assert!(b.has("id=\"activation-expires\""));
    assert!(p
        .audit_results("eva")
        .await
        .iter()
        .any(|r| r == "SUCCESS_ACTIVATION_CODE"));
    // Nothing saved yet.
    let eva = p.engine.get_user(&Ctx::cli(), "eva").await.unwrap();
    assert!(eva.default_method.is_none());

    let mut device = TestDevice::new(&p.server_base);
    let (status, v) = device.activate(&code).await;
    assert_eq!(status, 200, "{v}");
    b.submit("/portal/enroll/app", &[]).await;
    assert!(b.has("data-wait"), "the page continues by itself");
    assert!(b.has("pick this number"), "{}", b.page);
    let n = number_on_page(&b);
    assert!((10..=99).contains(&n));
    // Continue before the app answers: still waiting, no error.
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert_eq!(number_on_page(&b), n);
    assert!(b.error().is_none(), "{:?}", b.error());
    let r = the_request(&device).await;
    let (status, v) = device
        .answer(r["id"].as_str().unwrap(), "approve", Some(n), None)
        .await;
    assert_eq!(status, 200, "{v}");
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert!(
        b.notice().is_some_and(|n| n.contains("set up")),
        "{}",
        b.page
    );
    assert!(signed_in(&mut b).await, "{}", b.page);
    assert_clean(&b);
    let eva = p.engine.get_user(&Ctx::cli(), "eva").await.unwrap();
    let method = eva.default_method.unwrap();
    assert_eq!(method.method, MethodKind::MobileApp);
    assert_eq!(method.mode, Mode::PhoneAppStandard);

    // The next sign-in asks the app.
    let mut b = p.browser();
    b.sign_in("eva", PASSWORD).await;
    assert!(b.has("Send a request to my app"), "{}", b.page);
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let n = number_on_page(&b);
    let r = the_request(&device).await;
    device
        .answer(r["id"].as_str().unwrap(), "approve", Some(n), None)
        .await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    assert!(p
        .audit_results("eva")
        .await
        .iter()
        .any(|r| r == "SUCCESS_MOBILE_APP"));
}

async fn enrolling_with_the_app_and_a_pin(backend: Backend) {
    let p = Portal::start(backend).await;
    allow_app(&p).await;
    p.user("ola").await;
    patch(
        &p,
        "ola",
        UserPatch {
            default_method: Some("mobile_app:phone_app_pin".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("ola", PASSWORD).await;
    assert!(b.has("Authenticate Me Now"), "{}", b.page);
    assert!(
        b.has("id=\"pin-confirm\""),
        "the PIN is chosen with the app"
    );
    b.submit("/portal/enroll/app/code", &[]).await;
    let mut device = TestDevice::new(&p.server_base);
    let (status, v) = device.activate(&code_on_page(&b)).await;
    assert_eq!(status, 200, "{v}");

    // PINs that differ, or a PIN the rules refuse: said beside the PIN,
    // nothing asked of the app.
    b.submit(
        "/portal/enroll/app",
        &[("pin", "4826"), ("pin-confirm", "4827")],
    )
    .await;
    assert!(
        b.error().is_some_and(|e| e.contains("not the same")),
        "{:?}",
        b.error()
    );
    b.submit(
        "/portal/enroll/app",
        &[("pin", "1234"), ("pin-confirm", "1234")],
    )
    .await;
    assert!(
        b.error().is_some_and(|e| e.contains("sequence")),
        "{:?}",
        b.error()
    );
    assert!(b.has("aria-invalid=\"true\""), "beside the PIN: {}", b.page);
    assert!(device.pending(0).await.is_empty(), "nothing asked");
    assert_clean(&b);

    b.submit(
        "/portal/enroll/app",
        &[("pin", "4826"), ("pin-confirm", "4826")],
    )
    .await;
    assert!(b.has("type your PIN"), "{}", b.page);
    let n = number_on_page(&b);
    let r = the_request(&device).await;
    assert_eq!(r["pin_required"], Value::Bool(true), "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    // A wrong PIN in the app: the request waits for the right one.
    device.answer(&id, "approve", Some(n), Some("1111")).await;
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert!(!signed_in(&mut b).await);
    assert_eq!(number_on_page(&b), n, "still waiting: {}", b.page);
    let (status, v) = device.answer(&id, "approve", Some(n), Some("4826")).await;
    assert_eq!(status, 200, "{v}");
    b.submit("/portal/enroll/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    let ola = p.engine.get_user(&Ctx::cli(), "ola").await.unwrap();
    assert_eq!(ola.default_method.unwrap().mode, Mode::PhoneAppPin);

    // Signing in: wrong PINs in the app until the request is refused,
    // which the page says; then the PIN chosen at enrollment.
    let mut b = p.browser();
    b.sign_in("ola", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("type your PIN"), "{}", b.page);
    let n = number_on_page(&b);
    let id = the_request(&device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for wrong in ["1111", "2222", "3333"] {
        device.answer(&id, "approve", Some(n), Some(wrong)).await;
    }
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("PIN")),
        "{:?} {}",
        b.error(),
        b.page
    );
    assert!(
        b.has("id=\"app-request\""),
        "back to the button: {}",
        b.page
    );
    assert_clean(&b);
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let n = number_on_page(&b);
    let id = the_request(&device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    device.answer(&id, "approve", Some(n), Some("4826")).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
}

async fn signing_in_with_the_app(backend: Backend) {
    let p = Portal::start(backend).await;
    allow_app(&p).await;
    let (_, device) = enrolled_with_the_app(&p, "kim").await;

    // Denied in the app: back to the button, saying so.
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    assert!(b.has("approve the sign-in in the mobile app"), "{}", b.page);
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let id = the_request(&device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    device.answer(&id, "deny", None, None).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("denied")),
        "{:?}",
        b.error()
    );
    assert!(b.has("id=\"app-request\""), "{}", b.page);
    assert!(!signed_in(&mut b).await);
    assert_clean(&b);

    // The wrong number picked: refused, saying so.
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let n = number_on_page(&b);
    let id = the_request(&device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    device
        .answer(&id, "approve", Some(other_number(n)), None)
        .await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("not the one")),
        "{:?}",
        b.error()
    );
    assert!(!signed_in(&mut b).await);
    assert_clean(&b);

    // "Send a new request" while one waits: the page shows the new number,
    // and only the new request signs in.
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("Send a new request"), "{}", b.page);
    let old = the_request(&device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let n = number_on_page(&b);
    let requests = device.pending(5).await;
    let newest = requests
        .iter()
        .find(|r| r["id"] != old.as_str())
        .expect("a new request");
    device
        .answer(newest["id"].as_str().unwrap(), "approve", Some(n), None)
        .await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{:?} {requests:?}", b.error());

    // In the user's language.
    patch(
        &p,
        "kim",
        UserPatch {
            language: Some("nl".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = p.browser();
    b.sign_in("kim", PASSWORD).await;
    assert!(b.has("Stuur een verzoek naar mijn app"), "{}", b.page);
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    assert!(b.has("kies dit getal"), "{}", b.page);
    assert_clean(&b);
}

async fn devices_on_the_account_page(backend: Backend) {
    let p = Portal::start(backend).await;
    allow_app(&p).await;
    p.set("portal.max_mobile_devices", "2").await;
    let (mut b, first) = enrolled_with_the_app(&p, "ada").await;
    assert!(b.has("id=\"h-app\""), "{}", b.page);
    assert!(b.has("Test phone"), "{}", b.page);
    assert!(b.has("activated "), "{}", b.page);
    assert!(
        b.has("last used "),
        "it approved the enrollment: {}",
        b.page
    );
    let first_id = first.device_id.clone().unwrap();
    assert!(b.has(&format!("value=\"{first_id}\"")));

    // The only device of a user whose method is the app: refused.
    b.submit("/portal/account/device/remove", &[("device", &first_id)])
        .await;
    assert!(
        b.error().is_some_and(|e| e.contains("only device")),
        "{:?}",
        b.error()
    );
    assert!(b.has(&format!("value=\"{first_id}\"")), "still listed");
    assert_clean(&b);

    // A second device, activated from the account page.
    b.submit("/portal/account/app/code", &[]).await;
    let code = code_on_page(&b);
    assert!(b.has("id=\"activation-uri\""));
    let mut second = TestDevice::new(&p.server_base);
    let (status, v) = second.activate(&code).await;
    assert_eq!(status, 200, "{v}");
    b.open("/portal").await;
    assert!(!b.has("id=\"activation-code\""), "the code was used");
    let second_id = second.device_id.clone().unwrap();
    assert!(b.has(&format!("value=\"{second_id}\"")), "{}", b.page);
    assert!(b.has("not used yet"), "{}", b.page);
    // At the limit: no more codes, and saying why.
    assert!(!b.has("id=\"app-generate\""), "{}", b.page);
    assert!(b.has("id=\"app-limit\""), "{}", b.page);
    b.submit("/portal/account/app/code", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("as many devices")),
        "{:?}",
        b.error()
    );
    assert_clean(&b);

    // Two devices: the first can go.
    b.submit("/portal/account/device/remove", &[("device", &first_id)])
        .await;
    assert!(
        b.notice().is_some_and(|n| n.contains("removed")),
        "{}",
        b.page
    );
    assert!(!b.has(&format!("value=\"{first_id}\"")));
    assert!(b.has(&format!("value=\"{second_id}\"")));
    assert!(b.has("id=\"app-generate\""), "below the limit again");
    // An unknown device: a plain message, no failure.
    b.submit(
        "/portal/account/device/remove",
        &[("device", "0123456789abcdef0123456789abcdef")],
    )
    .await;
    assert!(b.error().is_some(), "{}", b.page);
    assert_clean(&b);
    // And the last one not.
    b.submit("/portal/account/device/remove", &[("device", &second_id)])
        .await;
    assert!(
        b.error().is_some_and(|e| e.contains("only device")),
        "{:?}",
        b.error()
    );

    // The remaining device signs in.
    let mut b = p.browser();
    b.sign_in("ada", PASSWORD).await;
    b.submit("/portal/verify/phone", &[("phone", "primary")])
        .await;
    let n = number_on_page(&b);
    let id = the_request(&second).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    second.answer(&id, "approve", Some(n), None).await;
    b.submit("/portal/verify/phone/check", &[]).await;
    assert!(signed_in(&mut b).await, "{}", b.page);
}

async fn activation_refused_when_switched_off(backend: Backend) {
    let p = Portal::start(backend).await;
    p.set("portal.selectable_methods", "oath_token").await;
    p.user("bob").await;
    let mut b = p.browser();
    b.sign_in("bob", PASSWORD).await;
    assert!(!b.has("value=\"mobile_app\""), "{}", b.page);
    assert!(!b.has("Generate Activation Code"));
    b.submit("/portal/enroll/app/code", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("switched off")),
        "{:?}",
        b.error()
    );
    assert_clean(&b);
    b.submit("/portal/enroll/app", &[]).await;
    assert!(b.error().is_some(), "{}", b.page);
    assert_clean(&b);

    // Enrolled with an authenticator: no app section, and no code.
    b.submit("/portal/enroll/oath/new", &[]).await;
    let secret = b.secret();
    b.submit(
        "/portal/enroll/oath/confirm",
        &[("code", &p.totp(&secret, 0))],
    )
    .await;
    assert!(signed_in(&mut b).await, "{}", b.page);
    assert!(!b.has("id=\"h-app\""), "{}", b.page);
    b.submit("/portal/account/app/code", &[]).await;
    assert!(
        b.error().is_some_and(|e| e.contains("switched off")),
        "{:?}",
        b.error()
    );
    assert!(!b.has("id=\"activation-code\""));
    assert_clean(&b);
    assert!(p
        .audit_results("bob")
        .await
        .iter()
        .all(|r| r != "SUCCESS_ACTIVATION_CODE"));
}

portal_modes!(
    enrolling_with_the_app,
    enrolling_with_the_app_and_a_pin,
    signing_in_with_the_app,
    devices_on_the_account_page,
    activation_refused_when_switched_off,
);

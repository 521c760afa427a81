//! The Twilio-compatible adapter against the provider emulator on a
//! loopback port: what a text message and a call send, and every fault a
//! provider can have — wrong credentials, a refusal, a 5xx, no answer —
//! as `Unavailable` with nothing of the provider's body.

use twofold_core::ports::{Delivery, Outgoing};
use twofold_core::Error;
use twofold_delivery::{Twilio, TwilioConfig};
use twofold_testkit::twilio::{TwilioEmulator, ACCOUNT_SID, AUTH_TOKEN};

fn config(emu: &TwilioEmulator) -> TwilioConfig {
    TwilioConfig {
        base_url: emu.base_url.clone(),
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.to_string().into(),
        from: "+3197010260001".into(),
    }
}

fn sms() -> Outgoing {
    Outgoing::Sms {
        to: "+31612345678".into(),
        text: "Your code: 482913".into(),
    }
}

#[tokio::test]
async fn a_text_message_reaches_the_provider() {
    let emu = TwilioEmulator::start().await;
    let twilio = Twilio::new(config(&emu)).unwrap();
    let sid = twilio.send(&sms()).await.unwrap();
    let sent = emu.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sid, sid);
    assert!(sid.starts_with("SM"));
    assert_eq!(sent[0].to, "+31612345678");
    assert_eq!(sent[0].from, "+3197010260001");
    assert_eq!(sent[0].body, "Your code: 482913");
}

#[tokio::test]
async fn a_call_points_the_provider_at_the_challenges_webhook() {
    let emu = TwilioEmulator::start().await;
    let twilio = Twilio::new(config(&emu)).unwrap();
    let call = Outgoing::VoiceCall {
        to: "+31207948261".into(),
        extension: Some("42".into()),
        language: "nl".into(),
        challenge_id: "ch_7Hq2".into(),
        hooks_base: "https://mfa.example.org/".into(),
    };
    let sid = twilio.send(&call).await.unwrap();
    let placed = emu.calls();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].sid, sid);
    assert_eq!(placed[0].field("To"), Some("+31207948261"));
    assert_eq!(placed[0].field("From"), Some("+3197010260001"));
    assert_eq!(
        placed[0].field("Url"),
        Some("https://mfa.example.org/hooks/twilio/voice/ch_7Hq2")
    );
    assert_eq!(
        placed[0].field("StatusCallback"),
        Some("https://mfa.example.org/hooks/twilio/status/ch_7Hq2")
    );
    assert_eq!(placed[0].field("SendDigits"), Some("ww42"));
    // Without an extension nothing is dialled after connecting.
    let call = Outgoing::VoiceCall {
        to: "+31207948261".into(),
        extension: None,
        language: "en".into(),
        challenge_id: "ch_8".into(),
        hooks_base: "https://mfa.example.org".into(),
    };
    twilio.send(&call).await.unwrap();
    assert_eq!(emu.calls()[1].field("SendDigits"), None);
}

fn unavailable(e: Error) -> String {
    match e {
        Error::Unavailable(m) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn faults_are_unavailable_and_never_carry_the_providers_body() {
    let emu = TwilioEmulator::start().await;
    let mut wrong = config(&emu);
    wrong.auth_token = "not-the-token".to_string().into();
    let m = unavailable(Twilio::new(wrong).unwrap().send(&sms()).await.unwrap_err());
    assert!(m.contains("HTTP 401"), "{m}");

    let twilio = Twilio::new(config(&emu)).unwrap();
    for status in [400, 500, 503] {
        emu.fail_with(Some(status));
        let m = unavailable(twilio.send(&sms()).await.unwrap_err());
        assert!(m.contains(&format!("HTTP {status}")), "{m}");
        assert!(
            !m.contains("script") && !m.contains("internal server"),
            "{m}"
        );
    }
    emu.fail_with(None);
    assert!(emu.messages().is_empty());
    twilio.send(&sms()).await.unwrap();
    assert_eq!(emu.messages().len(), 1);
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out() {
    let emu = TwilioEmulator::start().await;
    let twilio = Twilio::new(config(&emu)).unwrap();
    emu.hang(true);
    let started = std::time::Instant::now();
    let m = unavailable(twilio.send(&sms()).await.unwrap_err());
    assert!(m.contains("did not answer"), "{m}");
    // Bounded by the adapter's timeout, not the test's patience.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn a_provider_that_is_down_is_unavailable() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let emu = TwilioEmulator::start().await;
    let mut c = config(&emu);
    c.base_url = format!("http://{addr}");
    let m = unavailable(Twilio::new(c).unwrap().send(&sms()).await.unwrap_err());
    assert!(m.contains("did not answer"), "{m}");
}

#[test]
fn configurations_that_would_leak_or_fail_are_refused() {
    let base = TwilioConfig {
        base_url: "https://api.twilio.com".into(),
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.to_string().into(),
        from: "+3197010260001".into(),
    };
    assert!(base.check().is_ok());
    let refused = |f: &dyn Fn(&mut TwilioConfig), field: &str| {
        let mut c = base.clone();
        f(&mut c);
        match c.check() {
            Err(Error::InvalidInput { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    };
    refused(
        &|c| c.base_url = "http://api.twilio.com".into(),
        "twilio.base_url",
    );
    refused(&|c| c.base_url = "not a url".into(), "twilio.base_url");
    refused(&|c| c.account_sid = " ".into(), "twilio.account_sid");
    refused(
        &|c| c.auth_token = String::new().into(),
        "twilio.auth_token",
    );
    refused(&|c| c.from = String::new(), "twilio.from");
    let mut local = base.clone();
    local.base_url = "http://127.0.0.1:9999".into();
    assert!(local.check().is_ok());
    // The token never shows in debug output.
    assert!(!format!("{base:?}").contains(AUTH_TOKEN));
}

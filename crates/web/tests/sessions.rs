//! Portal sessions cost a stored row only once there is something to keep
//! (a password checked): anonymous visitors — the sign-in page, a language
//! choice, a refused form, a wrong password — are carried in their cookie,
//! so a flood of cookie-less requests cannot fill the sessions table. The
//! CSRF check holds all the same.

#[macro_use]
mod common;

use common::{Portal, PASSWORD};
use reqwest::header::SET_COOKIE;
use twofold_testkit::db::Backend;

/// How many sessions are stored: every session expires within a day, so a
/// purge a day and a half later removes (and counts) them all.
async fn stored_sessions(p: &Portal) -> u64 {
    p.advance(36 * 3600);
    p.engine.purge_sessions().await.unwrap()
}

async fn anonymous_visitors_cost_no_rows(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;

    // Cookie-less visits to the sign-in page, as a flood would make them.
    for _ in 0..50 {
        let b = p.browser();
        let res = b
            .client
            .get(format!("{}/portal", p.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
        for attribute in ["__Host-twofold=", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
    }
    // Cookie-less form posts start over, and store nothing either.
    for _ in 0..10 {
        let mut b = p.browser();
        let posted = b
            .post_raw("/portal/sign-in", &[("username", "jan"), ("password", "x")])
            .await;
        assert_eq!(posted.refusal.as_deref(), Some("csrf"));
    }

    // One visitor: a language chosen, a wrong password refused with the
    // message in that language, all without a stored session.
    let mut b = p.browser();
    b.open("/portal/lang/nl").await;
    b.open("/portal").await;
    assert!(b.has("<html lang=\"nl\">"), "{}", b.page);
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", "wrong")],
    )
    .await;
    assert_eq!(
        b.error().as_deref(),
        Some("De gebruikersnaam of het wachtwoord klopt niet.")
    );
    b.open("/portal").await;
    assert_eq!(b.error(), None, "a message is shown once");

    // The form's token must be this visitor's: another visitor's is refused.
    let mut other = p.browser();
    other.open("/portal").await;
    let theirs = other.csrf();
    assert_ne!(theirs, b.csrf());
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

    assert_eq!(
        stored_sessions(&p).await,
        0,
        "anonymous visitors stored sessions"
    );

    // Past the password there is something to keep: one session, and the
    // language chosen before comes along.
    b.open("/portal").await;
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(b.h1(), "Uw account instellen", "{}", b.page);
    assert_eq!(stored_sessions(&p).await, 1);
}

/// A stored session that falls back to anonymous (signing out) gives its
/// row up.
async fn signing_out_gives_the_row_up(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Set up your account");
    b.submit("/portal/sign-out", &[]).await;
    assert!(b.notice().is_some(), "{}", b.page);
    assert_eq!(stored_sessions(&p).await, 0);
    // And the sign-in form still works afterwards.
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Set up your account");
}

portal_modes!(
    anonymous_visitors_cost_no_rows,
    signing_out_gives_the_row_up
);

//! Signing in: the sign-in form, the second step (method, OATH fallback or
//! security questions) and signing out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use twofold_core::portal::{Proof, SecondStep, SignIn, Skip, Verified};
use twofold_core::{Ctx, Error};

use super::extract::{csrf_failure, PortalPost, Req};
use super::pages::{SignInPage, VerifyPage};
use super::session::{Flash, Session, Stage, MAX_SIGNED_IN_SECONDS};
use super::{finish, html, now, refused, text, unavailable, Messages, LANGUAGES};
use crate::AppState;

/// The sign-in form of an anonymous session.
pub(super) async fn sign_in_page(
    state: &AppState,
    req: &Req,
    m: &Messages,
) -> Result<Response, Error> {
    let t = req.tr(None);
    let allowed = state
        .service
        .portal_settings(&Ctx::portal_visitor(Some(req.ip)))
        .await?
        .allow_login;
    let page = SignInPage {
        t: &t,
        title: &t.t("title-sign-in"),
        csrf: &req.session.data.csrf,
        signed_in: false,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        languages: LANGUAGES,
        login_allowed: allowed,
    };
    Ok(html(page.render()))
}

/// The second step of a session past its password.
pub(super) fn verify_page(req: &Req, m: &Messages, username: &str, step: &SecondStep) -> Response {
    let t = req.tr(None);
    let page = VerifyPage {
        t: &t,
        title: &t.t("title-verify"),
        csrf: &req.session.data.csrf,
        signed_in: false,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        languages: LANGUAGES,
        username,
        step,
    };
    html(page.render())
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let username = req.field("username");
    let password = req.field("password");
    let ctx = req.ctx(username.trim());
    let outcome = match state.service.begin_sign_in(&ctx, &username, password).await {
        Ok(o) => o,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    req.session.rotate();
    match outcome {
        SignIn::Rejected => req.session.data.error = Some(Flash::new("err-credentials")),
        SignIn::Blocked { .. } => req.session.data.error = Some(Flash::new("err-blocked")),
        SignIn::LoginDisabled => req.session.data.error = Some(Flash::new("login-disabled")),
        SignIn::NotEnrolled { .. } => req.session.data.error = Some(Flash::new("err-not-enrolled")),
        SignIn::Complete { user, skip } => {
            req.session.data.notice = Some(Flash::new(match skip {
                Skip::Bypass => "ok-bypass-used",
                Skip::TrustedIp => "ok-trusted-ip",
            }));
            req.session.data.stage = Stage::SignedIn {
                username: user.username,
                expires_at: now() + MAX_SIGNED_IN_SECONDS,
                token_setup: None,
            };
        }
        SignIn::SecondStep { user, step } => {
            req.session.data.stage = Stage::Verify {
                username: user.username,
                step,
            };
        }
        SignIn::Enroll { user } => {
            req.session.data.stage = Stage::Enroll {
                username: user.username,
                method: None,
                pending: None,
                confirmed: None,
            };
        }
    }
    finish(&state, req, "/portal").await
}

pub(super) async fn verify(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Verify { username, step } = req.session.data.stage.clone() else {
        return csrf_failure(&state, req).await;
    };
    let (proof, code, answers) = match req.field("proof").as_str() {
        // A mode with a PIN takes the PIN in front of the code, as the SDK does.
        "method" => (
            Proof::Method,
            Some(format!(
                "{}{}",
                req.field("pin").trim(),
                req.field("code").trim()
            )),
            vec![],
        ),
        "oath_fallback" => (Proof::OathFallback, Some(req.field("code")), vec![]),
        "security_questions" => {
            let answers = step
                .fallback_questions
                .iter()
                .map(|q| (q.id, req.field(&format!("q-{}", q.id))))
                .collect();
            (Proof::SecurityQuestions, None, answers)
        }
        _ => return (StatusCode::BAD_REQUEST, "unknown proof").into_response(),
    };
    let ctx = req.ctx(&username);
    match state
        .service
        .verify(&ctx, &username, proof, code, answers)
        .await
    {
        Ok(Verified::Accepted {
            user,
            session_minutes,
        }) => {
            let max = session_minutes.map_or(MAX_SIGNED_IN_SECONDS, |m| i64::from(m) * 60);
            req.session.rotate();
            req.session.data.stage = Stage::SignedIn {
                username: user.username,
                expires_at: now() + max,
                token_setup: None,
            };
            finish(&state, req, "/portal").await
        }
        Ok(Verified::Rejected { locked }) => {
            if locked {
                req.session.rotate();
                req.session.data.stage = Stage::Anonymous;
                req.session.data.error = Some(Flash::new("err-locked"));
            } else {
                req.session.data.error = Some(Flash::new(if proof == Proof::SecurityQuestions {
                    "err-answers"
                } else {
                    "err-code"
                }));
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let lang = req.session.data.lang.clone();
    let old = std::mem::replace(&mut req.session, Session::fresh());
    if let Err(e) = old
        .destroy(state.service.as_ref(), &Ctx::portal_visitor(Some(req.ip)))
        .await
    {
        return unavailable(&req.tr(None), &e);
    }
    req.session.data.lang = lang;
    req.session.data.notice = Some(Flash::new("ok-signed-out"));
    finish(&state, req, "/portal").await
}

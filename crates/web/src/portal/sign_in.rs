//! Signing in: the sign-in form, the second step (method, OATH fallback or
//! security questions) and signing out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use twofold_core::challenge::{ChallengeReason, ChallengeState, PhoneChoice, Prompt};
use twofold_core::passed::PassedVia;
use twofold_core::portal::{Proof, SecondStep, SignIn, Skip, Verified};
use twofold_core::user::MethodKind;
use twofold_core::{Ctx, Error};

use super::enroll::pin_mismatch;
use super::extract::{csrf_failure, PortalPost, Req};
use super::pages::{ChoosePinPage, SignInPage, VerifyPage};
use super::session::{set_cookie, Flash, PhoneWait, Session, Stage, MAX_SIGNED_IN_SECONDS};
use super::{finish, html, now, refused, text, unavailable, Messages};
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
        error_field: m.error_field(&["password"]),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: false,
        login_allowed: allowed,
    };
    Ok(html(page.render()))
}

/// The second step of a session past its password, in the user's
/// language (kept in the session since the password step).
pub(super) fn verify_page(
    req: &Req,
    m: &Messages,
    step: &SecondStep,
    phone: Option<&PhoneWait>,
) -> Response {
    let t = req.tr(None);
    let page = VerifyPage {
        t: &t,
        title: &t.t("title-verify"),
        csrf: &req.session.data.csrf,
        signed_in: false,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        error_field: m.error_field(&["code", "fallback-code", "answers", "app"]),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: false,
        step,
        by_phone: matches!(
            step.method.method,
            MethodKind::PhoneCall | MethodKind::TextMessage
        ),
        by_app: step.method.method == MethodKind::MobileApp,
        phone,
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
        // A name no account can have (control characters): to the person,
        // just wrong credentials, as an unknown name is.
        Err(Error::InvalidInput { field, .. }) if field == "username" => SignIn::Rejected,
        // The directory (or the MFA server behind a separate portal) did
        // not answer: said on the sign-in page, the name kept, and nothing
        // counted against the user.
        Err(Error::Unavailable(e)) => {
            tracing::warn!(error = %e, "password could not be checked");
            req.session.data.error = Some(Flash::new("err-password-unchecked"));
            req.session.data.echo = vec![("username".into(), username)]
                .into_iter()
                .filter(|(_, u)| u.len() <= 256 && !u.chars().any(char::is_control))
                .collect();
            return finish(&state, req, "/portal").await;
        }
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    req.session.rotate();
    // From here on, the pages speak the user's saved language (unless this
    // browser chose one).
    if let Some(user) = outcome.user() {
        req.session.data.user_lang.clone_from(&user.language);
    }
    match outcome {
        SignIn::Rejected => {
            req.session.data.error = Some(Flash::new("err-credentials"));
            // The username stays in the form; the password never does.
            req.session.data.echo = vec![("username".into(), username)]
                .into_iter()
                .filter(|(_, u)| u.len() <= 256 && !u.chars().any(char::is_control))
                .collect();
        }
        SignIn::Blocked { .. } => req.session.data.error = Some(Flash::new("err-blocked")),
        SignIn::LoginDisabled => req.session.data.error = Some(Flash::new("login-disabled")),
        SignIn::NotEnrolled { .. } => req.session.data.error = Some(Flash::new("err-not-enrolled")),
        SignIn::Complete { user, skip } => {
            req.session.data.notice = Some(Flash::new(match skip {
                Skip::Bypass => "ok-bypass-used",
                Skip::TrustedIp => "ok-trusted-ip",
            }));
            req.session.data.via = Some(match skip {
                Skip::Bypass => PassedVia::Bypass,
                Skip::TrustedIp => PassedVia::TrustedIp,
            });
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
                phone: None,
            };
        }
        SignIn::Enroll { user } => {
            req.session.data.stage = Stage::Enroll {
                username: user.username,
                method: None,
                pending: None,
                confirmed: None,
                phone: None,
            };
        }
    }
    finish(&state, req, "/portal").await
}

pub(super) async fn verify(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Verify { username, step, .. } = req.session.data.stage.clone() else {
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
            choose_pin,
        }) => {
            verified(&mut req, user.username, session_minutes, choose_pin);
            finish(&state, req, "/portal").await
        }
        Ok(Verified::Rejected {
            locked,
            attempts_left,
            paused_seconds,
            ..
        }) => {
            if locked {
                req.session.rotate();
                req.session.data.stage = Stage::Anonymous;
                req.session.data.error = Some(Flash::new("err-locked"));
            } else if let Some(seconds) = paused_seconds {
                // This wrong attempt started a pause: say so, and until when.
                req.session.data.error = Some(Flash::with("err-paused", "seconds", &seconds));
            } else {
                req.session.data.error = Some(Flash::new(rejection_key(
                    proof,
                    step.method.mode.needs_pin() && !step.choose_pin,
                    attempts_left == Some(1),
                )));
            }
            finish(&state, req, "/portal").await
        }
        // Only a call or text waits; `verify` never does.
        Ok(Verified::Waiting { .. }) => finish(&state, req, "/portal").await,
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// "Call me" / "Text me" (and the backup phone's buttons): places the call
/// or sends the text, and the second step then waits for it.
pub(super) async fn verify_phone(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Verify { username, step, .. } = req.session.data.stage.clone() else {
        return csrf_failure(&state, req).await;
    };
    let choice = if req.field("phone") == "backup" {
        PhoneChoice::Backup
    } else {
        PhoneChoice::Primary
    };
    let ctx = req.ctx(&username);
    match state.service.call_or_text(&ctx, &username, choice).await {
        Ok(a) => {
            match (a.id, a.state) {
                (Some(challenge), ChallengeState::Pending) => {
                    req.session.data.stage = Stage::Verify {
                        username,
                        step,
                        phone: Some(PhoneWait {
                            challenge,
                            prompt: a.prompt.unwrap_or(Prompt::PhoneCall),
                            phone: a.phone,
                            number: a.number,
                        }),
                    };
                }
                _ => {
                    req.session.data.error = Some(if step.method.method == MethodKind::MobileApp {
                        app_refusal(a.reason, false)
                    } else {
                        phone_refusal(a.reason)
                    });
                }
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// "Continue" after answering the phone (the page waits up to 8 seconds
/// for the decision), or the code of a one-way text message typed in.
pub(super) async fn verify_phone_check(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Verify {
        username,
        step,
        phone: Some(wait),
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
    let code = if wait.prompt == Prompt::Passcode {
        // A mode with a PIN takes the PIN in front of the code, as the SDK does.
        Some(format!(
            "{}{}",
            req.field("pin").trim(),
            req.field("code").trim()
        ))
    } else {
        None
    };
    let patience = code.is_none().then_some(PHONE_PATIENCE);
    let ctx = req.ctx(&username);
    match state
        .service
        .verify_phone(&ctx, &username, &wait.challenge, code, patience)
        .await
    {
        Ok(Verified::Accepted {
            user,
            session_minutes,
            choose_pin,
        }) => {
            verified(&mut req, user.username, session_minutes, choose_pin);
            finish(&state, req, "/portal").await
        }
        Ok(Verified::Waiting { reason, .. }) => {
            if wait.prompt == Prompt::MobileApp {
                // A wrong PIN typed in the app: it asks again.
                if reason.is_some() {
                    req.session.data.error = Some(Flash::new("err-app-pin-retry"));
                }
            } else if let Some(r) = reason {
                let with_pin = step.method.mode.needs_pin();
                req.session.data.error =
                    Some(Flash::new(if r == ChallengeReason::WrongPin || with_pin {
                        "err-code-pin"
                    } else {
                        "err-code"
                    }));
            }
            finish(&state, req, "/portal").await
        }
        Ok(Verified::Rejected { locked, reason, .. }) => {
            if locked {
                req.session.rotate();
                req.session.data.stage = Stage::Anonymous;
                req.session.data.error = Some(Flash::new("err-locked"));
            } else {
                // Back to the buttons (and the fallbacks), saying why.
                req.session.data.stage = Stage::Verify {
                    username,
                    step,
                    phone: None,
                };
                req.session.data.error = Some(refusal_for(wait.prompt, reason, false));
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// How long "Continue" waits for a call's or reply's decision: under
/// the 10 seconds a portal on a separate server waits for the MFA server.
pub(super) const PHONE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(8);

/// What a call or text that did not verify says, by its reason.
pub(super) fn phone_refusal(reason: Option<ChallengeReason>) -> Flash {
    Flash::new(match reason {
        Some(ChallengeReason::NoAnswer) => "err-phone-no-answer",
        Some(ChallengeReason::FraudReported) => "err-phone-fraud",
        Some(ChallengeReason::ProviderError) => "err-phone-provider",
        Some(ChallengeReason::RateLimited) => "err-phone-rate-limited",
        Some(ChallengeReason::NoPhone) => "err-phone-no-phone",
        Some(ChallengeReason::Expired) => "err-phone-expired",
        Some(ChallengeReason::WrongPin | ChallengeReason::TooManyAttempts) => "err-phone-wrong",
        Some(ChallengeReason::UserLocked | ChallengeReason::UserDisabled) => "err-blocked",
        _ => "err-phone-failed",
    })
}

/// What a request to the mobile app that did not verify says, by its
/// reason; `enrolling`: in the wizard, where the app is being activated.
pub(super) fn app_refusal(reason: Option<ChallengeReason>, enrolling: bool) -> Flash {
    Flash::new(match reason {
        Some(ChallengeReason::Denied) => "err-app-denied",
        Some(ChallengeReason::WrongNumber) => "err-app-wrong-number",
        Some(ChallengeReason::NoDevice) if enrolling => "err-app-not-activated",
        Some(ChallengeReason::NoDevice) => "err-app-no-device",
        Some(ChallengeReason::FraudReported) => "err-app-fraud",
        Some(ChallengeReason::Expired) => "err-app-expired",
        Some(
            ChallengeReason::WrongPin
            | ChallengeReason::PinNotSet
            | ChallengeReason::TooManyAttempts,
        ) => "err-app-wrong-pin",
        Some(ChallengeReason::UserLocked | ChallengeReason::UserDisabled) => "err-blocked",
        _ => "err-app-failed",
    })
}

/// A refusal of what `prompt` asked: the app's words or the phone's.
pub(super) fn refusal_for(
    prompt: Prompt,
    reason: Option<ChallengeReason>,
    enrolling: bool,
) -> Flash {
    if prompt == Prompt::MobileApp {
        app_refusal(reason, enrolling)
    } else {
        phone_refusal(reason)
    }
}

/// A passed second step: a new session id, signed in for at most
/// `session_minutes` (or the portal's maximum) — or first to the PIN page,
/// when the mode needs a PIN not chosen yet.
fn verified(req: &mut Req, username: String, session_minutes: Option<u32>, choose_pin: bool) {
    let max = session_minutes.map_or(MAX_SIGNED_IN_SECONDS, |m| i64::from(m) * 60);
    req.session.rotate();
    req.session.data.via = Some(PassedVia::SecondStep);
    req.session.data.verified_at = Some(now());
    req.session.data.stage = if choose_pin {
        Stage::ChoosePin {
            username,
            expires_at: now() + max,
        }
    } else {
        Stage::SignedIn {
            username,
            expires_at: now() + max,
            token_setup: None,
        }
    };
}

/// What a rejected second step says: which proof failed, without telling
/// a guesser whether the PIN or the code was wrong, and whether one more
/// wrong attempt pauses signing in.
fn rejection_key(proof: Proof, with_pin: bool, last: bool) -> &'static str {
    match (proof, with_pin, last) {
        (Proof::SecurityQuestions, _, false) => "err-answers",
        (Proof::SecurityQuestions, _, true) => "err-answers-last",
        (Proof::OathFallback, _, false) => "err-fallback-code",
        (Proof::OathFallback, _, true) => "err-fallback-code-last",
        (Proof::Method, true, false) => "err-code-pin",
        (Proof::Method, true, true) => "err-code-pin-last",
        (Proof::Method, false, false) => "err-code",
        (Proof::Method, false, true) => "err-code-last",
    }
}

/// The PIN page of a user verified by the code alone: their mode needs a
/// PIN they have not chosen yet.
pub(super) async fn choose_pin_page(
    state: &AppState,
    req: &Req,
    m: &Messages,
    username: &str,
) -> Result<Response, Error> {
    let a = state.service.account(&req.ctx(username), username).await?;
    let t = req.tr(a.user.language.as_deref());
    let page = ChoosePinPage {
        t: &t,
        title: &t.t("title-choose-pin"),
        csrf: &req.session.data.csrf,
        signed_in: true,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        error_field: m.error_field(&["pin"]),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: false,
        pin_min: a.pin_rules.min_length,
    };
    Ok(html(page.render()))
}

/// Saves the PIN chosen after a code-only verification and opens the
/// account; a PIN the rules refuse keeps the user on the PIN page.
pub(super) async fn choose_pin(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::ChoosePin {
        username,
        expires_at,
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
    if expires_at <= now() {
        req.session.data.stage = Stage::Anonymous;
        return finish(&state, req, "/portal").await;
    }
    if let Some(refusal) = pin_mismatch(&req) {
        req.session.data.error = Some(refusal);
        return finish(&state, req, "/portal").await;
    }
    let pin = req.field("pin");
    match state
        .service
        .change_pin(&req.ctx(&username), &username, pin)
        .await
    {
        Ok(()) => {
            req.session.data.stage = Stage::SignedIn {
                username,
                expires_at,
                token_setup: None,
            };
            req.session.data.notice = Some(Flash::new("ok-pin-chosen"));
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    PortalPost(mut req): PortalPost,
) -> Response {
    let lang = req.session.data.lang.clone();
    let user_lang = req.session.data.user_lang.clone();
    // The passed sessions end too: signing out here signs out of every
    // protected site.
    let ctx = match req.signed_in() {
        Some(username) => req.ctx(&username),
        None => Ctx::portal_visitor(Some(req.ip)),
    };
    let opened = req.session.data.passed.take();
    let mut cleared = super::passed::end_all(state.service.as_ref(), &ctx, opened, &headers).await;
    // And of the admin pages.
    cleared
        .extend(crate::admin::session::end_carried(state.service.as_ref(), &ctx, &headers).await);
    let old = std::mem::replace(&mut req.session, Session::fresh());
    if let Err(e) = old
        .destroy(state.service.as_ref(), &Ctx::portal_visitor(Some(req.ip)))
        .await
    {
        return unavailable(&req.tr(None), &e);
    }
    // The browser keeps speaking the user's language after sign-out.
    req.session.data.lang = lang;
    req.session.data.user_lang = user_lang;
    req.session.data.notice = Some(Flash::new("ok-signed-out"));
    let mut res = finish(&state, req, "/portal").await;
    for cookie in cleared {
        set_cookie(res.headers_mut(), cookie);
    }
    res
}

//! The enrollment wizard: choose a method, set up an OATH token (new or
//! imported), confirm it with a code, then a PIN and security questions
//! when the chosen mode asks for them.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use twofold_core::challenge::{ChallengeReason, ChallengeState, Prompt};
use twofold_core::methods::{oath::Oath as OATH, Method as _};
use twofold_core::portal::{EnrollPhone, FinishEnrollment, PendingOath};
use twofold_core::user::{DefaultMethod, MethodKind};
use twofold_core::Error;

use super::extract::{csrf_failure, PortalPost, Req};
use super::pages::{
    questions_in, AppView, EnrollPage, EnrollStage, FinalView, OathView, OfferView, PendingView,
    PhoneView,
};
use super::session::{
    EnrollPhoneStep, Flash, PhoneWait, ShownActivation, Stage, MAX_SIGNED_IN_SECONDS,
};
use super::{
    activation_refused, finish, html, keep_typed, now, refused, start_oath, text, Messages,
};
use crate::AppState;

/// Where the session's wizard stands.
pub(super) struct Wizard<'a> {
    pub method: Option<MethodKind>,
    pub pending: Option<&'a PendingOath>,
    /// The token's code has been confirmed.
    pub confirmed: bool,
    pub phone: Option<&'a EnrollPhoneStep>,
}

/// The wizard's current step. `method` and `pending` are the session's;
/// `confirmed` says whether the token's code has been confirmed.
pub(super) async fn enroll_page(
    state: &AppState,
    req: &Req,
    m: &Messages,
    username: &str,
    wizard: Wizard<'_>,
) -> Result<Response, Error> {
    let Wizard {
        method,
        pending,
        confirmed,
        phone,
    } = wizard;
    let svc = &state.service;
    let ctx = req.ctx(username);
    let user = svc.portal_user(&ctx, username).await?;
    let t = req.tr(user.language.as_deref());
    let options = svc.enrollment_options(&ctx, username).await?;
    let chosen = method.or(if options.methods.len() == 1 {
        Some(options.methods[0])
    } else {
        None
    });
    // The steps: the method (when there is a choice), the authenticator,
    // then the PIN and questions (when the mode or the settings ask).
    let choosing = usize::from(options.methods.len() > 1);
    let by_phone = chosen.is_some_and(challenged);
    // A phone's PIN is chosen with the phone (the call asks for it), the
    // app's with the app (its request asks for it).
    let last_needed = options.questions_required > 0
        || (!by_phone
            && options
                .mode_for(chosen.unwrap_or(options.methods[0]))
                .needs_pin());
    let step_total = choosing + 1 + usize::from(last_needed);
    let proved = phone.is_some_and(|p| p.proved.is_some());
    let (stage, step_n, fields): (_, _, &[&'static str]) = match (chosen, confirmed || proved) {
        (None, _) => (EnrollStage::Method(options.methods.clone()), 1, &[]),
        (Some(MethodKind::MobileApp), false) => (
            EnrollStage::App(AppView {
                needs_pin: options.mode_for(MethodKind::MobileApp).needs_pin(),
                pin_min: options.pin_rules.min_length,
                offer: req
                    .session
                    .data
                    .activation
                    .as_ref()
                    .map(|a| &a.offer)
                    .filter(|o| o.expires_at > time::OffsetDateTime::now_utc())
                    .map(|o| OfferView::new(&t, o)),
                wait: phone.and_then(|p| p.wait.clone()),
            }),
            choosing + 1,
            &["app", "pin", "activation"],
        ),
        (Some(m), false) if is_phone(m) => (
            EnrollStage::Phone(PhoneView {
                call: m == MethodKind::PhoneCall,
                needs_pin: options.mode_for(m).needs_pin(),
                pin_min: options.pin_rules.min_length,
                ask_backup: options.prompt_backup_phone,
                wait: phone.and_then(|p| p.wait.clone()),
            }),
            choosing + 1,
            &["phone", "extension", "backup_phone", "pin", "code"],
        ),
        (Some(_), false) => (
            EnrollStage::Oath(OathView {
                pending: pending.map(PendingView::new),
                action: "/portal/enroll/oath",
                allow_import: options.allow_third_party_oath,
                with_label: false,
            }),
            choosing + 1,
            &["code", "secret"],
        ),
        (Some(m), true) => (
            EnrollStage::Final(FinalView {
                phone: proved && is_phone(m),
                app: proved && m == MethodKind::MobileApp,
                needs_pin: !challenged(m) && options.mode_for(m).needs_pin(),
                pin_min: options.pin_rules.min_length,
                questions: if options.questions_required > 0 {
                    questions_in(&options.questions, &t.lang)
                } else {
                    Vec::new()
                },
            }),
            step_total,
            &["pin", "questions"],
        ),
    };
    let page = EnrollPage {
        t: &t,
        title: &t.t("title-enroll"),
        csrf: &req.session.data.csrf,
        signed_in: false,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        error_field: m.error_field(fields),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: false,
        stage,
        step_n,
        step_total,
    };
    Ok(html(page.render()))
}

fn is_phone(m: MethodKind) -> bool {
    matches!(m, MethodKind::PhoneCall | MethodKind::TextMessage)
}

/// Set up by answering a challenge (a call, a text, the app's request):
/// a PIN goes with that challenge.
fn challenged(m: MethodKind) -> bool {
    is_phone(m) || m == MethodKind::MobileApp
}

/// The username of an enrolling session, or `None` (the handler then starts over).
fn enrolling(req: &Req) -> Option<String> {
    match &req.session.data.stage {
        Stage::Enroll { username, .. } => Some(username.clone()),
        _ => None,
    }
}

pub(super) async fn enroll_method(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = enrolling(&req) else {
        return csrf_failure(&state, req).await;
    };
    let ctx = req.ctx(&username);
    let options = match state.service.enrollment_options(&ctx, &username).await {
        Ok(o) => o,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    let chosen = req
        .field("method")
        .parse::<MethodKind>()
        .ok()
        .filter(|m| options.methods.contains(m));
    match chosen {
        Some(m) => {
            if let Stage::Enroll { method, .. } = &mut req.session.data.stage {
                *method = Some(m);
            }
        }
        None => req.session.data.error = Some(Flash::new("err-generic")),
    }
    finish(&state, req, "/portal").await
}

async fn enroll_oath(state: AppState, mut req: Req, import: bool) -> Response {
    let Some(username) = enrolling(&req) else {
        return csrf_failure(&state, req).await;
    };
    match start_oath(&state, &req, &username, import).await {
        Ok(p) => {
            if let Stage::Enroll { pending, .. } = &mut req.session.data.stage {
                *pending = Some(p);
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

pub(super) async fn enroll_oath_new(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    enroll_oath(state, req, false).await
}

pub(super) async fn enroll_oath_import(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    enroll_oath(state, req, true).await
}

pub(super) async fn enroll_oath_confirm(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Enroll {
        username,
        method,
        pending: Some(p),
        ..
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
    let ctx = req.ctx(&username);
    let confirmed = match state
        .service
        .confirm_oath(&ctx, &username, p.sealed.clone(), req.field("code"))
        .await
    {
        Ok(c) => c,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    let options = match state.service.enrollment_options(&ctx, &username).await {
        Ok(o) => o,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    // An OATH secret was just confirmed: without another choice, that is
    // the method being set up.
    let m = method.unwrap_or(OATH.kind());
    let chosen = DefaultMethod {
        method: m,
        mode: options.mode_for(m),
    };
    if chosen.mode.needs_pin() || options.questions_required > 0 {
        if let Stage::Enroll { confirmed: c, .. } = &mut req.session.data.stage {
            *c = Some(confirmed);
        }
        return finish(&state, req, "/portal").await;
    }
    complete_enrollment(state, req, username, chosen, Some(confirmed), None).await
}

pub(super) async fn enroll_finish(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    if let Some(refusal) = pin_mismatch(&req) {
        req.session.data.error = Some(refusal);
        keep_typed(&mut req);
        return finish(&state, req, "/portal").await;
    }
    let Stage::Enroll {
        username,
        method,
        confirmed,
        phone,
        ..
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
    let proved = phone.and_then(|p| p.proved.map(|id| (id, p.backup_phone)));
    if confirmed.is_none() && proved.is_none() {
        return csrf_failure(&state, req).await;
    }
    let options = match state
        .service
        .enrollment_options(&req.ctx(&username), &username)
        .await
    {
        Ok(o) => o,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    // An OATH secret was just confirmed: without another choice, that is
    // the method being set up.
    let m = method.unwrap_or(OATH.kind());
    let chosen = DefaultMethod {
        method: m,
        mode: options.mode_for(m),
    };
    complete_enrollment(state, req, username, chosen, confirmed, proved).await
}

/// "Call Me Now to Authenticate" / "Text Me Now to Authenticate": calls or
/// texts the number typed (with the PIN chosen now, when the mode needs
/// one); nothing is saved until the phone is proved.
pub(super) async fn enroll_phone(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    let Stage::Enroll {
        username,
        method: Some(m),
        ..
    } = req.session.data.stage.clone()
    else {
        // Without a choice the only method is the one being set up.
        return match enrolling(&req) {
            Some(username) => enroll_phone_only(state, req, username).await,
            None => csrf_failure(&state, req).await,
        };
    };
    call_me_now(state, req, username, m).await
}

async fn enroll_phone_only(state: AppState, req: Req, username: String) -> Response {
    match state
        .service
        .enrollment_options(&req.ctx(&username), &username)
        .await
    {
        Ok(o) if o.methods.len() == 1 => {
            let m = o.methods[0];
            call_me_now(state, req, username, m).await
        }
        Ok(_) => csrf_failure(&state, req).await,
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

async fn call_me_now(state: AppState, mut req: Req, username: String, m: MethodKind) -> Response {
    if let Some(refusal) = pin_mismatch(&req) {
        req.session.data.error = Some(refusal);
        keep_typed(&mut req);
        return finish(&state, req, "/portal").await;
    }
    let pin = Some(req.field("pin")).filter(|p| !p.is_empty());
    let ask = EnrollPhone {
        method: m,
        phone: req.field("phone"),
        extension: req.field("extension"),
        pin,
    };
    let backup = Some(req.field("backup_phone")).filter(|b| !b.trim().is_empty());
    match state
        .service
        .enrollment_phone(&req.ctx(&username), &username, ask)
        .await
    {
        Ok(a) => {
            if let (Some(challenge), ChallengeState::Pending) = (a.id, a.state) {
                if let Stage::Enroll { phone, .. } = &mut req.session.data.stage {
                    *phone = Some(EnrollPhoneStep {
                        wait: Some(PhoneWait {
                            challenge,
                            prompt: a.prompt.unwrap_or(Prompt::PhoneCall),
                            phone: a.phone,
                            number: a.number,
                        }),
                        proved: None,
                        backup_phone: backup,
                    });
                }
            } else {
                req.session.data.error = Some(super::sign_in::phone_refusal(a.reason));
                keep_typed(&mut req);
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => {
            keep_typed(&mut req);
            refused(&state, req, e, "/portal").await
        }
    }
}

/// "Continue" once the call is answered (or the reply sent), or the code of
/// a one-way text typed in: the phone is proved, and the wizard goes on.
pub(super) async fn enroll_phone_check(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Stage::Enroll {
        username,
        method,
        phone: Some(step),
        ..
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
    let Some(wait) = step.wait.clone() else {
        return csrf_failure(&state, req).await;
    };
    let ctx = req.ctx(&username);
    let options = match state.service.enrollment_options(&ctx, &username).await {
        Ok(o) => o,
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    let Some(m) = method.or_else(|| (options.methods.len() == 1).then(|| options.methods[0]))
    else {
        return csrf_failure(&state, req).await;
    };
    let chosen = DefaultMethod {
        method: m,
        mode: options.mode_for(m),
    };
    let code = (wait.prompt == Prompt::Passcode)
        .then(|| format!("{}{}", req.field("pin").trim(), req.field("code").trim()));
    let patience = code.is_none().then_some(super::sign_in::PHONE_PATIENCE);
    let a = match state
        .service
        .enrollment_phone_status(&ctx, &username, &wait.challenge, code, patience)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            // A request that cannot be followed any more: back to its button
            // (a page that waits would wait for nothing).
            if matches!(e, Error::NotFound(_)) {
                if let Stage::Enroll { phone, .. } = &mut req.session.data.stage {
                    *phone = None;
                }
            }
            return refused(&state, req, e, "/portal").await;
        }
    };
    match a.state {
        ChallengeState::Accepted => {
            // A code shown for the app is of no more use.
            req.session.data.activation = None;
            let proved = (wait.challenge.clone(), step.backup_phone.clone());
            if options.questions_required > 0 {
                if let Stage::Enroll { phone, .. } = &mut req.session.data.stage {
                    *phone = Some(EnrollPhoneStep {
                        wait: None,
                        proved: Some(wait.challenge),
                        backup_phone: step.backup_phone,
                    });
                }
                return finish(&state, req, "/portal").await;
            }
            complete_enrollment(state, req, username, chosen, None, Some(proved)).await
        }
        ChallengeState::Pending => {
            if a.reason.is_some() && wait.prompt == Prompt::MobileApp {
                // A wrong PIN typed in the app: it asks again.
                req.session.data.error = Some(Flash::new("err-app-pin-retry"));
            } else if a.reason.is_some() {
                req.session.data.error = Some(Flash::new(if chosen.mode.needs_pin() {
                    "err-code-pin"
                } else {
                    "err-code"
                }));
            }
            finish(&state, req, "/portal").await
        }
        ChallengeState::Rejected | ChallengeState::Expired => {
            if let Stage::Enroll { phone, .. } = &mut req.session.data.stage {
                *phone = None;
            }
            req.session.data.error = Some(super::sign_in::refusal_for(
                wait.prompt,
                a.reason.or(Some(ChallengeReason::Expired)),
                true,
            ));
            finish(&state, req, "/portal").await
        }
    }
}

/// "Generate Activation Code" in the wizard: a code (with the service URL
/// and the QR code) for the app; nothing else changes.
pub(super) async fn enroll_app_code(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = enrolling(&req) else {
        return csrf_failure(&state, req).await;
    };
    match state
        .service
        .activation_code(&req.ctx(&username), &username)
        .await
    {
        Ok(offer) => {
            req.session.data.activation = Some(ShownActivation {
                offer,
                devices: Vec::new(),
            });
            finish(&state, req, "/portal").await
        }
        Err(e) => activation_refused(&state, req, e).await,
    }
}

/// "Authenticate Me Now": asks the activated app to approve (with the PIN
/// chosen now, when the mode needs one); the page then shows the number to
/// pick and waits. Nothing is saved until the app approves.
pub(super) async fn enroll_app(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = enrolling(&req) else {
        return csrf_failure(&state, req).await;
    };
    if let Some(refusal) = pin_mismatch(&req) {
        req.session.data.error = Some(refusal);
        return finish(&state, req, "/portal").await;
    }
    let ask = EnrollPhone {
        method: MethodKind::MobileApp,
        phone: String::new(),
        extension: String::new(),
        pin: Some(req.field("pin")).filter(|p| !p.is_empty()),
    };
    match state
        .service
        .enrollment_phone(&req.ctx(&username), &username, ask)
        .await
    {
        Ok(a) => {
            if let (Some(challenge), ChallengeState::Pending) = (a.id, a.state) {
                if let Stage::Enroll { method, phone, .. } = &mut req.session.data.stage {
                    // The engine started it: the app is the method chosen.
                    *method = Some(MethodKind::MobileApp);
                    *phone = Some(EnrollPhoneStep {
                        wait: Some(PhoneWait {
                            challenge,
                            prompt: Prompt::MobileApp,
                            phone: None,
                            number: a.number,
                        }),
                        proved: None,
                        backup_phone: None,
                    });
                }
            } else {
                req.session.data.error = Some(super::sign_in::app_refusal(a.reason, true));
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// A new PIN must be typed twice alike (when the form asks twice).
pub(super) fn pin_mismatch(req: &Req) -> Option<Flash> {
    let confirm = req.form.get("pin-confirm")?;
    (*confirm != req.field("pin") && !req.field("pin").is_empty())
        .then(|| Flash::new("err-pin-mismatch"))
}

async fn complete_enrollment(
    state: AppState,
    mut req: Req,
    username: String,
    method: DefaultMethod,
    oath: Option<String>,
    phone: Option<(String, Option<String>)>,
) -> Response {
    let answers = req.answers();
    // A phone's PIN went with the call or text; none is typed again.
    let pin = Some(req.field("pin")).filter(|p| !p.is_empty() && phone.is_none());
    let (phone_challenge, backup_phone) = phone.unzip();
    let finish_req = FinishEnrollment {
        method,
        oath,
        pin,
        answers,
        phone_challenge,
        backup_phone: backup_phone.flatten(),
    };
    match state
        .service
        .finish_enrollment(&req.ctx(&username), &username, finish_req)
        .await
    {
        Ok(user) => {
            req.session.rotate();
            req.session.data.activation = None;
            req.session.data.via = Some(twofold_core::passed::PassedVia::Enrollment);
            req.session.data.stage = Stage::SignedIn {
                username: user.username,
                expires_at: now() + MAX_SIGNED_IN_SECONDS,
                token_setup: None,
            };
            req.session.data.notice = Some(Flash::new("ok-enrolled"));
            finish(&state, req, "/portal").await
        }
        Err(e) => {
            // A confirmed token that expired cannot be finished: start the token again.
            if matches!(&e, Error::InvalidInput { message, .. } if message.contains("expired")) {
                if let Stage::Enroll {
                    pending, confirmed, ..
                } = &mut req.session.data.stage
                {
                    *pending = None;
                    *confirmed = None;
                }
            }
            refused(&state, req, e, "/portal").await
        }
    }
}

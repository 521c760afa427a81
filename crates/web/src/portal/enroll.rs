//! The enrollment wizard: choose a method, set up an OATH token (new or
//! imported), confirm it with a code, then a PIN and security questions
//! when the chosen mode asks for them.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use twofold_core::methods::{oath::Oath as OATH, Method as _};
use twofold_core::portal::{FinishEnrollment, PendingOath};
use twofold_core::user::{DefaultMethod, MethodKind};
use twofold_core::Error;

use super::extract::{csrf_failure, PortalPost, Req};
use super::pages::{questions_in, EnrollPage, EnrollStage, FinalView, OathView, PendingView};
use super::session::{Flash, Stage, MAX_SIGNED_IN_SECONDS};
use super::{finish, html, keep_typed, now, refused, start_oath, text, Messages};
use crate::AppState;

/// The wizard's current step. `method` and `pending` are the session's;
/// `confirmed` says whether the token's code has been confirmed.
pub(super) async fn enroll_page(
    state: &AppState,
    req: &Req,
    m: &Messages,
    username: &str,
    method: Option<MethodKind>,
    pending: Option<&PendingOath>,
    confirmed: bool,
) -> Result<Response, Error> {
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
    let last_needed = options.questions_required > 0
        || options
            .mode_for(chosen.unwrap_or(options.methods[0]))
            .needs_pin();
    let step_total = choosing + 1 + usize::from(last_needed);
    let (stage, step_n, fields): (_, _, &[&'static str]) = match (chosen, confirmed) {
        (None, _) => (EnrollStage::Method(options.methods.clone()), 1, &[]),
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
                needs_pin: options.mode_for(m).needs_pin(),
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
    complete_enrollment(state, req, username, chosen, Some(confirmed)).await
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
        confirmed: Some(c),
        ..
    } = req.session.data.stage.clone()
    else {
        return csrf_failure(&state, req).await;
    };
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
    complete_enrollment(state, req, username, chosen, Some(c)).await
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
) -> Response {
    let answers = req.answers();
    let pin = Some(req.field("pin")).filter(|p| !p.is_empty());
    let finish_req = FinishEnrollment {
        method,
        oath,
        pin,
        answers,
    };
    match state
        .service
        .finish_enrollment(&req.ctx(&username), &username, finish_req)
        .await
    {
        Ok(user) => {
            req.session.rotate();
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

//! The account page of a signed-in user and its forms: PIN, security
//! questions, language, default method and bypass.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::collections::HashMap;
use twofold_core::challenge::{ChallengeReason, ChallengeState, Prompt};
use twofold_core::portal::{Account, ChangePhone, PhoneSlot};
use twofold_core::user::MethodKind;
use twofold_core::{ConflictReason, Ctx, Error};

use super::enroll::pin_mismatch;
use super::extract::{csrf_failure, PortalPost, Req};
use super::pages::{
    questions_in, AccountAppView, AccountPage, DeviceRow, Minutes, Msg, OfferView, QuestionsView,
    TokenRow,
};
use super::session::{Flash, PhoneChange, PhoneWait, ShownActivation};
use super::{activation_refused, finish, html, keep_typed, refused, text, Messages, Tr};
use crate::AppState;

pub(super) async fn account_page(
    state: &AppState,
    req: &Req,
    m: &Messages,
    username: &str,
) -> Result<Response, Error> {
    let ctx = req.ctx(username);
    let a = state.service.account(&ctx, username).await?;
    let t = req.tr(a.user.language.as_deref());
    let method_key = a
        .user
        .default_method
        .map_or("method-none", |m| m.method.as_str());
    let bypass_until = a.bypass_until.map(|u| Msg::at(&t, "bypass-active", &[], u));
    let name = a.user.display_name.as_deref().unwrap_or(&a.user.username);
    let tokens = a
        .tokens
        .iter()
        .map(|tok| TokenRow {
            id: tok.id,
            label: shown_label(&t, &tok.label),
            added: t.date(tok.created_at),
            kind: tok.params.kind,
        })
        .collect();
    let app = app_view(&t, &a, req.session.data.activation.as_ref());
    // An expired PIN is the first thing the user is asked to fix.
    let error = m
        .error
        .clone()
        .or_else(|| a.pin_expired.then(|| Flash::new("pin-expired")));
    let page = AccountPage {
        t: &t,
        title: &t.t("title-account"),
        csrf: &req.session.data.csrf,
        signed_in: true,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, error.as_ref()),
        error_field: m.error_field(if app.shown {
            &["pin", "questions", "minutes", "activation", "device"]
        } else {
            &["pin", "questions", "minutes"]
        }),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: a.allow.select_language,
        a: &a,
        name,
        method_key,
        bypass_until,
        bypass_minutes: Minutes {
            default: (a.allow.bypass_default_seconds / 60).max(1),
            max: (a.allow.bypass_max_seconds / 60).max(1),
        },
        tokens,
        view: QuestionsView {
            questions: questions_in(&a.questions, &t.lang),
        },
        phone_change: req.session.data.phone_change.as_ref(),
        app,
    };
    Ok(html(page.render()))
}

/// The mobile-app section: the devices, and the activation code when one
/// was generated and is still of use (not expired, no device activated
/// since).
fn app_view(t: &Tr, a: &Account, shown: Option<&ShownActivation>) -> AccountAppView {
    let devices: Vec<DeviceRow> = a
        .devices
        .iter()
        .map(|d| DeviceRow {
            id: d.id.clone(),
            name: d.name.clone(),
            activated: t.date(d.activated_at),
            last_used: d
                .last_used_at
                .map(|u| format!("{} {}", t.date(u), t.time(u))),
        })
        .collect();
    let max = a.allow.max_mobile_devices;
    let below_limit = a.devices.len() < usize::try_from(max).unwrap_or(usize::MAX);
    let can_activate = a.allow.activate_mobile_app && below_limit;
    let offer = shown
        .filter(|_| can_activate)
        .filter(|s| s.offer.expires_at > time::OffsetDateTime::now_utc())
        .filter(|s| a.devices.iter().all(|d| s.devices.contains(&d.id)))
        .map(|s| OfferView::new(t, &s.offer));
    AccountAppView {
        shown: a.allow.activate_mobile_app || !devices.is_empty(),
        devices,
        can_activate,
        limit: (a.allow.activate_mobile_app && !below_limit).then_some(max),
        offer,
    }
}

/// "Generate Activation Code" on the account page.
pub(super) async fn account_app_code(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let ctx = req.ctx(&username);
    // The devices before this code: one more, and the code has been used.
    let devices = match state.service.account(&ctx, &username).await {
        Ok(a) => a.devices.into_iter().map(|d| d.id).collect(),
        Err(e) => return refused(&state, req, e, "/portal").await,
    };
    match state.service.activation_code(&ctx, &username).await {
        Ok(offer) => {
            req.session.data.activation = Some(ShownActivation { offer, devices });
            finish(&state, req, "/portal").await
        }
        Err(e) => activation_refused(&state, req, e).await,
    }
}

/// Removes one of the user's devices; not the one their method needs.
pub(super) async fn account_device_remove(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let device = req.field("device");
    match state
        .service
        .remove_device(&req.ctx(&username), &username, &device)
        .await
    {
        Ok(()) => {
            req.session.data.notice = Some(Flash::new("ok-device-removed"));
            finish(&state, req, "/portal").await
        }
        Err(Error::Conflict {
            reason: ConflictReason::LastFactor,
            ..
        }) => {
            req.session.data.error = Some(Flash::new("err-device-last"));
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// A token's name as the user reads it: the names the engine gives tokens
/// left unnamed are said in the page's language (and without "OATH").
fn shown_label(t: &Tr, label: &str) -> String {
    match label {
        "Authenticator app" => t.t("token-default-app"),
        "OATH token" => t.t("token-default-hardware"),
        other => other.to_string(),
    }
}

/// Runs one account change and reports it on the account page.
pub(super) async fn account_change<F, Fut>(
    state: AppState,
    mut req: Req,
    ok_key: &str,
    change: F,
) -> Response
where
    F: FnOnce(AppState, Ctx, String, HashMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let ctx = req.ctx(&username);
    match change(state.clone(), ctx, username, req.form.clone()).await {
        Ok(()) => {
            req.session.data.notice = Some(Flash::new(ok_key));
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

/// A new number for one of the user's phones: calls or texts it; the
/// account page then waits for the call (or takes the texted code).
pub(super) async fn account_phone(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let slot = match req.field("slot").as_str() {
        "backup" => PhoneSlot::Backup,
        "mobile" => PhoneSlot::Mobile,
        _ => PhoneSlot::Phone,
    };
    let change = ChangePhone {
        slot,
        phone: req.field("phone"),
        extension: req.field("extension"),
    };
    match state
        .service
        .change_phone(&req.ctx(&username), &username, change)
        .await
    {
        Ok(a) => {
            if let (Some(challenge), ChallengeState::Pending) = (a.id, a.state) {
                req.session.data.phone_change = Some(PhoneChange {
                    slot,
                    wait: PhoneWait {
                        challenge,
                        prompt: a.prompt.unwrap_or(Prompt::PhoneCall),
                        phone: a.phone,
                        number: a.number,
                    },
                });
            } else {
                req.session.data.error = Some(super::sign_in::phone_refusal(a.reason));
            }
            finish(&state, req, "/portal").await
        }
        Err(e) => {
            keep_typed(&mut req);
            refused(&state, req, e, "/portal").await
        }
    }
}

/// "Continue" once the new number answered (or its texted code): saved.
pub(super) async fn account_phone_check(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let (Some(username), Some(change)) = (req.signed_in(), req.session.data.phone_change.clone())
    else {
        return csrf_failure(&state, req).await;
    };
    let code = (change.wait.prompt == Prompt::Passcode).then(|| req.field("code"));
    let patience = code.is_none().then_some(super::sign_in::PHONE_PATIENCE);
    let a = match state
        .service
        .change_phone_status(
            &req.ctx(&username),
            &username,
            &change.wait.challenge,
            change.slot,
            code,
            patience,
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            req.session.data.phone_change = None;
            return refused(&state, req, e, "/portal").await;
        }
    };
    match a.state {
        ChallengeState::Accepted => {
            req.session.data.phone_change = None;
            req.session.data.notice = Some(Flash::new("ok-phone"));
        }
        ChallengeState::Pending => {
            if a.reason.is_some() {
                req.session.data.error = Some(Flash::new("err-code"));
            }
        }
        ChallengeState::Rejected | ChallengeState::Expired => {
            req.session.data.phone_change = None;
            req.session.data.error = Some(super::sign_in::phone_refusal(
                a.reason.or(Some(ChallengeReason::Expired)),
            ));
        }
    }
    finish(&state, req, "/portal").await
}

/// Stops proving a new number (nothing was saved).
pub(super) async fn account_phone_cancel(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    if req.signed_in().is_none() {
        return csrf_failure(&state, req).await;
    }
    req.session.data.phone_change = None;
    finish(&state, req, "/portal").await
}

pub(super) async fn account_pin(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    if let Some(refusal) = pin_mismatch(&req) {
        req.session.data.error = Some(refusal);
        return finish(&state, req, "/portal").await;
    }
    account_change(state, req, "ok-pin", |s, ctx, user, form| async move {
        s.service
            .change_pin(&ctx, &user, form.get("pin").cloned().unwrap_or_default())
            .await
    })
    .await
}

pub(super) async fn account_questions(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    let answers = req.answers();
    account_change(state, req, "ok-questions", |s, ctx, user, _| async move {
        s.service.change_answers(&ctx, &user, answers).await
    })
    .await
}

pub(super) async fn account_language(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let lang = req.field("language");
    match state
        .service
        .change_language(&req.ctx(&username), &username, lang)
        .await
    {
        Ok(user) => {
            // The account's new language replaces this browser's choice.
            req.session.data.lang = None;
            req.session.data.user_lang = user.language;
            req.session.data.notice = Some(Flash::new("ok-language"));
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal").await,
    }
}

pub(super) async fn account_method(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    account_change(state, req, "ok-method", |s, ctx, user, form| async move {
        let m: MethodKind = form.get("method").cloned().unwrap_or_default().parse()?;
        s.service.change_method(&ctx, &user, m).await.map(|_| ())
    })
    .await
}

pub(super) async fn account_bypass(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    account_change(state, req, "ok-bypass", |s, ctx, user, form| async move {
        // People choose minutes; the engine counts seconds.
        let seconds = match form.get("minutes").map(|v| v.trim()) {
            None | Some("") => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    // Zero would withdraw the bypass: only the cancel button does.
                    .filter(|m| *m > 0)
                    .and_then(|m| m.checked_mul(60))
                    .ok_or_else(|| Error::invalid("seconds", "not a number"))?,
            ),
        };
        s.service
            .start_bypass(&ctx, &user, seconds)
            .await
            .map(|_| ())
    })
    .await
}

pub(super) async fn account_bypass_cancel(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    account_change(
        state,
        req,
        "ok-bypass-cancelled",
        |s, ctx, user, _| async move {
            // Zero seconds: the engine withdraws the waiting bypass.
            s.service
                .start_bypass(&ctx, &user, Some(0))
                .await
                .map(|_| ())
        },
    )
    .await
}

//! `GET /portal`: the page for the session's stage — sign-in, second step,
//! enrollment wizard or account — and the language choice.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use twofold_core::Ctx;

use super::extract::PortalGet;
use super::session::{set_cookie, Stage};

use super::{
    account, enroll, finish, now, passed, req_tr_fallback, sign_in, unavailable, Messages,
};
use crate::AppState;

pub(super) async fn home(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    PortalGet(mut req): PortalGet,
) -> Response {
    passed::keep_return_address(&mut req, query.as_deref());
    if let Stage::SignedIn { expires_at, .. } | Stage::ChoosePin { expires_at, .. } =
        req.session.data.stage
    {
        if expires_at <= now() {
            req.session.data.stage = Stage::Anonymous;
        }
    }
    // Signed in: a passed session for the protected sites, and back to the
    // one the browser came from.
    let mut passed_cookie = None;
    if let Stage::SignedIn { username, .. } = &req.session.data.stage {
        let username = username.clone();
        // The admin pages asked for this sign-in: back there.
        if std::mem::take(&mut req.session.data.to_admin) {
            return finish(&state, req, "/admin").await;
        }
        let passed = passed::pass_on(state.service.as_ref(), &mut req, &username).await;
        if let Some(to) = passed.redirect {
            return back_to_site(&state, req, passed.cookie, &to).await;
        }
        passed_cookie = passed.cookie;
    }
    let messages = Messages::take(&mut req);
    let stage = req.session.data.stage.clone();
    let rendered = match &stage {
        Stage::Anonymous => sign_in::sign_in_page(&state, &req, &messages).await,
        Stage::Verify { step, phone, .. } => {
            Ok(sign_in::verify_page(&req, &messages, step, phone.as_ref()))
        }
        Stage::Enroll {
            username,
            method,
            pending,
            confirmed,
            phone,
        } => {
            enroll::enroll_page(
                &state,
                &req,
                &messages,
                username,
                enroll::Wizard {
                    method: *method,
                    pending: pending.as_ref(),
                    confirmed: confirmed.is_some(),
                    phone: phone.as_ref(),
                },
            )
            .await
        }
        Stage::ChoosePin { username, .. } => {
            sign_in::choose_pin_page(&state, &req, &messages, username).await
        }
        Stage::SignedIn { username, .. } => {
            account::account_page(&state, &req, &messages, username).await
        }
    };
    match rendered {
        Ok(mut res) => match req
            .session
            .save(
                state.service.as_ref(),
                &Ctx::portal_visitor(Some(req.ip)),
                now(),
            )
            .await
        {
            Ok(cookie) => {
                set_cookie(res.headers_mut(), cookie);
                if let Some(passed) = passed_cookie {
                    set_cookie(res.headers_mut(), passed);
                }
                res
            }
            Err(e) => unavailable(&req_tr_fallback(), &e),
        },
        Err(e) => {
            let t = req.tr(None);
            unavailable(&t, &e)
        }
    }
}

/// Saves the session and sends the browser back to the protected site
/// (an address the engine allowed), with the passed session's cookie.
async fn back_to_site(
    state: &AppState,
    req: super::extract::Req,
    passed: Option<axum::http::HeaderValue>,
    to: &str,
) -> Response {
    match req
        .session
        .save(
            state.service.as_ref(),
            &Ctx::portal_visitor(Some(req.ip)),
            now(),
        )
        .await
    {
        Ok(cookie) => {
            let mut res = Redirect::to(to).into_response();
            set_cookie(res.headers_mut(), cookie);
            if let Some(passed) = passed {
                set_cookie(res.headers_mut(), passed);
            }
            res
        }
        Err(e) => unavailable(&req_tr_fallback(), &e),
    }
}

// `Path` comes first so a bad path is refused before the session is loaded.
pub(super) async fn choose_language(
    State(state): State<AppState>,
    Path(code): Path<String>,
    PortalGet(mut req): PortalGet,
) -> Response {
    if req.tr(None).languages.iter().any(|(c, _)| *c == code) {
        req.session.data.lang = Some(code);
    }
    finish(&state, req, "/portal").await
}

//! The token page of a signed-in user: add an OATH token (new or imported,
//! confirmed with a code) and remove one.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use twofold_core::portal::PendingOath;
use twofold_core::{Ctx, Error};

use super::account::account_change;
use super::extract::{csrf_failure, PortalGet, PortalPost, Req};
use super::pages::{OathView, PendingView, TokenPage};
use super::session::{set_cookie, Flash, Stage};
use super::{finish, html, now, refused, start_oath, text, unavailable, Messages};
use crate::AppState;

pub(super) async fn token_page(
    State(state): State<AppState>,
    PortalGet(mut req): PortalGet,
) -> Response {
    let Some(username) = req.signed_in() else {
        return Redirect::to("/portal").into_response();
    };
    let m = Messages::take(&mut req);
    let account = match state.service.account(&req.ctx(&username), &username).await {
        Ok(a) => a,
        Err(e) => return unavailable(&req.tr(None), &e),
    };
    let t = req.tr(account.user.language.as_deref());
    let pending = match &req.session.data.stage {
        Stage::SignedIn { token_setup, .. } => token_setup.as_ref().map(PendingView::new),
        _ => None,
    };
    let page = TokenPage {
        t: &t,
        title: &t.t("title-token"),
        csrf: &req.session.data.csrf,
        signed_in: true,
        notice: text(&t, m.notice.as_ref()),
        error: text(&t, m.error.as_ref()),
        error_field: m.error_field(&["code", "secret", "label"]),
        echo: &m.echo,
        languages: &t.languages,
        lang_saves: account.allow.select_language,
        view: OathView {
            pending,
            action: "/portal/account/token",
            allow_import: account.allow.third_party_oath,
            with_label: true,
        },
    };
    let mut res = html(page.render());
    match req
        .session
        .save(
            state.service.as_ref(),
            &Ctx::portal_visitor(Some(req.ip)),
            now(),
        )
        .await
    {
        Ok(cookie) => set_cookie(res.headers_mut(), cookie),
        Err(e) => return unavailable(&t, &e),
    }
    res
}

fn set_token_setup(req: &mut Req, value: Option<PendingOath>) {
    if let Stage::SignedIn { token_setup, .. } = &mut req.session.data.stage {
        *token_setup = value;
    }
}

async fn token_setup(state: AppState, mut req: Req, import: bool) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    match start_oath(&state, &req, &username, import).await {
        Ok(p) => {
            set_token_setup(&mut req, Some(p));
            finish(&state, req, "/portal/account/token").await
        }
        Err(e) => refused(&state, req, e, "/portal/account/token").await,
    }
}

pub(super) async fn token_new(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    token_setup(state, req, false).await
}

pub(super) async fn token_import(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    token_setup(state, req, true).await
}

pub(super) async fn token_confirm(
    State(state): State<AppState>,
    PortalPost(mut req): PortalPost,
) -> Response {
    let Some(username) = req.signed_in() else {
        return csrf_failure(&state, req).await;
    };
    let Stage::SignedIn {
        token_setup: Some(p),
        ..
    } = req.session.data.stage.clone()
    else {
        return Redirect::to("/portal/account/token").into_response();
    };
    let ctx = req.ctx(&username);
    let added = async {
        let confirmed = state
            .service
            .confirm_oath(&ctx, &username, p.sealed.clone(), req.field("code"))
            .await?;
        state
            .service
            .add_oath_token(&ctx, &username, confirmed, req.field("label"))
            .await
    }
    .await;
    match added {
        Ok(_) => {
            set_token_setup(&mut req, None);
            req.session.data.notice = Some(Flash::new("ok-token-added"));
            finish(&state, req, "/portal").await
        }
        Err(e) => refused(&state, req, e, "/portal/account/token").await,
    }
}

pub(super) async fn token_delete(
    State(state): State<AppState>,
    PortalPost(req): PortalPost,
) -> Response {
    account_change(
        state,
        req,
        "ok-token-removed",
        |s, ctx, user, form| async move {
            let id = form
                .get("token")
                .and_then(|v| v.parse().ok())
                .ok_or(Error::NotFound("token"))?;
            s.service.delete_oath_token(&ctx, &user, id).await
        },
    )
    .await
}

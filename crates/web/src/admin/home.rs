//! `/admin`: opens the admin session from the portal's sign-in, shows the
//! administrator what they may do; and signing out.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use twofold_core::{Ctx, Error};

use super::extract::{AdminPost, AdminReq};
use super::i18n::{accepted, AdminTr};
use super::pages::{permission_names, Chrome, HomePage, MessagePage};
use super::session::{set_cookie, AdminSession};
use super::{failure, html, now, AdminState};
use crate::client_ip::ClientIp;
use crate::portal::session::{portal_sign_in, sign_in_for_admin, PortalSignIn};

/// With an admin session: the start page. Without: one is opened for the
/// administrator the portal has signed in with their second step.
pub(super) async fn enter(
    State(state): State<AdminState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let visitor = Ctx::portal_visitor(Some(ip));
    let signed_in = match portal_sign_in(state.sessions.as_ref(), &visitor, &headers, now()).await {
        Ok(s) => s,
        Err(e) => return failure(&e),
    };
    match AdminSession::load(state.sessions.as_ref(), &visitor, &headers, now()).await {
        Ok(Some(_)) => {
            return match AdminReq::load(&state, &headers, ip, None).await {
                Ok(mut req) => {
                    // Back from signing in again at the portal (a fresh
                    // second step for a sensitive action): remember it.
                    if let PortalSignIn::Full(user, at) = &signed_in {
                        if user.eq_ignore_ascii_case(&req.session.data.username)
                            && *at > req.session.data.verified_at
                        {
                            req.session.data.verified_at = *at;
                        }
                    }
                    home_page(&state, req).await
                }
                Err(res) => res,
            };
        }
        Ok(None) => {}
        Err(e) => return failure(&e),
    }
    let tr = AdminTr::pick(
        accepted(
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
        .iter()
        .map(String::as_str),
    );
    let (username, verified_at) = match signed_in {
        PortalSignIn::Full(username, at) => (username, at),
        // Signed in without the second step (a bypass, a trusted IP):
        // sending them to sign in again would bring them straight back.
        PortalSignIn::Partial => {
            return message(
                &tr,
                StatusCode::UNAUTHORIZED,
                "title-sign-in",
                "sign-in-first",
            );
        }
        // To the portal's sign-in, and back here after the second step.
        PortalSignIn::None => return to_sign_in(&state, &visitor, &headers).await,
    };
    let grant = match state.console.console_grant(&visitor, &username).await {
        Ok(g) => g,
        Err(Error::Forbidden(_) | Error::NotFound(_)) => {
            return message(&tr, StatusCode::FORBIDDEN, "title-not-admin", "not-admin");
        }
        Err(e) => return failure(&e),
    };
    let session = AdminSession::begin(&username, verified_at, now());
    match session
        .save(state.sessions.as_ref(), &visitor, grant.idle_minutes, now())
        .await
    {
        Ok(cookie) => {
            let mut res = Redirect::to("/admin").into_response();
            set_cookie(res.headers_mut(), cookie);
            res
        }
        Err(e) => failure(&e),
    }
}

async fn home_page(state: &AdminState, mut req: AdminReq) -> Response {
    let chrome = Chrome::take(&mut req, "title-admin");
    let page = HomePage {
        c: &chrome,
        permissions: permission_names(&req.tr, req.grant.permissions),
        scope: req.grant.scope.to_string(),
        idle_minutes: req.grant.idle_minutes,
    };
    super::render(state, &req, askama::Template::render(&page)).await
}

/// The portal's sign-in, which comes back to `/admin` after the second
/// step.
async fn to_sign_in(state: &AdminState, visitor: &Ctx, headers: &HeaderMap) -> Response {
    match sign_in_for_admin(state.sessions.as_ref(), visitor, headers).await {
        Ok(cookie) => {
            let mut res = Redirect::to("/portal").into_response();
            crate::portal::session::set_cookie(res.headers_mut(), cookie);
            res
        }
        Err(e) => failure(&e),
    }
}

/// `POST /admin/reauth`: the portal's sign-in once more, for a fresh
/// second step before a sensitive action; the admin session stays.
pub(super) async fn reauth(
    State(state): State<AdminState>,
    headers: HeaderMap,
    AdminPost(req): AdminPost,
) -> Response {
    to_sign_in(&state, &req.visitor(), &headers).await
}

fn message(tr: &AdminTr, status: StatusCode, title: &str, key: &str) -> Response {
    let page = MessagePage {
        t: tr,
        title: &tr.t(title),
        text: &tr.t(key),
    };
    let mut res = html(askama::Template::render(&page));
    *res.status_mut() = status;
    res
}

pub(super) async fn sign_out(
    State(state): State<AdminState>,
    AdminPost(req): AdminPost,
) -> Response {
    let visitor = req.visitor();
    match req.session.end(state.sessions.as_ref(), &visitor).await {
        Ok(cookie) => {
            let mut res = Redirect::to("/portal").into_response();
            set_cookie(res.headers_mut(), cookie);
            res
        }
        Err(e) => failure(&e),
    }
}

//! What every admin handler starts with: the admin session, the engine's
//! word on who the administrator is, the form (CSRF-checked for a POST),
//! the address and the language.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use std::collections::HashMap;
use std::net::IpAddr;
use twofold_core::service::ConsoleGrant;
use twofold_core::{Ctx, Error};

use super::i18n::{accepted, AdminTr};
use super::session::{clear_cookie, set_cookie, AdminSession, Flash};
use super::{failure, finish, now, AdminState};
use crate::client_ip::ClientIp;

pub(super) struct AdminReq {
    pub session: AdminSession,
    pub grant: ConsoleGrant,
    pub form: HashMap<String, String>,
    pub ip: IpAddr,
    pub tr: AdminTr,
}

impl AdminReq {
    /// The principal of every `AdminService` call: the administrator.
    pub fn ctx(&self) -> &Ctx {
        &self.grant.ctx
    }

    /// The session store's caller (the in-process portal grant).
    pub fn visitor(&self) -> Ctx {
        Ctx::portal_visitor(Some(self.ip))
    }

    pub fn field(&self, name: &str) -> String {
        self.form.get(name).cloned().unwrap_or_default()
    }

    /// A field that may be left empty (`None`).
    pub fn optional(&self, name: &str) -> Option<String> {
        self.form
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn may(&self, p: twofold_core::user::Permission) -> bool {
        self.grant.permissions.contains(p)
    }

    pub(super) async fn load(
        state: &AdminState,
        headers: &HeaderMap,
        ip: IpAddr,
        body: Option<&Bytes>,
    ) -> Result<AdminReq, Response> {
        let visitor = Ctx::portal_visitor(Some(ip));
        let session =
            match AdminSession::load(state.sessions.as_ref(), &visitor, headers, now()).await {
                Ok(Some(s)) => s,
                // No admin session (or it ended): `/admin` opens one from the
                // portal's sign-in, or says how to sign in.
                Ok(None) => return Err(Redirect::to("/admin").into_response()),
                Err(e) => return Err(failure(&e)),
            };
        let grant = match state
            .console
            .console_grant(&visitor, &session.data.username)
            .await
        {
            Ok(g) => g,
            Err(Error::Forbidden(_) | Error::NotFound(_)) => {
                // No longer an administrator (or may not sign in): the
                // session ends here.
                let _ = session.end(state.sessions.as_ref(), &visitor).await;
                let mut res = Redirect::to("/admin").into_response();
                set_cookie(res.headers_mut(), clear_cookie());
                return Err(res);
            }
            Err(e) => return Err(failure(&e)),
        };
        let form = match body {
            Some(b) => serde_urlencoded::from_bytes::<Vec<(String, String)>>(b)
                .map_err(|_| (StatusCode::BAD_REQUEST, "malformed form").into_response())?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let header_langs = accepted(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let user_lang = state
            .admin
            .get_user(&grant.ctx, &session.data.username)
            .await
            .ok()
            .and_then(|u| u.language);
        let tr = AdminTr::pick(
            user_lang
                .iter()
                .map(String::as_str)
                .chain(header_langs.iter().map(String::as_str)),
        );
        Ok(AdminReq {
            session,
            grant,
            form,
            ip,
            tr,
        })
    }
}

/// A page (GET) of a signed-in administrator.
pub(super) struct AdminGet(pub AdminReq);

impl FromRequestParts<AdminState> for AdminGet {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Response> {
        let Extension(ClientIp(ip)) = Extension::<ClientIp>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        AdminReq::load(state, &parts.headers, ip, None)
            .await
            .map(AdminGet)
    }
}

/// A form post of a signed-in administrator whose CSRF token matched
/// (compared in constant time); a mismatch changes nothing and goes back
/// to the start with a message.
pub(super) struct AdminPost(pub AdminReq);

impl FromRequest<AdminState> for AdminPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Extension(ClientIp(ip)) = Extension::<ClientIp>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut req = AdminReq::load(state, &headers, ip, Some(&body)).await?;
        let token = req.field("csrf");
        if !req.session.csrf_ok(&token) {
            req.session.data.error = Some(Flash::new("err-session"));
            let mut res = finish(state, req, "/admin").await;
            res.headers_mut().insert(
                "x-twofold-refusal",
                header::HeaderValue::from_static("csrf"),
            );
            return Err(res);
        }
        Ok(AdminPost(req))
    }
}

//! What every portal handler starts with, as axum extractors: the session,
//! the form, who and where. `PortalPost` also checks the form's CSRF token;
//! a POST that fails it never reaches the handler.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::collections::HashMap;
use std::net::IpAddr;
use twofold_core::factors::OathKind;
use twofold_core::portal::{ImportOath, PortalConfig};
use twofold_core::{Ctx, Error};

use super::i18n::allowed_languages;
use super::session::{Flash, Session};
use super::{finish, negotiate, now, req_tr_fallback, unavailable, Tr};
use crate::client_ip::ClientIp;
use crate::AppState;

/// The session, the form, who and where.
pub(super) struct Req {
    pub session: Session,
    pub form: HashMap<String, String>,
    pub ip: IpAddr,
    pub accept_language: Option<String>,
    /// What the portal's settings say of languages and time zone.
    pub config: PortalConfig,
}

impl Req {
    async fn load(
        state: &AppState,
        headers: &HeaderMap,
        addr: IpAddr,
        body: Option<&Bytes>,
    ) -> Result<Req, Error> {
        let session = Session::load(
            state.service.as_ref(),
            &Ctx::portal_visitor(Some(addr)),
            headers,
        )
        .await?;
        let config = state
            .service
            .portal_settings(&Ctx::portal_visitor(Some(addr)))
            .await?;
        let form = match body {
            Some(b) => serde_urlencoded::from_bytes::<Vec<(String, String)>>(b)
                .map_err(|_| Error::invalid("form", "malformed form"))?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        Ok(Req {
            session,
            form,
            ip: addr,
            config,
            accept_language: headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    pub fn field(&self, name: &str) -> String {
        self.form.get(name).cloned().unwrap_or_default()
    }

    pub fn ctx(&self, username: &str) -> Ctx {
        Ctx::end_user(username, Some(self.ip))
    }

    /// The person's language: their explicit choice in this browser, then
    /// the user's saved language (`user_lang`, else the last user known in
    /// this browser), then `Accept-Language`.
    pub fn tr(&self, user_lang: Option<&str>) -> Tr {
        let allowed = allowed_languages(&self.config.languages);
        Tr::new(&negotiate(
            self.session.data.lang.as_deref(),
            user_lang.or(self.session.data.user_lang.as_deref()),
            self.accept_language.as_deref(),
            &allowed,
        ))
        .within(&self.config.languages, &self.config.time_zone)
    }

    /// The signed-in user, or `None` (the handler then starts over).
    pub fn signed_in(&self) -> Option<String> {
        self.session.signed_in_user(now()).map(str::to_string)
    }

    /// Security-question answers: up to four `question-N`/`answer-N` pairs.
    pub fn answers(&self) -> Vec<(i64, String)> {
        (1..=4)
            .filter_map(|i| {
                let q = self.field(&format!("question-{i}"));
                let a = self.field(&format!("answer-{i}"));
                if q.is_empty() && a.is_empty() {
                    return None;
                }
                Some((q.parse().unwrap_or(-1), a))
            })
            .collect()
    }

    /// A third-party token's secret as typed in.
    pub fn import_oath(&self) -> ImportOath {
        ImportOath {
            secret_base32: self.field("secret"),
            kind: if self.field("kind") == "hotp" {
                OathKind::Hotp
            } else {
                OathKind::Totp
            },
            digits: self.field("digits").parse().ok(),
        }
    }
}

/// A page view (GET): the session, no form. A session that cannot be loaded
/// is answered with the "unavailable" page.
pub(super) struct PortalGet(pub Req);

impl FromRequestParts<AppState> for PortalGet {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Extension(ClientIp(addr)) = Extension::<ClientIp>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match Req::load(state, &parts.headers, addr, None).await {
            Ok(req) => Ok(PortalGet(req)),
            Err(e) => Err(unavailable(&req_tr_fallback(), &e)),
        }
    }
}

/// A form post: the session and the urlencoded form, whose `csrf` field
/// matched the session's token (compared in constant time). A malformed form
/// is a 400; a failed check starts over (`csrf_failure`).
pub(super) struct PortalPost(pub Req);

impl FromRequest<AppState> for PortalPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Extension(ClientIp(addr)) =
            Extension::<ClientIp>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let req = match Req::load(state, &headers, addr, Some(&body)).await {
            Ok(r) => r,
            Err(Error::InvalidInput { .. }) => {
                return Err((StatusCode::BAD_REQUEST, "malformed form").into_response())
            }
            Err(e) => return Err(unavailable(&req_tr_fallback(), &e)),
        };
        let token = req.field("csrf");
        if !req.session.csrf_ok(&token) {
            return Err(csrf_failure(state, req).await);
        }
        Ok(PortalPost(req))
    }
}

/// A POST that fails its CSRF check starts over with a fresh session. So does
/// a post that does not fit the session's stage.
pub(super) async fn csrf_failure(state: &AppState, mut req: Req) -> Response {
    let lang = req.session.data.lang.clone();
    let user_lang = req.session.data.user_lang.clone();
    req.session = Session::fresh();
    req.session.data.lang = lang;
    req.session.data.user_lang = user_lang;
    req.session.data.error = Some(Flash::new("err-session"));
    let mut res = finish(state, req, "/portal").await;
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().insert(
        "x-twofold-refusal",
        header::HeaderValue::from_static("csrf"),
    );
    res
}

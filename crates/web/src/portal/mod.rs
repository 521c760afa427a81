//! The User Portal: sign-in, second step and fallbacks, the enrollment
//! wizard and account maintenance. Handlers parse the form, call one
//! `PortalService` method and render; every rule lives in the engine.

mod i18n;
mod pages;
mod session;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use std::collections::HashMap;
use std::net::IpAddr;
use twofold_core::factors::OathKind;
use twofold_core::portal::{
    FinishEnrollment, ImportOath, PendingOath, Proof, SignIn, Skip, Verified,
};
use twofold_core::user::{DefaultMethod, MethodKind};
use twofold_core::{Ctx, Error};

pub use i18n::{negotiate, Tr, LANGUAGES};
use pages::*;
use session::{set_cookie, Flash, Session, Stage, MAX_SIGNED_IN_SECONDS};

use crate::client_ip::ClientIp;
use crate::AppState;

const CSS: &str = include_str!("../../static/portal.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/static/portal.css", get(css))
        .route("/portal", get(home))
        .route("/portal/lang/{code}", get(choose_language))
        .route("/portal/sign-in", post(sign_in))
        .route("/portal/verify", post(verify))
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/enroll/method", post(enroll_method))
        .route("/portal/enroll/oath/new", post(enroll_oath_new))
        .route("/portal/enroll/oath/import", post(enroll_oath_import))
        .route("/portal/enroll/oath/confirm", post(enroll_oath_confirm))
        .route("/portal/enroll/finish", post(enroll_finish))
        .route("/portal/account/token", get(token_page))
        .route("/portal/account/token/new", post(token_new))
        .route("/portal/account/token/import", post(token_import))
        .route("/portal/account/token/confirm", post(token_confirm))
        .route("/portal/account/token/delete", post(token_delete))
        .route("/portal/account/pin", post(account_pin))
        .route("/portal/account/questions", post(account_questions))
        .route("/portal/account/language", post(account_language))
        .route("/portal/account/method", post(account_method))
        .route("/portal/account/bypass", post(account_bypass))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What every handler starts with: the session, the form, who and where.
struct Req {
    session: Session,
    form: HashMap<String, String>,
    ip: std::net::IpAddr,
    accept_language: Option<String>,
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
            accept_language: headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    fn field(&self, name: &str) -> String {
        self.form.get(name).cloned().unwrap_or_default()
    }

    fn ctx(&self, username: &str) -> Ctx {
        Ctx::end_user(username, Some(self.ip))
    }

    fn tr(&self, user_lang: Option<&str>) -> Tr {
        Tr::new(&negotiate(
            self.session.data.lang.as_deref(),
            user_lang,
            self.accept_language.as_deref(),
        ))
    }
}

/// Saves the session and redirects (POST → 303 → GET).
async fn finish(state: &AppState, req: Req, to: &str) -> Response {
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
            res
        }
        Err(e) => unavailable(&req_tr_fallback(), e),
    }
}

fn req_tr_fallback() -> Tr {
    Tr::new("en")
}

fn unavailable(t: &Tr, e: Error) -> Response {
    tracing::warn!(error = %e, "portal request failed");
    let (status, key) = match e {
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "err-unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "err-generic"),
    };
    let body = t.t(key);
    let page = MessagePage {
        t,
        title: &t.t("title-message"),
        csrf: "",
        signed_in: false,
        notice: None,
        error: None,
        languages: LANGUAGES,
        body: &body,
    };
    (status, html(page.render())).into_response()
}

fn html(r: askama::Result<String>) -> Response {
    match r {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An engine refusal as a message for the person.
fn flash_for(e: &Error) -> Option<Flash> {
    Some(match e {
        Error::InvalidInput { field, message } => match field.as_str() {
            "code" if message.contains("expired") => Flash::new("err-expired"),
            "code" => Flash::new("err-code"),
            "pin" => Flash::new("err-pin"),
            "answers" | "answer" => Flash::new("err-questions"),
            "secret" => Flash::new("err-secret"),
            _ => Flash::new("err-generic"),
        },
        Error::Forbidden(_) => Flash::new("err-not-allowed"),
        Error::Conflict(m) if m.contains("only token") => Flash::new("err-token-last"),
        Error::Conflict(_) | Error::NotFound(_) => Flash::new("err-generic"),
        Error::RateLimited {
            retry_after_seconds,
        } => Flash::with("err-rate-limited", "seconds", retry_after_seconds),
        Error::Unavailable(_) | Error::Internal(_) => return None,
    })
}

fn text(t: &Tr, f: &Option<Flash>) -> Option<String> {
    f.as_ref().map(|f| match &f.arg {
        Some((name, value)) => t.t1(&f.key, name, value),
        None => t.t(&f.key),
    })
}

/// A POST that fails its CSRF check starts over with a fresh session.
async fn csrf_failure(state: &AppState, mut req: Req) -> Response {
    let lang = req.session.data.lang.clone();
    req.session = Session::fresh();
    req.session.data.lang = lang;
    req.session.data.error = Some(Flash::new("err-session"));
    let mut res = finish(state, req, "/portal").await;
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().insert(
        "x-twofold-refusal",
        header::HeaderValue::from_static("csrf"),
    );
    res
}

macro_rules! post_req {
    ($state:expr, $headers:expr, $addr:expr, $body:expr) => {{
        let req = match Req::load(&$state, &$headers, $addr, Some(&$body)).await {
            Ok(r) => r,
            Err(Error::InvalidInput { .. }) => {
                return (StatusCode::BAD_REQUEST, "malformed form").into_response()
            }
            Err(e) => return unavailable(&req_tr_fallback(), e),
        };
        let token = req.field("csrf");
        if !req.session.csrf_ok(&token) {
            return csrf_failure(&$state, req).await;
        }
        req
    }};
}

/// Refusal of an action: message in the session, back to the page.
async fn refused(state: &AppState, mut req: Req, e: Error, to: &str) -> Response {
    match flash_for(&e) {
        Some(f) => {
            req.session.data.error = Some(f);
            finish(state, req, to).await
        }
        None => unavailable(&req.tr(None), e),
    }
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
) -> Response {
    let mut req = match Req::load(&state, &headers, addr, None).await {
        Ok(r) => r,
        Err(e) => return unavailable(&req_tr_fallback(), e),
    };
    let notice = req.session.data.notice.take();
    let error = req.session.data.error.take();
    if let Stage::SignedIn { expires_at, .. } = req.session.data.stage {
        if expires_at <= now() {
            req.session.data.stage = Stage::Anonymous;
        }
    }
    let svc = state.service.clone();
    let stage = req.session.data.stage.clone();
    let rendered: Result<Response, Error> = async {
        Ok(match &stage {
            Stage::Anonymous => {
                let t = req.tr(None);
                let allowed = svc
                    .portal_settings(&Ctx::portal_visitor(Some(req.ip)))
                    .await?
                    .portal
                    .allow_login;
                let page = SignInPage {
                    t: &t,
                    title: &t.t("title-sign-in"),
                    csrf: &req.session.data.csrf,
                    signed_in: false,
                    notice: text(&t, &notice),
                    error: text(&t, &error),
                    languages: LANGUAGES,
                    login_allowed: allowed,
                };
                html(page.render())
            }
            Stage::Verify { username, step } => {
                let t = req.tr(None);
                let page = VerifyPage {
                    t: &t,
                    title: &t.t("title-verify"),
                    csrf: &req.session.data.csrf,
                    signed_in: false,
                    notice: text(&t, &notice),
                    error: text(&t, &error),
                    languages: LANGUAGES,
                    username,
                    step,
                };
                html(page.render())
            }
            Stage::Enroll {
                username,
                method,
                pending,
                confirmed,
            } => {
                let ctx = req.ctx(username);
                let user = svc.portal_user(&ctx, username).await?;
                let t = req.tr(user.language.as_deref());
                let options = svc.enrollment_options(&ctx, username).await?;
                let chosen = method.or(if options.methods.len() == 1 {
                    Some(options.methods[0])
                } else {
                    None
                });
                let stage = match (chosen, confirmed) {
                    (None, _) => EnrollStage::Method(options.methods.clone()),
                    (Some(_), None) => EnrollStage::Oath(OathView {
                        pending: pending.as_ref().map(PendingView::new),
                        action: "/portal/enroll/oath",
                        allow_import: options.allow_third_party_oath,
                        with_label: false,
                    }),
                    (Some(m), Some(_)) => EnrollStage::Final(FinalView {
                        needs_pin: options.mode_for(m).needs_pin(),
                        pin_min: options.pin_rules.min_length,
                        questions: if options.questions_required > 0 {
                            &options.questions
                        } else {
                            &[]
                        },
                    }),
                };
                let page = EnrollPage {
                    t: &t,
                    title: &t.t("title-enroll"),
                    csrf: &req.session.data.csrf,
                    signed_in: false,
                    notice: text(&t, &notice),
                    error: text(&t, &error),
                    languages: LANGUAGES,
                    stage,
                };
                html(page.render())
            }
            Stage::SignedIn { username, .. } => {
                let ctx = req.ctx(username);
                let a = svc.account(&ctx, username).await?;
                let t = req.tr(a.user.language.as_deref());
                let method_key = a
                    .user
                    .default_method
                    .map(|m| m.method.as_str())
                    .unwrap_or("method-none");
                let bypass_until = a.bypass_until.and_then(|u| {
                    u.format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ))
                    .ok()
                });
                // An expired PIN is the first thing the user is asked to fix.
                let error = error
                    .clone()
                    .or_else(|| a.pin_expired.then(|| Flash::new("pin-expired")));
                let page = AccountPage {
                    t: &t,
                    title: &t.t("title-account"),
                    csrf: &req.session.data.csrf,
                    signed_in: true,
                    notice: text(&t, &notice),
                    error: text(&t, &error),
                    languages: LANGUAGES,
                    a: &a,
                    method_key,
                    bypass_until,
                    view: QuestionsView {
                        questions: &a.questions,
                    },
                };
                html(page.render())
            }
        })
    }
    .await;
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
                res
            }
            Err(e) => unavailable(&req_tr_fallback(), e),
        },
        Err(e) => {
            let t = req.tr(None);
            unavailable(&t, e)
        }
    }
}

async fn choose_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    Path(code): Path<String>,
) -> Response {
    let mut req = match Req::load(&state, &headers, addr, None).await {
        Ok(r) => r,
        Err(e) => return unavailable(&req_tr_fallback(), e),
    };
    if LANGUAGES.iter().any(|(c, _)| *c == code) {
        req.session.data.lang = Some(code);
    }
    finish(&state, req, "/portal").await
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
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

async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
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
            let max = session_minutes
                .map(|m| i64::from(m) * 60)
                .unwrap_or(MAX_SIGNED_IN_SECONDS);
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

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
    let lang = req.session.data.lang.clone();
    let old = std::mem::replace(&mut req.session, Session::fresh());
    if let Err(e) = old
        .destroy(state.service.as_ref(), &Ctx::portal_visitor(Some(req.ip)))
        .await
    {
        return unavailable(&req.tr(None), e);
    }
    req.session.data.lang = lang;
    req.session.data.notice = Some(Flash::new("ok-signed-out"));
    finish(&state, req, "/portal").await
}

/// The username of an enrolling session, or a refusal response.
fn enrolling(req: &Req) -> Option<String> {
    match &req.session.data.stage {
        Stage::Enroll { username, .. } => Some(username.clone()),
        _ => None,
    }
}

async fn enroll_method(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
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

/// A new OATH secret — generated for an app, or a third-party token's typed in.
async fn start_oath(
    state: &AppState,
    req: &Req,
    username: &str,
    import: bool,
) -> Result<PendingOath, Error> {
    let ctx = req.ctx(username);
    if import {
        state
            .service
            .import_oath_secret(&ctx, username, import_from(req))
            .await
    } else {
        state.service.new_oath_secret(&ctx, username).await
    }
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

async fn enroll_oath_new(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    enroll_oath(state, req, false).await
}

fn import_from(req: &Req) -> ImportOath {
    ImportOath {
        secret_base32: req.field("secret"),
        kind: if req.field("kind") == "hotp" {
            OathKind::Hotp
        } else {
            OathKind::Totp
        },
        digits: req.field("digits").parse().ok(),
    }
}

async fn enroll_oath_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    enroll_oath(state, req, true).await
}

async fn enroll_oath_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
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
    let m = method.unwrap_or(MethodKind::OathToken);
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

async fn complete_enrollment(
    state: AppState,
    mut req: Req,
    username: String,
    method: DefaultMethod,
    oath: Option<String>,
) -> Response {
    let answers = answers_from(&req);
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

fn answers_from(req: &Req) -> Vec<(i64, String)> {
    (1..=4)
        .filter_map(|i| {
            let q = req.field(&format!("question-{i}"));
            let a = req.field(&format!("answer-{i}"));
            if q.is_empty() && a.is_empty() {
                return None;
            }
            Some((q.parse().unwrap_or(-1), a))
        })
        .collect()
}

async fn enroll_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
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
    let m = method.unwrap_or(MethodKind::OathToken);
    let chosen = DefaultMethod {
        method: m,
        mode: options.mode_for(m),
    };
    complete_enrollment(state, req, username, chosen, Some(c)).await
}

/// The signed-in user, or `None` (the handler then starts over).
fn signed_in(req: &Req) -> Option<String> {
    req.session.signed_in_user(now()).map(str::to_string)
}

async fn token_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
) -> Response {
    let mut req = match Req::load(&state, &headers, addr, None).await {
        Ok(r) => r,
        Err(e) => return unavailable(&req_tr_fallback(), e),
    };
    let Some(username) = signed_in(&req) else {
        return Redirect::to("/portal").into_response();
    };
    let notice = req.session.data.notice.take();
    let error = req.session.data.error.take();
    let account = match state.service.account(&req.ctx(&username), &username).await {
        Ok(a) => a,
        Err(e) => return unavailable(&req.tr(None), e),
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
        notice: text(&t, &notice),
        error: text(&t, &error),
        languages: LANGUAGES,
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
        Err(e) => return unavailable(&t, e),
    }
    res
}

fn set_token_setup(req: &mut Req, value: Option<PendingOath>) {
    if let Stage::SignedIn { token_setup, .. } = &mut req.session.data.stage {
        *token_setup = value;
    }
}

async fn token_setup(state: AppState, mut req: Req, import: bool) -> Response {
    let Some(username) = signed_in(&req) else {
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

async fn token_new(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    token_setup(state, req, false).await
}

async fn token_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    token_setup(state, req, true).await
}

async fn token_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
    let Some(username) = signed_in(&req) else {
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

/// Runs one account change and reports it on the account page.
async fn account_change<F, Fut>(state: AppState, mut req: Req, ok_key: &str, change: F) -> Response
where
    F: FnOnce(AppState, Ctx, String, HashMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let Some(username) = signed_in(&req) else {
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

async fn token_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
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

async fn account_pin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    account_change(state, req, "ok-pin", |s, ctx, user, form| async move {
        s.service
            .change_pin(&ctx, &user, form.get("pin").cloned().unwrap_or_default())
            .await
    })
    .await
}

async fn account_questions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    let answers = answers_from(&req);
    account_change(state, req, "ok-questions", |s, ctx, user, _| async move {
        s.service.change_answers(&ctx, &user, answers).await
    })
    .await
}

async fn account_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let mut req = post_req!(state, headers, addr, body);
    let lang = req.field("language");
    // The explicit choice of the session gives way to the account's new language.
    let previous = req.session.data.lang.take();
    let res = account_change(
        state.clone(),
        req,
        "ok-language",
        |s, ctx, user, _| async move {
            s.service
                .change_language(&ctx, &user, lang)
                .await
                .map(|_| ())
        },
    )
    .await;
    let _ = previous;
    res
}

async fn account_method(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    account_change(state, req, "ok-method", |s, ctx, user, form| async move {
        let m: MethodKind = form.get("method").cloned().unwrap_or_default().parse()?;
        s.service.change_method(&ctx, &user, m).await.map(|_| ())
    })
    .await
}

async fn account_bypass(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(ClientIp(addr)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let req = post_req!(state, headers, addr, body);
    account_change(state, req, "ok-bypass", |s, ctx, user, form| async move {
        let seconds = match form.get("seconds").map(|v| v.trim()) {
            None | Some("") => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| Error::invalid("seconds", "not a number"))?,
            ),
        };
        s.service
            .start_bypass(&ctx, &user, seconds)
            .await
            .map(|_| ())
    })
    .await
}

//! The User Portal: sign-in, second step and fallbacks, the enrollment
//! wizard and account maintenance. Handlers parse the form, call one
//! `PortalService` method and render; every rule lives in the engine.
//!
//! Every handler takes its session (and, for a POST, its CSRF-checked form)
//! from the extractors in `extract`; one module per page or flow holds the
//! handlers, this one the routes and the helpers they share.

mod account;
mod enroll;
mod extract;
mod home;
mod i18n;
mod pages;
mod passed;
pub(crate) mod session;
mod sign_in;
mod token;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use twofold_core::pin::{PinProblem, PIN_MAX_LENGTH};
use twofold_core::portal::PendingOath;
use twofold_core::{ConflictReason, Ctx, Error};

use extract::Req;
pub use i18n::{negotiate, Tr, LANGUAGES};
use pages::Msg;
use session::{set_cookie, Flash};

use crate::AppState;

const CSS: &str = include_str!("../../static/portal.css");
const JS: &str = include_str!("../../static/portal.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/static/portal.css", get(css))
        .route("/static/portal.js", get(js))
        .route("/portal", get(home::home))
        .route("/portal/lang/{code}", get(home::choose_language))
        .route("/portal/sign-in", post(sign_in::sign_in))
        .route("/portal/verify", post(sign_in::verify))
        .route("/portal/verify/phone", post(sign_in::verify_phone))
        .route(
            "/portal/verify/phone/check",
            post(sign_in::verify_phone_check),
        )
        .route("/portal/sign-out", post(sign_in::sign_out))
        .route("/portal/choose-pin", post(sign_in::choose_pin))
        .route("/portal/enroll/method", post(enroll::enroll_method))
        .route("/portal/enroll/oath/new", post(enroll::enroll_oath_new))
        .route(
            "/portal/enroll/oath/import",
            post(enroll::enroll_oath_import),
        )
        .route(
            "/portal/enroll/oath/confirm",
            post(enroll::enroll_oath_confirm),
        )
        .route("/portal/enroll/finish", post(enroll::enroll_finish))
        .route("/portal/enroll/phone", post(enroll::enroll_phone))
        .route(
            "/portal/enroll/phone/check",
            post(enroll::enroll_phone_check),
        )
        .route("/portal/enroll/app/code", post(enroll::enroll_app_code))
        .route("/portal/enroll/app", post(enroll::enroll_app))
        .route("/portal/account/token", get(token::token_page))
        .route("/portal/account/token/new", post(token::token_new))
        .route("/portal/account/token/import", post(token::token_import))
        .route("/portal/account/token/confirm", post(token::token_confirm))
        .route("/portal/account/token/delete", post(token::token_delete))
        .route("/portal/account/pin", post(account::account_pin))
        .route("/portal/account/phone", post(account::account_phone))
        .route(
            "/portal/account/phone/check",
            post(account::account_phone_check),
        )
        .route(
            "/portal/account/phone/cancel",
            post(account::account_phone_cancel),
        )
        .route(
            "/portal/account/questions",
            post(account::account_questions),
        )
        .route("/portal/account/app/code", post(account::account_app_code))
        .route(
            "/portal/account/device/remove",
            post(account::account_device_remove),
        )
        .route("/portal/account/language", post(account::account_language))
        .route("/portal/account/method", post(account::account_method))
        .route("/portal/account/bypass", post(account::account_bypass))
        .route(
            "/portal/account/bypass/cancel",
            post(account::account_bypass_cancel),
        )
        .route("/portal/{*rest}", get(pages::not_found))
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

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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
        Err(e) => unavailable(&req_tr_fallback(), &e),
    }
}

fn req_tr_fallback() -> Tr {
    Tr::new("en")
}

fn unavailable(t: &Tr, e: &Error) -> Response {
    tracing::warn!(error = %e, "portal request failed");
    let (status, key) = match e {
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "err-unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "err-generic"),
    };
    pages::message_page(t, status, "title-message", key)
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

/// An engine refusal as a message for the person: the rule that failed,
/// in the person's words.
fn flash_for(e: &Error) -> Option<Flash> {
    Some(match e {
        Error::InvalidInput { field, message } => match field.as_str() {
            "code" if message.contains("expired") => Flash::new("err-expired"),
            "code" => Flash::new("err-code"),
            "pin" => pin_flash(message),
            // The engine's wording: "choose N different questions" for a
            // question chosen twice, "choose and answer N ..." for too few.
            "answers"
                if message.starts_with("choose ")
                    && message.ends_with(" different questions")
                    && !message.contains("and answer") =>
            {
                Flash::new("err-questions-twice")
            }
            "answers" if message.contains("from the list") => Flash::new("err-questions-list"),
            "answers" => Flash::new("err-questions"),
            "answer" => Flash::new("err-questions-answer"),
            "secret" => Flash::new("err-secret"),
            "seconds" => Flash::new("err-minutes"),
            "label" => Flash::new("err-label"),
            "app" => Flash::new("err-app-not-proved"),
            _ => Flash::new("err-generic"),
        },
        Error::Forbidden(_) | Error::Unauthenticated { .. } => Flash::new("err-not-allowed"),
        Error::Conflict {
            reason: ConflictReason::LastFactor,
            ..
        } => Flash::new("err-token-last"),
        Error::Conflict {
            reason: ConflictReason::DeviceLimit,
            ..
        } => Flash::new("err-activation-limit"),
        Error::Conflict { .. } | Error::NotFound(_) => Flash::new("err-generic"),
        Error::RateLimited {
            retry_after_seconds,
        } => Flash::with("err-rate-limited", "seconds", retry_after_seconds),
        Error::Unavailable(_) | Error::Internal(_) => return None,
    })
}

/// The PIN rule the engine applied, read back from its refusal.
fn pin_flash(message: &str) -> Flash {
    match PinProblem::of(message) {
        Some(PinProblem::Empty) => Flash::new("err-pin-empty"),
        Some(PinProblem::NotDigits) => Flash::new("err-pin-digits"),
        Some(PinProblem::TooShort(min)) => Flash::with("err-pin-short", "min", &min),
        Some(PinProblem::TooLong) => Flash::with("err-pin-long", "max", &PIN_MAX_LENGTH),
        Some(PinProblem::Sequence) => Flash::new("err-pin-sequence"),
        Some(PinProblem::Repeat) => Flash::new("err-pin-repeat"),
        Some(PinProblem::Phone) => Flash::new("err-pin-phone"),
        Some(PinProblem::Recent(n)) => Flash::with("err-pin-recent", "n", &n),
        None => Flash::new("err-pin"),
    }
}

/// The form field an error message is about, so the page shows the message
/// beside it; `None`: a message about the whole page.
fn field_of(key: &str) -> Option<&'static str> {
    Some(match key {
        k if k.starts_with("err-pin") => "pin",
        k if k.starts_with("err-questions") => "questions",
        k if k.starts_with("err-code") => "code",
        k if k.starts_with("err-fallback-code") => "fallback-code",
        k if k.starts_with("err-answers") => "answers",
        k if k.starts_with("err-app") => "app",
        k if k.starts_with("err-activation") => "activation",
        k if k.starts_with("err-device") => "device",
        "err-secret" => "secret",
        "err-minutes" => "minutes",
        "err-label" => "label",
        "err-credentials" => "password",
        _ => return None,
    })
}

/// What a refused form may show again: never a password, a PIN, a code, a
/// secret or an answer to the second step's questions.
const ECHOED: &[&str] = &[
    "username",
    "phone",
    "extension",
    "backup_phone",
    "label",
    "minutes",
    "kind",
    "digits",
    "question-1",
    "question-2",
    "question-3",
    "question-4",
    "answer-1",
    "answer-2",
    "answer-3",
    "answer-4",
];

/// Keeps what the person typed into the refused form, for the page to show.
fn keep_typed(req: &mut Req) {
    req.session.data.echo = ECHOED
        .iter()
        .filter_map(|name| {
            let value = req.form.get(*name)?;
            // Shown in a form field (escaped), never with control characters.
            (!value.is_empty() && value.len() <= 1024 && !value.chars().any(char::is_control))
                .then(|| ((*name).to_string(), value.clone()))
        })
        .collect();
}

/// The messages a page shows once, and what a refused form had, taken from
/// the session as it renders.
struct Messages {
    notice: Option<Flash>,
    error: Option<Flash>,
    echo: Vec<(String, String)>,
}

impl Messages {
    fn take(req: &mut Req) -> Messages {
        Messages {
            notice: req.session.data.notice.take(),
            error: req.session.data.error.take(),
            echo: std::mem::take(&mut req.session.data.echo),
        }
    }

    /// The field the error is about, when the page has that field.
    fn error_field(&self, on_page: &[&'static str]) -> Option<&'static str> {
        self.error
            .as_ref()
            .and_then(|f| field_of(&f.key))
            .filter(|f| on_page.contains(f))
    }
}

fn text(t: &Tr, f: Option<&Flash>) -> Option<Msg> {
    f.map(|f| match (&f.key[..], &f.arg) {
        // A pause: how long, and until when (shown in local time).
        ("err-rate-limited" | "err-paused", Some((_, value))) => {
            let seconds: i64 = value.parse().unwrap_or(0);
            let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
            Msg::at(t, &f.key, &[("seconds", value.clone())], until)
        }
        (_, Some((name, value))) => Msg::plain(t.t1(&f.key, name, value)),
        (_, None) => Msg::plain(t.t(&f.key)),
    })
}

/// Refusal of an action: message in the session, back to the page.
async fn refused(state: &AppState, mut req: Req, e: Error, to: &str) -> Response {
    match flash_for(&e) {
        Some(f) => {
            req.session.data.error = Some(f);
            keep_typed(&mut req);
            finish(state, req, to).await
        }
        None => unavailable(&req.tr(None), &e),
    }
}

/// "Generate Activation Code" refused: switched off (said so), or the
/// engine's other refusals as usual.
async fn activation_refused(state: &AppState, mut req: Req, e: Error) -> Response {
    if matches!(e, Error::Forbidden(_)) {
        req.session.data.error = Some(Flash::new("err-activation-not-allowed"));
        return finish(state, req, "/portal").await;
    }
    refused(state, req, e, "/portal").await
}

/// A new OATH secret — generated for an app, or a third-party token's typed
/// in. Shared by the enrollment wizard and the token page.
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
            .import_oath_secret(&ctx, username, req.import_oath())
            .await
    } else {
        state.service.new_oath_secret(&ctx, username).await
    }
}

//! The admin pages (`/admin`): portal administrators run Twofold from the
//! browser, with exactly the permissions and scope they were granted.
//!
//! An administrator first signs in at the portal with password and second
//! step; `/admin` then opens an admin session of its own (`session`), with
//! a shorter idle timeout. Every request asks the engine again who the
//! administrator is (`AdminConsole::console_grant`), so a revoked right or
//! a disabled administrator stops at the next click. Handlers parse the
//! form, make one `AdminService` call with that principal and render; the
//! engine decides every action, and the pages only leave out what it
//! would refuse. Same rules as the portal: POST-redirect-GET, a CSRF token
//! on every form, no script, no inline style.

mod accounts;
mod admins;
mod audit;
mod extract;
mod home;
mod i18n;
mod pages;
mod questions;
mod reports;
pub mod session;
mod settings;
mod tokens;
mod users;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use twofold_core::service::{AdminConsole, AdminService, ReportService};
use twofold_core::{Error, PortalService};

use extract::AdminReq;
use session::{set_cookie, Flash};

const CSS: &str = include_str!("../../static/admin.css");

#[derive(Clone)]
pub struct AdminState {
    pub admin: Arc<dyn AdminService>,
    pub console: Arc<dyn AdminConsole>,
    pub reports: Arc<dyn ReportService>,
    /// Where sessions are kept (the portal's session store).
    pub sessions: Arc<dyn PortalService>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin", get(home::enter))
        .route("/admin/sign-out", post(home::sign_out))
        .route("/admin/reauth", post(home::reauth))
        .route("/admin/settings", get(settings::page))
        .route("/admin/audit", get(audit::page))
        .route(
            "/admin/service-accounts",
            get(accounts::page).post(accounts::create),
        )
        .route(
            "/admin/service-accounts/{name}/{action}",
            post(accounts::act),
        )
        .route("/admin/reports/{name}", get(reports::report))
        .route(
            "/admin/questions",
            get(questions::page).post(questions::add),
        )
        .route("/admin/questions/{id}/delete", post(questions::delete))
        .route("/admin/questions/{id}/move", post(questions::move_one))
        .route("/admin/tokens", get(tokens::page))
        .route(
            "/admin/tokens/import",
            post(tokens::import).layer(axum::extract::DefaultBodyLimit::max(tokens::MAX_UPLOAD)),
        )
        .route("/admin/tokens/assign", post(tokens::assign))
        .route("/admin/tokens/{serial}/delete", post(tokens::delete))
        .route(
            "/admin/administrators",
            get(admins::page).post(admins::grant),
        )
        .route("/admin/administrators/{name}/revoke", post(admins::revoke))
        .route("/admin/settings/{key}", post(settings::change))
        .route("/admin/users", get(users::list))
        .route("/admin/users/new", get(users::new_form).post(users::create))
        .route("/admin/users/{name}", get(users::show))
        .route("/admin/users/{name}/{action}", post(users::act))
        .route("/static/admin.css", get(css))
        .with_state(state)
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

fn html(r: askama::Result<String>) -> Response {
    match r {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Renders a page and saves the session (its one-time messages were
/// shown; the idle timeout starts again).
async fn render(state: &AdminState, req: &AdminReq, rendered: askama::Result<String>) -> Response {
    let mut res = html(rendered);
    match req
        .session
        .save(
            state.sessions.as_ref(),
            &req.visitor(),
            req.grant.idle_minutes,
            now(),
        )
        .await
    {
        Ok(cookie) => set_cookie(res.headers_mut(), cookie),
        Err(e) => return failure(&e),
    }
    res
}

/// Saves the session and redirects (POST → 303 → GET).
async fn finish(state: &AdminState, req: AdminReq, to: &str) -> Response {
    match req
        .session
        .save(
            state.sessions.as_ref(),
            &req.visitor(),
            req.grant.idle_minutes,
            now(),
        )
        .await
    {
        Ok(cookie) => {
            let mut res = Redirect::to(to).into_response();
            set_cookie(res.headers_mut(), cookie);
            res
        }
        Err(e) => failure(&e),
    }
}

/// A failure nobody can act on: the database or a bug.
fn failure(e: &Error) -> Response {
    tracing::warn!(error = %e, "admin request failed");
    let status = match e {
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        "The request could not be completed. Try again in a moment.",
    )
        .into_response()
}

/// An engine refusal as a message for the administrator: the engine's own
/// words for a value it refused (they name the rule), fixed texts for
/// the rest. A user out of scope reads as one that does not exist.
fn flash_for(e: &Error) -> Option<Flash> {
    Some(match e {
        Error::InvalidInput { field, message } => {
            Flash::with("err-invalid", format!("{field}: {message}"))
        }
        Error::Forbidden(_) | Error::Unauthenticated { .. } => Flash::new("err-forbidden"),
        Error::NotFound(_) => Flash::new("err-not-found"),
        Error::Conflict { message, .. } => Flash::with("err-conflict", message.clone()),
        Error::RateLimited { .. } => Flash::new("err-rate-limited"),
        Error::Unavailable(_) | Error::Internal(_) => return None,
    })
}

/// A refused action: the message in the session, back to `to`.
async fn refused(state: &AdminState, mut req: AdminReq, e: &Error, to: &str) -> Response {
    match flash_for(e) {
        Some(f) => {
            req.session.data.error = Some(f);
            finish(state, req, to).await
        }
        None => failure(e),
    }
}

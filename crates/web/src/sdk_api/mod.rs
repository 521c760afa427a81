//! The Web Service SDK: an authenticated JSON API under `/sdk/v1` for
//! applications (validate a passcode, manage users) and for the User Portal
//! on a separate server. Handlers are a thin JSON face of the engine; the
//! OpenAPI document is generated from these handlers and types.

mod auth;
mod authenticate;
mod import;
mod json;
mod openapi;
mod portal_link;
mod settings;
mod tokens;
mod users;
pub mod views;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use twofold_core::audit::AuditQuery;
use twofold_core::SdkBackend;
use twofold_proto::{
    link, AuditPage, ErrorBody, PrimaryRequest, PrimaryResponse, TestResponse, ValidateRequest,
    ValidateResponse, ValidateResult,
};

use crate::error::ApiError;
pub use auth::Caller;
pub use json::ApiJson;
pub use openapi::{openapi_document, ApiDoc};
pub use views::service_account_view;

#[derive(Clone)]
pub struct SdkState {
    /// Callers hold different roles, so the SDK serves every service trait;
    /// the engine authorizes each call by the caller's `Ctx`.
    pub engine: Arc<dyn SdkBackend>,
}

type ApiResult<T> = Result<T, SdkError>;

/// A domain error as the SDK answers it: `ApiError`'s status and stable JSON,
/// plus `Retry-After` when rate limited (so a remote portal can say how long).
pub struct SdkError(pub twofold_core::Error);

impl From<twofold_core::Error> for SdkError {
    fn from(e: twofold_core::Error) -> Self {
        SdkError(e)
    }
}

impl IntoResponse for SdkError {
    fn into_response(self) -> Response {
        let retry = match &self.0 {
            twofold_core::Error::RateLimited {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        };
        let mut res = ApiError(self.0).into_response();
        if let Some(seconds) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

pub fn router(engine: Arc<dyn SdkBackend>) -> Router {
    Router::new()
        .route("/sdk/v1/openapi.json", get(openapi_json))
        .route("/sdk/v1/test", get(self_test))
        .route("/sdk/v1/validate", post(validate))
        .route("/sdk/v1/primary", post(primary))
        .route("/sdk/v1/authenticate", post(authenticate::start))
        .route("/sdk/v1/authenticate/{id}", get(authenticate::status))
        .route(
            "/sdk/v1/authenticate/{id}/answer",
            post(authenticate::answer),
        )
        .route("/sdk/v1/audit", get(audit))
        .route("/sdk/v1/users", get(users::list).post(users::create))
        .route(
            "/sdk/v1/import",
            post(import::import).layer(axum::extract::DefaultBodyLimit::max(import::MAX_BODY)),
        )
        .route(
            "/sdk/v1/users/{username}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/sdk/v1/users/{username}/enable", post(users::enable))
        .route("/sdk/v1/users/{username}/disable", post(users::disable))
        .route("/sdk/v1/users/{username}/unblock", post(users::unblock))
        .route("/sdk/v1/users/{username}/password", put(users::password))
        .route("/sdk/v1/users/{username}/pin", put(users::pin))
        .route("/sdk/v1/users/{username}/method", put(users::method))
        .route("/sdk/v1/users/{username}/language", put(users::language))
        .route("/sdk/v1/users/{username}/bypass", post(users::bypass))
        .route(
            "/sdk/v1/users/{username}/tokens",
            get(tokens::list).post(tokens::add),
        )
        .route(
            "/sdk/v1/users/{username}/tokens/{id}",
            axum::routing::delete(tokens::delete),
        )
        .route(
            "/sdk/v1/users/{username}/tokens/{id}/resync",
            post(tokens::resync),
        )
        .route(
            "/sdk/v1/questions",
            get(tokens::questions).post(tokens::add_question),
        )
        .route(
            "/sdk/v1/questions/{id}",
            axum::routing::delete(tokens::delete_question),
        )
        .route("/sdk/v1/settings", get(settings::settings))
        .route(
            "/sdk/v1/settings/{key}",
            put(settings::set_setting).delete(settings::reset_setting),
        )
        // The private portal link: not part of the public API or its
        // OpenAPI document; role `portal` only.
        .route(link::LINK_PATH, post(portal_link::link))
        .with_state(SdkState { engine })
}

async fn openapi_json() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
}

/// Security self-test: proves TLS and credentials work.
#[utoipa::path(get, path = "/sdk/v1/test", tag = "validate",
    responses((status = 200, body = TestResponse), (status = 401, body = ErrorBody)))]
async fn self_test(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
) -> ApiResult<Json<TestResponse>> {
    s.engine.record_read(&ctx, "sdk.test", None).await?;
    Ok(Json(TestResponse {
        ok: true,
        account: ctx.actor.to_string(),
        server_time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Checks a user's passcode in one call: the OTP, or the PIN followed by the
/// OTP when the user's mode needs a PIN. A code is accepted once; failures
/// count towards the user's lockout.
#[utoipa::path(post, path = "/sdk/v1/validate", tag = "validate", request_body = ValidateRequest,
    responses((status = 200, body = ValidateResponse), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn validate(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> ApiResult<Json<ValidateResponse>> {
    // The engine checks the username; this keeps argon2 and the code
    // comparison away from oversized input.
    if req.passcode.chars().count() > twofold_proto::rules::PASSCODE_MAX {
        return Err(twofold_core::Error::invalid(
            "passcode",
            format!(
                "must be at most {} characters",
                twofold_proto::rules::PASSCODE_MAX
            ),
        )
        .into());
    }
    let v = s
        .engine
        .validate(&ctx, &req.username, &req.passcode)
        .await?;
    Ok(Json(ValidateResponse {
        result: if v.accepted {
            ValidateResult::Accept
        } else {
            ValidateResult::Reject
        },
        reason: serde_json::to_value(v.reason)
            .ok()
            .and_then(|r| r.as_str().map(str::to_string))
            .unwrap_or_default(),
    }))
}

/// Primary sign-in: checks a username and password against the configured
/// primary authentication.
#[utoipa::path(post, path = "/sdk/v1/primary", tag = "validate", request_body = PrimaryRequest,
    responses((status = 200, body = PrimaryResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "The directory (LDAP, RADIUS) that checks passwords cannot be reached; not counted against the user")))]
async fn primary(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<PrimaryRequest>,
) -> ApiResult<Json<PrimaryResponse>> {
    let outcome = s
        .engine
        .check_password(&ctx, &req.username, req.password)
        .await?;
    Ok(Json(PrimaryResponse {
        result: match outcome {
            twofold_core::service::PrimaryOutcome::Accepted => ValidateResult::Accept,
            twofold_core::service::PrimaryOutcome::Rejected => ValidateResult::Reject,
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Events per page, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Events older than this id (paging backwards).
    before_id: Option<i64>,
    /// Events newer than this id (following).
    after_id: Option<i64>,
    /// Only events about this user.
    #[param(nullable = false, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    subject: Option<String>,
}

/// The audit log, newest first, in pages.
#[utoipa::path(get, path = "/sdk/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn audit(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(p) = params.map_err(|e| twofold_core::Error::invalid("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(twofold_core::Error::invalid("limit", "must be 1..=1000").into());
    }
    let events = s
        .engine
        .audit_events(
            &ctx,
            AuditQuery {
                limit,
                before_id: p.before_id,
                after_id: p.after_id,
                subject: p.subject,
            },
        )
        .await?;
    let next_before_id = if u32::try_from(events.len()) == Ok(limit) {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        events: events.iter().map(views::audit_view).collect(),
        next_before_id,
    }))
}

pub(crate) fn created<T>(body: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(body))
}

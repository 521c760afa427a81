//! What a User Portal on a separate server needs from the MFA server: its
//! sessions, the settings, readiness, and every portal flow of `PortalService`
//! (sign-in, second step, enrollment wizard, account maintenance).
//!
//! Portal operations act for the end user named in the body: they are
//! audited as `user:<name>` with the address from `X-Twofold-Client-Ip`, so
//! the audit log reads the same as with an in-process portal. Responses are
//! the domain's own serde types, so the remote portal renders exactly what a
//! local one would.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use twofold_core::factors::OathToken;
use twofold_core::portal::{
    Account, EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath, SignIn, Verified,
};
use twofold_core::settings::Settings;
use twofold_core::user::User;
use twofold_core::{Ctx, Error};
use twofold_proto::portal::*;
use twofold_proto::{BypassResponse, ErrorBody};

use super::{ApiJson, ApiResult, Caller, SdkState};

/// The context of a portal operation: the end user, via the calling
/// account, at the address the portal reported (or the caller's own address
/// when it reported none). The engine checks the account's `portal` grant.
fn for_user(caller: &Ctx, username: &str) -> Ctx {
    caller.relayed_for(username)
}

fn key_of(p: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    p.map(|Path(k)| k)
        .map_err(|e| Error::invalid("path", e.body_text()))
}

/// Session ids are stored as the hex SHA-256 of the cookie value.
fn session_id(p: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    let id = p
        .map(|Path(k)| k)
        .map_err(|e| Error::invalid("path", e.body_text()))?;
    if id.len() != 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(
            "session",
            "the id must be 64 lower-case hex digits (SHA-256)",
        ));
    }
    Ok(id)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Ready to serve: the MFA server's database answers.
///
/// Not audited: load balancers in front of remote portals poll it.
#[utoipa::path(get, path = "/sdk/v1/ready", tag = "portal",
    responses((status = 200, body = ReadyResponse), (status = 401, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub(super) async fn ready(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
) -> ApiResult<Json<ReadyResponse>> {
    s.engine.ready(&ctx).await?;
    Ok(Json(ReadyResponse {
        status: "ready".into(),
    }))
}

/// Every runtime setting, as nested JSON (`{"portal": {"allow_login": true, ...}, ...}`).
#[utoipa::path(get, path = "/sdk/v1/settings", tag = "settings",
    responses((status = 200, description = "The settings: sections of keys (`twofold settings show`)", body = Object),
              (status = 401, body = ErrorBody)))]
pub(super) async fn settings(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
) -> ApiResult<Json<Settings>> {
    Ok(Json(s.engine.settings(&ctx).await?))
}

/// Changes one setting, e.g. `portal.allow_bypass`.
///
/// The value is checked against the key's rule. Returns every setting.
#[utoipa::path(put, path = "/sdk/v1/settings/{key}", tag = "settings", params(("key" = String, Path)),
    request_body = SettingValue,
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn set_setting(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    key: Result<Path<String>, PathRejection>,
    ApiJson(r): ApiJson<SettingValue>,
) -> ApiResult<Json<Settings>> {
    let key = key_of(key)?;
    Ok(Json(s.engine.set_setting(&ctx, &key, r.value).await?))
}

/// Returns one setting to its default.
///
/// Returns every setting.
#[utoipa::path(delete, path = "/sdk/v1/settings/{key}", tag = "settings", params(("key" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn reset_setting(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    key: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Settings>> {
    let key = key_of(key)?;
    Ok(Json(s.engine.reset_setting(&ctx, &key).await?))
}

/// A portal session's data.
///
/// `data` is absent when there is none (or it expired).
#[utoipa::path(get, path = "/sdk/v1/portal/sessions/{id_hash}", tag = "portal",
    params(("id_hash" = String, Path, description = "hex SHA-256 of the session id")),
    responses((status = 200, body = SessionBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn session_get(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<SessionBody>> {
    let id = session_id(id)?;
    Ok(Json(SessionBody {
        data: s.engine.session_load(&ctx, &id).await?,
    }))
}

/// Stores a portal session for `ttl_seconds`.
///
/// Any portal node can read it back: no sticky sessions needed.
#[utoipa::path(put, path = "/sdk/v1/portal/sessions/{id_hash}", tag = "portal",
    params(("id_hash" = String, Path, description = "hex SHA-256 of the session id")),
    request_body = SessionPut,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn session_put(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    id: Result<Path<String>, PathRejection>,
    ApiJson(r): ApiJson<SessionPut>,
) -> ApiResult<StatusCode> {
    let id = session_id(id)?;
    s.engine
        .session_save(&ctx, &id, r.data, r.ttl_seconds)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a portal session.
#[utoipa::path(delete, path = "/sdk/v1/portal/sessions/{id_hash}", tag = "portal",
    params(("id_hash" = String, Path, description = "hex SHA-256 of the session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn session_delete(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let id = session_id(id)?;
    s.engine.session_drop(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Username and password, then where the sign-in goes.
///
/// `{"next": "rejected" | "blocked" | "login_disabled" | "complete" |
/// "second_step" | "enroll" | "not_enrolled", ...}`. Failures count towards
/// the user's lockout and the end user's address's throttle.
#[utoipa::path(post, path = "/sdk/v1/portal/sign-in", tag = "portal", request_body = SignInRequest,
    responses((status = 200, description = "A `SignIn`", body = Object), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn sign_in(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<SignInRequest>,
) -> ApiResult<Json<SignIn>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(
        s.engine
            .begin_sign_in(&ctx, &r.username, r.password)
            .await?,
    ))
}

/// The second step of a sign-in.
///
/// A code for the user's method or the OATH fallback, or answers to security
/// questions. `{"result": "accepted", "user": ..., "session_minutes": ...}`
/// or `{"result": "rejected", "locked": ...}`.
#[utoipa::path(post, path = "/sdk/v1/portal/verify", tag = "portal", request_body = VerifyRequest,
    responses((status = 200, description = "A `Verified`", body = Object), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn verify(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<VerifyRequest>,
) -> ApiResult<Json<Verified>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(
        s.engine
            .verify(
                &ctx,
                &r.username,
                r.proof,
                r.code,
                answers_to_pairs(r.answers),
            )
            .await?,
    ))
}

/// The user's own record.
///
/// Not audited, like the in-process portal's read;
/// `GET /sdk/v1/users/{username}` is the audited administrative read.
#[utoipa::path(post, path = "/sdk/v1/portal/user", tag = "portal", request_body = PortalUser,
    responses((status = 200, description = "The `User`", body = Object), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn user(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<PortalUser>,
) -> ApiResult<Json<User>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(s.engine.portal_user(&ctx, &r.username).await?))
}

/// What the enrollment wizard offers this user.
#[utoipa::path(post, path = "/sdk/v1/portal/enrollment/options", tag = "portal", request_body = PortalUser,
    responses((status = 200, description = "`EnrollmentOptions`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn enrollment_options(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<PortalUser>,
) -> ApiResult<Json<EnrollmentOptions>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(s.engine.enrollment_options(&ctx, &r.username).await?))
}

/// A new authenticator-app secret.
///
/// `sealed` carries it through the portal session; only the MFA server can
/// open it.
#[utoipa::path(post, path = "/sdk/v1/portal/oath/new", tag = "portal", request_body = PortalUser,
    responses((status = 200, description = "`PendingOath`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn new_oath_secret(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<PortalUser>,
) -> ApiResult<Json<PendingOath>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(s.engine.new_oath_secret(&ctx, &r.username).await?))
}

/// A third-party token's secret typed in by the user.
#[utoipa::path(post, path = "/sdk/v1/portal/oath/import", tag = "portal", request_body = ImportOathRequest,
    responses((status = 200, description = "`PendingOath`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn import_oath_secret(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ImportOathRequest>,
) -> ApiResult<Json<PendingOath>> {
    let ctx = for_user(&caller, &r.username);
    let import = ImportOath {
        secret_base32: r.secret_base32,
        kind: r.kind,
        digits: r.digits,
    };
    Ok(Json(
        s.engine
            .import_oath_secret(&ctx, &r.username, import)
            .await?,
    ))
}

/// Proves the user holds a pending secret; returns it sealed as confirmed.
#[utoipa::path(post, path = "/sdk/v1/portal/oath/confirm", tag = "portal", request_body = ConfirmOathRequest,
    responses((status = 200, body = ConfirmedOath), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn confirm_oath(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ConfirmOathRequest>,
) -> ApiResult<Json<ConfirmedOath>> {
    let ctx = for_user(&caller, &r.username);
    let confirmed = s
        .engine
        .confirm_oath(&ctx, &r.username, r.pending, r.code)
        .await?;
    Ok(Json(ConfirmedOath { confirmed }))
}

/// Ends the enrollment wizard.
///
/// Writes everything the wizard collected in one transaction; returns the user.
#[utoipa::path(post, path = "/sdk/v1/portal/enrollment/finish", tag = "portal", request_body = FinishEnrollmentRequest,
    responses((status = 200, description = "The `User`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn finish_enrollment(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<FinishEnrollmentRequest>,
) -> ApiResult<Json<User>> {
    let ctx = for_user(&caller, &r.username);
    let finish = FinishEnrollment {
        method: r.method,
        oath: r.oath,
        pin: r.pin,
        answers: answers_to_pairs(r.answers),
    };
    Ok(Json(
        s.engine
            .finish_enrollment(&ctx, &r.username, finish)
            .await?,
    ))
}

/// What the account page shows and allows.
#[utoipa::path(post, path = "/sdk/v1/portal/account", tag = "portal", request_body = PortalUser,
    responses((status = 200, description = "An `Account`", body = Object), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn account(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<PortalUser>,
) -> ApiResult<Json<Account>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(s.engine.account(&ctx, &r.username).await?))
}

/// The user changes their PIN; the PIN rules apply.
#[utoipa::path(post, path = "/sdk/v1/portal/account/pin", tag = "portal", request_body = ChangePinRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(super) async fn change_pin(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ChangePinRequest>,
) -> ApiResult<StatusCode> {
    let ctx = for_user(&caller, &r.username);
    s.engine.change_pin(&ctx, &r.username, r.pin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user replaces their security answers.
#[utoipa::path(post, path = "/sdk/v1/portal/account/answers", tag = "portal", request_body = ChangeAnswersRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub(super) async fn change_answers(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ChangeAnswersRequest>,
) -> ApiResult<StatusCode> {
    let ctx = for_user(&caller, &r.username);
    s.engine
        .change_answers(&ctx, &r.username, answers_to_pairs(r.answers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a token the user confirmed (`/sdk/v1/portal/oath/confirm`).
#[utoipa::path(post, path = "/sdk/v1/portal/account/tokens", tag = "portal", request_body = AddPortalTokenRequest,
    responses((status = 201, description = "The `OathToken` (without its secret)", body = Object),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn add_token(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<AddPortalTokenRequest>,
) -> ApiResult<(StatusCode, Json<OathToken>)> {
    let ctx = for_user(&caller, &r.username);
    let t = s
        .engine
        .add_oath_token(&ctx, &r.username, r.confirmed, r.label)
        .await?;
    Ok(super::created(t))
}

/// The user removes one of their tokens (not the only one of an OATH user).
#[utoipa::path(post, path = "/sdk/v1/portal/account/tokens/delete", tag = "portal", request_body = DeletePortalTokenRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub(super) async fn delete_token(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<DeletePortalTokenRequest>,
) -> ApiResult<StatusCode> {
    let ctx = for_user(&caller, &r.username);
    s.engine
        .delete_oath_token(&ctx, &r.username, r.token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user chooses their language (when allowed).
#[utoipa::path(post, path = "/sdk/v1/portal/account/language", tag = "portal", request_body = ChangeLanguageRequest,
    responses((status = 200, description = "The `User`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn change_language(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ChangeLanguageRequest>,
) -> ApiResult<Json<User>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(
        s.engine
            .change_language(&ctx, &r.username, r.language)
            .await?,
    ))
}

/// The user chooses their method (when allowed).
#[utoipa::path(post, path = "/sdk/v1/portal/account/method", tag = "portal", request_body = ChangeMethodRequest,
    responses((status = 200, description = "The `User`", body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn change_method(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<ChangeMethodRequest>,
) -> ApiResult<Json<User>> {
    let ctx = for_user(&caller, &r.username);
    Ok(Json(
        s.engine.change_method(&ctx, &r.username, r.method).await?,
    ))
}

/// The user starts a one-time bypass of their next sign-on (when allowed).
#[utoipa::path(post, path = "/sdk/v1/portal/account/bypass", tag = "portal", request_body = StartBypassRequest,
    responses((status = 200, body = BypassResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn start_bypass(
    State(s): State<SdkState>,
    Caller(caller): Caller,
    ApiJson(r): ApiJson<StartBypassRequest>,
) -> ApiResult<Json<BypassResponse>> {
    let ctx = for_user(&caller, &r.username);
    let until = s.engine.start_bypass(&ctx, &r.username, r.seconds).await?;
    Ok(Json(BypassResponse {
        until: rfc3339(until),
    }))
}

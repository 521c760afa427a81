//! Authenticating a user with their method in steps, for applications that
//! cannot collect the passcode with the username (a RADIUS front-end, an IdP
//! with its own prompt): start a challenge, follow it, answer it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::HashMap;
use std::time::Duration;
use twofold_core::challenge::PhoneChoice;
use twofold_core::Error;
use twofold_proto::{
    AnswerRequest, AnswerResponse, AuthenticationStatus, ErrorBody, PhoneChoiceView,
    StartAuthenticationRequest, StartAuthenticationResponse,
};

use super::views::{answer_response, authentication_status, start_authentication_response};
use super::{ApiJson, ApiResult, Caller, SdkState};

/// A path the router matched but could not decode (bad percent-encoding)
/// names no challenge either.
fn challenge_id(path: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    path.map(|Path(id)| id)
        .map_err(|_| Error::NotFound("challenge"))
}

/// Starts authenticating a user with their method. Answers 201 with the
/// challenge to follow and answer before `expires_at`, and what to ask the
/// user for (`prompt`, `pin_required`); or 200 with `state` `rejected` and
/// `validate`'s reason when the user cannot be authenticated (unknown,
/// disabled, locked, not enrolled, ...): then nothing was started.
#[utoipa::path(post, path = "/sdk/v1/authenticate", tag = "authenticate", request_body = StartAuthenticationRequest,
    responses((status = 201, description = "Started", body = StartAuthenticationResponse, links(
                ("status" = (operation_id = "status", parameters(("id" = "$response.body#/id")))),
                ("answer" = (operation_id = "answer", parameters(("id" = "$response.body#/id")))),
              )),
              (status = 200, description = "Refused; nothing started", body = StartAuthenticationResponse),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn start(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(r): ApiJson<StartAuthenticationRequest>,
) -> ApiResult<(StatusCode, Json<StartAuthenticationResponse>)> {
    let phone = match r.phone.unwrap_or_default() {
        PhoneChoiceView::Primary => PhoneChoice::Primary,
        PhoneChoiceView::Backup => PhoneChoice::Backup,
    };
    let a = s
        .engine
        .start_authentication(&ctx, &r.username, phone)
        .await?;
    let status = if a.id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(start_authentication_response(&a))))
}

/// `?wait=SECONDS`: 0 to 60.
fn wait_of(query: &HashMap<String, String>) -> Result<Option<Duration>, Error> {
    let Some(text) = query.get("wait") else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(n) if n <= 60 => Ok(Some(Duration::from_secs(n))),
        _ => Err(Error::invalid(
            "wait",
            "must be a whole number of seconds from 0 to 60",
        )),
    }
}

/// Where a challenge stands. Only the account that started it can see it;
/// for any other, as for unknown ids, it does not exist (404). A pending
/// challenge past `expires_at` is `expired`. With `wait`, a pending
/// challenge is answered the moment it is decided (a call approved, a text
/// message replied) or when `wait` seconds have passed — a long-poll, so a
/// caller needs no polling loop.
#[utoipa::path(get, path = "/sdk/v1/authenticate/{id}", tag = "authenticate",
    params(("id" = String, Path, description = "The challenge id from the start"),
           ("wait" = Option<u32>, Query, minimum = 0, maximum = 60,
            description = "Seconds to wait for the decision of a pending challenge (0-60)")),
    responses((status = 200, body = AuthenticationStatus), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn status(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    path: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<AuthenticationStatus>> {
    let id = challenge_id(path)?;
    let wait = wait_of(&query)?;
    let a = s.engine.authentication_status(&ctx, &id, wait).await?;
    Ok(Json(authentication_status(&a)))
}

/// Answers a pending challenge with what the user typed: the OTP (an OATH
/// code, or the code of the text message), or the PIN followed by it when
/// `pin_required`. Challenges answered on the phone (`prompt` `phone_call`
/// or `sms_reply`) take no answer here (409 `answered_elsewhere`). A code is accepted once;
/// wrong answers count towards the user's lockout, and the third rejects
/// the challenge (`too_many_attempts`). A challenge that is no longer
/// pending takes no answers (409).
#[utoipa::path(post, path = "/sdk/v1/authenticate/{id}/answer", tag = "authenticate",
    params(("id" = String, Path, description = "The challenge id from the start")),
    request_body = AnswerRequest,
    responses((status = 200, body = AnswerResponse), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn answer(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    path: Result<Path<String>, PathRejection>,
    ApiJson(r): ApiJson<AnswerRequest>,
) -> ApiResult<Json<AnswerResponse>> {
    let id = challenge_id(path)?;
    if r.passcode.chars().count() > twofold_proto::rules::PASSCODE_MAX {
        return Err(Error::invalid(
            "passcode",
            format!(
                "must be at most {} characters",
                twofold_proto::rules::PASSCODE_MAX
            ),
        )
        .into());
    }
    let a = s
        .engine
        .answer_authentication(&ctx, &id, &r.passcode)
        .await?;
    Ok(Json(answer_response(&a)))
}

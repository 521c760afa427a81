//! OATH tokens of a user, and the security questions users choose from.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use twofold_core::Error;
use twofold_proto::{
    ErrorBody, QuestionRequest, QuestionView, ResyncRequest, TokenRequest, TokenView,
};

use super::views::{question_view, token_params, token_view};
use super::{created, ApiJson, ApiResult, Caller, SdkState};

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Error> {
    p.map(|Path(v)| v)
        .map_err(|e| Error::invalid("path", e.body_text()))
}

/// A user's tokens (secrets are never returned).
#[utoipa::path(get, path = "/sdk/v1/users/{username}/tokens", tag = "tokens", operation_id = "list_tokens", params(("username" = String, Path)),
    responses((status = 200, body = Vec<TokenView>), (status = 404, body = ErrorBody)))]
pub(super) async fn list(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = s.engine.tokens(&ctx, &username).await?;
    s.engine
        .record_read(&ctx, "sdk.tokens_list", Some(&username))
        .await?;
    Ok(Json(tokens.iter().map(token_view).collect()))
}

/// Gives a user an OATH token (hardware token or authenticator app).
#[utoipa::path(post, path = "/sdk/v1/users/{username}/tokens", tag = "tokens", operation_id = "add_token", params(("username" = String, Path)), request_body = TokenRequest,
    responses((status = 201, body = TokenView, links(
                ("resync" = (operation_id = "resync_token", parameters(("username" = "$request.path.username"), ("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete_token", parameters(("username" = "$request.path.username"), ("id" = "$response.body#/id")))),
              )),
              (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn add(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let t = s
        .engine
        .add_token(
            &ctx,
            &username,
            &r.secret,
            token_params(&r)?,
            r.label.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(created(token_view(&t.token)))
}

/// Removes one of a user's tokens.
#[utoipa::path(delete, path = "/sdk/v1/users/{username}/tokens/{id}", tag = "tokens", operation_id = "delete_token", params(("username" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody)))]
pub(super) async fn delete(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    p: Result<Path<(String, i64)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let (username, id) = path(p)?;
    s.engine.delete_token(&ctx, &username, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resynchronises an event-based token with two consecutive codes.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/tokens/{id}/resync", tag = "tokens", operation_id = "resync_token", params(("username" = String, Path), ("id" = i64, Path)), request_body = ResyncRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn resync(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    p: Result<Path<(String, i64)>, PathRejection>,
    ApiJson(r): ApiJson<ResyncRequest>,
) -> ApiResult<StatusCode> {
    let (username, id) = path(p)?;
    s.engine
        .resync_token(&ctx, &username, id, &r.code1, &r.code2)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct QuestionParams {
    /// Only questions in this language (`en`, `nl`).
    #[param(nullable = false, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    language: Option<String>,
}

/// The security questions users choose from.
#[utoipa::path(get, path = "/sdk/v1/questions", tag = "questions", params(QuestionParams),
    responses((status = 200, body = Vec<QuestionView>)))]
pub(super) async fn questions(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    q: Result<Query<QuestionParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<QuestionView>>> {
    let Query(p) = q.map_err(|e| Error::invalid("query", e.body_text()))?;
    let questions = s.engine.questions(&ctx, p.language.as_deref()).await?;
    s.engine
        .record_read(&ctx, "sdk.questions_list", None)
        .await?;
    Ok(Json(questions.iter().map(question_view).collect()))
}

/// Adds a question in one language.
#[utoipa::path(post, path = "/sdk/v1/questions", tag = "questions", request_body = QuestionRequest,
    responses((status = 201, body = QuestionView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn add_question(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(r): ApiJson<QuestionRequest>,
) -> ApiResult<(StatusCode, Json<QuestionView>)> {
    let q = s.engine.add_question(&ctx, &r.language, &r.text).await?;
    Ok(created(question_view(&q)))
}

/// Removes a question and every answer to it.
#[utoipa::path(delete, path = "/sdk/v1/questions/{id}", tag = "questions", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_question(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    p: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    s.engine.delete_question(&ctx, path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

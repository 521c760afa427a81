//! Users: find, create, read, change, enable/disable/unblock, delete; and
//! their password, PIN, method, language and one-time bypass.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use twofold_core::ports::UserQuery;
use twofold_core::service::CreateUser;
use twofold_core::user::UserPatch;
use twofold_core::Error;
use twofold_proto::{
    BypassRequest, BypassResponse, CreateUserRequest, ErrorBody, LanguageRequest, MethodRequest,
    PasswordRequest, PinRequest, UpdateUserRequest, UserList, UserView,
};

use super::views::user_view;
use super::{created, ApiJson, ApiResult, Caller, SdkState};

fn view(s: &SdkState, u: &twofold_core::user::User) -> UserView {
    user_view(u, s.engine.now())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Usernames starting with this (any case).
    #[param(nullable = false, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    prefix: Option<String>,
    /// Members of this group.
    #[param(nullable = false, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    group: Option<String>,
    /// The `next_after` of the previous page.
    #[param(nullable = false, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    after: Option<String>,
    /// Users per page, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Finds users, in pages ordered by username.
#[utoipa::path(get, path = "/sdk/v1/users", tag = "users", operation_id = "list_users", params(ListParams),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn list(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    q: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<UserList>> {
    let Query(p) = q.map_err(|e| Error::invalid("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit", "must be 1..=1000").into());
    }
    let users = s
        .engine
        .list_users(
            &ctx,
            UserQuery {
                prefix: p.prefix,
                group: p.group,
                after: p.after,
                limit,
                ..UserQuery::default()
            },
        )
        .await?;
    // Reads are recorded once allowed, so a refusal is not also a read.
    s.engine.record_read(&ctx, "sdk.users_list", None).await?;
    let next_after = if u32::try_from(users.len()) == Ok(limit) {
        users.last().map(|u| u.username.clone())
    } else {
        None
    };
    Ok(Json(UserList {
        users: users.iter().map(|u| view(&s, u)).collect(),
        next_after,
    }))
}

/// Creates a user.
#[utoipa::path(post, path = "/sdk/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn create(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(r): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let u = s
        .engine
        .create_user(
            &ctx,
            CreateUser {
                username: r.username,
                display_name: r.display_name,
                email: r.email,
                groups: r.groups,
                language: r.language,
                password: r.password,
                phone: r.phone,
                phone_extension: r.phone_extension,
                backup_phone: r.backup_phone,
                mobile_phone: r.mobile_phone,
                default_method: r.method,
            },
        )
        .await?;
    Ok(created(view(&s, &u)))
}

/// One user.
#[utoipa::path(get, path = "/sdk/v1/users/{username}", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = s.engine.get_user(&ctx, &username).await?;
    s.engine
        .record_read(&ctx, "sdk.user_read", Some(&user.username))
        .await?;
    Ok(Json(view(&s, &user)))
}

/// Changes a user's profile; fields left out stay as they are.
#[utoipa::path(patch, path = "/sdk/v1/users/{username}", tag = "users", params(("username" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn update(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    let patch = UserPatch {
        display_name: r.display_name,
        email: r.email,
        groups: r.groups,
        language: r.language,
        default_method: r.method,
        phone: r.phone,
        phone_extension: r.phone_extension,
        backup_phone: r.backup_phone,
        mobile_phone: r.mobile_phone,
    };
    Ok(Json(view(
        &s,
        &s.engine.update_user(&ctx, &username, patch).await?,
    )))
}

/// Deletes a user and everything attached to them.
#[utoipa::path(delete, path = "/sdk/v1/users/{username}", tag = "users", operation_id = "delete_user", params(("username" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody)))]
pub(super) async fn delete(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_user(&ctx, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Allows the user to sign in again.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/enable", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody)))]
pub(super) async fn enable(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(view(
        &s,
        &s.engine.set_user_enabled(&ctx, &username, true).await?,
    )))
}

/// Refuses every sign-in of the user until enabled.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/disable", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody)))]
pub(super) async fn disable(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(view(
        &s,
        &s.engine.set_user_enabled(&ctx, &username, false).await?,
    )))
}

/// Lifts a lockout or a fraud block.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/unblock", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody)))]
pub(super) async fn unblock(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(view(
        &s,
        &s.engine.unblock_user(&ctx, &username).await?,
    )))
}

/// Sets the user's local password.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/password", tag = "users", params(("username" = String, Path)), request_body = PasswordRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn password(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<PasswordRequest>,
) -> ApiResult<StatusCode> {
    s.engine.set_password(&ctx, &username, r.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets or resets the user's PIN; the PIN rules apply.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/pin", tag = "users", params(("username" = String, Path)), request_body = PinRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn pin(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<PinRequest>,
) -> ApiResult<StatusCode> {
    s.engine.set_pin(&ctx, &username, &r.pin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the user's method (`method` or `method:mode`).
#[utoipa::path(put, path = "/sdk/v1/users/{username}/method", tag = "users", params(("username" = String, Path)), request_body = MethodRequest,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn method(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<MethodRequest>,
) -> ApiResult<Json<UserView>> {
    let patch = UserPatch {
        default_method: Some(r.method),
        ..Default::default()
    };
    Ok(Json(view(
        &s,
        &s.engine.update_user(&ctx, &username, patch).await?,
    )))
}

/// Sets the user's language.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/language", tag = "users", params(("username" = String, Path)), request_body = LanguageRequest,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn language(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<LanguageRequest>,
) -> ApiResult<Json<UserView>> {
    let patch = UserPatch {
        language: Some(r.language),
        ..Default::default()
    };
    Ok(Json(view(
        &s,
        &s.engine.update_user(&ctx, &username, patch).await?,
    )))
}

/// Grants a one-time bypass: the user's next sign-on within the given
/// seconds skips the second step, once.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/bypass", tag = "users", params(("username" = String, Path)), request_body = BypassRequest,
    responses((status = 200, body = BypassResponse), (status = 404, body = ErrorBody), (status = 409, description = "Changed meanwhile, or the change would leave something required behind (`reason`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn bypass(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    Path(username): Path<String>,
    ApiJson(r): ApiJson<BypassRequest>,
) -> ApiResult<Json<BypassResponse>> {
    let until = s
        .engine
        .grant_bypass(&ctx, &username, r.seconds, r.reason.as_deref())
        .await?;
    Ok(Json(BypassResponse {
        until: until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }))
}

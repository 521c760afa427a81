//! Runtime settings through the SDK: read, change one key, reset one key
//! (role `admin` with `manage_settings` for the changes).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use twofold_core::settings::Settings;
use twofold_core::Error;
use twofold_proto::{ErrorBody, SettingValue};

use super::{ApiJson, ApiResult, Caller, SdkState};

fn key_of(p: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    p.map(|Path(k)| k)
        .map_err(|e| Error::invalid("path", e.body_text()))
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

//! Domain error → HTTP status and stable JSON code, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use twofold_core::error::AuthFailure;
use twofold_core::Error;

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Forbidden(_)
        | Error::Unauthenticated {
            reason: AuthFailure::ActivationCode,
            ..
        } => StatusCode::FORBIDDEN,
        Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        // Internal details go to the log, not to the client.
        let message = match &self.0 {
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_string()
            }
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                "service unavailable".to_string()
            }
            other => other.to_string(),
        };
        let field = match &self.0 {
            Error::InvalidInput { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let reason = match &self.0 {
            Error::Conflict { reason, .. } => Some(reason.as_str()),
            Error::Unauthenticated { reason, .. } => Some(reason.as_str()),
            _ => None,
        };
        (
            status,
            Json(Body {
                error: self.0.code(),
                message,
                field,
                reason,
            }),
        )
            .into_response()
    }
}

//! JSON bodies whose every rejection (malformed JSON, unknown fields, wrong
//! types, wrong content type) is a stable `invalid_input` error, not axum's
//! plain-text default.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use twofold_core::Error;

use super::SdkError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err((
                    rejection.status(),
                    axum::Json(twofold_proto::ErrorBody {
                        error: "too_large".into(),
                        message: "the request body is too large".into(),
                        field: None,
                        reason: None,
                    }),
                )
                    .into_response())
            }
            Err(rejection) => {
                let message = rejection.body_text();
                Err(SdkError(Error::invalid("body", message)).into_response())
            }
        }
    }
}

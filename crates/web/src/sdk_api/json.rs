//! JSON bodies whose every rejection (malformed JSON, unknown fields, wrong
//! types, wrong content type) is a stable `invalid_input` error, not axum's
//! plain-text default. A body is a JSON object, as the document says: serde
//! would also fill a struct from an array of its fields in order (`[300]`
//! for `{"seconds": 300}`), which no client should come to rely on.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;
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
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(v))) => Ok(ApiJson(v)),
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

/// `T`, from a JSON object only.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::Object;
    use serde_json::json;
    use twofold_proto::link::LinkRequest;
    use twofold_proto::BypassRequest;

    #[test]
    fn bodies_are_objects_only() {
        let Object(b) =
            serde_json::from_value::<Object<BypassRequest>>(json!({"seconds": 300, "reason": "x"}))
                .unwrap();
        assert_eq!(b.seconds, Some(300));
        for array in [json!([]), json!([300, "x"])] {
            let e = serde_json::from_value::<Object<BypassRequest>>(array)
                .err()
                .unwrap();
            assert!(e.to_string().contains("expected a JSON object"), "{e}");
        }
        assert!(serde_json::from_value::<Object<BypassRequest>>(json!({"nope": 1})).is_err());
        // Tagged enums still read their tag.
        let Object(op) =
            serde_json::from_value::<Object<LinkRequest>>(json!({"op": "ready"})).unwrap();
        assert_eq!(op.op(), "ready");
    }
}

//! The SDK does what its OpenAPI document says, in the places the document
//! used to be wrong (issue 8, finding 11). The whole document is checked by
//! schemathesis in `twofold/tests/openapi_conformance.rs`; these are the
//! fixes one by one, fast.

#[macro_use]
mod common;

use common::{Api, Portal};
use reqwest::StatusCode;
use serde_json::json;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    bodies_are_objects,
    listings_take_their_filters_from_the_query,
    integers_may_be_written_as_json_numbers,
    a_token_period_is_in_range_for_every_kind,
);

async fn bodies_are_objects(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "ops").await;
    // serde fills a struct from an array of its fields in order; the
    // document says object, and so does the server now.
    for body in [json!([]), json!([300, "x"]), json!(300), json!("x")] {
        let (s, v) = api.post("/users/jan/bypass", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"], "invalid_input", "{body}: {v}");
    }
    let (s, v) = api.post("/users/jan/bypass", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn listings_take_their_filters_from_the_query(backend: Backend) {
    let p = Portal::start(backend).await;
    for name in ["anna", "bert", "cees"] {
        p.user(name).await;
    }
    let api = Api::new(&p, "ops").await;
    // No filter at all: every parameter is optional.
    let (s, v) = api.get("/users").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["users"].as_array().unwrap().len(), 3);
    let (s, v) = api.get("/users?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next_after"], "bert");
    let (s, v) = api.get("/users?prefix=c").await;
    assert_eq!(v["users"][0]["username"], "cees", "{s}: {v}");
    for bad in [
        "/users?limit=0",
        "/users?limit=1001",
        "/audit?limit=0",
        "/users?nope=1",
    ] {
        let (s, v) = api.get(bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let (s, v) = api.get("/audit?limit=5&subject=anna").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = api.get("/questions?language=nl").await;
    assert_eq!(s, StatusCode::OK);
}

async fn integers_may_be_written_as_json_numbers(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "ops").await;
    // JSON Schema's `integer` counts 300.0 and 3e2 as 300.
    for seconds in [json!(300.0), json!(3e2)] {
        let (s, v) = api
            .post("/users/jan/bypass", json!({"seconds": seconds}))
            .await;
        assert_eq!(s, StatusCode::OK, "{seconds}: {v}");
    }
    let (s, v) = api
        .post("/users/jan/bypass", json!({"seconds": 300.5}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

async fn a_token_period_is_in_range_for_every_kind(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "ops").await;
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    for kind in ["totp", "hotp"] {
        for period in [5, 301] {
            let (s, v) = api
                .post(
                    "/users/jan/tokens",
                    json!({"type": kind, "secret": secret, "period": period}),
                )
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{kind} {period}: {v}");
            assert_eq!(v["field"], "period", "{v}");
        }
    }
    let (s, v) = api
        .post(
            "/users/jan/tokens",
            json!({"type": "hotp", "secret": secret, "period": 60.0, "digits": 8.0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["period"].as_u64(), v["digits"].as_u64()),
        (Some(60), Some(8))
    );
}

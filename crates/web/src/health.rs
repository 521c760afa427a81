//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

use crate::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 while the process serves requests.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers within a few seconds. The primary
/// directory (LDAP, RADIUS), when configured, is reported in the body —
/// `"directory": {"kind": "ldap", "status": "unreachable", ...}` — without
/// failing readiness: taking every node out of the load balancer because a
/// domain controller is down would also stop trusted-address sign-ins and
/// the SDK's passcode checks.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(
        READY_TIMEOUT,
        state
            .service
            .ready(&twofold_core::Ctx::portal_visitor(None)),
    )
    .await
    {
        Ok(Ok(r)) => {
            let mut body = json!({ "status": "ready" });
            if let Some(d) = r.directory {
                body["directory"] = json!({
                    "kind": d.kind.as_str(),
                    "status": if d.reachable { "reachable" } else { "unreachable" },
                    "error": d.error,
                });
            }
            (StatusCode::OK, Json(body))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": e.code() })),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "timeout" })),
        ),
    }
}

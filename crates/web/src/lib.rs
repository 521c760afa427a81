//! HTTP faces of the engine. Handlers parse, call `MfaService`, render; the
//! one mapping from domain errors to HTTP lives in `error`.

pub mod error;
pub mod health;
pub mod portal;
pub mod security_headers;

use axum::Router;
use std::sync::Arc;
use twofold_core::MfaService;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn MfaService>,
}

/// The whole HTTP application served by `twofold serve`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(portal::router())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(security_headers::apply))
        .with_state(state)
}

//! HTTP faces of the engine. Handlers parse, call one method of the service
//! trait they need (`PortalService` for the portal; `Verifier`,
//! `AdminService` and `PortalService` for the SDK), render; the one mapping
//! from domain errors to HTTP lives in `error`.

pub mod client_ip;
pub mod error;
pub mod health;
pub mod portal;
pub mod sdk_api;
pub mod security_headers;

use axum::Router;
use std::sync::Arc;
use twofold_core::{PortalService, SdkBackend};

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn PortalService>,
}

/// The whole HTTP application served by `twofold serve`: the portal, health
/// and the Web Service SDK (which needs every service, so a portal-only
/// process passes `None`). Clients are taken to be their socket's address.
pub fn app(state: AppState, sdk: Option<Arc<dyn SdkBackend>>) -> Router {
    app_behind(state, sdk, client_ip::TrustedProxies::default())
}

/// `app` for a deployment behind reverse proxies or load balancers, whose
/// `X-Forwarded-For` is believed when they connect from `proxies`.
pub fn app_behind(
    state: AppState,
    sdk: Option<Arc<dyn SdkBackend>>,
    proxies: client_ip::TrustedProxies,
) -> Router {
    let sdk = sdk.map(sdk_api::router).unwrap_or_default();
    Router::new()
        .merge(health::router())
        .merge(portal::router())
        .with_state(state)
        .merge(sdk)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            proxies,
            client_ip::resolve,
        ))
        .layer(axum::middleware::from_fn(security_headers::apply))
}

//! HTTP faces of the engine. Handlers parse, call one method of the service
//! trait they need (`PortalService` for the portal; `Verifier`,
//! `AdminService` and `PortalService` for the SDK), render; the one mapping
//! from domain errors to HTTP lives in `error`.

pub mod admin;
pub mod client_ip;
pub mod dev_outbox;
pub mod error;
pub mod forward_auth;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod mobile;
pub mod portal;
pub mod sdk_api;
pub mod security_headers;

use axum::Router;
use std::sync::Arc;
use twofold_core::service::{
    AdminConsole, AdminService, DevOutbox, ForwardAuth, MobileService, ProviderHooks, ReportService,
};
use twofold_core::{PortalService, SdkBackend};

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn PortalService>,
}

/// What the MFA server serves besides the portal: the Web Service SDK
/// (which needs every service) and the providers' webhooks. A portal-only
/// process has neither.
#[derive(Clone)]
pub struct ServerParts {
    pub sdk: Arc<dyn SdkBackend>,
    pub hooks: Arc<dyn ProviderHooks>,
    /// The development outbox's page (404 unless that mode is on).
    pub outbox: Arc<dyn DevOutbox>,
    pub mobile: Arc<dyn MobileService>,
    /// Forward-auth for reverse proxies (passed sessions).
    pub forward: Arc<dyn ForwardAuth>,
    /// The admin pages: administration as the signed-in administrator.
    pub admin: Arc<dyn AdminService>,
    pub console: Arc<dyn AdminConsole>,
    pub reports: Arc<dyn ReportService>,
    /// `GET /metrics` and the counting of every request, when configured.
    pub metrics: Option<Arc<metrics::Metrics>>,
}

impl ServerParts {
    /// All from one engine.
    pub fn of<
        T: SdkBackend
            + ProviderHooks
            + DevOutbox
            + MobileService
            + ForwardAuth
            + AdminConsole
            + ReportService,
    >(
        engine: Arc<T>,
    ) -> ServerParts {
        ServerParts {
            admin: engine.clone(),
            console: engine.clone(),
            reports: engine.clone(),
            sdk: engine.clone(),
            hooks: engine.clone(),
            mobile: engine.clone(),
            forward: engine.clone(),
            outbox: engine,
            metrics: None,
        }
    }

    /// The same parts serving `metrics` at `/metrics`.
    pub fn with_metrics(mut self, metrics: Arc<metrics::Metrics>) -> ServerParts {
        self.metrics = Some(metrics);
        self
    }
}

/// The whole HTTP application served by `twofold serve`: the portal, health
/// and, on the MFA server, the SDK and the webhooks. Clients are taken to
/// be their socket's address.
pub fn app(state: AppState, server: Option<ServerParts>) -> Router {
    app_behind(state, server, client_ip::TrustedProxies::default())
}

/// `app` for a deployment behind reverse proxies or load balancers, whose
/// `X-Forwarded-For` is believed when they connect from `proxies`.
pub fn app_behind(
    state: AppState,
    server: Option<ServerParts>,
    proxies: client_ip::TrustedProxies,
) -> Router {
    app_with(state, server, proxies, Router::new())
}

/// A portal on a separate server: the portal, and the Mobile App Web
/// Service passed on to the MFA server through `relay`.
pub fn portal_app(
    state: AppState,
    relay: Arc<mobile::relay::Relay>,
    proxies: client_ip::TrustedProxies,
) -> Router {
    app_with(state, None, proxies, mobile::relay::router(relay))
}

fn app_with(
    state: AppState,
    server: Option<ServerParts>,
    proxies: client_ip::TrustedProxies,
    extra: Router,
) -> Router {
    let measured = server.as_ref().and_then(|s| s.metrics.clone());
    let (sdk, hooks) = match server {
        Some(s) => (
            sdk_api::router(s.sdk),
            hooks::router(s.hooks)
                .merge(admin::router(admin::AdminState {
                    admin: s.admin,
                    console: s.console,
                    reports: s.reports,
                    sessions: state.service.clone(),
                }))
                .merge(dev_outbox::router(s.outbox))
                .merge(mobile::router(s.mobile))
                .merge(forward_auth::router(s.forward, proxies.clone())),
        ),
        None => (Router::new(), Router::new()),
    };
    let app = Router::new()
        .merge(health::router())
        .merge(portal::router())
        .with_state(state)
        .merge(sdk)
        .merge(hooks)
        .merge(extra);
    // Inside the client-address layer: `/metrics` checks `ClientIp`.
    let app = match measured {
        Some(m) => app
            .merge(metrics::router(m.clone()))
            .layer(axum::middleware::from_fn_with_state(m, metrics::record)),
        None => app,
    };
    app.layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            proxies,
            client_ip::resolve,
        ))
        .layer(axum::middleware::from_fn(security_headers::apply))
}

//! Forward-auth: reverse proxies ask here whether a browser's request may
//! reach the site they protect. Two styles of the same question:
//!
//! * `/auth/nginx` — nginx `auth_request`: 2xx lets the request through;
//!   401 means "sign in", with the portal's sign-in address (the original
//!   URL in it) in `Location` for nginx's `error_page 401` to send the
//!   browser to; 403 means no.
//! * `/auth/forward` — Traefik `forwardAuth`, Caddy `forward_auth`: 2xx
//!   lets it through; anything else goes to the browser as it is: a 302 to
//!   the portal's sign-in carrying the original URL, or 403.
//!
//! The request asked about is read from `X-Original-URL`, else
//! `X-Forwarded-Proto`/`-Host`/`-URI`, and the browser's address from
//! `X-Forwarded-For` — only when the asking peer is in `proxy.trusted`.
//! From anyone else those headers are ignored, and a request nobody
//! trusted describes is refused. On success the site gets the user in
//! `Remote-User`, `Remote-Groups`, `Remote-Name` and `Remote-Email`.
//!
//! The handlers parse the proxy's headers, make one `ForwardAuth` call and
//! render its decision; the engine decides.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use twofold_core::passed::{
    ForwardDecision, ForwardRequest, RemoteUser, Target, COOKIE_NAME, MAX_COOKIES,
};
use twofold_core::service::ForwardAuth;
use twofold_core::Ctx;

use crate::client_ip::{ClientIp, TrustedProxies};

#[derive(Clone)]
pub struct ForwardState {
    pub service: Arc<dyn ForwardAuth>,
    pub proxies: TrustedProxies,
}

pub fn router(service: Arc<dyn ForwardAuth>, proxies: TrustedProxies) -> Router {
    Router::new()
        .route("/auth/nginx", any(nginx))
        .route("/auth/forward", any(forward))
        .with_state(ForwardState { service, proxies })
}

/// How the proxy expects "sign in first".
#[derive(Clone, Copy)]
enum Style {
    /// 401: nginx's `error_page` redirects.
    Status,
    /// 302 to the portal: the proxy passes it to the browser.
    Redirect,
}

async fn nginx(State(state): State<ForwardState>, request: Request) -> Response {
    let asked = read(&state, &request);
    decide(&state, asked, Style::Status).await
}

async fn forward(State(state): State<ForwardState>, request: Request) -> Response {
    let asked = read(&state, &request);
    decide(&state, asked, Style::Redirect).await
}

/// What the proxy asks, from its headers — believed only from a trusted
/// peer.
fn read(state: &ForwardState, request: &Request) -> ForwardRequest {
    let headers = request.headers();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // The browser's address as `client_ip::resolve` found it (from a
    // trusted proxy's `X-Forwarded-For`).
    let client = request.extensions().get::<ClientIp>().map(|c| c.0);
    let trusted = peer.is_some_and(|ip| state.proxies.trusts(ip));
    if !trusted && warn_now() {
        // Most likely a proxy left out of proxy.trusted: say so, as every
        // request it asks about will be refused — at most once a minute,
        // so anyone can knock without filling the log.
        tracing::warn!(
            peer = ?peer,
            "forward-auth asked by a peer not in proxy.trusted: its X-Forwarded-* headers are ignored and the request refused"
        );
    }
    ForwardRequest {
        tokens: passed_cookies(headers),
        target: if trusted { target(headers) } else { None },
        client: if trusted { client } else { None },
    }
}

async fn decide(state: &ForwardState, asked: ForwardRequest, style: Style) -> Response {
    let ctx = Ctx::forward_proxy(asked.client);
    match state.service.forward_check(&ctx, asked).await {
        Ok(decision) => render(decision, style),
        Err(e) => {
            tracing::warn!(error = %e, "forward-auth could not decide");
            let status = match e {
                twofold_core::Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            no_store(status.into_response())
        }
    }
}

/// True at most once a minute (for a warning anyone could trigger).
fn warn_now() -> bool {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let last = LAST.load(Ordering::Relaxed);
    now.saturating_sub(last) >= 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The passed-session cookies of the request, in the browser's order.
fn passed_cookies(headers: &HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pair in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
    {
        if let Some((name, value)) = pair.trim().split_once('=') {
            if name == COOKIE_NAME && !out.iter().any(|v| v == value) {
                out.push(value.to_string());
            }
        }
    }
    out.truncate(MAX_COOKIES);
    out
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The request the trusted proxy asks about: `X-Original-URL` (nginx
/// snippets set it), else the `X-Forwarded-*` parts (Traefik and Caddy
/// send them). Unreadable or ambiguous: `None`, which is refused.
fn target(headers: &HeaderMap) -> Option<Target> {
    let parsed = match header(headers, "x-original-url") {
        Some(url) => Target::parse(url),
        None => Target::from_parts(
            header(headers, "x-forwarded-proto").unwrap_or("https"),
            header(headers, "x-forwarded-host")?,
            headers
                .get("x-forwarded-uri")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("/"),
        ),
    };
    match parsed {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::info!(error = %e, "forward-auth refused a request it cannot judge");
            None
        }
    }
}

fn render(decision: ForwardDecision, style: Style) -> Response {
    match decision {
        ForwardDecision::Allow(user) => {
            let mut res = StatusCode::OK.into_response();
            user_headers(res.headers_mut(), user);
            no_store(res)
        }
        ForwardDecision::SignIn { portal, return_to } => {
            // Both styles carry the sign-in address (the original URL
            // encoded in it): nginx reads it with `auth_request_set
            // $signin $upstream_http_location` for its `error_page 401`.
            let status = match style {
                Style::Status => StatusCode::UNAUTHORIZED,
                Style::Redirect => StatusCode::FOUND,
            };
            let to = ForwardDecision::sign_in_url(&portal, return_to.as_deref());
            let mut res = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                res.headers_mut().insert(LOCATION, v);
            }
            no_store(res)
        }
        ForwardDecision::Forbidden => no_store(StatusCode::FORBIDDEN.into_response()),
    }
}

/// `Remote-User` and friends, always all four (empty on a `bypass` path):
/// proxies copy them over whatever the browser sent under those names, and
/// Caddy would otherwise pass a placeholder. Names and e-mail addresses
/// hold no control characters (checked when they were stored); a value a
/// header cannot carry is sent empty rather than mangled.
fn user_headers(h: &mut HeaderMap, user: Option<RemoteUser>) {
    let mut put = |name: &'static str, value: &str| {
        let v = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        h.insert(HeaderName::from_static(name), v);
    };
    let user = user.unwrap_or(RemoteUser {
        username: String::new(),
        groups: Vec::new(),
        name: None,
        email: None,
    });
    put("remote-user", &user.username);
    put("remote-groups", &user.groups.join(","));
    put("remote-name", user.name.as_deref().unwrap_or(""));
    put("remote-email", user.email.as_deref().unwrap_or(""));
}

/// Decisions are per request and per user: never cached by a proxy.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

//! `/dev/outbox`: the development outbox's page, served only while the
//! server keeps calls and text messages instead of sending them (`[delivery]
//! provider = "outbox"`); otherwise 404. It shows what would have been sent
//! and plays the phone — answer a call and press keys, let it ring out,
//! reply to a text — through `DevOutbox`. English only: a developer's tool.
//!
//! Its forms carry a random token of this process (no sessions here):
//! another site cannot read the page, so cannot forge its forms.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use twofold_core::principal::Access;
use twofold_core::service::{Actor, CallStep, DevOutbox, OutboxEntry};
use twofold_core::{Ctx, Error};

use crate::client_ip::ClientIp;
use crate::error::ApiError;

#[derive(Clone)]
struct Outbox {
    engine: Arc<dyn DevOutbox>,
    token: Arc<String>,
}

pub fn router(engine: Arc<dyn DevOutbox>) -> Router {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    Router::new()
        .route("/dev/outbox", get(page))
        .route("/dev/outbox/call", post(call))
        .route("/dev/outbox/reply", post(reply))
        .with_state(Outbox {
            engine,
            token: Arc::new(token),
        })
}

struct Row {
    id: i64,
    at: String,
    call: bool,
    destination: String,
    body: String,
    state: Option<String>,
    says: Option<String>,
}

#[derive(Template)]
#[template(path = "dev_outbox.html")]
struct Page<'a> {
    csrf: &'a str,
    note: Option<String>,
    entries: Vec<Row>,
}

fn row(e: OutboxEntry) -> Row {
    let state = e.state.map(|s| match e.reason {
        Some(r) => format!("{s}: {}", r.as_str()),
        None => s.to_string(),
    });
    Row {
        id: e.message.id,
        at: e
            .message
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        call: e.message.kind == twofold_core::ports::OutboxKind::Call,
        destination: e.message.destination,
        body: e.message.body,
        state,
        says: e.says,
    }
}

fn ctx(ip: Option<Extension<ClientIp>>) -> Ctx {
    Ctx::new(
        Actor::System,
        Access::none(),
        ip.map(|Extension(ClientIp(ip))| ip),
    )
}

async fn render(s: &Outbox, ctx: &Ctx, note: Option<String>) -> Result<Response, ApiError> {
    let entries = s.engine.outbox(ctx).await?.into_iter().map(row).collect();
    let page = Page {
        csrf: &s.token,
        note,
        entries,
    };
    match page.render() {
        Ok(body) => {
            Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
        }
        Err(e) => Err(ApiError(Error::Internal(format!("template: {e}")))),
    }
}

async fn page(
    State(s): State<Outbox>,
    ip: Option<Extension<ClientIp>>,
) -> Result<Response, ApiError> {
    render(&s, &ctx(ip), None).await
}

/// Whether the form carries this process's token (constant time).
fn checked(s: &Outbox, form: &HashMap<String, String>) -> bool {
    let presented = form.get("csrf").map_or("", String::as_str);
    presented.len() == s.token.len() && bool::from(presented.as_bytes().ct_eq(s.token.as_bytes()))
}

fn stale() -> Response {
    (StatusCode::FORBIDDEN, "stale form: reload /dev/outbox").into_response()
}

fn message_id(form: &HashMap<String, String>) -> Result<i64, ApiError> {
    form.get("message")
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| ApiError(Error::invalid("message", "no such message")))
}

async fn call(
    State(s): State<Outbox>,
    ip: Option<Extension<ClientIp>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !checked(&s, &form) {
        return Ok(stale());
    }
    let ctx = ctx(ip);
    let id = message_id(&form)?;
    let keys = match form.get("action").map(String::as_str) {
        Some("ring-out") => None,
        _ => Some(form.get("keys").map_or("", String::as_str)),
    };
    let note = match s.engine.outbox_call(&ctx, id, keys).await? {
        None => "The call rang out unanswered.".to_string(),
        Some(CallStep::Gather { say, .. }) => format!("The call says: {say}"),
        Some(CallStep::Hangup { say, .. }) => format!("The call said \"{say}\" and hung up."),
    };
    render(&s, &ctx, Some(note)).await
}

async fn reply(
    State(s): State<Outbox>,
    ip: Option<Extension<ClientIp>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !checked(&s, &form) {
        return Ok(stale());
    }
    let ctx = ctx(ip);
    let id = message_id(&form)?;
    s.engine
        .outbox_reply(&ctx, id, form.get("body").map_or("", String::as_str))
        .await?;
    render(&s, &ctx, Some("Reply sent.".into())).await
}

//! A provider emulator speaking the Twilio-compatible REST API on a loopback
//! port: it checks the account's basic authentication, records every text
//! message and call it is asked for, answers as the provider does (201 with
//! a `sid`; 401/4xx with the provider's error JSON), and can be told to
//! fail (a status) or to hang (no answer), so tests see the adapter's faults.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "emulator-auth-token-5f1d";

/// A text message the provider was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

/// A call the provider was asked to place, with the form it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCall {
    pub sid: String,
    pub form: HashMap<String, String>,
}

impl PlacedCall {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Recorded {
    messages: Vec<SentMessage>,
    calls: Vec<PlacedCall>,
    /// Answer every request with this status (and an error body).
    fail_with: Option<u16>,
    /// Never answer.
    hang: bool,
    next_id: u64,
}

#[derive(Clone)]
struct Emu(Arc<Mutex<Recorded>>);

impl Emu {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub struct TwilioEmulator {
    pub base_url: String,
    emu: Emu,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TwilioEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TwilioEmulator {
    pub async fn start() -> TwilioEmulator {
        let emu = Emu(Arc::default());
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(message))
            .route("/2010-04-01/Accounts/{sid}/Calls.json", post(call))
            .with_state(emu.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TwilioEmulator {
            base_url,
            emu,
            task,
        }
    }

    pub fn messages(&self) -> Vec<SentMessage> {
        self.emu.lock().messages.clone()
    }

    pub fn calls(&self) -> Vec<PlacedCall> {
        self.emu.lock().calls.clone()
    }

    /// From now on, refuse every request with `status` (`None`: work again).
    pub fn fail_with(&self, status: Option<u16>) {
        self.emu.lock().fail_with = status;
    }

    /// From now on, never answer (`false`: answer again).
    pub fn hang(&self, on: bool) {
        self.emu.lock().hang = on;
    }
}

/// The provider's error document.
fn error(status: u16, code: u32, message: &str) -> Response {
    let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        s,
        Json(serde_json::json!({
            "code": code, "message": message, "status": status,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}")
        })),
    )
        .into_response()
}

/// Checks the account and the emulator's mode; `Err` is the answer.
async fn admit(emu: &Emu, sid: &str, headers: &HeaderMap) -> Result<String, Response> {
    let (fail, hang) = {
        let r = emu.lock();
        (r.fail_with, r.hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let expected = format!(
        "Basic {}",
        B64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sid != ACCOUNT_SID || presented != expected {
        return Err(error(401, 20003, "Authenticate"));
    }
    if let Some(status) = fail {
        return Err(error(
            status,
            20500,
            "An internal server error has occurred <script>",
        ));
    }
    let mut r = emu.lock();
    r.next_id += 1;
    Ok(format!("{:032x}", r.next_id))
}

async fn message(
    State(emu): State<Emu>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let id = match admit(&emu, &sid, &headers).await {
        Ok(id) => format!("SM{id}"),
        Err(res) => return res,
    };
    let field = |n: &str| form.get(n).cloned().unwrap_or_default();
    if field("To").is_empty() || field("Body").is_empty() {
        return error(400, 21604, "A 'To' phone number and a 'Body' are required.");
    }
    emu.lock().messages.push(SentMessage {
        sid: id.clone(),
        to: field("To"),
        from: field("From"),
        body: field("Body"),
    });
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"sid": id, "status": "queued", "to": field("To")})),
    )
        .into_response()
}

async fn call(
    State(emu): State<Emu>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let id = match admit(&emu, &sid, &headers).await {
        Ok(id) => format!("CA{id}"),
        Err(res) => return res,
    };
    if form.get("To").is_none_or(String::is_empty) || form.get("Url").is_none_or(String::is_empty) {
        return error(400, 21205, "Url parameter is required.");
    }
    emu.lock().calls.push(PlacedCall {
        sid: id.clone(),
        form,
    });
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"sid": id, "status": "queued"})),
    )
        .into_response()
}

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

// --- Playing the phone --------------------------------------------------------
//
// The provider's side of a call after it is placed: it fetches the voice
// instructions from the call's `Url`, says them, posts the keys the person
// presses to the gather's `action`, and reports the call's end to the
// `StatusCallback` — every request signed with the account's auth token
// (`X-Twilio-Signature`: HMAC-SHA1 over the URL and the sorted form
// fields), as the provider signs them. And a person replying to a text
// message: an inbound message posted to the server's SMS webhook.

/// What the person on the phone does when the call asks for keys: the keys
/// pressed, `#` at the end when they finish with it (`"#"`, `"1234#"`,
/// `"0#"`); `""` is silence until the gather times out.
pub type Keys<'a> = &'a str;

/// What a call said and how it ended, from the phone's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Everything said, in order.
    pub said: Vec<String>,
    /// The call hung up (`<Hangup/>`), rather than waiting for more keys.
    pub hung_up: bool,
    /// HTTP status of the last webhook request.
    pub status: u16,
}

impl Conversation {
    pub fn last_said(&self) -> &str {
        self.said.last().map_or("", String::as_str)
    }
}

/// `X-Twilio-Signature` of a request, computed here independently of the
/// server's adapter.
pub fn sign(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    use hmac::{Hmac, Mac};
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    B64.encode(mac.finalize().into_bytes())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The value of `attr` in the first `<tag ...>` of `xml`.
fn attribute(xml: &str, tag: &str, attr: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag} "))?;
    let end = start + xml[start..].find('>')?;
    let element = &xml[start..end];
    let key = format!(" {attr}=\"");
    let from = element.find(&key)? + key.len();
    let len = element[from..].find('"')?;
    Some(unescape(&element[from..from + len]))
}

/// The texts of every `<Say>` in `xml`.
fn says(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Say") {
        let Some(open_end) = rest[start..].find('>') else {
            break;
        };
        let body_start = start + open_end + 1;
        let Some(len) = rest[body_start..].find("</Say>") else {
            break;
        };
        out.push(unescape(&rest[body_start..body_start + len]));
        rest = &rest[body_start + len..];
    }
    out
}

/// The phone's HTTP client: the server under test has a self-signed
/// certificate.
fn phone_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Posts `fields` to `url`, signed with `token`; (status, body).
pub async fn post_signed(url: &str, fields: &[(String, String)], token: &str) -> (u16, String) {
    let signature = sign(token, url, fields);
    let res = phone_client()
        .post(url)
        .header("X-Twilio-Signature", signature)
        .form(fields)
        .send()
        .await
        .expect("webhook request");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl PlacedCall {
    fn common(&self) -> Vec<(String, String)> {
        fields(&[
            ("AccountSid", ACCOUNT_SID),
            ("CallSid", &self.sid),
            ("From", self.field("From").unwrap_or_default()),
            ("To", self.field("To").unwrap_or_default()),
            ("Direction", "outbound-api"),
            ("ApiVersion", "2010-04-01"),
        ])
    }

    /// The call is answered; the person presses `keys`, one sequence per
    /// time the call gathers, until it hangs up or the sequences run out.
    pub async fn answer(&self, keys: &[Keys<'_>]) -> Conversation {
        self.answer_signed_with(keys, AUTH_TOKEN).await
    }

    /// `answer`, with requests signed by `token` (a forger's).
    pub async fn answer_signed_with(&self, keys: &[Keys<'_>], token: &str) -> Conversation {
        let url = self.field("Url").expect("the call's Url").to_string();
        let mut form = self.common();
        form.push(("CallStatus".into(), "in-progress".into()));
        let (status, mut twiml) = post_signed(&url, &form, token).await;
        let mut talk = Conversation {
            said: says(&twiml),
            hung_up: twiml.contains("<Hangup/>"),
            status,
        };
        let mut document = url;
        for pressed in keys {
            if status >= 300 || talk.hung_up {
                break;
            }
            let Some(action) = attribute(&twiml, "Gather", "action") else {
                break;
            };
            let action = reqwest::Url::parse(&document)
                .and_then(|d| d.join(&action))
                .expect("gather action URL")
                .to_string();
            let (digits, finished) = match pressed.strip_suffix('#') {
                Some(d) => (d, "#"),
                None => (*pressed, ""),
            };
            let mut form = self.common();
            form.extend(fields(&[
                ("CallStatus", "in-progress"),
                ("Digits", digits),
                ("FinishedOnKey", finished),
            ]));
            let (status, next) = post_signed(&action, &form, token).await;
            talk.status = status;
            talk.said.extend(says(&next));
            talk.hung_up = next.contains("<Hangup/>");
            twiml = next;
            document = action;
            if status >= 300 {
                break;
            }
        }
        talk
    }

    /// The provider reports the call's status (`no-answer`, `busy`,
    /// `completed`, `failed`) to its `StatusCallback`; the HTTP status.
    pub async fn report(&self, call_status: &str) -> u16 {
        let url = self
            .field("StatusCallback")
            .expect("the call's StatusCallback");
        let mut form = self.common();
        form.push(("CallStatus".into(), call_status.into()));
        post_signed(url, &form, AUTH_TOKEN).await.0
    }
}

/// A person texts `body` from `from` to the number Twofold sends from: the
/// provider posts it to the server's SMS webhook `url`, signed with `token`.
/// The HTTP status.
pub async fn text_in(url: &str, from: &str, to: &str, body: &str, token: &str) -> u16 {
    let form = fields(&[
        ("AccountSid", ACCOUNT_SID),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]);
    post_signed(url, &form, token).await.0
}

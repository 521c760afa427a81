//! A generic HTTP SMS gateway on a loopback port, as a local appliance
//! would run one: it records every request (method, content type,
//! authorization, body) and answers with the status it is told to.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use axum::Router;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One request the gateway received.
#[derive(Debug, Clone)]
pub struct GatewayHit {
    pub method: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone, Default)]
struct Gw {
    hits: Arc<Mutex<Vec<GatewayHit>>>,
    status: Arc<AtomicU16>,
}

pub struct SmsGatewayEmulator {
    /// Where messages are sent: `http://127.0.0.1:PORT/send`.
    pub url: String,
    gw: Gw,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmsGatewayEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmsGatewayEmulator {
    pub async fn start() -> SmsGatewayEmulator {
        let gw = Gw::default();
        gw.status.store(200, Ordering::SeqCst);
        let app = Router::new()
            .route("/send", any(hit))
            .with_state(gw.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let url = format!("http://{}/send", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SmsGatewayEmulator { url, gw, task }
    }

    pub fn hits(&self) -> Vec<GatewayHit> {
        self.gw
            .hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Answer every request with `status` from now on.
    pub fn answer_with(&self, status: u16) {
        self.gw.status.store(status, Ordering::SeqCst);
    }
}

async fn hit(State(gw): State<Gw>, method: Method, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    gw.hits
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(GatewayHit {
            method: method.to_string(),
            content_type: header("content-type").unwrap_or_default(),
            authorization: header("authorization"),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    StatusCode::from_u16(gw.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

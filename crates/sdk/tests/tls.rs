//! The client against a stub HTTPS server: pinned fingerprint, CA file,
//! refusals, error mapping and the end user's address header.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;
use twofold_proto::{ErrorBody, TestResponse};
use twofold_sdk::{ClientOptions, SdkClient, SdkError, Trust};

struct Stub {
    base: String,
    cert_pem: String,
    fingerprint: String,
    handle: axum_server::Handle,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn cert() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn fingerprint(pem: &str) -> String {
    let der = rustls_pemfile_der(pem);
    Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    match Trust::ca_pem(pem.as_bytes()).unwrap() {
        Trust::Certificates(c) => c[0].as_ref().to_vec(),
        Trust::Fingerprint(_) => unreachable!(),
    }
}

async fn test_handler(
    headers: HeaderMap,
) -> Result<Json<TestResponse>, (StatusCode, Json<ErrorBody>)> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // "portal:s3cret"
    if auth != "Basic cG9ydGFsOnMzY3JldA==" {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(ErrorBody {
                error: "unauthorized".into(),
                message: "valid service account credentials are required".into(),
                field: None,
                reason: None,
            }),
        ));
    }
    Ok(Json(TestResponse {
        ok: true,
        account: "sdk:portal".into(),
        server_time: headers
            .get("x-twofold-client-ip")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string(),
        version: "test".into(),
    }))
}

async fn start() -> Stub {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let (cert_pem, key_pem) = cert();
    let tls = RustlsConfig::from_pem(cert_pem.clone().into_bytes(), key_pem.into_bytes())
        .await
        .unwrap();
    let app = Router::new()
        .route("/sdk/v1/test", get(test_handler))
        .route(
            "/link/v1",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "17")],
                    Json(ErrorBody {
                        error: "rate_limited".into(),
                        message: "too many attempts; try again in 17 seconds".into(),
                        field: None,
                        reason: None,
                    }),
                )
            }),
        );
    let handle = axum_server::Handle::new();
    let server =
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    let addr = handle.listening().await.unwrap();
    Stub {
        base: format!("https://127.0.0.1:{}", addr.port()),
        fingerprint: fingerprint(&cert_pem),
        cert_pem,
        handle,
    }
}

fn client(base: &str, trust: Trust, password: &str) -> SdkClient {
    let mut o = ClientOptions::new(base, "portal", password, trust);
    o.timeout = Duration::from_secs(5);
    SdkClient::new(o).unwrap()
}

#[tokio::test]
async fn pinned_fingerprint_is_the_only_trust() {
    let s = start().await;
    let ok = client(
        &s.base,
        Trust::fingerprint(&s.fingerprint).unwrap(),
        "s3cret",
    );
    let t = ok.self_test().await.unwrap();
    assert_eq!(t.account, "sdk:portal");
    assert_eq!(
        t.server_time, "none",
        "no client address unless acting for one"
    );
    let t = ok
        .acting_for(Some("2001:db8::7".parse().unwrap()))
        .self_test()
        .await
        .unwrap();
    assert_eq!(t.server_time, "2001:db8::7");

    // Another certificate's fingerprint: the handshake is refused.
    let (other, _) = cert();
    let wrong = client(
        &s.base,
        Trust::fingerprint(&fingerprint(&other)).unwrap(),
        "s3cret",
    );
    let e = wrong.self_test().await.unwrap_err();
    assert!(matches!(e, SdkError::Transport(_)), "{e:?}");
    assert!(e.to_string().contains("pinned SHA-256 fingerprint"), "{e}");
}

#[tokio::test]
async fn ca_file_trusts_its_certificates_only() {
    let s = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, &s.cert_pem).unwrap();
    let ok = client(&s.base, Trust::ca_file(&ca).unwrap(), "s3cret");
    ok.self_test().await.unwrap();

    let (other, _) = cert();
    let wrong = client(&s.base, Trust::ca_pem(other.as_bytes()).unwrap(), "s3cret");
    let e = wrong.self_test().await.unwrap_err();
    assert!(matches!(e, SdkError::Transport(_)), "{e:?}");

    // With a CA file the host name is checked too: the certificate names
    // localhost and 127.0.0.1, not 127.0.0.2 (which also reaches loopback).
    let port = s.base.rsplit(':').next().unwrap();
    let other_name = client(
        &format!("https://127.0.0.2:{port}"),
        Trust::ca_file(&ca).unwrap(),
        "s3cret",
    );
    let e = other_name.self_test().await.unwrap_err();
    assert!(matches!(e, SdkError::Transport(_)), "{e:?}");
}

#[tokio::test]
async fn refusals_are_typed() {
    let s = start().await;
    let trust = Trust::fingerprint(&s.fingerprint).unwrap();
    let e = client(&s.base, trust.clone(), "wrong")
        .self_test()
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e:?}");
    assert!(e.to_string().contains("refused the SDK credentials"), "{e}");
    assert!(!e.to_string().contains("wrong"));

    let e = client(&s.base, trust.clone(), "s3cret")
        .link::<serde_json::Value>(&twofold_proto::link::LinkRequest::Ready)
        .await
        .unwrap_err();
    // Rate limited, with the seconds to wait from `Retry-After`.
    assert!(
        matches!(
            &e,
            SdkError::Api {
                status: 429,
                retry_after: Some(17),
                body,
            } if body.error == "rate_limited"
        ),
        "{e:?}"
    );

    // Plain HTTP is refused before anything is sent.
    let e = SdkClient::new(ClientOptions::new(
        &s.base.replace("https://", "http://"),
        "portal",
        "s3cret",
        trust.clone(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");

    // Nobody listening: a transport error, quickly.
    let port = s.base.rsplit(':').next().unwrap().to_string();
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = client(&format!("https://127.0.0.1:{port}"), trust, "s3cret")
        .self_test()
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::Transport(_)), "{e:?}");
}

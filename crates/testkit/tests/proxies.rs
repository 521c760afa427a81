//! The nginx and Caddy harnesses, proven without Twofold: each proxy guards
//! a small site with a stand-in auth server (HTTPS, like Twofold) that
//! answers like `/auth/nginx` and `/auth/forward` — allow with
//! `Remote-User` for the cookie `ok=1`, allow anonymously for `ok=anon`,
//! 403 for `ok=deny`, otherwise 401 (nginx) or a 302 to a sign-in page
//! (forward auth). It records every request it gets, so the tests also pin
//! down what each proxy sends to the auth endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_server::tls_rustls::RustlsConfig;
use reqwest::redirect::Policy;
use twofold_testkit::caddy::Caddy;
use twofold_testkit::nginx::{free_port, site_certificate, Nginx, SiteCert};

/// The names the one test certificate covers: the protected site, the
/// sign-in host and the auth server reached by IP.
const NAMES: &[&str] = &["*.twofold.test", "twofold.test", "127.0.0.1"];

/// One request the auth server got.
#[derive(Debug, Clone)]
struct Seen {
    version: axum::http::Version,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct AuthServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: axum_server::Handle,
}

impl AuthServer {
    async fn start(cert: &SiteCert) -> AuthServer {
        static PROVIDER: Once = Once::new();
        // axum-server is built without a default rustls provider.
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let tls = RustlsConfig::from_pem(
            cert.cert_pem.clone().into_bytes(),
            cert.key_pem.clone().into_bytes(),
        )
        .await
        .expect("auth server TLS config");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app =
            axum::Router::new().fallback(
                move |version: axum::http::Version,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap| async move {
                    let request = Seen {
                        version,
                        method,
                        uri,
                        headers,
                    };
                    let response = answer(&request);
                    log.lock().unwrap().push(request);
                    response
                },
            );
        let handle = axum_server::Handle::new();
        let server =
            axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service()));
        let addr = handle.listening().await.expect("auth server listening");
        AuthServer { addr, seen, handle }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn answer(request: &Seen) -> Response {
    let cookie = request.header("cookie").unwrap_or_default();
    let allowed = [
        ("Remote-User", "alice"),
        ("Remote-Groups", "vpn-users,staff"),
    ];
    match cookie {
        "ok=1" => (StatusCode::OK, allowed).into_response(),
        "ok=anon" => StatusCode::OK.into_response(),
        "ok=deny" => StatusCode::FORBIDDEN.into_response(),
        _ if request.uri.path() == "/auth/forward" => {
            // Where the user was going, as Caddy and Traefik describe it.
            let back = format!(
                "{}://{}{}",
                request.header("x-forwarded-proto").unwrap_or("?"),
                request.header("x-forwarded-host").unwrap_or("?"),
                request.header("x-forwarded-uri").unwrap_or("?"),
            );
            (
                StatusCode::FOUND,
                [(
                    "Location",
                    format!("https://auth.example/sign-in?rd={back}"),
                )],
            )
                .into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// A client that trusts the test CA, sends `app.twofold.test` to loopback
/// and shows redirects instead of following them.
fn client(cert: &SiteCert) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.ca_pem.as_bytes()).expect("CA certificate"),
        )
        // The port in the URL wins; only the IP address matters here.
        .resolve("app.twofold.test", SocketAddr::from(([127, 0, 0, 1], 0)))
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn print_seen(proxy: &str, seen: &[Seen]) {
    for request in seen {
        eprintln!(
            "{proxy} → auth: {} {} {:?}",
            request.method, request.uri, request.version
        );
        for (name, value) in &request.headers {
            eprintln!("    {name}: {}", value.to_str().unwrap_or("<binary>"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_guards_a_tls_site() {
    let certs = tempfile::tempdir().unwrap();
    let cert = site_certificate(certs.path(), NAMES);
    let auth = AuthServer::start(&cert).await;
    let auth_port = auth.addr.port();
    let (mut app_port, mut echo_port) = (0, 0);
    let mut nginx = Nginx::start(|_dir| {
        app_port = free_port();
        echo_port = free_port();
        nginx_http(&cert, app_port, echo_port, auth_port)
    });
    let client = client(&cert);
    let url = format!("https://app.twofold.test:{app_port}/wiki/page?x=1");

    // No session: nginx turns the 401 into a redirect to the portal.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", nginx.output());
    assert_eq!(
        response.headers()["location"],
        format!(
            "https://auth.twofold.test/portal?rd=https://app.twofold.test:{app_port}/wiki/page?x=1"
        )
        .as_str()
    );
    let seen = auth.take();
    print_seen("nginx (no cookie)", &seen);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].uri.path(), "/auth/nginx");
    // proxy_pass's own host, not the site's: the site is in X-Original-URL.
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{auth_port}").as_str())
    );
    assert_eq!(
        seen[0].header("x-original-url"),
        Some(format!("https://app.twofold.test:{app_port}/wiki/page?x=1").as_str())
    );

    // A session: the user and groups reach the site; a header the client
    // sent itself does not.
    let response = client
        .get(&url)
        .header("Cookie", "ok=1")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.output());
    assert_eq!(
        response.text().await.unwrap(),
        "user=alice groups=vpn-users,staff method=GET\n"
    );
    print_seen("nginx (cookie)", &auth.take());

    // Allowed without a user: the spoofed header is still dropped, because
    // `proxy_set_header` with an empty value removes it.
    let response = client
        .get(&url)
        .header("Cookie", "ok=anon")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "user= groups= method=GET\n");
    auth.take();

    // The subrequest is a GET whatever the client's method (nginx makes
    // every subrequest a GET); the method travels in X-Forwarded-Method.
    let response = client
        .post(&url)
        .header("Cookie", "ok=1")
        .body("form=data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.output());
    assert_eq!(
        response.text().await.unwrap(),
        "user=alice groups=vpn-users,staff method=POST\n"
    );
    let seen = auth.take();
    print_seen("nginx (POST)", &seen);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].header("content-length"), None);
    assert_eq!(seen[0].header("x-forwarded-method"), Some("POST"));

    // 403 goes to the client as it is.
    let response = client
        .get(&url)
        .header("Cookie", "ok=deny")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The harness: stop refuses connections, restart serves again.
    nginx.stop();
    assert!(client.get(&url).send().await.is_err());
    nginx.restart();
    let response = client
        .get(&url)
        .header("Cookie", "ok=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.output());
}

/// nginx in front of the echo site, asking the auth server over verified
/// TLS: the configuration Twofold's documentation shows, with test ports.
fn nginx_http(cert: &SiteCert, app_port: u16, echo_port: u16, auth_port: u16) -> String {
    let (crt, key, ca) = (
        cert.cert_path.display(),
        cert.key_path.display(),
        cert.ca_path.display(),
    );
    format!(
        r#"
server {{
    listen 127.0.0.1:{app_port} ssl;
    server_name app.twofold.test;
    ssl_certificate {crt};
    ssl_certificate_key {key};

    location / {{
        auth_request /twofold-auth;
        auth_request_set $user $upstream_http_remote_user;
        auth_request_set $groups $upstream_http_remote_groups;
        error_page 401 = @signin;
        proxy_set_header Remote-User $user;
        proxy_set_header Remote-Groups $groups;
        proxy_pass http://127.0.0.1:{echo_port};
    }}

    location = /twofold-auth {{
        internal;
        proxy_pass https://127.0.0.1:{auth_port}/auth/nginx;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        proxy_set_header X-Forwarded-Method $request_method;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-URI $request_uri;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {ca};
        proxy_ssl_server_name on;
        proxy_ssl_name auth.twofold.test;
    }}

    location @signin {{
        return 302 https://auth.twofold.test/portal?rd=$scheme://$http_host$request_uri;
    }}
}}

server {{
    listen 127.0.0.1:{echo_port};
    location / {{
        return 200 "user=$http_remote_user groups=$http_remote_groups method=$request_method\n";
    }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_guards_a_tls_site() {
    let certs = tempfile::tempdir().unwrap();
    let cert = site_certificate(certs.path(), NAMES);
    let auth = AuthServer::start(&cert).await;
    let auth_port = auth.addr.port();
    let mut app_port = 0;
    let mut caddy = Caddy::start(|_dir| {
        app_port = free_port();
        caddy_sites(&cert, app_port, auth_port)
    });
    let client = client(&cert);
    let url = format!("https://app.twofold.test:{app_port}/wiki/page?x=1");

    // No session: the auth server's redirect reaches the client as it is.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", caddy.output());
    assert_eq!(
        response.headers()["location"],
        format!(
            "https://auth.example/sign-in?rd=https://app.twofold.test:{app_port}/wiki/page?x=1"
        )
        .as_str()
    );
    let seen = auth.take();
    print_seen("caddy (no cookie)", &seen);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].uri.path(), "/auth/forward");
    // Only the path is replaced: the client's query string and Host (over
    // HTTP/2, the authority) reach the auth server as they were.
    assert_eq!(seen[0].uri.query(), Some("x=1"));
    assert_eq!(
        seen[0].uri.authority().map(ToString::to_string),
        Some(format!("app.twofold.test:{app_port}"))
    );
    assert_eq!(seen[0].header("x-forwarded-method"), Some("GET"));

    // A session: the copied headers reach the site instead of the client's.
    let response = client
        .get(&url)
        .header("Cookie", "ok=1")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", caddy.output());
    assert_eq!(
        response.text().await.unwrap(),
        "user=alice groups=vpn-users,staff method=GET"
    );
    print_seen("caddy (cookie)", &auth.take());

    // Allowed without a user: what becomes of the client's own header.
    let response = client
        .get(&url)
        .header("Cookie", "ok=anon")
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let anon = response.text().await.unwrap();
    eprintln!("caddy (anon, spoofed Remote-User): {anon}");
    // Caddy 2.6 sets each copied header unconditionally, to a placeholder
    // that stays literal when the auth response lacks the header: the
    // client's value is overwritten, never passed on.
    assert!(!anon.contains("mallory"), "{anon}");
    auth.take();

    // The auth request is always a GET, whatever the client's method.
    let response = client
        .post(&url)
        .header("Cookie", "ok=1")
        .body("form=data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", caddy.output());
    let seen = auth.take();
    print_seen("caddy (POST)", &seen);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].header("x-forwarded-method"), Some("POST"));

    // Any other answer also goes to the client as it is.
    let response = client
        .get(&url)
        .header("Cookie", "ok=deny")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    caddy.stop();
    assert!(client.get(&url).send().await.is_err());
    caddy.restart();
    let response = client
        .get(&url)
        .header("Cookie", "ok=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", caddy.output());
}

/// Caddy's `forward_auth` in front of a `respond` site, asking the auth
/// server over verified TLS.
fn caddy_sites(cert: &SiteCert, app_port: u16, auth_port: u16) -> String {
    let (crt, key, ca) = (
        cert.cert_path.display(),
        cert.key_path.display(),
        cert.ca_path.display(),
    );
    format!(
        r#"https://app.twofold.test:{app_port} {{
	tls {crt} {key}
	forward_auth https://127.0.0.1:{auth_port} {{
		uri /auth/forward
		copy_headers Remote-User Remote-Groups Remote-Name Remote-Email
		transport http {{
			tls_trusted_ca_certs {ca}
			tls_server_name auth.twofold.test
		}}
	}}
	respond "user={{header.Remote-User}} groups={{header.Remote-Groups}} method={{method}}"
}}
"#
    )
}

/// A port taken between the probe and the bind: the harnesses ask their
/// closure again for fresh ports instead of failing.
#[test]
fn harnesses_retry_when_a_port_was_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut calls = 0;
    let nginx = Nginx::start(|_dir| {
        calls += 1;
        let port = if calls == 1 { taken_port } else { free_port() };
        format!("server {{ listen 127.0.0.1:{port}; return 204; }}")
    });
    assert_eq!(calls, 2, "{}", nginx.output());
    let mut calls = 0;
    let caddy = Caddy::start(|_dir| {
        calls += 1;
        let port = if calls == 1 { taken_port } else { free_port() };
        format!("http://127.0.0.1:{port} {{\n\trespond 204\n}}\n")
    });
    assert_eq!(calls, 2, "{}", caddy.output());
}

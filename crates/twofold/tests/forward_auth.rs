//! Passed sessions (issue 14) through the real binary: a small site behind
//! a real nginx (`auth_request`) and a real Caddy (`forward_auth`), each
//! configured with the README's own snippet (only hosts, ports and file
//! paths replaced), and `/auth/forward` asked directly the way Traefik asks.
//! The browser is reqwest with a cookie jar of our own, resolving
//! `app.twofold.test` and `auth.twofold.test` to loopback.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::Env;
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;
use twofold_testkit::caddy::Caddy;
use twofold_testkit::db::Backend;
use twofold_testkit::nginx::{free_port, site_certificate, Nginx, SiteCert};

twofold_testkit::both_backends!(
    a_site_behind_nginx_and_caddy_passes_twofolds_sign_in,
    forward_auth_believes_only_trusted_proxies,
);

const NAMES: &[&str] = &["*.twofold.test", "twofold.test", "127.0.0.1"];
const PASSWORD: &str = "correct horse battery staple";
const COOKIE: &str = "__Secure-twofold-passed";

/// The fenced block of `lang` in the README's passed-sessions section.
fn readme_block(lang: &str) -> String {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme
        .find("## Put a web site behind Twofold")
        .expect("the README's passed-sessions section")..];
    let start = section
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("a ```{lang} block"))
        + lang.len()
        + 4;
    let end = section[start..].find("```").expect("its end") + start;
    section[start..end].to_string()
}

fn secret(n: u8) -> (String, Vec<u8>) {
    let bytes: Vec<u8> = (0..20).map(|i| i * 7 + n).collect();
    (data_encoding::BASE32_NOPAD.encode(&bytes), bytes)
}

fn totp_now(secret: &[u8]) -> String {
    let step = oath::totp_step(time::OffsetDateTime::now_utc().unix_timestamp(), 30);
    oath::hotp(secret, u64::try_from(step).unwrap(), OathAlgorithm::Sha1, 6)
}

/// A browser: follows redirects itself, keeps cookies by name (host-only
/// ones for their host; `Domain=twofold.test` ones for every host).
struct Browser {
    client: reqwest::Client,
    jar: Vec<(String, String, Option<String>)>,
    page: String,
    url: String,
}

fn client(cert: &SiteCert, twofold: u16, from: Option<IpAddr>) -> reqwest::Client {
    let lo = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .resolve("auth.twofold.test", lo(twofold))
        .resolve("app.twofold.test", lo(0));
    if let Some(ip) = from {
        b = b.local_address(ip);
    }
    b.build().unwrap()
}

impl Browser {
    fn new(cert: &SiteCert, twofold: u16) -> Browser {
        Browser {
            client: client(cert, twofold, None),
            jar: Vec::new(),
            page: String::new(),
            url: String::new(),
        }
    }

    fn cookies_for(&self, host: &str) -> String {
        self.jar
            .iter()
            .filter(|(_, _, only)| only.as_deref().is_none_or(|h| h == host))
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn passed(&self) -> Option<String> {
        self.jar
            .iter()
            .find(|(n, _, _)| n == COOKIE)
            .map(|(_, v, _)| v.clone())
    }

    fn keep(&mut self, host: &str, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let mut parts = v.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attrs: Vec<&str> = parts.collect();
            let domain = attrs.iter().find_map(|a| a.strip_prefix("Domain="));
            let gone = attrs.contains(&"Max-Age=0");
            let only = domain.is_none().then(|| host.to_string());
            self.jar.retain(|(n, _, o)| !(n == name && *o == only));
            if !gone {
                self.jar.push((name.to_string(), value.to_string(), only));
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> u16 {
        let host = url::Url::parse(url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        let res = req
            .header("cookie", self.cookies_for(&host))
            .send()
            .await
            .unwrap();
        self.keep(&host, &res);
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        self.url = url.to_string();
        self.page = res.text().await.unwrap();
        if let Some(l) = location {
            self.page = l;
        }
        status
    }

    /// GET without following: the status, and the body (or `Location`).
    async fn get(&mut self, url: &str) -> u16 {
        let req = self.client.get(url);
        self.send(req, url).await
    }

    /// GET following redirects (also across hosts).
    async fn open(&mut self, url: &str) -> u16 {
        let mut url = url.to_string();
        for _ in 0..10 {
            let status = self.get(&url).await;
            if !(300..400).contains(&status) {
                return status;
            }
            url = url::Url::parse(&url)
                .unwrap()
                .join(&self.page)
                .unwrap()
                .to_string();
        }
        panic!("too many redirects at {url}");
    }

    /// Posts a portal form (with the page's CSRF token) and follows.
    async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> u16 {
        let marker = "name=\"csrf\" value=\"";
        let start = self.page.find(marker).expect("a CSRF token") + marker.len();
        let csrf = self.page[start..start + self.page[start..].find('"').unwrap()].to_string();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let url = url::Url::parse(&self.url)
            .unwrap()
            .join(path)
            .unwrap()
            .to_string();
        let req = self.client.post(&url).form(&form);
        let status = self.send(req, &url).await;
        assert_eq!(status, 303, "POST {path}: {}", self.page);
        let next = url::Url::parse(&url)
            .unwrap()
            .join(&self.page)
            .unwrap()
            .to_string();
        self.open(&next).await
    }

    /// Signs in at the page the browser is on (the portal's sign-in).
    async fn sign_in(&mut self, user: &str, secret: &[u8]) -> u16 {
        assert!(self.page.contains("Sign in"), "{}", self.page);
        self.submit(
            "/portal/sign-in",
            &[("username", user), ("password", PASSWORD)],
        )
        .await;
        assert!(self.page.contains("name=\"code\""), "{}", self.page);
        let code = totp_now(secret);
        self.submit("/portal/verify", &[("proof", "method"), ("code", &code)])
            .await
    }
}

struct Site {
    env: Env,
    _server: common::Server,
    cert: SiteCert,
    _dir: tempfile::TempDir,
    twofold: u16,
}

/// Twofold with the site's certificate, trusting the proxies on 127.0.0.1,
/// passed sessions on for `*.twofold.test`; alice (admins), bob and carol
/// with TOTP tokens.
async fn site(backend: Backend) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let cert = site_certificate(dir.path(), NAMES);
    let mut env = Env::new(backend).await;
    env.extra = vec![
        (
            "TWOFOLD_TLS_CERT_FILE".into(),
            cert.cert_path.display().to_string(),
        ),
        (
            "TWOFOLD_TLS_KEY_FILE".into(),
            cert.key_path.display().to_string(),
        ),
        ("TWOFOLD_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
    ];
    let server = env.start();
    let twofold: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    for (i, (user, groups)) in [("alice", "admins"), ("bob", ""), ("carol", "")]
        .into_iter()
        .enumerate()
    {
        let mut args = vec!["user", "add", user, "--password-stdin"];
        if !groups.is_empty() {
            args.extend(["--group", groups]);
        }
        let added = env.run_with_stdin(&args, &format!("{PASSWORD}\n"));
        assert_eq!(added.code(), 0, "{}", added.stderr());
        let (b32, _) = secret(u8::try_from(i).unwrap());
        env.ok(&["token", "add", user, "--type", "totp", "--secret", &b32]);
    }
    // The README's own commands, for this test's hosts.
    for (key, value) in [
        ("portal.url", format!("https://auth.twofold.test:{twofold}")),
        ("passed_sessions.cookie_domain", "twofold.test".into()),
        ("passed_sessions.sites", "*.twofold.test".into()),
        (
            "passed_sessions.rules",
            "app.twofold.test /public/* bypass; app.twofold.test /admin/* two_factor Domain Admins, admins; app.twofold.test /old/* deny".into(),
        ),
        ("passed_sessions.enabled", "true".into()),
    ] {
        env.ok(&["settings", "set", key, &value]);
    }
    // The server reads settings at most a second old.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Site {
        env,
        _server: server,
        cert,
        _dir: dir,
        twofold,
    }
}

/// The echo site behind the proxies: what it was told about the user.
fn echo_server(port: u16) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:{port};\n    location / {{\n        return 200 \"user=$http_remote_user groups=$http_remote_groups name=$http_remote_name path=$request_uri\\n\";\n    }}\n}}\n"
    )
}

fn start_nginx(s: &Site) -> (Nginx, u16, u16) {
    let (mut app, mut echo) = (0, 0);
    let cert = s.cert.clone();
    let twofold = s.twofold;
    let nginx = Nginx::start(|_| {
        app = free_port();
        echo = free_port();
        readme_block("nginx")
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{app} ssl;"))
            .replace("/etc/ssl/app.example.com.pem", &cert.cert_path.display().to_string())
            .replace("/etc/ssl/app.example.com.key", &cert.key_path.display().to_string())
            .replace("/etc/ssl/twofold-ca.pem", &cert.ca_path.display().to_string())
            // nginx resolves a proxy_pass host at start: loopback, by name.
            .replace(
                "https://mfa.example.com:8443/auth/nginx;",
                &format!("https://127.0.0.1:{twofold}/auth/nginx;\n        proxy_ssl_name auth.twofold.test;"),
            )
            .replace("http://127.0.0.1:8080", &format!("http://127.0.0.1:{echo}"))
            .replace("app.example.com", "app.twofold.test")
            + &echo_server(echo)
    });
    (nginx, app, echo)
}

fn start_caddy(s: &Site, echo: u16) -> (Caddy, u16) {
    let mut port = 0;
    let cert = s.cert.clone();
    let twofold = s.twofold;
    let caddy = Caddy::start(|_| {
        port = free_port();
        readme_block("caddyfile")
            .replace(
                "app.example.com {",
                &format!(
                    "https://app.twofold.test:{port} {{\n\ttls {} {}",
                    cert.cert_path.display(),
                    cert.key_path.display()
                ),
            )
            .replace(
                "https://mfa.example.com:8443",
                &format!("https://127.0.0.1:{twofold}"),
            )
            .replace(
                "tls_trusted_ca_certs /etc/ssl/twofold-ca.pem",
                &format!(
                    "tls_trusted_ca_certs {}\n\t\t\ttls_server_name auth.twofold.test",
                    cert.ca_path.display()
                ),
            )
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{echo}"))
    });
    (caddy, port)
}

/// The `rd` of a sign-in address, decoded.
fn return_address(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn audit(env: &Env, user: &str) -> Vec<serde_json::Value> {
    env.ok(&["audit", "tail", "--user", user, "-n", "200", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn a_site_behind_nginx_and_caddy_passes_twofolds_sign_in(backend: Backend) {
    let s = site(backend).await;
    let (nginx, app, echo) = start_nginx(&s);
    let (caddy, caddy_port) = start_caddy(&s, echo);
    let site = format!("https://app.twofold.test:{app}");
    let portal = format!("https://auth.twofold.test:{}/portal", s.twofold);
    let (_, alice_secret) = secret(0);
    let (_, bob_secret) = secret(1);
    let (_, carol_secret) = secret(2);

    // Anonymous: to the portal, the original address (query and all) in rd.
    let mut alice = Browser::new(&s.cert, s.twofold);
    let original = format!("{site}/wiki/page?x=1&y=a%20b");
    assert_eq!(alice.get(&original).await, 302, "{}", nginx.output());
    assert!(
        alice.page.starts_with(&format!("{portal}?rd=")),
        "{}",
        alice.page
    );
    assert_eq!(return_address(&alice.page), original);
    // A bypass path passes anonymously, with no user; a deny path never.
    assert_eq!(alice.get(&format!("{site}/public/site.css")).await, 200);
    assert!(alice.page.starts_with("user= groups= "), "{}", alice.page);
    assert_eq!(alice.get(&format!("{site}/old/page")).await, 403);

    // Sign in with a TOTP code: back at the original address, as alice.
    assert_eq!(alice.open(&original).await, 200);
    assert_eq!(alice.sign_in("alice", &alice_secret).await, 200);
    assert_eq!(alice.url, original, "{}", alice.page);
    assert!(
        alice
            .page
            .starts_with("user=alice groups=admins name= path=/wiki/page?x=1&y=a%20b"),
        "{}",
        alice.page
    );
    assert!(alice.passed().is_some());
    // In the group of /admin/*; a Remote-User the browser sends is not believed.
    let req = alice
        .client
        .get(format!("{site}/admin/users"))
        .header("remote-user", "mallory");
    assert_eq!(alice.send(req, &format!("{site}/admin/users")).await, 200);
    assert!(alice.page.starts_with("user=alice "), "{}", alice.page);
    // The same session passes Caddy's site too (same cookie domain).
    let caddy_site = format!("https://app.twofold.test:{caddy_port}");
    assert_eq!(
        alice.get(&format!("{caddy_site}/wiki")).await,
        200,
        "{}",
        caddy.output()
    );
    assert!(
        alice.page.starts_with("user=alice groups=admins"),
        "{}",
        alice.page
    );
    let mut anonymous = Browser::new(&s.cert, s.twofold);
    assert_eq!(anonymous.get(&format!("{caddy_site}/wiki?q=1")).await, 302);
    assert_eq!(
        return_address(&anonymous.page),
        format!("{caddy_site}/wiki?q=1")
    );
    assert_eq!(anonymous.get(&format!("{caddy_site}/old/x")).await, 403);
    assert_eq!(anonymous.get(&format!("{caddy_site}/public/x")).await, 200);
    assert!(anonymous.page.starts_with("user= "), "{}", anonymous.page);

    let opened = audit(&s.env, "alice");
    assert!(
        opened.iter().any(|e| e["event"] == "passed.open"
            && e["result"] == "SUCCESS_SESSION_PASSED"
            && e["method"] == "second_step"),
        "{opened:?}"
    );

    // Bob came for /admin/, which needs a group he is not in: signed in,
    // but kept on the portal with the reason; the site refuses him there
    // and lets him in elsewhere.
    let mut bob = Browser::new(&s.cert, s.twofold);
    assert_eq!(bob.open(&format!("{site}/admin/")).await, 200);
    assert_eq!(bob.sign_in("bob", &bob_secret).await, 200);
    assert!(bob.url.starts_with(&portal), "{}", bob.url);
    assert!(bob.page.contains("may not open that site"), "{}", bob.page);
    assert_eq!(bob.get(&format!("{site}/admin/")).await, 403);
    assert_eq!(bob.get(&format!("{site}/wiki")).await, 200);
    assert!(bob.page.starts_with("user=bob groups= "), "{}", bob.page);
    let refused = audit(&s.env, "bob");
    assert!(
        refused
            .iter()
            .any(|e| e["event"] == "passed.check" && e["result"] == "FAILED_NOT_ALLOWED"),
        "{refused:?}"
    );

    // No open redirect: the portal sends a signed-in browser nowhere but a
    // protected site's https address.
    for evil in [
        "https://evil.test/",
        "http://app.twofold.test/",
        "//evil.test/",
        "https:/evil.test/",
        "https:\\\\evil.test/",
        "https://app.twofold.test.evil.test/",
        "https://app.twofold.test@evil.test/",
        "https://evil.test\\@app.twofold.test/",
        "https://evil.test%2f@app.twofold.test/",
        "https://user:pw@app.twofold.test/",
        "javascript:alert(1)",
    ] {
        let url = format!("{portal}?rd={}", urlencoding::encode(evil));
        assert_eq!(
            bob.get(&url).await,
            200,
            "{evil} was followed: {}",
            bob.page
        );
        assert!(
            bob.page.contains("not a site this portal"),
            "{evil}: {}",
            bob.page
        );
    }

    // Signing out ends the passed session itself, not only the cookie.
    let bobs = bob.passed().expect("bob's passed session");
    bob.open(&portal).await;
    assert_eq!(bob.submit("/portal/sign-out", &[]).await, 200);
    assert!(bob.passed().is_none(), "the cookie is cleared");
    let replay = bob
        .client
        .get(format!("{site}/wiki"))
        .header("cookie", format!("{COOKIE}={bobs}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 302, "a signed-out session passes no more");

    // An administrator disables alice: her next request is sent to sign in.
    s.env.ok(&["user", "disable", "alice"]);
    assert_eq!(alice.get(&format!("{site}/wiki")).await, 302);
    let ended = audit(&s.env, "alice");
    assert!(
        ended
            .iter()
            .any(|e| e["event"] == "passed.check" && e["result"] == "FAILED_USER_DISABLED"),
        "{ended:?}"
    );

    // Inactivity: a passed session lives lifetime_seconds past its last use.
    s.env
        .ok(&["settings", "set", "passed_sessions.lifetime_seconds", "5"]);
    tokio::time::sleep(Duration::from_millis(1200)).await; // the settings cache
    let mut carol = Browser::new(&s.cert, s.twofold);
    assert_eq!(carol.open(&portal).await, 200);
    assert_eq!(carol.sign_in("carol", &carol_secret).await, 200);
    for _ in 0..2 {
        assert_eq!(
            carol.get(&format!("{site}/wiki")).await,
            200,
            "{}",
            carol.page
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
    }
    // 7 s after sign-in, alive because it was used.
    assert_eq!(carol.get(&format!("{site}/wiki")).await, 200);
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(carol.get(&format!("{site}/wiki")).await, 302);
}

/// `/auth/forward` and `/auth/nginx` asked directly: as Traefik asks (the
/// `X-Forwarded-*` headers), from the trusted 127.0.0.1 and from
/// 127.0.0.2, which is not trusted.
async fn forward_auth_believes_only_trusted_proxies(backend: Backend) {
    let s = site(backend).await;
    let (_, alice_secret) = secret(0);
    let portal = format!("https://auth.twofold.test:{}/portal", s.twofold);
    let mut alice = Browser::new(&s.cert, s.twofold);
    assert_eq!(alice.open(&portal).await, 200);
    assert_eq!(alice.sign_in("alice", &alice_secret).await, 200);
    let token = alice.passed().expect("a passed session after sign-in");

    let forward = format!("https://auth.twofold.test:{}/auth/forward", s.twofold);
    let nginx = format!("https://auth.twofold.test:{}/auth/nginx", s.twofold);
    let ask = |client: reqwest::Client, url: String, uri: &'static str, cookie: Option<String>| async move {
        let mut req = client
            .get(&url)
            .header("x-forwarded-method", "POST")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.twofold.test")
            .header("x-forwarded-uri", uri)
            .header("x-forwarded-for", "203.0.113.9");
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{COOKIE}={c}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers: HashMap<String, String> = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        (status, headers)
    };
    let trusted = client(&s.cert, s.twofold, None);
    let untrusted = client(&s.cert, s.twofold, Some("127.0.0.2".parse().unwrap()));

    let (st, h) = ask(
        trusted.clone(),
        forward.clone(),
        "/wiki/a?b=c",
        Some(token.clone()),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(h["remote-user"], "alice");
    assert_eq!(h["remote-groups"], "admins");
    assert_eq!(h["cache-control"], "no-store");
    let (st, h) = ask(trusted.clone(), forward.clone(), "/wiki/a?b=c", None).await;
    assert_eq!(st, 302);
    assert!(h["location"].starts_with(&format!("{portal}?rd=")), "{h:?}");
    assert_eq!(
        return_address(&h["location"]),
        "https://app.twofold.test/wiki/a?b=c"
    );
    // nginx style: 401 with the same sign-in address.
    let (st, h) = ask(trusted.clone(), nginx.clone(), "/wiki/a", None).await;
    assert_eq!(st, 401);
    assert!(h["location"].starts_with(&format!("{portal}?rd=")), "{h:?}");
    let (st, h) = ask(trusted.clone(), forward.clone(), "/public/x.js", None).await;
    assert_eq!((st, h["remote-user"].as_str()), (200, ""));
    let (st, _) = ask(
        trusted.clone(),
        forward.clone(),
        "/old/x",
        Some(token.clone()),
    )
    .await;
    assert_eq!(st, 403);
    // Paths a backend could read otherwise than the rules are refused.
    for sneaky in [
        "/public/../admin/x",
        "/public/%2e%2e/admin",
        "/public%2f..%2fadmin",
        "//evil.test/x",
    ] {
        let (st, _) = ask(trusted.clone(), forward.clone(), sneaky, None).await;
        assert_eq!(st, 403, "{sneaky}");
    }
    // A garbage cookie is no session; a stolen-looking one of the wrong
    // shape costs no lookup.
    let (st, _) = ask(
        trusted.clone(),
        forward.clone(),
        "/wiki",
        Some("x".repeat(43)),
    )
    .await;
    assert_eq!(st, 302);

    // From a peer not in proxy.trusted, X-Forwarded-* mean nothing: even
    // a bypass path or alice's own cookie is refused.
    for (uri, cookie) in [("/public/x.js", None), ("/wiki", Some(token.clone()))] {
        let (st, h) = ask(untrusted.clone(), forward.clone(), uri, cookie.clone()).await;
        assert_eq!(st, 403, "{uri}: {h:?}");
        assert!(!h.contains_key("remote-user"));
        let (st, _) = ask(untrusted.clone(), nginx.clone(), uri, cookie).await;
        assert_eq!(st, 403, "{uri}");
    }
    let res = untrusted
        .get(&nginx)
        .header("x-original-url", "https://app.twofold.test/public/x.js")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Off: nothing passes (fail closed).
    s.env
        .ok(&["settings", "set", "passed_sessions.enabled", "false"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (st, _) = ask(trusted, forward, "/public/x.js", Some(token)).await;
    assert_eq!(st, 403);
}

//! Drives the real `twofold` binary: one data directory and one fresh
//! database (SQLite or PostgreSQL) per test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use twofold_testkit::db::{Backend, TestDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_twofold");

pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub extra: Vec<(String, String)>,
}

impl Env {
    pub async fn new(backend: Backend) -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            db: TestDb::new(backend).await.expect("fresh test database"),
            extra: Vec::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("TWOFOLD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("TWOFOLD_DATA_DIR", self.data_dir())
            .env("TWOFOLD_DATABASE_URL", &self.db.url)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a CLI command to completion.
    pub fn run(&self, args: &[&str]) -> Out {
        Out(self.command().args(args).output().expect("run twofold"))
    }

    /// Runs a CLI command with `stdin` as its input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twofold");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Out(child.wait_with_output().expect("wait twofold"))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.0.status.success(),
            "twofold {args:?} failed: {}",
            out.stderr()
        );
        out.stdout()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    pub fn start(&self) -> Server {
        Server::start(self.command())
    }
}

pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub fingerprint: String,
    pub stdout: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twofold serve");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[twofold] {line}");
            }
        });
        let mut seen = Vec::new();
        let mut fingerprint = String::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_mins(1)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not announce its address; stdout so far: {seen:?}");
            };
            if let Some(fp) = line.trim().strip_prefix("SHA-256 fingerprint ") {
                fingerprint = fp.to_string();
            }
            let announced = line
                .strip_prefix("Twofold is serving https://")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_string);
            seen.push(line);
            if let Some(addr) = announced {
                return Server {
                    child,
                    addr,
                    fingerprint,
                    stdout: seen,
                    lines: rx,
                };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                let rest: Vec<String> = self.lines.try_iter().collect();
                return (st, rest);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS client that trusts exactly the given PEM certificate.
pub fn client_trusting(cert_pem: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert_pem).expect("read cert");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A browser in miniature: keeps the portal's session cookie, reads the
/// CSRF token, posts forms and follows the redirect.
pub struct MiniBrowser {
    pub client: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub page: String,
}

impl MiniBrowser {
    /// A browser trusting only `cert_pem`, at `base` (https://host:port).
    pub fn new(cert_pem: &Path, base: &str) -> MiniBrowser {
        MiniBrowser {
            client: reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(&std::fs::read(cert_pem).unwrap()).unwrap(),
                )
                .tls_built_in_root_certs(false)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: base.to_string(),
            cookie: None,
            page: String::new(),
        }
    }

    pub fn keep_cookie(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some(pair) = v.split(';').next() {
                if pair.starts_with("__Host-twofold=") {
                    self.cookie = Some(pair.to_string());
                }
            }
        }
    }

    pub async fn open(&mut self, path: &str) -> u16 {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        self.keep_cookie(&res);
        let status = res.status().as_u16();
        self.page = res.text().await.unwrap();
        status
    }

    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) {
        let marker = "name=\"csrf\" value=\"";
        let start = self.page.find(marker).expect("CSRF token on the page") + marker.len();
        let csrf = self.page[start..start + self.page[start..].find('"').unwrap()].to_string();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let mut req = self.client.post(format!("{}{path}", self.base)).form(&form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 303, "POST {path}");
        self.keep_cookie(&res);
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(self.open(&to).await, 200);
    }

    pub fn h1(&self) -> String {
        let start = self.page.find("<h1>").map_or(0, |i| i + 4);
        let end = self.page[start..].find("</h1>").unwrap_or(0) + start;
        self.page[start..end].trim().to_string()
    }
}

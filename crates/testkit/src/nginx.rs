//! A real nginx for tests: the Debian package's `/usr/sbin/nginx` (override
//! with `NGINX_BIN`), run in the foreground as a child process in a fresh
//! temporary directory, with the caller's `server { … }` blocks — typically
//! a site protected by `auth_request` in front of Twofold's `/auth/nginx`.
//!
//! The configuration needs its ports (and certificate paths) before nginx
//! starts, so [`Nginx::start`] takes a closure that is given nginx's
//! directory and returns the text for inside `http { }`; the closure picks
//! its ports with [`free_port`], which it may write back to variables it
//! captures:
//!
//! ```text
//! let (mut port, mut ca) = (0, String::new());
//! let nginx = Nginx::start(|dir| {
//!     let cert = site_certificate(dir, &["*.twofold.test", "127.0.0.1"]);
//!     ca = cert.ca_pem.clone();
//!     port = free_port();
//!     format!("server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {}; … }}", …)
//! });
//! ```
//!
//! The closure runs again (in the same directory) when another process took
//! one of its ports before nginx bound it, so it should pick fresh ones on
//! every call. The harness writes the rest of `nginx.conf`: `daemon off`,
//! one worker, pid file, temp paths, the error log (`info`) and the access
//! log in the directory. When nginx is missing, its configuration fails
//! `nginx -t`, or it does not come up, `start` panics with its error log:
//! no test passes without it.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_DEADLINE: Duration = Duration::from_secs(10);

/// A port on 127.0.0.1 that was free a moment ago (another process may
/// take it before the server binds it; the harnesses then try again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free port")
        .port()
}

/// A server certificate and the CA that signed it, as PEM files.
#[derive(Debug, Clone)]
pub struct SiteCert {
    /// The server certificate (leaf only: the CA is the trust anchor).
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The CA certificate, for `proxy_ssl_trusted_certificate`, Caddy's
    /// `tls_trusted_ca_certs` or Twofold's own trust settings.
    pub ca_path: PathBuf,
    /// The CA certificate's text, for
    /// `reqwest::Certificate::from_pem(ca_pem.as_bytes())`.
    pub ca_pem: String,
    /// The server certificate's text (for servers configured from memory,
    /// e.g. `axum_server`'s `RustlsConfig::from_pem`).
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a fresh CA and a server certificate for `names` (DNS names,
/// wildcards such as `*.twofold.test`, or IP addresses such as
/// `127.0.0.1`), and writes `site-ca.pem`, `site.pem` and `site.key` into
/// `dir`.
///
/// # Panics
///
/// When a name is not valid in a certificate or a file cannot be written.
pub fn site_certificate(dir: &Path, names: &[&str]) -> SiteCert {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Twofold test site CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    // rcgen turns names that parse as IP addresses into IP SANs.
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>())
            .expect("server certificate names");
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, *first);
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let site = SiteCert {
        cert_path: dir.join("site.pem"),
        key_path: dir.join("site.key"),
        ca_path: dir.join("site-ca.pem"),
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    fs::write(&site.ca_path, &site.ca_pem).expect("writing site-ca.pem");
    fs::write(&site.cert_path, &site.cert_pem).expect("writing site.pem");
    fs::write(&site.key_path, &site.key_pem).expect("writing site.key");
    site
}

fn binary() -> PathBuf {
    std::env::var_os("NGINX_BIN").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from)
}

/// Whether this process runs as root: `/proc/self` belongs to the
/// effective user.
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn nginx_conf(dir: &Path, http: &str) -> String {
    let d = dir.display();
    // nginx started by root switches its workers to `nobody`, who cannot
    // enter the 0700 temporary directory; any other user keeps its own.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        "# Written by twofold-testkit.
{user}daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 128;
}}

http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    # Responses are text/plain unless a location says otherwise; no
    # mime.types (tests serve no files).
    default_type text/plain;

{http}
}}
"
    )
}

/// A running nginx; killed (master and worker) on drop.
pub struct Nginx {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nginx {
    /// Writes `nginx.conf` around the `http { }` text that `http` returns
    /// for the temporary directory, checks it with `nginx -t`, starts nginx
    /// and waits until it listens. See the module docs.
    ///
    /// # Panics
    ///
    /// When nginx is missing, rejects the configuration or does not start;
    /// the message carries its error log.
    pub fn start(mut http: impl FnMut(&Path) -> String) -> Nginx {
        let binary = binary();
        assert!(
            binary.exists(),
            "nginx not found at {}: install the Debian package `nginx` (or set NGINX_BIN)",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("twofold-nginx-")
            .tempdir()
            .expect("creating nginx's temporary directory");
        fs::create_dir(dir.path().join("tmp")).expect("creating nginx's temp path");
        let mut nginx = Nginx { dir, child: None };
        let mut last_error = String::new();
        for _ in 0..5 {
            let conf = nginx_conf(nginx.dir.path(), &http(nginx.dir.path()));
            fs::write(nginx.conf_path(), conf).expect("writing nginx.conf");
            nginx.test_config();
            match nginx.spawn() {
                Ok(()) => return nginx,
                // Another process took a port between the probe and nginx's bind.
                Err(log) if log.contains("Address already in use") => last_error = log,
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        panic!("nginx did not start (ports kept clashing):\n{last_error}");
    }

    /// nginx's temporary directory (`nginx.conf`, logs, whatever the
    /// closure wrote there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What nginx printed on stderr followed by its error log (level
    /// `info`: startup, upstream errors such as failed certificate
    /// verification, `auth request unexpected status`).
    pub fn output(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    /// The access log (`combined` format), one line per request.
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills nginx: its ports refuse connections until [`Nginx::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts nginx again with the same configuration (and ports).
    ///
    /// # Panics
    ///
    /// When it does not come up within a few seconds.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!("nginx did not restart:\n{log}"),
            }
        }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The arguments every run needs: the prefix and configuration in the
    /// directory, and `-e` so that nginx does not open the compiled-in
    /// `/var/log/nginx/error.log` before it has read `error_log`.
    fn command(&self) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.conf_path())
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .stdin(Stdio::null());
        command
    }

    /// `nginx -t`: a readable panic for a broken configuration.
    fn test_config(&self) {
        let output = self
            .command()
            .arg("-t")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary().display()));
        assert!(
            output.status.success(),
            "nginx -t rejected the configuration ({}):\n{}{}\n--- nginx.conf ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(self.conf_path()).unwrap_or_default()
        );
    }

    /// Starts the process and waits for its pid file, which nginx writes
    /// only after it has bound and is listening on every port (connections
    /// then wait in the backlog until the worker accepts them). `Err`
    /// carries the output when nginx exits or is not up in time.
    fn spawn(&mut self) -> Result<(), String> {
        let pid_path = self.dir.path().join("nginx.pid");
        let _ = fs::remove_file(&pid_path);
        // Fresh logs per attempt, so a clash in an earlier one does not
        // read as this one's failure.
        let _ = fs::remove_file(self.dir.path().join("error.log"));
        let stderr =
            fs::File::create(self.dir.path().join("stderr.log")).expect("creating stderr.log");
        let child = self
            .command()
            .stdout(stderr.try_clone().expect("cloning the stderr.log handle"))
            .stderr(stderr)
            // Its own process group, so stop() also ends the worker even
            // when the master is killed before it can.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary().display()));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("nginx child");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("nginx exited ({status}):\n{}", self.output()));
            }
            if fs::read_to_string(&pid_path).is_ok_and(|pid| pid.ends_with('\n')) {
                return Ok(());
            }
            // nginx itself would retry the bind for 2.5 s before giving up;
            // the caller picks another port sooner.
            let output = self.output();
            if output.contains("Address already in use") {
                self.stop();
                return Err(output);
            }
            if started.elapsed() > START_DEADLINE {
                self.stop();
                return Err(format!(
                    "nginx was not up after {START_DEADLINE:?}:\n{}",
                    self.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills a child that leads its own process group: the group first (its
/// workers), then the child itself, and reaps it.
pub(crate) fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

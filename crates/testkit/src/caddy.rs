//! A real Caddy 2 for tests: the Debian package's `/usr/bin/caddy`
//! (override with `CADDY_BIN`), run as `caddy run` with a Caddyfile in a
//! fresh temporary directory — typically a site protected by
//! `forward_auth` in front of Twofold's `/auth/forward`.
//!
//! Like [`crate::nginx::Nginx::start`], [`Caddy::start`] takes a closure
//! that is given the directory and returns the site blocks, picking its
//! ports with [`crate::nginx::free_port`]; it runs again when a port was
//! taken before Caddy bound it. The harness puts the global options first:
//!
//! ```text
//! {
//!     admin off              # no admin endpoint on :2019 to clash over
//!     auto_https off         # no ACME, no local CA, no HTTP→HTTPS redirects
//!     servers {
//!         protocols h1 h2    # no HTTP/3: it would also need the UDP port
//!     }
//! }
//! ```
//!
//! Sites that should use TLS name their certificate themselves
//! (`tls /path/site.pem /path/site.key`, see
//! [`crate::nginx::site_certificate`]). `HOME`, `XDG_DATA_HOME` and
//! `XDG_CONFIG_HOME` point into the directory, so Caddy's storage and its
//! `autosave.json` stay there. When Caddy is missing, rejects the Caddyfile
//! or does not come up, `start` panics with its output.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::kill_group;

const START_DEADLINE: Duration = Duration::from_secs(10);
/// Logged once every server listens.
const READY: &str = "serving initial configuration";

const GLOBAL_OPTIONS: &str = "# Written by twofold-testkit.
{
\tadmin off
\tauto_https off
\tservers {
\t\tprotocols h1 h2
\t}
}

";

fn binary() -> PathBuf {
    std::env::var_os("CADDY_BIN").map_or_else(|| PathBuf::from("/usr/bin/caddy"), PathBuf::from)
}

/// A running Caddy; killed on drop.
pub struct Caddy {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Caddy {
    /// Writes the `Caddyfile` (the global options, then the site blocks
    /// `sites` returns for the temporary directory), starts Caddy and waits
    /// until it serves. See the module docs.
    ///
    /// # Panics
    ///
    /// When Caddy is missing, rejects the Caddyfile or does not start; the
    /// message carries its output.
    pub fn start(mut sites: impl FnMut(&Path) -> String) -> Caddy {
        let binary = binary();
        assert!(
            binary.exists(),
            "Caddy not found at {}: install the Debian package `caddy` (or set CADDY_BIN)",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("twofold-caddy-")
            .tempdir()
            .expect("creating Caddy's temporary directory");
        let mut caddy = Caddy { dir, child: None };
        let mut last_error = String::new();
        for _ in 0..5 {
            let caddyfile = format!("{GLOBAL_OPTIONS}{}", sites(caddy.dir.path()));
            fs::write(caddy.caddyfile_path(), caddyfile).expect("writing the Caddyfile");
            match caddy.spawn() {
                Ok(()) => return caddy,
                // Another process took a port between the probe and Caddy's bind.
                Err(log) if log.contains("address already in use") => last_error = log,
                Err(log) => panic!("Caddy did not start:\n{log}"),
            }
        }
        panic!("Caddy did not start (ports kept clashing):\n{last_error}");
    }

    /// Caddy's temporary directory (`Caddyfile`, output, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What Caddy has logged so far (JSON lines on stderr): startup,
    /// errors such as a failed `forward_auth` round trip.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills Caddy: its ports refuse connections until [`Caddy::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts Caddy again with the same Caddyfile (and ports).
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
                Err(log) if log.contains("address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!("Caddy did not restart:\n{log}"),
            }
        }
    }

    fn caddyfile_path(&self) -> PathBuf {
        self.dir.path().join("Caddyfile")
    }

    /// Starts the process and waits for [`READY`]; `Err` carries the output
    /// when Caddy exits or is not up in time.
    fn spawn(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log_path = d.join("output.log");
        // A fresh log per attempt, so an earlier READY does not count.
        let log = fs::File::create(&log_path).expect("creating Caddy's output.log");
        let child = Command::new(binary())
            .arg("run")
            .arg("--config")
            .arg(self.caddyfile_path())
            .args(["--adapter", "caddyfile"])
            .env("HOME", d)
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the output.log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary().display()));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("Caddy child");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "Caddy exited ({status}):\n{}\n--- Caddyfile ---\n{}",
                    self.output(),
                    fs::read_to_string(self.caddyfile_path()).unwrap_or_default()
                ));
            }
            if self.output().contains(READY) {
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                self.stop();
                return Err(format!(
                    "Caddy was not up after {START_DEADLINE:?}:\n{}",
                    self.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        self.stop();
    }
}

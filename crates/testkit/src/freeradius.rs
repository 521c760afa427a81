//! A real FreeRADIUS 3 server for tests: the Debian package's
//! `/usr/sbin/freeradius` (override with `FREERADIUS_BIN`), run in the
//! foreground (`-X`) with a configuration written from scratch into a fresh
//! temporary directory — the `files` and `pap` modules, one client
//! (127.0.0.1) and the users given — listening on a free loopback UDP port.
//! Each test starts its own, so parallel runs do not clash; it is killed on
//! drop. When the binary is missing or the server does not come up,
//! `start` panics with its output: no test passes without it.

use std::fmt::Write as _;
use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a server is set up.
#[derive(Debug, Clone, Copy)]
pub struct FreeRadiusOptions<'a> {
    /// The shared secret of the one client, 127.0.0.1.
    pub secret: &'a str,
    /// `(user, password)`: each becomes a `Cleartext-Password` entry.
    pub users: &'a [(&'a str, &'a str)],
    /// The client's `require_message_authenticator`: requests without a
    /// valid Message-Authenticator are dropped.
    pub require_message_authenticator: bool,
    /// Add a Message-Authenticator to every Access-Accept and
    /// Access-Reject. FreeRADIUS 3.2.5 and later do so by themselves
    /// (BlastRADIUS); Debian 12's 3.2.1 only does when told, in post-auth.
    pub sign_replies: bool,
}

impl Default for FreeRadiusOptions<'_> {
    fn default() -> Self {
        FreeRadiusOptions {
            secret: "twofold-test-shared-secret",
            users: &[],
            require_message_authenticator: true,
            sign_replies: true,
        }
    }
}

/// A running FreeRADIUS; killed on drop.
pub struct FreeRadius {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    secret: String,
}

const READY: &str = "Ready to process requests";
const START_DEADLINE: Duration = Duration::from_secs(20);

fn binary() -> PathBuf {
    std::env::var_os("FREERADIUS_BIN")
        .map_or_else(|| PathBuf::from("/usr/sbin/freeradius"), PathBuf::from)
}

/// A double-quoted string for radiusd.conf and the users file.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A port that was free a moment ago (the server may lose a race for it;
/// `start` then tries another).
fn free_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
    socket.local_addr().expect("local address").port()
}

fn radiusd_conf(dir: &Path, port: u16, options: &FreeRadiusOptions<'_>) -> String {
    let dir = dir.display();
    let require = if options.require_message_authenticator {
        "yes"
    } else {
        "no"
    };
    let sign = if options.sign_replies {
        "\t\tupdate reply {\n\t\t\t&Message-Authenticator := 0x00\n\t\t}\n"
    } else {
        ""
    };
    let secret = quoted(options.secret);
    format!(
        r"# Written by twofold-testkit.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/log
name = radiusd
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}/run
db_dir = {dir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {dir}/run/radiusd.pid
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no

log {{
	destination = stdout
	colourise = no
	auth = yes
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}}

client localhost {{
	ipaddr = 127.0.0.1
	secret = {secret}
	require_message_authenticator = {require}
	nas_type = other
}}

modules {{
	files {{
		filename = {dir}/users
	}}
	pap {{
		normalise = yes
	}}
}}

server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {port}
	}}
	authorize {{
		files
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
	}}
	post-auth {{
{sign}		Post-Auth-Type REJECT {{
{sign}		}}
	}}
}}
"
    )
}

fn users_file(users: &[(&str, &str)]) -> String {
    let mut out = String::from("# Written by twofold-testkit.\n");
    for (user, password) in users {
        let _ = writeln!(
            out,
            "{} Cleartext-Password := {}",
            quoted(user),
            quoted(password)
        );
    }
    out
}

impl FreeRadius {
    /// Writes the configuration, starts the server and waits until it is
    /// ready. Panics (with the server's output) when it cannot.
    pub fn start(options: FreeRadiusOptions<'_>) -> FreeRadius {
        let binary = binary();
        assert!(
            binary.exists(),
            "FreeRADIUS not found at {}: install the Debian packages `freeradius` and \
             `freeradius-utils` (or set FREERADIUS_BIN)",
            binary.display()
        );
        let mut last_output = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("twofold-freeradius-")
                .tempdir()
                .expect("create a temporary directory for FreeRADIUS");
            fs::create_dir_all(dir.path().join("log")).expect("create log dir");
            fs::create_dir_all(dir.path().join("run")).expect("create run dir");
            fs::write(dir.path().join("users"), users_file(options.users)).expect("write users");
            let port = free_port();
            fs::write(
                dir.path().join("radiusd.conf"),
                radiusd_conf(dir.path(), port, &options),
            )
            .expect("write radiusd.conf");
            let log_path = dir.path().join("output.log");
            let log = fs::File::create(&log_path).expect("create output.log");
            let child = Command::new(&binary)
                .arg("-X")
                .arg("-d")
                .arg(dir.path())
                .arg("-n")
                .arg("radiusd")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let mut server = FreeRadius {
                child: Some(child),
                dir,
                port,
                secret: options.secret.to_string(),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(output) => {
                    server.stop();
                    let lost_port = output.contains("Address already in use");
                    last_output = output;
                    if !lost_port {
                        break;
                    }
                }
            }
        }
        panic!("FreeRADIUS did not start; its output:\n{last_output}");
    }

    /// Waits for "Ready to process requests"; on failure, the output.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let output = self.output();
            if output.contains(READY) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("(exited: {status})\n{output}"));
                }
            }
            if started.elapsed() > START_DEADLINE {
                return Err(format!("(not ready after {START_DEADLINE:?})\n{output}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// What the server has printed so far (`-X`: every request in detail).
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }

    /// Kills the server and waits for it; its port then answers nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
    }
}

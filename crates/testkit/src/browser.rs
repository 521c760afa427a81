//! A real browser for end-to-end tests: Debian's headless Chromium, driven
//! through ChromeDriver (WebDriver) with fantoccini.
//!
//! Chromium and ChromeDriver are not optional: when either is missing
//! `Browser::start` fails with a message saying to run `scripts/test.sh`
//! (which installs the Debian packages `chromium` and `chromium-driver`).
//! A browser test that quietly skipped would prove nothing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long `wait_*` helpers wait for the page before failing.
pub const WAIT: Duration = Duration::from_secs(15);
const DRIVER_START: Duration = Duration::from_secs(30);

/// The workspace's target directory: `CARGO_TARGET_DIR` when set (relative
/// to the workspace root), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Where `Browser::screenshot` writes: `<target>/e2e-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("e2e-screenshots")
}

fn require(path: &str, package: &str) -> anyhow::Result<()> {
    if Path::new(path).is_file() {
        Ok(())
    } else {
        bail!(
            "{path} is missing: the browser tests need Debian's `{package}` package. \
             Run scripts/test.sh (it installs chromium and chromium-driver), or \
             `apt-get install -y chromium chromium-driver`."
        )
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr()?.port())
}

/// ChromeDriver's `/status` says `"ready": true` (it refuses HTTP/1.0).
fn driver_ready(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.") && response.replace(' ', "").contains("\"ready\":true")
}

/// The ChromeDriver process. Killed, with the Chromium it started, on drop.
struct Driver {
    child: Child,
}

impl Driver {
    fn start(port: u16, log: &Path) -> anyhow::Result<Driver> {
        use std::os::unix::process::CommandExt;
        let log_file = std::fs::File::create(log).context("create chromedriver log")?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Its own process group, so that drop can end ChromeDriver and
            // every Chromium process it started, by that group's id.
            .process_group(0)
            .spawn()
            .with_context(|| format!("start {CHROMEDRIVER}"))?;
        let mut driver = Driver { child };
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Some(status) = driver.child.try_wait()? {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                bail!("chromedriver exited at start ({status}):\n{log}");
            }
            if driver_ready(port) {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port} within {DRIVER_START:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session.
pub struct Browser {
    pub client: Client,
    shots: AtomicU32,
    // Field order is drop order: the driver (and Chromium) go before the
    // profile directory they write into.
    driver: Driver,
    profile: TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a fresh Chromium session.
    pub async fn start() -> anyhow::Result<Browser> {
        require(CHROMIUM, "chromium")?;
        require(CHROMEDRIVER, "chromium-driver")?;
        let profile = tempfile::tempdir().context("temp dir for the Chromium profile")?;
        let port = free_port()?;
        let driver = Driver::start(port, &profile.path().join("chromedriver.log"))?;
        let user_data_dir = profile.path().join("user-data");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            // This machine's network is closed: no QUIC, no background
            // connections to Google, no component or sync updates.
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", user_data_dir.display()),
            // The server under test presents its own self-signed
            // certificate (generated at first start), which no CA vouches
            // for: accept it, as a person would after checking the printed
            // fingerprint.
            "--ignore-certificate-errors".into(),
        ];
        let caps = json!({
            "browserName": "chrome",
            // The W3C way to say the same as --ignore-certificate-errors.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        // ChromeDriver speaks plain HTTP on loopback: no TLS stack needed.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| {
                let log = std::fs::read_to_string(profile.path().join("chromedriver.log"))
                    .unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                anyhow!("could not open a Chromium session: {e}\nchromedriver log (end):\n{tail}")
            })?;
        Ok(Browser {
            client,
            shots: AtomicU32::new(0),
            driver,
            profile,
        })
    }

    /// Ends the WebDriver session (Chromium quits), then ChromeDriver.
    pub async fn close(self) -> anyhow::Result<()> {
        let Browser {
            client,
            driver,
            profile,
            ..
        } = self;
        let closed = client.close().await;
        drop(driver);
        drop(profile);
        closed.context("close the WebDriver session")
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("open {url}"))
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => Ok(el),
            Err(e) => Err(anyhow!(e).context(format!("find `{css}` on {}", self.here().await))),
        }
    }

    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .with_context(|| format!("find all `{css}`"))
    }

    /// Whether `css` matches anything on the page now.
    pub async fn exists(&self, css: &str) -> anyhow::Result<bool> {
        Ok(!self.find_all(css).await?.is_empty())
    }

    /// Waits (up to `WAIT`) until `css` matches, then returns it.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => Ok(el),
            Err(e) => Err(anyhow!(e).context(format!("wait for `{css}` on {}", self.here().await))),
        }
    }

    /// Waits (up to `WAIT`) until the text of `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if text.contains(needle) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "`{css}` never contained {needle:?} on {} (last text: {last:?})",
                    self.here().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first match of `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Replaces the value of the field `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        el.clear().await?;
        el.send_keys(value)
            .await
            .with_context(|| format!("type into `{css}`"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("click `{css}`"))
    }

    /// Runs `script` (a function body; `return` gives the result).
    pub async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.client
            .execute(script, vec![])
            .await
            .context("execute script")
    }

    /// The current URL, for messages.
    pub async fn here(&self) -> String {
        self.client
            .current_url()
            .await
            .map_or_else(|_| "<unknown page>".into(), |u| u.to_string())
    }

    /// Every visible form control (`input` but hidden ones, `select`,
    /// `textarea`) without a `<label for=its id>`. A radio button or
    /// checkbox may instead sit inside its `<label>`, the usual pattern
    /// for a list of choices. Returns the offenders' HTML.
    pub async fn unlabelled_controls(&self) -> anyhow::Result<Vec<String>> {
        let found = self
            .js(r#"
                const labelledFor = (el) => el.id !== "" &&
                    document.querySelector('label[for="' + CSS.escape(el.id) + '"]') !== null;
                const wrapped = (el) => (el.type === "radio" || el.type === "checkbox") &&
                    el.closest("label") !== null;
                return Array.from(document.querySelectorAll("input, select, textarea"))
                    .filter((el) => el.type !== "hidden")
                    .filter((el) => !labelledFor(el) && !wrapped(el))
                    .map((el) => el.outerHTML);
            "#)
            .await?;
        serde_json::from_value(found).context("script result")
    }

    /// Saves a PNG of the whole page as `<target>/e2e-screenshots/NN-name.png`
    /// (NN counts up per browser) and returns its path. A page longer than
    /// the window is taken with the window stretched to fit it.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(format!("{n:02}-{name}.png"));
        let sizes = self
            .js(
                "return [window.outerWidth, window.outerHeight, window.innerHeight, \
                 document.documentElement.scrollHeight];",
            )
            .await?;
        let [width, outer, inner, page]: [u32; 4] =
            serde_json::from_value(sizes).context("window sizes")?;
        let stretch = page > inner;
        if stretch {
            self.client
                .set_window_size(width, outer - inner + page)
                .await
                .context("stretch the window")?;
        }
        let png = self.client.screenshot().await.context("take screenshot");
        if stretch {
            self.client
                .set_window_size(width, outer)
                .await
                .context("restore the window")?;
        }
        let png = png?;
        std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_browser_says_how_to_install_it() {
        let err = require("/nonexistent/chromedriver", "chromium-driver").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("scripts/test.sh"), "{msg}");
        assert!(msg.contains("chromium-driver"), "{msg}");
    }

    #[test]
    fn screenshots_go_to_the_workspace_target() {
        assert!(screenshot_dir().ends_with("e2e-screenshots"));
    }
}

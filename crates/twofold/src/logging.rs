//! Logging: human (or JSON) lines on standard error always; JSON lines to
//! daily rolling files while the runtime setting `portal.logging` is on.
//! The setting can change while the server runs, so the file layer asks a
//! switch on every event instead of being configured once.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

#[derive(Clone, Default)]
pub struct FileLogSwitch(Arc<AtomicBool>);

impl FileLogSwitch {
    pub fn set(&self, on: bool) {
        let was = self.0.swap(on, Ordering::Relaxed);
        if was != on {
            tracing::info!(file_logging = on, "file logging switched");
        }
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

const LOG_PREFIX: &str = "twofold";
const LOG_SUFFIX: &str = "log";

/// Opens the log file only when the first line is written, so a server with
/// file logging off leaves no empty files behind.
///
/// Log lines name users and addresses, so the directory is made 0700 and
/// every day's file 0600 whatever the umask: the appender would create them
/// with the process's defaults (0755/0644). Before each write the file the
/// appender is about to use is created owner-only (it then only appends to
/// it); after the write, a file it rolled over to on its own is tightened.
struct LazyRollingFile {
    dir: PathBuf,
    appender: Option<RollingFileAppender>,
    failed: bool,
    /// The day whose file is known to be owner-only.
    private_day: Option<time::Date>,
}

impl LazyRollingFile {
    fn new(dir: PathBuf) -> Self {
        LazyRollingFile {
            dir,
            appender: None,
            failed: false,
            private_day: None,
        }
    }

    /// Today's file (the appender's daily name, in UTC), made owner-only.
    fn keep_private(&mut self) {
        let today = time::OffsetDateTime::now_utc().date();
        if self.private_day == Some(today) {
            return;
        }
        let path = self.dir.join(log_file_name(today));
        let made = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)));
        if let Err(e) = made {
            eprintln!(
                "twofold: cannot make log file {} owner-only: {e}",
                path.display()
            );
        }
        // Said once a day, not on every line.
        self.private_day = Some(today);
    }
}

/// The name `RollingFileAppender` gives a daily file: `twofold.2025-01-31.log`.
fn log_file_name(day: time::Date) -> String {
    format!(
        "{LOG_PREFIX}.{:04}-{:02}-{:02}.{LOG_SUFFIX}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl Write for LazyRollingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.appender.is_none() && !self.failed {
            if let Err(e) = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
            {
                eprintln!(
                    "twofold: cannot create log directory {}: {e}",
                    self.dir.display()
                );
            }
            self.keep_private();
            match RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(LOG_PREFIX)
                .filename_suffix(LOG_SUFFIX)
                .max_log_files(31)
                .build(&self.dir)
            {
                Ok(a) => self.appender = Some(a),
                Err(e) => {
                    self.failed = true;
                    eprintln!(
                        "twofold: cannot write log files in {}: {e}",
                        self.dir.display()
                    );
                }
            }
        }
        if self.appender.is_none() {
            return Ok(buf.len());
        }
        self.keep_private();
        let written = self
            .appender
            .as_mut()
            .map_or(Ok(buf.len()), |a| a.write(buf));
        // The appender may have rolled over to a new day's file meanwhile.
        self.keep_private();
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.appender {
            Some(a) => a.flush(),
            None => Ok(()),
        }
    }
}

pub struct Logging {
    pub switch: FileLogSwitch,
    _guard: WorkerGuard,
}

/// For `serve`: stderr plus the switchable file layer.
pub fn init_server(config: &Config) -> Logging {
    let switch = FileLogSwitch::default();
    let (writer, guard) =
        tracing_appender::non_blocking(LazyRollingFile::new(config.log_dir.clone()));
    let file_switch = switch.clone();
    let file_layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_filter(filter_fn(move |_| file_switch.is_on()));
    let filter = EnvFilter::new(&config.log_level);
    let registry = tracing_subscriber::registry().with(filter).with(file_layer);
    match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(colour())
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Logging {
        switch,
        _guard: guard,
    }
}

const CLI_FILTER: &str = "warn,twofold_store::group_commit=error";

/// For one-shot CLI commands: warnings and errors on stderr only — but not
/// the group commit's "slow group commit", which tells a server's operator
/// that requests waited for a batch; a command has no requests waiting, and
/// on a busy machine the line would stand before the command's own answer.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(CLI_FILTER))
        .with_ansi(colour())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Colours only for a person at a terminal: in a file, a pipe or a
/// journal the escape codes are noise (and `NO_COLOR` turns them off).
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EnvFilter::new` drops a directive it cannot parse without a word:
    /// the CLI's must all parse, or the slow-batch line would be back (or
    /// the warnings gone).
    #[test]
    fn the_cli_filter_parses() {
        let filter = EnvFilter::try_new(CLI_FILTER).expect("valid directives");
        let mut kept: Vec<String> = filter.to_string().split(',').map(String::from).collect();
        kept.sort();
        assert_eq!(kept, ["twofold_store::group_commit=error", "warn"]);
    }
}

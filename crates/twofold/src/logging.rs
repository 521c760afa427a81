//! Logging: human (or JSON) lines on standard error always; JSON lines to
//! daily rolling files while the runtime setting `portal.logging` is on.
//! The setting can change while the server runs, so the file layer asks a
//! switch on every event instead of being configured once.

use std::io::Write;
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

/// Opens the log file only when the first line is written, so a server with
/// file logging off leaves no empty files behind.
struct LazyRollingFile {
    dir: PathBuf,
    appender: Option<RollingFileAppender>,
    failed: bool,
}

impl Write for LazyRollingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.appender.is_none() && !self.failed {
            match RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix("twofold")
                .filename_suffix("log")
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
        match &mut self.appender {
            Some(a) => a.write(buf),
            None => Ok(buf.len()),
        }
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
    let (writer, guard) = tracing_appender::non_blocking(LazyRollingFile {
        dir: config.log_dir.clone(),
        appender: None,
        failed: false,
    });
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
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init(),
    }
    Logging {
        switch,
        _guard: guard,
    }
}

/// For one-shot CLI commands: warnings and errors on stderr only.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}

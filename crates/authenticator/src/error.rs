//! Everything that can go wrong, worded for the person at the terminal.
//! Server-provided text is escaped where it is displayed ([`crate::text`]).

use std::fmt;
use twofold_proto::ErrorBody;

use crate::text::clean;

#[derive(Debug)]
pub enum Error {
    /// The command line or the account selection is unusable (exit 2).
    Usage(String),
    /// The accounts file cannot be read, trusted or written.
    Store(String),
    /// No answer from the server: DNS, connection, TLS (pin mismatch),
    /// timeout.
    Transport { url: String, detail: String },
    /// The server answered with an error status.
    Api {
        url: String,
        status: u16,
        /// Boxed: the four strings would make every `Result` large.
        body: Box<ErrorBody>,
    },
    /// A success status with a body this version does not understand.
    Decode { url: String, detail: String },
    /// Anything else (a key that does not load, a bad stored secret, ...).
    Other(String),
}

impl Error {
    /// The process exit status for this error: 2 for usage mistakes, as
    /// clap does, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The error's `reason` (or `error` code) when the server sent one.
    pub fn api_reason(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => body.reason.as_deref().or(Some(body.error.as_str())),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Store(m) | Error::Other(m) => f.write_str(m),
            Error::Transport { url, detail } => {
                write!(f, "cannot reach {}: {}", clean(url), clean(detail))
            }
            Error::Api { url, status, body } => {
                write!(f, "{}: {}", clean(url), clean(&body.message))?;
                if let Some(reason) = &body.reason {
                    write!(f, " (reason: {})", clean(reason))?;
                }
                write!(f, " [HTTP {status} {}]", clean(&body.error))
            }
            Error::Decode { url, detail } => {
                write!(
                    f,
                    "unexpected answer from {}: {}",
                    clean(url),
                    clean(detail)
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// An error and its causes in one line, without repeats (reqwest's own
/// message hides the TLS or connection detail in its sources).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

//! The command line. The `--help` texts document each command's output:
//! end-to-end tests and scripts parse it, so it is kept stable.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 error (network, TLS, server refusal, store); \
2 usage error (bad arguments, unknown or ambiguous account); \
3 the server took an answer but the outcome is not what was asked \
(e.g. approve gave `rejected: wrong_number`).

Server errors are printed on stderr as `twofold-authenticator: URL: MESSAGE \
(reason: REASON) [HTTP STATUS ERROR]`. Text from the server is printed with \
control characters escaped (\\n, \\u{1b}, ...).";

/// Reference authenticator app of Twofold's Mobile App Web Service:
/// activates this machine as a device, shows and answers sign-in requests
/// (number matching), and shows the TOTP codes of the OATH fallback.
#[derive(Debug, Parser)]
#[command(name = "twofold-authenticator", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The accounts file (JSON, mode 0600). Default:
    /// $XDG_CONFIG_HOME/twofold-authenticator/accounts.json, else
    /// $HOME/.config/twofold-authenticator/accounts.json.
    #[arg(
        long,
        global = true,
        env = "TWOFOLD_AUTHENTICATOR_STORE",
        value_name = "PATH"
    )]
    pub store: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Activate this device for an account and store it.
    ///
    /// Give the activation URI (the QR code's text), or --url and --code.
    /// Prints one line on success:
    ///
    ///   activated USERNAME at ACCOUNT (device DEVICE_ID)
    #[command(after_help = AFTER_HELP)]
    Activate(ActivateArgs),
    /// List the stored accounts.
    ///
    /// One line per account, fields separated by a tab:
    ///
    ///   INDEX  ACCOUNT  USERNAME  DEVICE_ID  SERVICE_URL
    ///
    /// INDEX (from 0) is what --account takes. Nothing is printed when the
    /// store is empty. --json prints an array of objects with the fields
    /// index, account, username, device_id, device_name, service_url,
    /// fingerprint (or null), activated_at.
    #[command(after_help = AFTER_HELP)]
    List(ListArgs),
    /// Show the sign-in requests waiting for an answer.
    ///
    /// One line per request, fields separated by a tab:
    ///
    ///   ID  USERNAME@ACCOUNT  APPLICATION  SOURCE_ADDRESS  CREATED_AT  PIN
    ///
    /// SOURCE_ADDRESS is `-` when unknown; PIN is `pin` when an approval
    /// needs the user's PIN, else `-`. Nothing is printed when there is no
    /// request. --json prints an array of the protocol's PendingRequest
    /// objects (id, username, account, application, source_address,
    /// created_at, expires_at, pin_required) with `account_index` added.
    /// With --wait, returns as soon as any selected account has a request.
    /// An account that cannot be polled is reported on stderr and the exit
    /// status is 1; the others are still printed.
    #[command(after_help = AFTER_HELP)]
    Pending(PendingArgs),
    /// Approve a request with the number shown on the sign-in screen.
    ///
    /// Prints the server's outcome on one line: `accepted`, or
    /// `STATE: REASON` (`rejected: wrong_number`, `pending: wrong_pin
    /// (attempts left)`, `rejected: wrong_pin`, ...). Exit status 0 only for
    /// `accepted`; 3 for any other outcome.
    #[command(after_help = AFTER_HELP)]
    Approve(ApproveArgs),
    /// Deny a request (you started it but do not want it to go through).
    ///
    /// Prints the outcome like approve; exit status 0 for `rejected: denied`.
    #[command(after_help = AFTER_HELP)]
    Deny(AnswerArgs),
    /// Deny a request and report it as fraud (you did not start it).
    ///
    /// Prints the outcome like approve; exit status 0 for
    /// `rejected: fraud_reported`.
    #[command(after_help = AFTER_HELP)]
    Fraud(AnswerArgs),
    /// Wait for requests and answer them interactively.
    ///
    /// Long-polls every selected account; for each new request, prints it
    /// and asks for the number on the sign-in screen (approve), `d` (deny),
    /// `f` (report fraud), `s` or an empty line (skip), `q` (quit). The PIN
    /// is asked when the request needs it. `q` or Ctrl-D quits at any time.
    #[command(after_help = AFTER_HELP)]
    Watch(WatchArgs),
    /// Show the account's current TOTP code (the OATH fallback).
    ///
    /// Prints one line: `CODE (SECONDS s left)`, e.g. `492039 (17 s left)`.
    #[command(after_help = AFTER_HELP)]
    Code(AccountArg),
    /// Deactivate the device on the server and remove the account.
    ///
    /// Prints one line: `deactivated USERNAME at ACCOUNT (device DEVICE_ID)`.
    #[command(after_help = AFTER_HELP)]
    Deactivate(DeactivateArgs),
}

#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The activation URI: twofold://activate?url=…&code=…[&fp=…]
    #[arg(
        value_name = "URI",
        required_unless_present = "url",
        conflicts_with_all = ["url", "code", "fingerprint"]
    )]
    pub uri: Option<String>,
    /// The Mobile App Web Service URL (instead of a URI), e.g.
    /// https://mfa.example.org/mobile/v1.
    #[arg(long, value_name = "URL", requires = "code")]
    pub url: Option<String>,
    /// The activation code (with --url); spaces are ignored.
    #[arg(long, value_name = "CODE", requires = "url")]
    pub code: Option<String>,
    /// Pin the server's certificate: its SHA-256 as 64 hex digits (colons
    /// allowed, as `twofold serve` prints it). With --url only; a URI
    /// carries it as `fp`.
    #[arg(long, value_name = "HEX", requires = "url")]
    pub fingerprint: Option<String>,
    /// The device name shown on the account page (default: the host name).
    #[arg(long, value_name = "DEVICE_NAME")]
    pub name: Option<String>,
    /// Ask the server to wake this device through an ntfy topic URL.
    #[arg(long, value_name = "URL", conflicts_with = "webhook")]
    pub ntfy: Option<String>,
    /// Ask the server to wake this device by POSTing to this URL.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Trust the server's certificate through these PEM certificates (a CA
    /// or the certificate itself) when nothing is pinned. Without a pin or
    /// this, the public CAs (webpki roots) are trusted.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PendingArgs {
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Wait up to this many seconds (0 to 60) for a request to arrive.
    #[arg(long, value_name = "SECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=60))]
    pub wait: u32,
    /// Only these accounts: index, username@account, account name or
    /// username (default: all).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request id, as `pending` prints it.
    pub id: String,
    /// The number shown on the sign-in screen.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=99))]
    pub number: u32,
    /// The user's PIN, when the request needs one. Without it, the PIN is
    /// asked on the terminal.
    #[arg(
        long,
        value_name = "PIN",
        env = "TWOFOLD_AUTHENTICATOR_PIN",
        hide_env_values = true
    )]
    pub pin: Option<String>,
    /// The account the request is for (default: whichever has it pending).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The request id, as `pending` prints it.
    pub id: String,
    /// The account the request is for (default: whichever has it pending).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only these accounts (default: all).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct AccountArg {
    /// The account: index, username@account, account name or username
    /// (needed when there are several).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeactivateArgs {
    /// The account: index, username@account, account name or username
    /// (needed when there are several).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// Remove the account from the store even when the server cannot be
    /// reached or refuses (e.g. the device was already removed there).
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn activation_takes_a_uri_or_url_and_code() {
        assert!(Cli::try_parse_from(["t", "activate", "twofold://activate?x"]).is_ok());
        assert!(
            Cli::try_parse_from(["t", "activate", "--url", "https://x", "--code", "1"]).is_ok()
        );
        assert!(Cli::try_parse_from(["t", "activate"]).is_err());
        assert!(Cli::try_parse_from(["t", "activate", "--url", "https://x"]).is_err());
        assert!(
            Cli::try_parse_from(["t", "activate", "u", "--url", "https://x", "--code", "1"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["t", "activate", "u", "--ntfy", "a", "--webhook", "b"]).is_err()
        );
        let cli = Cli::try_parse_from(["t", "list", "--store", "/tmp/a.json"]).unwrap();
        assert_eq!(cli.store, Some(PathBuf::from("/tmp/a.json")));
    }

    #[test]
    fn numbers_and_waits_are_bounded() {
        assert!(Cli::try_parse_from(["t", "approve", "id", "--number", "42"]).is_ok());
        assert!(Cli::try_parse_from(["t", "approve", "id", "--number", "100"]).is_err());
        assert!(Cli::try_parse_from(["t", "approve", "id"]).is_err());
        assert!(Cli::try_parse_from(["t", "pending", "--wait", "60"]).is_ok());
        assert!(Cli::try_parse_from(["t", "pending", "--wait", "61"]).is_err());
    }
}

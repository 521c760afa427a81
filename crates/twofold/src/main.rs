//! `twofold`: one binary for every role — the server, and the administrator's
//! command line over the same configuration.

mod cli;
mod commands;
mod config;
mod logging;
mod portal;
mod runtime;
mod serve;
mod startup;
mod tls;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages can quote input (a name given with --as, a value):
            // shown, never acted on by the terminal.
            eprintln!(
                "error: {}",
                twofold_core::display::escape_control(&format!("{e:#}"))
            );
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Scripts can tell failures apart: 2 bad input, 3 not found, 4 conflict,
/// 69 database unavailable, 78 configuration, 1 anything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<config::ConfigError>().is_some() {
        return 78;
    }
    if e.downcast_ref::<commands::NotFoundNamed>().is_some() {
        return 3;
    }
    match e.downcast_ref::<twofold_core::Error>() {
        Some(twofold_core::Error::InvalidInput { .. }) => 2,
        Some(twofold_core::Error::NotFound(_)) => 3,
        Some(twofold_core::Error::Conflict { .. }) => 4,
        Some(twofold_core::Error::Forbidden(_) | twofold_core::Error::Unauthenticated { .. }) => 5,
        Some(twofold_core::Error::Unavailable(_)) => 69,
        _ => 1,
    }
}

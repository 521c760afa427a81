//! `twofold-bench`: load generator for Twofold's Web Service SDK API, the
//! mobile app's push round trip (`push`), a probe of the PIN hash cost, and
//! bulk loaders for scale runs (`seed`, `audit`).
//! See `docs/benchmarks.md`.

mod args;
mod audit;
mod load;
mod pin_cost;
mod push;
mod report;
mod seed;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let command = match Cli::parse().into_command() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twofold-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::PinHashCost { iterations } => pin_cost::measure(iterations).map(|c| {
            println!("{}", c.text());
            println!("{}", c.result_line());
            true
        }),
        Command::Load(cfg) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(load::run(*cfg))),
        Command::Push(cfg) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(push::run(*cfg))),
        Command::Seed(cfg) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(seed::run(*cfg))),
        Command::Audit(cfg) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(audit::run(*cfg))),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("twofold-bench: not every request was accepted (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("twofold-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

//! What each command does: parse arguments, call the engine, print.

mod admin;
mod audit;
mod device;
mod import;
mod output;
mod questions;
mod service_account;
mod settings;
mod sync;
mod token;
mod user;

use anyhow::Result;
use output::out;
use std::io::{BufRead, IsTerminal};
use twofold_core::{AdminService, Ctx};

use crate::cli::{Cli, Command, ConfigCommand, PasswordInput};
use crate::config::{self, Config};
use crate::{logging, runtime, serve};

pub async fn run(cli: Cli) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    match cli.command {
        Command::Config(ConfigCommand::Example) => {
            output::raw(config::example().trim_end());
            return Ok(());
        }
        Command::Openapi => {
            output::raw(twofold_web::sdk_api::openapi_document());
            return Ok(());
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref(), &env)?;
    match cli.command {
        Command::Serve(args) => {
            rustls::crypto::ring::default_provider()
                .install_default()
                .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
            if let Some(listen) = args.listen {
                config.listen = listen.parse().map_err(|_| {
                    config::ConfigError(format!("--listen: {listen:?} is not an address and port"))
                })?;
            }
            serve::run(config, cli.config.as_deref()).await
        }
        Command::Portal(args) => crate::portal::run(config, args.listen).await,
        Command::Config(ConfigCommand::Example) | Command::Openapi => {
            unreachable!("handled above")
        }
        Command::Config(ConfigCommand::Check) => {
            out!("configuration is valid");
            out!("  listen    {}", config.listen);
            out!("  data_dir  {}", config.data_dir.display());
            out!(
                "  database  {}",
                if config.database_url.starts_with("sqlite") {
                    "sqlite"
                } else {
                    "postgres"
                }
            );
            out!(
                "  metrics   {}",
                match (&config.metrics.token, config.metrics.allow.len()) {
                    (None, 0) => "off (no metrics.token or metrics.allow)".to_string(),
                    (Some(_), 0) => "on at /metrics (bearer token)".to_string(),
                    (None, n) => format!("on at /metrics ({n} allowed address range(s))"),
                    (Some(_), n) => {
                        format!("on at /metrics (bearer token, or {n} allowed address range(s))")
                    }
                }
            );
            if config.outbox {
                out!("warning: delivery.provider is outbox: calls and text messages are not sent (development only)");
            }
            if let Some(t) = &config.twilio {
                out!("  twilio    {} (from {})", t.base_url, t.from);
                match &config.public_url {
                    Some(url) if loopback_url(url) => out!(
                        "warning: public_url {url} is a loopback address: a telephony provider \
                         elsewhere cannot reach the webhooks; set public_url (TWOFOLD_PUBLIC_URL)"
                    ),
                    Some(url) => out!("  public    {url}"),
                    None if config.listen.ip().is_loopback() => out!(
                        "warning: public_url is not set and the server listens on a loopback \
                         address: unless the setting portal.url is set, a telephony provider \
                         cannot reach the webhooks; set public_url (TWOFOLD_PUBLIC_URL)"
                    ),
                    None => out!(
                        "  public    the setting portal.url, else https://{}",
                        config.listen
                    ),
                }
            }
            Ok(())
        }
        Command::User(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            user::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Settings(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            settings::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Audit(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            audit::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Admin(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            admin::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Token(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            token::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::ServiceAccount(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            service_account::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Device(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            // Where devices reach the server, unless public_url or the
            // portal.url setting says otherwise: where `serve` listens.
            opened
                .engine
                .listening_at(&format!("https://{}", config.listen));
            device::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Import(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            import::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Sync(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            sync::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
        Command::Questions(cmd) => {
            logging::init_cli();
            let opened = runtime::open(&config).await?;
            questions::run(
                opened.engine.as_ref(),
                &acting(&opened, cli.act_as.as_deref()).await?,
                cmd,
            )
            .await
        }
    }
}

/// Who the command acts as: the CLI itself (a full administrator), or with
/// `--as USERNAME` that portal administrator, held to their permissions.
async fn acting(opened: &runtime::Opened, act_as: Option<&str>) -> Result<Ctx> {
    let cli = Ctx::cli();
    Ok(match act_as {
        None => cli,
        Some(name) => opened.engine.act_as(&cli, name).await.naming(name)?,
    })
}

/// Asks at the terminal until the password is long enough and typed the
/// same twice: a slip should not end the command and lose what was typed
/// before it (Ctrl-C or Ctrl-D gives up).
fn prompt_new_password() -> Result<String> {
    loop {
        let first = rpassword::prompt_password("New password: ")?;
        if let Err(e) = twofold_core::validate::password(&first) {
            eprintln!("{e}; try again");
            continue;
        }
        if rpassword::prompt_password("Repeat password: ")? == first {
            return Ok(first);
        }
        eprintln!("the two passwords differ; try again");
    }
}

/// "user not found", naming the user. The engine's message leaves the name
/// out (it answers callers who may not know whom they asked about); at the
/// command line the administrator typed it, and with several names in a
/// script it says which one is wrong.
#[derive(Debug)]
pub struct NotFoundNamed {
    pub what: &'static str,
    pub name: String,
}

impl std::fmt::Display for NotFoundNamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} \"{}\" not found", self.what, self.name)
    }
}

impl std::error::Error for NotFoundNamed {}

/// Names the user or administrator in a "not found" from the engine.
trait Naming<T> {
    fn naming(self, name: &str) -> Result<T>;
}

impl<T> Naming<T> for Result<T, twofold_core::Error> {
    fn naming(self, name: &str) -> Result<T> {
        self.map_err(|e| match e {
            twofold_core::Error::NotFound(what @ ("user" | "administrator")) => NotFoundNamed {
                what,
                name: name.trim().to_string(),
            }
            .into(),
            other => other.into(),
        })
    }
}

/// A password from standard input (`--password-stdin`) or typed twice at a
/// terminal. `required` false means "none" is an acceptable answer when
/// neither applies.
fn read_password(input: &PasswordInput, required: bool) -> Result<Option<String>> {
    if input.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        return Ok(Some(pw.to_string()));
    }
    if std::io::stdin().is_terminal() && required {
        return prompt_new_password().map(Some);
    }
    if required {
        return Err(twofold_core::Error::invalid(
            "password",
            "no terminal to ask on; pass --password-stdin and write it to standard input",
        )
        .into());
    }
    Ok(None)
}

/// Whether `url`'s host is a loopback address (or `localhost`).
fn loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

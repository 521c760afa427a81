//! What `twofold serve` tells the person who started it: where the portal
//! is and, on a fresh installation, what to do first. Printed to standard
//! output, apart from the log on standard error.

use anyhow::Result;
use std::net::SocketAddr;
use std::path::Path;
use twofold_core::display::escape_control;
use twofold_core::ports::UserQuery;
use twofold_core::{AdminService, Ctx};

/// The announcement once the port is open. Its first line is what tests
/// and scripts wait for; keep its form.
pub fn serving(addr: SocketAddr) -> String {
    // A wildcard address is where the server listens, not one a browser
    // can open; on this machine the loopback name reaches it.
    let host = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    format!(
        "Twofold is serving https://{addr}/ (Ctrl-C to stop)\n  User Portal: https://{host}/portal"
    )
}

/// The development outbox's warning, beside the address.
pub fn outbox_warning(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    format!(
        "  DEVELOPMENT OUTBOX: calls and text messages are NOT sent. Read and answer them at\n  https://{host}/dev/outbox — never run a server people sign in to like this."
    )
}

/// Until someone can sign in, the first steps, as commands to paste into
/// a second terminal: nobody can use the portal before a user exists, and
/// no one administers it before the first administrator.
pub async fn first_steps(
    svc: &dyn AdminService,
    config_file: Option<&Path>,
) -> Result<Vec<String>> {
    let system = Ctx::system();
    let no_users = svc
        .list_users(
            &system,
            UserQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?
        .is_empty();
    let no_admin = svc.admin_count(&system).await? == 0;
    let me = invocation(config_file);
    let mut lines = Vec::new();
    if no_users {
        lines.push(
            "No users exist yet. In a second terminal, make the first portal administrator:".into(),
        );
        lines.push(format!("  {me} admin bootstrap <USERNAME>"));
        lines.push("and add users, each with a password to sign in with:".to_string());
        lines.push(format!(
            "  echo 'a long password' | {me} user add <USERNAME> --password-stdin"
        ));
    } else if no_admin {
        lines.push("No portal administrator exists yet. Create the first one with:".to_string());
        lines.push(format!("  {me} admin bootstrap <USERNAME>"));
    }
    Ok(lines)
}

/// How this program was started (a path under `target/` for `cargo run`,
/// or `twofold` from the PATH), so the commands shown work when pasted.
fn invocation(config_file: Option<&Path>) -> String {
    let program = std::env::args_os()
        .next()
        .map_or_else(|| "twofold".into(), |p| p.to_string_lossy().into_owned());
    let config = config_file
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    escape_control(&format!("{program}{config}")).into_owned()
}

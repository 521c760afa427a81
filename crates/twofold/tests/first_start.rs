//! What `twofold serve` says at the start (issue 9, item 10): where the
//! portal is, and on a fresh installation that nobody can sign in yet and
//! what to type about it.

#[macro_use]
mod common;

use common::Env;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(the_first_start_says_where_and_what_next);

/// Everything the server printed on stdout, from start to stop.
fn start_and_stop(env: &Env) -> (String, Vec<String>) {
    let mut server = env.start();
    let (status, rest) = server.terminate();
    assert!(status.success(), "{status}");
    let mut all = server.stdout.clone();
    all.extend(rest);
    (server.addr.clone(), all)
}

async fn the_first_start_says_where_and_what_next(backend: Backend) {
    let env = Env::new(backend).await;
    let (addr, out) = start_and_stop(&env);
    let text = out.join("\n");
    assert!(
        out.contains(&format!("  User Portal: https://{addr}/portal")),
        "{text}"
    );
    assert!(text.contains("No users exist yet"), "{text}");
    // Commands to paste, naming this very binary.
    let bin = common::BIN;
    assert!(
        out.contains(&format!("  {bin} admin bootstrap <USERNAME>")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{bin} user add <USERNAME> --password-stdin")),
        "{text}"
    );

    env.run_with_stdin(
        &["user", "add", "jan", "--password-stdin"],
        "a long password\n",
    );
    let (_, out) = start_and_stop(&env);
    let text = out.join("\n");
    assert!(!text.contains("No users exist yet"), "{text}");
    assert!(
        text.contains("No portal administrator exists yet"),
        "{text}"
    );

    let made = env.run_with_stdin(
        &["admin", "bootstrap", "jan", "--password-stdin"],
        "a long password\n",
    );
    assert_eq!(made.code(), 0, "{}", made.stderr());
    let (addr, out) = start_and_stop(&env);
    let text = out.join("\n");
    assert!(!text.contains("No portal administrator"), "{text}");
    assert!(text.contains(&format!("https://{addr}/portal")), "{text}");
}

//! `watch`: the app's main screen on a terminal. Long-polls the accounts,
//! shows each new request and answers it as the user says.
//!
//! Standard input is read by a thread, one line per request for a line, so
//! that `q` or Ctrl-D can end the wait for requests at any time, and
//! nothing else reads the terminal while the PIN is asked (the thread is
//! then idle). A line typed while waiting is never used as the answer to a
//! request that arrives later: the user must see a request before the
//! number they type approves it.

use std::collections::HashSet;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use twofold_authenticator::client::MAX_WAIT_SECONDS;
use twofold_authenticator::select::select_many;
use twofold_authenticator::session::{poll_all, Session};
use twofold_authenticator::store::Store;
use twofold_authenticator::text::clean;
use twofold_authenticator::Error;
use twofold_proto::mobile::{Decision, DeviceAnswer, PendingRequest};

use crate::commands::{open_sessions, outcome_line, read_pin_from_terminal, report_account_error};

/// The pause before polling again when the server answers at once with only
/// requests already seen (or with an error), so the loop does not spin.
const PAUSE: Duration = Duration::from_secs(3);

pub async fn run(path: &Path, selector: Option<&str>) -> Result<u8, Error> {
    let store = Store::load(path)?;
    let sessions = open_sessions(&store, &select_many(&store.accounts, selector)?)?;
    let mut input = Input::start();
    // Requests answered or skipped: (account index, request id).
    let mut done: HashSet<(usize, String)> = HashSet::new();
    out!(
        "watching {} account(s) for sign-in requests; q or Ctrl-D quits",
        sessions.len()
    );
    loop {
        let polled = tokio::select! {
            polled = poll_all(&sessions, MAX_WAIT_SECONDS) => polled,
            line = input.next() => {
                if is_quit(line.as_deref()) {
                    return Ok(0);
                }
                out!("(no request to answer yet; q quits)");
                continue;
            }
        };
        let mut fresh: Vec<(Session, PendingRequest)> = Vec::new();
        let mut stale = false;
        for (session, result) in polled {
            match result {
                Ok(requests) => {
                    for request in requests {
                        if done.contains(&(session.index, request.id.clone())) {
                            stale = true;
                        } else {
                            fresh.push((session.clone(), request));
                        }
                    }
                }
                Err(e) => {
                    stale = true;
                    report_account_error(&session, &e);
                }
            }
        }
        if fresh.is_empty() {
            if stale {
                tokio::select! {
                    () = tokio::time::sleep(PAUSE) => {}
                    line = input.next() => {
                        if is_quit(line.as_deref()) {
                            return Ok(0);
                        }
                    }
                }
            }
            continue;
        }
        for (session, request) in fresh {
            let key = (session.index, request.id.clone());
            if handle(&session, &request, &mut input).await == Flow::Quit {
                return Ok(0);
            }
            done.insert(key);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Next,
    Quit,
}

fn is_quit(line: Option<&str>) -> bool {
    line.is_none_or(|l| l.trim().eq_ignore_ascii_case("q"))
}

/// Shows one request and answers it; asks again after a wrong PIN.
async fn handle(session: &Session, request: &PendingRequest, input: &mut Input) -> Flow {
    out!();
    out!("sign-in request {}", clean(&request.id));
    out!(
        "  account:     {}@{}",
        clean(&request.username),
        clean(&request.account)
    );
    out!("  application: {}", clean(&request.application));
    if let Some(source) = &request.source_address {
        out!("  from:        {}", clean(source));
    }
    out!(
        "  at:          {} (expires {})",
        clean(&request.created_at),
        clean(&request.expires_at)
    );
    if request.pin_required {
        out!("  the PIN is required to approve");
    }
    loop {
        print!("number on the sign-in screen to approve, d deny, f report fraud, s skip, q quit: ");
        let _ = std::io::stdout().flush();
        let Some(line) = input.next().await else {
            out!();
            return Flow::Quit;
        };
        let (decision, number) = match line.trim() {
            "q" | "Q" => return Flow::Quit,
            "" | "s" | "S" => return Flow::Next,
            "d" | "D" => (Decision::Deny, None),
            "f" | "F" => (Decision::Fraud, None),
            n => match n.parse::<u32>() {
                Ok(n) if n <= 99 => (Decision::Approve, Some(n)),
                _ => {
                    out!("type the number shown where you are signing in, or d, f, s, q");
                    continue;
                }
            },
        };
        let pin = if decision == Decision::Approve && request.pin_required {
            match read_pin(input).await {
                Some(pin) => Some(pin),
                None => continue,
            }
        } else {
            None
        };
        let answer = DeviceAnswer {
            decision,
            number,
            pin,
        };
        match session.answer(&request.id, &answer).await {
            Ok(result) => {
                out!("{}", outcome_line(&result));
                if result.state != "pending" {
                    return Flow::Next;
                }
            }
            Err(e) => {
                eprintln!("twofold-authenticator: {e}");
                return Flow::Next;
            }
        }
    }
}

/// The PIN: from the terminal without echo, or as the next input line when
/// there is no terminal (a scripted `watch`).
async fn read_pin(input: &mut Input) -> Option<String> {
    if std::io::stdin().is_terminal() {
        match read_pin_from_terminal().await {
            Ok(pin) => return Some(pin),
            Err(e) => {
                eprintln!("twofold-authenticator: {e}");
                return None;
            }
        }
    }
    print!("PIN: ");
    let _ = std::io::stdout().flush();
    input
        .next()
        .await
        .map(|l| l.trim().to_string())
        .filter(|p| !p.is_empty())
}

/// Lines of standard input, read on demand by a thread.
struct Input {
    ask: std::sync::mpsc::Sender<()>,
    lines: mpsc::UnboundedReceiver<Option<String>>,
    /// A line was asked for and has not been received yet (its `next` was
    /// cancelled by a `select!`); the next `next` takes it.
    outstanding: bool,
    ended: bool,
}

impl Input {
    fn start() -> Input {
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (send, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for () in asked {
                let mut line = String::new();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = send.send(None);
                        return;
                    }
                    Ok(_) => {
                        if send.send(Some(line)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Input {
            ask,
            lines,
            outstanding: false,
            ended: false,
        }
    }

    /// The next line, or `None` at the end of input. Cancel-safe.
    async fn next(&mut self) -> Option<String> {
        if self.ended {
            return None;
        }
        if !self.outstanding {
            if self.ask.send(()).is_err() {
                self.ended = true;
                return None;
            }
            self.outstanding = true;
        }
        let line = self.lines.recv().await;
        self.outstanding = false;
        let line = line.flatten();
        self.ended = line.is_none();
        line
    }
}

//! One function per command. Each returns the exit status, or an error that
//! `main` prints on stderr (the status is then the error's).

use std::io::IsTerminal as _;
use std::path::Path;
use twofold_authenticator::activation::{self, Target};
use twofold_authenticator::client::{check_request_id, MobileClient, TrustChoice};
use twofold_authenticator::select::{select_many, select_one};
use twofold_authenticator::session::{poll_all, Session};
use twofold_authenticator::signing::DeviceKey;
use twofold_authenticator::store::{self, Store};
use twofold_authenticator::text::clean;
use twofold_authenticator::totp::Totp;
use twofold_authenticator::{now_unix, Error};
use twofold_proto::mobile::{
    ActivateRequest, Decision, DeviceAnswer, DeviceAnswerResult, PendingRequest, PushKind,
    PushTarget,
};

use crate::cli::{ActivateArgs, Cli, Command, DeactivateArgs, ListArgs, PendingArgs};

/// The server took the answer, but the outcome is not the one asked for.
pub const EXIT_OUTCOME: u8 = 3;

pub async fn run(cli: Cli) -> Result<u8, Error> {
    let path = match cli.store {
        Some(p) => p,
        None => store::default_path()?,
    };
    match cli.command {
        Command::Activate(a) => activate(&path, a).await,
        Command::List(a) => list(&path, &a),
        Command::Pending(a) => pending(&path, &a).await,
        Command::Approve(a) => {
            answer(
                &path,
                &a.id,
                a.account.as_deref(),
                Decision::Approve,
                Some(a.number),
                a.pin,
            )
            .await
        }
        Command::Deny(a) => {
            answer(
                &path,
                &a.id,
                a.account.as_deref(),
                Decision::Deny,
                None,
                None,
            )
            .await
        }
        Command::Fraud(a) => {
            answer(
                &path,
                &a.id,
                a.account.as_deref(),
                Decision::Fraud,
                None,
                None,
            )
            .await
        }
        Command::Watch(a) => crate::watch::run(&path, a.account.as_deref()).await,
        Command::Code(a) => code(&path, a.account.as_deref()),
        Command::Deactivate(a) => deactivate(&path, &a).await,
    }
}

async fn activate(path: &Path, a: ActivateArgs) -> Result<u8, Error> {
    let target = match (&a.uri, &a.url, &a.code) {
        (Some(uri), _, _) => Target::from_uri(uri)?,
        (None, Some(url), Some(code)) => Target::from_parts(url, code, a.fingerprint.as_deref())?,
        _ => {
            return Err(Error::Usage(
                "give an activation URI, or --url and --code".into(),
            ))
        }
    };
    // Stored absolute: later commands may run from another directory.
    let ca_file = a
        .ca_file
        .map(|p| {
            std::fs::canonicalize(&p)
                .map_err(|e| Error::Usage(format!("--ca-file {}: {e}", p.display())))
        })
        .transpose()?;
    if target.fingerprint.is_some() && ca_file.is_some() {
        eprintln!(
            "twofold-authenticator: the server's certificate is pinned; --ca-file is not used"
        );
    }
    let device_name = activation::device_name(a.name.as_deref())?;
    let push = match (a.ntfy, a.webhook) {
        (Some(url), _) => Some(PushTarget {
            kind: PushKind::Ntfy,
            url,
        }),
        (None, Some(url)) => Some(PushTarget {
            kind: PushKind::Webhook,
            url,
        }),
        (None, None) => None,
    };

    // Before a device exists on the server: the store must be loadable and
    // writable, and it is created (0600) now, before any secret goes in.
    Store::load(path)?.save()?;

    let trust = target.trust(ca_file.clone());
    let client = MobileClient::new(&target.url, &trust)?;
    let (key, pkcs8) = DeviceKey::generate()?;
    let request = ActivateRequest {
        code: target.code.clone(),
        device_name: device_name.clone(),
        public_key: key.public_key_base64(),
        push,
    };
    let response = client
        .activate(&key, &request)
        .await
        .map_err(|e| with_trust_hint(e, &trust))?;
    let device_id = response.device_id.clone();
    let account = target.account(
        &device_name,
        ca_file,
        DeviceKey::encode_stored(&pkcs8),
        response,
        now_unix(),
    )?;
    let line = format!(
        "activated {} at {} (device {})",
        clean(&account.username),
        clean(&account.account),
        account.device_id
    );
    // Loaded again: another command may have changed the store meanwhile.
    let saved = Store::load(path).and_then(|mut store| {
        store.accounts.push(account);
        store.save()
    });
    if let Err(e) = saved {
        return Err(Error::Store(format!(
            "the device was activated (device {device_id}) but could not be stored: {e}; \
             remove that device on your account page and activate again"
        )));
    }
    out!("{line}");
    Ok(0)
}

/// A certificate the public CAs do not vouch for is the usual case of a
/// self-hosted server: say how to trust it instead.
fn with_trust_hint(e: Error, trust: &TrustChoice) -> Error {
    match e {
        Error::Transport { url, detail }
            if *trust == TrustChoice::WebPki && detail.contains("invalid peer certificate") =>
        {
            Error::Transport {
                url,
                detail: format!(
                    "{detail} (the server's certificate is not from a public CA: use the \
                     activation URI with its fp, --fingerprint, or --ca-file PATH)"
                ),
            }
        }
        other => other,
    }
}

fn list(path: &Path, a: &ListArgs) -> Result<u8, Error> {
    let store = Store::load(path)?;
    if a.json {
        let rows: Vec<serde_json::Value> = store
            .accounts
            .iter()
            .enumerate()
            .map(|(i, acc)| {
                serde_json::json!({
                    "index": i,
                    "account": acc.account,
                    "username": acc.username,
                    "device_id": acc.device_id,
                    "device_name": acc.device_name,
                    "service_url": acc.service_url,
                    "fingerprint": acc.fingerprint,
                    "activated_at": acc.activated_at,
                })
            })
            .collect();
        out!("{}", json_text(&rows)?);
        return Ok(0);
    }
    for (i, acc) in store.accounts.iter().enumerate() {
        out!(
            "{i}\t{}\t{}\t{}\t{}",
            clean(&acc.account),
            clean(&acc.username),
            clean(&acc.device_id),
            clean(&acc.service_url)
        );
    }
    Ok(0)
}

async fn pending(path: &Path, a: &PendingArgs) -> Result<u8, Error> {
    let store = Store::load(path)?;
    let sessions = open_sessions(&store, &select_many(&store.accounts, a.account.as_deref())?)?;
    let mut found: Vec<(usize, PendingRequest)> = Vec::new();
    let mut failed = false;
    for (session, result) in poll_all(&sessions, a.wait).await {
        match result {
            Ok(requests) => found.extend(requests.into_iter().map(|r| (session.index, r))),
            Err(e) => {
                failed = true;
                report_account_error(&session, &e);
            }
        }
    }
    if a.json {
        let rows = found
            .iter()
            .map(|(index, request)| {
                let mut value = serde_json::to_value(request)
                    .map_err(|e| Error::Other(format!("cannot encode a request: {e}")))?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("account_index".into(), (*index).into());
                }
                Ok(value)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        out!("{}", json_text(&rows)?);
    } else {
        for (_, r) in &found {
            out!(
                "{}\t{}@{}\t{}\t{}\t{}\t{}",
                clean(&r.id),
                clean(&r.username),
                clean(&r.account),
                clean(&r.application),
                r.source_address.as_deref().map_or("-".into(), clean),
                clean(&r.created_at),
                if r.pin_required { "pin" } else { "-" }
            );
        }
    }
    Ok(u8::from(failed))
}

async fn answer(
    path: &Path,
    id: &str,
    selector: Option<&str>,
    decision: Decision,
    number: Option<u32>,
    pin: Option<String>,
) -> Result<u8, Error> {
    check_request_id(id)?;
    let store = Store::load(path)?;
    let sessions = open_sessions(&store, &select_many(&store.accounts, selector)?)?;
    // Which account has the request, and whether it needs the PIN.
    let mut holder: Option<(Session, PendingRequest)> = None;
    let mut poll_errors = Vec::new();
    for (session, result) in poll_all(&sessions, 0).await {
        match result {
            Ok(requests) => {
                if let Some(r) = requests.into_iter().find(|r| r.id == id) {
                    holder = Some((session, r));
                    break;
                }
            }
            Err(e) => poll_errors.push((session, e)),
        }
    }
    let (session, request) = match holder {
        Some((s, r)) => (s, Some(r)),
        // Named explicitly: answer anyway and let the server say what is
        // wrong (finished, not found).
        None if selector.is_some() && sessions.len() == 1 => (sessions[0].clone(), None),
        None => {
            for (s, e) in &poll_errors {
                report_account_error(s, e);
            }
            return Err(Error::Other(format!(
                "no pending request {id} in {} account(s): it may have expired or been answered",
                sessions.len()
            )));
        }
    };
    let pin = match (decision, pin) {
        (Decision::Approve, None) if request.as_ref().is_some_and(|r| r.pin_required) => {
            Some(ask_pin().await?)
        }
        (Decision::Approve, pin) => pin,
        // A PIN only ever goes with an approval.
        _ => None,
    };
    let result = session
        .answer(
            id,
            &DeviceAnswer {
                decision,
                number,
                pin,
            },
        )
        .await?;
    let outcome = outcome_line(&result);
    out!("{outcome}");
    if is_expected(decision, &result) {
        Ok(0)
    } else {
        eprintln!(
            "twofold-authenticator: the server did not {} the request: {outcome}",
            match decision {
                Decision::Approve => "accept",
                Decision::Deny => "deny",
                Decision::Fraud => "record fraud for",
            }
        );
        Ok(EXIT_OUTCOME)
    }
}

fn code(path: &Path, selector: Option<&str>) -> Result<u8, Error> {
    let store = Store::load(path)?;
    let account = &store.accounts[select_one(&store.accounts, selector)?];
    let code = Totp::from_seed(&account.oath)?.at(now_unix());
    out!("{} ({} s left)", code.code, code.seconds_left);
    Ok(0)
}

async fn deactivate(path: &Path, a: &DeactivateArgs) -> Result<u8, Error> {
    let store = Store::load(path)?;
    let index = select_one(&store.accounts, a.account.as_deref())?;
    let account = store.accounts[index].clone();
    let server = match Session::open(index, &account) {
        Ok(session) => session.deactivate().await,
        Err(e) => Err(e),
    };
    if let Err(e) = server {
        if !a.force {
            return Err(Error::Other(format!(
                "{e}; the account is still stored (add --force to remove it from this store anyway)"
            )));
        }
        eprintln!(
            "twofold-authenticator: {e}; removing the account from this store anyway (--force)"
        );
    }
    let mut store = Store::load(path)?;
    store.accounts.retain(|acc| {
        !(acc.device_id == account.device_id && acc.service_url == account.service_url)
    });
    store.save()?;
    out!(
        "deactivated {} at {} (device {})",
        clean(&account.username),
        clean(&account.account),
        clean(&account.device_id)
    );
    Ok(0)
}

pub fn open_sessions(store: &Store, indexes: &[usize]) -> Result<Vec<Session>, Error> {
    indexes
        .iter()
        .map(|&i| {
            Session::open(i, &store.accounts[i]).map_err(|e| {
                Error::Other(format!(
                    "account {i} ({}): {e}",
                    clean(&store.accounts[i].label())
                ))
            })
        })
        .collect()
}

pub fn report_account_error(session: &Session, e: &Error) {
    eprintln!(
        "twofold-authenticator: account {} ({}): {e}",
        session.index,
        clean(&session.account.label())
    );
}

/// `accepted`, or `STATE: REASON`, with a hint for a wrong PIN that leaves
/// attempts.
pub fn outcome_line(result: &DeviceAnswerResult) -> String {
    let mut line = clean(&result.state).into_owned();
    if let Some(reason) = result.reason.as_deref().filter(|r| *r != result.state) {
        line.push_str(": ");
        line.push_str(&clean(reason));
        if result.state == "pending" && reason == "wrong_pin" {
            line.push_str(" (attempts left)");
        }
    }
    line
}

/// Whether the outcome is what the command asked for.
pub fn is_expected(decision: Decision, result: &DeviceAnswerResult) -> bool {
    let reason = result.reason.as_deref();
    match decision {
        Decision::Approve => result.state == "accepted",
        Decision::Deny => result.state == "rejected" && reason == Some("denied"),
        Decision::Fraud => result.state == "rejected" && reason == Some("fraud_reported"),
    }
}

/// The PIN from the terminal, not echoed; refused without a terminal
/// rather than read from a pipe by surprise.
pub async fn ask_pin() -> Result<String, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "this request needs the user's PIN: pass --pin PIN (or set TWOFOLD_AUTHENTICATOR_PIN), \
             or run on a terminal to be asked"
                .into(),
        ));
    }
    read_pin_from_terminal().await
}

pub async fn read_pin_from_terminal() -> Result<String, Error> {
    let pin = tokio::task::spawn_blocking(|| rpassword::prompt_password("PIN: "))
        .await
        .map_err(|e| Error::Other(format!("cannot read the PIN: {e}")))?
        .map_err(|e| Error::Other(format!("cannot read the PIN: {e}")))?;
    let pin = pin.trim().to_string();
    if pin.is_empty() {
        return Err(Error::Usage("no PIN given".into()));
    }
    Ok(pin)
}

fn json_text(rows: &[serde_json::Value]) -> Result<String, Error> {
    serde_json::to_string(rows).map_err(|e| Error::Other(format!("cannot encode JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: &str, reason: Option<&str>) -> DeviceAnswerResult {
        DeviceAnswerResult {
            state: state.into(),
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn outcomes_are_printed_and_judged() {
        let accepted = result("accepted", Some("accepted"));
        assert_eq!(outcome_line(&accepted), "accepted");
        assert!(is_expected(Decision::Approve, &accepted));
        assert!(!is_expected(Decision::Deny, &accepted));

        let wrong = result("rejected", Some("wrong_number"));
        assert_eq!(outcome_line(&wrong), "rejected: wrong_number");
        assert!(!is_expected(Decision::Approve, &wrong));

        let pin = result("pending", Some("wrong_pin"));
        assert_eq!(outcome_line(&pin), "pending: wrong_pin (attempts left)");
        assert!(!is_expected(Decision::Approve, &pin));

        let denied = result("rejected", Some("denied"));
        assert!(is_expected(Decision::Deny, &denied));
        assert!(!is_expected(Decision::Fraud, &denied));
        assert!(is_expected(
            Decision::Fraud,
            &result("rejected", Some("fraud_reported"))
        ));

        assert_eq!(
            outcome_line(&result("rejected\u{1b}[2J", None)),
            "rejected\\u{1b}[2J"
        );
    }
}

//! A stored account made ready to talk to its server (key loaded, client
//! with the account's trust), and polling several accounts at once.

use std::sync::Arc;
use tokio::task::JoinSet;
use twofold_proto::mobile::{DeviceAnswer, DeviceAnswerResult, PendingRequest};

use crate::client::{MobileClient, TrustChoice};
use crate::signing::DeviceKey;
use crate::store::Account;
use crate::Error;

/// One account, ready for signed calls. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account's position in the store (what `list` prints).
    pub index: usize,
    pub account: Arc<Account>,
    client: MobileClient,
    key: Arc<DeviceKey>,
}

impl Session {
    pub fn open(index: usize, account: &Account) -> Result<Session, Error> {
        let trust =
            TrustChoice::stored(account.fingerprint.as_deref(), account.ca_file.as_deref())?;
        let client = MobileClient::new(&account.service_url, &trust)?;
        let key = DeviceKey::from_stored(&account.private_key)?;
        Ok(Session {
            index,
            account: Arc::new(account.clone()),
            client,
            key: Arc::new(key),
        })
    }

    pub async fn pending(&self, wait: u32) -> Result<Vec<PendingRequest>, Error> {
        self.client
            .pending(&self.key, &self.account.device_id, wait)
            .await
            .map(|p| p.requests)
    }

    pub async fn answer(
        &self,
        request_id: &str,
        answer: &DeviceAnswer,
    ) -> Result<DeviceAnswerResult, Error> {
        self.client
            .answer(&self.key, &self.account.device_id, request_id, answer)
            .await
    }

    pub async fn deactivate(&self) -> Result<(), Error> {
        self.client
            .deactivate(&self.key, &self.account.device_id)
            .await
    }
}

/// What one account's poll gave.
pub type PollResult = (Session, Result<Vec<PendingRequest>, Error>);

/// Polls every session concurrently, in the order given.
///
/// With `wait > 0` it returns as soon as any account has a request: the
/// long-polls still running are then cut short and replaced by an immediate
/// (`wait=0`) look, so the answer lists every account's requests at that
/// moment, not just the first account's.
pub async fn poll_all(sessions: &[Session], wait: u32) -> Vec<PollResult> {
    let mut results: Vec<Option<Result<Vec<PendingRequest>, Error>>> =
        sessions.iter().map(|_| None).collect();
    let mut polls = spawn_polls(sessions, (0..sessions.len()).collect(), wait);
    while let Some(joined) = polls.join_next().await {
        let Ok((pos, result)) = joined else { continue };
        let found = matches!(&result, Ok(requests) if !requests.is_empty());
        results[pos] = Some(result);
        if found && wait > 0 {
            polls.abort_all();
            while polls.join_next().await.is_some() {}
            break;
        }
    }
    let unfinished: Vec<usize> = (0..sessions.len())
        .filter(|&i| results[i].is_none())
        .collect();
    if !unfinished.is_empty() {
        let mut quick = spawn_polls(sessions, unfinished, 0);
        while let Some(joined) = quick.join_next().await {
            if let Ok((pos, result)) = joined {
                results[pos] = Some(result);
            }
        }
    }
    sessions
        .iter()
        .zip(results)
        .map(|(s, r)| {
            // Only a panicked task leaves no result; say so rather than hide
            // the account.
            let r =
                r.unwrap_or_else(|| Err(Error::Other("the poll of this account failed".into())));
            (s.clone(), r)
        })
        .collect()
}

fn spawn_polls(
    sessions: &[Session],
    positions: Vec<usize>,
    wait: u32,
) -> JoinSet<(usize, Result<Vec<PendingRequest>, Error>)> {
    let mut set = JoinSet::new();
    for pos in positions {
        let session = sessions[pos].clone();
        set.spawn(async move { (pos, session.pending(wait).await) });
    }
    set
}

//! PostgreSQL's passcode views read together: under load, the sign-ins
//! arriving while one view is read are read by one statement next, the way
//! the group commit writes them (`group_commit.rs`). Each statement costs
//! the database a round trip, a wake-up and the start of an executor; a
//! handful of views cost little more than one. Alone, a view is read by
//! itself, with one hand-off to a reader task more than before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot, Mutex};
use twofold_core::factors::Factor;
use twofold_core::{Error, Result};

use crate::errors::copy_of;
use crate::held::{held_read, Held};
use crate::passcode_view::{view_columns, VIEW_SQL};
use crate::rows::cell;

/// Views read by one statement at most.
const MAX_TOGETHER: usize = 64;
/// Views waiting to be read at most; beyond, a request waits to queue.
const QUEUE: usize = 4096;

/// The views of several username keys (`$1`, a JSON array) with the place
/// (from 1) of the key each row is for; `$2` the code factor's name.
static VIEWS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.place, {columns} \
         FROM json_array_elements_text($1::json) WITH ORDINALITY AS k(key, place) \
         CROSS JOIN LATERAL (SELECT {users} FROM users \
            WHERE username_key = k.key COLLATE \"C\") u \
         LEFT JOIN user_groups g ON g.user_id = u.id \
         LEFT JOIN secret_failures f ON f.user_id = u.id AND f.factor = $2 \
         LEFT JOIN oath_tokens t ON t.user_id = u.id",
        columns = view_columns(),
        users = crate::users::USER_COLUMNS,
    )
});

struct Ask {
    key: String,
    reply: oneshot::Sender<Result<Vec<AnyRow>>>,
}

/// Where views are asked for; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ViewReads {
    asks: mpsc::Sender<Ask>,
    /// Statements that read more than one view.
    together: Arc<AtomicU64>,
}

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask").finish_non_exhaustive()
    }
}

impl ViewReads {
    /// `readers` tasks reading on `held`'s connections; they end when the
    /// last `ViewReads` is dropped.
    pub(crate) fn start(held: &Arc<Held>, readers: usize) -> ViewReads {
        let (asks, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let together = Arc::new(AtomicU64::new(0));
        for _ in 0..readers.max(1) {
            tokio::spawn(reader(held.clone(), queue.clone(), together.clone()));
        }
        ViewReads { asks, together }
    }

    /// Statements that read more than one view so far.
    pub(crate) fn together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
    }

    /// The rows of the view of `key` (none: no such user).
    pub(crate) async fn read(&self, key: String) -> Result<Vec<AnyRow>> {
        let (reply, answer) = oneshot::channel();
        if self.asks.send(Ask { key, reply }).await.is_err() {
            return Err(crate::held::closed());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::Internal("a view read was dropped".into())))
    }
}

async fn reader(held: Arc<Held>, queue: Arc<Mutex<mpsc::Receiver<Ask>>>, together: Arc<AtomicU64>) {
    loop {
        let mut asks = Vec::new();
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(ask) => asks.push(ask),
                None => return,
            }
            while asks.len() < MAX_TOGETHER {
                match queue.try_recv() {
                    Ok(ask) => asks.push(ask),
                    Err(_) => break,
                }
            }
        }
        if asks.len() > 1 {
            together.fetch_add(1, Ordering::Relaxed);
        }
        match read_together(&held, &asks).await {
            Ok(mut rows) => {
                for ask in asks.into_iter().rev() {
                    let mine = rows.pop().unwrap_or_default();
                    let _ = ask.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                for ask in asks {
                    let _ = ask.reply.send(Err(copy_of(&e)));
                }
            }
        }
    }
}

/// The rows of each ask, in the asks' order.
async fn read_together(held: &Held, asks: &[Ask]) -> Result<Vec<Vec<AnyRow>>> {
    let factor = Factor::Code.as_str();
    if let [ask] = asks {
        let sql = VIEW_SQL.as_str();
        let rows = held_read!(held, |conn| sqlx::query(sql)
            .bind(&ask.key)
            .bind(factor)
            .fetch_all(&mut *conn)
            .await)?;
        return Ok(vec![rows]);
    }
    let keys: Vec<&str> = asks.iter().map(|a| a.key.as_str()).collect();
    let keys = serde_json::to_string(&keys)
        .map_err(|e| Error::Internal(format!("the keys of a view read: {e}")))?;
    let sql = VIEWS_SQL.as_str();
    let rows = held_read!(held, |conn| sqlx::query(sql)
        .bind(&keys)
        .bind(factor)
        .fetch_all(&mut *conn)
        .await)?;
    let mut each: Vec<Vec<AnyRow>> = (0..asks.len()).map(|_| Vec::new()).collect();
    for row in rows {
        let place: i64 = cell(&row, "place")?;
        let slot = usize::try_from(place - 1)
            .ok()
            .and_then(|p| each.get_mut(p))
            .ok_or_else(|| Error::Internal(format!("a view read returned place {place}")))?;
        slot.push(row);
    }
    Ok(each)
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use twofold_core::audit::{NewAuditEvent, ResultCode};
    use twofold_core::factors::{
        Factor, GuessPolicy, NewOathToken, OathAlgorithm, OathKind, OathParams,
    };
    use twofold_core::user::NewUser;
    use twofold_testkit::db::{Backend, TestDb};

    use crate::SqlStore;

    fn event() -> NewAuditEvent {
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor: "test".into(),
            via: None,
            subject: None,
            event: "test.views".into(),
            method: None,
            result: ResultCode::Success,
            source_ip: None,
            detail: None,
        }
    }

    /// Views asked for while the readers are busy are read by one
    /// statement, and each ask gets its own user's view — the same as
    /// `find_user`, `failures` and `oath_tokens` — or none for a name no
    /// one has, also when a name is asked for twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn views_asked_together_are_read_together() {
        let db = TestDb::new(Backend::Postgres).await.unwrap();
        // Four connections: two held for the views, two readers.
        let store = SqlStore::connect(&db.url, 4).await.unwrap();
        let mut expected = Vec::new();
        for (n, name) in ["u0", "u1", "u2", "u3", "u4"].into_iter().enumerate() {
            let new = NewUser {
                username: name.into(),
                groups: (0..n % 3).map(|g| format!("group {g}")).collect(),
                ..NewUser::default()
            };
            let user = store.create_user(&new, &event()).await.unwrap();
            for t in 0..n % 3 {
                let token = NewOathToken {
                    label: format!("t{t}"),
                    params: OathParams {
                        kind: OathKind::Totp,
                        algorithm: OathAlgorithm::Sha1,
                        digits: 6,
                        period: 30,
                    },
                    sealed_secret: "sealed".into(),
                    counter: 0,
                };
                store
                    .add_oath_token(user.id, &token, &event())
                    .await
                    .unwrap();
            }
            if n % 2 == 1 {
                store
                    .record_failure(
                        user.id,
                        Factor::Code,
                        OffsetDateTime::now_utc(),
                        &GuessPolicy::NONE,
                    )
                    .await
                    .unwrap();
            }
            let found = store.find_user(name).await.unwrap().unwrap();
            let failures = store.failures(user.id, Factor::Code).await.unwrap();
            let tokens = store.oath_tokens(user.id).await.unwrap();
            expected.push((name, Some((found, failures, tokens))));
        }
        expected.push(("nobody", None));
        expected.push(("U0", expected[0].1.clone()));
        let reads = store
            .view_reads
            .clone()
            .expect("PostgreSQL reads views together");
        let before = reads.together();

        // Both held connections taken: the readers wait with what they
        // took, and the rest queue behind them.
        let held = store.held.clone().unwrap();
        let (first, second) = (held.take().await.unwrap(), held.take().await.unwrap());
        let asks: Vec<_> = expected
            .iter()
            .map(|(name, _)| {
                let (store, name) = (store.clone(), name.to_string());
                tokio::spawn(async move { store.passcode_view(&name).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop((first, second));

        for (ask, (name, want)) in asks.into_iter().zip(&expected) {
            let got = ask.await.unwrap().unwrap();
            let got = got.map(|v| (v.user, v.code_failures, v.tokens));
            assert_eq!(&got, want, "{name}");
        }
        assert!(
            reads.together() > before,
            "no statement read views together"
        );
    }
}

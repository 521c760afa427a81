//! Ports: what the engine needs from the outside world. Adapters implement
//! them; only the binary chooses which.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditQuery, NewAuditEvent};
use time::OffsetDateTime;

use crate::error::Result;
use crate::factors::{
    CodeUse, Enrollment, Factor, FailureOutcome, FailureState, GuessPolicy, NewOathToken,
    OathToken, PinRecord, SecurityQuestion, ServiceAccount, SessionRecord, StoredAnswer,
};
use crate::user::{Admin, NewUser, Permission, User, UserId};

pub use crate::clock::Clock;

/// Listing users: `prefix` matches the start of the username (any case),
/// `after` pages by username; the other fields narrow the list.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub prefix: Option<String>,
    pub group: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
    /// Text found (any case) in the display name, the e-mail address or a
    /// phone number.
    pub text: Option<String>,
    /// Only users in this state.
    pub status: Option<StatusFilter>,
}

/// A user's state, for finding users (the admin pages' status filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// May sign in at `now`.
    Enabled(OffsetDateTime),
    Disabled,
    /// Paused or locked by wrong attempts at `now`.
    Locked(OffsetDateTime),
    /// Blocked after a fraud report.
    Blocked,
}

/// Persistent state: the narrow repositories below (users, administrators,
/// settings, audit, factors, challenges, sessions, service accounts),
/// joined. The engine holds one `Arc<dyn Store>` and calls any repository's
/// methods on it.
///
/// Every method that changes something is one transaction
/// and writes the audit event it is given inside that same transaction, so a
/// change and its record land together or not at all.
///
/// Errors: a duplicate username is `Error::Conflict`, a write based on a stale
/// `User::version` is `Error::Conflict`, an unreachable database is
/// `Error::Unavailable`.
///
/// An adapter implements every repository trait and then `Store` itself
/// (`backend` and `ping`, which describe the database as a whole).
#[async_trait]
pub trait Store:
    UserRepo
    + AdminRepo
    + SettingsRepo
    + AuditRepo
    + FactorRepo
    + ChallengeRepo
    + SessionRepo
    + ServiceAccountRepo
    + OutboxRepo
    + DeviceRepo
    + Wakeups
    + SyncRepo
    + PassedSessionRepo
    + TokenInventoryRepo
    + ReportRepo
    + Send
    + Sync
    + 'static
{
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Proves the database answers (used by `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// What checking a passcode reads (`find_user`, `failures` of the code
    /// factor, `oath_tokens`), read together: on a database across the
    /// network one round trip instead of three. `None`: no such user.
    async fn passcode_view(&self, username: &str) -> Result<Option<PasscodeView>>;
}

/// See [`Store::passcode_view`].
#[derive(Debug, Clone)]
pub struct PasscodeView {
    pub user: User,
    /// The guessing record of [`Factor::Code`].
    pub code_failures: FailureState,
    pub tokens: Vec<OathToken>,
}

/// Users: their profile, groups and password hash.
#[async_trait]
pub trait UserRepo: Send + Sync {
    async fn create_user(&self, user: &NewUser, audit: &NewAuditEvent) -> Result<User>;
    /// Case-insensitive lookup.
    async fn find_user(&self, username: &str) -> Result<Option<User>>;
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<u64>;
    /// Writes the profile fields of `user` if its `version` is still current;
    /// returns the stored user with its new version.
    async fn update_user(&self, user: &User, audit: &NewAuditEvent) -> Result<User>;
    /// Returns false when there was no such user.
    async fn delete_user(&self, id: UserId, audit: &NewAuditEvent) -> Result<bool>;

    async fn password_hash(&self, id: UserId) -> Result<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: &str, audit: &NewAuditEvent) -> Result<()>;
    /// Replaces the password hash with a stronger hash of the same password
    /// (peppered, current cost) only while it still is `old`
    /// (compare-and-set), so a password changed meanwhile stays. Nothing
    /// else changes (no version, no audit event): the password is the same.
    /// True when it was replaced.
    async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> Result<bool>;
}

/// Portal administrators: which users may administer, and what.
#[async_trait]
pub trait AdminRepo: Send + Sync {
    async fn put_admin(
        &self,
        user_id: UserId,
        permissions: &[Permission],
        scope_group: Option<&str>,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    async fn list_admins(&self) -> Result<Vec<Admin>>;
    /// Returns false when the user was no administrator.
    async fn delete_admin(&self, user_id: UserId, audit: &NewAuditEvent) -> Result<bool>;
    async fn count_admins(&self) -> Result<u64>;
}

/// Settings that differ from their defaults.
#[async_trait]
pub trait SettingsRepo: Send + Sync {
    /// Stored settings rows (key, JSON text): only keys that differ from defaults.
    async fn settings_rows(&self) -> Result<Vec<(String, String)>>;
    /// Sets (`Some`) or removes (`None`, back to default) rows in one transaction.
    async fn write_settings(
        &self,
        rows: &[(String, Option<String>)],
        audit: &NewAuditEvent,
    ) -> Result<()>;
}

/// The audit log.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Records an event that has no change attached (a refusal, a sign-in).
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<i64>;
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Deletes up to `batch` of the oldest events from before `before`;
    /// returns how many it deleted (fewer than `batch`: none are left).
    async fn prune_audit(&self, before: OffsetDateTime, batch: u32) -> Result<u64>;
}

/// Everything a user signs in with, and what guards it: the factor
/// repositories joined together. Implemented for every type that
/// implements them all.
pub trait FactorRepo:
    OathTokenRepo + PinRepo + QuestionRepo + BypassRepo + LockoutRepo + EnrollmentRepo
{
}

impl<T> FactorRepo for T where
    T: OathTokenRepo + PinRepo + QuestionRepo + BypassRepo + LockoutRepo + EnrollmentRepo
{
}

/// OATH tokens and their counters.
#[async_trait]
pub trait OathTokenRepo: Send + Sync {
    async fn add_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        audit: &NewAuditEvent,
    ) -> Result<OathToken>;
    /// An administrator gives a user a token: adds it and, only when the
    /// user has no method yet, makes `method` theirs — one transaction.
    /// Returns the token and whether the method was set.
    async fn give_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        method: crate::user::DefaultMethod,
        audit: &NewAuditEvent,
    ) -> Result<(OathToken, bool)>;
    async fn oath_tokens(&self, user_id: UserId) -> Result<Vec<OathToken>>;
    /// Returns false when the user has no such token.
    async fn delete_oath_token(
        &self,
        user_id: UserId,
        token_id: i64,
        audit: &NewAuditEvent,
    ) -> Result<bool>;
    /// Compare-and-set of a token's counter: true only if it still was `from`.
    /// This is what makes a code usable once, even across nodes.
    async fn advance_oath_counter(&self, token_id: i64, from: i64, to: i64) -> Result<bool>;
    /// Uses a code: unless the code factor is closed at `audit.at` under `gate`
    /// (`None`: an administrator's resynchronisation, never gated), a
    /// compare-and-set of the counter and, only when it wins, the code
    /// factor's streak is cleared and `audit` written — one transaction.
    async fn accept_code(
        &self,
        user_id: UserId,
        token_id: i64,
        from: i64,
        to: i64,
        gate: Option<&GuessPolicy>,
        audit: &NewAuditEvent,
    ) -> Result<CodeUse>;
}

/// The PIN and its history.
#[async_trait]
pub trait PinRepo: Send + Sync {
    async fn pin(&self, user_id: UserId) -> Result<Option<PinRecord>>;
    /// Hashes of earlier PINs, newest first (the current one excluded).
    async fn pin_history(&self, user_id: UserId) -> Result<Vec<String>>;
    /// Sets the PIN; the previous one moves to the history, which is trimmed to
    /// `keep_history` entries. One transaction.
    async fn set_pin(
        &self,
        user_id: UserId,
        hash: &str,
        set_at: OffsetDateTime,
        keep_history: u32,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// Replaces the PIN's hash with a stronger hash of the same PIN only
    /// while it still is `old` (compare-and-set), so a PIN changed meanwhile
    /// stays. Nothing else changes (not `set_at`, not the history, no audit
    /// event): the PIN is the same. True when it was replaced.
    async fn rehash_pin(&self, user_id: UserId, old: &str, new: &str) -> Result<bool>;
}

/// Security questions and the users' answers to them.
#[async_trait]
pub trait QuestionRepo: Send + Sync {
    async fn add_question(
        &self,
        language: &str,
        text: &str,
        audit: &NewAuditEvent,
    ) -> Result<SecurityQuestion>;
    /// All questions, or those of one language, in the administrators'
    /// order (new ones last).
    async fn questions(&self, language: Option<&str>) -> Result<Vec<SecurityQuestion>>;
    async fn delete_question(&self, id: i64, audit: &NewAuditEvent) -> Result<bool>;
    /// Swaps a question with its neighbour above (`up`) or below among its
    /// language's; `None` when there is no such question, `Some(false)`
    /// when it is already first or last (nothing recorded).
    async fn move_question(&self, id: i64, up: bool, audit: &NewAuditEvent)
        -> Result<Option<bool>>;
    async fn answers(&self, user_id: UserId) -> Result<Vec<StoredAnswer>>;
    /// Replaces all of the user's answers.
    async fn set_answers(
        &self,
        user_id: UserId,
        answers: &[(i64, String)],
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// Replaces one answer's hash with a stronger hash of the same answer
    /// only while it still is `old` (compare-and-set), as `rehash_pin`.
    async fn rehash_answer(
        &self,
        user_id: UserId,
        question_id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool>;
}

/// One-time bypass.
#[async_trait]
pub trait BypassRepo: Send + Sync {
    /// Sets (Some) or cancels (None) the user's pending bypass.
    async fn set_bypass(
        &self,
        user_id: UserId,
        until: Option<OffsetDateTime>,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// Atomically uses a bypass still valid at `now`; true only for the one
    /// caller that consumed it. The audit event is written only then.
    async fn consume_bypass(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool>;
    async fn bypass_until(&self, user_id: UserId) -> Result<Option<OffsetDateTime>>;
}

/// Guessing: failures counted per user and factor, shared by every node.
#[async_trait]
pub trait LockoutRepo: Send + Sync {
    /// The record of `factor` for the user (all zero when never failed).
    async fn failures(&self, user_id: UserId, factor: Factor) -> Result<FailureState>;
    /// Counts one wrong secret — atomically with the gate: when the factor
    /// is closed at `now` (a parallel request closed it), nothing is counted.
    /// A failure that reaches the hard lock sets the user's `locked_until`
    /// to "until an administrator unblocks" in the same transaction.
    async fn record_failure(
        &self,
        user_id: UserId,
        factor: Factor,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Result<FailureOutcome>;
    /// A right secret: ends the factor's streak, unless the factor is closed
    /// at `now` — then nothing changes and the time it opens is returned.
    /// Writes nothing when there is nothing to clear.
    async fn record_success(
        &self,
        user_id: UserId,
        factor: Factor,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Result<Option<OffsetDateTime>>;
    /// Forgets every record of the user (an administrator's unblock also
    /// ends pauses in progress).
    async fn clear_failures(&self, user_id: UserId) -> Result<()>;
}

/// Enrollment: the wizard's result, written at once.
#[async_trait]
pub trait EnrollmentRepo: Send + Sync {
    /// Writes everything the wizard collected — method, token, PIN, answers —
    /// in one transaction; refused with Conflict when the user already has a
    /// method (a second wizard finishing late must not overwrite the first).
    async fn complete_enrollment(
        &self,
        user_id: UserId,
        enrollment: &Enrollment,
        audit: &NewAuditEvent,
    ) -> Result<User>;
}

/// Challenges (start / follow / answer).
#[async_trait]
pub trait ChallengeRepo: Send + Sync {
    /// Stores a new `pending` challenge with no attempts, and `audit`, in one
    /// transaction. `NotFound("user")` when the user does not exist,
    /// `Conflict` when the id is taken.
    async fn create_challenge(
        &self,
        challenge: &crate::challenge::NewChallenge,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// The challenge with its user's name, in whatever state it is stored.
    async fn challenge(&self, id: &str) -> Result<Option<crate::challenge::Challenge>>;
    /// Compare-and-set of a challenge's state: only a challenge still in
    /// `from` (which must be `pending`) moves, to a final `to` — `accepted`
    /// or `rejected` only while `now` is before `expires_at`, `expired` only
    /// from `expires_at` on. `completed_at` becomes `now`, `reason` is
    /// stored, and `audit` is written in the same transaction, only when
    /// this caller won. Returns whether it did.
    async fn finish_challenge(
        &self,
        id: &str,
        from: crate::challenge::ChallengeState,
        to: crate::challenge::ChallengeState,
        reason: Option<&str>,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool>;
    /// Counts one wrong answer of a pending challenge and returns the new
    /// count (atomic: racing answers get distinct numbers); 0 when there is
    /// no pending challenge with that id.
    async fn count_attempt(&self, id: &str) -> Result<u32>;
    /// Pending challenges to `destination` (E.164) not expired at `now`,
    /// newest first (at most 10): where an inbound SMS reply belongs.
    async fn pending_challenges_to(
        &self,
        destination: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::challenge::Challenge>>;
    /// Calls and text messages since `since`: (to this user, to this number)
    /// — challenges with a destination, whatever became of them.
    async fn deliveries_since(
        &self,
        user_id: UserId,
        destination: &str,
        since: OffsetDateTime,
    ) -> Result<(u64, u64)>;
    /// Removes challenges that expired before `before`; returns how many.
    async fn purge_challenges(&self, before: OffsetDateTime) -> Result<u64>;
    /// Challenges still `pending` whose `expires_at` is not after `now`,
    /// soonest expired first (at most `limit`): what the sweep expires.
    async fn overdue_challenges(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<crate::challenge::Challenge>>;
    /// The user's pending mobile-app challenges (method `mobile_app`, sign-in
    /// or enrollment) not expired at `now`, oldest first (at most 10): what
    /// their devices are asked.
    async fn pending_mobile_challenges(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::challenge::Challenge>>;
}

/// The mobile app's devices, activation codes and the nonces of signed
/// device requests.
#[async_trait]
pub trait DeviceRepo: Send + Sync {
    /// Stores an activation code's hash for `user_id` (and `audit`), one
    /// transaction. Earlier unused codes of the user stay valid until they
    /// expire. `NotFound("user")` without the user.
    async fn create_activation_code(
        &self,
        user_id: UserId,
        code_hash: &str,
        expires_at: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// The code with this hash, used or not, expired or not.
    async fn activation_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<crate::mobile::ActivationCodeRecord>>;
    /// In one transaction: uses the code (compare-and-set: still unused and
    /// not expired at `now`, else `NotFound("activation code")`), refuses
    /// with `Conflict(DeviceLimit)` when its user already has `max_devices`
    /// devices, adds `token` to the user's OATH tokens and the device
    /// linked to it, and writes `audit`.
    async fn activate_device(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        device: &crate::mobile::NewMobileDevice,
        token: &NewOathToken,
        max_devices: u32,
        audit: &NewAuditEvent,
    ) -> Result<crate::mobile::MobileDevice>;
    /// The user's devices, oldest first.
    async fn mobile_devices(&self, user_id: UserId) -> Result<Vec<crate::mobile::MobileDevice>>;
    async fn mobile_device(&self, id: &str) -> Result<Option<crate::mobile::MobileDevice>>;
    /// Removes the user's device and its OATH token (one transaction, with
    /// `audit`); false when the user has no such device.
    async fn remove_mobile_device(
        &self,
        user_id: UserId,
        device_id: &str,
        audit: &NewAuditEvent,
    ) -> Result<bool>;
    /// Records a signed request of the device: remembers `nonce` (false,
    /// and nothing changed, when the device used it before — on any node),
    /// sets `last_used_at` to `now`, and forgets nonces older than
    /// `forget_before` (older timestamps are refused anyway).
    async fn device_request_seen(
        &self,
        device_id: &str,
        nonce: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<bool>;
}

/// Wake-ups between nodes: a decided challenge, a new request for a user's
/// devices. A topic published on one node reaches the subscribers of every
/// node sharing the database (PostgreSQL: LISTEN/NOTIFY; SQLite: one node,
/// in process). Delivery is best effort: waiters still re-read the store
/// (rarely) and wake at their deadlines, so a lost wake-up costs latency,
/// never a decision.
#[async_trait]
pub trait Wakeups: Send + Sync {
    async fn publish(&self, topic: &str) -> Result<()>;
    /// Every topic published from now on, on any node.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String>;
    /// The caches' generation counters, one small read: each change of
    /// what a cache holds bumps its counter in the changing transaction,
    /// so a node that missed the change's topic (a listener reconnecting,
    /// another process on one SQLite file) still finds its copy stale.
    async fn cache_generations(&self) -> Result<CacheGenerations>;
}

/// The topic the store publishes — on PostgreSQL from inside the changing
/// transaction, so it arrives exactly when the change commits — whenever
/// a setting changes: every node drops its cached settings.
pub const SETTINGS_CHANGED: &str = "cache:settings";
/// The prefix of the topic published whenever a service account is
/// created, rotated, changed or deleted; the account's name key
/// (`validate::username_key`) follows it: every node drops that entry.
pub const SERVICE_ACCOUNT_CHANGED: &str = "cache:service_account:";

/// See `Wakeups::cache_generations`: a cached copy taken under one value is
/// stale once the counter differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheGenerations {
    pub settings: i64,
    pub service_accounts: i64,
}

/// The development outbox (`[delivery] provider = "outbox"`): calls and
/// text messages kept instead of sent.
#[async_trait]
pub trait OutboxRepo: Send + Sync {
    /// Keeps one message (and trims the outbox to its newest
    /// `OUTBOX_KEEP`); returns its id.
    async fn outbox_put(&self, message: &NewOutboxMessage) -> Result<i64>;
    /// The newest `limit` messages, newest first.
    async fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>>;
    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxMessage>>;
}

/// How many messages the development outbox keeps.
pub const OUTBOX_KEEP: i64 = 500;

/// `call` or `sms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    Call,
    Sms,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Call => "call",
            OutboxKind::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    pub at: OffsetDateTime,
    pub kind: OutboxKind,
    pub destination: String,
    /// The text message, or the call's voice language.
    pub body: String,
    pub challenge_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    pub at: OffsetDateTime,
    pub kind: OutboxKind,
    pub destination: String,
    pub body: String,
    pub challenge_id: Option<String>,
}

/// Portal sessions.
#[async_trait]
pub trait SessionRepo: Send + Sync {
    async fn session_put(&self, session: &SessionRecord) -> Result<()>;
    /// The session if it exists and has not expired at `now`.
    async fn session_get(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>>;
    async fn session_delete(&self, id_hash: &str) -> Result<()>;
    /// Removes expired sessions; returns how many.
    async fn session_purge(&self, now: OffsetDateTime) -> Result<u64>;
}

/// Passed sessions (forward-auth), by the hash of their token. A user's
/// sessions go with the user (deleted in the same transaction).
#[async_trait]
pub trait PassedSessionRepo: Send + Sync {
    /// Stores a new session of `user` (`NotFound` when the user is gone).
    async fn passed_put(
        &self,
        session: &crate::passed::PassedSession,
        user: UserId,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    /// The session if it exists and has not expired at `now`.
    async fn passed_get(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<crate::passed::PassedSession>>;
    /// Records a use: the session's new last use and expiry.
    async fn passed_touch(
        &self,
        id_hash: &str,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// Ends one session; false when there was none (nothing recorded).
    async fn passed_delete(&self, id_hash: &str, audit: &NewAuditEvent) -> Result<bool>;
    /// Removes expired sessions; returns how many.
    async fn passed_purge(&self, now: OffsetDateTime) -> Result<u64>;
}

/// Synchronisation with the directory: its items, the users each added,
/// the one-node lease and what is kept between runs.
#[async_trait]
pub trait SyncRepo: Send + Sync {
    /// Conflict (`Exists`) when the name (any case) is taken.
    async fn create_sync_item(
        &self,
        item: &crate::sync::NewSyncItem,
        audit: &NewAuditEvent,
    ) -> Result<crate::sync::SyncItem>;
    /// In the order they were created.
    async fn sync_items(&self) -> Result<Vec<crate::sync::SyncItem>>;
    /// Returns false when there is no such item (any case). The users it
    /// added stay, no longer marked as its.
    async fn delete_sync_item(&self, name: &str, audit: &NewAuditEvent) -> Result<bool>;
    /// The users `item_id` added (or adopted), in username order.
    async fn synced_users(&self, item_id: i64) -> Result<Vec<User>>;
    /// Marks a user as added by `item_id` (`None`: by no item).
    async fn set_synced_by(&self, user_id: UserId, item_id: Option<i64>) -> Result<()>;
    /// Takes the cluster's sync lease for `holder` until `until` when it is
    /// free, expired at `now`, or already `holder`'s; false when another
    /// node holds it (a compare-and-set, so one node wins).
    async fn acquire_sync_lease(
        &self,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_sync_lease(&self, holder: &str) -> Result<()>;
    async fn sync_state(&self) -> Result<crate::sync::SyncState>;
    /// Replaces the state, with `audit` in the same transaction.
    async fn set_sync_state(
        &self,
        state: &crate::sync::SyncState,
        audit: Option<&NewAuditEvent>,
    ) -> Result<()>;
}

/// Service accounts (SDK).
#[async_trait]
pub trait ServiceAccountRepo: Send + Sync {
    /// Conflict when the name (any case) exists.
    async fn create_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        spec: &crate::service::admin::ServiceAccountSpec,
        audit: &NewAuditEvent,
    ) -> Result<ServiceAccount>;
    /// The account and its secret hash, by name (any case).
    async fn service_account(&self, name: &str) -> Result<Option<(ServiceAccount, String)>>;
    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>>;
    /// Returns false when there is no such account.
    async fn rotate_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        audit: &NewAuditEvent,
    ) -> Result<bool>;
    async fn delete_service_account(&self, name: &str, audit: &NewAuditEvent) -> Result<bool>;
    /// Records that the account `id` authenticated at `at`, but only when
    /// its last use is unknown or before `stale_before`; true when written.
    /// The condition lives in the statement so nodes racing on the same
    /// account write once. Not audited: it is bookkeeping of successful
    /// calls, not a change anyone made.
    async fn record_service_account_use(
        &self,
        id: i64,
        at: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<bool>;
}

/// Where users and their passwords come from: the setting
/// `portal.primary_auth`. `local` is `crate::directory::LocalDirectory`; the
/// LDAP/Active Directory and RADIUS adapters live in the crate
/// `twofold-directory`. The engine asks the one the setting names for every
/// primary check: portal sign-in, the SDK's `primary` and `authenticate`,
/// and the SDK administrators' group.
///
/// A directory that cannot be reached (down, slow past its timeout) answers
/// `Error::Unavailable`: the engine shows a clear sign-in error and does not
/// count it as the user's failed attempt.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    fn kind(&self) -> crate::settings::PrimaryAuth;

    /// The username a sign-in name stands for: Active Directory maps
    /// `DOMAIN\user`, `user@upn` and `user` to the entry's
    /// `sAMAccountName`; OpenLDAP's `uid` is itself. `None` when the
    /// directory has no such person. Local and RADIUS: the name as typed
    /// (trimmed), as they have nothing to search.
    async fn resolve(&self, login: &str) -> Result<Option<String>>;

    /// Whether `password` is the password of `username` (as `resolve`
    /// returned it). `local` is the user's local record when one exists.
    /// Must take about the same time whether or not the user exists (no
    /// enumeration by timing).
    async fn check_password(
        &self,
        username: &str,
        local: Option<&User>,
        password: String,
    ) -> Result<PasswordCheck>;

    /// A person as the directory knows them.
    async fn lookup(&self, username: &str) -> Result<Option<DirectoryEntry>>;

    /// Everyone the directory's person filter selects, narrowed by `filter`
    /// (an LDAP filter) and/or `group` (members only): import and
    /// synchronisation. Directories that cannot list people (RADIUS) refuse
    /// with `InvalidInput`.
    async fn search(
        &self,
        filter: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<DirectoryEntry>>;

    /// Whether the directory answers now (`/readyz` reports it).
    async fn probe(&self) -> Result<()>;
}

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    Rejected,
    /// The password is right. `groups` is the person's group membership as
    /// the directory knows it now (LDAP), for the engine to bring the local
    /// record up to date; `None` where the local record is the source
    /// (local, RADIUS).
    Accepted {
        groups: Option<Vec<String>>,
    },
}

impl PasswordCheck {
    pub fn accepted(&self) -> bool {
        matches!(self, PasswordCheck::Accepted { .. })
    }
}

/// A person as a directory describes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryEntry {
    /// `sAMAccountName` (Active Directory) or `uid` (OpenLDAP).
    pub username: String,
    /// `displayName`, else `cn`.
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Group names: the `cn` of each group DN (`memberOf`), as
    /// administrator scopes and `sdk.admin_group` name them.
    pub groups: Vec<String>,
    /// `preferredLanguage` (a BCP 47 tag such as `nl` or `de-AT`).
    pub language: Option<String>,
    /// `telephoneNumber` as the directory holds it: an `x` may mark an
    /// extension (`+31 20 555 0101x204`); the import mapping splits it.
    pub phone: Option<String>,
    /// `mobile`.
    pub mobile_phone: Option<String>,
    /// Where the entry lives (its DN), for messages; empty for local users.
    pub dn: String,
}

/// How Twofold reaches a person outside the browser: a voice call, a text
/// message, a mail, or a wake-up for the mobile app. Adapters (a
/// Twilio-compatible provider, an HTTP SMS gateway, SMTP, push) live in the
/// crate `delivery`, added with the phone/SMS issue; a method module asks
/// for a delivery, and the provider's answer (keys pressed, an SMS reply)
/// comes back through its webhook to the challenge.
#[async_trait]
pub trait Delivery: Send + Sync + 'static {
    /// Hands one message to the provider; returns the provider's id for it.
    async fn send(&self, message: &Outgoing) -> Result<String>;

    /// The provider's name in the audit log (`provider:twilio`).
    fn name(&self) -> &'static str;

    /// Whether a callback to `url` (as the provider requested it) with
    /// these form fields carries the provider's `signature`. Adapters that
    /// take no callbacks (mail) refuse them all.
    fn verify_callback(&self, _url: &str, _fields: &[(String, String)], _signature: &str) -> bool {
        false
    }
}

/// How to hand a text message to a generic HTTP SMS gateway: the
/// `sms_gateway.*` settings at the time of sending.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayRequest {
    pub url: String,
    /// `POST` or `PUT`.
    pub method: String,
    /// The body is JSON (else form fields).
    pub json: bool,
    /// The body with `{to}` and `{text}`, filled in escaped for its format.
    pub template: String,
    /// The `Authorization` header, when set (a secret).
    pub authorization: Option<String>,
    /// The status that means sent; 0: any 2xx.
    pub success_status: u16,
}

impl std::fmt::Debug for GatewayRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRequest")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("json", &self.json)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "(set)"),
            )
            .field("success_status", &self.success_status)
            .finish_non_exhaustive()
    }
}

/// One message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Call `to` (E.164), dial `extension` after connecting, and let the
    /// challenge's webhook say the text and gather the keys.
    VoiceCall {
        to: String,
        extension: Option<String>,
        language: String,
        challenge_id: String,
        /// The server's public URL, under which the provider reaches the
        /// challenge's webhooks (`{hooks_base}/hooks/...`).
        hooks_base: String,
    },
    Sms {
        to: String,
        text: String,
    },
    /// A text message through the generic HTTP SMS gateway the settings
    /// describe (`sms_gateway.*`).
    GatewaySms {
        gateway: GatewayRequest,
        to: String,
        text: String,
    },
    Mail {
        to: String,
        subject: String,
        body: String,
    },
    /// Wakes an activated device so it fetches its pending requests (the
    /// wake-up carries nothing else).
    PushWake {
        device_id: String,
        target: crate::mobile::PushTarget,
    },
}

/// The token inventory: hardware tokens imported from their vendor's seed
/// file, not yet anyone's, found by serial number (any case).
#[async_trait]
pub trait TokenInventoryRepo: Send + Sync {
    /// Adds the tokens whose serial is not in the inventory yet, all in one
    /// transaction with `audit`; a serial already there is left as it is.
    /// Returns the serials that were already there, in the order given.
    async fn import_inventory(
        &self,
        tokens: &[crate::token_import::NewInventoryToken],
        audit: &NewAuditEvent,
    ) -> Result<Vec<String>>;
    /// Tokens whose serial starts with `prefix` (any case), by serial.
    async fn inventory(
        &self,
        prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::token_import::InventoryToken>>;
    async fn inventory_token(
        &self,
        serial: &str,
    ) -> Result<Option<crate::token_import::InventoryToken>>;
    /// Gives the inventory token `serial` to a user, in one transaction:
    /// removes it from the inventory — only while it still holds
    /// `sealed_from`, the seed the caller re-sealed as `token` — adds it
    /// to the user's tokens, and, only when the user has no method yet,
    /// makes `method` theirs. `NotFound` when the token is no longer in the
    /// inventory (or was replaced meanwhile) or the user is gone. Returns
    /// the token and whether the method was set.
    async fn assign_inventory_token(
        &self,
        serial: &str,
        sealed_from: &str,
        user_id: UserId,
        token: &NewOathToken,
        method: crate::user::DefaultMethod,
        audit: &NewAuditEvent,
    ) -> Result<(OathToken, bool)>;
    /// Returns false when no such token was in the inventory.
    async fn delete_inventory_token(&self, serial: &str, audit: &NewAuditEvent) -> Result<bool>;
}

/// The reports (`crate::reports`): counts and lists read from the audit log
/// and the users, read-only and bounded. Times of the audit log are
/// compared in its own unit (milliseconds); buckets are UTC days or hours.
#[async_trait]
pub trait ReportRepo: Send + Sync {
    /// Sign-in decisions (`reports::SIGN_IN_EVENTS`) of `period`, counted
    /// per bucket, event, method and result in one aggregate query; sorted
    /// by bucket, event, method, result; at most
    /// `reports::MAX_ACTIVITY_ROWS`.
    async fn activity(
        &self,
        period: &crate::reports::ReportPeriod,
    ) -> Result<Vec<crate::reports::ActivityRow>>;
    /// One row per one-time bypass granted or used in `period`
    /// (`reports::BYPASS_RESULTS`), newest first.
    async fn bypassed_users(
        &self,
        period: &crate::reports::ReportPeriod,
        query: &crate::reports::UserReportQuery,
    ) -> Result<Vec<crate::reports::UserReportRow>>;
    /// One row per fraud report in `period` (`FAILED_FRAUD_REPORTED`, not
    /// the block that may follow it), newest first.
    async fn fraud_reports(
        &self,
        period: &crate::reports::ReportPeriod,
        query: &crate::reports::UserReportQuery,
    ) -> Result<Vec<crate::reports::UserReportRow>>;
    /// Users locked at `now` or blocked after a fraud report, by username.
    async fn blocked_users(
        &self,
        now: OffsetDateTime,
        query: &crate::reports::UserReportQuery,
    ) -> Result<Vec<crate::reports::UserReportRow>>;
    /// Users not enrolled (`reports::enrollment_gap`), by username.
    async fn unenrolled_users(
        &self,
        query: &crate::reports::UserReportQuery,
    ) -> Result<Vec<crate::reports::UserReportRow>>;
}

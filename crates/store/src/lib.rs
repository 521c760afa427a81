//! Twofold's `Store` on sqlx's `Any` driver: one set of queries serves SQLite
//! (the default, a single file) and PostgreSQL.
//!
//! Portability rules the queries and the two migration folders follow:
//! integers (and booleans, as 0/1) are 64-bit, text is TEXT, placeholders are
//! `$N`, inserts use `RETURNING id`, upserts use `ON CONFLICT … DO UPDATE`.
//! User, settings and factor (0002) timestamps are unix seconds; audit
//! timestamps are unix milliseconds. Times written by the store come from the
//! audit event it is given (`NewAuditEvent::at`) or from the `now` a call
//! takes, so the engine's `Clock` is the only clock.
//!
//! Layout: `store.rs` is `SqlStore` itself (connecting, the pool, migrations,
//! write transactions); `write.rs` is the shape every audited change takes;
//! `group_commit.rs` commits the hot writes of concurrent requests together,
//! `direct.rs` runs SQLite's hot reads without sqlx's worker threads,
//! `held.rs` PostgreSQL's on connections kept out of the pool (and
//! `view_reads.rs` reads concurrent sign-ins' views together),
//! and `checkpoint.rs` keeps SQLite's write-ahead log short in the background;
//! each repository of `twofold_core::ports::Store` is implemented in its own
//! file — `users.rs`, `admins.rs`, `settings.rs`, `audit.rs`, the factors
//! (`tokens.rs`, `pins.rs`, `questions.rs`, `bypass.rs`, `lockout.rs`,
//! `enrollment.rs`, with what they share in `factors.rs`), `challenges.rs`,
//! `passcode_view.rs` (a passcode check's reads in one), `devices.rs` (the mobile app), `sessions.rs`, `passed.rs` (forward-auth),
//! `inventory.rs` (hardware tokens not yet assigned),
//! `reports.rs` (the reports' counts and lists, read-only),
//! `accounts.rs` and `sync.rs` (directory synchronisation);
//! `wakeups.rs` carries wake-ups between nodes. `rows.rs` and `errors.rs`
//! are shared.

mod accounts;
mod admins;
mod audit;
mod bypass;
mod challenges;
mod checkpoint;
mod conn;
mod devices;
mod direct;
mod enrollment;
mod errors;
mod factors;
mod fast_accept;
mod group_commit;
mod held;
mod inventory;
mod lockout;
mod outbox;
mod passcode_view;
mod passed;
mod pins;
mod questions;
mod reports;
mod rows;
mod seed;
mod sessions;
mod settings;
mod store;
mod sync;
#[cfg(test)]
mod test_support;
mod tokens;
mod users;
mod view_reads;
mod wakeups;
mod write;

pub use lockout::LOCKED_UNTIL_UNBLOCKED;
pub use store::SqlStore;

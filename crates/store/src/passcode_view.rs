//! `Store::passcode_view`: the reads of a passcode check — the user with
//! their groups, the code factor's guessing record, the OATH tokens — in one
//! statement on PostgreSQL (and those of concurrent sign-ins in one
//! statement together, `view_reads.rs`), where each statement is a round trip and, on a
//! busy node, a wait for the database's process to be scheduled. SQLite's
//! three point reads on the direct readers cost less than one join's
//! planning would, and stay three.

use std::sync::LazyLock;

use sqlx::any::AnyRow;
use twofold_core::factors::{Factor, FailureState, OathToken};
use twofold_core::ports::{LockoutRepo, OathTokenRepo, PasscodeView, UserRepo};
use twofold_core::validate::{self, username_key};
use twofold_core::Result;

use crate::lockout::{state, COLUMNS as FAILURE_COLUMNS};
use crate::rows::{cell, prefixed_columns, Cells, Prefixed};
use crate::tokens::{token_from_row, TOKEN_COLUMNS};
use crate::users::{group_key, legacy_username_key, user_from_row, USER_COLUMNS};
use crate::SqlStore;

/// One row per group × token (at least one while the user exists); the
/// failure record's columns repeat on each. `$1` the username key, `$2`
/// the code factor's name. Not ordered: a sort in the plan costs more than
/// putting a few groups and tokens in order here.
pub(crate) static VIEW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {columns} \
         FROM (SELECT {USER_COLUMNS} FROM users WHERE username_key = $1) u \
         LEFT JOIN user_groups g ON g.user_id = u.id \
         LEFT JOIN secret_failures f ON f.user_id = u.id AND f.factor = $2 \
         LEFT JOIN oath_tokens t ON t.user_id = u.id",
        columns = view_columns()
    )
});

/// What a view's rows hold, from the user `u`, their groups `g`, the code
/// factor's record `f` and the tokens `t` (whose columns are `t_…`).
pub(crate) fn view_columns() -> String {
    let failures = prefixed_columns("f", FAILURE_COLUMNS, "");
    let tokens = prefixed_columns("t", TOKEN_COLUMNS, "t_");
    format!("u.*, g.group_name, f.user_id AS f_user_id, {failures}, {tokens}")
}

impl SqlStore {
    pub(crate) async fn read_passcode_view(&self, username: &str) -> Result<Option<PasscodeView>> {
        let Some(reads) = &self.view_reads else {
            let Some(user) = self.find_user(username).await? else {
                return Ok(None);
            };
            let code_failures = self.failures(user.id, Factor::Code).await?;
            let tokens = self.oath_tokens(user.id).await?;
            return Ok(Some(PasscodeView {
                user,
                code_failures,
                tokens,
            }));
        };
        // As `find_user`: refused input answers alike on both databases,
        // and a name stored under the old key is still found.
        validate::identifier("username", username)?;
        let key = username_key(username);
        let legacy = legacy_username_key(username);
        let mut rows = reads.read(key.clone()).await?;
        if rows.is_empty() && legacy != key {
            rows = reads.read(legacy).await?;
        }
        view_from_rows(&rows)
    }
}

fn view_from_rows(rows: &[AnyRow]) -> Result<Option<PasscodeView>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut user = user_from_row(first)?;
    let code_failures = match first.int("f_user_id")? {
        Some(_) => state(first)?,
        None => FailureState::default(),
    };
    let mut tokens: Vec<OathToken> = Vec::new();
    for row in rows {
        if let Some(group) = cell::<Option<String>>(row, "group_name")? {
            if !user.groups.contains(&group) {
                user.groups.push(group);
            }
        }
        if let Some(id) = row.int("t_id")? {
            if !tokens.iter().any(|t| t.id == id) {
                tokens.push(token_from_row(&Prefixed(row, "t_"))?);
            }
        }
    }
    tokens.sort_by_key(|t| t.id);
    // As `find_user` lists them: by the group's key.
    user.groups.sort_by_cached_key(|g| group_key(g));
    Ok(Some(PasscodeView {
        user,
        code_failures,
        tokens,
    }))
}

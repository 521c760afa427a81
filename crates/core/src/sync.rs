//! Synchronisation with the directory: sync items say which people of the
//! LDAP directory are Twofold users; a run (on a schedule, or `twofold sync
//! now`) adds the new ones, updates changed attributes, and disables or
//! deletes users an item added who are gone from the directory — but stops
//! before changing anything when more would be removed than the threshold
//! allows, until an administrator approves (`twofold sync approve`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::user::DefaultMethod;

/// What happens to a user an item added once they are gone from the
/// directory (no longer found by the item's filter or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneAction {
    Disable,
    Delete,
}

impl GoneAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GoneAction::Disable => "disable",
            GoneAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Result<GoneAction> {
        match s.trim() {
            "disable" => Ok(GoneAction::Disable),
            "delete" => Ok(GoneAction::Delete),
            other => Err(Error::invalid(
                "gone",
                format!("{other:?} is not disable or delete"),
            )),
        }
    }
}

/// A sync item as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncItem {
    pub id: i64,
    /// Unique (any case), 1-64 of letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// An LDAP filter ANDed with the preset's person filter.
    pub filter: Option<String>,
    /// Members of this group only (its name or DN).
    pub group: Option<String>,
    /// The method new users get.
    pub default_method: Option<DefaultMethod>,
    /// The language new users get when the directory has none.
    pub default_language: Option<String>,
    pub gone: GoneAction,
}

/// A sync item to create (checked by the engine).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewSyncItem {
    pub name: String,
    pub filter: Option<String>,
    pub group: Option<String>,
    pub default_method: Option<DefaultMethod>,
    pub default_language: Option<String>,
    pub gone: Option<GoneAction>,
}

/// What the database keeps between runs (one row for the whole cluster).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncState {
    pub last_run_at: Option<OffsetDateTime>,
    /// The last run's report (JSON), for `twofold sync status`.
    pub last_report: Option<String>,
    /// A run held back for approval: its report (JSON) — what would have
    /// been disabled or deleted.
    pub held: Option<String>,
    /// An administrator approved the held run: the next run may remove
    /// more than the threshold, once.
    pub approved: bool,
}

/// What one sync item found and did (or, held or dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReport {
    pub item: String,
    /// People the directory has for the item.
    pub found: usize,
    pub import: crate::import::ImportReport,
    /// Users the item added who are gone from the directory.
    pub gone: Vec<String>,
    /// `disable` or `delete`.
    pub gone_action: String,
}

/// A synchronisation run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub dry_run: bool,
    /// More users would be disabled or deleted than `sync.threshold`
    /// allows: nothing was changed; `twofold sync approve` lets it go on.
    pub held: bool,
    pub items: Vec<ItemReport>,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub disabled: usize,
    pub deleted: usize,
}

impl SyncReport {
    /// Every user the run would disable or delete.
    pub fn removals(&self) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .flat_map(|i| i.gone.iter().map(String::as_str))
    }
}

//! Synchronisation with the LDAP directory. A run reads everything first
//! (each item's people, the users each item added), plans, and only then
//! writes — so a directory that fails half-way, or a plan that would remove
//! more users than `sync.threshold` allows, changes nothing. Changes go
//! through the import path (one transaction per user) and the
//! administrator's disable/delete, all audited as `system:sync`. One node
//! at a time: a lease in the database.

use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::audit::ResultCode;
use crate::error::{ConflictReason, Error, Result};
use crate::import::{from_directory, ImportReport, RowOutcome};
use crate::ports::{Directory, DirectoryEntry};
use crate::principal::Need;
use crate::service::{AdminService, Ctx, SyncService};
use crate::settings::PrimaryAuth;
use crate::sync::{GoneAction, ItemReport, NewSyncItem, SyncItem, SyncReport, SyncState};
use crate::user::{Permission, User};
use crate::validate;

use super::Engine;

/// How long a run may hold the lease; a node that dies mid-run frees it
/// after this.
const LEASE: time::Duration = time::Duration::minutes(30);

const fn manage() -> Need {
    Need::Permission(Permission::ManageSettings)
}

/// One item's reading of the directory and of its users.
struct Reading {
    item: SyncItem,
    people: Vec<DirectoryEntry>,
    mine: Vec<User>,
}

impl Engine {
    fn ldap(&self) -> Result<Arc<dyn Directory>> {
        self.directories
            .get(PrimaryAuth::Ldap)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(
                    "directory",
                    "this node has no [ldap] configuration (ldap.url, TWOFOLD_LDAP_URL)",
                )
            })
    }

    /// A scheduled run when `sync.enabled` is on and the interval has
    /// passed since the last run, on the node that gets the lease.
    /// Returns the report when it ran.
    pub async fn sync_when_due(&self, holder: &str) -> Result<Option<SyncReport>> {
        let settings = self.settings_now().await?;
        if !settings.sync.enabled || !self.has_directory(PrimaryAuth::Ldap) {
            return Ok(None);
        }
        let state = self.store.sync_state().await?;
        let now = self.clock.now();
        let interval = time::Duration::minutes(i64::from(settings.sync.interval_minutes));
        if state.last_run_at.is_some_and(|at| at + interval > now) {
            return Ok(None);
        }
        if !self
            .store
            .acquire_sync_lease(holder, now, now + LEASE)
            .await?
        {
            return Ok(None);
        }
        let ran = self.sync_run(false).await;
        self.store.release_sync_lease(holder).await?;
        ran.map(Some)
    }

    async fn with_lease(&self, holder: &str, dry_run: bool) -> Result<SyncReport> {
        let now = self.clock.now();
        if !self
            .store
            .acquire_sync_lease(holder, now, now + LEASE)
            .await?
        {
            return Err(Error::conflict(
                ConflictReason::Concurrent,
                "a synchronisation is running on another node; try again when it is done",
            ));
        }
        let ran = self.sync_run(dry_run).await;
        self.store.release_sync_lease(holder).await?;
        ran
    }

    async fn read_directory(&self) -> Result<Vec<Reading>> {
        let items = self.store.sync_items().await?;
        if items.is_empty() {
            return Err(Error::invalid(
                "sync",
                "there are no sync items: add one with `twofold sync add NAME --group GROUP`",
            ));
        }
        let ldap = self.ldap()?;
        let mut readings = Vec::new();
        for item in items {
            let people = ldap
                .search(item.filter.as_deref(), item.group.as_deref())
                .await?;
            let mine = self.store.synced_users(item.id).await?;
            readings.push(Reading { item, people, mine });
        }
        Ok(readings)
    }

    /// One run: read, plan, hold or apply, record.
    async fn sync_run(&self, dry_run: bool) -> Result<SyncReport> {
        let ctx = Ctx::system_job("sync");
        let readings = self.read_directory().await?;
        let settings = self.settings_now().await?;
        let state = self.store.sync_state().await?;

        // Everyone the directory still has, under any item: nobody found by
        // one item is removed for being gone from another.
        let present: HashSet<String> = readings
            .iter()
            .flat_map(|r| r.people.iter().map(|p| p.username.to_lowercase()))
            .collect();
        // Users already some item's: not adopted by another.
        let owned: HashSet<String> = readings
            .iter()
            .flat_map(|r| r.mine.iter().map(|u| u.username.to_lowercase()))
            .collect();

        let mut report = SyncReport {
            dry_run,
            ..SyncReport::default()
        };
        for r in &readings {
            let gone: Vec<String> = r
                .mine
                .iter()
                .filter(|u| !present.contains(&u.username.to_lowercase()))
                .filter(|u| r.item.gone == GoneAction::Delete || u.enabled)
                .map(|u| u.username.clone())
                .collect();
            report.items.push(ItemReport {
                item: r.item.name.clone(),
                found: r.people.len(),
                import: ImportReport::default(),
                gone,
                gone_action: r.item.gone.as_str().into(),
            });
        }

        // Removals beyond the threshold wait for an administrator — except
        // those an approval of the held run named.
        let approved: HashSet<String> = if state.approved {
            state
                .held
                .as_deref()
                .and_then(|h| serde_json::from_str::<SyncReport>(h).ok())
                .map(|held| held.removals().map(str::to_lowercase).collect())
                .unwrap_or_default()
        } else {
            HashSet::new()
        };
        let unapproved = report
            .removals()
            .filter(|u| !approved.contains(&u.to_lowercase()))
            .count();
        if unapproved > settings.sync.threshold as usize {
            report.held = true;
            if !dry_run {
                let json = serde_json::to_string(&report).unwrap_or_default();
                let mut ev = self.event(&ctx, "sync.held", None, ResultCode::FailedNotAllowed);
                ev.detail = Some(format!(
                    "{unapproved} users would be disabled or deleted, more than sync.threshold {}: nothing changed; approve with `twofold sync approve`",
                    settings.sync.threshold
                ));
                self.store
                    .set_sync_state(
                        &SyncState {
                            last_run_at: Some(self.clock.now()),
                            last_report: Some(json.clone()),
                            held: Some(json),
                            approved: false,
                        },
                        Some(&ev),
                    )
                    .await?;
            }
            return Ok(report);
        }

        let mut adopted: HashMap<String, i64> = HashMap::new();
        for (r, item_report) in readings.iter().zip(report.items.iter_mut()) {
            let mut import = ImportReport {
                dry_run,
                ..ImportReport::default()
            };
            for (i, entry) in r.people.iter().enumerate() {
                let mut row = from_directory(i + 1, entry);
                let existing = self.store.find_user(&row.username).await?;
                if let Some(u) = &existing {
                    let key = u.username.to_lowercase();
                    if !owned.contains(&key) && !adopted.contains_key(&key) {
                        adopted.insert(key, r.item.id);
                        if !dry_run {
                            self.store.set_synced_by(u.id, Some(r.item.id)).await?;
                        }
                    }
                } else {
                    // What a new user starts with; an existing user's own
                    // choices are never overwritten by the item's defaults.
                    row.method = r.item.default_method.map(|m| m.to_string());
                    if row.language.is_none() {
                        row.language.clone_from(&r.item.default_language);
                    }
                    row.sync_item = Some(r.item.id);
                }
                let (line, username) = (row.line, row.username.clone());
                let outcome = match self.import_row(&ctx, row, dry_run).await {
                    Ok(o) => o,
                    Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
                    Err(e) => RowOutcome::Refused {
                        message: crate::display::escape_control(&e.to_string()).into_owned(),
                    },
                };
                import.record(line, &crate::display::escape_control(&username), outcome);
            }
            report.added += import.added;
            report.updated += import.updated;
            report.unchanged += import.unchanged;
            report.refused += import.refused;
            item_report.import = import;
            for name in &item_report.gone {
                if dry_run {
                    continue;
                }
                let done = match r.item.gone {
                    GoneAction::Disable => {
                        self.set_user_enabled(&ctx, name, false).await.map(|_| ())
                    }
                    GoneAction::Delete => self.delete_user(&ctx, name).await,
                };
                match done {
                    Ok(()) if r.item.gone == GoneAction::Disable => report.disabled += 1,
                    Ok(()) => report.deleted += 1,
                    // Gone meanwhile: nothing to do.
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if dry_run {
            return Ok(report);
        }
        let mut ev = self.event(&ctx, "sync.run", None, ResultCode::Success);
        ev.detail = Some(format!(
            "added={} updated={} unchanged={} refused={} disabled={} deleted={}",
            report.added,
            report.updated,
            report.unchanged,
            report.refused,
            report.disabled,
            report.deleted
        ));
        self.store
            .set_sync_state(
                &SyncState {
                    last_run_at: Some(self.clock.now()),
                    last_report: Some(serde_json::to_string(&report).unwrap_or_default()),
                    held: None,
                    approved: false,
                },
                Some(&ev),
            )
            .await?;
        Ok(report)
    }
}

fn checked_item(mut item: NewSyncItem) -> Result<NewSyncItem> {
    let name = item.name.trim().to_string();
    if name.is_empty()
        || name.chars().count() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::invalid(
            "name",
            "must be 1 to 64 letters, digits and . _ -",
        ));
    }
    item.name = name;
    for (field, value) in [("filter", &mut item.filter), ("group", &mut item.group)] {
        if let Some(v) = value.as_deref().map(str::trim) {
            if v.is_empty() {
                *value = None;
            } else if v.len() > 1024 || v.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field,
                    "at most 1,024 characters, no control characters",
                ));
            } else {
                *value = Some(v.to_string());
            }
        }
    }
    if let Some(l) = item.default_language.take() {
        item.default_language = validate::language(&l)?;
    }
    Ok(item)
}

#[async_trait]
impl SyncService for Engine {
    async fn add_sync_item(&self, ctx: &Ctx, item: NewSyncItem) -> Result<SyncItem> {
        const EVENT: &str = "sync.item_add";
        self.require(ctx, EVENT, manage(), None).await?;
        let item = match checked_item(item) {
            Ok(i) => i,
            Err(e) => return self.refuse(ctx, EVENT, None, e).await,
        };
        // A filter the directory refuses is found now, not at 3 a.m.
        if let Some(ldap) = self.directories.get(PrimaryAuth::Ldap) {
            if let Err(e @ Error::InvalidInput { .. }) = ldap
                .search(item.filter.as_deref(), item.group.as_deref())
                .await
            {
                return self.refuse(ctx, EVENT, Some(&item.name), e).await;
            }
        }
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&item.name),
            ResultCode::SuccessSettingChanged,
        );
        ev.detail = Some(
            crate::display::escape_control(&format!(
                "filter={} group={} gone={}",
                item.filter.as_deref().unwrap_or("-"),
                item.group.as_deref().unwrap_or("-"),
                item.gone.unwrap_or(GoneAction::Disable).as_str()
            ))
            .into_owned(),
        );
        let name = item.name.clone();
        match self.store.create_sync_item(&item, &ev).await {
            Ok(i) => Ok(i),
            Err(e) => self.refuse(ctx, EVENT, Some(&name), e).await,
        }
    }

    async fn sync_items(&self, ctx: &Ctx) -> Result<Vec<SyncItem>> {
        self.require(ctx, "sync.items", manage(), None).await?;
        self.store.sync_items().await
    }

    async fn remove_sync_item(&self, ctx: &Ctx, name: &str) -> Result<()> {
        const EVENT: &str = "sync.item_remove";
        validate::identifier("name", name)?;
        self.require(ctx, EVENT, manage(), Some(name)).await?;
        let ev = self.event(ctx, EVENT, Some(name), ResultCode::SuccessSettingChanged);
        if self.store.delete_sync_item(name, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, Some(name), Error::NotFound("sync item"))
                .await
        }
    }

    async fn sync_status(&self, ctx: &Ctx) -> Result<SyncState> {
        self.require(ctx, "sync.status", manage(), None).await?;
        self.store.sync_state().await
    }

    async fn sync_now(&self, ctx: &Ctx, holder: &str, dry_run: bool) -> Result<SyncReport> {
        self.require(ctx, "sync.now", manage(), None).await?;
        self.with_lease(holder, dry_run).await
    }

    async fn approve_sync(&self, ctx: &Ctx, holder: &str) -> Result<SyncReport> {
        const EVENT: &str = "sync.approve";
        self.require(ctx, EVENT, manage(), None).await?;
        let mut state = self.store.sync_state().await?;
        if state.held.is_none() {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    None,
                    Error::invalid("sync", "no synchronisation is waiting for approval"),
                )
                .await;
        }
        state.approved = true;
        let ev = self.event(ctx, EVENT, None, ResultCode::Success);
        self.store.set_sync_state(&state, Some(&ev)).await?;
        self.with_lease(holder, false).await
    }
}

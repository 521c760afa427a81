//! Import: rows from a CSV file or the directory become users. Each row is
//! compared with the user of its name; a new user is written in one
//! transaction with everything the row holds, a changed one through the
//! same path as an administrator's edit (its permissions, scope, audit and
//! version check). A refused row is reported with its line and changes
//! nothing.

use async_trait::async_trait;

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::import::{from_directory, ImportBatch, ImportReport, ImportRow, RowOutcome};
use crate::principal::Need;
use crate::service::import::Progress;
use crate::service::{AdminService, Ctx, ImportService};
use crate::settings::PrimaryAuth;
use crate::user::{DefaultMethod, NewUser, Permission, User, UserPatch};
use crate::validate;

use super::Engine;

const EVENT: &str = "user.import";

/// A row's fields, checked and in stored form; `None` where the row says
/// nothing (an empty cell).
struct Checked {
    display_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    extension: Option<String>,
    mobile: Option<String>,
    language: Option<String>,
    method: Option<DefaultMethod>,
    groups: Option<Vec<String>>,
}

fn check(row: &ImportRow, country: &str) -> Result<Checked> {
    let country = Some(country);
    Ok(Checked {
        display_name: row
            .display_name
            .as_deref()
            .map(validate::display_name)
            .transpose()?
            .flatten(),
        email: row
            .email
            .as_deref()
            .map(validate::email)
            .transpose()?
            .flatten(),
        phone: row
            .phone
            .as_deref()
            .map(|p| validate::phone("phone", p, country))
            .transpose()?
            .flatten(),
        extension: row
            .extension
            .as_deref()
            .map(validate::extension)
            .transpose()?
            .flatten(),
        mobile: row
            .mobile
            .as_deref()
            .map(|p| validate::phone("mobile", p, country))
            .transpose()?
            .flatten(),
        language: row
            .language
            .as_deref()
            .map(validate::language)
            .transpose()?
            .flatten(),
        method: row
            .method
            .as_deref()
            .map(str::parse::<DefaultMethod>)
            .transpose()?,
        groups: row.groups.as_deref().map(validate::groups).transpose()?,
    })
}

fn same_groups(a: &[String], b: &[String]) -> bool {
    let norm = |g: &[String]| {
        let mut v: Vec<String> = g.iter().map(|x| x.to_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// The change a checked row makes to `user`, field by field, in the
/// patch's words; empty when the row says what the user already has.
fn patch_for(user: &User, c: &Checked) -> (UserPatch, Vec<String>) {
    let mut patch = UserPatch::default();
    let mut fields = Vec::new();
    if let Some(v) = &c.display_name {
        if user.display_name.as_ref() != Some(v) {
            patch.display_name = Some(v.clone());
            fields.push("display_name".to_string());
        }
    }
    if let Some(v) = &c.email {
        if user.email.as_ref() != Some(v) {
            patch.email = Some(v.clone());
            fields.push("email".to_string());
        }
    }
    if let Some(v) = &c.phone {
        if user.phone.as_ref() != Some(v) {
            patch.phone = Some(v.clone());
            fields.push("phone".to_string());
        }
    }
    if let Some(v) = &c.extension {
        if user.phone_extension.as_ref() != Some(v) {
            patch.phone_extension = Some(v.clone());
            fields.push("extension".to_string());
        }
    }
    if let Some(v) = &c.mobile {
        if user.mobile_phone.as_ref() != Some(v) {
            patch.mobile_phone = Some(v.clone());
            fields.push("mobile".to_string());
        }
    }
    if let Some(v) = &c.language {
        if user.language.as_ref() != Some(v) {
            patch.language = Some(v.clone());
            fields.push("language".to_string());
        }
    }
    if let Some(m) = c.method {
        if Some(m) != user.default_method {
            patch.default_method = Some(m.to_string());
            fields.push("method".to_string());
        }
    }
    if let Some(g) = &c.groups {
        if !same_groups(g, &user.groups) {
            patch.groups = Some(g.clone());
            fields.push("groups".to_string());
        }
    }
    (patch, fields)
}

impl Engine {
    pub(super) async fn import_row(
        &self,
        ctx: &Ctx,
        row: ImportRow,
        dry_run: bool,
    ) -> Result<RowOutcome> {
        let country = self.settings_now().await?.phone.default_country;
        validate::username_lookup(&row.username)?;
        let checked = check(&row, &country)?;
        let Some(user) = self.store.find_user(&row.username).await? else {
            self.add_imported(ctx, row, checked, dry_run).await?;
            return Ok(RowOutcome::Added);
        };
        let (patch, fields) = patch_for(&user, &checked);
        if fields.is_empty() {
            return Ok(RowOutcome::Unchanged);
        }
        if dry_run {
            // What `update_user` will ask, asked without writing.
            for need in super::admin::patch_needs(&patch) {
                if !ctx.access.allows(need) {
                    return Err(Error::Forbidden(format!("not allowed: this needs {need}")));
                }
            }
            super::admin::keeps_in_scope(ctx.access.scope(), &user.groups)?;
        } else {
            self.update_user(ctx, &user.username, patch).await?;
        }
        Ok(RowOutcome::Updated { fields })
    }

    /// A new user with everything the row holds, in one transaction.
    async fn add_imported(
        &self,
        ctx: &Ctx,
        row: ImportRow,
        c: Checked,
        dry_run: bool,
    ) -> Result<()> {
        const CREATE: &str = "user.create";
        let username = validate::username(&row.username)?;
        let new = NewUser {
            username,
            display_name: c.display_name,
            email: c.email,
            groups: c.groups.unwrap_or_default(),
            language: c.language,
            password_hash: None,
            phone: c.phone,
            phone_extension: c.extension,
            backup_phone: None,
            mobile_phone: c.mobile,
            default_method: c.method,
            synced_by: row.sync_item,
        };
        if dry_run {
            if !ctx.access.allows(Need::Permission(Permission::AddUsers)) {
                return Err(Error::Forbidden("not allowed: this needs add users".into()));
            }
            return super::admin::keeps_in_scope(ctx.access.scope(), &new.groups);
        }
        self.require(
            ctx,
            CREATE,
            Need::Permission(Permission::AddUsers),
            Some(&new.username),
        )
        .await?;
        let scoped = super::admin::keeps_in_scope(ctx.access.scope(), &new.groups);
        self.checked(ctx, CREATE, Some(&new.username), scoped)
            .await?;
        let mut ev = self.event(
            ctx,
            CREATE,
            Some(&new.username),
            ResultCode::SuccessUserCreated,
        );
        ev.detail = Some("import".into());
        match self.store.create_user(&new, &ev).await {
            Ok(u) => self.welcome(ctx, &u).await,
            Err(e) => self.refuse(ctx, CREATE, Some(&new.username), e).await,
        }
    }
}

#[async_trait]
impl ImportService for Engine {
    async fn import_users(
        &self,
        ctx: &Ctx,
        batch: ImportBatch,
        dry_run: bool,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportReport> {
        self.require(ctx, EVENT, Need::Administer, None).await?;
        let mut report = ImportReport {
            dry_run,
            ..ImportReport::default()
        };
        for r in batch.refused {
            report.record(r.line, &r.username, r.outcome);
        }
        let mut done = 0;
        for row in batch.rows {
            let (line, username) = (row.line, row.username.clone());
            let outcome = match self.import_row(ctx, row, dry_run).await {
                Ok(o) => o,
                // The database itself failing stops the run: every later
                // row would fail alike, and the report says where it stopped.
                Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
                Err(e) => RowOutcome::Refused {
                    message: crate::display::escape_control(&e.to_string()).into_owned(),
                },
            };
            report.record(line, &crate::display::escape_control(&username), outcome);
            done += 1;
            if let Some(p) = progress {
                p(done);
            }
        }
        if !dry_run {
            let code = if report.refused == 0 {
                ResultCode::Success
            } else {
                ResultCode::FailedInvalidInput
            };
            let mut ev = self.event(ctx, EVENT, None, code);
            ev.detail = Some(format!(
                "added={} updated={} unchanged={} refused={}",
                report.added, report.updated, report.unchanged, report.refused
            ));
            self.store.append_audit(&ev).await?;
        }
        Ok(report)
    }

    async fn directory_rows(
        &self,
        ctx: &Ctx,
        filter: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<ImportRow>> {
        self.require(
            ctx,
            "directory.search",
            Need::Permission(Permission::AddUsers),
            None,
        )
        .await?;
        let Some(ldap) = self.directories.get(PrimaryAuth::Ldap) else {
            return Err(Error::invalid(
                "directory",
                "this node has no [ldap] configuration (ldap.url, TWOFOLD_LDAP_URL)",
            ));
        };
        let people = ldap.search(filter, group).await?;
        Ok(people
            .iter()
            .enumerate()
            .map(|(i, e)| from_directory(i + 1, e))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: 1,
            username: "alice".into(),
            display_name: Some("Alice".into()),
            email: None,
            groups: vec!["Staff".into()],
            language: None,
            phone: Some("+31205550101".into()),
            phone_extension: None,
            backup_phone: None,
            mobile_phone: None,
            enabled: true,
            locked_until: None,
            fraud_blocked: false,
            default_method: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            version: 1,
        }
    }

    #[test]
    fn only_what_differs_is_patched() {
        let row = ImportRow {
            username: "alice".into(),
            display_name: Some("Alice".into()),
            phone: Some("+31 20 555 0101".into()),
            extension: Some("204".into()),
            groups: Some(vec!["staff".into()]),
            ..ImportRow::default()
        };
        let c = check(&row, "NL").unwrap();
        let (patch, fields) = patch_for(&user(), &c);
        assert_eq!(fields, ["extension"]);
        assert_eq!(patch.phone_extension.as_deref(), Some("204"));
        assert_eq!(
            super::super::admin::patch_needs(&patch),
            [Need::Permission(Permission::ChangePhone)]
        );
        let same = ImportRow {
            username: "alice".into(),
            ..ImportRow::default()
        };
        assert!(patch_for(&user(), &check(&same, "NL").unwrap())
            .1
            .is_empty());
    }

    #[test]
    fn bad_cells_name_their_field() {
        let row = ImportRow {
            username: "alice".into(),
            phone: Some("not a phone".into()),
            ..ImportRow::default()
        };
        assert!(check(&row, "NL")
            .err()
            .unwrap()
            .to_string()
            .starts_with("phone:"));
        let row = ImportRow {
            username: "alice".into(),
            method: Some("carrier_pigeon".into()),
            ..ImportRow::default()
        };
        assert!(check(&row, "NL").is_err());
    }
}

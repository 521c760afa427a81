//! The token inventory: hardware tokens imported from their vendor's seed
//! file (`token_import` reads it), kept sealed until an administrator gives
//! one to a user by its serial number. Importing and deleting concern
//! every administrator's stock, so they need `ManageOathTokens` without a
//! group scope; assigning is held to the user's scope like `add_token`.

use std::collections::HashSet;

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{oath_seed_label, NewOathToken, OathKind};
use crate::oath;
use crate::principal::Need;
use crate::service::{AddedToken, Ctx};
use crate::token_import::{
    self, inventory_seed_label, serial_key, ImportedToken, ImportedTokens, InventoryToken,
    NewInventoryToken, RefusedEntry, TokenImportReport, MAX_TOKENS,
};
use crate::user::Permission;
use crate::validate;

use super::Engine;

const TOKENS: Need = Need::Permission(Permission::ManageOathTokens);

/// Rules an imported token must meet whoever built it (the parsers apply
/// them too; an SDK caller might not have).
fn checked(t: &ImportedToken) -> Result<(String, i64)> {
    let serial = token_import::serial(&t.serial)?.to_string();
    oath::validate_params(&t.params)?;
    if !(oath::SECRET_MIN_BYTES..=oath::SECRET_MAX_BYTES).contains(&t.secret.len()) {
        return Err(Error::invalid(
            "secret",
            format!(
                "a token secret has {} to {} bytes",
                oath::SECRET_MIN_BYTES,
                oath::SECRET_MAX_BYTES
            ),
        ));
    }
    let counter = match t.params.kind {
        // The replay guard of a time-based token starts before any step.
        OathKind::Totp => i64::MIN,
        OathKind::Hotp => {
            i64::try_from(t.counter).map_err(|_| Error::invalid("counter", "is too large"))?
        }
    };
    Ok((serial, counter))
}

/// The label a token gets when the administrator gives none: what is
/// printed on it, so the user recognises it in the portal.
fn default_label(t: &InventoryToken) -> String {
    let label = if t.manufacturer.is_empty() {
        format!("Hardware token {}", t.serial)
    } else {
        format!("{} {}", t.manufacturer, t.serial)
    };
    label.chars().take(validate::LABEL_MAX).collect()
}

impl Engine {
    pub(super) async fn admin_import_tokens(
        &self,
        ctx: &Ctx,
        file: ImportedTokens,
        dry_run: bool,
    ) -> Result<TokenImportReport> {
        const EVENT: &str = "tokens.import";
        self.authorize_global(ctx, EVENT, TOKENS).await?;
        let ImportedTokens { tokens, refused } = file;
        if tokens.len() + refused.len() > MAX_TOKENS {
            let e = Error::invalid(
                "file",
                format!("more than {MAX_TOKENS} tokens: split the file"),
            );
            return self.refuse(ctx, EVENT, None, e).await;
        }
        let mut report = TokenImportReport {
            dry_run,
            refused,
            ..TokenImportReport::default()
        };
        let mut seen = HashSet::new();
        let mut batch = Vec::with_capacity(tokens.len());
        for t in &tokens {
            let (serial, counter) = match checked(t) {
                Ok(ok) => ok,
                Err(e) => {
                    report.refused.push(RefusedEntry {
                        at: t.at.clone(),
                        serial: crate::display::escape_control(&t.serial).into_owned(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            // The second of two entries with one serial is a duplicate, as
            // it would be in the next import.
            if !seen.insert(serial_key(&serial)) {
                report.duplicates.push(serial);
                continue;
            }
            batch.push(NewInventoryToken {
                sealed_secret: self
                    .sealing
                    .seal(&t.secret, &inventory_seed_label(&serial))?,
                serial,
                manufacturer: t.manufacturer.clone(),
                model: t.model.clone(),
                params: t.params,
                counter,
            });
        }
        drop(tokens);
        let duplicates = if dry_run {
            let mut present = Vec::new();
            for t in &batch {
                if self.store.inventory_token(&t.serial).await?.is_some() {
                    present.push(t.serial.clone());
                }
            }
            present
        } else if batch.is_empty() {
            Vec::new()
        } else {
            let mut ev = self.event(ctx, EVENT, None, ResultCode::Success);
            ev.method = Some("oath_token".into());
            // Counts only: the serials are many, and the outcome per serial
            // is what the administrator was shown.
            ev.detail = Some(format!(
                "{} token(s) offered, {} refused in the file; serials already in the inventory kept",
                batch.len() + report.duplicates.len(),
                report.refused.len()
            ));
            self.store.import_inventory(&batch, &ev).await?
        };
        let present: HashSet<String> = duplicates.iter().map(|s| serial_key(s)).collect();
        report.duplicates.extend(duplicates);
        report.imported = batch
            .into_iter()
            .map(|t| t.serial)
            .filter(|s| !present.contains(&serial_key(s)))
            .collect();
        Ok(report)
    }

    pub(super) async fn admin_inventory(
        &self,
        ctx: &Ctx,
        prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InventoryToken>> {
        // Any administrator who may give users tokens may see the stock
        // they are given from: inventory tokens belong to nobody yet.
        self.require(ctx, "tokens.inventory", TOKENS, None).await?;
        validate::identifier("serial", prefix.unwrap_or_default())?;
        self.store.inventory(prefix, limit).await
    }

    pub(super) async fn admin_assign_token(
        &self,
        ctx: &Ctx,
        username: &str,
        serial: &str,
        label: &str,
    ) -> Result<AddedToken> {
        const EVENT: &str = "tokens.assign";
        let user = self.subject_for(ctx, EVENT, username, TOKENS).await?;
        let subject = Some(user.username.as_str());
        let serial = self
            .checked(ctx, EVENT, subject, token_import::serial(serial))
            .await?;
        let label = self
            .checked(ctx, EVENT, subject, validate::token_label(label))
            .await?;
        let Some(stock) = self.store.inventory_token(serial).await? else {
            return self
                .refuse(ctx, EVENT, subject, Error::NotFound("token"))
                .await;
        };
        // Opened here and sealed again for its owner: an inventory seed is
        // bound to its serial, a user's to the user.
        let secret = self
            .sealing
            .open(&stock.sealed_secret, &inventory_seed_label(&stock.serial))?;
        let token = NewOathToken {
            label: if label.is_empty() {
                default_label(&stock)
            } else {
                label.to_string()
            },
            params: stock.params,
            sealed_secret: self.sealing.seal(&secret, &oath_seed_label(user.id))?,
            counter: stock.counter,
        };
        let mut ev = self.event(ctx, EVENT, subject, ResultCode::SuccessTokenAdded);
        ev.method = Some("oath_token".into());
        ev.detail = Some(if user.default_method.is_none() {
            format!("serial {}; method set to oath_token", stock.serial)
        } else {
            format!("serial {}", stock.serial)
        });
        match self
            .store
            .assign_inventory_token(
                &stock.serial,
                &stock.sealed_secret,
                user.id,
                &token,
                crate::methods::oath::DEFAULT,
                &ev,
            )
            .await
        {
            Ok((token, method_set)) => Ok(AddedToken { token, method_set }),
            // Assigned or deleted by someone else a moment ago.
            Err(e @ Error::NotFound(_)) => self.refuse(ctx, EVENT, subject, e).await,
            Err(e) => Err(e),
        }
    }

    pub(super) async fn admin_delete_inventory_token(&self, ctx: &Ctx, serial: &str) -> Result<()> {
        const EVENT: &str = "tokens.inventory_delete";
        self.authorize_global(ctx, EVENT, TOKENS).await?;
        let serial = self
            .checked(ctx, EVENT, None, token_import::serial(serial))
            .await?;
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessTokenDeleted);
        ev.detail = Some(format!("serial {serial}"));
        if self.store.delete_inventory_token(serial, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, None, Error::NotFound("token"))
                .await
        }
    }
}

//! `/admin/settings`: every runtime setting, grouped by section, one form
//! per setting — so one change is one transaction, audited with its old
//! and new value (secrets redacted) and effective on every node at once.
//! Secrets are write-only: the page says whether one is set, never what
//! it is. Changing a setting needs a second step passed within the last
//! five minutes.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
use twofold_core::settings::{key_def, parse_text, Kind, KEYS};
use twofold_core::user::Permission;
use twofold_core::Error;

use super::extract::{AdminGet, AdminPost};
use super::pages::{Chrome, SettingRow, SettingsPage, SettingsSection};
use super::session::Flash;
use super::{failure, finish, now, refused, AdminState};

/// A value as the form shows it: lists comma-separated (rules one per
/// line), a secret never.
fn shown(kind: &Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Secret { .. }, _) => String::new(),
        (Kind::RuleList, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

pub(super) async fn page(State(state): State<AdminState>, AdminGet(mut req): AdminGet) -> Response {
    let settings = match state.admin.settings(req.ctx()).await {
        Ok(s) => s,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => return refused(&state, req, &e, "/admin").await,
    };
    let values = settings.public_map();
    let error_field = req.session.data.error_field.take();
    let echo = std::mem::take(&mut req.session.data.echo);
    let mut sections: Vec<SettingsSection> = Vec::new();
    for def in KEYS {
        let (section, _) = def.key.split_once('.').unwrap_or((def.key, ""));
        if sections.last().is_none_or(|s| s.name != section) {
            sections.push(SettingsSection {
                name: section.to_string(),
                rows: Vec::new(),
            });
        }
        let current = values.get(def.key).cloned().unwrap_or(Value::Null);
        let secret = def.kind.is_secret();
        let typed = echo.get(def.key).cloned();
        let bad = error_field.as_deref() == Some(def.key);
        if let Some(last) = sections.last_mut() {
            last.rows.push(SettingRow {
                key: def.key,
                anchor: def.key.replace('.', "-"),
                help: def.help,
                rule: def.kind.describe(),
                value: typed.unwrap_or_else(|| shown(&def.kind, &current)),
                secret,
                secret_set: secret && current.as_str().is_some_and(|s| !s.is_empty()),
                boolean: matches!(def.kind, Kind::Bool),
                multiline: matches!(def.kind, Kind::RuleList),
                choices: match def.kind {
                    Kind::Choice(c) => c.to_vec(),
                    _ => Vec::new(),
                },
                error: if bad {
                    req.session
                        .data
                        .error
                        .take()
                        .map(|f| f.detail.unwrap_or_default())
                } else {
                    None
                },
            });
        }
    }
    let fresh = req.session.fresh(now());
    let may_change = req.may(Permission::ManageSettings);
    let chrome = Chrome::take(&mut req, "title-settings");
    let rendered = SettingsPage {
        c: &chrome,
        sections,
        fresh,
        may_change,
    }
    .render();
    super::render(&state, &req, rendered).await
}

/// `POST /admin/settings/{key}`: one setting, from the text typed.
pub(super) async fn change(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let Ok(def) = key_def(&key) else {
        req.session.data.error = Some(Flash::new("err-not-found"));
        return finish(&state, req, "/admin/settings").await;
    };
    let back = format!("/admin/settings#{}", def.key.replace('.', "-"));
    if !req.session.fresh(now()) {
        req.session.data.error = Some(Flash::new("err-reauth"));
        return finish(&state, req, "/admin/settings").await;
    }
    let raw = req.field("value");
    let result = match parse_text(def, &raw) {
        Ok(value) => state.admin.set_setting(req.ctx(), def.key, value).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            req.session.data.notice = Some(Flash::with("ok-setting", def.key));
            finish(&state, req, &back).await
        }
        Err(e @ Error::InvalidInput { .. }) => {
            // Next to the field, keeping what was typed (never a secret).
            let Error::InvalidInput { message, .. } = &e else {
                unreachable!()
            };
            req.session.data.error = Some(Flash::with("err-invalid", message.clone()));
            req.session.data.error_field = Some(def.key.to_string());
            if !def.kind.is_secret() && raw.len() <= 20_000 {
                req.session.data.echo.insert(def.key.to_string(), raw);
            }
            finish(&state, req, &back).await
        }
        Err(e) => refused(&state, req, &e, &back).await,
    }
}

//! Users on the admin pages: find (username with `*`, group), add, show,
//! and every action the administrator's permissions allow. One
//! `AdminService` call per action, as the administrator; the engine
//! checks the permission and the scope.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;
use twofold_core::factors::{OathKind, OathParams};
use twofold_core::ports::{StatusFilter, UserQuery};
use twofold_core::service::CreateUser;
use twofold_core::user::{User, UserPatch, UserStatus};
use twofold_core::Error;

use super::extract::{AdminGet, AdminPost, AdminReq};
use super::pages::{
    Chrome, DeviceRow, NewUserPage, Offers, TokenRow, UserPage, UserRow, UsersPage,
};
use super::session::Flash;
use super::{failure, finish, refused, AdminState};

/// Users shown per page.
const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    group: String,
    /// Found in the name, e-mail address or a phone number.
    #[serde(default)]
    text: String,
    /// `enabled`, `disabled`, `locked`, `blocked` or empty for all.
    #[serde(default)]
    status: String,
    /// The last username of the previous page.
    #[serde(default)]
    after: String,
}

fn path_of(username: &str) -> String {
    urlencoding::encode(username).into_owned()
}

fn status_text(req: &AdminReq, user: &User) -> String {
    let t = &req.tr;
    match user.status(time::OffsetDateTime::now_utc()) {
        UserStatus::Enabled => t.t("status-enabled"),
        UserStatus::Disabled => t.t("status-disabled"),
        UserStatus::LockedUntil(_) => t.t("status-locked"),
        UserStatus::FraudBlocked => t.t("status-blocked"),
    }
}

/// `GET /admin/users?q=jan*&group=Sales&after=…`: a username (`*` at the
/// end for all that begin with it; the engine matches case-insensitively)
/// and a group, a page at a time. A group-scoped administrator sees only
/// their group: the engine filters.
pub(super) async fn list(
    State(state): State<AdminState>,
    Query(search): Query<Search>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let q = search.q.trim();
    let prefix = q.trim_end_matches('*');
    let query = UserQuery {
        prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
        group: Some(search.group.trim().to_string()).filter(|g| !g.is_empty()),
        after: Some(search.after.clone()).filter(|a| !a.is_empty()),
        limit: PAGE + 1,
        text: Some(search.text.trim().to_string()).filter(|t| !t.is_empty()),
        status: {
            let now = state.admin.now();
            match search.status.as_str() {
                "enabled" => Some(StatusFilter::Enabled(now)),
                "disabled" => Some(StatusFilter::Disabled),
                "locked" => Some(StatusFilter::Locked(now)),
                "blocked" => Some(StatusFilter::Blocked),
                _ => None,
            }
        },
    };
    let users = match state.admin.list_users(req.ctx(), query).await {
        Ok(u) => u,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => {
            req.session.data.error = super::flash_for(&e);
            Vec::new()
        }
    };
    // Without `*`, the name itself only.
    let users: Vec<User> = if q.is_empty() || q.ends_with('*') {
        users
    } else {
        users
            .into_iter()
            .filter(|u| u.username.eq_ignore_ascii_case(q))
            .collect()
    };
    let more = users.len() > PAGE as usize;
    let rows: Vec<UserRow> = users
        .iter()
        .take(PAGE as usize)
        .map(|u| UserRow {
            username: u.username.clone(),
            path: path_of(&u.username),
            name: u.display_name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            groups: u.groups.join(", "),
            status: status_text(&req, u),
        })
        .collect();
    let next = more.then(|| {
        format!(
            "/admin/users?q={}&group={}&text={}&status={}&after={}",
            urlencoding::encode(&search.q),
            urlencoding::encode(&search.group),
            urlencoding::encode(&search.text),
            urlencoding::encode(&search.status),
            urlencoding::encode(rows.last().map_or("", |r| r.username.as_str()))
        )
    });
    let chrome = Chrome::take(&mut req, "title-users");
    let rendered = UsersPage {
        c: &chrome,
        q: &search.q,
        group: &search.group,
        text: &search.text,
        status: &search.status,
        rows,
        next,
    }
    .render();
    super::render(&state, &req, rendered).await
}

/// `GET /admin/users/{name}`. A user outside the administrator's scope is
/// "not found", as one that does not exist.
pub(super) async fn show(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let user = match state.admin.get_user(req.ctx(), &name).await {
        Ok(u) => u,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(_) => {
            req.session.data.error = Some(Flash::new("err-not-found"));
            return finish(&state, req, "/admin/users").await;
        }
    };
    // What the administrator may not read stays empty.
    let tokens = state
        .admin
        .tokens(req.ctx(), &user.username)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|tk| TokenRow {
            id: tk.id,
            label: if tk.label.is_empty() {
                format!("#{}", tk.id)
            } else {
                tk.label
            },
            kind: match tk.params.kind {
                OathKind::Totp => "TOTP".into(),
                OathKind::Hotp => "HOTP".into(),
            },
        })
        .collect();
    let devices = state
        .admin
        .mobile_devices(req.ctx(), &user.username)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| DeviceRow {
            id: d.id,
            name: d.name,
        })
        .collect();
    let status = user.status(time::OffsetDateTime::now_utc());
    let chrome = Chrome::take(&mut req, "title-user");
    let rendered = UserPage {
        c: &chrome,
        path: path_of(&user.username),
        status: status_text(&req, &user),
        enabled: user.enabled,
        blocked: matches!(
            status,
            UserStatus::LockedUntil(_) | UserStatus::FraudBlocked
        ),
        method: user
            .default_method
            .map(|m| m.to_string())
            .unwrap_or_default(),
        groups: user.groups.join(", "),
        tokens,
        devices,
        offers: Offers::of(&req),
        user: &user,
    }
    .render();
    super::render(&state, &req, rendered).await
}

pub(super) async fn new_form(
    State(state): State<AdminState>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let chrome = Chrome::take(&mut req, "nav-add-user");
    let echo = std::mem::take(&mut req.session.data.echo);
    let rendered = NewUserPage {
        c: &chrome,
        echo: &echo,
    }
    .render();
    super::render(&state, &req, rendered).await
}

fn groups_of(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /admin/users/new`: the welcome mail goes out when mail is set up.
pub(super) async fn create(
    State(state): State<AdminState>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let new = CreateUser {
        username: req.field("username").trim().to_string(),
        display_name: req.optional("display_name"),
        email: req.optional("email"),
        groups: groups_of(&req.field("groups")),
        language: req.optional("language"),
        password: None,
        phone: req.optional("phone"),
        phone_extension: req.optional("phone_extension"),
        backup_phone: req.optional("backup_phone"),
        mobile_phone: req.optional("mobile_phone"),
        default_method: req.optional("method"),
    };
    match state.admin.create_user(req.ctx(), new).await {
        Ok(user) => {
            req.session.data.notice = Some(Flash::with("ok-user-added", user.username.clone()));
            let to = format!("/admin/users/{}", path_of(&user.username));
            finish(&state, req, &to).await
        }
        Err(e) => {
            // The form comes back as it was typed.
            req.session.data.echo = [
                "username",
                "display_name",
                "email",
                "groups",
                "language",
                "phone",
                "phone_extension",
                "backup_phone",
                "mobile_phone",
                "method",
            ]
            .iter()
            .filter_map(|k| {
                let v = req.form.get(*k)?;
                (v.len() <= 2000 && !v.chars().any(char::is_control))
                    .then(|| ((*k).to_string(), v.clone()))
            })
            .collect::<HashMap<_, _>>();
            refused(&state, req, &e, "/admin/users/new").await
        }
    }
}

/// `POST /admin/users/{name}/{action}`: one action on one user.
pub(super) async fn act(
    State(state): State<AdminState>,
    Path((name, action)): Path<(String, String)>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let back = format!("/admin/users/{}", path_of(&name));
    let a = &state.admin;
    let ctx = req.ctx().clone();
    let done: Result<&'static str, Error> = match action.as_str() {
        "enable" => a
            .set_user_enabled(&ctx, &name, true)
            .await
            .map(|_| "ok-enabled"),
        "disable" => a
            .set_user_enabled(&ctx, &name, false)
            .await
            .map(|_| "ok-disabled"),
        "unblock" => a.unblock_user(&ctx, &name).await.map(|_| "ok-unblocked"),
        "pin" => a
            .set_pin(&ctx, &name, &req.field("pin"))
            .await
            .map(|()| "ok-pin"),
        "reset-answers" => a
            .reset_answers(&ctx, &name)
            .await
            .map(|()| "ok-answers-reset"),
        "activation" => match a.device_activation_code(&ctx, &name).await {
            // Shown once, on the page after this one.
            Ok(offer) => {
                req.session.data.notice = Some(Flash::with(
                    "ok-activation",
                    format!("{} — {}", offer.code, offer.url),
                ));
                return finish(&state, req, &back).await;
            }
            Err(e) => Err(e),
        },
        "bypass" => {
            let seconds = match req.field("seconds").trim().parse::<u32>() {
                Ok(s) => Some(s),
                Err(_) if req.field("seconds").trim().is_empty() => None,
                Err(_) => {
                    req.session.data.error = Some(Flash::new("err-seconds"));
                    return finish(&state, req, &back).await;
                }
            };
            let reason = req.optional("reason");
            a.grant_bypass(&ctx, &name, seconds, reason.as_deref())
                .await
                .map(|_| "ok-bypass")
        }
        "edit" => {
            let patch = UserPatch {
                display_name: Some(req.field("display_name").trim().to_string()),
                email: Some(req.field("email").trim().to_string()),
                groups: Some(groups_of(&req.field("groups"))),
                language: Some(req.field("language").trim().to_string()),
                ..UserPatch::default()
            };
            a.update_user(&ctx, &name, patch).await.map(|_| "ok-saved")
        }
        "phones" => {
            let patch = UserPatch {
                phone: Some(req.field("phone").trim().to_string()),
                phone_extension: Some(req.field("phone_extension").trim().to_string()),
                backup_phone: Some(req.field("backup_phone").trim().to_string()),
                mobile_phone: Some(req.field("mobile_phone").trim().to_string()),
                ..UserPatch::default()
            };
            a.update_user(&ctx, &name, patch).await.map(|_| "ok-saved")
        }
        "method" => {
            let patch = UserPatch {
                default_method: Some(req.field("method").trim().to_string()),
                ..UserPatch::default()
            };
            a.update_user(&ctx, &name, patch).await.map(|_| "ok-saved")
        }
        "token-add" => {
            let params = OathParams {
                kind: if req.field("kind") == "hotp" {
                    OathKind::Hotp
                } else {
                    OathKind::Totp
                },
                ..OathParams::default()
            };
            a.add_token(
                &ctx,
                &name,
                req.field("secret").trim(),
                params,
                req.field("label").trim(),
            )
            .await
            .map(|_| "ok-token-added")
        }
        "token-delete" => match req.field("id").parse::<i64>() {
            Ok(id) => a
                .delete_token(&ctx, &name, id)
                .await
                .map(|()| "ok-token-removed"),
            Err(_) => Err(Error::invalid("id", "not a token of this user")),
        },
        "device-remove" => a
            .remove_mobile_device(&ctx, &name, &req.field("device"))
            .await
            .map(|()| "ok-device-removed"),
        "delete" => {
            if !req
                .field("confirm")
                .trim()
                .eq_ignore_ascii_case(name.trim())
            {
                req.session.data.error = Some(Flash::new("err-confirm"));
                return finish(&state, req, &back).await;
            }
            match a.delete_user(&ctx, &name).await {
                Ok(()) => {
                    req.session.data.notice = Some(Flash::with("ok-deleted", name.clone()));
                    return finish(&state, req, "/admin/users").await;
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(Error::NotFound("action")),
    };
    match done {
        Ok(key) => {
            req.session.data.notice = Some(Flash::new(key));
            finish(&state, req, &back).await
        }
        Err(e) => refused(&state, req, &e, &back).await,
    }
}

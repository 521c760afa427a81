//! `/admin/service-accounts`: the accounts applications use the Web
//! Service SDK with — a role (validate, portal, admin), and for admin
//! accounts permissions and a scope. Creating, rotating and deleting need
//! "manage service accounts" and a second step within five minutes; a new
//! secret is shown once, on the page after the change.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use twofold_core::principal::{Permissions, Role, Scope};
use twofold_core::service::ServiceAccountSpec;
use twofold_core::user::Permission;
use twofold_core::Error;

use super::extract::{AdminGet, AdminPost};
use super::pages::{permission_names, AccountRow, AccountsPage, Chrome, PermissionBox};
use super::session::Flash;
use super::{failure, finish, now, refused, AdminState};

const BACK: &str = "/admin/service-accounts";

pub(super) async fn page(State(state): State<AdminState>, AdminGet(mut req): AdminGet) -> Response {
    let accounts = match state.admin.service_accounts(req.ctx()).await {
        Ok(a) => a,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => return refused(&state, req, &e, "/admin").await,
    };
    let when = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let rows = accounts
        .into_iter()
        .map(|a| {
            let perms: Permissions = a.permissions.iter().copied().collect();
            AccountRow {
                path: urlencoding::encode(&a.name).into_owned(),
                role: a.role.as_str(),
                rights: if a.role == Role::Admin {
                    format!(
                        "{} — {}",
                        if perms.is_all() {
                            req.tr.t("all-permissions")
                        } else {
                            permission_names(&req.tr, perms).join(", ")
                        },
                        Scope::from_group(a.scope_group.clone())
                    )
                } else {
                    String::new()
                },
                created: when(a.created_at),
                rotated: a.rotated_at.map(when).unwrap_or_default(),
                last_used: a.last_used_at.map_or_else(|| req.tr.t("never"), when),
                name: a.name,
            }
        })
        .collect();
    let boxes = Permission::ALL
        .into_iter()
        .map(|p| PermissionBox {
            name: p.as_str(),
            label: req.tr.t(&format!("perm-{}", p.as_str().replace('_', "-"))),
            mine: req.grant.permissions.contains(p),
        })
        .collect();
    let fresh = req.session.fresh(now());
    let may_change = req.may(Permission::ManageServiceAccounts);
    let chrome = Chrome::take(&mut req, "title-accounts");
    let rendered = AccountsPage {
        c: &chrome,
        rows,
        boxes,
        fresh,
        may_change,
    }
    .render();
    super::render(&state, &req, rendered).await
}

/// `POST /admin/service-accounts`: a new account; its secret is shown once.
pub(super) async fn create(
    State(state): State<AdminState>,
    AdminPost(mut req): AdminPost,
) -> Response {
    if !req.session.fresh(now()) {
        req.session.data.error = Some(Flash::new("err-reauth"));
        return finish(&state, req, BACK).await;
    }
    let name = req.field("name").trim().to_string();
    let spec = match req.field("role").parse::<Role>() {
        Ok(Role::Admin) => {
            let permissions: Permissions = Permission::ALL
                .into_iter()
                .filter(|p| req.form.contains_key(&format!("perm-{}", p.as_str())))
                .collect();
            let scope = match (req.field("scope").as_str(), req.field("group").trim()) {
                ("group", "") => Err(Error::invalid("scope", "name the group")),
                ("group", g) => Ok(Scope::Group(g.to_string())),
                _ => Ok(Scope::All),
            };
            scope.map(|scope| ServiceAccountSpec {
                role: Role::Admin,
                permissions,
                scope,
            })
        }
        Ok(role) => Ok(ServiceAccountSpec {
            role,
            permissions: Permissions::NONE,
            scope: Scope::All,
        }),
        Err(e) => Err(e),
    };
    let made = match spec {
        Ok(spec) => {
            state
                .admin
                .create_service_account(req.ctx(), &name, spec)
                .await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok((account, secret)) => {
            req.session.data.notice = Some(Flash::with(
                "ok-account-secret",
                format!("{} — {secret}", account.name),
            ));
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

/// `POST /admin/service-accounts/{name}/{rotate|delete}`.
pub(super) async fn act(
    State(state): State<AdminState>,
    Path((name, action)): Path<(String, String)>,
    AdminPost(mut req): AdminPost,
) -> Response {
    if !req.session.fresh(now()) {
        req.session.data.error = Some(Flash::new("err-reauth"));
        return finish(&state, req, BACK).await;
    }
    let done = match action.as_str() {
        "rotate" => state
            .admin
            .rotate_service_account(req.ctx(), &name)
            .await
            .map(|secret| Flash::with("ok-account-secret", format!("{name} — {secret}"))),
        "delete" => state
            .admin
            .delete_service_account(req.ctx(), &name)
            .await
            .map(|()| Flash::with("ok-account-deleted", name.clone())),
        _ => Err(Error::NotFound("action")),
    };
    match done {
        Ok(flash) => {
            req.session.data.notice = Some(flash);
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

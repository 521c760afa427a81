//! `/admin/administrators`: who administers what. Granting and revoking
//! need the permission "manage administrators" and a second step passed
//! within the last five minutes; the engine refuses granting a permission
//! the granting administrator does not hold, and revoking the last one who
//! can manage administrators.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use twofold_core::principal::{Permissions, Scope};
use twofold_core::user::Permission;
use twofold_core::Error;

use super::extract::{AdminGet, AdminPost};
use super::pages::{permission_names, AdminRow, AdminsPage, Chrome, PermissionBox};
use super::session::Flash;
use super::{failure, finish, now, refused, AdminState};

pub(super) async fn page(State(state): State<AdminState>, AdminGet(mut req): AdminGet) -> Response {
    let admins = match state.admin.admins(req.ctx()).await {
        Ok(a) => a,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => return refused(&state, req, &e, "/admin").await,
    };
    let rows = admins
        .into_iter()
        .map(|a| AdminRow {
            path: urlencoding::encode(&a.username).into_owned(),
            permissions: {
                let p: Permissions = a.permissions.into_iter().collect();
                if p.is_all() {
                    req.tr.t("all-permissions")
                } else {
                    permission_names(&req.tr, p).join(", ")
                }
            },
            scope: Scope::from_group(a.scope_group).to_string(),
            username: a.username,
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
    let may_change = req.may(Permission::ManageAdministrators);
    let chrome = Chrome::take(&mut req, "title-admins");
    let rendered = AdminsPage {
        c: &chrome,
        rows,
        boxes,
        fresh,
        may_change,
    }
    .render();
    super::render(&state, &req, rendered).await
}

/// `POST /admin/administrators`: grants `username` the ticked permissions
/// over all users or one group (replacing what they had).
pub(super) async fn grant(
    State(state): State<AdminState>,
    AdminPost(mut req): AdminPost,
) -> Response {
    const BACK: &str = "/admin/administrators";
    if !req.session.fresh(now()) {
        req.session.data.error = Some(Flash::new("err-reauth"));
        return finish(&state, req, BACK).await;
    }
    let permissions: Permissions = Permission::ALL
        .into_iter()
        .filter(|p| req.form.contains_key(&format!("perm-{}", p.as_str())))
        .collect();
    let scope = if req.field("scope") == "group" {
        match req.field("group").trim() {
            "" => Err(Error::invalid("scope", "name the group")),
            g => Ok(Scope::Group(g.to_string())),
        }
    } else {
        Ok(Scope::All)
    };
    let username = req.field("username").trim().to_string();
    let done = match scope {
        Ok(scope) if !permissions.is_empty() => state
            .admin
            .grant_admin(req.ctx(), &username, permissions, scope)
            .await
            .map(|_| ()),
        Ok(_) => Err(Error::invalid(
            "permissions",
            "tick at least one permission",
        )),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => {
            req.session.data.notice = Some(Flash::with("ok-granted", username));
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

/// `POST /admin/administrators/{name}/revoke`.
pub(super) async fn revoke(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    AdminPost(mut req): AdminPost,
) -> Response {
    const BACK: &str = "/admin/administrators";
    if !req.session.fresh(now()) {
        req.session.data.error = Some(Flash::new("err-reauth"));
        return finish(&state, req, BACK).await;
    }
    match state.admin.revoke_admin(req.ctx(), &name).await {
        Ok(()) => {
            req.session.data.notice = Some(Flash::with("ok-revoked", name));
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

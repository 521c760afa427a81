//! `/admin/audit`: the audit log, newest first, 100 events a page, for
//! one user or everyone (a group-scoped administrator names a user of
//! their group). Needs "view the audit log". Text from the log is shown
//! escaped, control characters made visible.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use twofold_core::audit::AuditQuery;
use twofold_core::display::escape_control;
use twofold_core::Error;

use super::extract::AdminGet;
use super::pages::{AuditPage, AuditRow, Chrome};
use super::{failure, AdminState};

const PAGE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    user: String,
    /// The oldest id of the previous page.
    #[serde(default)]
    before: Option<i64>,
}

pub(super) async fn page(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let user = filter.user.trim().to_string();
    let query = AuditQuery {
        limit: PAGE,
        before_id: filter.before,
        after_id: None,
        subject: Some(user.clone()).filter(|u| !u.is_empty()),
    };
    let events = match state.admin.audit_events(req.ctx(), query).await {
        Ok(e) => e,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => {
            req.session.data.error = super::flash_for(&e);
            Vec::new()
        }
    };
    let next = (events.len() == PAGE as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            format!(
                "/admin/audit?user={}&before={id}",
                urlencoding::encode(&user)
            )
        });
    let show = |s: &str| escape_control(s).into_owned();
    let rows = events
        .iter()
        .map(|e| AuditRow {
            at: e
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            actor: show(&match &e.via {
                Some(via) => format!("{} via {via}", e.actor),
                None => e.actor.clone(),
            }),
            subject: show(e.subject.as_deref().unwrap_or("")),
            event: show(&e.event),
            method: show(e.method.as_deref().unwrap_or("")),
            result: e.result.as_str(),
            source: e.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            detail: show(e.detail.as_deref().unwrap_or("")),
        })
        .collect();
    let chrome = Chrome::take(&mut req, "title-audit");
    let rendered = AuditPage {
        c: &chrome,
        user: &user,
        rows,
        next,
    }
    .render();
    super::render(&state, &req, rendered).await
}

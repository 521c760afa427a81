//! `/admin/questions`: the security questions users choose from, per
//! language, in the order they were added (the portal offers them in that
//! order). Adding and removing need "manage settings".

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use twofold_core::user::Permission;
use twofold_core::Error;

use super::extract::{AdminGet, AdminPost};
use super::pages::{Chrome, QuestionRow, QuestionsPage};
use super::session::Flash;
use super::{failure, finish, refused, AdminState};

/// The languages the portal speaks (questions are per language).
const LANGUAGES: &[&str] = &["en", "nl", "de", "fr", "es"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct Lang {
    #[serde(default)]
    lang: String,
}

fn language(raw: &str) -> &'static str {
    LANGUAGES
        .iter()
        .copied()
        .find(|l| *l == raw)
        .unwrap_or("en")
}

pub(super) async fn page(
    State(state): State<AdminState>,
    Query(q): Query<Lang>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let lang = language(&q.lang);
    let questions = match state.admin.questions(req.ctx(), Some(lang)).await {
        Ok(qs) => qs,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => return refused(&state, req, &e, "/admin").await,
    };
    let rows = questions
        .into_iter()
        .map(|q| QuestionRow {
            id: q.id,
            text: q.text,
        })
        .collect();
    let may_change = req.may(Permission::ManageSettings);
    let chrome = Chrome::take(&mut req, "title-questions");
    let rendered = QuestionsPage {
        c: &chrome,
        lang,
        languages: LANGUAGES,
        rows,
        may_change,
    }
    .render();
    super::render(&state, &req, rendered).await
}

pub(super) async fn add(
    State(state): State<AdminState>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let lang = language(&req.field("lang"));
    let back = format!("/admin/questions?lang={lang}");
    let text = req.field("text");
    match state.admin.add_question(req.ctx(), lang, text.trim()).await {
        Ok(_) => {
            req.session.data.notice = Some(Flash::new("ok-question-added"));
            finish(&state, req, &back).await
        }
        Err(e) => refused(&state, req, &e, &back).await,
    }
}

/// `POST /admin/questions/{id}/move` with `dir` `up` or `down`.
pub(super) async fn move_one(
    State(state): State<AdminState>,
    Path(id): Path<i64>,
    AdminPost(req): AdminPost,
) -> Response {
    let lang = language(&req.field("lang"));
    let back = format!("/admin/questions?lang={lang}");
    let up = req.field("dir") != "down";
    match state.admin.move_question(req.ctx(), id, up).await {
        Ok(()) => finish(&state, req, &back).await,
        Err(e) => refused(&state, req, &e, &back).await,
    }
}

pub(super) async fn delete(
    State(state): State<AdminState>,
    Path(id): Path<i64>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let lang = language(&req.field("lang"));
    let back = format!("/admin/questions?lang={lang}");
    match state.admin.delete_question(req.ctx(), id).await {
        Ok(()) => {
            req.session.data.notice = Some(Flash::new("ok-question-removed"));
            finish(&state, req, &back).await
        }
        Err(e) => refused(&state, req, &e, &back).await,
    }
}

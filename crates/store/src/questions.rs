//! `QuestionRepo` for `SqlStore`: security questions and the users'
//! answers to them.

use async_trait::async_trait;
use sqlx::AnyConnection;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::{SecurityQuestion, StoredAnswer};
use twofold_core::ports::QuestionRepo;
use twofold_core::user::UserId;
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::db_err;
use crate::factors::touch_user;
use crate::rows::{get, unix_seconds};
use crate::SqlStore;

/// Replaces all of the user's answers. A question answered twice is
/// `InvalidInput`, an unknown question `NotFound("question")`.
pub(crate) async fn write_answers(
    conn: &mut AnyConnection,
    user_id: UserId,
    answers: &[(i64, String)],
) -> Result<()> {
    for (i, (question_id, _)) in answers.iter().enumerate() {
        if answers[..i].iter().any(|(q, _)| q == question_id) {
            return Err(Error::invalid(
                "answers",
                format!("question {question_id} is answered more than once"),
            ));
        }
    }
    sqlx::query("DELETE FROM user_answers WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for (question_id, hash) in answers {
        let known = sqlx::query("SELECT 1 FROM security_questions WHERE id = $1")
            .bind(*question_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .is_some();
        if !known {
            return Err(Error::NotFound("question"));
        }
        sqlx::query("INSERT INTO user_answers (user_id, question_id, hash) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(*question_id)
            .bind(hash)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Uniqueness key of a question's text: the same question in another case
/// (or with stray spaces) is the same question.
fn question_key(text: &str) -> String {
    text.trim().to_lowercase()
}

#[async_trait]
impl QuestionRepo for SqlStore {
    async fn add_question(
        &self,
        language: &str,
        text: &str,
        audit: &NewAuditEvent,
    ) -> Result<SecurityQuestion> {
        let mut tx = self.write(audit).await?;
        // Last of its language (the write transaction keeps two additions
        // from taking one place).
        let inserted = sqlx::query(
            "INSERT INTO security_questions (language, text, text_key, created_at, position) \
             VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(position), 0) + 1 \
             FROM security_questions WHERE language = $5)) RETURNING id",
        )
        .bind(language)
        .bind(text)
        .bind(question_key(text))
        .bind(unix_seconds(audit.at))
        .bind(language)
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(Error::conflict(
                    ConflictReason::Exists,
                    "question already exists",
                ))
            }
            Err(e) => return Err(db_err(e)),
        };
        let question = SecurityQuestion {
            id: get(&row, "id")?,
            language: language.to_string(),
            text: text.to_string(),
        };
        tx.commit().await?;
        Ok(question)
    }

    async fn questions(&self, language: Option<&str>) -> Result<Vec<SecurityQuestion>> {
        let rows = match language {
            Some(language) => sqlx::query(
                "SELECT id, language, text FROM security_questions WHERE language = $1 \
                 ORDER BY position, id",
            )
            .bind(language),
            // Places are counted per language, so across languages this is
            // the order they were added in until someone moves one.
            None => sqlx::query(
                "SELECT id, language, text FROM security_questions ORDER BY position, id",
            ),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SecurityQuestion {
                    id: get(r, "id")?,
                    language: get(r, "language")?,
                    text: get(r, "text")?,
                })
            })
            .collect()
    }

    async fn delete_question(&self, id: i64, audit: &NewAuditEvent) -> Result<bool> {
        self.write_if_changed(
            sqlx::query("DELETE FROM security_questions WHERE id = $1").bind(id),
            audit,
        )
        .await
    }

    async fn move_question(
        &self,
        id: i64,
        up: bool,
        audit: &NewAuditEvent,
    ) -> Result<Option<bool>> {
        let mut tx = self.write(audit).await?;
        let Some(row) =
            sqlx::query("SELECT language, position FROM security_questions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?
        else {
            return Ok(None);
        };
        let language: String = get(&row, "language")?;
        let position: i64 = get(&row, "position")?;
        let neighbour = if up {
            "SELECT id, position FROM security_questions WHERE language = $1 AND \
             (position < $2 OR (position = $2 AND id < $3)) ORDER BY position DESC, id DESC LIMIT 1"
        } else {
            "SELECT id, position FROM security_questions WHERE language = $1 AND \
             (position > $2 OR (position = $2 AND id > $3)) ORDER BY position, id LIMIT 1"
        };
        let Some(other) = sqlx::query(neighbour)
            .bind(&language)
            .bind(position)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
        else {
            // Already first (or last): nothing changes, nothing recorded.
            return Ok(Some(false));
        };
        let other_id: i64 = get(&other, "id")?;
        let mut other_position: i64 = get(&other, "position")?;
        if other_position == position {
            // Equal places (rows from before the order existed): make room.
            other_position = if up { position - 1 } else { position + 1 };
        }
        for (qid, pos) in [(id, other_position), (other_id, position)] {
            tx.execute(
                sqlx::query("UPDATE security_questions SET position = $1 WHERE id = $2")
                    .bind(pos)
                    .bind(qid),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(true))
    }

    async fn answers(&self, user_id: UserId) -> Result<Vec<StoredAnswer>> {
        let rows = sqlx::query(
            "SELECT question_id, hash FROM user_answers WHERE user_id = $1 ORDER BY question_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(StoredAnswer {
                    question_id: get(r, "question_id")?,
                    hash: get(r, "hash")?,
                })
            })
            .collect()
    }

    async fn set_answers(
        &self,
        user_id: UserId,
        answers: &[(i64, String)],
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.write(audit).await?;
        touch_user(&mut tx, user_id, audit.at).await?;
        write_answers(&mut tx, user_id, answers).await?;
        tx.commit().await
    }

    async fn rehash_answer(
        &self,
        user_id: UserId,
        question_id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool> {
        // One statement: answers replaced in between no longer match `old`.
        let updated = sqlx::query(
            "UPDATE user_answers SET hash = $1 \
             WHERE user_id = $2 AND question_id = $3 AND hash = $4",
        )
        .bind(new)
        .bind(user_id)
        .bind(question_id)
        .bind(old)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(updated.rows_affected() == 1)
    }
}

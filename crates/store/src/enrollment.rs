//! `EnrollmentRepo` for `SqlStore`: everything the enrollment wizard
//! collected, written in one transaction.

use async_trait::async_trait;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::Enrollment;
use twofold_core::ports::EnrollmentRepo;
use twofold_core::user::{MethodKind, User, UserId};
use twofold_core::{ConflictReason, Error, Result};

use crate::pins::write_pin;
use crate::questions::write_answers;
use crate::rows::unix_seconds;
use crate::tokens::insert_token;
use crate::users::{load_user, user_exists};
use crate::SqlStore;

#[async_trait]
impl EnrollmentRepo for SqlStore {
    async fn complete_enrollment(
        &self,
        user_id: UserId,
        enrollment: &Enrollment,
        audit: &NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.write(audit).await?;
        // Conditional on "not enrolled yet" in the statement itself, so of two
        // wizards finishing together exactly one gets through.
        let set_method = sqlx::query(
            "UPDATE users SET default_method = $1, default_mode = $2, updated_at = $3, \
             version = version + 1 WHERE id = $4 \
             AND (($5 IS NULL AND default_method IS NULL) OR version = $5)",
        )
        .bind(enrollment.method.method.as_str())
        .bind(enrollment.method.mode.as_str())
        .bind(unix_seconds(audit.at))
        .bind(user_id)
        .bind(enrollment.expected_version);
        if tx.execute(set_method).await? == 0 {
            return Err(if user_exists(&mut tx, user_id).await? {
                Error::conflict(ConflictReason::AlreadyEnrolled, "user is already enrolled")
            } else {
                Error::NotFound("user")
            });
        }
        if let Some(p) = &enrollment.phones {
            // The proved number: the phone of a call, the mobile of texts.
            let set_number = if p.method == MethodKind::PhoneCall {
                sqlx::query("UPDATE users SET phone = $1, phone_extension = $2 WHERE id = $3")
                    .bind(&p.number)
                    .bind(p.extension.as_deref())
                    .bind(user_id)
            } else {
                sqlx::query("UPDATE users SET mobile_phone = $1 WHERE id = $2")
                    .bind(&p.number)
                    .bind(user_id)
            };
            tx.execute(set_number).await?;
            if let Some(backup) = &p.backup {
                tx.execute(
                    sqlx::query("UPDATE users SET backup_phone = $1 WHERE id = $2")
                        .bind(backup)
                        .bind(user_id),
                )
                .await?;
            }
        }
        if let Some(token) = &enrollment.token {
            insert_token(&mut tx, user_id, token, audit.at).await?;
        }
        if let Some(hash) = &enrollment.pin_hash {
            // A first PIN: nothing to trim; `set_pin` trims on the next change.
            write_pin(&mut tx, user_id, hash, audit.at, None).await?;
        }
        write_answers(&mut tx, user_id, &enrollment.answers).await?;
        let user = load_user(&mut tx, user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        tx.commit().await?;
        Ok(user)
    }
}

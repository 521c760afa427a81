//! `ReportService`: the reports of the admin pages — sign-in activity,
//! blocked, bypassed, fraud reports, not enrolled — as rows the front-end
//! renders with `crate::reports` (SVG, CSV).
//!
//! Every report needs the permission `view_audit_log`: each one is read
//! from the audit log or says as much about people as it does. Activity
//! counts everyone's sign-ins, so it needs the scope of all users (a
//! group-scoped administrator is refused, audited, as for the whole audit
//! log); the user lists of a group-scoped administrator hold only members
//! of their group. Every report read is audited (`report.*`).

use async_trait::async_trait;

use super::Ctx;
use crate::error::Result;
use crate::reports::{ActivityRow, ReportPeriod, UserReportRow};

#[async_trait]
pub trait ReportService: Send + Sync + 'static {
    /// Sign-in decisions of `period` per bucket, event, method and result.
    async fn activity_report(&self, ctx: &Ctx, period: &ReportPeriod) -> Result<Vec<ActivityRow>>;
    /// One-time bypasses granted or used in `period`, newest first, at most
    /// `limit` (0: the default; bounded by `reports::MAX_USER_ROWS`).
    async fn bypassed_users_report(
        &self,
        ctx: &Ctx,
        period: &ReportPeriod,
        limit: u32,
    ) -> Result<Vec<UserReportRow>>;
    /// Fraud reports of `period`, newest first.
    async fn fraud_report(
        &self,
        ctx: &Ctx,
        period: &ReportPeriod,
        limit: u32,
    ) -> Result<Vec<UserReportRow>>;
    /// Users locked or blocked now (the engine's clock), by username.
    async fn blocked_users_report(&self, ctx: &Ctx, limit: u32) -> Result<Vec<UserReportRow>>;
    /// Users who have not finished enrolling, by username.
    async fn unenrolled_users_report(&self, ctx: &Ctx, limit: u32) -> Result<Vec<UserReportRow>>;
}

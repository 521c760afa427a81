//! `ReportService` for the engine: the permission, the scope, the audit of
//! the read; the store counts and lists.

use async_trait::async_trait;

use crate::audit::ResultCode;
use crate::error::Result;
use crate::principal::{Need, Scope};
use crate::reports::{ActivityRow, ReportPeriod, UserReportQuery, UserReportRow};
use crate::service::{Ctx, ReportService};
use crate::user::Permission;

use super::Engine;

const NEED: Need = Need::Permission(Permission::ViewAuditLog);

fn describe(period: &ReportPeriod) -> String {
    let f = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    format!(
        "{} to {} by {}",
        f(period.from()),
        f(period.to()),
        period.bucket().as_str()
    )
}

impl Engine {
    /// The user lists: the permission at all, then the caller's scope as
    /// the filter — a group-scoped administrator sees their members only.
    async fn user_report_query(
        &self,
        ctx: &Ctx,
        event: &str,
        limit: u32,
    ) -> Result<UserReportQuery> {
        self.require(ctx, event, NEED, None).await?;
        let group = match ctx.access.scope() {
            Scope::All => None,
            Scope::Group(g) => Some(g.clone()),
        };
        Ok(UserReportQuery { group, limit })
    }

    /// Records that `ctx` read a report: what, and how many rows (never
    /// whom — the names are in the report, not in the log of reading it).
    async fn report_read(&self, ctx: &Ctx, event: &str, detail: String) -> Result<()> {
        let mut ev = self.event(ctx, event, None, ResultCode::Success);
        ev.detail = Some(detail);
        self.store.append_audit(&ev).await.map(|_| ())
    }
}

#[async_trait]
impl ReportService for Engine {
    async fn activity_report(&self, ctx: &Ctx, period: &ReportPeriod) -> Result<Vec<ActivityRow>> {
        const EVENT: &str = "report.activity";
        // Everyone's sign-ins: the whole log's scope, as `audit.read`.
        self.authorize_global(ctx, EVENT, NEED).await?;
        let rows = self.store.activity(period).await?;
        self.report_read(
            ctx,
            EVENT,
            format!("{}: {} rows", describe(period), rows.len()),
        )
        .await?;
        Ok(rows)
    }

    async fn bypassed_users_report(
        &self,
        ctx: &Ctx,
        period: &ReportPeriod,
        limit: u32,
    ) -> Result<Vec<UserReportRow>> {
        const EVENT: &str = "report.bypassed";
        let query = self.user_report_query(ctx, EVENT, limit).await?;
        let rows = self.store.bypassed_users(period, &query).await?;
        self.report_read(
            ctx,
            EVENT,
            format!("{}: {} rows", describe(period), rows.len()),
        )
        .await?;
        Ok(rows)
    }

    async fn fraud_report(
        &self,
        ctx: &Ctx,
        period: &ReportPeriod,
        limit: u32,
    ) -> Result<Vec<UserReportRow>> {
        const EVENT: &str = "report.fraud";
        let query = self.user_report_query(ctx, EVENT, limit).await?;
        let rows = self.store.fraud_reports(period, &query).await?;
        self.report_read(
            ctx,
            EVENT,
            format!("{}: {} rows", describe(period), rows.len()),
        )
        .await?;
        Ok(rows)
    }

    async fn blocked_users_report(&self, ctx: &Ctx, limit: u32) -> Result<Vec<UserReportRow>> {
        const EVENT: &str = "report.blocked";
        let query = self.user_report_query(ctx, EVENT, limit).await?;
        let rows = self.store.blocked_users(self.clock.now(), &query).await?;
        self.report_read(ctx, EVENT, format!("{} rows", rows.len()))
            .await?;
        Ok(rows)
    }

    async fn unenrolled_users_report(&self, ctx: &Ctx, limit: u32) -> Result<Vec<UserReportRow>> {
        const EVENT: &str = "report.unenrolled";
        let query = self.user_report_query(ctx, EVENT, limit).await?;
        let rows = self.store.unenrolled_users(&query).await?;
        self.report_read(ctx, EVENT, format!("{} rows", rows.len()))
            .await?;
        Ok(rows)
    }
}

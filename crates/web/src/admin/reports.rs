//! `/admin/reports`: activity (sign-ins by result and method per day or
//! hour), blocked users, bypassed users, fraud reports and users not yet
//! enrolled — each a page with a chart drawn on the server as SVG (an
//! `<img>`: no script) and a CSV export of the same rows. Needs "view the
//! audit log"; the engine decides, and audits every read.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twofold_core::reports::{
    activity_csv, activity_svg, bar_chart_svg, kinds_bars, users_csv, users_svg, ActivityRow,
    Bucket, ChartLabels, ReportPeriod, UserReportKind, UserReportRow,
};
use twofold_core::Error;

use super::extract::{AdminGet, AdminReq};
use super::i18n::AdminTr;
use super::pages::{ActivityLine, Chrome, ReportLine, ReportPage};
use super::{failure, refused, AdminState};

/// Rows a user report shows (and exports) at most.
const USER_ROWS: u32 = 1000;

/// The reports, as their path segment.
const REPORTS: &[&str] = &["activity", "blocked", "bypassed", "fraud", "unenrolled"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct Params {
    /// Days back from today (1..=366; hours: 1..=14).
    #[serde(default)]
    days: Option<u16>,
    /// `day` or `hour`.
    #[serde(default)]
    bucket: Option<String>,
}

impl Params {
    fn period(&self, now: time::OffsetDateTime) -> Result<ReportPeriod, Error> {
        let bucket = match self.bucket.as_deref() {
            Some("hour") => Bucket::Hour,
            _ => Bucket::Day,
        };
        let days = self.days.unwrap_or(7);
        if bucket == Bucket::Hour {
            let end = Bucket::Hour.start_of(now) + time::Duration::hours(1);
            ReportPeriod::new(
                end - time::Duration::days(i64::from(days.clamp(1, 14))),
                end,
                Bucket::Hour,
            )
        } else {
            ReportPeriod::last_days(now, days.clamp(1, 366))
        }
    }

    fn query(&self, period: &ReportPeriod) -> String {
        format!(
            "days={}&bucket={}",
            self.days.unwrap_or(7),
            period.bucket().as_str()
        )
    }
}

/// What a report holds: activity counts, or users.
enum Rows {
    Activity(Vec<ActivityRow>),
    Users(Vec<UserReportRow>),
}

async fn rows(
    state: &AdminState,
    req: &AdminReq,
    report: &str,
    period: &ReportPeriod,
) -> Result<Rows, Error> {
    let r = &state.reports;
    let ctx = req.ctx();
    Ok(match report {
        "activity" => Rows::Activity(r.activity_report(ctx, period).await?),
        "blocked" => Rows::Users(r.blocked_users_report(ctx, USER_ROWS).await?),
        "bypassed" => Rows::Users(r.bypassed_users_report(ctx, period, USER_ROWS).await?),
        "fraud" => Rows::Users(r.fraud_report(ctx, period, USER_ROWS).await?),
        "unenrolled" => Rows::Users(r.unenrolled_users_report(ctx, USER_ROWS).await?),
        _ => return Err(Error::NotFound("report")),
    })
}

fn kind_label(t: &AdminTr, kind: UserReportKind) -> String {
    t.t(&format!("kind-{}", kind.as_str().replace('_', "-")))
}

/// The chart of a report, in the administrator's language.
fn chart(t: &AdminTr, report: &str, rows: &Rows, period: &ReportPeriod) -> String {
    match rows {
        Rows::Activity(a) => activity_svg(
            a,
            period,
            &ChartLabels {
                title: t.t("report-activity"),
                series: vec![t.t("series-success"), t.t("series-failure")],
                no_data: t.t("chart-empty"),
            },
        ),
        Rows::Users(u) => {
            let labels = ChartLabels {
                title: t.t(&format!("report-{report}")),
                series: vec![t.t("series-users")],
                no_data: t.t("chart-empty"),
            };
            // Lists of now (blocked, not enrolled) by why; lists of a
            // period (bypasses, fraud) by when.
            if matches!(report, "blocked" | "unenrolled") {
                bar_chart_svg(&kinds_bars(u, |k| kind_label(t, k)), &labels)
            } else {
                users_svg(u, period, &labels)
            }
        }
    }
}

/// `GET /admin/reports/{name}`: a report's page, or (`name.svg`,
/// `name.csv`) its chart and its export.
pub(super) async fn report(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(params): Query<Params>,
    AdminGet(req): AdminGet,
) -> Response {
    match name.rsplit_once('.') {
        Some((report, ext)) => file(&state, report, ext, &params, req).await,
        None => page(&state, &name, &params, req).await,
    }
}

/// A report's page: the chart, the rows and the export.
async fn page(state: &AdminState, report: &str, params: &Params, mut req: AdminReq) -> Response {
    let report = report.to_string();
    if !REPORTS.contains(&report.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let period = match params.period(state.admin.now()) {
        Ok(p) => p,
        Err(e) => return refused(state, req, &e, "/admin/reports/activity").await,
    };
    let rows = match rows(state, &req, &report, &period).await {
        Ok(r) => r,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => {
            req.session.data.error = super::flash_for(&e);
            match report.as_str() {
                "activity" => Rows::Activity(Vec::new()),
                _ => Rows::Users(Vec::new()),
            }
        }
    };
    let t = req.tr.clone();
    let when = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let (activity, users) = match &rows {
        Rows::Activity(a) => (
            a.iter()
                .map(|r| ActivityLine {
                    bucket: when(r.bucket_start),
                    event: r.event.clone(),
                    method: r.method.clone().unwrap_or_default(),
                    result: r.result.as_str(),
                    count: r.count,
                })
                .collect(),
            Vec::new(),
        ),
        Rows::Users(u) => (
            Vec::new(),
            u.iter()
                .map(|r| ReportLine {
                    username: r.username.clone(),
                    name: r.display_name.clone().unwrap_or_default(),
                    groups: r.groups.join(", "),
                    since: r.since.map(when).unwrap_or_default(),
                    why: kind_label(&t, r.kind),
                    detail: r.detail.clone(),
                })
                .collect(),
        ),
    };
    let query = params.query(&period);
    let chrome = Chrome::take(&mut req, "title-reports");
    let rendered = ReportPage {
        c: &chrome,
        report: &report,
        reports: REPORTS,
        title: t.t(&format!("report-{report}")),
        query: &query,
        days: params.days.unwrap_or(7),
        hourly: period.bucket() == Bucket::Hour,
        periodic: matches!(report.as_str(), "activity" | "bypassed" | "fraud"),
        activity,
        users,
    }
    .render();
    super::render(state, &req, rendered).await
}

/// A report's chart (`svg`) or export (`csv`): exactly the rows the page
/// shows.
async fn file(
    state: &AdminState,
    report: &str,
    ext: &str,
    params: &Params,
    req: AdminReq,
) -> Response {
    if !REPORTS.contains(&report) || !matches!(ext, "svg" | "csv") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(period) = params.period(state.admin.now()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let rows = match rows(state, &req, report, &period).await {
        Ok(r) => r,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(Error::Forbidden(_)) => return StatusCode::FORBIDDEN.into_response(),
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let no_store = (header::CACHE_CONTROL, "no-store".to_string());
    if ext == "svg" {
        let body = chart(&req.tr, report, &rows, &period);
        return (
            [
                (
                    header::CONTENT_TYPE,
                    "image/svg+xml; charset=utf-8".to_string(),
                ),
                no_store,
            ],
            body,
        )
            .into_response();
    }
    let body = match &rows {
        Rows::Activity(a) => activity_csv(a),
        Rows::Users(u) => users_csv(u),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"twofold-{report}.csv\""),
            ),
            no_store,
        ],
        body,
    )
        .into_response()
}

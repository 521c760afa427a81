//! Reports over the audit log and the users: sign-in activity per day or
//! hour, blocked users, bypassed users, fraud reports and users not yet
//! enrolled — their rows, and their rendering as an SVG chart (drawn here,
//! on the server: the pages need no script) and as CSV.
//!
//! Everything here is pure: the store counts (`ports::ReportRepo`), the
//! engine authorizes and audits (`service::ReportService`), and these
//! functions turn rows into text. What a chart shows is what its CSV lists:
//! both are built from the same rows, and every bar carries its numbers in
//! `data-count` attributes and a `<title>`, so tests (and screen readers)
//! can check them.
//!
//! Why no plotting crate: `plotters` (the usual choice) pulls in font
//! rendering and image back-ends, and its SVG back-end writes inline
//! `style` and has no `<title>` per bar; a bar chart is a few dozen lines of
//! `<rect>` and `<text>` whose every attribute we choose (presentation
//! attributes only, so the admin pages' Content-Security-Policy, which
//! forbids inline styles, holds).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::methods::{self, Holdings};
use crate::user::DefaultMethod;

// --- Periods ---------------------------------------------------------------------------

/// How the activity is counted: per UTC day or per UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Hour,
}

impl Bucket {
    pub fn seconds(self) -> i64 {
        match self {
            Bucket::Day => 86_400,
            Bucket::Hour => 3_600,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Hour => "hour",
        }
    }

    pub fn parse(s: &str) -> Result<Bucket> {
        match s.trim() {
            "day" => Ok(Bucket::Day),
            "hour" => Ok(Bucket::Hour),
            other => Err(Error::invalid(
                "bucket",
                format!("{other:?} is not a bucket; choose day or hour"),
            )),
        }
    }

    /// The most buckets one report may hold: a year by day, two weeks by
    /// hour — enough for the questions asked, few enough that one chart
    /// stays readable and one query stays cheap.
    pub fn max_buckets(self) -> i64 {
        match self {
            Bucket::Day => 366,
            Bucket::Hour => 14 * 24,
        }
    }

    /// The start of the bucket `t` falls in (buckets start at the unix
    /// epoch, so days are UTC days — what the store's `at - at % size`
    /// computes too).
    pub fn start_of(self, t: OffsetDateTime) -> OffsetDateTime {
        let secs = t.unix_timestamp();
        let start = secs - secs.rem_euclid(self.seconds());
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(t)
    }
}

/// A validated period: `from` < `to`, widened to whole buckets, at most
/// `Bucket::max_buckets` of them, not before 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
}

impl ReportPeriod {
    /// The period from `from` (inclusive) to `to` (exclusive). It is widened
    /// to whole buckets — `from` down to its bucket's start, `to` up to the
    /// next bucket's — so every bar of a chart counts a whole day or hour.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, bucket: Bucket) -> Result<ReportPeriod> {
        if to <= from {
            return Err(Error::invalid("to", "the end must come after the start"));
        }
        if from < OffsetDateTime::UNIX_EPOCH {
            return Err(Error::invalid("from", "the start must not be before 1970"));
        }
        let from = bucket.start_of(from);
        let last = bucket.start_of(to - Duration::nanoseconds(1));
        let to = last + Duration::seconds(bucket.seconds());
        let count = (to - from).whole_seconds() / bucket.seconds();
        if count > bucket.max_buckets() {
            return Err(Error::invalid(
                "to",
                format!(
                    "a report by {} covers at most {} of them",
                    bucket.as_str(),
                    bucket.max_buckets()
                ),
            ));
        }
        Ok(ReportPeriod { from, to, bucket })
    }

    /// The `days` whole UTC days up to and including the one of `now`.
    pub fn last_days(now: OffsetDateTime, days: u16) -> Result<ReportPeriod> {
        let end = Bucket::Day.start_of(now) + Duration::days(1);
        ReportPeriod::new(
            end - Duration::days(i64::from(days.max(1))),
            end,
            Bucket::Day,
        )
    }

    pub fn from(&self) -> OffsetDateTime {
        self.from
    }

    pub fn to(&self) -> OffsetDateTime {
        self.to
    }

    pub fn bucket(&self) -> Bucket {
        self.bucket
    }

    /// The start of every bucket of the period, in order.
    pub fn buckets(&self) -> impl Iterator<Item = OffsetDateTime> + '_ {
        let step = Duration::seconds(self.bucket.seconds());
        std::iter::successors(Some(self.from), move |t| Some(*t + step))
            .take_while(|t| *t < self.to)
    }

    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.from <= t && t < self.to
    }
}

// --- Which events are sign-ins ---------------------------------------------------------

/// An audit event name whose rows record decisions about a person signing
/// in, except the results listed in `except`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInEvent {
    pub event: &'static str,
    /// Results of `event` that record no decision of their own.
    pub except: &'static [ResultCode],
}

/// The events the activity report counts: every decision on a sign-in's
/// first or second step, each decision once.
///
/// * `primary.password` — the password (portal, SDK `check_password`, a
///   separate portal): verified, wrong, unknown user, locked, directory down.
/// * `portal.sign_in` — what the portal decides after the password: trusted
///   address, one-time bypass used, not enrolled, sign-in switched off.
/// * `portal.verify` — the portal's second step: an OATH code, the OATH
///   fallback, security answers, refusals. Not its `SUCCESS_PHONE_CALL`,
///   `SUCCESS_SMS_CODE` and `SUCCESS_MOBILE_APP`: those repeat, without the
///   method, the acceptance of a challenge that `sdk.authenticate_finish`
///   already counted with it.
/// * `sdk.validate` — the SDK's one-call passcode check.
/// * `sdk.authenticate_start` — only its refusals (user unknown, locked,
///   not enrolled, no phone, provider down): its `SUCCESS` says a
///   challenge was opened, and the challenge's decision comes later.
/// * `sdk.authenticate_finish` — the decision of every challenge (SDK or
///   portal; call, text message, mobile app, typed passcode): accepted,
///   rejected (wrong answers, denied, fraud reported) or expired. The
///   individual answers (`sdk.authenticate_answer`, `hooks.call`,
///   `hooks.sms`, `device.answer`) are steps towards it and not counted, or
///   one sign-in with a typo would count twice.
///
/// Not sign-ins: forward-auth checks of a session already passed
/// (`passed.*`), enrollment, account changes, administration.
pub const SIGN_IN_EVENTS: &[SignInEvent] = &[
    SignInEvent {
        event: "primary.password",
        except: &[],
    },
    SignInEvent {
        event: "portal.sign_in",
        except: &[],
    },
    SignInEvent {
        event: "portal.verify",
        except: &[
            ResultCode::SuccessPhoneCall,
            ResultCode::SuccessSmsCode,
            ResultCode::SuccessMobileApp,
        ],
    },
    SignInEvent {
        event: "sdk.validate",
        except: &[],
    },
    SignInEvent {
        event: "sdk.authenticate_start",
        except: &[ResultCode::Success],
    },
    SignInEvent {
        event: "sdk.authenticate_finish",
        except: &[],
    },
];

/// Whether an audit row of `event` with `result` is a sign-in decision the
/// activity report counts (the store's query says the same in SQL).
pub fn is_sign_in(event: &str, result: ResultCode) -> bool {
    SIGN_IN_EVENTS
        .iter()
        .any(|s| s.event == event && !s.except.contains(&result))
}

/// The event that blocks a user after a fraud report: the report itself is
/// the challenge's `FAILED_FRAUD_REPORTED` decision, so the block (same
/// result) is not a second report.
pub const FRAUD_BLOCK_EVENT: &str = "user.fraud_block";

/// The results that make a user "bypassed" in a period.
pub const BYPASS_RESULTS: &[ResultCode] = &[
    ResultCode::SuccessBypassStarted,
    ResultCode::SuccessBypassUsed,
];

// --- Rows ------------------------------------------------------------------------------

/// Sign-in decisions of one bucket with the same event, method and result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    #[serde(with = "time::serde::rfc3339")]
    pub bucket_start: OffsetDateTime,
    pub event: String,
    pub method: Option<String>,
    pub result: ResultCode,
    pub count: u64,
}

/// Why a user is on a user report, as a stable key (for grouping, charts
/// and the pages' translations); `UserReportRow::detail` says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserReportKind {
    /// Locked for a while after wrong secrets.
    Locked,
    /// Locked until an administrator unblocks.
    LockedUntilUnblocked,
    /// Blocked after reporting a sign-in as fraud.
    FraudBlocked,
    BypassGranted,
    BypassUsed,
    FraudReported,
    /// No method chosen yet.
    NoMethod,
    /// A method (set by an administrator) without what it needs.
    MethodNotReady,
}

impl UserReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserReportKind::Locked => "locked",
            UserReportKind::LockedUntilUnblocked => "locked_until_unblocked",
            UserReportKind::FraudBlocked => "fraud_blocked",
            UserReportKind::BypassGranted => "bypass_granted",
            UserReportKind::BypassUsed => "bypass_used",
            UserReportKind::FraudReported => "fraud_reported",
            UserReportKind::NoMethod => "no_method",
            UserReportKind::MethodNotReady => "method_not_ready",
        }
    }
}

/// One line of a user report. Blocked and not-enrolled reports have one per
/// user; bypass and fraud reports one per audit event (a user bypassed
/// twice appears twice, at each time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserReportRow {
    pub username: String,
    /// `None` also when the user has been deleted since the event.
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    /// When it happened (bypass, fraud), the latest fraud report (blocked by
    /// fraud), when the user was added (not enrolled); `None` for locks.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    pub kind: UserReportKind,
    pub detail: String,
}

/// What the store's user reports return, and for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserReportQuery {
    /// Only members of this group (a group-scoped administrator's scope).
    pub group: Option<String>,
    /// At most this many rows (0: `DEFAULT_USER_ROWS`; at most
    /// `MAX_USER_ROWS`).
    pub limit: u32,
}

pub const DEFAULT_USER_ROWS: u32 = 1_000;
pub const MAX_USER_ROWS: u32 = 10_000;
/// The activity of a year by day has at most a few thousand rows (events ×
/// methods × results that happened); this bounds a pathological log.
pub const MAX_ACTIVITY_ROWS: u32 = 50_000;

impl UserReportQuery {
    pub fn limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_USER_ROWS,
            n => n.min(MAX_USER_ROWS),
        }
    }
}

/// Why a user with `method` and these holdings is not enrolled — the
/// portal's rule (`SignIn::Enroll`): no method, or a method whose module
/// says the user lacks what it needs, or a PIN mode of a phone method
/// without a PIN. `None`: enrolled. Which methods the portal currently
/// offers is a setting and not looked at: this is about the user.
pub fn enrollment_gap(
    method: Option<DefaultMethod>,
    holdings: &Holdings,
    has_pin: bool,
) -> Option<(UserReportKind, String)> {
    let Some(m) = method else {
        return Some((UserReportKind::NoMethod, "no method yet".into()));
    };
    let Some(module) = methods::method(m.method) else {
        // A method this version cannot verify with is not a gap in the
        // user's enrollment; the sign-in explains it.
        return None;
    };
    if !module.ready(holdings) {
        return Some((
            UserReportKind::MethodNotReady,
            format!("{}: {}", m.method.as_str(), module.not_ready_hint()),
        ));
    }
    if m.mode.needs_pin() && !module.code_held_by_user() && !has_pin {
        return Some((
            UserReportKind::MethodNotReady,
            format!("{}: choose a PIN first", m.method.as_str()),
        ));
    }
    None
}

// --- Rendering: text ---------------------------------------------------------------------

/// Text an SVG chart shows, in the page's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartLabels {
    /// The chart's title (also its accessible name).
    pub title: String,
    /// The series' names: activity shows successes and failures; a user
    /// report one series.
    pub series: Vec<String>,
    /// Said in the chart when there is nothing to show.
    pub no_data: String,
}

impl ChartLabels {
    pub fn activity_english() -> ChartLabels {
        ChartLabels {
            title: "Sign-ins".into(),
            series: vec!["successes".into(), "failures".into()],
            no_data: "No sign-ins in this period".into(),
        }
    }

    pub fn users_english(title: &str) -> ChartLabels {
        ChartLabels {
            title: title.into(),
            series: vec!["users".into()],
            no_data: "Nobody in this report".into(),
        }
    }
}

/// `s` for XML text and attribute values: markup characters as entities,
/// and the characters XML 1.0 cannot carry at all (most C0 controls, lone
/// surrogates cannot occur in `str`, U+FFFE/U+FFFF) as U+FFFD, so a
/// display name can never break the document.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

// --- Rendering: SVG ------------------------------------------------------------------------

/// One bar: its key (`data-key`), its label (axis and tooltip) and one
/// value per series, stacked bottom up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub key: String,
    pub label: String,
    pub values: Vec<u64>,
}

impl Bar {
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 56.0;
/// Fills of the series, dark blue then orange: told apart by people who
/// cannot tell red from green, and each at least 3:1 against white.
const FILLS: [&str; 3] = ["#1f5fa8", "#c2571a", "#5b5b5b"];
const AXIS: &str = "#333333";
const GRID: &str = "#dddddd";
/// At most this many labels on the horizontal axis; the others are in each
/// bar's tooltip.
const MAX_X_LABELS: usize = 12;

/// A scale's top and step: the smallest "round" step (1, 2 or 5 times a
/// power of ten) that covers `max` in at most five steps.
fn nice_scale(max: u64) -> (u64, u64) {
    let mut magnitude = 1u64;
    loop {
        for f in [1, 2, 5] {
            let step = f * magnitude;
            if max.div_ceil(step) <= 5 {
                return (max.div_ceil(step).max(1) * step, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// A stacked bar chart of `bars`, one color per series, with a legend, the
/// vertical scale and up to `MAX_X_LABELS` labels under the bars.
pub fn bar_chart_svg(bars: &[Bar], labels: &ChartLabels) -> String {
    let total: u64 = bars.iter().map(Bar::total).sum();
    let max = bars.iter().map(Bar::total).max().unwrap_or(0);
    let (top, step) = nice_scale(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_h;
    let title = xml_escape(&labels.title);

    let mut sums = vec![0u64; labels.series.len()];
    for b in bars {
        for (i, v) in b.values.iter().enumerate() {
            if let Some(s) = sums.get_mut(i) {
                *s += v;
            }
        }
    }
    let summary = summary_text(total, &sums, labels);

    let mut s = String::new();
    // `write!` into a String cannot fail.
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" font-family="sans-serif" font-size="11" data-total="{total}"><title>{title}</title><desc>{desc}</desc>"#,
        desc = xml_escape(&summary),
    );
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold" fill="{AXIS}">{title}</text>"#
    );
    // The legend, right under the title.
    let mut x = LEFT;
    for (i, name) in labels.series.iter().enumerate() {
        let fill = FILLS[i % FILLS.len()];
        let name = xml_escape(name);
        let sum = sums.get(i).copied().unwrap_or(0);
        let _ = write!(
            s,
            r#"<g data-series="{i}" data-count="{sum}"><rect x="{x}" y="30" width="12" height="12" fill="{fill}"/><text x="{tx}" y="40" fill="{AXIS}">{name} ({sum})</text></g>"#,
            tx = x + 16.0,
        );
        x += 24.0 + 7.0 * (name.chars().count() as f64 + 8.0);
    }
    // The scale: a grid line and a number at every step.
    let mut tick = 0;
    while tick <= top {
        let y = base - plot_h * (tick as f64 / top as f64);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="{GRID}" stroke-width="1"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="{AXIS}">{tick}</text>"#,
            x2 = LEFT + plot_w,
            tx = LEFT - 6.0,
            ty = y + 4.0,
        );
        tick += step;
    }
    if bars.is_empty() || total == 0 {
        let _ = write!(
            s,
            r#"<text x="{cx}" y="{cy}" text-anchor="middle" fill="{AXIS}">{}</text>"#,
            xml_escape(&labels.no_data),
            cx = LEFT + plot_w / 2.0,
            cy = TOP + plot_h / 2.0,
        );
    }
    // The bars, each a group with its numbers and a tooltip.
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let label_every = bars.len().div_ceil(MAX_X_LABELS).max(1);
    for (n, bar) in bars.iter().enumerate() {
        let x = LEFT + slot * n as f64 + (slot - bar_w) / 2.0;
        let tip = bar_tooltip(bar, labels);
        let _ = write!(
            s,
            r#"<g data-key="{key}" data-count="{count}"><title>{tip}</title>"#,
            key = xml_escape(&bar.key),
            count = bar.total(),
            tip = xml_escape(&tip),
        );
        let mut y = base;
        for (i, v) in bar.values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let h = plot_h * (*v as f64 / top as f64);
            y -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{fill}" data-series="{i}" data-count="{v}"/>"#,
                fill = FILLS[i % FILLS.len()],
            );
        }
        s.push_str("</g>");
        if n % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{lx:.1}" y="{ly}" text-anchor="middle" fill="{AXIS}">{label}</text>"#,
                lx = x + bar_w / 2.0,
                ly = base + 16.0,
                label = xml_escape(&bar.label),
            );
        }
    }
    // The axes last, over the bars' feet.
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{AXIS}" stroke-width="1"/><line x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}" stroke="{AXIS}" stroke-width="1"/></svg>"#,
        x2 = LEFT + plot_w,
    );
    s
}

fn bar_tooltip(bar: &Bar, labels: &ChartLabels) -> String {
    let parts = bar
        .values
        .iter()
        .zip(&labels.series)
        .map(|(v, name)| format!("{v} {name}"))
        .collect::<Vec<_>>();
    format!("{}: {}", bar.label, parts.join(", "))
}

fn summary_text(total: u64, sums: &[u64], labels: &ChartLabels) -> String {
    if total == 0 {
        return labels.no_data.clone();
    }
    let parts = sums
        .iter()
        .zip(&labels.series)
        .map(|(v, name)| format!("{v} {name}"))
        .collect::<Vec<_>>();
    format!("{}: {}", labels.title, parts.join(", "))
}

fn bucket_label(t: OffsetDateTime, bucket: Bucket) -> String {
    match bucket {
        Bucket::Day => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Bucket::Hour => format!(
            "{:02}-{:02} {:02}:00",
            u8::from(t.month()),
            t.day(),
            t.hour()
        ),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The activity as bars: one per bucket of the period (empty ones too, so
/// quiet days show), successes then failures. Rows outside the period are
/// left out.
pub fn activity_bars(rows: &[ActivityRow], period: &ReportPeriod) -> Vec<Bar> {
    period
        .buckets()
        .map(|start| {
            let mut values = vec![0u64, 0];
            for r in rows.iter().filter(|r| r.bucket_start == start) {
                values[usize::from(!r.result.is_success())] += r.count;
            }
            Bar {
                key: rfc3339(start),
                label: bucket_label(start, period.bucket()),
                values,
            }
        })
        .collect()
}

/// The activity chart: per bucket, successes stacked under failures.
pub fn activity_svg(rows: &[ActivityRow], period: &ReportPeriod, labels: &ChartLabels) -> String {
    bar_chart_svg(&activity_bars(rows, period), labels)
}

/// A period's user report as bars: how many rows fall in each bucket
/// (by `since`).
pub fn users_bars(rows: &[UserReportRow], period: &ReportPeriod) -> Vec<Bar> {
    period
        .buckets()
        .map(|start| {
            let end = start + Duration::seconds(period.bucket().seconds());
            let n = rows
                .iter()
                .filter(|r| r.since.is_some_and(|t| start <= t && t < end))
                .count() as u64;
            Bar {
                key: rfc3339(start),
                label: bucket_label(start, period.bucket()),
                values: vec![n],
            }
        })
        .collect()
}

/// Bypassed users or fraud reports per bucket of the period.
pub fn users_svg(rows: &[UserReportRow], period: &ReportPeriod, labels: &ChartLabels) -> String {
    bar_chart_svg(&users_bars(rows, period), labels)
}

/// A report without a period (blocked, not enrolled) as bars: how many rows
/// of each kind, in the order the kinds first appear. `kind_label` names a
/// kind in the page's language.
pub fn kinds_bars(
    rows: &[UserReportRow],
    kind_label: impl Fn(UserReportKind) -> String,
) -> Vec<Bar> {
    let mut bars: Vec<(UserReportKind, u64)> = Vec::new();
    for r in rows {
        match bars.iter_mut().find(|(k, _)| *k == r.kind) {
            Some((_, n)) => *n += 1,
            None => bars.push((r.kind, 1)),
        }
    }
    bars.into_iter()
        .map(|(k, n)| Bar {
            key: k.as_str().into(),
            label: kind_label(k),
            values: vec![n],
        })
        .collect()
}

// --- Rendering: CSV ------------------------------------------------------------------------

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return first) gets a leading `'`, as OWASP advises for
/// CSV exports: display names and details come from people and directories.
fn defused(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

fn csv_text(records: impl IntoIterator<Item = Vec<String>>) -> String {
    // RFC 4180: CRLF after every record, quotes only where needed.
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for r in records {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(&r);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

pub const ACTIVITY_CSV_HEADER: [&str; 5] = ["bucket_start", "event", "method", "result", "count"];
pub const USERS_CSV_HEADER: [&str; 6] = [
    "username",
    "display_name",
    "groups",
    "since",
    "kind",
    "detail",
];

/// The activity as CSV: one record per (bucket, event, method, result), in
/// the rows' order; times in RFC 3339 (UTC).
pub fn activity_csv(rows: &[ActivityRow]) -> String {
    let header = ACTIVITY_CSV_HEADER.map(String::from).to_vec();
    csv_text(std::iter::once(header).chain(rows.iter().map(|r| {
        vec![
            rfc3339(r.bucket_start),
            r.event.clone(),
            r.method.clone().unwrap_or_default(),
            r.result.as_str(),
            r.count.to_string(),
        ]
    })))
}

/// A user report as CSV; groups separated by `; `.
pub fn users_csv(rows: &[UserReportRow]) -> String {
    let header = USERS_CSV_HEADER.map(String::from).to_vec();
    csv_text(std::iter::once(header).chain(rows.iter().map(|r| {
        vec![
            defused(&r.username).into_owned(),
            defused(r.display_name.as_deref().unwrap_or_default()).into_owned(),
            defused(&r.groups.join("; ")).into_owned(),
            r.since.map(rfc3339).unwrap_or_default(),
            r.kind.as_str().into(),
            defused(&r.detail).into_owned(),
        ]
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn period() -> ReportPeriod {
        ReportPeriod::new(
            datetime!(2026-03-01 00:00 UTC),
            datetime!(2026-03-04 00:00 UTC),
            Bucket::Day,
        )
        .unwrap()
    }

    fn row(day: u8, event: &str, result: ResultCode, count: u64) -> ActivityRow {
        ActivityRow {
            bucket_start: datetime!(2026-03-01 00:00 UTC) + Duration::days(i64::from(day)),
            event: event.into(),
            method: Some("oath_token".into()),
            result,
            count,
        }
    }

    fn attr_values<'a>(svg: &'a str, marker: &str) -> Vec<&'a str> {
        svg.match_indices(marker)
            .map(|(i, _)| {
                let rest = &svg[i + marker.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    #[test]
    fn periods_are_whole_buckets_and_bounded() {
        let p = ReportPeriod::new(
            datetime!(2026-03-01 10:30 UTC),
            datetime!(2026-03-02 00:00:01 UTC),
            Bucket::Day,
        )
        .unwrap();
        assert_eq!(p.from(), datetime!(2026-03-01 00:00 UTC));
        assert_eq!(p.to(), datetime!(2026-03-03 00:00 UTC));
        assert_eq!(p.buckets().count(), 2);
        let exact = period();
        assert_eq!(exact.to(), datetime!(2026-03-04 00:00 UTC));
        assert_eq!(exact.buckets().count(), 3);

        let t = datetime!(2026-03-01 00:00 UTC);
        assert!(ReportPeriod::new(t, t, Bucket::Day).is_err());
        assert!(ReportPeriod::new(t, t - Duration::hours(1), Bucket::Hour).is_err());
        assert!(ReportPeriod::new(t, t + Duration::days(366), Bucket::Day).is_ok());
        assert!(ReportPeriod::new(t, t + Duration::days(367), Bucket::Day).is_err());
        assert!(ReportPeriod::new(t, t + Duration::days(14), Bucket::Hour).is_ok());
        assert!(ReportPeriod::new(t, t + Duration::hours(14 * 24 + 1), Bucket::Hour).is_err());
        assert!(ReportPeriod::new(datetime!(1969-12-31 00:00 UTC), t, Bucket::Day).is_err());
        let last = ReportPeriod::last_days(datetime!(2026-03-10 15:00 UTC), 7).unwrap();
        assert_eq!(last.from(), datetime!(2026-03-04 00:00 UTC));
        assert_eq!(last.to(), datetime!(2026-03-11 00:00 UTC));
    }

    #[test]
    fn sign_in_events_are_decisions_once() {
        assert!(is_sign_in("sdk.validate", ResultCode::SuccessPasscode));
        assert!(is_sign_in(
            "primary.password",
            ResultCode::FailedPasswordWrong
        ));
        assert!(is_sign_in("portal.verify", ResultCode::SuccessOathCode));
        assert!(!is_sign_in("portal.verify", ResultCode::SuccessPhoneCall));
        assert!(is_sign_in(
            "sdk.authenticate_start",
            ResultCode::FailedNotEnrolled
        ));
        assert!(!is_sign_in("sdk.authenticate_start", ResultCode::Success));
        assert!(is_sign_in(
            "sdk.authenticate_finish",
            ResultCode::FailedFraudReported
        ));
        assert!(!is_sign_in(
            "sdk.authenticate_answer",
            ResultCode::FailedOathCode
        ));
        assert!(!is_sign_in("user.create", ResultCode::SuccessUserCreated));
    }

    #[test]
    fn svg_totals_equal_the_rows() {
        let rows = vec![
            row(0, "sdk.validate", ResultCode::SuccessPasscode, 3),
            row(0, "sdk.validate", ResultCode::FailedOathCode, 2),
            row(2, "portal.verify", ResultCode::SuccessOathCode, 5),
            // Outside the period: not drawn.
            row(9, "portal.verify", ResultCode::SuccessOathCode, 7),
        ];
        let svg = activity_svg(&rows, &period(), &ChartLabels::activity_english());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#) && svg.contains("<title>Sign-ins</title>"));
        assert!(svg.contains(r#"data-total="10""#));
        assert_eq!(
            attr_values(&svg, r#"<g data-key=""#),
            [
                "2026-03-01T00:00:00Z",
                "2026-03-02T00:00:00Z",
                "2026-03-03T00:00:00Z"
            ]
        );
        let bar_counts: Vec<u64> = svg
            .match_indices("<g data-key=")
            .map(|(i, _)| {
                let g = &svg[i..];
                attr_values(g, r#"data-count=""#)[0].parse().unwrap()
            })
            .collect();
        assert_eq!(bar_counts, [5, 0, 5]);
        assert!(svg.contains("2026-03-01: 3 successes, 2 failures"));
        // The legend sums each series.
        assert!(svg.contains(r#"<g data-series="0" data-count="8">"#));
        assert!(svg.contains(r#"<g data-series="1" data-count="2">"#));
        // Presentation attributes only: nothing a strict CSP or a
        // sanitizer would object to.
        for banned in [
            "style",
            "<script",
            "href",
            "url(",
            "<image",
            "<foreignObject",
        ] {
            assert!(!svg.contains(banned), "{banned} in {svg}");
        }
        assert!(!has_event_handler(&svg), "{svg}");
    }

    /// An attribute ` on…=` (onload, onclick): script in disguise.
    fn has_event_handler(svg: &str) -> bool {
        svg.match_indices(" on").any(|(i, _)| {
            let rest = &svg[i + 3..];
            let name_end = rest
                .find(|c: char| !c.is_ascii_lowercase())
                .unwrap_or(rest.len());
            name_end > 0 && rest[name_end..].starts_with('=')
        })
    }

    #[test]
    fn empty_charts_say_so() {
        let labels = ChartLabels::activity_english();
        let svg = activity_svg(&[], &period(), &labels);
        assert!(svg.contains("No sign-ins in this period"));
        assert!(svg.contains(r#"data-total="0""#));
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "only the legend's swatches"
        );
        let none = bar_chart_svg(&[], &ChartLabels::users_english("Blocked users"));
        assert!(none.contains("Nobody in this report"));
        assert_eq!(
            activity_csv(&[]),
            "bucket_start,event,method,result,count\r\n"
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            xml_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(xml_escape("a\u{1}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
        let labels = ChartLabels {
            title: "<script>alert(1)</script>".into(),
            series: vec!["\"x\" & y".into()],
            no_data: "<none>".into(),
        };
        let bars = vec![Bar {
            key: "k\"><script>".into(),
            label: "<b>".into(),
            values: vec![1],
        }];
        let svg = bar_chart_svg(&bars, &labels);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&quot;x&quot; &amp; y"));
    }

    #[test]
    fn activity_csv_has_one_record_per_row() {
        let mut r = row(1, "sdk.validate", ResultCode::FailedOathCode, 4);
        r.method = None;
        let csv = activity_csv(&[row(0, "sdk.validate", ResultCode::SuccessPasscode, 3), r]);
        assert_eq!(
            csv,
            "bucket_start,event,method,result,count\r\n\
             2026-03-01T00:00:00Z,sdk.validate,oath_token,SUCCESS_PASSCODE,3\r\n\
             2026-03-02T00:00:00Z,sdk.validate,,FAILED_OATH_CODE,4\r\n"
        );
    }

    #[test]
    fn users_csv_quotes_and_defuses() {
        let rows = vec![
            UserReportRow {
                username: "jan".into(),
                display_name: Some("Jan \"JJ\", Jansen".into()),
                groups: vec!["vpn".into(), "staff".into()],
                since: Some(datetime!(2026-03-02 10:00 UTC)),
                kind: UserReportKind::BypassGranted,
                detail: "300 seconds: line\nbreak".into(),
            },
            UserReportRow {
                username: "ann".into(),
                display_name: Some("=HYPERLINK(\"http://x\")".into()),
                groups: vec![],
                since: None,
                kind: UserReportKind::Locked,
                detail: "-1".into(),
            },
        ];
        let csv = users_csv(&rows);
        assert_eq!(
            csv,
            "username,display_name,groups,since,kind,detail\r\n\
             jan,\"Jan \"\"JJ\"\", Jansen\",vpn; staff,2026-03-02T10:00:00Z,bypass_granted,\"300 seconds: line\nbreak\"\r\n\
             ann,\"'=HYPERLINK(\"\"http://x\"\")\",,,locked,'-1\r\n"
        );
        // Read back, the cells are the rows' values.
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[1], "Jan \"JJ\", Jansen");
        assert_eq!(&first[5], "300 seconds: line\nbreak");
    }

    #[test]
    fn user_report_bars_count_rows() {
        let at = |d: u8| UserReportRow {
            username: format!("u{d}"),
            display_name: None,
            groups: vec![],
            since: Some(datetime!(2026-03-01 12:00 UTC) + Duration::days(i64::from(d))),
            kind: UserReportKind::FraudReported,
            detail: String::new(),
        };
        let rows = vec![at(0), at(0), at(2), at(5)];
        let bars = users_bars(&rows, &period());
        assert_eq!(bars.iter().map(Bar::total).collect::<Vec<_>>(), [2, 0, 1]);
        let svg = users_svg(&rows, &period(), &ChartLabels::users_english("Fraud"));
        assert!(svg.contains(r#"data-total="3""#));
        let kinds = kinds_bars(&rows, |k| k.as_str().to_string());
        assert_eq!(kinds.len(), 1);
        assert_eq!(kinds[0].total(), 4);
    }

    #[test]
    fn enrollment_follows_the_methods() {
        use crate::user::{MethodKind, Mode};
        let none = Holdings::default();
        assert_eq!(
            enrollment_gap(None, &none, false).map(|g| g.0),
            Some(UserReportKind::NoMethod)
        );
        let oath = DefaultMethod {
            method: MethodKind::OathToken,
            mode: Mode::Oath,
        };
        assert_eq!(
            enrollment_gap(Some(oath), &none, false).map(|g| g.0),
            Some(UserReportKind::MethodNotReady)
        );
        let one = Holdings {
            oath_tokens: 1,
            ..Holdings::default()
        };
        assert_eq!(enrollment_gap(Some(oath), &one, false), None);
        let call_pin = DefaultMethod {
            method: MethodKind::PhoneCall,
            mode: Mode::Pin,
        };
        let phone = Holdings {
            phone: true,
            ..Holdings::default()
        };
        assert!(enrollment_gap(Some(call_pin), &phone, false).is_some());
        assert_eq!(enrollment_gap(Some(call_pin), &phone, true), None);
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(0), (1, 1));
        assert_eq!(nice_scale(3), (3, 1));
        assert_eq!(nice_scale(7), (8, 2));
        assert_eq!(nice_scale(23), (25, 5));
        assert_eq!(nice_scale(480), (500, 100));
    }
}

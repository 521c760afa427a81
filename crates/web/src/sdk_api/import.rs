//! `POST /sdk/v1/import`: users from a CSV file (the layout of
//! `twofold_core::import`), for the admin console and scripts.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use twofold_core::import::{parse_csv, ImportReport, RowOutcome};
use twofold_core::Error;
use twofold_proto::{ErrorBody, ImportReportView, ImportRowView};

use super::{ApiResult, Caller, SdkState};

/// Rows one request may carry: it must finish within the request time
/// limit. `twofold import csv` takes files of any size.
pub const MAX_ROWS_PER_REQUEST: usize = 5_000;

/// Bytes of CSV one request may carry.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The CSV file: a header line naming the columns, then one user per line.
pub(super) struct CsvFile;

impl utoipa::PartialSchema for CsvFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[Uu][Ss][Ee][Rr][Nn][Aa][Mm][Ee]"))
            .examples([serde_json::json!(
                "username,display_name,email,phone,groups\nalice,Alice Adams,alice@example.org,+31 20 555 0101x204,staff;vpn\n"
            )])
            .into()
    }
}

impl utoipa::ToSchema for CsvFile {}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportParams {
    /// Report what would change without changing anything.
    dry_run: Option<bool>,
}

/// Adds and updates users from a CSV file whose first line names its
/// columns (any of `username`, `display_name`, `email`, `phone`,
/// `extension`, `mobile`, `language`, `method`, `groups`; `username`
/// first). Each user is one transaction; a refused row is reported with its
/// line number and does not stop the others. At most 5,000 rows per request.
#[utoipa::path(post, path = "/sdk/v1/import", tag = "users", operation_id = "import_users", params(ImportParams),
    request_body(content = CsvFile, content_type = "text/csv", description = "The CSV file, UTF-8, with a header line"),
    responses((status = 200, body = ImportReportView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn import(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    q: Result<Query<ImportParams>, QueryRejection>,
    body: Bytes,
) -> ApiResult<Json<ImportReportView>> {
    let Query(p) = q.map_err(|e| Error::invalid("query", e.body_text()))?;
    if body.is_empty() {
        return Err(
            Error::invalid("file", "is missing: send the CSV file as the request body").into(),
        );
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| Error::invalid("file", "is not UTF-8 text"))?;
    // A request says what its columns are: a program that sends the wrong
    // thing (JSON, another layout) is told so instead of having each line
    // refused as a strange username.
    if !text
        .get(..8)
        .is_some_and(|h| h.eq_ignore_ascii_case("username"))
    {
        return Err(Error::invalid(
            "file",
            "must start with a header line naming the columns, e.g. username,display_name,email",
        )
        .into());
    }
    let batch = parse_csv(text)?;
    if batch.rows.len() + batch.refused.len() > MAX_ROWS_PER_REQUEST {
        return Err(Error::invalid(
            "file",
            format!(
                "more than {MAX_ROWS_PER_REQUEST} rows in one request: send it in parts, or use `twofold import csv`"
            ),
        )
        .into());
    }
    let report = s
        .engine
        .import_users(&ctx, batch, p.dry_run.unwrap_or(false), None)
        .await?;
    Ok(Json(view(&report)))
}

fn view(r: &ImportReport) -> ImportReportView {
    let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    ImportReportView {
        dry_run: r.dry_run,
        added: n(r.added),
        updated: n(r.updated),
        unchanged: n(r.unchanged),
        refused: n(r.refused),
        rows: r
            .rows
            .iter()
            .map(|row| {
                let (outcome, fields, message) = match &row.outcome {
                    RowOutcome::Added => ("added", Vec::new(), None),
                    RowOutcome::Updated { fields } => ("updated", fields.clone(), None),
                    RowOutcome::Unchanged => ("unchanged", Vec::new(), None),
                    RowOutcome::Refused { message } => {
                        ("refused", Vec::new(), Some(message.clone()))
                    }
                };
                ImportRowView {
                    line: n(row.line),
                    username: row.username.clone(),
                    outcome: outcome.into(),
                    fields,
                    message,
                }
            })
            .collect(),
    }
}

//! The cohort report as an Excel workbook: the report with coloured status cells and a frozen
//! header row, the standard's criteria in full, and where the figures came from.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_xlsxwriter::{Color, Format, Workbook, XlsxError};

use super::{COLUMNS, ReportQuery, Selection, download, selection};
use crate::error::{AppError, AppResult};
use crate::ids::CohortId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::status::model::CriterionStatus;

fn failed(error: XlsxError) -> AppError {
    AppError::Internal(anyhow::anyhow!(error))
}

fn status_format(status: CriterionStatus) -> Format {
    let rgb = match status {
        CriterionStatus::Met => 0x00EA_F6EE,
        CriterionStatus::Awaiting => 0x00FF_F4D6,
        CriterionStatus::NotMet => 0x00FD_ECEA,
        CriterionStatus::NotStarted => 0x00EC_EEF1,
    };
    Format::new().set_background_color(Color::RGB(rgb))
}

fn col(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(u16::MAX)
}

fn row(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// `GET /admin/cohorts/{id}/report.xlsx`.
pub async fn xlsx(
    State(state): State<AppState>,
    standards: Standards,
    Path(id): Path<CohortId>,
    Query(query): Query<ReportQuery>,
) -> AppResult<Response> {
    let selection = selection(&state, &standards, id, &query).await?;
    let generated = state.clock.now();
    // Building a workbook of thousands of rows is CPU work: off the threads serving requests.
    let (selection, body) = tokio::task::spawn_blocking(move || {
        let body = build(&selection, generated)?;
        Ok::<_, AppError>((selection, body))
    })
    .await
    .map_err(|error| AppError::Internal(anyhow::anyhow!(error)))??;
    Ok(download(
        body,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &selection.cohort,
        &selection.head,
        generated,
        "xlsx",
    ))
}

/// The workbook's bytes. The report sheet is written in constant-memory mode: each row goes
/// to a temporary file as it is written, so memory does not grow with the cohort.
fn build(selection: &Selection, generated: time::OffsetDateTime) -> Result<Vec<u8>, AppError> {
    let Selection {
        cohort,
        standard,
        head,
        kept,
        ..
    } = selection;
    let bold = Format::new().set_bold();
    let mut workbook = Workbook::new();

    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(failed)?
        .set_name("Report")
        .map_err(failed)?;
    for (i, title) in COLUMNS
        .iter()
        .copied()
        .chain(standard.criteria().map(|c| c.code.as_str()))
        .enumerate()
    {
        sheet
            .write_string_with_format(0, col(i), title, &bold)
            .map_err(failed)?;
        sheet
            .set_column_width(col(i), if i < COLUMNS.len() { 18 } else { 11 })
            .map_err(failed)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(failed)?;
    for (i, r) in kept.iter().enumerate() {
        let values = r.values();
        for (j, value) in values.iter().enumerate() {
            sheet
                .write_string(row(i + 1), col(j), value)
                .map_err(failed)?;
        }
        for (j, cell) in r.cells.iter().enumerate() {
            sheet
                .write_string_with_format(
                    row(i + 1),
                    col(COLUMNS.len() + j),
                    cell.as_str(),
                    &status_format(*cell),
                )
                .map_err(failed)?;
        }
    }

    let sheet = workbook
        .add_worksheet()
        .set_name("Criteria")
        .map_err(failed)?;
    sheet
        .write_string_with_format(0, 0, "code", &bold)
        .map_err(failed)?;
    sheet
        .write_string_with_format(0, 1, "text", &bold)
        .map_err(failed)?;
    sheet.set_column_width(1, 100).map_err(failed)?;
    for (i, criterion) in standard.criteria().enumerate() {
        sheet
            .write_string(row(i + 1), 0, &criterion.code)
            .map_err(failed)?;
        sheet
            .write_string(row(i + 1), 1, &criterion.text)
            .map_err(failed)?;
    }

    let sheet = workbook.add_worksheet().set_name("About").map_err(failed)?;
    sheet.set_column_width(1, 70).map_err(failed)?;
    let about = [
        ("cohort", cohort.name.clone()),
        (
            "standard",
            format!("{} ({})", cohort.standard_title, cohort.standard_urn),
        ),
        (
            "generated_at",
            generated
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ),
        ("audit_head", crate::crypto::hex(head)),
        ("enrolments", kept.len().to_string()),
    ];
    for (i, (key, value)) in about.iter().enumerate() {
        sheet
            .write_string_with_format(row(i), 0, *key, &bold)
            .map_err(failed)?;
        sheet.write_string(row(i), 1, value).map_err(failed)?;
    }

    workbook.save_to_buffer().map_err(failed)
}

//! Queries of cohort reports, over the stored statuses: a page (or all) of a cohort's
//! enrolments, and their counts by assessor and status.

use sqlx::PgConnection;
use uuid::Uuid;

use super::ReportRow;
use crate::assessments::status::{CriterionStatus, EnrolmentStatus};

/// Which enrolments of a cohort a report keeps, and in what order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub assessor: Option<Uuid>,
    pub status: Option<EnrolmentStatus>,
    /// Most criteria met first, rather than by name.
    pub by_progress: bool,
}

/// A cohort's enrolments with one assessor at one status.
#[derive(Debug, Clone)]
pub struct Group {
    pub assessor_id: Option<Uuid>,
    pub assessor_name: Option<String>,
    pub status: EnrolmentStatus,
    pub enrolments: i64,
}

/// The cohort's enrolments counted by assessor and status, assessors by name.
pub async fn groups(conn: &mut PgConnection, cohort: Uuid) -> sqlx::Result<Vec<Group>> {
    sqlx::query_as!(
        Group,
        r#"select k.assessor_id, a.display_name as "assessor_name?",
                  k.status as "status: EnrolmentStatus", sum(k.enrolments)::bigint as "enrolments!"
             from enrolment_count k
             left join app_user a on a.user_id = k.assessor_id
            where k.cohort_id = $1 and k.enrolments > 0
            group by k.assessor_id, a.display_name, k.status
            order by lower(a.display_name), k.assessor_id"#,
        cohort
    )
    .fetch_all(conn)
    .await
}

/// The criteria codes and texts of a cohort's standard, in order: the matrix's columns.
pub async fn criteria(
    conn: &mut PgConnection,
    standard: Uuid,
) -> sqlx::Result<Vec<super::Criterion>> {
    sqlx::query_as!(
        super::Criterion,
        "select code, text from criterion where standard_id = $1 order by kind, position",
        standard
    )
    .fetch_all(conn)
    .await
}

/// `limit` enrolments of the cohort from `offset` on, as `filter` keeps and orders them.
pub async fn rows(
    conn: &mut PgConnection,
    cohort: Uuid,
    filter: Filter,
    limit: usize,
    offset: usize,
) -> sqlx::Result<Vec<ReportRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let status = filter.status.map(EnrolmentStatus::as_str);
    // One statement per order rather than one with a conditional order: by name, the page
    // comes straight from an index, read alone; the rows and names are joined to the page.
    macro_rules! page {
        ($order:literal) => {
            sqlx::query!(
                r#"select p.enrolment_id, c.display_name as candidate, c.email, a.display_name as "assessor?",
                          p.assessor_id, i.display_name as "iqa?", p.last_activity_at,
                          p.signed_off_at, sa.display_name as "signed_off_by?",
                          p.verified_at, ri.display_name as "verified_by?",
                          p.status as "status: EnrolmentStatus", p.performance_met, p.performance_total,
                          p.knowledge_met, p.knowledge_total, p.criteria_awaiting,
                          p.criteria_statuses as "cells: Vec<CriterionStatus>"
                     from (select enrolment_id from enrolment_progress p
                            where p.cohort_id = $1 and ($2::uuid is null or p.assessor_id = $2)
                              and ($3::text is null or p.status = $3::text::enrolment_status)
                            order by "# + $order + r#"
                            limit $4 offset $5) page
                     join enrolment_progress p using (enrolment_id)
                     join app_user c on c.user_id = p.candidate_id
                     left join app_user a on a.user_id = p.assessor_id
                     left join app_user i on i.user_id = p.iqa_id
                     left join app_user sa on sa.user_id = p.signed_off_by
                     left join app_user ri on ri.user_id = p.verified_by
                    order by "# + $order + r#""#,
                cohort,
                filter.assessor,
                status,
                limit,
                offset
            )
        };
    }
    let count = |n: i32| usize::try_from(n).unwrap_or(0);
    // The two statements' records are two types with the same fields.
    macro_rules! row {
        ($r:ident) => {
            ReportRow {
                enrolment_id: $r.enrolment_id,
                candidate: $r.candidate,
                email: $r.email,
                assessor: $r.assessor,
                assessor_id: $r.assessor_id,
                iqa: $r.iqa,
                last_activity: $r.last_activity_at,
                signed_off_at: $r.signed_off_at,
                signed_off_by: $r.signed_off_by,
                verified_at: $r.verified_at,
                verified_by: $r.verified_by,
                status: $r.status,
                pc: (count($r.performance_met), count($r.performance_total)),
                k: (count($r.knowledge_met), count($r.knowledge_total)),
                awaiting: count($r.criteria_awaiting),
                cells: $r.cells,
            }
        };
    }
    let rows: Vec<ReportRow> = if filter.by_progress {
        page!("p.performance_met + p.knowledge_met desc, p.candidate_sort_name, p.enrolment_id")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| row!(r))
            .collect()
    } else {
        page!("p.candidate_sort_name, p.enrolment_id")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| row!(r))
            .collect()
    };
    Ok(rows)
}

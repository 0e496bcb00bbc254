//! Queries of cohorts and enrolments.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::identity::{Role, UserId, Viewer};
use crate::ids::{CohortId, EnrolmentId};
use crate::standards::model::StandardId;

#[derive(Debug, Clone)]
pub struct CohortSummary {
    pub id: CohortId,
    pub name: String,
    pub standard_title: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub enrolled: i64,
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<CohortSummary>> {
    sqlx::query_as!(
        CohortSummary,
        r#"select c.cohort_id as id, c.name, s.title as standard_title, c.starts_on, c.ends_on,
                  (select count(*) from enrolment e where e.cohort_id = c.cohort_id and e.withdrawn_at is null) as "enrolled!"
             from cohort c join standard s using (standard_id)
            order by c.starts_on desc, lower(c.name)"#
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct Cohort {
    pub id: CohortId,
    pub name: String,
    pub standard_id: StandardId,
    pub standard_title: String,
    pub standard_urn: String,
    pub starts_on: Date,
    pub ends_on: Date,
}

pub async fn find(conn: &mut PgConnection, id: CohortId) -> sqlx::Result<Option<Cohort>> {
    sqlx::query_as!(
        Cohort,
        r#"select c.cohort_id as id, c.name, c.standard_id, s.title as standard_title, s.urn as standard_urn,
                  c.starts_on, c.ends_on
             from cohort c join standard s using (standard_id)
            where c.cohort_id = $1"#,
        id.0
    )
    .fetch_optional(conn)
    .await
}

/// Why a cohort could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CohortInsertError {
    #[error("a cohort with this name already exists")]
    NameTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn insert(
    conn: &mut PgConnection,
    standard_id: StandardId,
    name: &str,
    starts_on: Date,
    ends_on: Date,
) -> Result<CohortId, CohortInsertError> {
    sqlx::query_scalar!(
        "insert into cohort (standard_id, name, starts_on, ends_on) values ($1, $2, $3, $4) returning cohort_id",
        standard_id.0,
        name,
        starts_on,
        ends_on
    )
    .fetch_one(conn)
    .await
    .map(CohortId)
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cohort_name_key") => CohortInsertError::NameTaken,
        _ => CohortInsertError::Database(e),
    })
}

/// The standards a cohort can be on: the newest version of each.
pub async fn standards(conn: &mut PgConnection) -> sqlx::Result<Vec<(StandardId, String)>> {
    let rows = sqlx::query!(
        r#"select distinct on (urn) standard_id as "standard_id: StandardId", title, urn from standard order by urn, created_at desc"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.standard_id, format!("{} ({})", r.title, r.urn)))
        .collect())
}

/// One enrolment of a cohort, as the cohort page lists it.
#[derive(Debug, Clone)]
pub struct EnrolmentRow {
    pub id: EnrolmentId,
    pub candidate_name: String,
    pub candidate_email: String,
    pub assessor_name: Option<String>,
    pub iqa_name: Option<String>,
    pub withdrawn: bool,
}

pub async fn list_enrolments(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<Vec<EnrolmentRow>> {
    sqlx::query_as!(
        EnrolmentRow,
        r#"select e.enrolment_id as id, c.display_name as candidate_name, c.email as candidate_email,
                  a.display_name as "assessor_name?", i.display_name as "iqa_name?",
                  e.withdrawn_at is not null as "withdrawn!"
             from enrolment e
             join app_user c on c.user_id = e.candidate_id
             left join app_user a on a.user_id = e.assessor_id
             left join app_user i on i.user_id = e.iqa_id
            where e.cohort_id = $1
            order by e.withdrawn_at is not null, lower(c.display_name)"#,
        cohort.0
    )
    .fetch_all(conn)
    .await
}

/// An account that can be picked for a role.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: UserId,
    pub name: String,
    pub email: String,
}

/// Active holders of `role`, by name.
pub async fn people_with_role(conn: &mut PgConnection, role: Role) -> sqlx::Result<Vec<Person>> {
    sqlx::query_as!(
        Person,
        r#"select user_id as id, display_name as name, email from app_user
            where is_active and $1 = any(roles)
            order by lower(display_name)"#,
        role as Role
    )
    .fetch_all(conn)
    .await
}

/// Active candidates not yet enrolled in `cohort`. `not in` is answered with a hash of the
/// cohort's candidates whatever the planner believes: right after a large roster its
/// statistics are stale, and the `not exists` anti join it then chose took a second.
pub async fn candidates_not_in(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<Vec<Person>> {
    sqlx::query_as!(
        Person,
        r#"select user_id as id, display_name as name, email from app_user u
            where is_active and 'candidate' = any(roles)
              and u.user_id not in (select e.candidate_id from enrolment e where e.cohort_id = $1)
            order by lower(display_name)"#,
        cohort.0
    )
    .fetch_all(conn)
    .await
}

/// Enrols `candidates` in `cohort` in one statement, in candidate order (so two at once cannot
/// deadlock); returns each new enrolment with its candidate (one enrolled already is left out).
pub async fn enrol_many(
    conn: &mut PgConnection,
    cohort: CohortId,
    candidates: &[Uuid],
) -> sqlx::Result<Vec<(EnrolmentId, UserId)>> {
    let rows = sqlx::query!(
        r#"insert into enrolment (cohort_id, candidate_id)
           select $1, candidate from unnest($2::uuid[]) as t(candidate) order by candidate
           on conflict (cohort_id, candidate_id) do nothing
           returning enrolment_id as "enrolment_id: EnrolmentId", candidate_id as "candidate_id: UserId""#,
        cohort.0,
        candidates
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.enrolment_id, r.candidate_id))
        .collect())
}

/// Which of `candidates` are enrolled in `cohort` already.
pub async fn enrolled_of(
    conn: &mut PgConnection,
    cohort: CohortId,
    candidates: &[Uuid],
) -> sqlx::Result<Vec<UserId>> {
    sqlx::query_scalar!(
        r#"select candidate_id as "candidate_id: UserId" from enrolment
            where cohort_id = $1 and candidate_id = any($2)"#,
        cohort.0,
        candidates
    )
    .fetch_all(conn)
    .await
}

/// Sets the assessor and IQA of enrolments of `cohort`; returns the ids changed (one that has
/// them already is not, so the same assignment sent twice has one effect). Enrolments whose
/// candidate is the chosen assessor or IQA are left alone and returned apart.
pub async fn assign(
    conn: &mut PgConnection,
    cohort: CohortId,
    enrolments: &[Uuid],
    assessor: Option<UserId>,
    iqa: Option<UserId>,
) -> sqlx::Result<(Vec<Uuid>, Vec<String>)> {
    let conflicts = sqlx::query_scalar!(
        "select u.display_name from enrolment e join app_user u on u.user_id = e.candidate_id
          where e.cohort_id = $1 and e.enrolment_id = any($2)
            and (e.candidate_id = $3 or e.candidate_id = $4)",
        cohort.0,
        enrolments,
        assessor.map(|id| id.0),
        iqa.map(|id| id.0)
    )
    .fetch_all(&mut *conn)
    .await?;
    if !conflicts.is_empty() {
        return Ok((Vec::new(), conflicts));
    }
    let changed = sqlx::query_scalar!(
        "update enrolment set assessor_id = coalesce($3, assessor_id), iqa_id = coalesce($4, iqa_id)
          where cohort_id = $1 and enrolment_id = any($2)
            and (assessor_id is distinct from coalesce($3, assessor_id)
                 or iqa_id is distinct from coalesce($4, iqa_id))
         returning enrolment_id",
        cohort.0,
        enrolments,
        assessor.map(|id| id.0),
        iqa.map(|id| id.0)
    )
    .fetch_all(conn)
    .await?;
    Ok((changed, Vec::new()))
}

/// An enrolment with the people on it, for those who may see it.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub id: EnrolmentId,
    pub cohort_id: CohortId,
    pub cohort_name: String,
    pub standard_id: StandardId,
    pub standard_title: String,
    pub standard_urn: String,
    pub candidate_id: UserId,
    pub candidate_name: String,
    pub assessor_id: Option<UserId>,
    pub assessor_name: Option<String>,
    pub iqa_id: Option<UserId>,
    pub iqa_name: Option<String>,
    pub withdrawn_at: Option<OffsetDateTime>,
    pub withdrawn_reason: Option<String>,
}

impl Enrolment {
    pub fn is_candidate(&self, user: UserId) -> bool {
        self.candidate_id == user
    }

    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn_at.is_some()
    }

    /// `viewer` is this enrolment's assessor and still holds the assessor role: removing the
    /// role ends what the assignment allowed.
    pub fn assessed_by(&self, viewer: Viewer<'_>) -> bool {
        viewer
            .id_as(Role::Assessor)
            .is_some_and(|id| self.assessor_id == Some(id))
    }

    /// `viewer` is this enrolment's IQA and still holds the IQA role.
    pub fn quality_assured_by(&self, viewer: Viewer<'_>) -> bool {
        viewer
            .id_as(Role::Iqa)
            .is_some_and(|id| self.iqa_id == Some(id))
    }
}

/// The enrolment, if `user` may see it: its candidate, assessor or IQA (each holding the role
/// that makes the assignment theirs), or an admin. For anyone else the answer is the same as
/// for an enrolment that does not exist.
pub async fn find_visible(
    conn: &mut PgConnection,
    id: EnrolmentId,
    viewer: Viewer<'_>,
) -> sqlx::Result<Option<Enrolment>> {
    sqlx::query_as!(
        Enrolment,
        r#"select enrolment_id as "id!: EnrolmentId", cohort_id as "cohort_id!: CohortId", cohort_name as "cohort_name!",
                  standard_id as "standard_id!: StandardId", standard_title as "standard_title!",
                  standard_urn as "standard_urn!", candidate_id as "candidate_id!: UserId",
                  candidate_name as "candidate_name!", assessor_id as "assessor_id: UserId", assessor_name,
                  iqa_id as "iqa_id: UserId", iqa_name, withdrawn_at, withdrawn_reason
             from enrolment_detail
            where enrolment_id = $1
              and (candidate_id = $2 or assessor_id = $3 or iqa_id = $4 or $5)"#,
        id.0,
        viewer.uuid_as(Role::Candidate),
        viewer.uuid_as(Role::Assessor),
        viewer.uuid_as(Role::Iqa),
        viewer.has_role(Role::Admin)
    )
    .fetch_optional(conn)
    .await
}

/// The candidate's own enrolments, newest cohort first.
pub async fn list_for_candidate(
    conn: &mut PgConnection,
    candidate: UserId,
) -> sqlx::Result<Vec<Enrolment>> {
    sqlx::query_as!(
        Enrolment,
        r#"select enrolment_id as "id!: EnrolmentId", cohort_id as "cohort_id!: CohortId", cohort_name as "cohort_name!",
                  standard_id as "standard_id!: StandardId", standard_title as "standard_title!",
                  standard_urn as "standard_urn!", candidate_id as "candidate_id!: UserId",
                  candidate_name as "candidate_name!", assessor_id as "assessor_id: UserId", assessor_name,
                  iqa_id as "iqa_id: UserId", iqa_name, withdrawn_at, withdrawn_reason
             from enrolment_detail
            where candidate_id = $1
            order by cohort_starts_on desc"#,
        candidate.0
    )
    .fetch_all(conn)
    .await
}

pub async fn withdraw(
    conn: &mut PgConnection,
    id: EnrolmentId,
    reason: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "update enrolment set withdrawn_at = $2, withdrawn_reason = $3 where enrolment_id = $1 and withdrawn_at is null",
        id.0,
        now,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a shared lock on an enrolment: judging and submitting hold it together, a sign-off
/// (which takes it exclusively, [`lock_for_sign_off`]) waits for them, and they for it.
pub async fn lock_for_assessment(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "select enrolment_id from enrolment where enrolment_id = $1 for share",
        enrolment.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// Takes the enrolment's lock exclusively, as a sign-off does (see [`lock_for_assessment`]);
/// `false` when there is no such enrolment.
pub async fn lock_for_sign_off(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<bool> {
    let found = sqlx::query!(
        "select enrolment_id from enrolment where enrolment_id = $1 for update",
        enrolment.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrolment(assessor: Option<UserId>, iqa: Option<UserId>) -> Enrolment {
        let nil = uuid::Uuid::nil();
        Enrolment {
            id: EnrolmentId(nil),
            cohort_id: CohortId(nil),
            cohort_name: String::new(),
            standard_id: StandardId(nil),
            standard_title: String::new(),
            standard_urn: String::new(),
            candidate_id: UserId(uuid::Uuid::from_u128(9)),
            candidate_name: String::new(),
            assessor_id: assessor,
            assessor_name: None,
            iqa_id: iqa,
            iqa_name: None,
            withdrawn_at: None,
            withdrawn_reason: None,
        }
    }

    #[test]
    fn an_assignment_counts_only_for_its_holder_while_they_hold_its_role() {
        let person = UserId(uuid::Uuid::from_u128(1));
        let viewer = |roles: &'static [Role]| Viewer { id: person, roles };
        let assigned = enrolment(Some(person), Some(person));
        assert!(assigned.assessed_by(viewer(&[Role::Assessor])));
        assert!(!assigned.assessed_by(viewer(&[Role::Iqa])), "role removed");
        assert!(assigned.quality_assured_by(viewer(&[Role::Iqa])));
        assert!(!assigned.quality_assured_by(viewer(&[Role::Admin])));
        // Nobody assigned is nobody's assignment, whatever roles one lacks.
        let unassigned = enrolment(None, None);
        assert!(!unassigned.assessed_by(viewer(&[Role::Candidate])));
        assert!(!unassigned.quality_assured_by(viewer(&[Role::Admin])));
        let other = enrolment(Some(UserId(uuid::Uuid::from_u128(2))), None);
        assert!(!other.assessed_by(viewer(&[Role::Assessor])));
    }
}

//! Queries of evidence, its claims and files.

use std::collections::HashMap;

use sqlx::PgConnection;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::judgements::JudgementInput;
use super::model::{AssessmentMethod, DraftContent, EvidenceState};
use crate::cohorts::db::Enrolment;
use crate::identity::{Role, UserId, Viewer};
use crate::ids::{BlobId, CohortId, EnrolmentId, EvidenceId, FileId, ItemId, SignOffId};
use crate::standards::cache::Published;
use crate::standards::model::StandardId;
use crate::standards::model::{CriterionId, CriterionKind};
use crate::status::db::Progress;
use crate::status::model::{CriterionStatus, EnrolmentStatus};

/// One evidence version, for those who may see it.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub id: EvidenceId,
    pub item_id: ItemId,
    pub version: i32,
    pub enrolment_id: EnrolmentId,
    pub candidate_id: UserId,
    pub state: EvidenceState,
    pub title: String,
    pub statement: String,
    pub method: Option<AssessmentMethod>,
    pub activity_on: Option<Date>,
    pub submitted_at: Option<OffsetDateTime>,
    pub declaration_sha256: Option<Vec<u8>>,
    /// A later version of the same item has been submitted.
    pub superseded: bool,
    /// For a record the assessor made: who made it.
    pub made_by: Option<UserId>,
    pub made_by_name: Option<String>,
    /// When a record was sent to the candidate to confirm.
    pub sent_at: Option<OffsetDateTime>,
}

impl Evidence {
    pub fn is_draft(&self) -> bool {
        self.state == EvidenceState::Draft
    }

    /// Open to the conversation: submitted, or a record sent to the candidate to confirm (who
    /// may say there what is wrong with it).
    pub fn in_conversation(&self) -> bool {
        !self.is_draft() || self.sent_at.is_some()
    }

    /// Made by the assessor, not the candidate.
    pub fn is_record(&self) -> bool {
        self.made_by.is_some()
    }

    /// What the draft holds, as a submission would declare it.
    pub fn content(&self) -> DraftContent {
        DraftContent {
            title: self.title.clone(),
            statement: self.statement.clone(),
            method: self.method,
            activity_on: self.activity_on,
        }
    }
}

/// The evidence version if `user` may see it: a draft its writer (the candidate, or for a
/// record the enrolment's assessor) and a record sent to confirm its candidate; once submitted,
/// the candidate, the enrolment's assessor and IQA, and admins. Anyone else gets the same `None`
/// as for an id that does not exist.
pub async fn find_visible(
    conn: &mut PgConnection,
    id: EvidenceId,
    viewer: Viewer<'_>,
) -> sqlx::Result<Option<Evidence>> {
    sqlx::query_as!(
        Evidence,
        r#"select ev.evidence_id as id, ev.item_id, ev.version, ev.enrolment_id, en.candidate_id,
                  ev.state as "state: EvidenceState", ev.title, ev.statement,
                  ev.method as "method: AssessmentMethod", ev.activity_on, ev.submitted_at, ev.declaration_sha256,
                  (ev.state = 'submitted'
                   and not exists (select 1 from current_evidence cv where cv.evidence_id = ev.evidence_id)) as "superseded!",
                  ev.made_by as "made_by: UserId", maker.display_name as "made_by_name?", ev.sent_at
             from evidence ev
             join enrolment en using (enrolment_id)
             left join app_user maker on maker.user_id = ev.made_by
            where ev.evidence_id = $1
              and (case when ev.made_by is null then en.candidate_id = $2 else en.assessor_id = $3 end
                   or (en.candidate_id = $2 and (ev.state = 'submitted' or ev.sent_at is not null))
                   or (ev.state = 'submitted' and (en.assessor_id = $3 or en.iqa_id = $4 or $5)))"#,
        id.0,
        viewer.uuid_as(Role::Candidate),
        viewer.uuid_as(Role::Assessor),
        viewer.uuid_as(Role::Iqa),
        viewer.has_role(Role::Admin)
    )
    .fetch_optional(conn)
    .await
}

/// A draft `writer` writes, locked for the change about to be made: the candidate's own
/// evidence, or a record when `writer` is the enrolment's assessor. `None` when it is not
/// theirs to write or no longer a draft.
pub async fn lock_own_draft(
    conn: &mut PgConnection,
    id: EvidenceId,
    writer: UserId,
) -> sqlx::Result<Option<(EnrolmentId, ItemId, i32)>> {
    let row = sqlx::query!(
        r#"select ev.enrolment_id as "enrolment_id: EnrolmentId", ev.item_id as "item_id: ItemId", ev.version
             from evidence ev join enrolment en using (enrolment_id)
            where ev.evidence_id = $1 and ev.state = 'draft' and en.withdrawn_at is null
              and case when ev.made_by is null then en.candidate_id else en.assessor_id end = $2
              for update of ev"#,
        id.0,
        writer.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.enrolment_id, r.item_id, r.version)))
}

/// Locks enrolment `id` against withdrawal or reassignment until the transaction ends, if
/// `writer` may still write new evidence on it: its candidate, or for a record its assessor,
/// while it is not withdrawn. `false` when they may not.
pub async fn lock_writable_enrolment(
    conn: &mut PgConnection,
    id: EnrolmentId,
    writer: UserId,
    record: bool,
) -> sqlx::Result<bool> {
    let row = sqlx::query_scalar!(
        r#"select 1 as "found!" from enrolment
            where enrolment_id = $1 and withdrawn_at is null
              and case when $3 then assessor_id else candidate_id end = $2
              for share"#,
        id.0,
        writer.0,
        record
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// A new draft: the first version of a new item, or version `version` of `item`.
pub async fn insert_draft(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
    item: ItemId,
    version: i32,
) -> sqlx::Result<EvidenceId> {
    sqlx::query_scalar!(
        r#"insert into evidence (evidence_id, item_id, version, enrolment_id) values ($1, $2, $3, $4) returning evidence_id as "evidence_id: EvidenceId""#,
        Uuid::now_v7(),
        item.0,
        version,
        enrolment.0
    )
    .fetch_one(conn)
    .await
}

pub async fn update_draft(
    conn: &mut PgConnection,
    id: EvidenceId,
    content: &DraftContent,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update evidence set title = $2, statement = $3, method = $4, activity_on = $5, updated_at = $6
          where evidence_id = $1 and state = 'draft'",
        id.0,
        content.title,
        content.statement,
        content.method as Option<AssessmentMethod>,
        content.activity_on,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a draft's claims with `claims` (criterion, note), keeping only criteria of the
/// enrolment's standard.
pub async fn replace_claims(
    conn: &mut PgConnection,
    id: EvidenceId,
    claims: &[(Uuid, String)],
) -> sqlx::Result<()> {
    sqlx::query!("delete from evidence_claim where evidence_id = $1", id.0)
        .execute(&mut *conn)
        .await?;
    let criteria: Vec<Uuid> = claims.iter().map(|(c, _)| *c).collect();
    let notes: Vec<String> = claims.iter().map(|(_, n)| n.clone()).collect();
    sqlx::query!(
        r#"insert into evidence_claim (evidence_id, criterion_id, note)
           select $1, claim.criterion_id, claim.note
             from unnest($2::uuid[], $3::text[]) as claim(criterion_id, note)
             join criterion c on c.criterion_id = claim.criterion_id
             join cohort co on co.standard_id = c.standard_id
             join enrolment en on en.cohort_id = co.cohort_id
             join evidence ev on ev.enrolment_id = en.enrolment_id and ev.evidence_id = $1
           on conflict do nothing"#,
        id.0,
        &criteria,
        &notes
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A claim of an evidence version.
#[derive(Debug, Clone)]
pub struct Claim {
    pub criterion_id: Uuid,
    pub kind: CriterionKind,
    pub code: String,
    pub text: String,
    pub note: String,
}

pub async fn list_claims(conn: &mut PgConnection, id: EvidenceId) -> sqlx::Result<Vec<Claim>> {
    sqlx::query_as!(
        Claim,
        r#"select c.criterion_id, c.kind as "kind: CriterionKind", c.code, c.text, cl.note
             from evidence_claim cl join criterion c using (criterion_id)
            where cl.evidence_id = $1
            order by c.kind, c.position"#,
        id.0
    )
    .fetch_all(conn)
    .await
}

/// A file of an evidence version.
#[derive(Debug, Clone)]
pub struct EvidenceFile {
    pub id: FileId,
    pub blob_id: BlobId,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Vec<u8>,
}

impl EvidenceFile {
    /// The stored file as `blobs::read` checks it.
    pub fn stored(&self) -> crate::blobs::Stored {
        crate::blobs::Stored {
            blob_id: self.blob_id,
            size_bytes: self.size_bytes,
            sha256: self.sha256.clone(),
        }
    }
}

pub async fn list_files(
    conn: &mut PgConnection,
    id: EvidenceId,
) -> sqlx::Result<Vec<EvidenceFile>> {
    sqlx::query_as!(
        EvidenceFile,
        r#"select f.evidence_file_id as id, f.blob_id, f.file_name, b.content_type, b.size_bytes, b.sha256
             from evidence_file f join blob b using (blob_id)
            where f.evidence_id = $1
            order by f.created_at, f.evidence_file_id"#,
        id.0
    )
    .fetch_all(conn)
    .await
}

pub async fn insert_file(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    blob: BlobId,
    file_name: &str,
) -> sqlx::Result<FileId> {
    sqlx::query_scalar!(
        r#"insert into evidence_file (evidence_id, blob_id, file_name) values ($1, $2, $3) returning evidence_file_id as "evidence_file_id: FileId""#,
        evidence.0,
        blob.0,
        file_name
    )
    .fetch_one(conn)
    .await
}

/// Removes a file from a draft; the stored bytes stay while anything else refers to them.
pub async fn delete_file(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    file: FileId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "delete from evidence_file where evidence_id = $1 and evidence_file_id = $2 returning file_name",
        evidence.0,
        file.0
    )
    .fetch_optional(conn)
    .await
}

pub async fn mark_submitted(
    conn: &mut PgConnection,
    id: EvidenceId,
    declaration: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update evidence set state = 'submitted', submitted_at = $2, declaration_sha256 = $3, updated_at = $2
          where evidence_id = $1 and state = 'draft'",
        id.0,
        now,
        &declaration[..]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A record sent to `candidate` to confirm, locked for their confirmation; `None` when there is
/// no such record waiting for them.
pub async fn lock_sent_record(
    conn: &mut PgConnection,
    id: EvidenceId,
    candidate: UserId,
) -> sqlx::Result<Option<EvidenceId>> {
    sqlx::query_scalar!(
        r#"select ev.evidence_id as "id: EvidenceId"
             from evidence ev join enrolment en using (enrolment_id)
            where ev.evidence_id = $1 and ev.state = 'draft' and ev.sent_at is not null
              and en.candidate_id = $2 and en.withdrawn_at is null
              for update of ev"#,
        id.0,
        candidate.0
    )
    .fetch_optional(conn)
    .await
}

/// Whether the conversation has a comment on this version.
pub async fn has_comments(conn: &mut PgConnection, id: EvidenceId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from evidence_comment where evidence_id = $1) as "yes!""#,
        id.0
    )
    .fetch_one(conn)
    .await
}

/// Marks a draft as a record made by `assessor`.
pub async fn mark_record(
    conn: &mut PgConnection,
    id: EvidenceId,
    assessor: UserId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update evidence set made_by = $2 where evidence_id = $1 and state = 'draft'",
        id.0,
        assessor.0
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a record as sent to its candidate to confirm, unless it was sent already.
pub async fn mark_sent(
    conn: &mut PgConnection,
    id: EvidenceId,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update evidence set sent_at = coalesce(sent_at, $2)
          where evidence_id = $1 and state = 'draft' and made_by is not null",
        id.0,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_draft(conn: &mut PgConnection, id: EvidenceId) -> sqlx::Result<()> {
    sqlx::query!(
        "delete from evidence where evidence_id = $1 and state = 'draft'",
        id.0
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Version `n + 1` of a submitted version's item as a draft with the same text and files, and
/// the claims not met. `None` when the item already has a newer version.
pub async fn start_revision(
    conn: &mut PgConnection,
    from: &Evidence,
) -> sqlx::Result<Option<EvidenceId>> {
    let newest: i32 = sqlx::query_scalar!(
        r#"select max(version) as "v!" from evidence where item_id = $1"#,
        from.item_id.0
    )
    .fetch_one(&mut *conn)
    .await?;
    if newest != from.version {
        return Ok(None);
    }
    let id = insert_draft(conn, from.enrolment_id, from.item_id, from.version + 1).await?;
    sqlx::query!(
        "update evidence set (title, statement, method, activity_on) =
                (select title, statement, method, activity_on from evidence where evidence_id = $2)
          where evidence_id = $1",
        id.0,
        from.id.0
    )
    .execute(&mut *conn)
    .await?;
    // Claims already met are kept on the version that met them: the draft starts with the
    // others, for the candidate to work on. Those left out are noted, in case they are no
    // longer met when the draft is submitted.
    sqlx::query!(
        "insert into revision_left_out (evidence_id, criterion_id, note)
         select $1, ec.criterion_id, ec.note from evidence_claim ec
          where ec.evidence_id = $2
            and exists (select 1 from latest_judgement lj
                         where lj.evidence_id = ec.evidence_id and lj.criterion_id = ec.criterion_id
                           and lj.met)",
        id.0,
        from.id.0
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into evidence_claim (evidence_id, criterion_id, note)
         select $1, ec.criterion_id, ec.note from evidence_claim ec
          where ec.evidence_id = $2
            and not exists (select 1 from latest_judgement lj
                             where lj.evidence_id = ec.evidence_id and lj.criterion_id = ec.criterion_id
                               and lj.met)",
        id.0,
        from.id.0
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into evidence_file (evidence_id, blob_id, file_name, created_at)
         select $1, blob_id, file_name, created_at from evidence_file where evidence_id = $2",
        id.0,
        from.id.0
    )
    .execute(conn)
    .await?;
    Ok(Some(id))
}

/// Claims the criteria a revision draft left out as met that are no longer met on the version
/// it revises; returns how many it claimed again.
pub async fn reclaim_left_out(conn: &mut PgConnection, draft: EvidenceId) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "insert into evidence_claim (evidence_id, criterion_id, note)
         select evidence_id, criterion_id, note from revision_no_longer_met
          where evidence_id = $1
         on conflict do nothing",
        draft.0
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The criteria a revision draft left out as met that are no longer met: its submission
/// claims them again.
pub async fn no_longer_met(
    conn: &mut PgConnection,
    draft: EvidenceId,
) -> sqlx::Result<Vec<CriterionId>> {
    sqlx::query_scalar!(
        r#"select criterion_id as "id!: CriterionId" from revision_no_longer_met
            where evidence_id = $1"#,
        draft.0
    )
    .fetch_all(conn)
    .await
}

/// The newest draft of an item, if one is being written.
pub async fn open_draft_of_item(
    conn: &mut PgConnection,
    item: ItemId,
) -> sqlx::Result<Option<EvidenceId>> {
    sqlx::query_scalar!(
        r#"select evidence_id as "evidence_id: EvidenceId" from evidence where item_id = $1 and state = 'draft'"#,
        item.0
    )
    .fetch_optional(conn)
    .await
}

/// A version of an item, for the history.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub id: EvidenceId,
    pub item_id: ItemId,
    pub version: i32,
    pub title: String,
    pub state: EvidenceState,
    pub method: Option<AssessmentMethod>,
    pub submitted_at: Option<OffsetDateTime>,
    pub superseded: bool,
    /// The criteria it claims, in the standard's order, and their codes.
    pub claimed: Vec<CriterionId>,
    pub claims: Vec<String>,
    /// Superseded, with claims whose latest judgement is met: those criteria stay met.
    pub kept: Vec<CriterionId>,
    /// How many of its claims have a judgement.
    pub judged: i64,
    /// A record the assessor made, and for a draft record whether it was sent to confirm.
    pub record: bool,
    pub sent: bool,
}

impl VersionSummary {
    /// Submitted and not superseded: the version a criterion's status is judged on.
    pub fn is_current(&self) -> bool {
        self.state == EvidenceState::Submitted && !self.superseded
    }

    /// How far the assessor has got with a current version: `None` before any judgement.
    pub fn assessment_state(&self) -> Option<&'static str> {
        if !self.is_current() || self.judged == 0 {
            None
        } else if usize::try_from(self.judged).unwrap_or(0) < self.claimed.len() {
            Some("Partly assessed")
        } else {
            Some("Assessed")
        }
    }
}

/// A version as read, before its claims are put in the standard's order and named.
pub struct VersionRow {
    pub evidence_id: EvidenceId,
    pub item_id: ItemId,
    pub version: i32,
    pub title: String,
    pub state: EvidenceState,
    pub method: Option<AssessmentMethod>,
    pub submitted_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub superseded: bool,
    pub claimed: Vec<CriterionId>,
    pub kept: Vec<CriterionId>,
    pub judged: i64,
    pub record: bool,
    pub sent: bool,
}

/// Every version of every item of an enrolment (or of `only_item`) that `viewer` may see,
/// newest item first and each item's newest version first: drafts only to their writer, and
/// records sent to confirm to their candidate. Claims are named by the codes of `standard`,
/// the enrolment's standard version.
pub async fn list_for_enrolment(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
    viewer: UserId,
    only_item: Option<ItemId>,
    standard: &Published,
) -> sqlx::Result<Vec<VersionSummary>> {
    let rows = sqlx::query_as!(
        VersionRow,
        r#"select ev.evidence_id as "evidence_id: EvidenceId", ev.item_id as "item_id: ItemId", ev.version, ev.title, ev.state as "state: EvidenceState",
                  ev.method as "method: AssessmentMethod", ev.submitted_at, ev.created_at,
                  (ev.state = 'submitted' and cv.evidence_id is null) as "superseded!",
                  array(select cl.criterion_id from evidence_claim cl
                         where cl.evidence_id = ev.evidence_id) as "claimed!: Vec<CriterionId>",
                  case when ev.state = 'submitted' and cv.evidence_id is null
                       then array(select lj.criterion_id from latest_judgement lj
                                   where lj.evidence_id = ev.evidence_id and lj.met)
                       else '{}' end as "kept!: Vec<CriterionId>",
                  (select count(distinct j.criterion_id) from judgement j
                    where j.evidence_id = ev.evidence_id) as "judged!",
                  ev.made_by is not null as "record!", ev.sent_at is not null as "sent!"
             from evidence ev
             join enrolment en using (enrolment_id)
             left join current_evidence cv using (evidence_id)
            where ev.enrolment_id = $1
              and (ev.state = 'submitted'
                   or case when ev.made_by is null then en.candidate_id else en.assessor_id end = $2
                   or (ev.sent_at is not null and en.candidate_id = $2))
              and ($3::uuid is null or ev.item_id = $3)"#,
        enrolment.0,
        viewer.0,
        only_item.map(|item| item.0)
    )
    .fetch_all(conn)
    .await?;
    Ok(summarise(rows, standard))
}

/// The history of `rows`: newest item first and each item's newest version first, claims in
/// the order of `standard` and named by its codes.
pub fn summarise(rows: Vec<VersionRow>, standard: &Published) -> Vec<VersionSummary> {
    // An item is as old as its first version; every version of an item is in the list when
    // its first is (a draft is only ever an item's newest version).
    let mut begun: HashMap<ItemId, OffsetDateTime> = HashMap::new();
    for row in &rows {
        begun
            .entry(row.item_id)
            .and_modify(|at| *at = (*at).min(row.created_at))
            .or_insert(row.created_at);
    }
    // Each criterion's place in the standard and its code.
    let criteria: HashMap<CriterionId, (usize, &str)> = standard
        .criteria()
        .enumerate()
        .map(|(place, c)| (c.id, (place, c.code.as_str())))
        .collect();
    let mut versions: Vec<(OffsetDateTime, VersionSummary)> = rows
        .into_iter()
        .map(|row| {
            let mut claimed = row.claimed;
            claimed.sort_by_key(|id| criteria.get(id).map(|(place, _)| *place));
            let claims = claimed
                .iter()
                .filter_map(|id| criteria.get(id).map(|(_, code)| (*code).to_owned()))
                .collect();
            (
                begun[&row.item_id],
                VersionSummary {
                    id: row.evidence_id,
                    item_id: row.item_id,
                    version: row.version,
                    title: row.title,
                    state: row.state,
                    method: row.method,
                    submitted_at: row.submitted_at,
                    superseded: row.superseded,
                    claimed,
                    claims,
                    kept: row.kept,
                    judged: row.judged,
                    record: row.record,
                    sent: row.sent,
                },
            )
        })
        .collect();
    versions.sort_by(|(a_begun, a), (b_begun, b)| {
        b_begun
            .cmp(a_begun)
            .then(a.item_id.cmp(&b.item_id))
            .then(b.version.cmp(&a.version))
    });
    versions.into_iter().map(|(_, v)| v).collect()
}

/// What a portfolio page is drawn from, read in one statement: a page costs a round trip
/// to the database per statement, and this page is the one candidates open most.
pub struct PortfolioReading {
    /// The enrolment's stored status; `None` before it has one.
    pub progress: Option<Progress>,
    /// Its evidence versions: drafts too when the viewer writes them (see [`list_for_enrolment`]).
    pub versions: Vec<VersionRow>,
    /// Each time the number of criteria met changed: when, and to what.
    pub met_history: Vec<(OffsetDateTime, i32)>,
}

/// Enrolment `id`, if `viewer` may see it, and the revision of its portfolio: what a page
/// kept in memory is checked against.
pub async fn portfolio_revision(
    conn: &mut PgConnection,
    id: EnrolmentId,
    viewer: Viewer<'_>,
) -> sqlx::Result<Option<(Enrolment, Option<i64>)>> {
    let row = sqlx::query!(
        r#"select e.enrolment_id as "id!: EnrolmentId", e.cohort_id as "cohort_id!: CohortId", e.cohort_name as "cohort_name!",
                  e.standard_id as "standard_id!: StandardId", e.standard_title as "standard_title!",
                  e.standard_urn as "standard_urn!", e.candidate_id as "candidate_id!: UserId",
                  e.candidate_name as "candidate_name!", e.assessor_id as "assessor_id: UserId", e.assessor_name,
                  e.iqa_id as "iqa_id: UserId", e.iqa_name, e.withdrawn_at, e.withdrawn_reason,
                  p.revision as "revision?"
             from enrolment_detail e
             left join enrolment_progress p using (enrolment_id)
            where e.enrolment_id = $1
              and (e.candidate_id = $2 or e.assessor_id = $3 or e.iqa_id = $4 or $5)"#,
        id.0,
        viewer.uuid_as(Role::Candidate),
        viewer.uuid_as(Role::Assessor),
        viewer.uuid_as(Role::Iqa),
        viewer.has_role(Role::Admin)
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        (
            Enrolment {
                id: r.id,
                cohort_id: r.cohort_id,
                cohort_name: r.cohort_name,
                standard_id: r.standard_id,
                standard_title: r.standard_title,
                standard_urn: r.standard_urn,
                candidate_id: r.candidate_id,
                candidate_name: r.candidate_name,
                assessor_id: r.assessor_id,
                assessor_name: r.assessor_name,
                iqa_id: r.iqa_id,
                iqa_name: r.iqa_name,
                withdrawn_at: r.withdrawn_at,
                withdrawn_reason: r.withdrawn_reason,
            },
            r.revision,
        )
    }))
}

/// The stored progress of enrolment `id`, if `viewer` may see it, and the evidence versions
/// `viewer` may see (the enrolment itself is read by [`portfolio_revision`]).
pub async fn read_portfolio(
    conn: &mut PgConnection,
    id: EnrolmentId,
    viewer: Viewer<'_>,
) -> sqlx::Result<Option<PortfolioReading>> {
    let rows = sqlx::query!(
        r#"select e.enrolment_id as "id!: EnrolmentId", p.status as "status?: EnrolmentStatus", p.performance_met as "performance_met?",
                  p.performance_total as "performance_total?", p.knowledge_met as "knowledge_met?",
                  p.knowledge_total as "knowledge_total?", p.criteria_awaiting as "criteria_awaiting?",
                  p.criteria_not_met as "criteria_not_met?",
                  p.standing_sign_off_id as "standing_sign_off_id: SignOffId", p.iqa_disagreed as "iqa_disagreed?",
                  p.criteria_statuses as "criteria_statuses?: Vec<CriterionStatus>",
                  coalesce(hist.at, '{}') as "met_history_at!: Vec<OffsetDateTime>",
                  coalesce(hist.met, '{}') as "met_history!: Vec<i32>",
                  v.evidence_id as "evidence_id?: EvidenceId", v.item_id as "item_id?: ItemId", v.version as "version?",
                  v.title as "title?", v.state as "state?: EvidenceState", v.method as "method: AssessmentMethod",
                  v.submitted_at, v.created_at as "created_at?", v.superseded as "superseded?",
                  v.claimed as "claimed?: Vec<CriterionId>", v.kept as "kept?: Vec<CriterionId>", v.judged as "judged?",
                  v.record as "record?", v.sent as "sent?"
             from enrolment e
             left join enrolment_progress p using (enrolment_id)
             -- Read once for the enrolment, beside each of its versions.
             left join lateral (
                 select array_agg(h.at order by h.at, h.history_id) as at,
                        array_agg(h.criteria_met order by h.at, h.history_id) as met
                   from enrolment_met_history h where h.enrolment_id = e.enrolment_id
             ) hist on true
             left join lateral (
                 select ev.evidence_id, ev.item_id, ev.version, ev.title, ev.state, ev.method, ev.submitted_at,
                        ev.created_at, (ev.state = 'submitted' and cv.evidence_id is null) as superseded,
                        array(select cl.criterion_id from evidence_claim cl
                               where cl.evidence_id = ev.evidence_id) as claimed,
                        case when ev.state = 'submitted' and cv.evidence_id is null
                             then array(select lj.criterion_id from latest_judgement lj
                                         where lj.evidence_id = ev.evidence_id and lj.met)
                             else '{}' end as kept,
                        (select count(distinct j.criterion_id) from judgement j
                          where j.evidence_id = ev.evidence_id) as judged,
                        ev.made_by is not null as record, ev.sent_at is not null as sent
                   from evidence ev
                   left join current_evidence cv using (evidence_id)
                  where ev.enrolment_id = e.enrolment_id
                    and (ev.state = 'submitted'
                         or case when ev.made_by is null then e.candidate_id = $2 else e.assessor_id = $3 end
                         or (ev.sent_at is not null and e.candidate_id = $2))
             ) v on true
            where e.enrolment_id = $1
              and (e.candidate_id = $2 or e.assessor_id = $3 or e.iqa_id = $4 or $5)"#,
        id.0,
        viewer.uuid_as(Role::Candidate),
        viewer.uuid_as(Role::Assessor),
        viewer.uuid_as(Role::Iqa),
        viewer.has_role(Role::Admin)
    )
    .fetch_all(conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let progress = first.status.map(|status| Progress {
        enrolment_id: first.id,
        status,
        performance_met: first.performance_met.unwrap_or_default(),
        performance_total: first.performance_total.unwrap_or_default(),
        knowledge_met: first.knowledge_met.unwrap_or_default(),
        knowledge_total: first.knowledge_total.unwrap_or_default(),
        criteria_awaiting: first.criteria_awaiting.unwrap_or_default(),
        criteria_not_met: first.criteria_not_met.unwrap_or_default(),
        standing_sign_off_id: first.standing_sign_off_id,
        iqa_disagreed: first.iqa_disagreed.unwrap_or_default(),
        criteria_statuses: first.criteria_statuses.clone().unwrap_or_default(),
    });
    let met_history = first
        .met_history_at
        .iter()
        .copied()
        .zip(first.met_history.iter().copied())
        .collect();
    let versions = rows
        .into_iter()
        .filter_map(|row| {
            Some(VersionRow {
                evidence_id: row.evidence_id?,
                item_id: row.item_id?,
                version: row.version?,
                title: row.title?,
                state: row.state?,
                method: row.method,
                submitted_at: row.submitted_at,
                created_at: row.created_at?,
                superseded: row.superseded?,
                claimed: row.claimed?,
                kept: row.kept?,
                judged: row.judged?,
                record: row.record?,
                sent: row.sent?,
            })
        })
        .collect();
    Ok(Some(PortfolioReading {
        progress,
        versions,
        met_history,
    }))
}

/// Bytes already attached to a draft, for the per-evidence limit.
pub async fn attached_bytes(conn: &mut PgConnection, id: EvidenceId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select coalesce(sum(b.size_bytes), 0)::bigint as "n!" from evidence_file f join blob b using (blob_id) where f.evidence_id = $1"#,
        id.0
    )
    .fetch_one(conn)
    .await
}

/// The criteria of the enrolment's standard, for the claim checkboxes.
#[derive(Debug, Clone)]
pub struct CriterionChoice {
    pub id: Uuid,
    pub kind: CriterionKind,
    pub code: String,
    pub text: String,
}

pub async fn criteria_for_enrolment(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<CriterionChoice>> {
    sqlx::query_as!(
        CriterionChoice,
        r#"select c.criterion_id as id, c.kind as "kind: CriterionKind", c.code, c.text
             from enrolment en join cohort co using (cohort_id) join criterion c on c.standard_id = co.standard_id
            where en.enrolment_id = $1
            order by c.kind, c.position"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// The item and version of an evidence version.
pub async fn item_and_version(
    conn: &mut PgConnection,
    id: EvidenceId,
) -> sqlx::Result<(ItemId, i32)> {
    let row = sqlx::query!(
        r#"select item_id as "item_id: ItemId", version from evidence where evidence_id = $1"#,
        id.0
    )
    .fetch_one(conn)
    .await?;
    Ok((row.item_id, row.version))
}

/// Locks the newest version of an item, so that revisions of one item take turns.
pub async fn lock_newest_version(conn: &mut PgConnection, item: ItemId) -> sqlx::Result<()> {
    sqlx::query!(
        "select evidence_id from evidence where item_id = $1 order by version desc limit 1 for update",
        item.0
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// The latest judgement of a claim.
#[derive(Debug, Clone)]
pub struct LatestJudgement {
    pub criterion_id: Uuid,
    pub met: bool,
    pub feedback: String,
    pub checks: [bool; 5],
    pub assessor_name: String,
    pub created_at: OffsetDateTime,
    /// How many judgements this claim has had.
    pub count: i64,
    /// It reverses a met that was kept after a revision; `feedback` is the reason.
    pub reverses_kept: bool,
}

/// The submitted version `version` of item `item`, if there is one.
pub async fn submitted_version(
    conn: &mut PgConnection,
    item: ItemId,
    version: i32,
) -> sqlx::Result<Option<EvidenceId>> {
    sqlx::query_scalar!(
        r#"select evidence_id as "id: EvidenceId" from evidence
            where item_id = $1 and version = $2 and state = 'submitted'"#,
        item.0,
        version
    )
    .fetch_optional(conn)
    .await
}

/// How many judgements version `evidence` has had: it only ever grows.
pub async fn count_judgements(conn: &mut PgConnection, evidence: EvidenceId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from judgement where evidence_id = $1"#,
        evidence.0
    )
    .fetch_one(conn)
    .await
}

/// The latest judgement of every claim of an evidence version, in criterion id order.
pub async fn latest_judgements(
    conn: &mut PgConnection,
    evidence: EvidenceId,
) -> sqlx::Result<Vec<LatestJudgement>> {
    let rows = sqlx::query!(
        r#"select lj.criterion_id as "criterion_id!", lj.met as "met!", lj.feedback as "feedback!",
                  lj.valid as "valid!", lj.authentic as "authentic!", lj.current as "current!",
                  lj.sufficient as "sufficient!", lj.reliable as "reliable!", u.display_name,
                  lj.created_at as "created_at!", lj.reverses_kept as "reverses_kept!",
                  (select count(*) from judgement j
                    where j.evidence_id = lj.evidence_id and j.criterion_id = lj.criterion_id) as "count!"
             from latest_judgement lj join app_user u on u.user_id = lj.assessor_id
            where lj.evidence_id = $1
            order by lj.criterion_id"#,
        evidence.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LatestJudgement {
            criterion_id: r.criterion_id,
            met: r.met,
            feedback: r.feedback,
            checks: [r.valid, r.authentic, r.current, r.sufficient, r.reliable],
            assessor_name: r.display_name,
            created_at: r.created_at,
            count: r.count,
            reverses_kept: r.reverses_kept,
        })
        .collect())
}

/// Appends an assessor's judgements of an evidence version, one per input, in their order; an
/// input without a decision is stored as not met.
pub async fn insert_judgements(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    assessor: UserId,
    inputs: &[JudgementInput],
) -> sqlx::Result<()> {
    let check = |i: usize| inputs.iter().map(|j| j.checks[i]).collect::<Vec<bool>>();
    sqlx::query!(
        "insert into judgement (evidence_id, criterion_id, assessor_id, met, feedback,
                                valid, authentic, current, sufficient, reliable)
         select $1, t.criterion_id, $2, t.met, t.feedback, t.valid, t.authentic, t.current, t.sufficient, t.reliable
           from unnest($3::uuid[], $4::bool[], $5::text[], $6::bool[], $7::bool[], $8::bool[], $9::bool[], $10::bool[])
                with ordinality as t(criterion_id, met, feedback, valid, authentic, current, sufficient, reliable, n)
          order by t.n",
        evidence.0,
        assessor.0,
        &inputs.iter().map(|i| i.criterion_id).collect::<Vec<_>>(),
        &inputs.iter().map(|i| i.met == Some(true)).collect::<Vec<_>>(),
        &inputs.iter().map(|i| i.feedback.clone()).collect::<Vec<_>>(),
        &check(0),
        &check(1),
        &check(2),
        &check(3),
        &check(4),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends the judgement that reverses a met kept on superseded version `evidence`: not met,
/// with `reason` as its feedback and no checks.
pub async fn insert_reversal(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    criterion: Uuid,
    assessor: UserId,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into judgement (evidence_id, criterion_id, assessor_id, met, feedback, valid, authentic,
                                current, sufficient, reliable, reverses_kept)
         values ($1, $2, $3, false, $4, false, false, false, false, false, true)",
        evidence.0,
        criterion,
        assessor.0,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A comment in the conversation on a piece of evidence.
#[derive(Debug, Clone)]
pub struct Comment {
    pub author_name: String,
    /// candidate, assessor or iqa.
    pub author_part: String,
    /// The version it was written on.
    pub version: i32,
    pub body: String,
    pub created_at: OffsetDateTime,
}

impl Comment {
    /// The author's part in words.
    pub fn part_label(&self) -> &'static str {
        match self.author_part.as_str() {
            "candidate" => "Candidate",
            "assessor" => "Assessor",
            _ => "Internal quality assurer",
        }
    }
}

/// The conversation on item `item`, oldest first.
pub async fn comments_of_item(conn: &mut PgConnection, item: ItemId) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as!(
        Comment,
        r#"select u.display_name as author_name, c.author_part, ev.version, c.body, c.created_at
             from evidence_comment c
             join app_user u on u.user_id = c.author_id
             join evidence ev on ev.evidence_id = c.evidence_id
            where c.item_id = $1
            order by c.created_at, c.comment_id"#,
        item.0
    )
    .fetch_all(conn)
    .await
}

/// Adds a comment by `author`, whose part in the enrolment is `part`, on version `evidence` of
/// item `item`.
pub async fn insert_comment(
    conn: &mut PgConnection,
    item: ItemId,
    evidence: EvidenceId,
    author: UserId,
    part: &str,
    body: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into evidence_comment (item_id, evidence_id, author_id, author_part, body)
         values ($1, $2, $3, $4, $5)",
        item.0,
        evidence.0,
        author.0,
        part,
        body
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A request to a witness to confirm a piece of evidence, with their answer once given.
#[derive(Debug, Clone)]
pub struct WitnessRequest {
    pub id: Uuid,
    pub witness_name: String,
    pub witness_email: String,
    pub witness_role: String,
    pub requested_at: OffsetDateTime,
    /// When the link the assessor made stops working; `None` before they made one.
    pub expires_at: Option<OffsetDateTime>,
    pub answered_at: Option<OffsetDateTime>,
    /// `Some(true)` confirmed as written, `Some(false)` with corrections.
    pub confirmed: Option<bool>,
    pub corrections: String,
    pub signed_name: Option<String>,
}

impl WitnessRequest {
    /// Its link has run out unanswered by `now`.
    pub fn is_expired(&self, now: &OffsetDateTime) -> bool {
        self.answered_at.is_none() && self.expires_at.is_some_and(|at| at <= *now)
    }
}

/// The witness requests of version `evidence`, oldest first.
pub async fn witness_requests(
    conn: &mut PgConnection,
    evidence: EvidenceId,
) -> sqlx::Result<Vec<WitnessRequest>> {
    sqlx::query_as!(
        WitnessRequest,
        r#"select witness_request_id as id, witness_name, witness_email, witness_role, requested_at,
                  expires_at, answered_at, confirmed, corrections, signed_name
             from witness_request where evidence_id = $1
            order by requested_at, witness_request_id"#,
        evidence.0
    )
    .fetch_all(conn)
    .await
}

/// A new witness request on version `evidence`, with no link yet.
pub struct NewWitnessRequest<'a> {
    pub evidence: EvidenceId,
    pub name: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub requested_by: UserId,
    pub requested_at: OffsetDateTime,
}

pub async fn insert_witness_request(
    conn: &mut PgConnection,
    new: &NewWitnessRequest<'_>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "insert into witness_request (evidence_id, witness_name, witness_email, witness_role,
                                      requested_by, requested_at)
         values ($1, $2, $3, $4, $5, $6)
         returning witness_request_id",
        new.evidence.0,
        new.name,
        new.email,
        new.role,
        new.requested_by.0,
        new.requested_at
    )
    .fetch_one(conn)
    .await
}

/// Gives unanswered request `request` of version `evidence` a new link (its token's hash),
/// replacing any earlier one; `None` when there is no such request unanswered. Returns the
/// witness's name.
pub async fn make_witness_link(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    request: Uuid,
    token_sha256: &[u8; 32],
    by: UserId,
    at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "update witness_request
            set token_sha256 = $3, link_made_by = $4, link_made_at = $5, expires_at = $6
          where witness_request_id = $2 and evidence_id = $1 and answered_at is null
          returning witness_name",
        evidence.0,
        request,
        &token_sha256[..],
        by.0,
        at,
        expires_at
    )
    .fetch_optional(conn)
    .await
}

/// What a witness's link opens: the request and the evidence it is about.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    pub request_id: Uuid,
    pub evidence_id: EvidenceId,
    pub enrolment_id: EnrolmentId,
    pub candidate_id: UserId,
    pub candidate_name: String,
    /// The version is no longer the current one, or the enrolment is withdrawn.
    pub closed: bool,
    pub title: String,
    pub statement: String,
    pub activity_on: Option<Date>,
    pub witness_name: String,
    pub witness_role: String,
    pub expires_at: Option<OffsetDateTime>,
    pub answered_at: Option<OffsetDateTime>,
}

/// The request whose token hashes to `token_sha256`, locked when `lock` (to answer it).
pub async fn find_witness_target(
    conn: &mut PgConnection,
    token_sha256: &[u8; 32],
    lock: bool,
) -> sqlx::Result<Option<WitnessTarget>> {
    // Two statements rather than a conditional lock: `for update` cannot be switched by a value.
    macro_rules! target {
        ($lock:literal) => {
            sqlx::query_as!(
                WitnessTarget,
                r#"select w.witness_request_id as request_id, ev.evidence_id as "evidence_id: EvidenceId",
                          ev.enrolment_id as "enrolment_id: EnrolmentId", en.candidate_id as "candidate_id: UserId",
                          u.display_name as candidate_name,
                          (en.withdrawn_at is not null
                           or not exists (select 1 from current_evidence cv where cv.evidence_id = ev.evidence_id)) as "closed!",
                          ev.title, ev.statement, ev.activity_on, w.witness_name, w.witness_role,
                          w.expires_at, w.answered_at
                     from witness_request w
                     join evidence ev using (evidence_id)
                     join enrolment en on en.enrolment_id = ev.enrolment_id
                     join app_user u on u.user_id = en.candidate_id
                    where w.token_sha256 = $1"# + $lock,
                &token_sha256[..]
            )
            .fetch_optional(conn)
            .await
        };
    }
    if lock {
        target!(" for update of w")
    } else {
        target!("")
    }
}

/// The witness's answer to request `request`: confirmed as written, or with `corrections`;
/// signed with `signed_name`, from `ip`.
pub async fn answer_witness_request(
    conn: &mut PgConnection,
    request: Uuid,
    confirmed: bool,
    corrections: &str,
    signed_name: &str,
    ip: Option<std::net::IpAddr>,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update witness_request
            set answered_at = $2, confirmed = $3, corrections = $4, signed_name = $5, answered_ip = $6::text::inet
          where witness_request_id = $1 and answered_at is null",
        request,
        at,
        confirmed,
        corrections,
        signed_name,
        ip.map(|ip| ip.to_string())
    )
    .execute(conn)
    .await?;
    Ok(())
}

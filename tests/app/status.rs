//! The stored competency status: after any sequence of changes made through the portal it
//! equals what the rule computes from the records, under concurrent judging too, and
//! `status verify` names a stored row that was changed behind the portal's back.

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use sqlx::PgPool;

use crate::helpers::{ALL_CODES, Browser, Enrolled, TestApp};
use attest::identity::Role;
use attest::status::model::{CriterionStatus, EnrolmentStatus};
use attest::status::{db as status_db, verify};

/// One thing a person does that can move a status.
#[derive(Debug, Clone)]
enum Step {
    /// The candidate submits a new item claiming every criterion, or only PC1 and K1.
    Submit {
        enrolment: usize,
        all: bool,
    },
    /// The candidate revises an item and submits the new version with the same claims.
    Revise {
        enrolment: usize,
        item: usize,
    },
    /// The assessor judges every claim of an item's current version met, or not met.
    Judge {
        enrolment: usize,
        item: usize,
        met: bool,
    },
    SignOff {
        enrolment: usize,
    },
    /// The IQA agrees or disagrees with the newest unreviewed sign-off.
    Review {
        enrolment: usize,
        agree: bool,
    },
    Withdraw {
        enrolment: usize,
    },
    /// The assessor reverses a met kept on a superseded version, if there is one.
    Reverse {
        enrolment: usize,
    },
    /// The assessor answers every action of the IQA's disagreement, if there is one.
    Answer {
        enrolment: usize,
    },
}

const ENROLMENTS: usize = 2;

fn step() -> impl Strategy<Value = Step> {
    let e = 0..ENROLMENTS;
    prop_oneof![
        3 => (e.clone(), any::<bool>()).prop_map(|(enrolment, all)| Step::Submit { enrolment, all }),
        2 => (e.clone(), 0..3usize).prop_map(|(enrolment, item)| Step::Revise { enrolment, item }),
        5 => (e.clone(), 0..3usize, proptest::bool::weighted(0.7))
            .prop_map(|(enrolment, item, met)| Step::Judge { enrolment, item, met }),
        2 => e.clone().prop_map(|enrolment| Step::SignOff { enrolment }),
        2 => (e.clone(), any::<bool>()).prop_map(|(enrolment, agree)| Step::Review { enrolment, agree }),
        1 => e.clone().prop_map(|enrolment| Step::Withdraw { enrolment }),
        1 => e.clone().prop_map(|enrolment| Step::Reverse { enrolment }),
        1 => e.prop_map(|enrolment| Step::Answer { enrolment }),
    ]
}

/// One enrolment of a case, with the people on it and its items' current versions.
struct Person<'a> {
    enrolled: Enrolled,
    candidate: Browser<'a>,
    assessor: Browser<'a>,
    iqa: Browser<'a>,
    /// Per item: its current version and the codes it claims.
    items: Vec<(String, Vec<&'static str>)>,
}

async fn people<'a>(app: &'a TestApp, case: usize) -> Vec<Person<'a>> {
    let mut people = Vec::new();
    for n in 0..ENROLMENTS {
        let enrolled = app.enrolled(&format!("case{case}-{n}")).await;
        people.push(Person {
            candidate: app.browser_signed_in_as(enrolled.candidate).await,
            assessor: app.browser_signed_in_as(enrolled.assessor).await,
            iqa: app.browser_signed_in_as(enrolled.iqa).await,
            enrolled,
            items: Vec::new(),
        });
    }
    people
}

/// Does `step`; returns the status of the answer that mattered.
async fn perform(
    app: &TestApp,
    admin: &Browser<'_>,
    people: &mut [Person<'_>],
    step: &Step,
) -> StatusCode {
    match *step {
        Step::Submit { enrolment, all } => {
            let p = &mut people[enrolment];
            let codes: Vec<&'static str> = if all {
                ALL_CODES.to_vec()
            } else {
                vec!["PC1", "K1"]
            };
            let title = format!("Item {}", p.items.len() + 1);
            let path = format!("/enrolments/{}/evidence/new", p.enrolled.enrolment);
            let response = submit_form(app, &p.candidate, &path, &title, &codes).await;
            if let Some(id) = response
                .location()
                .and_then(|l| l.strip_prefix("/evidence/"))
                .filter(|id| !id.ends_with("/edit"))
            {
                p.items.push((id.to_owned(), codes));
            }
            response.status
        }
        Step::Revise { enrolment, item } => {
            let p = &mut people[enrolment];
            let Some((current, codes)) = p.items.get(item % p.items.len().max(1)).cloned() else {
                return StatusCode::OK;
            };
            let started = p
                .candidate
                .post_form(&format!("/evidence/{current}/revise"), &[])
                .await;
            let Some(draft) = started
                .location()
                .and_then(|l| l.strip_prefix("/evidence/"))
                .and_then(|l| l.strip_suffix("/edit"))
                .map(str::to_owned)
            else {
                return started.status;
            };
            let path = format!("/evidence/{draft}/edit");
            let submitted = submit_form(app, &p.candidate, &path, "Revised item", &codes).await;
            if submitted.location() == Some(format!("/evidence/{draft}").as_str()) {
                let index = item % p.items.len();
                p.items[index].0 = draft;
            }
            submitted.status
        }
        Step::Judge {
            enrolment,
            item,
            met,
        } => {
            let p = &people[enrolment];
            let Some((current, codes)) = p.items.get(item % p.items.len().max(1)) else {
                return StatusCode::OK;
            };
            let decisions: Vec<(&str, bool, &str)> = codes
                .iter()
                .map(|c| (*c, met, "Show more of how you did it."))
                .collect();
            app.judge(&p.assessor, current, &decisions).await.status
        }
        Step::SignOff { enrolment } => {
            let p = &people[enrolment];
            p.assessor
                .post_form(
                    &format!("/enrolments/{}/sign-off", p.enrolled.enrolment),
                    &[("declaration", "yes")],
                )
                .await
                .status
        }
        Step::Review { enrolment, agree } => {
            let p = &people[enrolment];
            let unreviewed: Option<uuid::Uuid> = sqlx::query_scalar!(
                "select sign_off_id from latest_sign_off where enrolment_id = $1 and review_id is null",
                p.enrolled.enrolment
            )
            .fetch_optional(&app.pool)
            .await
            .expect("sign-off")
            .flatten();
            let Some(sign_off) = unreviewed else {
                return StatusCode::OK;
            };
            let decision = if agree { "agree" } else { "disagree" };
            p.iqa
                .post_form(
                    &format!("/sign-offs/{sign_off}/review"),
                    &[("decision", decision), ("actions", "Observe PC4 again.")],
                )
                .await
                .status
        }
        Step::Reverse { enrolment } => {
            let p = &people[enrolment];
            let kept = sqlx::query!(
                r#"select sc.evidence_id as "evidence_id!", sc.criterion_id as "criterion_id!"
                     from submitted_claim sc
                     join latest_judgement lj using (evidence_id, criterion_id)
                    where sc.enrolment_id = $1 and sc.superseded and lj.met
                    order by sc.version, sc.criterion_id limit 1"#,
                p.enrolled.enrolment
            )
            .fetch_optional(&app.pool)
            .await
            .expect("kept met");
            let Some(kept) = kept else {
                return StatusCode::OK;
            };
            p.assessor
                .post_form(
                    &format!(
                        "/evidence/{}/criteria/{}/reverse",
                        kept.evidence_id, kept.criterion_id
                    ),
                    &[(
                        "reason",
                        "The earlier observation was of another team's work.",
                    )],
                )
                .await
                .status
        }
        Step::Answer { enrolment } => {
            let p = &people[enrolment];
            let open = sqlx::query_scalar!(
                r#"select a.iqa_action_id as "id!"
                     from latest_sign_off ls join iqa_action a using (review_id)
                    where ls.enrolment_id = $1 and ls.decision = 'disagree'
                      and not exists (select 1 from iqa_action_answer ans
                                       where ans.iqa_action_id = a.iqa_action_id)"#,
                p.enrolled.enrolment
            )
            .fetch_all(&app.pool)
            .await
            .expect("open actions");
            let mut status = StatusCode::OK;
            for action in open {
                status = p
                    .assessor
                    .post_form(
                        &format!(
                            "/enrolments/{}/iqa-actions/{action}/answer",
                            p.enrolled.enrolment
                        ),
                        &[("answer", "Observed PC4 again on site.")],
                    )
                    .await
                    .status;
            }
            status
        }
        Step::Withdraw { enrolment } => {
            let p = &people[enrolment];
            admin
                .post_form(
                    &format!("/enrolments/{}/withdraw", p.enrolled.enrolment),
                    &[("reason", "Changed employer")],
                )
                .await
                .status
        }
    }
}

/// Submits the evidence form at `path` with a statement and claims of `codes`.
async fn submit_form(
    app: &TestApp,
    candidate: &Browser<'_>,
    path: &str,
    title: &str,
    codes: &[&str],
) -> crate::helpers::TestResponse {
    let mut fields: Vec<(String, String)> = vec![
        ("title".into(), title.into()),
        ("method".into(), "product".into()),
        ("activity_on".into(), "2026-10-01".into()),
        ("statement".into(), "What I did.".into()),
        ("declaration".into(), "yes".into()),
        ("action".into(), "submit".into()),
    ];
    for code in codes {
        fields.push(("claim".into(), app.criterion(code).await.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    candidate.post_multipart(path, &borrowed, &[]).await
}

/// Runs one sequence on fresh enrolments: after every step, no answer is a server error and
/// every stored status equals the recomputed one.
/// Returns the first enrolment's stored status after each step.
async fn run_case(
    app: &TestApp,
    admin: &Browser<'_>,
    case: usize,
    steps: &[Step],
) -> Result<Vec<EnrolmentStatus>, String> {
    let mut people = people(app, case).await;
    let mut first = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let status = perform(app, admin, &mut people, step).await;
        if status.is_server_error() {
            return Err(format!("step {n} {step:?} answered {status}"));
        }
        let outcome = verify::verify(&app.pool, false).await.expect("verify");
        if !outcome.is_clean() {
            return Err(format!(
                "after step {n} {step:?}: {:?} {:?}",
                outcome.mismatches, outcome.wrong_counts
            ));
        }
        let mut conn = app.pool.acquire().await.expect("connection");
        let stored = status_db::stored(&mut conn, &[people[0].enrolled.enrolment])
            .await
            .expect("read")
            .pop()
            .expect("stored");
        first.push(stored.status);
    }
    Ok(first)
}

#[sqlx::test]
async fn after_any_sequence_of_changes_the_stored_status_equals_the_recomputed_one(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    // proptest's own loop, run here so each case can await the portal: generate, and on a
    // failure shrink to the shortest sequence that still fails.
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    // First a sequence written out to pass every status: ready, kept ready by a revision (met
    // is kept), back in progress by a reversal, competent, withdrawn by a disagreement, refused
    // until the IQA's actions are answered, signed off again, verified, and a revision after
    // all that.
    let scripted = [
        Step::Submit {
            enrolment: 0,
            all: true,
        },
        Step::Submit {
            enrolment: 1,
            all: false,
        },
        Step::Judge {
            enrolment: 0,
            item: 0,
            met: false,
        },
        Step::Revise {
            enrolment: 0,
            item: 0,
        },
        Step::Judge {
            enrolment: 0,
            item: 0,
            met: true,
        },
        Step::Revise {
            enrolment: 0,
            item: 0,
        },
        Step::Reverse { enrolment: 0 },
        Step::Judge {
            enrolment: 0,
            item: 0,
            met: true,
        },
        Step::SignOff { enrolment: 0 },
        Step::Review {
            enrolment: 0,
            agree: false,
        },
        Step::SignOff { enrolment: 0 },
        Step::Answer { enrolment: 0 },
        Step::SignOff { enrolment: 0 },
        Step::Review {
            enrolment: 0,
            agree: true,
        },
        Step::Revise {
            enrolment: 0,
            item: 0,
        },
        Step::Judge {
            enrolment: 1,
            item: 0,
            met: true,
        },
        Step::Withdraw { enrolment: 1 },
    ];
    use EnrolmentStatus::{Competent, InProgress, ReadyForSignOff, Verified};
    let passed = run_case(&app, &admin, 0, &scripted)
        .await
        .expect("the scripted sequence");
    assert_eq!(
        passed,
        [
            InProgress,
            InProgress,
            InProgress,
            InProgress,
            ReadyForSignOff,
            ReadyForSignOff,
            InProgress,
            ReadyForSignOff,
            Competent,
            ReadyForSignOff,
            ReadyForSignOff,
            ReadyForSignOff,
            Competent,
            Verified,
            Verified,
            Verified,
            Verified,
        ]
    );

    let strategy = proptest::collection::vec(step(), 1..16);
    let mut case = 0;
    for _ in 0..12 {
        let mut tree = strategy.new_tree(&mut runner).expect("a sequence");
        case += 1;
        let Err(mut failure) = run_case(&app, &admin, case, &tree.current()).await else {
            continue;
        };
        let mut smallest = tree.current();
        while tree.simplify() {
            case += 1;
            match run_case(&app, &admin, case, &tree.current()).await {
                Err(why) => {
                    failure = why;
                    smallest = tree.current();
                }
                Ok(_) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
        panic!("stored status went wrong: {failure}\nsmallest sequence: {smallest:#?}");
    }
}

/// Withdraws enrolment `id` in `tx` and stores its status there, leaving `tx` open.
async fn withdraw_in(tx: &mut sqlx::PgConnection, id: uuid::Uuid) {
    sqlx::query!(
        "update enrolment set withdrawn_at = now(), withdrawn_reason = 'moved away' where enrolment_id = $1",
        id
    )
    .execute(&mut *tx)
    .await
    .expect("withdraw");
    status_db::refresh(tx, attest::ids::EnrolmentId(id))
        .await
        .expect("refresh");
}

#[sqlx::test]
async fn status_changes_of_two_enrolments_of_one_assessor_do_not_wait_for_each_other(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.enrolled("slots").await;
    // Another candidate of the same cohort and assessor, whose counts go to another slot.
    let mut second = None;
    for n in 0..40 {
        let email = format!("slots{n}.candidate@example.org");
        let id = app
            .classmate(&first, &email, "Slots Candidate")
            .await
            .enrolment;
        if status_db::count_slot(id) != status_db::count_slot(first.enrolment) {
            second = Some(id);
            break;
        }
    }
    let second = second.expect("an enrolment in another slot");

    let mut open = app.pool.begin().await.expect("begin");
    withdraw_in(&mut open, first.enrolment).await;
    let mut other = app.pool.begin().await.expect("begin");
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        withdraw_in(&mut other, second),
    )
    .await
    .expect("the second change does not wait for the first's commit");
    other.commit().await.expect("commit");
    open.commit().await.expect("commit");

    let outcome = verify::verify(&app.pool, false).await.expect("verify");
    assert!(outcome.is_clean(), "{:?}", outcome.mismatches);
    let withdrawn = app
        .count("select sum(enrolments)::bigint from enrolment_count where withdrawn")
        .await;
    assert_eq!(withdrawn, 2);
}

#[sqlx::test]
async fn fifty_rounds_of_two_concurrent_judgements_on_one_enrolment_store_the_right_status(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("race").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let first = app
        .submit_evidence(&candidate, &enrolled, "Pipeline", "product", &["PC1"])
        .await;
    let second = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC2"])
        .await;
    let pc1 = app.criterion("PC1").await;
    let pc2 = app.criterion("PC2").await;
    for round in 0..50 {
        let (a_met, b_met) = (round % 2 == 0, round % 3 == 0);
        let (pc1_decision, pc2_decision) = (
            [("PC1", a_met, "More detail.")],
            [("PC2", b_met, "More detail.")],
        );
        let (a, b) = tokio::join!(
            app.judge(&assessor, &first, &pc1_decision),
            app.judge(&assessor, &second, &pc2_decision)
        );
        assert_eq!(
            (a.status, b.status),
            (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
            "round {round}"
        );
        let mut conn = app.pool.acquire().await.expect("connection");
        let stored = status_db::stored(&mut conn, &[enrolled.enrolment])
            .await
            .expect("read")
            .pop()
            .expect("stored");
        let of = |id: uuid::Uuid| {
            stored
                .criteria
                .iter()
                .find(|c| c.criterion_id == id)
                .map(|c| c.status)
        };
        let expected = |met: bool| {
            Some(if met {
                CriterionStatus::Met
            } else {
                CriterionStatus::NotMet
            })
        };
        assert_eq!(
            (of(pc1), of(pc2)),
            (expected(a_met), expected(b_met)),
            "round {round}"
        );
        assert_eq!(
            stored.performance_met,
            i32::from(a_met) + i32::from(b_met),
            "round {round}"
        );
        assert_eq!(stored.claims_awaiting, 0, "round {round}");
        let outcome = verify::verify(&app.pool, false).await.expect("verify");
        assert!(
            outcome.is_clean(),
            "round {round}: {:?}",
            outcome.mismatches
        );
    }
}

#[sqlx::test]
async fn verify_names_exactly_the_row_changed_by_plain_sql_and_repair_fixes_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("tamper").await;
    let other = app.enrolled("bystander").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    app.submit_evidence(&candidate, &enrolled, "Pipeline", "product", &["PC3"])
        .await;
    let clean = verify::verify(&app.pool, false).await.expect("verify");
    assert_eq!((clean.checked, clean.wrong.len()), (2, 0));

    let pc3 = app.criterion("PC3").await;
    sqlx::query!(
        "update enrolment_criterion_status set status = 'met' where enrolment_id = $1 and criterion_id = $2",
        enrolled.enrolment,
        pc3
    )
    .execute(&app.pool)
    .await
    .expect("tamper");
    let found = verify::verify(&app.pool, false).await.expect("verify");
    assert_eq!(found.wrong, vec![enrolled.enrolment]);
    assert_eq!(found.mismatches.len(), 1, "{:?}", found.mismatches);
    let mismatch = &found.mismatches[0];
    assert_eq!(
        (
            mismatch.enrolment_id,
            mismatch.criterion.as_str(),
            mismatch.field
        ),
        (
            attest::ids::EnrolmentId(enrolled.enrolment),
            pc3.to_string().as_str(),
            "criterion"
        )
    );
    assert!(mismatch.stored.starts_with("met "), "{}", mismatch.stored);
    assert!(
        mismatch.computed.starts_with("awaiting "),
        "{}",
        mismatch.computed
    );
    assert!(!found.repaired);

    let events = app.count("select count(*) from audit_event").await;
    let repaired = verify::verify(&app.pool, true).await.expect("repair");
    assert!(repaired.repaired);
    assert_eq!(
        app.count("select count(*) from audit_event").await,
        events + 1
    );
    assert_eq!(
        app.audit_actions().await.last().map(String::as_str),
        Some("status.repaired")
    );
    let after = verify::verify(&app.pool, false).await.expect("verify");
    assert!(after.is_clean(), "{:?}", after.mismatches);
    let _ = other;

    // A cohort count changed behind the portal's back is named too, and recounted.
    sqlx::query!(
        "update enrolment_count set enrolments = enrolments + 1
          where ctid = (select ctid from enrolment_count where status = 'in_progress' and enrolments > 0 limit 1)"
    )
    .execute(&app.pool)
    .await
    .expect("tamper");
    let found = verify::verify(&app.pool, false).await.expect("verify");
    assert!(found.wrong.is_empty());
    assert_eq!(found.wrong_counts.len(), 1, "{:?}", found.wrong_counts);
    assert!(
        found.wrong_counts[0]
            .contains("in_progress: stored 2 enrolments and 1 claims waiting, counted 1 and 1"),
        "{}",
        found.wrong_counts[0]
    );
    assert!(
        verify::verify(&app.pool, true)
            .await
            .expect("repair")
            .repaired
    );
    assert!(
        verify::verify(&app.pool, false)
            .await
            .expect("verify")
            .is_clean()
    );
}

#[sqlx::test]
async fn enrolments_without_a_stored_status_are_filled_when_the_database_is_opened(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("legacy").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    app.submit_evidence(&candidate, &enrolled, "Pipeline", "product", &["PC1"])
        .await;
    sqlx::query!("delete from enrolment_criterion_status")
        .execute(&app.pool)
        .await
        .expect("delete");
    sqlx::query!("delete from enrolment_progress")
        .execute(&app.pool)
        .await
        .expect("delete");
    let missing = verify::verify(&app.pool, false).await.expect("verify");
    assert_eq!(missing.wrong, vec![enrolled.enrolment]);

    assert_eq!(verify::fill_missing(&app.pool).await.expect("fill"), 1);
    let mut conn = app.pool.acquire().await.expect("connection");
    let stored = status_db::stored(&mut conn, &[enrolled.enrolment])
        .await
        .expect("read")
        .pop()
        .expect("stored");
    assert_eq!(stored.status, EnrolmentStatus::InProgress);
    assert_eq!(stored.claims_awaiting, 1);
    assert_eq!(verify::fill_missing(&app.pool).await.expect("fill"), 0);
}

#[sqlx::test]
async fn statuses_stored_by_an_older_rule_are_worked_out_again_once_by_one_process(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("older").await;
    let other = app
        .classmate(&enrolled, "older2@example.org", "Older Two")
        .await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    app.submit_evidence(&candidate, &enrolled, "Pipeline", "product", &["PC1"])
        .await;
    // As an older rule left them: the row says nothing waits, the counts agree with it.
    sqlx::query!(
        "update enrolment_progress set claims_awaiting = 0, oldest_awaiting_at = null, next_evidence_id = null
          where enrolment_id = $1",
        enrolled.enrolment
    )
    .execute(&app.pool)
    .await
    .expect("stale row");
    let mut tx = app.pool.begin().await.expect("transaction");
    status_db::recount(&mut tx).await.expect("recount");
    sqlx::query!("update status_rule set version = 1")
        .execute(&mut *tx)
        .await
        .expect("older rule");
    tx.commit().await.expect("commit");
    assert!(
        !verify::verify(&app.pool, false)
            .await
            .expect("verify")
            .is_clean()
    );

    // Two processes opening the database at once: one does the work, the other finds it done.
    let (a, b) = tokio::join!(
        verify::bring_up_to_date(&app.pool),
        verify::bring_up_to_date(&app.pool)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.recomputed + b.recomputed, 2, "{a:?} {b:?}");
    assert!(a.recomputed == 0 || b.recomputed == 0);
    let outcome = verify::verify(&app.pool, false).await.expect("verify");
    assert!(
        outcome.is_clean(),
        "{:?} {:?}",
        outcome.mismatches,
        outcome.wrong_counts
    );
    let mut conn = app.pool.acquire().await.expect("connection");
    assert_eq!(
        status_db::rule_version(&mut conn).await.expect("version"),
        verify::RULE_VERSION
    );
    drop(conn);
    assert_eq!(
        verify::bring_up_to_date(&app.pool).await.expect("again"),
        verify::Upkeep::default()
    );
    assert_eq!(
        app.audit_actions()
            .await
            .iter()
            .filter(|a| *a == "status.rule_applied")
            .count(),
        1,
        "the new rule's application is audited once"
    );
    let _ = other;
}

#[sqlx::test]
async fn the_scale_demo_spreads_its_candidates_over_every_status_with_valid_rows(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let outcome = attest::demo::scale::run(&app.state, 60, attest::demo::PASSWORD)
        .await
        .expect("scale");
    assert!(matches!(
        outcome,
        attest::demo::scale::Outcome::Created { assessors: 1 }
    ));
    let statuses: Vec<(String, i64)> = sqlx::query!(
        r#"select status::text as "status!", count(*) as "n!" from enrolment_progress group by status order by 1"#
    )
    .fetch_all(&app.pool)
    .await
    .expect("statuses")
    .into_iter()
    .map(|r| (r.status, r.n))
    .collect();
    let names: Vec<&str> = statuses.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "competent",
            "in_progress",
            "not_started",
            "ready_for_sign_off",
            "verified",
            "withdrawn"
        ],
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().map(|(_, n)| n).sum::<i64>(), 60);
    assert_eq!(
        app.count("select count(*) from evidence where version = 1")
            .await,
        600
    );
    let outcome = verify::verify(&app.pool, false).await.expect("verify");
    assert!(outcome.is_clean(), "{:?}", outcome.mismatches);
    assert!(app.seal_audit().await > 0);
    let mut conn = app.pool.acquire().await.expect("connection");
    let audit = attest::audit::verify(&mut conn).await.expect("audit");
    assert_eq!((audit.broken, audit.pending), (None, 0));
    // Every sign-off's digest is the one its basis gives.
    let bases = sqlx::query!("select basis, basis_sha256 from sign_off")
        .fetch_all(&app.pool)
        .await
        .expect("sign-offs");
    assert_eq!(bases.len(), 18);
    for b in bases {
        assert_eq!(
            attest::crypto::sha256(b.basis.to_string().as_bytes()).to_vec(),
            b.basis_sha256
        );
    }
    // The assessor's caseload lists their enrolments; the first page shows 60 of them.
    let assessor: uuid::Uuid = sqlx::query_scalar!(
        "select user_id from app_user where email = 'scale-assessor-01@attest.example'"
    )
    .fetch_one(&app.pool)
    .await
    .expect("assessor");
    let browser = app
        .browser_signed_in_as(attest::identity::UserId(assessor))
        .await;
    let caseload = browser.get("/caseload").await;
    assert_eq!(caseload.status, StatusCode::OK);
    assert_eq!(
        caseload.texts("#caseload tbody tr").len(),
        59,
        "one of the 60 is withdrawn"
    );
    assert!(matches!(
        attest::demo::scale::run(&app.state, 60, attest::demo::PASSWORD)
            .await
            .expect("again"),
        attest::demo::scale::Outcome::AlreadyThere
    ));
}

#[sqlx::test]
async fn the_iqa_pages_through_sign_offs_with_each_enrolments_status_now(pool: PgPool) {
    let app = TestApp::new(pool).await;
    attest::demo::scale::run(&app.state, 200, attest::demo::PASSWORD)
        .await
        .expect("scale");
    let iqa: uuid::Uuid = sqlx::query_scalar!(
        "select user_id from app_user where email = 'scale-iqa@attest.example'"
    )
    .fetch_one(&app.pool)
    .await
    .expect("iqa");
    let browser = app
        .browser_signed_in_as(attest::identity::UserId(iqa))
        .await;
    let first = browser.get("/quality").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.texts("#sign-offs .card").len(), 50);
    // Unreviewed first: the 20 not yet reviewed lead the first page with their forms.
    let forms = first
        .html()
        .select(&scraper::Selector::parse("#sign-offs .card").expect("selector"))
        .map(|card| {
            card.select(&scraper::Selector::parse(".review-form").expect("selector"))
                .count()
        })
        .collect::<Vec<_>>();
    assert_eq!(forms[..20], [1; 20]);
    assert_eq!(forms[20..], [0; 30]);
    let second = browser.get("/quality?page=2").await;
    assert_eq!(
        second.texts("#sign-offs .card").len(),
        10,
        "60 sign-offs in all"
    );
    let statuses = second.texts("#sign-offs .enrolment-status");
    assert!(
        statuses.contains(&"Now: Verified".to_owned()),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&"Now: Ready for sign-off".to_owned()),
        "a disagreement withdrew the sign-off: {statuses:?}"
    );
    let past_the_end = browser.get("/quality?page=99").await;
    assert_eq!(past_the_end.texts("#sign-offs .card").len(), 10);
}

#[sqlx::test]
async fn only_criteria_with_something_claimed_on_them_have_a_stored_row(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("sparse").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let rows = || async {
        sqlx::query_scalar::<_, String>(
            "select c.code from enrolment_criterion_status s join criterion c using (criterion_id)
              where s.enrolment_id = $1 order by c.kind, c.position",
        )
        .bind(enrolled.enrolment)
        .fetch_all(&app.pool)
        .await
        .expect("rows")
    };
    assert!(rows().await.is_empty(), "a new enrolment stores none");
    let mut conn = app.pool.acquire().await.expect("connection");
    let enrolment = attest::ids::EnrolmentId(enrolled.enrolment);
    let stored = status_db::criteria(&mut conn, enrolment)
        .await
        .expect("criteria");
    drop(conn);
    assert_eq!(stored.len(), 21, "every criterion reads as not started");
    assert!(
        stored
            .iter()
            .all(|c| c.status == CriterionStatus::NotStarted)
    );

    let v1 = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1", "PC2"])
        .await;
    assert_eq!(rows().await, ["PC1", "PC2"]);

    // A revision that no longer claims PC2, never judged: PC2 is untouched again.
    let revise = candidate
        .post_form(&format!("/evidence/{v1}/revise"), &[])
        .await;
    let v2 = revise
        .location()
        .expect("to the new draft")
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned();
    let pc1 = app.criterion("PC1").await.to_string();
    candidate
        .post_multipart(
            &format!("/evidence/{v2}/edit"),
            &[
                ("title", "Runbook, narrower"),
                ("method", "product"),
                ("activity_on", "2026-10-02"),
                ("statement", "Only the first."),
                ("claim", &pc1),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{v2}"));
    assert_eq!(rows().await, ["PC1"]);
    let checked = verify::verify(&app.pool, false).await.expect("verify");
    assert!(checked.is_clean(), "{:?}", checked.mismatches);
}

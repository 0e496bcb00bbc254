//! `attest demo`: a cohort with a candidate at every status, made through the portal's routes.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::TestApp;
use attest::demo::{self, Outcome};

#[sqlx::test]
async fn the_demo_puts_a_candidate_at_every_status_and_a_second_run_changes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    assert!(matches!(
        demo::run(&app.state).await.expect("demo"),
        Outcome::Created
    ));

    let admin: uuid::Uuid = sqlx::query_scalar!(
        "select user_id from app_user where email = $1",
        demo::ADMIN.email
    )
    .fetch_one(&app.pool)
    .await
    .expect("the demo admin");
    let cohort: uuid::Uuid =
        sqlx::query_scalar!("select cohort_id from cohort where name = $1", demo::COHORT)
            .fetch_one(&app.pool)
            .await
            .expect("the demo cohort");
    let browser = app
        .browser_signed_in_as(attest::identity::UserId(admin))
        .await;
    let (status, _, body) = browser
        .get_bytes(&format!("/admin/cohorts/{cohort}/report.csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut statuses: Vec<(String, String)> = csv::Reader::from_reader(body.as_slice())
        .records()
        .map(|r| {
            let r = r.expect("record");
            (r[1].to_owned(), r[4].to_owned())
        })
        .collect();
    statuses.sort();
    let expected = [
        ("amara.nwosu", "not_started"),
        ("ben.carter", "not_started"),
        ("chloe.evans", "in_progress"),
        ("daniel.kim", "in_progress"),
        ("ella.fischer", "in_progress"),
        ("farah.haddad", "in_progress"),
        ("george.li", "ready_for_sign_off"),
        ("hana.sato", "ready_for_sign_off"),
        ("isaac.mensah", "competent"),
        ("julia.rossi", "competent"),
        ("kofi.asante", "verified"),
        ("lena.novak", "verified"),
    ]
    .map(|(who, status)| (format!("{who}@attest.example"), status.to_owned()));
    assert_eq!(statuses, expected);

    // The in-progress candidates show met, not met and awaiting claims between them, a
    // revision, a saved draft, and an assessor's record waiting to be confirmed.
    let cells: Vec<String> =
        sqlx::query_scalar!(r#"select distinct j.met::text as "met!" from judgement j"#)
            .fetch_all(&app.pool)
            .await
            .expect("judgements");
    assert_eq!(cells.len(), 2, "met and not met judgements");
    assert_eq!(
        app.count("select count(*) from evidence where version = 2 and state = 'submitted'")
            .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from evidence where state = 'draft' and made_by is null")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "select count(*) from evidence where state = 'draft' and made_by is not null and sent_at is not null"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from app_user where is_trainee_assessor")
            .await,
        1
    );
    // One candidate is ready again after the IQA disagreed, with actions to answer; the
    // pieces that fell short carry the assessor's overall feedback.
    assert_eq!(
        app.count(
            "select count(*) from iqa_action a where not exists
               (select 1 from iqa_action_answer x where x.iqa_action_id = a.iqa_action_id)"
        )
        .await,
        2
    );
    assert_eq!(
        app.count("select count(*) from evidence_comment where author_part = 'assessor'")
            .await,
        2
    );
    app.seal_audit().await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let verification = attest::audit::verify(&mut conn).await.expect("verify");
    assert_eq!(verification.broken, None);
    assert_eq!(verification.pending, 0);
    assert!(verification.events > 100, "{} events", verification.events);

    let events = app.count("select count(*) from audit_event").await;
    let users = app.count("select count(*) from app_user").await;
    assert!(matches!(
        demo::run(&app.state).await.expect("second run"),
        Outcome::AlreadyThere
    ));
    assert_eq!(app.count("select count(*) from audit_event").await, events);
    assert_eq!(app.count("select count(*) from app_user").await, users);
}

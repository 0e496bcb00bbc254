//! Records the assessor makes: an observation, a discussion or questioning, drafted by the
//! enrolment's assessor, confirmed by the candidate, then judged like any evidence.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::{Browser, Enrolled, TestApp, TestResponse};

/// A recording of the discussion, as a phone saves it (an MP3 frame header is enough).
const AUDIO: &[u8] = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00\x00\x00\x00recording";

/// The assessor's record form sent with `action` ("submit" sends it to the candidate).
async fn post_record(
    app: &TestApp,
    assessor: &Browser<'_>,
    uri: &str,
    (title, method, statement): (&str, &str, &str),
    codes: &[&str],
    action: &str,
) -> TestResponse {
    let mut fields: Vec<(String, String)> = vec![
        ("title".into(), title.into()),
        ("method".into(), method.into()),
        ("activity_on".into(), "2026-10-02".into()),
        ("statement".into(), statement.into()),
        ("action".into(), action.into()),
    ];
    for code in codes {
        fields.push(("claim".into(), app.criterion(code).await.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assessor
        .post_multipart(uri, &borrowed, &[("file", "discussion.mp3", AUDIO)])
        .await
}

/// A professional discussion the assessor records and sends; returns its id.
async fn sent_record(app: &TestApp, assessor: &Browser<'_>, enrolled: &Enrolled) -> String {
    let sent = post_record(
        app,
        assessor,
        &format!("/enrolments/{}/records/new", enrolled.enrolment),
        (
            "Discussion: release strategy",
            "professional_discussion",
            "We discussed how the candidate chose blue-green releases.\nThey explained the rollback plan.",
        ),
        &["PC2", "K3"],
        "submit",
    )
    .await;
    let location = sent.location().expect("sent").to_owned();
    assert!(location.starts_with("/evidence/"), "not sent: {location}");
    location.trim_start_matches("/evidence/").to_owned()
}

/// The assessor saves the discussion record `id` corrected, with the migration added.
async fn correct_record(app: &TestApp, assessor: &Browser<'_>, id: &str) {
    post_record(
        app,
        assessor,
        &format!("/evidence/{id}/edit"),
        (
            "Discussion: release strategy",
            "professional_discussion",
            "We discussed blue-green releases and the database migration.",
        ),
        &["PC2", "K3"],
        "save",
    )
    .await
    .assert_redirect_to(&format!("/evidence/{id}/edit"));
}

async fn evidence_state(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar!(
        "select state::text as \"state!\" from evidence where evidence_id = $1::text::uuid",
        id
    )
    .fetch_one(&app.pool)
    .await
    .expect("evidence")
}

#[sqlx::test]
async fn a_record_counts_once_the_candidate_confirms_it_and_the_assessor_judges_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("rec").await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;

    // A draft record is the assessor's alone until it is sent.
    let drafted = post_record(
        &app,
        &assessor,
        &format!("/enrolments/{}/records/new", enrolled.enrolment),
        (
            "Observation: deployment",
            "observation",
            "Watched the deploy.",
        ),
        &["PC1"],
        "save",
    )
    .await;
    let draft_url = drafted.location().expect("saved").to_owned();
    let draft = draft_url
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned();
    assert_eq!(
        candidate.get(&format!("/evidence/{draft}")).await.status,
        StatusCode::NOT_FOUND
    );
    let portfolio = candidate
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert!(portfolio.texts("#records-to-confirm").is_empty());

    let id = sent_record(&app, &assessor, &enrolled).await;
    assert_eq!(evidence_state(&app, &id).await, "draft");
    let portfolio = candidate
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert!(portfolio.text("#records-to-confirm").contains("a record"));
    assert!(portfolio.text("#evidence-list").contains("To confirm"));
    // Not confirmed, it is not assessed: the assessor has nothing to judge yet.
    let shown = assessor.get(&format!("/evidence/{id}")).await;
    assert!(shown.texts("#judging").is_empty());
    assert!(
        shown
            .text("#evidence-state")
            .contains("Waiting for the candidate to confirm")
    );

    let page = candidate.get(&format!("/evidence/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text("#statement").contains("blue-green"));
    let seen = page
        .attr("#confirm-record input[name=seen]", "value")
        .expect("digest of what was read");
    let unticked = candidate
        .post_form(&format!("/evidence/{id}/confirm"), &[("seen", &seen)])
        .await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unticked
            .text(".error-summary")
            .contains("Tick the box to confirm")
    );
    assert_eq!(evidence_state(&app, &id).await, "draft");

    candidate
        .post_form(
            &format!("/evidence/{id}/confirm"),
            &[("seen", &seen), ("declaration", "yes")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{id}"));
    assert_eq!(evidence_state(&app, &id).await, "submitted");
    let again = candidate
        .post_form(
            &format!("/evidence/{id}/confirm"),
            &[("seen", &seen), ("declaration", "yes")],
        )
        .await;
    again.assert_redirect_to(&format!("/evidence/{id}"));
    let actions = app.audit_actions().await;
    for action in [
        "evidence.draft_created",
        "evidence.record_sent",
        "evidence.record_confirmed",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "evidence.record_confirmed")
            .count(),
        1,
        "confirmed once"
    );

    let judged = app
        .judge(&assessor, &id, &[("PC2", true, ""), ("K3", true, "")])
        .await;
    assert_eq!(judged.status, StatusCode::SEE_OTHER);
    let portfolio = candidate
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert!(
        portfolio
            .text("#progress")
            .contains("PC 1 of 9, K 1 of 12 met")
    );
    let page = candidate.get(&format!("/evidence/{id}")).await;
    assert!(
        page.text("#recorded-by")
            .contains("confirmed accurate by rec Candidate")
    );
    // A record is the assessor's to correct, not the candidate's to revise.
    assert!(page.texts("form[action$='/revise']").is_empty());
    let revise = candidate
        .post_form(&format!("/evidence/{id}/revise"), &[])
        .await;
    assert_eq!(revise.status, StatusCode::CONFLICT);
}

#[sqlx::test]
async fn a_record_changed_after_the_candidate_read_it_is_read_again(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("chg").await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let id = sent_record(&app, &assessor, &enrolled).await;
    let read = candidate.get(&format!("/evidence/{id}")).await;
    let seen = read
        .attr("#confirm-record input[name=seen]", "value")
        .expect("digest");

    // The candidate asks for a correction in the conversation; the assessor makes it.
    candidate
        .post_form(
            &format!("/evidence/{id}/comments"),
            &[("comment", "I also covered the database migration.")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{id}#conversation"));
    correct_record(&app, &assessor, &id).await;

    let stale = candidate
        .post_form(
            &format!("/evidence/{id}/confirm"),
            &[("seen", &seen), ("declaration", "yes")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(stale.text(".error-summary").contains("changed this record"));
    assert!(stale.text("#statement").contains("database migration"));
    assert_eq!(evidence_state(&app, &id).await, "draft");

    // A record its assessor left unfinished cannot be confirmed, and with a conversation it
    // is corrected, not deleted.
    post_record(
        &app,
        &assessor,
        &format!("/evidence/{id}/edit"),
        ("", "professional_discussion", "Half written."),
        &["PC2"],
        "save",
    )
    .await;
    let unfinished = candidate.get(&format!("/evidence/{id}")).await;
    let digest = unfinished
        .attr("#confirm-record input[name=seen]", "value")
        .expect("digest");
    let refused = candidate
        .post_form(
            &format!("/evidence/{id}/confirm"),
            &[("seen", &digest), ("declaration", "yes")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text(".error-summary").contains("not complete yet"));
    assert_eq!(
        assessor
            .post_form(&format!("/evidence/{id}/delete"), &[])
            .await
            .status,
        StatusCode::CONFLICT
    );
    correct_record(&app, &assessor, &id).await;
    let fresh = candidate
        .get(&format!("/evidence/{id}"))
        .await
        .attr("#confirm-record input[name=seen]", "value")
        .expect("digest");
    candidate
        .post_form(
            &format!("/evidence/{id}/confirm"),
            &[("seen", &fresh), ("declaration", "yes")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{id}"));
    assert_eq!(evidence_state(&app, &id).await, "submitted");
}

#[sqlx::test]
async fn records_are_written_by_the_enrolments_assessor_only(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("own").await;
    let other = app.enrolled("oth").await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let stranger = app.browser_signed_in_as(other.assessor).await;
    let classmate = app.browser_signed_in_as(other.candidate).await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;

    let new = format!("/enrolments/{}/records/new", enrolled.enrolment);
    assert_eq!(stranger.get(&new).await.status, StatusCode::NOT_FOUND);
    assert_eq!(assessor.get(&new).await.status, StatusCode::OK);

    // Only the methods an assessor records.
    let product = post_record(
        &app,
        &assessor,
        &new,
        ("A product", "product", "A thing made."),
        &["PC1"],
        "submit",
    )
    .await;
    assert_eq!(product.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        product
            .text(".error-summary")
            .contains("Choose observation, professional discussion or question and answer")
    );
    assert_eq!(
        app.count("select count(*) from evidence where sent_at is not null")
            .await,
        0
    );

    let id = sent_record(&app, &assessor, &enrolled).await;
    for (who, browser) in [
        ("another assessor", &stranger),
        ("another candidate", &classmate),
        ("the IQA before confirmation", &iqa),
    ] {
        assert_eq!(
            browser.get(&format!("/evidence/{id}")).await.status,
            StatusCode::NOT_FOUND,
            "{who}"
        );
    }
    assert_eq!(
        classmate
            .post_form(
                &format!("/evidence/{id}/confirm"),
                &[("seen", ""), ("declaration", "yes")],
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The candidate reads it but does not write it.
    assert_eq!(
        candidate.get(&format!("/evidence/{id}/edit")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        candidate
            .post_form(&format!("/evidence/{id}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger
            .post_form(&format!("/evidence/{id}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Its assessor may take it back before it is confirmed.
    assessor
        .post_form(&format!("/evidence/{id}/delete"), &[])
        .await
        .assert_redirect_to(&format!("/enrolments/{}", enrolled.enrolment));
    assert_eq!(
        candidate.get(&format!("/evidence/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

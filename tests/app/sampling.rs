//! Interim sampling of judged evidence, and a cohort's sampling plan against what is done.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::{ALL_CODES, Browser, Enrolled, TestApp};

/// An enrolment whose one piece of evidence claims every criterion, all judged met; returns
/// it with the assessor's browser and the evidence id.
async fn all_met<'a>(app: &'a TestApp, label: &str) -> (Enrolled, Browser<'a>, String) {
    let enrolled = app.enrolled(label).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = app
        .submit_evidence(
            &candidate,
            &enrolled,
            "Everything",
            "observation",
            &ALL_CODES,
        )
        .await;
    let decisions: Vec<(&str, bool, &str)> = ALL_CODES.iter().map(|c| (*c, true, "")).collect();
    app.judge(&assessor, &evidence, &decisions)
        .await
        .assert_redirect_to(&format!("/evidence/{evidence}"));
    (enrolled, assessor, evidence)
}

#[sqlx::test]
async fn an_iqa_disagrees_with_sampled_evidence_and_sign_off_waits_for_the_answers(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor, evidence) = all_met(&app, "smp").await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;

    // The quality page offers the judged evidence; the evidence page has the sample form.
    let quality = iqa.get("/quality").await;
    assert!(quality.text("#to-sample-list").contains("Everything"));
    let page = iqa.get(&format!("/evidence/{evidence}")).await;
    assert_eq!(page.texts("#sample-form").len(), 1);

    let samples = format!("/evidence/{evidence}/samples");
    let bare = iqa
        .post_form(&samples, &[("decision", "disagree"), ("actions", "  \n ")])
        .await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bare.text(".error-summary")
            .contains("Say what the assessor must do")
    );
    assert!(
        bare.attr("#sample-disagree", "checked").is_some(),
        "choice kept"
    );

    iqa.post_form(
        &samples,
        &[
            ("decision", "disagree"),
            (
                "comment",
                "The observation notes do not show PC1 in person.",
            ),
            (
                "actions",
                "Observe PC1 at the next release.\nRecord who attended.",
            ),
        ],
    )
    .await
    .assert_redirect_to(&format!("/evidence/{evidence}#samples"));
    assert!(
        app.audit_actions()
            .await
            .contains(&"evidence.sample_disagreed".to_owned())
    );
    let quality = iqa.get("/quality").await;
    assert!(
        quality.texts("#to-sample-list").is_empty(),
        "sampled evidence leaves the list"
    );

    // Sign-off waits for both answers.
    let sign_off = format!("/enrolments/{}/sign-off", enrolled.enrolment);
    let refused = assessor
        .post_form(&sign_off, &[("declaration", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.text("main").contains("2 still need an answer"));

    let portfolio = assessor
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert!(
        portfolio
            .text("#sample-actions")
            .contains("Everything: 2 actions to answer")
    );
    assert!(portfolio.texts("#sign-off-link").is_empty());
    let page = assessor.get(&sign_off).await;
    assert!(
        page.text("#sample-actions-waiting")
            .contains("2 actions to answer")
    );
    let shown = assessor.get(&format!("/evidence/{evidence}")).await;
    assert!(
        shown
            .text("#samples")
            .contains("Observe PC1 at the next release.")
    );
    let forms = shown.attrs("#samples form", "action");
    assert_eq!(forms.len(), 2, "an answer form per action");
    let empty = assessor.post_form(&forms[0], &[("answer", " ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text("#samples .error-summary")
            .contains("Say what was done about action 1")
    );
    for (form, answer) in forms
        .iter()
        .zip(["Observed on 3 November.", "Attendees listed."])
    {
        assessor
            .post_form(form, &[("answer", answer)])
            .await
            .assert_redirect_to(&format!("/evidence/{evidence}#samples"));
    }
    // Answered once only.
    assert_eq!(
        assessor
            .post_form(&forms[0], &[("answer", "again")])
            .await
            .status,
        StatusCode::CONFLICT
    );
    let read = iqa.get(&format!("/evidence/{evidence}")).await;
    assert!(read.text("#samples").contains("Observed on 3 November."));

    assessor
        .post_form(&sign_off, &[("declaration", "yes")])
        .await
        .assert_redirect_to(&format!("/enrolments/{}", enrolled.enrolment));

    // The portfolio archive keeps the sample with its actions and answers.
    let (status, _, body) = iqa
        .get_bytes(&format!("/enrolments/{}/archive.zip", enrolled.enrolment))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut archive.by_index(0).expect("manifest"), &mut manifest)
        .expect("text");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    let sample = &manifest["evidence"][0]["iqa_samples"][0];
    assert_eq!(sample["decision"], "disagree");
    assert_eq!(
        sample["action_items"][0]["answer"],
        "Observed on 3 November."
    );
}

#[sqlx::test]
async fn only_the_enrolments_iqa_samples_and_only_judged_evidence(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor, evidence) = all_met(&app, "own").await;
    let other = app.enrolled("oth").await;
    let stranger = app.browser_signed_in_as(other.iqa).await;
    let samples = format!("/evidence/{evidence}/samples");
    let agree = [("decision", "agree")];
    assert_eq!(
        stranger.post_form(&samples, &agree).await.status,
        StatusCode::NOT_FOUND
    );
    // The assessor is no IQA: the route is not theirs.
    assert_eq!(
        assessor.post_form(&samples, &agree).await.status,
        StatusCode::FORBIDDEN
    );

    // Submitted but not judged: nothing to sample yet.
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let fresh = app
        .submit_evidence(&candidate, &enrolled, "Later piece", "product", &["PC1"])
        .await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    assert_eq!(
        iqa.post_form(&format!("/evidence/{fresh}/samples"), &agree)
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert!(
        iqa.get(&format!("/evidence/{fresh}"))
            .await
            .texts("#sample-form")
            .is_empty()
    );

    iqa.post_form(&samples, &agree)
        .await
        .assert_redirect_to(&format!("/evidence/{evidence}#samples"));
    let page = candidate.get(&format!("/evidence/{evidence}")).await;
    assert!(page.text("#samples").contains("Agreed with the judgements"));
}

#[sqlx::test]
async fn the_sampling_plan_shows_planned_against_done(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (first, _, sampled) = all_met(&app, "pla").await;
    // A classmate with the same assessor and IQA, judged but not sampled.
    let second = app
        .classmate(&first, "pla2@example.org", "Second Candidate")
        .await;
    let candidate = app.browser_signed_in_as(second.candidate).await;
    let assessor = app.browser_signed_in_as(first.assessor).await;
    let other = app
        .submit_evidence(&candidate, &second, "Release notes", "product", &["PC2"])
        .await;
    app.judge(&assessor, &other, &[("PC2", true, "")]).await;
    let iqa = app.browser_signed_in_as(first.iqa).await;
    iqa.post_form(
        &format!("/evidence/{sampled}/samples"),
        &[("decision", "agree")],
    )
    .await
    .assert_redirect_to(&format!("/evidence/{sampled}#samples"));

    let plan_url = format!("/cohorts/{}/sampling-plan", first.cohort);
    assert!(
        iqa.get("/quality")
            .await
            .text("#sampling-plans")
            .contains("pla cohort")
    );
    let page = iqa.get(&plan_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text("#plan-updated").contains("No plan yet"));

    let percent = format!("percent-{}", first.assessor.0);
    let pc1 = app.criterion("PC1").await.to_string();
    let pc2 = app.criterion("PC2").await.to_string();
    let refused = iqa
        .post_form(&plan_url, &[(&percent, "150"), ("method", "observation")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.attr(&format!("#{percent}"), "value").as_deref(),
        Some("150")
    );
    assert!(refused.attr("#method-observation", "checked").is_some());

    iqa.post_form(
        &plan_url,
        &[
            (&percent, "75"),
            ("method", "observation"),
            ("method", "product"),
            ("criterion", &pc1),
            ("criterion", &pc2),
        ],
    )
    .await
    .assert_redirect_to(&plan_url);
    let page = iqa.get(&plan_url).await;
    // One of two judged pieces sampled: 50% against 75% planned.
    let line = page.text("#plan-assessors tbody tr");
    assert!(line.contains("1 (50%)"), "{line}");
    assert!(line.contains("75%") && line.contains("Behind"), "{line}");
    let grid = page.texts("#plan-grid tbody tr");
    assert_eq!(grid.len(), 4, "two methods and two criteria: {grid:?}");
    assert!(grid[0].starts_with("Observation") && grid[0].contains("sampled"));
    assert!(grid[1].starts_with("Product") && grid[1].contains("not sampled yet"));
    assert!(
        app.audit_actions()
            .await
            .contains(&"cohort.sampling_plan_saved".to_owned())
    );

    // Admins keep it too; another cohort's IQA does not see it.
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    assert_eq!(admin.get(&plan_url).await.status, StatusCode::OK);
    let outsider = app.enrolled("out").await;
    let stranger = app.browser_signed_in_as(outsider.iqa).await;
    assert_eq!(stranger.get(&plan_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        stranger
            .post_form(&plan_url, &[(&percent, "10")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn a_form_sent_twice_makes_one_piece_one_comment_and_one_sample(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, _, evidence) = all_met(&app, "twi").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;

    // The key comes with the page, as a browser would send it back.
    let form = candidate
        .get(&format!("/enrolments/{}/evidence/new", enrolled.enrolment))
        .await;
    let key = form
        .attr("input[name=submission_key]", "value")
        .expect("a one-time key");
    let pc1 = app.criterion("PC1").await.to_string();
    let fields = [
        ("submission_key", key.as_str()),
        ("title", "Sent twice"),
        ("method", "product"),
        ("activity_on", "2026-10-01"),
        ("statement", "A double click."),
        ("claim", pc1.as_str()),
        ("declaration", "yes"),
        ("action", "submit"),
    ];
    let uri = format!("/enrolments/{}/evidence/new", enrolled.enrolment);
    let first = candidate.post_multipart(&uri, &fields, &[]).await;
    let made = first.location().expect("submitted").to_owned();
    candidate
        .post_multipart(&uri, &fields, &[])
        .await
        .assert_redirect_to(&made);
    assert_eq!(
        app.count("select count(*) from evidence where title = 'Sent twice'")
            .await,
        1
    );

    let page = candidate.get(&format!("/evidence/{evidence}")).await;
    let key = page
        .attr("#conversation input[name=submission_key]", "value")
        .expect("key");
    for _ in 0..2 {
        candidate
            .post_form(
                &format!("/evidence/{evidence}/comments"),
                &[("submission_key", &key), ("comment", "Only once, please.")],
            )
            .await
            .assert_redirect_to(&format!("/evidence/{evidence}#conversation"));
    }
    assert_eq!(
        app.count("select count(*) from evidence_comment where body = 'Only once, please.'")
            .await,
        1
    );

    let page = iqa.get(&format!("/evidence/{evidence}")).await;
    let key = page
        .attr("#sample-form input[name=submission_key]", "value")
        .expect("key");
    for _ in 0..2 {
        iqa.post_form(
            &format!("/evidence/{evidence}/samples"),
            &[("submission_key", &key), ("decision", "agree")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{evidence}#samples"));
    }
    assert_eq!(app.count("select count(*) from evidence_sample").await, 1);
    let page = candidate.get(&format!("/evidence/{evidence}")).await;
    let key = page
        .attr("#witnesses input[name=submission_key]", "value")
        .expect("key");
    for _ in 0..2 {
        candidate
            .post_form(
                &format!("/evidence/{evidence}/witness"),
                &[
                    ("submission_key", key.as_str()),
                    ("witness_name", "Jo Lead"),
                    ("witness_email", "jo@example.org"),
                    ("witness_role", "Team lead"),
                ],
            )
            .await
            .assert_redirect_to(&format!("/evidence/{evidence}#witnesses"));
    }
    assert_eq!(app.count("select count(*) from witness_request").await, 1);

    // A fresh page gives a fresh key: sampling again later is a new sample.
    let again = iqa.get(&format!("/evidence/{evidence}")).await;
    assert_ne!(
        again.attr("#sample-form input[name=submission_key]", "value"),
        Some(key)
    );
}

#[sqlx::test]
async fn forms_sent_twice_at_once_have_one_effect_in_each_of_50_rounds(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, _, evidence) = all_met(&app, "rnd").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let new_evidence = format!("/enrolments/{}/evidence/new", enrolled.enrolment);
    let comments = format!("/evidence/{evidence}/comments");
    let file = crate::helpers::pdf_of(300 * 1024, 5);
    for round in 0..50 {
        // A new draft with a file, sent twice at once.
        let key = uuid::Uuid::new_v4().to_string();
        let title = format!("Round {round}");
        let fields = [
            ("submission_key", key.as_str()),
            ("title", title.as_str()),
            ("action", "save"),
        ];
        let files: [(&str, &str, &[u8]); 1] = [("file", "round.pdf", &file)];
        let (first, second) = tokio::join!(
            candidate.post_multipart(&new_evidence, &fields, &files),
            candidate.post_multipart(&new_evidence, &fields, &files)
        );
        assert_eq!(
            (first.status, second.status),
            (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
            "round {round}"
        );
        let (a, b) = (first.location(), second.location());
        assert_eq!(
            a.map(|l| l.trim_end_matches("/edit")),
            b.map(|l| l.trim_end_matches("/edit")),
            "both lead to the one draft"
        );

        // A comment, sent twice at once.
        let key = uuid::Uuid::new_v4().to_string();
        let body = format!("Comment {round}");
        let fields = [("submission_key", key.as_str()), ("comment", body.as_str())];
        let (first, second) = tokio::join!(
            candidate.post_form(&comments, &fields),
            candidate.post_form(&comments, &fields)
        );
        assert_eq!(first.status, StatusCode::SEE_OTHER, "round {round}");
        assert_eq!(second.status, StatusCode::SEE_OTHER, "round {round}");
    }
    assert_eq!(
        app.count("select count(*) from evidence where title like 'Round %'")
            .await,
        50
    );
    assert_eq!(
        app.count("select count(*) from evidence_file where file_name = 'round.pdf'")
            .await,
        50
    );
    assert_eq!(
        app.count("select count(*) from evidence_comment where body like 'Comment %'")
            .await,
        50
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_event a join evidence e on a.entity_id = e.evidence_id::text
              where e.title like 'Round %' and a.action = 'evidence.draft_created'"
        )
        .await,
        50,
        "one event for each draft made"
    );
}

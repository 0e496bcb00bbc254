//! Judging evidence and the competency status that follows from the judgements.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::{Browser, Enrolled, TestApp, TestResponse};

/// Submits evidence by observation claiming `codes`; returns its id.
async fn submit(
    app: &TestApp,
    candidate: &Browser<'_>,
    enrolled: &Enrolled,
    title: &str,
    codes: &[&str],
) -> String {
    app.submit_evidence(candidate, enrolled, title, "observation", codes)
        .await
}

/// Starts a revision of evidence `id` as its candidate; returns the new draft's id.
async fn revise(candidate: &Browser<'_>, id: &str) -> String {
    candidate
        .post_form(&format!("/evidence/{id}/revise"), &[])
        .await
        .location()
        .expect("draft")
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned()
}

/// Judges evidence: each (code, met, feedback), met ones with all five checks.
async fn judge(
    app: &TestApp,
    assessor: &Browser<'_>,
    evidence: &str,
    decisions: &[(&str, bool, &str)],
) -> TestResponse {
    app.judge(assessor, evidence, decisions).await
}

async fn status_of(browser: &Browser<'_>, enrolled: &Enrolled, code: &str) -> String {
    browser
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await
        .attr(&format!("#criterion-{code} .status"), "data-status")
        .expect("a status")
}

#[sqlx::test]
async fn the_assessor_judges_the_claims_and_the_candidate_reads_the_feedback(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("ana").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = submit(
        &app,
        &candidate,
        &enrolled,
        "Strategy paper",
        &["PC2", "K1"],
    )
    .await;

    let page = assessor.get(&format!("/evidence/{evidence}")).await;
    assert_eq!(page.texts("#judging legend .criterion-code"), ["PC2", "K1"]);
    assert!(
        candidate
            .get(&format!("/evidence/{evidence}"))
            .await
            .texts("#judging")
            .is_empty(),
        "candidates do not judge"
    );

    judge(
        &app,
        &assessor,
        &evidence,
        &[
            ("PC2", true, ""),
            ("K1", false, "Explain the strategies you compared."),
        ],
    )
    .await
    .assert_redirect_to(&format!("/evidence/{evidence}"));

    let seen = candidate.get(&format!("/evidence/{evidence}")).await;
    assert_eq!(
        seen.attr("#claim-PC2 .status", "data-status").as_deref(),
        Some("met")
    );
    assert_eq!(
        seen.attr("#claim-K1 .status", "data-status").as_deref(),
        Some("not_met")
    );
    assert_eq!(
        seen.text("#claim-K1 .feedback"),
        "Explain the strategies you compared."
    );
    assert_eq!(status_of(&candidate, &enrolled, "PC2").await, "met");
    assert_eq!(status_of(&candidate, &enrolled, "K1").await, "not_met");
    assert_eq!(status_of(&candidate, &enrolled, "PC1").await, "not_started");
    let home = candidate.get("/").await;
    assert_eq!(
        home.text("#enrolments .next-step"),
        "Next: Read the feedback and revise the evidence marked not met."
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"evidence.judged".to_owned())
    );
}

#[sqlx::test]
async fn some_claims_are_judged_now_and_the_rest_later_with_problems_shown_at_the_top(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("ben").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = submit(&app, &candidate, &enrolled, "Runbook", &["PC7", "K10"]).await;
    let path = format!("/evidence/{evidence}");
    let judgements = format!("{path}/judgements");
    let pc7 = app.criterion("PC7").await;
    let k10 = app.criterion("K10").await;
    assert_eq!(
        assessor.get(&path).await.text(".assessment-state"),
        "Awaiting assessment"
    );

    // Not met without feedback is refused; the problem is listed at the top of the page.
    let response = assessor
        .post_form(
            &judgements,
            &[
                (&format!("decision-{pc7}"), "met"),
                (&format!("decision-{k10}"), "not_met"),
                (&format!("feedback-{k10}"), "  "),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.texts(".error-summary a"),
        ["K10: write feedback saying what is missing"]
    );
    assert_eq!(
        response.attr(".error-summary a", "href").as_deref(),
        Some("#feedback-K10")
    );
    let html = response.body.as_str();
    assert!(
        html.find("error-summary") < html.find("id=\"statement-heading\""),
        "the error summary comes before the evidence"
    );
    assert!(
        response.attr("#met-PC7", "checked").is_some(),
        "the decision typed is kept"
    );
    assert_eq!(app.count("select count(*) from judgement").await, 0);

    let undecided = assessor.post_form(&judgements, &[]).await;
    assert_eq!(undecided.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        undecided.texts(".error-summary a"),
        ["Choose met or not met for at least one criterion; leave the others for later"]
    );

    // Met is one choice and records all five checks; K10 is left for later.
    assessor
        .post_form(
            &judgements,
            &[
                (&format!("decision-{pc7}"), "met"),
                (&format!("decision-{k10}"), "later"),
            ],
        )
        .await
        .assert_redirect_to(&path);
    let page = assessor.get(&path).await;
    assert_eq!(page.text("#flash"), "Saved: PC7 met.");
    assert_eq!(page.text(".assessment-state"), "Partly assessed");
    assert_eq!(
        page.texts("#judging > form > fieldset legend .criterion-code"),
        ["K10"],
        "what waits comes first"
    );
    assert_eq!(
        page.texts("#judging .judged-again legend .criterion-code"),
        ["PC7"]
    );
    let checks: (bool, bool, bool, bool, bool) =
        sqlx::query_as("select valid, authentic, current, sufficient, reliable from judgement")
            .fetch_one(&app.pool)
            .await
            .expect("judgement");
    assert_eq!(checks, (true, true, true, true, true));
    assert_eq!(status_of(&candidate, &enrolled, "K10").await, "awaiting");

    // The rest, then the way to what waits next.
    let next = submit(&app, &candidate, &enrolled, "Incident review", &["PC8"]).await;
    let seen = page
        .attr("input[name=judgements_seen]", "value")
        .expect("seen");
    assessor
        .post_form(
            &judgements,
            &[
                ("judgements_seen", seen.as_str()),
                (&format!("decision-{k10}"), "not_met"),
                (&format!("feedback-{k10}"), "Name the risks you weighed."),
                (&format!("check-{k10}"), "valid"),
            ],
        )
        .await
        .assert_redirect_to(&path);
    let page = assessor.get(&path).await;
    assert_eq!(page.text("#flash"), "Saved: K10 not met.");
    assert_eq!(page.text(".assessment-state"), "Assessed");
    assert_eq!(
        page.attr("#judge-next", "href"),
        Some(format!("/evidence/{next}"))
    );
    assert_eq!(
        candidate.get(&path).await.text(".assessment-state"),
        "Assessed"
    );
}

#[sqlx::test]
async fn only_the_enrolments_own_assessor_can_judge(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("cat").await;
    let other = app.enrolled("dov").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let evidence = submit(&app, &candidate, &enrolled, "Review", &["PC1"]).await;

    let stranger = app.browser_signed_in_as(other.assessor).await;
    assert_eq!(
        stranger.get(&format!("/evidence/{evidence}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        judge(&app, &stranger, &evidence, &[("PC1", true, "")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    assert_eq!(
        judge(&app, &iqa, &evidence, &[("PC1", true, "")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        judge(&app, &candidate, &evidence, &[("PC1", true, "")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(
        iqa.get(&format!("/evidence/{evidence}"))
            .await
            .texts("#judging")
            .is_empty()
    );
    assert_eq!(app.count("select count(*) from judgement").await, 0);
}

#[sqlx::test]
async fn not_met_then_met_by_a_revision_and_met_by_one_of_two_claims(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("eli").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;

    // One of two claims met is enough.
    let first = submit(&app, &candidate, &enrolled, "First", &["PC3"]).await;
    let second = submit(&app, &candidate, &enrolled, "Second", &["PC3"]).await;
    judge(
        &app,
        &assessor,
        &first,
        &[("PC3", false, "Not enough detail.")],
    )
    .await;
    assert_eq!(
        status_of(&candidate, &enrolled, "PC3").await,
        "awaiting",
        "one claim still awaits"
    );
    judge(&app, &assessor, &second, &[("PC3", true, "")]).await;
    assert_eq!(status_of(&candidate, &enrolled, "PC3").await, "met");

    // Not met, then met by a revision; the old version cannot be judged any more.
    let v1 = submit(&app, &candidate, &enrolled, "Budget case", &["PC4"]).await;
    judge(
        &app,
        &assessor,
        &v1,
        &[("PC4", false, "Add the cost figures.")],
    )
    .await;
    assert_eq!(status_of(&candidate, &enrolled, "PC4").await, "not_met");
    let revise = candidate
        .post_form(&format!("/evidence/{v1}/revise"), &[])
        .await;
    let v2 = revise
        .location()
        .expect("draft")
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned();
    let pc4 = app.criterion("PC4").await.to_string();
    candidate
        .post_multipart(
            &format!("/evidence/{v2}/edit"),
            &[
                ("title", "Budget case with figures"),
                ("method", "product"),
                ("activity_on", "2026-10-03"),
                ("statement", "Now with the figures."),
                ("claim", &pc4),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        status_of(&candidate, &enrolled, "PC4").await,
        "awaiting",
        "the superseded judgement no longer counts"
    );
    assert_eq!(
        judge(&app, &assessor, &v1, &[("PC4", true, "")])
            .await
            .status,
        StatusCode::CONFLICT
    );
    judge(&app, &assessor, &v2, &[("PC4", true, "")]).await;
    assert_eq!(status_of(&candidate, &enrolled, "PC4").await, "met");
}

#[sqlx::test]
async fn a_revision_keeps_what_was_met_until_the_assessor_reverses_it_with_a_reason(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("kit").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let portfolio_path = format!("/enrolments/{}", enrolled.enrolment);

    let v1 = submit(
        &app,
        &candidate,
        &enrolled,
        "Release plan",
        &["PC1", "PC2", "PC4"],
    )
    .await;
    judge(
        &app,
        &assessor,
        &v1,
        &[
            ("PC1", true, ""),
            ("PC2", true, ""),
            ("PC4", false, "Add the cost figures."),
        ],
    )
    .await;
    assert_eq!(
        candidate.get(&portfolio_path).await.text("#progress"),
        "In progress. PC 2 of 9, K 0 of 12 met."
    );

    // The revise form shows what the assessor said and ticks only the claim not met.
    let draft = revise(&candidate, &v1).await;
    let form = candidate.get(&format!("/evidence/{draft}/edit")).await;
    assert_eq!(
        form.texts("#earlier-judgements li"),
        [
            "PC1 Met (kit Assessor)",
            "PC2 Met (kit Assessor)",
            "PC4 Not met: Add the cost figures. (kit Assessor)"
        ]
    );
    let ticked: Vec<String> = form
        .html()
        .select(&scraper::Selector::parse("input[name=claim][checked]").expect("selector"))
        .filter_map(|input| input.value().id().map(str::to_owned))
        .collect();
    assert_eq!(ticked, ["claim-PC4"]);
    assert_eq!(
        form.texts("#claims .tag"),
        ["Met: stays met", "Met: stays met"]
    );

    let pc4 = app.criterion("PC4").await.to_string();
    candidate
        .post_multipart(
            &format!("/evidence/{draft}/edit"),
            &[
                ("title", "Release plan with costs"),
                ("method", "product"),
                ("activity_on", "2026-10-03"),
                ("statement", "Now with the cost figures."),
                ("claim", &pc4),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{draft}"));
    let portfolio = candidate.get(&portfolio_path).await;
    assert_eq!(
        portfolio.text("#progress"),
        "In progress. PC 2 of 9, K 0 of 12 met.",
        "what version 1 met is kept"
    );
    assert_eq!(status_of(&candidate, &enrolled, "PC1").await, "met");
    assert_eq!(status_of(&candidate, &enrolled, "PC4").await, "awaiting");
    assert_eq!(
        portfolio.text("#criterion-PC1 li"),
        "Release plan (v1) met, kept after revision"
    );

    // Only the assessor reverses, on the earlier version, and only with a reason.
    let reverse_path = format!(
        "/evidence/{v1}/criteria/{}/reverse",
        app.criterion("PC1").await
    );
    assert!(
        candidate
            .get(&format!("/evidence/{v1}"))
            .await
            .texts("#claim-PC1 a")
            .is_empty()
    );
    assert_eq!(
        assessor
            .get(&format!("/evidence/{v1}"))
            .await
            .texts("#claim-PC1 a"),
        ["Reverse this decision on PC1"]
    );
    assert_eq!(assessor.get(&reverse_path).await.status, StatusCode::OK);
    let (_, stranger) = app.signed_in(&[attest::identity::Role::Assessor]).await;
    assert_eq!(
        stranger.get(&reverse_path).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger
            .post_form(&reverse_path, &[("reason", "No.")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let judgements = app.count("select count(*) from judgement").await;
    let no_reason = assessor
        .post_form(&reverse_path, &[("reason", "   ")])
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_reason.texts(".error-summary a"),
        ["Give the reason for reversing this decision"]
    );
    assert_eq!(
        app.count("select count(*) from judgement").await,
        judgements
    );
    assessor
        .post_form(
            &reverse_path,
            &[(
                "reason",
                "The release observed was led by another engineer.",
            )],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{v1}"));
    assert_eq!(status_of(&candidate, &enrolled, "PC1").await, "not_started");
    assert_eq!(
        candidate.get(&portfolio_path).await.text("#progress"),
        "In progress. PC 1 of 9, K 0 of 12 met."
    );
    let reversed = candidate.get(&format!("/evidence/{v1}")).await;
    assert!(
        reversed
            .text("#claim-PC1")
            .contains("Reversed after the revision, for this reason: The release observed was led by another engineer.")
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"evidence.kept_met_reversed".to_owned())
    );
    // Reversed once: there is nothing left to reverse, and a current version is judged on
    // its own page instead.
    assert_eq!(
        assessor
            .post_form(&reverse_path, &[("reason", "Again.")])
            .await
            .status,
        StatusCode::CONFLICT
    );
    assessor
        .get(&reverse_path)
        .await
        .assert_redirect_to(&format!("/evidence/{v1}"));
    judge(&app, &assessor, &draft, &[("PC4", true, "")]).await;
    assert_eq!(
        assessor
            .post_form(
                &format!("/evidence/{draft}/criteria/{pc4}/reverse"),
                &[("reason", "Not a kept met.")],
            )
            .await
            .status,
        StatusCode::CONFLICT
    );
}

#[sqlx::test]
async fn a_met_left_out_of_a_revision_is_claimed_again_when_no_longer_met(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("lof").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let v1 = submit(&app, &candidate, &enrolled, "Runbook", &["PC1", "PC4"]).await;
    judge(
        &app,
        &assessor,
        &v1,
        &[
            ("PC1", true, ""),
            ("PC4", false, "Add the escalation path."),
        ],
    )
    .await;
    let draft = revise(&candidate, &v1).await;
    // While the revision is open, the assessor changes their mind about PC1 on version 1.
    judge(
        &app,
        &assessor,
        &v1,
        &[("PC1", false, "The runbook was written by someone else.")],
    )
    .await
    .assert_redirect_to(&format!("/evidence/{v1}"));
    let form = candidate.get(&format!("/evidence/{draft}/edit")).await;
    assert_eq!(
        form.texts("#claims .tag"),
        ["No longer met: claimed again when you submit"]
    );

    // The candidate's form, drawn before, claims PC4 only; PC1 goes back to the assessor.
    let pc4 = app.criterion("PC4").await.to_string();
    candidate
        .post_multipart(
            &format!("/evidence/{draft}/edit"),
            &[
                ("title", "Runbook, my own"),
                ("method", "product"),
                ("activity_on", "2026-10-03"),
                ("statement", "Rewritten by me, with the escalation path."),
                ("claim", &pc4),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{draft}"));
    let page = assessor.get(&format!("/evidence/{draft}")).await;
    assert_eq!(
        page.attrs("#claims tbody tr", "id"),
        ["claim-PC1", "claim-PC4"]
    );
    assert_eq!(status_of(&candidate, &enrolled, "PC1").await, "awaiting");
}

#[sqlx::test]
async fn the_portfolio_charts_criteria_met_week_by_week(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("cha").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let history = || async {
        sqlx::query_scalar!(
            r#"select criteria_met as "met!" from enrolment_met_history where enrolment_id = $1 order by history_id"#,
            enrolled.enrolment
        )
        .fetch_all(&app.pool)
        .await
        .expect("history")
    };
    let first = submit(&app, &candidate, &enrolled, "Plan", &["PC1", "PC2"]).await;
    judge(
        &app,
        &assessor,
        &first,
        &[("PC1", true, ""), ("PC2", false, "More.")],
    )
    .await;
    let second = submit(&app, &candidate, &enrolled, "Review", &["K1"]).await;
    judge(&app, &assessor, &second, &[("K1", true, "")]).await;
    assert_eq!(
        history().await.last().copied(),
        Some(2),
        "written each time the number met changes"
    );
    let kept = history().await;
    assert!(
        kept.windows(2).all(|w| w[0] != w[1]),
        "nothing is written while the number stays: {kept:?}"
    );

    let portfolio = candidate
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    let desc = portfolio.text("#progress-desc");
    assert!(desc.ends_with(": 2 of 21 met."), "{desc}");
    assert!(
        portfolio
            .attr("#progress-over-time polyline", "points")
            .is_some()
    );

    // The cohort's chart adds up its enrolments: a classmate's one met makes three of 42.
    let classmate = app
        .classmate(&enrolled, "cha2@example.org", "Cha Two")
        .await;
    let theirs = app.browser_signed_in_as(classmate.candidate).await;
    let piece = submit(&app, &theirs, &classmate, "Notes", &["K2"]).await;
    judge(&app, &assessor, &piece, &[("K2", true, "")]).await;
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let report = admin
        .get(&format!("/admin/cohorts/{}/report", enrolled.cohort))
        .await;
    let src = report.attr("#cohort-progress img", "src").expect("chart");
    let (status, headers, body) = admin.get_bytes(&src).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/svg+xml; charset=utf-8")
    );
    let svg = String::from_utf8(body).expect("text");
    assert!(svg.contains(": 3 of 42 met. </desc>"), "{svg}");
    assert!(svg.contains("<polyline"));
}

#[sqlx::test]
async fn a_later_judgement_supersedes_and_the_earlier_one_stays(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("fen").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = submit(&app, &candidate, &enrolled, "Metrics", &["PC8"]).await;
    judge(
        &app,
        &assessor,
        &evidence,
        &[("PC8", false, "Which metrics?")],
    )
    .await;
    judge(&app, &assessor, &evidence, &[("PC8", true, "Clear now.")]).await;
    let page = candidate.get(&format!("/evidence/{evidence}")).await;
    assert_eq!(
        page.attr("#claim-PC8 .status", "data-status").as_deref(),
        Some("met")
    );
    assert!(
        page.text("#claim-PC8 .judgement")
            .contains("judgement 2; earlier ones kept")
    );
    assert_eq!(app.count("select count(*) from judgement").await, 2);
    assert!(
        sqlx::query!("update judgement set met = true")
            .execute(&app.pool)
            .await
            .is_err(),
        "append-only"
    );
}

#[sqlx::test]
async fn caseloads_and_reports_find_people_by_name_and_by_how_long_they_have_waited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.enrolled("uma").await;
    let second = app
        .classmate(&first, "vic.candidate@example.org", "Vic Candidate")
        .await;
    let third = app
        .classmate(&first, "wyn.candidate@example.org", "Wyn Candidate")
        .await;
    // Vic's claim waits 15 days, Wyn's 8, Uma's 1.
    let vic = app.browser_signed_in_as(second.candidate).await;
    submit(&app, &vic, &second, "Oldest", &["PC1"]).await;
    app.clock().advance(time::Duration::days(7));
    let wyn = app.browser_signed_in_as(third.candidate).await;
    submit(&app, &wyn, &third, "Middle", &["PC2"]).await;
    app.clock().advance(time::Duration::days(7));
    let uma = app.browser_signed_in_as(first.candidate).await;
    submit(&app, &uma, &first, "Newest", &["PC3"]).await;
    app.clock().advance(time::Duration::days(1));

    let assessor = app.browser_signed_in_as(first.assessor).await;
    let page = assessor.get("/caseload").await;
    assert_eq!(
        page.texts("#caseload tbody th"),
        ["Vic Candidate", "Wyn Candidate", "uma Candidate"]
    );
    let levels: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("#caseload .wait").expect("selector"))
        .filter_map(|e| e.value().attr("class").map(str::to_owned))
        .collect();
    assert_eq!(
        levels,
        ["wait wait--red", "wait wait--amber", "wait wait--green"]
    );
    assert_eq!(
        page.texts("#caseload .wait")[0],
        "15 days, overdue",
        "the colour is said in words too"
    );

    let named = assessor.get("/caseload?name=+WYN+").await;
    assert_eq!(named.texts("#caseload tbody th"), ["Wyn Candidate"]);
    assert_eq!(
        named.text("#caseload-summary"),
        "1 claim waiting for your judgement across 1 enrolment."
    );
    let waiting = assessor.get("/caseload?waiting=7").await;
    assert_eq!(
        waiting.texts("#caseload tbody th"),
        ["Vic Candidate", "Wyn Candidate"]
    );
    assert_eq!(
        waiting.text("#caseload-summary"),
        "2 claims waiting for your judgement across 2 enrolments."
    );
    let wrong = assessor.get("/caseload?waiting=a+week").await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert_eq!(
        wrong.texts(".error-summary a"),
        ["Enter the days as a whole number, such as 7"]
    );
    assert_eq!(
        wrong.texts("#caseload tbody th").len(),
        3,
        "a filter typed wrongly filters nothing"
    );
    assert_eq!(wrong.attr("#waiting", "value").as_deref(), Some("a week"));

    // The cohort report finds the same people, and counts what it keeps.
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let report = format!("/admin/cohorts/{}/report", first.cohort);
    let kept = admin.get(&format!("{report}?waiting=10")).await;
    assert_eq!(kept.texts("#report-rows tbody th a"), ["Vic Candidate"]);
    assert!(kept.text("#summary-figures").starts_with("1 enrolment;"));
    assert_eq!(
        kept.attr("#csv-link", "href"),
        Some(format!(
            "{report}.csv?assessor=&status=&name=&waiting=10&sort="
        ))
    );
    let (status, _, csv) = admin.get_bytes(&format!("{report}.csv?waiting=10")).await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).expect("utf-8");
    assert_eq!(csv.lines().count(), 2, "a header and Vic: {csv}");
    let by_name = admin.get(&format!("{report}?name=candidate")).await;
    assert_eq!(by_name.texts("#report-rows tbody th a").len(), 3);
    assert_eq!(
        admin
            .get(&format!("{report}?waiting=-3"))
            .await
            .texts(".error-summary a"),
        ["Enter the days as a whole number, such as 7"]
    );
}

#[sqlx::test]
async fn the_caseload_lists_the_assessors_enrolments_longest_waiting_first(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.enrolled("gil").await;
    let stranger = app.enrolled("hob").await;
    // A second candidate for the same assessor, in the same cohort.
    let second = app
        .classmate(&first, "ivo.candidate@example.org", "Ivo Candidate")
        .await;

    let ivo = app.browser_signed_in_as(second.candidate).await;
    let older = submit(&app, &ivo, &second, "Older", &["PC1", "PC2"]).await;
    app.clock().advance(time::Duration::days(3));
    // Sessions do not last three days: sign in after the wait.
    let gil = app.browser_signed_in_as(first.candidate).await;
    submit(&app, &gil, &first, "Newer", &["K1"]).await;
    let hob = app.browser_signed_in_as(stranger.candidate).await;
    submit(&app, &hob, &stranger, "Not mine", &["K2"]).await;

    let assessor = app.browser_signed_in_as(first.assessor).await;
    let page = assessor.get("/caseload").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.texts("#caseload tbody th"),
        ["Ivo Candidate", "gil Candidate"],
        "oldest first, only mine"
    );
    assert_eq!(page.texts("#caseload .awaiting"), ["2", "1"]);
    assert_eq!(
        page.attr("#caseload .next-link", "href"),
        Some(format!("/evidence/{older}#judging"))
    );
    assert_eq!(
        page.text("#caseload-summary"),
        "3 claims waiting for your judgement across 2 enrolments."
    );

    judge(
        &app,
        &assessor,
        &older,
        &[("PC1", true, ""), ("PC2", true, "")],
    )
    .await;
    let page = assessor.get("/caseload").await;
    assert_eq!(
        page.texts("#caseload tbody th"),
        ["gil Candidate", "Ivo Candidate"],
        "nothing waits for Ivo now"
    );
    let in_progress = assessor.get("/caseload?status=in_progress").await;
    assert_eq!(in_progress.texts("#caseload tbody th").len(), 2);
    assert_eq!(
        assessor
            .get("/caseload?status=verified")
            .await
            .texts("#no-cases")
            .len(),
        1
    );
    let far = assessor.get("/caseload?page=18446744073709551615").await;
    assert_eq!(
        far.status,
        StatusCode::OK,
        "a page past the end shows the last one"
    );
    assert_eq!(far.texts("#caseload tbody th").len(), 2);
}

use crate::helpers::ALL_CODES as ALL;

/// An enrolment whose evidence claims all 21 criteria, judged met except `unmet`.
async fn judged_enrolment<'a>(
    app: &'a TestApp,
    label: &str,
    unmet: &[&str],
) -> (Enrolled, Browser<'a>, String) {
    let enrolled = app.enrolled(label).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = submit(app, &candidate, &enrolled, "Everything", &ALL).await;
    let decisions: Vec<(&str, bool, &str)> = ALL
        .iter()
        .map(|code| (*code, !unmet.contains(code), "More is needed here."))
        .collect();
    judge(app, &assessor, &evidence, &decisions)
        .await
        .assert_redirect_to(&format!("/evidence/{evidence}"));
    (enrolled, assessor, evidence)
}

#[sqlx::test]
async fn sign_off_is_refused_with_twenty_of_twenty_one_met(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor, _) = judged_enrolment(&app, "jay", &["K12"]).await;
    let page = assessor
        .get(&format!("/enrolments/{}/sign-off", enrolled.enrolment))
        .await;
    assert_eq!(
        page.text("#sign-off-summary"),
        "20 of 21 criteria of Lead DevOps activities are met."
    );
    assert_eq!(page.texts("#not-ready").len(), 1);
    let refused = assessor
        .post_form(
            &format!("/enrolments/{}/sign-off", enrolled.enrolment),
            &[("declaration", "yes")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused
            .text(".lead")
            .contains("Only 20 of 21 criteria are met")
    );
    assert_eq!(app.count("select count(*) from sign_off").await, 0);
}

#[sqlx::test]
async fn the_assessor_signs_off_a_candidate_with_every_criterion_met(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor, evidence) = judged_enrolment(&app, "kim", &[]).await;
    let path = format!("/enrolments/{}", enrolled.enrolment);
    let portfolio = assessor.get(&path).await;
    assert_eq!(
        portfolio.text("#progress"),
        "Ready for sign-off. PC 9 of 9, K 12 of 12 met."
    );
    let page = assessor.get(&format!("{path}/sign-off")).await;
    assert_eq!(page.texts("#basis tbody tr").len(), 21);
    assert!(
        page.text("label[for=declaration]")
            .starts_with("I confirm the candidate has demonstrated competence")
    );

    let undeclared = assessor.post_form(&format!("{path}/sign-off"), &[]).await;
    assert_eq!(undeclared.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        undeclared.text("#declaration-error"),
        "Error: Confirm the declaration to sign off"
    );

    let other = app.enrolled("lee").await;
    let stranger = app.browser_signed_in_as(other.assessor).await;
    assert_eq!(
        stranger
            .post_form(&format!("{path}/sign-off"), &[("declaration", "yes")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assessor
        .post_form(&format!("{path}/sign-off"), &[("declaration", "yes")])
        .await
        .assert_redirect_to(&path);
    assert_eq!(
        assessor.get(&path).await.text("#progress"),
        "Competent. PC 9 of 9, K 12 of 12 met."
    );
    let row = sqlx::query!("select basis, basis_sha256, sampled, sample_reason from sign_off")
        .fetch_one(&app.pool)
        .await
        .expect("sign-off");
    assert_eq!(row.basis.as_array().map(Vec::len), Some(21));
    assert_eq!(row.basis[0]["evidence_id"], serde_json::json!(evidence));
    let recomputed = attest::crypto::sha256(row.basis.to_string().as_bytes());
    assert_eq!(
        row.basis_sha256,
        recomputed.to_vec(),
        "the digest covers the stored basis"
    );
    assert!(
        row.sampled,
        "the first sign-off of an assessor in a cohort is always sampled"
    );
    assert_eq!(
        row.sample_reason,
        "the assessor's first sign-off in this cohort"
    );
    let again = assessor
        .post_form(&format!("{path}/sign-off"), &[("declaration", "yes")])
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "the same form posted twice signs off once"
    );
    assert_eq!(app.count("select count(*) from sign_off").await, 1);
}

#[sqlx::test]
async fn fifty_rounds_of_two_concurrent_sign_offs_give_exactly_one_each(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor, _) = judged_enrolment(&app, "mo", &[]).await;
    let path = format!("/enrolments/{}/sign-off", enrolled.enrolment);
    let token = assessor.csrf_token().await;
    let headers = [("sec-fetch-site", "same-origin")];
    let fields = [("csrf_token", token.as_str()), ("declaration", "yes")];
    for round in 0..50 {
        let (a, b) = tokio::join!(
            assessor.post_raw(&path, &fields, &headers),
            assessor.post_raw(&path, &fields, &headers)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::SEE_OTHER, StatusCode::CONFLICT],
            "round {round}"
        );
        assert_eq!(app.count("select count(*) from sign_off").await, round + 1);
        // An IQA's disagreement withdraws it, so the next round can sign off again.
        sqlx::query!(
            "insert into review (sign_off_id, iqa_id, decision, actions, reviewed_at)
             select sign_off_id, $1, 'disagree', 'Check again.', now() from sign_off
              where sign_off_id not in (select sign_off_id from review)",
            enrolled.iqa.0
        )
        .execute(&app.pool)
        .await
        .expect("review");
        // As the review route does, in its transaction.
        app.store_status(enrolled.enrolment).await;
    }
}

/// An enrolment with every criterion met and signed off by its assessor.
async fn signed_off<'a>(app: &'a TestApp, label: &str) -> (Enrolled, Browser<'a>) {
    let (enrolled, assessor, _) = judged_enrolment(app, label, &[]).await;
    assessor
        .post_form(
            &format!("/enrolments/{}/sign-off", enrolled.enrolment),
            &[("declaration", "yes")],
        )
        .await
        .assert_redirect_to(&format!("/enrolments/{}", enrolled.enrolment));
    (enrolled, assessor)
}

async fn sign_off_id(app: &TestApp, enrolled: &Enrolled) -> uuid::Uuid {
    sqlx::query_scalar!(
        "select sign_off_id from sign_off where enrolment_id = $1 order by sequence desc limit 1",
        enrolled.enrolment
    )
    .fetch_one(&app.pool)
    .await
    .expect("sign-off")
}

#[sqlx::test]
async fn the_iqa_agrees_and_the_enrolment_is_verified(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, _) = signed_off(&app, "nia").await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    let page = iqa.get("/quality").await;
    assert_eq!(page.texts("#sign-offs .card-title"), ["nia Candidate"]);
    assert!(page.text("#sign-offs .sample").starts_with("Sampled"));
    assert_eq!(page.texts("#coverage tbody th"), ["nia Assessor"]);
    assert_eq!(
        page.texts("#coverage tbody td"),
        ["Observation", "0 of 9", "0 of 12"]
    );

    let id = sign_off_id(&app, &enrolled).await;
    iqa.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
        .await
        .assert_redirect_to("/quality");
    let portfolio = iqa
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert_eq!(
        portfolio.text("#progress"),
        "Verified. PC 9 of 9, K 12 of 12 met."
    );
    assert_eq!(
        iqa.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"sign_off.countersigned".to_owned())
    );
}

#[sqlx::test]
async fn the_iqa_disagrees_and_the_assessor_answers_each_action_before_signing_off_again(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let (enrolled, assessor) = signed_off(&app, "oz").await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let id = sign_off_id(&app, &enrolled).await;
    let portfolio_path = format!("/enrolments/{}", enrolled.enrolment);
    let sign_off_path = format!("/enrolments/{}/sign-off", enrolled.enrolment);

    // Disagreeing without actions is refused, and the choice made is kept on the form.
    let no_actions = iqa
        .post_form(
            &format!("/sign-offs/{id}/review"),
            &[("decision", "disagree"), ("actions", " \r\n ")],
        )
        .await;
    assert_eq!(no_actions.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_actions.texts(".error-summary a"),
        ["Say what the assessor must do when you disagree: one action a line"]
    );
    assert!(
        no_actions
            .attr(&format!("#disagree-{id}"), "checked")
            .is_some(),
        "the choice of disagree is kept"
    );

    iqa.post_form(
        &format!("/sign-offs/{id}/review"),
        &[
            ("decision", "disagree"),
            (
                "actions",
                "Observe PC1 in person.\r\n\r\nAsk for a witness statement for PC6.",
            ),
        ],
    )
    .await
    .assert_redirect_to("/quality");

    // Every one on the enrolment sees the actions: the assessor where they act on them.
    let portfolio = assessor.get(&portfolio_path).await;
    assert_eq!(
        portfolio.text("#progress"),
        "Ready for sign-off. PC 9 of 9, K 12 of 12 met.",
        "back to ready"
    );
    assert_eq!(
        portfolio.texts("#iqa-actions .iqa-action"),
        [
            "Observe PC1 in person.",
            "Ask for a witness statement for PC6."
        ]
    );
    assert!(
        portfolio.texts("#sign-off-link").is_empty(),
        "no Sign off button while actions wait"
    );
    let seen_by_candidate = candidate.get(&portfolio_path).await;
    assert_eq!(seen_by_candidate.texts("#iqa-actions .iqa-action").len(), 2);
    assert!(
        candidate
            .get("/")
            .await
            .text("main")
            .contains("asked your assessor to act on some points"),
        "the candidate is not told they can be signed off"
    );
    let caseload = assessor.get("/caseload").await;
    assert_eq!(
        caseload.text("#caseload .iqa-actions p"),
        "IQA disagreed. 2 of 2 actions to answer"
    );

    // Signing off again is refused until each action has an answer.
    let page = assessor.get(&sign_off_path).await;
    assert_eq!(page.texts("#iqa-actions form").len(), 2);
    assert!(page.texts("#declaration").is_empty());
    let refused = assessor
        .post_form(&sign_off_path, &[("declaration", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let actions: Vec<uuid::Uuid> =
        sqlx::query_scalar!("select iqa_action_id from iqa_action order by position")
            .fetch_all(&app.pool)
            .await
            .expect("actions");
    let answer_path = |action: &uuid::Uuid| {
        format!(
            "/enrolments/{}/iqa-actions/{action}/answer",
            enrolled.enrolment
        )
    };
    let empty = assessor
        .post_form(&answer_path(&actions[0]), &[("answer", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        empty.texts(".error-summary a"),
        ["Say what was done about action 1"]
    );
    // Nobody else answers: not the candidate, not another assessor.
    let (_, stranger) = app.signed_in(&[attest::identity::Role::Assessor]).await;
    assert_eq!(
        stranger
            .post_form(&answer_path(&actions[0]), &[("answer", "Done.")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assessor
        .post_form(
            &answer_path(&actions[0]),
            &[("answer", "Observed PC1 at the release on 3 November.")],
        )
        .await
        .assert_redirect_to(&sign_off_path);
    assert_eq!(
        assessor
            .post_form(&answer_path(&actions[0]), &[("answer", "Again.")])
            .await
            .status,
        StatusCode::CONFLICT,
        "an answer is given once"
    );
    assert_eq!(
        assessor
            .post_form(&sign_off_path, &[("declaration", "yes")])
            .await
            .status,
        StatusCode::CONFLICT,
        "one action still waits"
    );
    assessor
        .post_form(
            &answer_path(&actions[1]),
            &[("answer", "The team lead's witness statement is attached.")],
        )
        .await
        .assert_redirect_to(&sign_off_path);
    assert_eq!(
        assessor
            .get("/caseload")
            .await
            .text("#caseload .iqa-actions p"),
        "IQA disagreed. Every action answered: sign off again"
    );
    assessor
        .post_form(&sign_off_path, &[("declaration", "yes")])
        .await
        .assert_redirect_to(&portfolio_path);

    // The new sign-off is sampled, and the IQA reads the answers when reviewing it.
    let quality = iqa.get("/quality").await;
    let again = sign_off_id(&app, &enrolled).await;
    let card = format!("#sign-off-{again}");
    assert!(
        quality
            .text(&format!("{card} .sample"))
            .starts_with("Sampled the IQA disagreed with the previous sign-off")
    );
    let answers = quality.texts(&format!("{card} .iqa-answer"));
    assert_eq!(answers.len(), 2);
    assert!(
        answers[0].starts_with("Done: Observed PC1 at the release on 3 November. (oz Assessor,")
    );
    assert!(answers[1].starts_with("Done: The team lead's witness statement is attached."));
    let caseload = assessor.get("/caseload").await;
    assert!(
        caseload.texts("#caseload .iqa-actions").is_empty(),
        "the new sign-off stands"
    );
    let audit = app.audit_actions().await;
    assert!(audit.contains(&"sign_off.withdrawn".to_owned()));
    assert_eq!(
        audit.iter().filter(|a| *a == "iqa_action.answered").count(),
        2
    );
}

#[sqlx::test]
async fn nobody_reviews_a_sign_off_of_their_own_or_of_another_iqas_enrolment(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, _) = signed_off(&app, "pam").await;
    let id = sign_off_id(&app, &enrolled).await;
    // The assessor also holds the IQA role and is made the IQA of the enrolment they signed off.
    sqlx::query!(
        "update app_user set roles = '{assessor,iqa}' where user_id = $1",
        enrolled.assessor.0
    )
    .execute(&app.pool)
    .await
    .expect("roles");
    sqlx::query!(
        "update enrolment set iqa_id = $2 where enrolment_id = $1",
        enrolled.enrolment,
        enrolled.assessor.0
    )
    .execute(&app.pool)
    .await
    .expect("iqa");
    let own = app.browser_signed_in_as(enrolled.assessor).await;
    assert!(
        own.get("/quality")
            .await
            .texts("#sign-offs .card")
            .is_empty()
    );
    assert_eq!(
        own.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let other = app.enrolled("quin").await;
    let other_iqa = app.browser_signed_in_as(other.iqa).await;
    assert_eq!(
        other_iqa
            .post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("select count(*) from review").await, 0);
}

#[sqlx::test]
async fn every_sign_off_of_a_trainee_is_sampled_and_others_after_the_first_by_chance(pool: PgPool) {
    let settings = attest::config::Settings {
        iqa_sample_percent: 0,
        ..attest::config::Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let (first, assessor) = signed_off(&app, "rae").await;
    // A second candidate of the same assessor in the same cohort.
    let second = app
        .classmate(&first, "sol.candidate@example.org", "Sol Candidate")
        .await;
    let (candidate, enrolment) = (second.candidate, second.enrolment);
    let sol = app.browser_signed_in_as(candidate).await;
    let evidence = submit(&app, &sol, &second, "Everything", &ALL).await;
    let decisions: Vec<(&str, bool, &str)> = ALL.iter().map(|code| (*code, true, "")).collect();
    judge(&app, &assessor, &evidence, &decisions).await;

    // An admin marks the assessor as a trainee.
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    admin
        .post_form(
            &format!("/admin/users/{}", first.assessor),
            &[
                ("name", "rae Assessor"),
                ("role", "assessor"),
                ("trainee", "yes"),
            ],
        )
        .await
        .assert_redirect_to(&format!("/admin/users/{}", first.assessor));
    let assessor = app.browser_signed_in_as(first.assessor).await;
    assessor
        .post_form(
            &format!("/enrolments/{enrolment}/sign-off"),
            &[("declaration", "yes")],
        )
        .await;
    let row = sqlx::query!(
        "select sampled, sample_reason from sign_off where enrolment_id = $1",
        enrolment
    )
    .fetch_one(&app.pool)
    .await
    .expect("sign-off");
    assert!(row.sampled);
    assert_eq!(
        row.sample_reason,
        "the assessor is a trainee: every sign-off is sampled"
    );
}

#[sqlx::test]
async fn with_no_random_share_a_later_sign_off_of_a_qualified_assessor_is_not_sampled(
    pool: PgPool,
) {
    let settings = attest::config::Settings {
        iqa_sample_percent: 0,
        ..attest::config::Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let (first, assessor) = signed_off(&app, "tam").await;
    let second = app
        .classmate(&first, "uma.candidate@example.org", "Uma Candidate")
        .await;
    let (candidate, enrolment) = (second.candidate, second.enrolment);
    let uma = app.browser_signed_in_as(candidate).await;
    let evidence = submit(&app, &uma, &second, "Everything", &ALL).await;
    let decisions: Vec<(&str, bool, &str)> = ALL.iter().map(|code| (*code, true, "")).collect();
    judge(&app, &assessor, &evidence, &decisions).await;
    assessor
        .post_form(
            &format!("/enrolments/{enrolment}/sign-off"),
            &[("declaration", "yes")],
        )
        .await;
    let row = sqlx::query!(
        "select sampled, sample_reason from sign_off where enrolment_id = $1",
        enrolment
    )
    .fetch_one(&app.pool)
    .await
    .expect("sign-off");
    assert!(!row.sampled);
    assert_eq!(row.sample_reason, "not chosen at random (0% of sign-offs)");
    // The IQA can still pick it.
    let iqa = app.browser_signed_in_as(first.iqa).await;
    let page = iqa.get("/quality").await;
    assert_eq!(page.texts("#sign-offs .card").len(), 2);
}

#[sqlx::test]
async fn the_cohort_report_agrees_with_the_status_rule_and_exports_the_same_as_csv(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // Verified: signed off and countersigned.
    let (verified, assessor) = signed_off(&app, "vee").await;
    let iqa = app.browser_signed_in_as(verified.iqa).await;
    let id = sign_off_id(&app, &verified).await;
    iqa.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
        .await;
    // In progress, with met, not met and awaiting claims; a name a spreadsheet would run.
    let busy = app
        .classmate(&verified, "wes@example.org", "=HYPERLINK(\"http://x\")")
        .await;
    let wes = app.browser_signed_in_as(busy.candidate).await;
    let judged = submit(&app, &wes, &busy, "Judged", &["PC1", "PC2"]).await;
    judge(
        &app,
        &assessor,
        &judged,
        &[("PC1", true, ""), ("PC2", false, "More detail.")],
    )
    .await;
    submit(&app, &wes, &busy, "Waiting", &["K1"]).await;
    // Not started.
    app.classmate(&verified, "xan@example.org", "Xan Idle")
        .await;

    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let page = admin
        .get(&format!("/admin/cohorts/{}/report", verified.cohort))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.texts("#report-rows .row-status"),
        ["In progress", "Verified", "Not started"]
    );
    assert_eq!(
        page.text("#summary-figures"),
        "3 enrolments; 33% competent; 33% verified."
    );
    let wes_cells = page.texts("#matrix tbody tr:first-child td");
    assert!(
        wes_cells[0].starts_with('M')
            && wes_cells[1].starts_with('N')
            && wes_cells[9].starts_with('A'),
        "{wes_cells:?}"
    );
    assert!(wes_cells[2].starts_with('-'));
    assert_eq!(page.texts("#matrix thead th").len(), 22);
    assert!(page.text("svg desc").contains("Verified: 1."));

    let filtered = admin
        .get(&format!(
            "/admin/cohorts/{}/report?status=verified",
            verified.cohort
        ))
        .await;
    assert_eq!(filtered.texts("#report-rows .row-status"), ["Verified"]);
    let by_progress = admin
        .get(&format!(
            "/admin/cohorts/{}/report?sort=progress",
            verified.cohort
        ))
        .await;
    assert_eq!(by_progress.texts("#report-rows .row-status")[0], "Verified");

    let home = admin.get("/").await;
    assert_eq!(
        home.texts("#cohort-figures tbody td")[..5],
        ["3", "1", "0", "0", "1"],
        "enrolled, in progress, ready, competent awaiting IQA, verified: each as the report counts"
    );
    let waiting = app
        .count("select count(*) from audit_event where hash is null")
        .await;
    assert!(waiting > 0, "what this test did waits to be sealed");
    let (status, headers, body) = admin
        .get_bytes(&format!("/admin/cohorts/{}/report.csv", verified.cohort))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut conn = app.pool.acquire().await.expect("connection");
    let head = attest::crypto::hex(&attest::audit::head(&mut conn).await.expect("head"));
    assert_eq!(headers["x-attest-audit-head"], head.as_str());
    assert_eq!(
        app.count("select count(*) from audit_event where hash is null")
            .await,
        0,
        "the export sealed what was committed before it, and names that head"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains(&head[..12])
    );
    let mut reader = csv::Reader::from_reader(body.as_slice());
    let columns: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(columns.len(), 13 + 21);
    assert_eq!(&columns[13], "PC1");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(&records[0][0], "'=HYPERLINK(\"http://x\")", "neutralised");
    assert_eq!(&records[0][4], "in_progress");
    assert_eq!(
        (&records[0][13], &records[0][14], &records[0][22]),
        ("met", "not_met", "awaiting")
    );
    assert_eq!(&records[1][4], "verified");
    assert_eq!(&records[1][5], "9/9");
    assert!(!records[1][11].is_empty(), "verified on a date");
    assert_eq!(&records[2][4], "not_started");

    // The workbook carries the same rows, the criteria in full and the audit head.
    use calamine::{Data, Reader, Xlsx};
    let (status, headers, body) = admin
        .get_bytes(&format!("/admin/cohorts/{}/report.xlsx", verified.cohort))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-attest-audit-head"], head.as_str());
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(body)).expect("an xlsx");
    assert_eq!(workbook.sheet_names(), ["Report", "Criteria", "About"]);
    let report = workbook.worksheet_range("Report").expect("report sheet");
    let text = |r: usize, c: usize| report.get((r, c)).map(Data::to_string).unwrap_or_default();
    assert_eq!(report.height(), 4);
    assert_eq!(text(0, 13), "PC1");
    assert_eq!(
        text(1, 0),
        "=HYPERLINK(\"http://x\")",
        "stored as text, never as a formula"
    );
    assert_eq!(
        (text(1, 4), text(1, 13), text(1, 14)),
        ("in_progress".into(), "met".into(), "not_met".into())
    );
    assert_eq!(text(2, 4), "verified");
    let criteria = workbook
        .worksheet_range("Criteria")
        .expect("criteria sheet");
    assert_eq!(criteria.height(), 22);
    assert!(
        criteria
            .get((1, 1))
            .map(Data::to_string)
            .unwrap_or_default()
            .starts_with("direct all aspects")
    );
    let about = workbook.worksheet_range("About").expect("about sheet");
    assert_eq!(
        about.get((3, 1)).map(Data::to_string).as_deref(),
        Some(head.as_str())
    );
}

#[sqlx::test]
async fn the_portfolio_archive_holds_everything_needed_to_audit_the_decision(pool: PgPool) {
    use std::io::Read;

    let app = TestApp::new(pool).await;
    let (enrolled, assessor) = signed_off(&app, "zed").await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    let id = sign_off_id(&app, &enrolled).await;
    iqa.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
        .await
        .assert_redirect_to("/quality");
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let extra = submit(&app, &candidate, &enrolled, "Extra: notes", &["K1"]).await;
    judge(
        &app,
        &assessor,
        &extra,
        &[("K1", false, "Say which tools.")],
    )
    .await;
    candidate
        .post_form(
            &format!("/evidence/{extra}/comments"),
            &[("comment", "GitLab CI and Argo CD.")],
        )
        .await;
    app.name_witness(
        &candidate,
        &extra,
        ("Lou Lead", "lou@example.org", "Team lead"),
    )
    .await;

    let uri = format!("/enrolments/{}/archive.zip", enrolled.enrolment);
    let (status, headers, body) = candidate.get_bytes(&uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.contains("attest-portfolio-zed-candidate-"),
        "{disposition}"
    );

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("entry");
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .expect("readable, CRC checked");
        entries.push((entry.name().expect("a UTF-8 name").into_owned(), bytes));
    }
    let root = entries[0]
        .0
        .split('/')
        .next()
        .expect("a root folder")
        .to_owned();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{root}/manifest.json"),
            format!("{root}/index.html"),
            format!("{root}/evidence/01-everything/v1/pipeline.pdf"),
            format!("{root}/evidence/02-extra-notes/v1/pipeline.pdf"),
        ]
    );

    let manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).expect("json");
    assert_eq!(manifest["format"], "attest-portfolio/2");
    assert_eq!(manifest["enrolment"]["status"], "verified");
    assert_eq!(
        manifest["enrolment"]["candidate"]["email"],
        "zed.candidate@example.org"
    );
    assert_eq!(manifest["standard"]["urn"], "TECIT50761");
    let criteria = manifest["standard"]["criteria"]
        .as_array()
        .expect("criteria");
    assert_eq!(criteria.len(), 21);
    assert!(criteria.iter().all(|c| c["status"] == "met"));
    let mut conn = app.pool.acquire().await.expect("connection");
    let head = attest::crypto::hex(&attest::audit::head(&mut conn).await.expect("head"));
    assert_eq!(manifest["audit_head"], head.as_str());
    assert_eq!(
        app.count("select count(*) from audit_event where hash is null")
            .await,
        0,
        "the archive sealed what was committed before it"
    );

    let evidence = manifest["evidence"].as_array().expect("evidence");
    assert_eq!(evidence.len(), 2);
    assert_eq!(evidence[0]["claims"].as_array().expect("claims").len(), 21);
    let first_judgement = &evidence[0]["judgements"][0];
    assert_eq!(first_judgement["criterion"], "PC1");
    for check in [
        "met",
        "valid",
        "authentic",
        "current",
        "sufficient",
        "reliable",
    ] {
        assert_eq!(first_judgement[check], true, "{check}");
    }
    assert_eq!(evidence[1]["judgements"][0]["met"], false);
    assert_eq!(evidence[1]["judgements"][0]["feedback"], "Say which tools.");
    assert_eq!(evidence[1]["judgements"][0]["reverses_kept"], false);
    assert_eq!(evidence[1]["comments"][0]["body"], "GitLab CI and Argo CD.");
    assert_eq!(evidence[1]["comments"][0]["part"], "candidate");
    assert_eq!(evidence[1]["witnesses"][0]["name"], "Lou Lead");
    assert_eq!(
        evidence[1]["witnesses"][0]["confirmed"],
        serde_json::Value::Null
    );
    assert_eq!(evidence[0]["comments"].as_array().map(Vec::len), Some(0));
    // Every file in the manifest is in the archive, byte for byte.
    for (n, piece) in evidence.iter().enumerate() {
        let file = &piece["files"][0];
        let (_, bytes) = entries
            .iter()
            .find(|(name, _)| *name == format!("{root}/{}", file["path"].as_str().expect("path")))
            .expect("the file is in the archive");
        assert_eq!(
            file["sha256"],
            attest::crypto::hex(&attest::crypto::sha256(bytes)).as_str(),
            "file of evidence {n}"
        );
        assert_eq!(file["size_bytes"], bytes.len());
    }
    // The sign-off's digest can be checked from the manifest alone.
    let sign_off = &manifest["sign_offs"][0];
    assert_eq!(sign_off["standing"], true);
    assert_eq!(sign_off["review"]["decision"], "agree");
    assert_eq!(sign_off["review"]["iqa"], "zed Iqa");
    assert_eq!(
        sign_off["basis_sha256"],
        attest::crypto::hex(&attest::crypto::sha256(
            sign_off["basis"].to_string().as_bytes()
        ))
        .as_str()
    );
    let stored: Vec<u8> = sqlx::query_scalar!(
        "select basis_sha256 from sign_off where sign_off_id = $1",
        id
    )
    .fetch_one(&app.pool)
    .await
    .expect("digest");
    assert_eq!(
        sign_off["basis_sha256"],
        attest::crypto::hex(&stored).as_str()
    );

    let index = String::from_utf8(entries[1].1.clone()).expect("utf-8");
    let page = scraper::Html::parse_document(&index);
    let heading = scraper::Selector::parse("h1").expect("selector");
    assert_eq!(
        page.select(&heading)
            .next()
            .map(|h| h.text().collect::<String>()),
        Some("zed Candidate".to_owned())
    );
    assert!(index.contains("href=\"evidence/01-everything/v1/pipeline.pdf\""));
    assert!(index.contains("Agreed"));

    // The assessor, the IQA and admins may take it; another candidate is told it does not exist.
    assert_eq!(assessor.get_bytes(&uri).await.0, StatusCode::OK);
    assert_eq!(iqa.get_bytes(&uri).await.0, StatusCode::OK);
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    assert_eq!(admin.get_bytes(&uri).await.0, StatusCode::OK);
    let other = app
        .classmate(&enrolled, "yan@example.org", "Yan Other")
        .await;
    let stranger = app.browser_signed_in_as(other.candidate).await;
    assert_eq!(stranger.get(&uri).await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn the_report_shows_a_change_as_soon_as_it_is_recorded(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (enrolled, _) = signed_off(&app, "uma").await;
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let report = format!("/admin/cohorts/{}/report", enrolled.cohort);
    assert_eq!(
        admin.get(&report).await.texts("#report-rows .row-status"),
        ["Competent"]
    );
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    let id = sign_off_id(&app, &enrolled).await;
    iqa.post_form(&format!("/sign-offs/{id}/review"), &[("decision", "agree")])
        .await
        .assert_redirect_to("/quality");
    assert_eq!(
        admin.get(&report).await.texts("#report-rows .row-status"),
        ["Verified"]
    );
}

#[sqlx::test]
async fn a_judging_form_sent_twice_at_once_is_saved_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("twice").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = app
        .submit_evidence(
            &candidate,
            &enrolled,
            "Pipeline",
            "product",
            &["PC1", "PC2"],
        )
        .await;
    let (pc1, pc2) = (app.criterion("PC1").await, app.criterion("PC2").await);
    let uri = format!("/evidence/{evidence}/judgements");
    for round in 0..50_i64 {
        // The form as the page draws it, sent twice at once (a double click, a resend).
        let page = assessor.get(&format!("/evidence/{evidence}")).await;
        let csrf = page
            .attr("#judging input[name=csrf_token]", "value")
            .expect("form token");
        let seen = page
            .attr("#judging input[name=judgements_seen]", "value")
            .expect("the form says what it has seen");
        let (decision1, decision2) = (format!("decision-{pc1}"), format!("decision-{pc2}"));
        let (check1, feedback2) = (format!("check-{pc1}"), format!("feedback-{pc2}"));
        let mut fields = vec![
            ("csrf_token", csrf.as_str()),
            ("judgements_seen", seen.as_str()),
            (decision1.as_str(), "met"),
            (decision2.as_str(), "not_met"),
            (feedback2.as_str(), "Show the result."),
        ];
        for check in ["valid", "authentic", "current", "sufficient", "reliable"] {
            fields.push((check1.as_str(), check));
        }
        let same_origin = [("sec-fetch-site", "same-origin")];
        let (first, second) = tokio::join!(
            assessor.post_raw(&uri, &fields, &same_origin),
            assessor.post_raw(&uri, &fields, &same_origin)
        );
        assert_eq!(
            (first.status, second.status),
            (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
            "round {round}: both answered as the first was"
        );
        assert_eq!(
            app.count("select count(*) from judgement").await,
            2 * (round + 1),
            "round {round}: one submission's judgements"
        );
        assert_eq!(
            app.count("select count(*) from audit_event where action = 'evidence.judged'")
                .await,
            round + 1,
            "round {round}: one event"
        );
    }
}

#[sqlx::test]
async fn caseloads_and_reports_are_drawn_from_memory_until_their_enrolments_change(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.enrolled("kept").await;
    let second = app
        .classmate(&first, "kept.second@example.org", "Second Candidate")
        .await;
    let assessor = app.browser_signed_in_as(first.assessor).await;
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let report = format!("/admin/cohorts/{}/report", first.cohort);
    let candidates = |page: &crate::helpers::TestResponse, selector: &str| page.texts(selector);
    assert_eq!(
        candidates(&assessor.get("/caseload").await, "#caseload tbody th").len(),
        2
    );
    assert_eq!(
        candidates(&admin.get(&report).await, "#report-rows .row-status"),
        ["Not started", "Not started"]
    );

    // A change that leaves the revisions where they were is not seen: the pages came from
    // memory.
    sqlx::query("alter table enrolment_progress disable trigger enrolment_progress_revised")
        .execute(&app.pool)
        .await
        .expect("trigger off");
    sqlx::query(
        "update enrolment_progress set candidate_name = 'Quietly Renamed', performance_met = 7",
    )
    .execute(&app.pool)
    .await
    .expect("quiet change");
    assert!(
        !assessor
            .get("/caseload")
            .await
            .text("#caseload")
            .contains("Quietly")
    );
    assert!(
        !admin
            .get(&report)
            .await
            .texts("#report-rows td[data-label='PCs met']")
            .contains(&"7/9".to_owned())
    );
    sqlx::query("alter table enrolment_progress enable trigger enrolment_progress_revised")
        .execute(&app.pool)
        .await
        .expect("trigger on");
    app.store_status(first.enrolment).await;
    app.store_status(second.enrolment).await;

    // A submission moves both pages.
    let candidate = app.browser_signed_in_as(first.candidate).await;
    app.submit_evidence(&candidate, &first, "Runbook", "product", &["PC1"])
        .await;
    assert!(
        candidates(&admin.get(&report).await, "#report-rows .row-status")
            .contains(&"In progress".to_owned())
    );
    let caseload = assessor.get("/caseload").await;
    assert!(caseload.text("#caseload").contains("Judge next"));

    // An enrolment given to another assessor leaves the caseload, though nothing left in it
    // changed.
    let other = app
        .create_user(
            "kept.other@example.org",
            "Other Assessor",
            &[attest::identity::Role::Assessor],
        )
        .await;
    sqlx::query("update enrolment set assessor_id = $1 where enrolment_id = $2")
        .bind(other.0)
        .bind(second.enrolment)
        .execute(&app.pool)
        .await
        .expect("reassigned");
    app.store_status(second.enrolment).await;
    assert_eq!(
        candidates(&assessor.get("/caseload").await, "#caseload tbody th").len(),
        1
    );
}

#[sqlx::test]
async fn a_kept_report_sees_a_change_that_commits_after_a_later_one(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.enrolled("order").await;
    // Two enrolments whose changes are counted in different slots, so that neither
    // transaction below waits for the other.
    let slot = |id: uuid::Uuid| id.as_bytes()[15] % 16;
    let mut second = app
        .classmate(&first, "order.1@example.org", "Order One")
        .await;
    for n in 2.. {
        if slot(second.enrolment) != slot(first.enrolment) {
            break;
        }
        second = app
            .classmate(&first, &format!("order.{n}@example.org"), "Order Next")
            .await;
    }
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    let report = format!("/admin/cohorts/{}/report", first.cohort);
    let met = "update enrolment_progress set performance_met = $1 where enrolment_id = $2";
    let shown = |page: &TestResponse| page.texts("#report-rows td[data-label='PCs met']");

    // The first change begins, then a second begins and commits, and the report is read
    // (and kept) before the first commits.
    let mut slow = app.pool.begin().await.expect("begin");
    sqlx::query(met)
        .bind(5)
        .bind(first.enrolment)
        .execute(&mut *slow)
        .await
        .expect("first change");
    sqlx::query(met)
        .bind(7)
        .bind(second.enrolment)
        .execute(&app.pool)
        .await
        .expect("second change");
    let before = shown(&admin.get(&report).await);
    assert!(before.contains(&"7/9".to_owned()) && !before.contains(&"5/9".to_owned()));
    slow.commit().await.expect("commit");
    assert!(shown(&admin.get(&report).await).contains(&"5/9".to_owned()));
}

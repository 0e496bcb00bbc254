//! Cohorts, enrolments, roster files, assignments and withdrawal.

use attest::identity::Role;
use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::TestApp;

async fn standard_id(app: &TestApp) -> String {
    sqlx::query_scalar!("select standard_id from standard where urn = 'TECIT50761'")
        .fetch_one(&app.pool)
        .await
        .expect("standard")
        .to_string()
}

#[sqlx::test]
async fn an_admin_creates_a_cohort_enrols_candidates_and_assigns_an_assessor_and_iqa(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let standard = standard_id(&app).await;

    let invalid = admin
        .post_form(
            "/admin/cohorts",
            &[
                ("name", ""),
                ("standard_id", &standard),
                ("starts_on", "2026-09-01"),
                ("ends_on", "2026-01-01"),
            ],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid.texts(".error-summary a"),
        ["Enter a name for the cohort"]
    );
    let backwards = admin
        .post_form(
            "/admin/cohorts",
            &[
                ("name", "Autumn"),
                ("standard_id", &standard),
                ("starts_on", "2026-09-01"),
                ("ends_on", "2026-01-01"),
            ],
        )
        .await;
    assert_eq!(
        backwards.text("#ends_on-error"),
        "Error: The end date must be on or after the start date"
    );

    let created = admin
        .post_form(
            "/admin/cohorts",
            &[
                ("name", "Autumn 2026"),
                ("standard_id", &standard),
                ("starts_on", "2026-09-01"),
                ("ends_on", "2027-07-31"),
            ],
        )
        .await;
    let cohort_path = created.location().expect("to the cohort").to_owned();
    assert!(cohort_path.starts_with("/admin/cohorts/"));

    let ann = app
        .create_user("ann@example.org", "Ann Candidate", &[Role::Candidate])
        .await;
    let ben = app
        .create_user("ben@example.org", "Ben Candidate", &[Role::Candidate])
        .await;
    let assessor = app
        .create_user("ada@example.org", "Ada Assessor", &[Role::Assessor])
        .await;
    let iqa = app
        .create_user("ian@example.org", "Ian Iqa", &[Role::Iqa])
        .await;
    let page = admin.get(&cohort_path).await;
    assert_eq!(page.texts("#candidate label").len(), 2);

    admin
        .post_form(
            &format!("{cohort_path}/enrolments"),
            &[
                ("candidate", &ann.to_string()),
                ("candidate", &ben.to_string()),
            ],
        )
        .await
        .assert_redirect_to(&cohort_path);
    let page = admin.get(&cohort_path).await;
    assert_eq!(page.text("#flash"), "Enrolled 2 candidate(s).");
    let enrolment_ids: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("#enrolments input[name=enrolment]").expect("selector"))
        .filter_map(|e| e.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(enrolment_ids.len(), 2);

    let none_ticked = admin
        .post_form(
            &format!("{cohort_path}/assignments"),
            &[("assessor", &assessor.to_string())],
        )
        .await;
    assert_eq!(none_ticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        none_ticked.text("#enrolment-error"),
        "Error: Tick at least one enrolment"
    );

    let assign = [
        ("enrolment", enrolment_ids[0].as_str()),
        ("enrolment", enrolment_ids[1].as_str()),
        ("assessor", &assessor.to_string()),
        ("iqa", &iqa.to_string()),
    ];
    admin
        .post_form(&format!("{cohort_path}/assignments"), &assign)
        .await
        .assert_redirect_to(&cohort_path);
    // The same assignment sent again (a double click, a resent form) changes nothing more.
    admin
        .post_form(&format!("{cohort_path}/assignments"), &assign)
        .await
        .assert_redirect_to(&cohort_path);
    let page = admin.get(&cohort_path).await;
    let rows = page.texts("#enrolments tbody tr");
    assert!(
        rows.iter()
            .all(|r| r.contains("Ada Assessor") && r.contains("Ian Iqa")),
        "{rows:?}"
    );

    let ada = app.browser_signed_in_as(assessor).await;
    assert_eq!(
        ada.get(&format!("/enrolments/{}", enrolment_ids[0]))
            .await
            .status,
        StatusCode::OK
    );
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|a| *a == "enrolment.created").count(),
        2
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "enrolment.assigned")
            .count(),
        2
    );
    assert!(actions.contains(&"cohort.created".to_owned()));
}

#[sqlx::test]
async fn nobody_is_assessor_or_iqa_of_their_own_enrolment(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("sam").await;
    // Someone who is both a candidate and an assessor.
    sqlx::query!(
        "update app_user set roles = '{candidate,assessor}' where user_id = $1",
        enrolled.candidate.0
    )
    .execute(&app.pool)
    .await
    .expect("roles");
    let response = admin
        .post_form(
            &format!("/admin/cohorts/{}/assignments", enrolled.cohort),
            &[
                ("enrolment", &enrolled.enrolment.to_string()),
                ("assessor", &enrolled.candidate.to_string()),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text("#assessor-error")
            .contains("Nobody may assess or quality-assure their own enrolment")
    );
    let direct = sqlx::query!(
        "update enrolment set iqa_id = candidate_id where enrolment_id = $1",
        enrolled.enrolment
    )
    .execute(&app.pool)
    .await;
    assert!(direct.is_err(), "the database refuses it too");
}

#[sqlx::test]
async fn a_roster_with_a_bad_line_applies_nothing_and_names_the_line(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("kit").await;
    let path = format!("/admin/cohorts/{}/roster", enrolled.cohort);
    let before = app.count("select count(*) from app_user").await;

    let roster = b"name,email\nNew Person,new.person@example.org\nBroken Line,not-an-email\nThird,third@example.org\n";
    let response = admin
        .post_multipart(&path, &[], &[("roster", "roster.csv", roster)])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.texts("#roster-errors li"),
        ["Line 3: Enter an email address like name@example.org"]
    );
    assert_eq!(
        app.count("select count(*) from app_user").await,
        before,
        "nothing of the file is applied"
    );

    // A line naming someone already enrolled fails the whole file too, after the checks of
    // the database.
    let roster = b"New Person,new.person@example.org\nKit Candidate,kit.candidate@example.org\n";
    let response = admin
        .post_multipart(&path, &[], &[("roster", "roster.csv", roster)])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.texts("#roster-errors li"),
        ["Line 2: kit.candidate@example.org is already enrolled in this cohort"]
    );
    assert_eq!(app.count("select count(*) from app_user").await, before);
    assert_eq!(app.count("select count(*) from enrolment").await, 1);
}

#[sqlx::test]
async fn a_good_roster_creates_candidates_with_invitation_links_and_enrols_them(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("lou").await;
    app.create_user(
        "existing@example.org",
        "Existing Candidate",
        &[Role::Candidate],
    )
    .await;
    let roster = "name,email\nNia Nowak,nia@example.org\n\"O'Neil, Pat\",pat@example.org\nExisting Candidate,EXISTING@example.org\n";
    let response = admin
        .post_multipart(
            &format!("/admin/cohorts/{}/roster", enrolled.cohort),
            &[],
            &[("roster", "roster.csv", roster.as_bytes())],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        response.text("#flash"),
        "Enrolled 3 candidate(s) from the file."
    );
    let created = response.texts("#created-accounts tbody th");
    assert_eq!(created, ["Nia Nowak", "O'Neil, Pat"]);
    let link = response
        .attr("#created-accounts input", "value")
        .expect("a link");
    assert!(link.contains("/invitations/"));
    assert_eq!(app.count("select count(*) from enrolment").await, 4);
    let nia = app.browser();
    let path = link.trim_start_matches("http://127.0.0.1:3000");
    nia.post_form(
        path,
        &[
            ("password", crate::helpers::PASSWORD),
            ("confirm_password", crate::helpers::PASSWORD),
        ],
    )
    .await
    .assert_redirect_to("/");
    assert_eq!(
        nia.get("/").await.texts("#enrolments h3"),
        ["Lead DevOps activities"]
    );
}

#[sqlx::test]
async fn a_roster_of_5000_lines_is_applied_whole_with_an_event_for_each_change(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("big").await;
    for n in 0..10 {
        app.create_user(
            &format!("known{n}@example.org"),
            &format!("Known {n}"),
            &[Role::Candidate],
        )
        .await;
    }
    let mut roster = String::from("name,email\n");
    for n in 0..10 {
        roster.push_str(&format!("Known {n},KNOWN{n}@example.org\n"));
    }
    for n in 0..4_990 {
        roster.push_str(&format!("Person {n},person{n}@example.org\n"));
    }
    let response = admin
        .post_multipart(
            &format!("/admin/cohorts/{}/roster", enrolled.cohort),
            &[],
            &[("roster", "roster.csv", roster.as_bytes())],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.text("#flash"),
        "Enrolled 5000 candidate(s) from the file."
    );
    assert_eq!(response.texts("#created-accounts tbody th").len(), 4_990);
    let links = response.attrs("#created-accounts input", "value");
    let distinct: std::collections::HashSet<&String> = links.iter().collect();
    assert_eq!(distinct.len(), 4_990, "each person has a link of their own");

    assert_eq!(app.count("select count(*) from enrolment").await, 5_001);
    assert_eq!(
        app.count("select count(*) from enrolment_progress").await,
        5_001,
        "every new enrolment has its stored status"
    );
    assert_eq!(
        app.count("select count(*) from access_link where purpose = 'invitation'")
            .await,
        4_990
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_event where action = 'user.created'
              and detail->>'via' = 'roster'"
        )
        .await,
        4_990
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_event where action = 'enrolment.created'
              and detail->>'via' = 'roster'"
        )
        .await,
        5_000
    );
    app.seal_audit().await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let verified = attest::audit::verify(&mut conn).await.expect("verify");
    assert!(verified.broken.is_none() && verified.pending == 0);

    // One of the new people signs in through their own link.
    let path = links[4_000].trim_start_matches("http://127.0.0.1:3000");
    let person = app.browser();
    person
        .post_form(
            path,
            &[
                ("password", crate::helpers::PASSWORD),
                ("confirm_password", crate::helpers::PASSWORD),
            ],
        )
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn a_roster_sent_twice_at_once_is_applied_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("dbl").await;
    let uri = format!("/admin/cohorts/{}/roster", enrolled.cohort);
    for round in 0..5 {
        let key = uuid::Uuid::new_v4().to_string();
        let roster =
            format!("Ann {round},ann{round}@example.org\nBo {round},bo{round}@example.org\n");
        let body = admin
            .multipart_body(
                &[("submission_key", &key)],
                &[("roster", "roster.csv", roster.as_bytes())],
            )
            .await;
        let (first, second) = tokio::join!(
            admin.post_multipart_body(&uri, axum::body::Body::from(body.clone())),
            admin.post_multipart_body(&uri, axum::body::Body::from(body))
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::SEE_OTHER],
            "round {round}"
        );
        let repeat = if first.status == StatusCode::SEE_OTHER {
            &first
        } else {
            &second
        };
        repeat.assert_redirect_to(&format!("/admin/cohorts/{}", enrolled.cohort));
    }
    assert_eq!(app.count("select count(*) from enrolment").await, 1 + 10);
    assert_eq!(
        app.count("select count(*) from audit_event where action = 'enrolment.created' and detail->>'via' = 'roster'")
            .await,
        10
    );
}

#[sqlx::test]
async fn a_withdrawn_enrolment_keeps_its_records_and_takes_no_new_evidence(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("max").await;
    let path = format!("/enrolments/{}", enrolled.enrolment);
    admin
        .post_form(
            &format!("{path}/withdraw"),
            &[("reason", "Left the employer")],
        )
        .await
        .assert_redirect_to(&path);
    let page = admin.get(&path).await;
    assert_eq!(
        page.text("#withdrawn"),
        "Withdrawn. Left the employer. The records below are kept."
    );

    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    assert_eq!(
        candidate.get(&path).await.status,
        StatusCode::OK,
        "the candidate still reads it"
    );
    assert_eq!(
        candidate.get(&format!("{path}/evidence/new")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"enrolment.withdrawn".to_owned())
    );
}

#[sqlx::test]
async fn an_assignment_sent_twice_at_once_changes_once_in_each_of_50_rounds(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let enrolled = app.enrolled("asg").await;
    let other = app
        .create_user(
            "other.assessor@example.org",
            "Other Assessor",
            &[Role::Assessor],
        )
        .await;
    let uri = format!("/admin/cohorts/{}/assignments", enrolled.cohort);
    let enrolment = enrolled.enrolment.to_string();
    let assigned = "select count(*) from audit_event where action = 'enrolment.assigned'";
    let before = app.count(assigned).await;
    for round in 0..50 {
        let assessor = if round % 2 == 0 {
            other
        } else {
            enrolled.assessor
        };
        let fields = [
            ("enrolment", enrolment.as_str()),
            ("assessor", &assessor.to_string()),
        ];
        let (first, second) = tokio::join!(
            admin.post_form(&uri, &fields),
            admin.post_form(&uri, &fields)
        );
        assert_eq!(first.status, StatusCode::SEE_OTHER, "round {round}");
        assert_eq!(second.status, StatusCode::SEE_OTHER, "round {round}");
    }
    assert_eq!(
        app.count(assigned).await,
        before + 50,
        "one change, and one event, a round"
    );
    let checked = attest::status::verify::verify(&app.pool, false)
        .await
        .expect("verify");
    assert!(checked.is_clean(), "{:?}", checked.mismatches);
}

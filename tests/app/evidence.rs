//! The candidate's evidence over real multipart uploads: drafts, files, submission, versions,
//! downloads, and who may see what.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::helpers::{Browser, Enrolled, PDF, TestApp, pdf_of};

async fn candidate_browser<'a>(app: &'a TestApp, enrolled: &Enrolled) -> Browser<'a> {
    app.browser_signed_in_as(enrolled.candidate).await
}

/// Creates a draft from `fields` and `files`; returns the response.
async fn new_evidence(
    browser: &Browser<'_>,
    enrolled: &Enrolled,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> crate::helpers::TestResponse {
    browser
        .post_multipart(
            &format!("/enrolments/{}/evidence/new", enrolled.enrolment),
            fields,
            files,
        )
        .await
}

/// The evidence id a redirect leads to (`/evidence/{id}` or `/evidence/{id}/edit`).
fn evidence_id(location: &str) -> String {
    location
        .trim_start_matches("/evidence/")
        .split('/')
        .next()
        .expect("id")
        .to_owned()
}

/// Submits a work product claiming `codes`; returns its id.
async fn submit_one(
    app: &TestApp,
    browser: &Browser<'_>,
    enrolled: &Enrolled,
    title: &str,
    codes: &[&str],
) -> String {
    app.submit_evidence(browser, enrolled, title, "product", codes)
        .await
}

#[sqlx::test]
async fn a_candidate_saves_a_draft_with_a_file_and_then_submits_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("ann").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let form = browser
        .get(&format!("/enrolments/{}/evidence/new", enrolled.enrolment))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.texts("#claims .criterion-code").len(), 21);

    let pc2 = app.criterion("PC2").await.to_string();
    let k3 = app.criterion("K3").await.to_string();
    let saved = new_evidence(
        &browser,
        &enrolled,
        &[
            ("title", "Release pipeline"),
            ("statement", "Line one\r\nLine two"),
            ("claim", &pc2),
            ("claim", &k3),
            (&format!("note-{pc2}"), "page 3"),
            ("action", "save"),
        ],
        &[("file", "pipeline.pdf", PDF)],
    )
    .await;
    let location = saved.location().expect("redirect").to_owned();
    assert!(location.ends_with("/edit"), "{location}");
    let id = evidence_id(&location);

    let edit = browser.get(&location).await;
    assert_eq!(edit.text("#flash"), "Draft saved.");
    assert_eq!(edit.texts("#attached-files .file-name"), ["pipeline.pdf"]);
    assert!(edit.attr("#claim-PC2", "checked").is_some());
    assert_eq!(edit.attr("#note-PC2", "value").as_deref(), Some("page 3"));

    let submitted = browser
        .post_multipart(
            &location,
            &[
                ("title", "Release pipeline"),
                ("method", "product"),
                ("activity_on", "2026-10-01"),
                ("statement", "Line one\r\nLine two"),
                ("claim", &pc2),
                ("claim", &k3),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await;
    submitted.assert_redirect_to(&format!("/evidence/{id}"));
    let page = browser.get(&format!("/evidence/{id}")).await;
    assert!(page.text("#evidence-state").starts_with("Submitted"));
    assert_eq!(page.text("#statement"), "Line one Line two");
    assert!(
        page.body.contains("Line one\nLine two"),
        "line breaks are kept as written"
    );
    assert_eq!(page.texts("#claims .criterion-code"), ["PC2", "K3"]);

    let digest: Option<Vec<u8>> = sqlx::query_scalar!(
        "select declaration_sha256 from evidence where evidence_id = $1::text::uuid",
        id
    )
    .fetch_one(&app.pool)
    .await
    .expect("digest");
    assert_eq!(digest.map(|d| d.len()), Some(32));
    let actions = app.audit_actions().await;
    for action in [
        "evidence.draft_created",
        "evidence.draft_saved",
        "evidence.submitted",
    ] {
        assert!(actions.contains(&action.to_owned()), "{action}");
    }

    let portfolio = browser
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert_eq!(
        portfolio
            .attr("#criterion-PC2 .status", "data-status")
            .as_deref(),
        Some("awaiting")
    );
    assert_eq!(
        portfolio.text("#criterion-PC2 .status"),
        "Awaiting assessment"
    );
    assert_eq!(
        portfolio
            .attr("#criterion-PC1 .status", "data-status")
            .as_deref(),
        Some("not_started")
    );
    assert_eq!(
        portfolio.text("#progress"),
        "In progress. PC 0 of 9, K 0 of 12 met."
    );
    let home = browser.get("/").await;
    assert_eq!(
        home.text("#enrolments .enrolment-progress"),
        "In progress: PC 0 of 9, K 0 of 12 met; 2 awaiting assessment"
    );
}

#[sqlx::test]
async fn a_new_form_sent_blank_stores_nothing_and_says_what_is_missing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("bly").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let submitted = new_evidence(&browser, &enrolled, &[("action", "submit")], &[]).await;
    assert_eq!(submitted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        submitted.texts(".error-summary a"),
        [
            "Enter a title for the evidence",
            "Choose how the evidence was produced",
            "Enter the date of the activity",
            "Write a statement or attach at least one file",
            "Tick at least one criterion this evidence covers",
            "Confirm that this evidence is your own work"
        ]
    );
    assert!(submitted.texts("#draft-saved").is_empty());
    let saved = new_evidence(&browser, &enrolled, &[("action", "save")], &[]).await;
    assert_eq!(saved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        saved.texts(".error-summary a"),
        ["Nothing to save yet: give the evidence a title, or add a file"]
    );
    assert_eq!(app.count("select count(*) from evidence").await, 0);
    assert!(
        !app.audit_actions()
            .await
            .contains(&"evidence.draft_created".to_owned())
    );
}

#[sqlx::test]
async fn a_submission_with_missing_fields_keeps_the_draft_and_its_files(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("bea").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let response = new_evidence(
        &browser,
        &enrolled,
        &[("title", "Half done"), ("action", "submit")],
        &[("file", "notes.txt", b"My notes on the rollout.\n")],
    )
    .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = response.texts(".error-summary a");
    assert!(
        summary.contains(&"Choose how the evidence was produced".to_owned()),
        "{summary:?}"
    );
    assert!(summary.contains(&"Tick at least one criterion this evidence covers".to_owned()));
    assert!(summary.contains(&"Confirm that this evidence is your own work".to_owned()));
    assert_eq!(
        response.text("#draft-saved"),
        "Your draft and its files are saved. Correct the marked fields, then submit.",
        "said as a notice, not as a problem"
    );
    assert!(!summary.iter().any(|s| s.contains("saved")));
    assert_eq!(
        response.texts("#attached-files .file-name"),
        ["notes.txt"],
        "the file need not be uploaded again"
    );
    assert_eq!(
        response.attr("#title", "value").as_deref(),
        Some("Half done")
    );
    assert_eq!(
        app.count("select count(*) from evidence where state = 'draft'")
            .await,
        1
    );

    // A browser sends the file input even when no file was chosen: an empty, unnamed part.
    let edit = response
        .attr("form[enctype]", "action")
        .expect("the draft's form");
    let resent = browser
        .post_multipart(
            &edit,
            &[("title", "Half done"), ("action", "save")],
            &[("file", "", b"")],
        )
        .await;
    resent.assert_redirect_to(&edit);
    assert_eq!(app.count("select count(*) from evidence_file").await, 1);

    let future = new_evidence(
        &browser,
        &enrolled,
        &[
            ("title", "Later"),
            ("activity_on", "2999-01-01"),
            ("action", "save"),
        ],
        &[],
    )
    .await;
    assert_eq!(future.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        future.text("#activity_on-error"),
        "Error: The activity date cannot be in the future"
    );
}

/// A draft titled "Big" with the one file `bytes` named `name`: its id and the file's.
async fn draft_with_file(
    app: &TestApp,
    browser: &Browser<'_>,
    enrolled: &Enrolled,
    name: &str,
    bytes: &[u8],
) -> (String, uuid::Uuid) {
    let response = new_evidence(
        browser,
        enrolled,
        &[("title", "Big"), ("action", "save")],
        &[("file", name, bytes)],
    )
    .await;
    let id = evidence_id(response.location().expect("saved"));
    let file: uuid::Uuid = sqlx::query_scalar!("select evidence_file_id from evidence_file")
        .fetch_one(&app.pool)
        .await
        .expect("file");
    (id, file)
}

#[sqlx::test]
async fn a_40_mib_upload_round_trips_byte_for_byte(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("cal").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let bytes = pdf_of(40 * 1024 * 1024, 7);
    let (id, file) = draft_with_file(&app, &browser, &enrolled, "big report.pdf", &bytes).await;

    let (status, headers, body) = browser
        .get_bytes(&format!("/evidence/{id}/files/{file}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), bytes.len());
    assert_eq!(Sha256::digest(&body), Sha256::digest(&bytes));
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"big report.pdf\"; filename*=UTF-8''big%20report.pdf"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");

    let stored: Vec<u8> = sqlx::query_scalar!("select sha256 from blob")
        .fetch_one(&app.pool)
        .await
        .expect("blob");
    assert_eq!(stored, Sha256::digest(&bytes).to_vec());
    assert_eq!(
        app.count("select count(*) from blob_chunk").await,
        40,
        "1 MiB chunks"
    );
    let (_, inline_headers, _) = browser
        .get_bytes(&format!("/evidence/{id}/files/{file}?inline=1"))
        .await;
    assert!(
        inline_headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("inline;")
    );
}

#[sqlx::test]
async fn a_60_mib_upload_is_refused_and_nothing_is_stored(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("dan").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let bytes = pdf_of(60 * 1024 * 1024, 9);
    let response = new_evidence(
        &browser,
        &enrolled,
        &[("title", "Too big"), ("action", "save")],
        &[("file", "huge.pdf", &bytes)],
    )
    .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response
            .texts(".error-summary a")
            .contains(&"“huge.pdf” is larger than 50 MiB, the most one file may be.".to_owned())
    );
    assert_eq!(
        response.attr("#title", "value").as_deref(),
        Some("Too big"),
        "typed text is kept on the form"
    );
    for table in ["evidence", "evidence_file", "blob", "blob_chunk"] {
        let count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "select count(*) from {table}"
        )))
        .fetch_one(&app.pool)
        .await
        .expect("count");
        assert_eq!(count, 0, "{table}");
    }
}

#[sqlx::test]
async fn html_svg_and_an_executable_renamed_pdf_are_refused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("eve").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let cases: [(&str, &[u8]); 4] = [
        (
            "page.html",
            b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        ),
        (
            "drawing.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        ),
        (
            "report.pdf",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0",
        ),
        ("empty.pdf", b""),
    ];
    for (name, bytes) in cases {
        let response = new_evidence(
            &browser,
            &enrolled,
            &[("title", "Attempt"), ("action", "save")],
            &[("file", name, bytes)],
        )
        .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let messages = response.texts(".error-summary a").join(" ");
        assert!(messages.contains(name), "{name}: {messages}");
        assert!(
            messages.contains("Nothing from this attempt was saved"),
            "{messages}"
        );
    }
    assert_eq!(app.count("select count(*) from evidence").await, 0);
    assert_eq!(app.count("select count(*) from blob_chunk").await, 0);
}

#[sqlx::test]
async fn dangerous_file_names_are_stored_and_offered_under_a_clean_name(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("fay").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let response = new_evidence(
        &browser,
        &enrolled,
        &[("title", "Names"), ("action", "save")],
        &[
            ("file", "../../etc/passwd", b"root:x:0:0\n"),
            ("file", "invoice\u{202e}fdp.exe", b"plain words\n"),
        ],
    )
    .await;
    let id = evidence_id(response.location().expect("saved"));
    let names: Vec<String> = sqlx::query_scalar!(
        "select file_name from evidence_file order by created_at, evidence_file_id"
    )
    .fetch_all(&app.pool)
    .await
    .expect("names");
    assert_eq!(names, ["passwd", "invoicefdp.exe"]);
    let file: uuid::Uuid = sqlx::query_scalar!(
        "select evidence_file_id from evidence_file where file_name = 'passwd'"
    )
    .fetch_one(&app.pool)
    .await
    .expect("file");
    let (_, headers, body) = browser
        .get_bytes(&format!("/evidence/{id}/files/{file}"))
        .await;
    assert_eq!(body, b"root:x:0:0\n");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    );
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
}

#[sqlx::test]
async fn an_identical_file_is_stored_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("gus").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let bytes = pdf_of(3 * 1024 * 1024 + 5, 3);
    for title in ["One", "Two"] {
        new_evidence(
            &browser,
            &enrolled,
            &[("title", title), ("action", "save")],
            &[("file", "same.pdf", &bytes)],
        )
        .await;
    }
    assert_eq!(app.count("select count(*) from evidence_file").await, 2);
    assert_eq!(app.count("select count(*) from blob").await, 1);
    assert_eq!(app.count("select count(*) from blob_chunk").await, 4);
}

#[sqlx::test]
async fn another_candidate_cannot_read_download_edit_or_submit_the_evidence(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = app.enrolled("amy").await;
    let b = app.enrolled("bob").await;
    let amy = candidate_browser(&app, &a).await;
    let draft = new_evidence(
        &amy,
        &a,
        &[("title", "Draft"), ("action", "save")],
        &[("file", "a.pdf", PDF)],
    )
    .await;
    let draft_id = evidence_id(draft.location().expect("saved"));
    let submitted_id = submit_one(&app, &amy, &a, "Submitted", &["PC1"]).await;
    let file: uuid::Uuid =
        sqlx::query_scalar!("select evidence_file_id from evidence_file limit 1")
            .fetch_one(&app.pool)
            .await
            .expect("file");

    let bob = candidate_browser(&app, &b).await;
    for path in [
        format!("/enrolments/{}", a.enrolment),
        format!("/enrolments/{}/evidence/new", a.enrolment),
        format!("/evidence/{draft_id}"),
        format!("/evidence/{draft_id}/edit"),
        format!("/evidence/{submitted_id}"),
        format!("/evidence/{draft_id}/files/{file}"),
    ] {
        assert_eq!(bob.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let edit = bob
        .post_multipart(
            &format!("/evidence/{draft_id}/edit"),
            &[("title", "Mine now"), ("action", "submit")],
            &[],
        )
        .await;
    assert_eq!(edit.status, StatusCode::NOT_FOUND);
    let into = bob
        .post_multipart(
            &format!("/enrolments/{}/evidence/new", a.enrolment),
            &[("title", "Planted")],
            &[],
        )
        .await;
    assert_eq!(into.status, StatusCode::NOT_FOUND);
    for action in ["delete", "revise"] {
        assert_eq!(
            bob.post_form(&format!("/evidence/{submitted_id}/{action}"), &[])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        bob.post_form(&format!("/evidence/{draft_id}/files/{file}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let title: String = sqlx::query_scalar!(
        "select title from evidence where evidence_id = $1::text::uuid",
        draft_id
    )
    .fetch_one(&app.pool)
    .await
    .expect("title");
    assert_eq!(title, "Draft");
    assert_eq!(app.count("select count(*) from evidence").await, 2);
}

#[sqlx::test]
async fn only_the_enrolments_assessor_iqa_and_admins_see_submitted_evidence_and_never_drafts(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let a = app.enrolled("cora").await;
    let other = app.enrolled("dirk").await;
    let cora = candidate_browser(&app, &a).await;
    let submitted = submit_one(&app, &cora, &a, "Runbook", &["PC7"]).await;
    let draft = new_evidence(
        &cora,
        &a,
        &[("title", "Unfinished"), ("action", "save")],
        &[],
    )
    .await;
    let draft_id = evidence_id(draft.location().expect("saved"));

    let own_assessor = app.browser_signed_in_as(a.assessor).await;
    let own_iqa = app.browser_signed_in_as(a.iqa).await;
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    for viewer in [&own_assessor, &own_iqa, &admin] {
        assert_eq!(
            viewer
                .get(&format!("/enrolments/{}", a.enrolment))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            viewer.get(&format!("/evidence/{submitted}")).await.status,
            StatusCode::OK
        );
        assert_eq!(
            viewer.get(&format!("/evidence/{draft_id}")).await.status,
            StatusCode::NOT_FOUND
        );
        let portfolio = viewer.get(&format!("/enrolments/{}", a.enrolment)).await;
        assert_eq!(
            portfolio.texts("#evidence-list tbody th"),
            ["Runbook"],
            "drafts are the candidate's own"
        );
    }
    let stranger = app.browser_signed_in_as(other.assessor).await;
    assert_eq!(
        stranger
            .get(&format!("/enrolments/{}", a.enrolment))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger.get(&format!("/evidence/{submitted}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn submitted_evidence_cannot_be_edited_and_a_revision_keeps_the_old_version(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("hal").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let v1 = submit_one(
        &app,
        &browser,
        &enrolled,
        "Incident review",
        &["PC7", "K10"],
    )
    .await;

    let form = browser.get(&format!("/evidence/{v1}/edit")).await;
    assert_eq!(form.status, StatusCode::CONFLICT);
    assert!(
        form.text(".lead")
            .contains("Submitted evidence cannot be changed")
    );
    let post = browser
        .post_multipart(
            &format!("/evidence/{v1}/edit"),
            &[("title", "Rewritten"), ("action", "save")],
            &[],
        )
        .await;
    assert_eq!(post.status, StatusCode::CONFLICT);
    let direct = sqlx::query!(
        "update evidence set title = 'Tampered' where evidence_id = $1::text::uuid",
        v1
    )
    .execute(&app.pool)
    .await;
    assert!(
        direct.is_err(),
        "the database refuses to change submitted evidence"
    );
    assert_eq!(
        browser
            .post_form(&format!("/evidence/{v1}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND,
        "only drafts can be deleted"
    );

    let revise = browser
        .post_form(&format!("/evidence/{v1}/revise"), &[])
        .await;
    let v2 = evidence_id(revise.location().expect("to the new draft"));
    assert_ne!(v1, v2);
    let draft = browser.get(&format!("/evidence/{v2}/edit")).await;
    assert_eq!(draft.text("h1"), "Revise evidence (version 2)");
    assert_eq!(
        draft.attr("#title", "value").as_deref(),
        Some("Incident review")
    );
    assert_eq!(
        draft.texts("#attached-files .file-name"),
        ["pipeline.pdf"],
        "files carry over"
    );
    let k10 = app.criterion("K10").await.to_string();
    browser
        .post_multipart(
            &format!("/evidence/{v2}/edit"),
            &[
                ("title", "Incident review, with timeline"),
                ("method", "product"),
                ("activity_on", "2026-10-02"),
                ("statement", "Now with the timeline."),
                ("claim", &k10),
                ("declaration", "yes"),
                ("action", "submit"),
            ],
            &[],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{v2}"));

    let old = browser.get(&format!("/evidence/{v1}")).await;
    assert_eq!(old.text("h1"), "Incident review");
    assert_eq!(old.text("#evidence-state"), "Superseded by a later version");
    assert_eq!(
        old.texts("#claims .criterion-code"),
        ["PC7", "K10"],
        "the old version is intact"
    );
    assert_eq!(old.texts("#versions li").len(), 2);

    let portfolio = browser
        .get(&format!("/enrolments/{}", enrolled.enrolment))
        .await;
    assert_eq!(
        portfolio
            .attr("#criterion-PC7 .status", "data-status")
            .as_deref(),
        Some("not_started"),
        "superseded claims do not count"
    );
    assert_eq!(
        portfolio
            .attr("#criterion-K10 .status", "data-status")
            .as_deref(),
        Some("awaiting")
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"evidence.revision_started".to_owned())
    );
}

#[sqlx::test]
async fn a_file_can_be_removed_from_a_draft_and_a_draft_deleted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("ivy").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let saved = new_evidence(
        &browser,
        &enrolled,
        &[("title", "Two files"), ("action", "save")],
        &[
            ("file", "a.txt", b"first\n"),
            ("file", "b.txt", b"second\n"),
        ],
    )
    .await;
    let id = evidence_id(saved.location().expect("saved"));
    let file: uuid::Uuid =
        sqlx::query_scalar!("select evidence_file_id from evidence_file where file_name = 'a.txt'")
            .fetch_one(&app.pool)
            .await
            .expect("file");
    browser
        .post_form(&format!("/evidence/{id}/files/{file}/delete"), &[])
        .await
        .assert_redirect_to(&format!("/evidence/{id}/edit"));
    let edit = browser.get(&format!("/evidence/{id}/edit")).await;
    assert_eq!(edit.texts("#attached-files .file-name"), ["b.txt"]);
    // The Remove button on the form itself keeps what was typed meanwhile.
    let remove = edit
        .attr("#attached-files button", "value")
        .expect("a Remove button");
    browser
        .post_multipart(
            &format!("/evidence/{id}/edit"),
            &[("title", "Typed before removing"), ("action", &remove)],
            &[],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{id}/edit"));
    let edit = browser.get(&format!("/evidence/{id}/edit")).await;
    assert!(edit.texts("#attached-files .file-name").is_empty());
    assert_eq!(
        edit.attr("#title", "value").as_deref(),
        Some("Typed before removing")
    );
    // The same Remove button again, from a page left open: the file is gone already, and what
    // was typed and uploaded with it is kept.
    browser
        .post_multipart(
            &format!("/evidence/{id}/edit"),
            &[("title", "Typed on an old page"), ("action", &remove)],
            &[("file", "c.txt", b"third\n")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{id}/edit"));
    let edit = browser.get(&format!("/evidence/{id}/edit")).await;
    assert_eq!(edit.texts("#attached-files .file-name"), ["c.txt"]);
    assert_eq!(
        edit.attr("#title", "value").as_deref(),
        Some("Typed on an old page")
    );
    browser
        .post_form(&format!("/evidence/{id}/delete"), &[])
        .await
        .assert_redirect_to(&format!("/enrolments/{}", enrolled.enrolment));
    assert_eq!(app.count("select count(*) from evidence").await, 0);
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"evidence.file_removed".to_owned())
            && actions.contains(&"evidence.draft_deleted".to_owned())
    );
}

#[sqlx::test]
async fn candidate_assessor_and_iqa_talk_about_a_piece_across_its_versions(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("cyd").await;
    let candidate = candidate_browser(&app, &enrolled).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    let v1 = app
        .submit_evidence(
            &candidate,
            &enrolled,
            "Pipeline",
            "product",
            &["PC1", "PC2"],
        )
        .await;
    let comments = format!("/evidence/{v1}/comments");

    // The assessor's overall feedback, given while judging, opens the conversation.
    let pc1 = app.criterion("PC1").await.to_string();
    assessor
        .post_form(
            &format!("/evidence/{v1}/judgements"),
            &[
                (&format!("decision-{pc1}"), "met"),
                ("overall", "A clear design. Say more about who approved it."),
            ],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{v1}"));
    candidate
        .post_form(
            &comments,
            &[("comment", "The CAB approved it on 2 October.")],
        )
        .await
        .assert_redirect_to(&format!("/evidence/{v1}#conversation"));
    iqa.post_form(&comments, &[("comment", "Noted for sampling.")])
        .await
        .assert_redirect_to(&format!("/evidence/{v1}#conversation"));

    let empty = candidate.post_form(&comments, &[("comment", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        empty.texts(".error-summary a"),
        ["Write the comment before sending it"]
    );

    // Strangers get nothing; admins read but do not write.
    let other = app
        .classmate(&enrolled, "cyd-classmate@example.org", "Cyd Classmate")
        .await;
    let classmate = app.browser_signed_in_as(other.candidate).await;
    assert_eq!(
        classmate
            .post_form(&comments, &[("comment", "Hello")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        classmate.get(&format!("/evidence/{v1}")).await.status,
        StatusCode::NOT_FOUND
    );
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    assert_eq!(
        admin
            .post_form(&comments, &[("comment", "Hello")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let read_by_admin = admin.get(&format!("/evidence/{v1}")).await;
    assert_eq!(read_by_admin.texts("#comments .comment-body").len(), 3);
    assert!(read_by_admin.texts("#comment").is_empty());

    // The revise form and the new version show the whole conversation.
    let draft = candidate
        .post_form(&format!("/evidence/{v1}/revise"), &[])
        .await
        .location()
        .expect("draft")
        .to_owned();
    let form = candidate.get(&draft).await;
    assert_eq!(
        form.texts("#comments .comment-body"),
        [
            "A clear design. Say more about who approved it.",
            "The CAB approved it on 2 October.",
            "Noted for sampling."
        ]
    );
    assert_eq!(
        form.texts("#comments .comment-meta .hint")[0]
            .split(" · ")
            .take(2)
            .collect::<Vec<_>>(),
        ["Assessor", "version 1"]
    );
    let audit = app.audit_actions().await;
    assert_eq!(
        audit.iter().filter(|a| *a == "evidence.commented").count(),
        2
    );
    assert!(audit.contains(&"evidence.judged".to_owned()));
    assert_eq!(app.count("select count(*) from evidence_comment").await, 3);
}

#[sqlx::test]
async fn photos_and_videos_from_a_phone_are_accepted_as_evidence(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("pho").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let heic: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0 the photo";
    let mov: &[u8] = b"\0\0\0\x14ftypqt  \0\0\0\0qt  \0\0\0\x08wide the video";
    let response = new_evidence(
        &browser,
        &enrolled,
        &[("title", "Whiteboard and walkthrough"), ("action", "save")],
        &[
            ("file", "IMG_0001.HEIC", heic),
            ("file", "IMG_0002.MOV", mov),
        ],
    )
    .await;
    let edit = response.location().expect("saved").to_owned();
    let page = browser.get(&edit).await;
    assert_eq!(
        page.texts("#attached-files .file-name"),
        ["IMG_0001.HEIC", "IMG_0002.MOV"]
    );
    let types: Vec<String> =
        sqlx::query_scalar!("select content_type from blob order by content_type")
            .fetch_all(&app.pool)
            .await
            .expect("blobs");
    assert_eq!(types, ["image/heif", "video/quicktime"]);
}

/// The token of a witness link shown on the evidence page.
fn witness_token(page: &crate::helpers::TestResponse) -> String {
    let url = page.text("#witness-link code");
    url.rsplit('/').next().expect("token").to_owned()
}

#[sqlx::test]
async fn a_witness_confirms_a_statement_once_through_their_link(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("wes").await;
    let candidate = candidate_browser(&app, &enrolled).await;
    let evidence = app
        .submit_evidence(
            &candidate,
            &enrolled,
            "Cut-over weekend",
            "witness_testimony",
            &["PC1"],
        )
        .await;
    let ask = format!("/evidence/{evidence}/witness");

    let incomplete = candidate
        .post_form(
            &ask,
            &[
                ("witness_name", "Jo Lead"),
                ("witness_email", "not an email"),
            ],
        )
        .await;
    assert_eq!(incomplete.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(incomplete.texts("#witnesses .error-summary a").len(), 2);
    assert_eq!(
        incomplete.attr("#witness_name", "value").as_deref(),
        Some("Jo Lead")
    );

    let request = app
        .name_witness(
            &candidate,
            &evidence,
            ("Jo Lead", "jo.lead@example.org", "Head of platform"),
        )
        .await;
    let named = candidate.get(&format!("/evidence/{evidence}")).await;
    assert!(
        named
            .text("#witnesses .witness-request")
            .contains("the assessor sends them a link")
    );
    assert!(
        named.texts("#witnesses .witness-request form").is_empty(),
        "the candidate never holds the link"
    );

    // The assessor makes the link and sends it; a new one replaces the last.
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let make = format!("/evidence/{evidence}/witness/{request}/link");
    let first = assessor.post_form(&make, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    let replaced = witness_token(&first);
    let asked = assessor.post_form(&make, &[]).await;
    let token = witness_token(&asked);
    assert_ne!(token, replaced);
    assert_eq!(
        app.browser()
            .get(&format!("/witness/{replaced}"))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "the replaced link no longer works"
    );
    assert_eq!(
        candidate.post_form(&make, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(token.len(), 64);
    let stored: Vec<u8> =
        sqlx::query_scalar!(r#"select token_sha256 as "token!" from witness_request"#)
            .fetch_one(&app.pool)
            .await
            .expect("request");
    assert_eq!(
        stored,
        attest::crypto::sha256(token.as_bytes()),
        "only the hash is kept"
    );
    assert!(
        candidate
            .get(&format!("/evidence/{evidence}"))
            .await
            .text("#witnesses .witness-request")
            .contains("waiting for them")
    );
    // Holding the link, the candidate still cannot sign as their own witness.
    let own = candidate.get(&format!("/witness/{token}")).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert_eq!(
        candidate
            .post_form(
                &format!("/witness/{token}"),
                &[("answer", "confirmed"), ("signed_name", "Jo Lead")]
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Only the candidate names witnesses of their own evidence.
    assert_eq!(
        assessor
            .post_form(
                &ask,
                &[
                    ("witness_name", "X"),
                    ("witness_email", "x@example.org"),
                    ("witness_role", "Y")
                ]
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let other = app
        .classmate(&enrolled, "wes-other@example.org", "Wes Other")
        .await;
    let classmate = app.browser_signed_in_as(other.candidate).await;
    assert_eq!(
        classmate
            .post_form(
                &ask,
                &[
                    ("witness_name", "X"),
                    ("witness_email", "x@example.org"),
                    ("witness_role", "Y")
                ]
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The witness has no account: the link alone opens the page.
    let witness = app.browser();
    let link = format!("/witness/{token}");
    let page = witness.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text("#statement")
            .starts_with("I designed the release pipeline.")
    );
    assert_eq!(
        witness
            .get(&format!("/witness/{}", "0".repeat(64)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let unsigned = witness
        .post_form(&link, &[("answer", "corrected"), ("corrections", " ")])
        .await;
    assert_eq!(unsigned.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        unsigned.texts(".error-summary a"),
        [
            "Write what should be corrected",
            "Type your full name to sign"
        ]
    );
    let signed = witness
        .post_form(
            &link,
            &[
                ("answer", "corrected"),
                ("corrections", "The cut-over was on Sunday, not Saturday."),
                ("signed_name", "Jo  Lead"),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK);
    assert!(
        signed
            .text("#witness-outcome")
            .starts_with("Your corrections are recorded")
    );

    // Once only.
    let again = witness
        .post_form(
            &link,
            &[("answer", "confirmed"), ("signed_name", "Jo Lead")],
        )
        .await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(
        again
            .text("#witness-outcome")
            .starts_with("This link has been used")
    );
    assert_eq!(witness.get(&link).await.status, StatusCode::GONE);

    let shown = assessor.get(&format!("/evidence/{evidence}")).await;
    let line = shown.text("#witnesses .witness-request");
    assert!(line.contains("Confirmed with corrections"), "{line}");
    assert!(line.contains("signed “Jo Lead”"), "{line}");
    assert!(line.contains("The cut-over was on Sunday, not Saturday."));
    let answered_ip: Option<String> =
        sqlx::query_scalar("select host(answered_ip) from witness_request")
            .fetch_one(&app.pool)
            .await
            .expect("ip");
    assert!(answered_ip.is_some(), "the address signed from is kept");
    let audit = app.audit_actions().await;
    assert!(audit.contains(&"witness.named".to_owned()));
    assert!(audit.contains(&"witness.link_made".to_owned()));
    assert!(audit.contains(&"witness.corrected".to_owned()));
}

#[sqlx::test]
async fn a_witness_link_expires_after_fourteen_days(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("exa").await;
    let candidate = candidate_browser(&app, &enrolled).await;
    let evidence = app
        .submit_evidence(
            &candidate,
            &enrolled,
            "Launch",
            "witness_testimony",
            &["PC2"],
        )
        .await;
    let request = app
        .name_witness(
            &candidate,
            &evidence,
            ("Ann Ops", "ann@example.org", "Service owner"),
        )
        .await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let made = assessor
        .post_form(&format!("/evidence/{evidence}/witness/{request}/link"), &[])
        .await;
    let link = format!("/witness/{}", witness_token(&made));
    app.clock().advance(time::Duration::days(14));
    let late = app
        .browser()
        .post_form(
            &link,
            &[("answer", "confirmed"), ("signed_name", "Ann Ops")],
        )
        .await;
    assert_eq!(late.status, StatusCode::GONE);
    assert!(
        late.text("#witness-outcome")
            .starts_with("This link has expired")
    );
    assert_eq!(
        app.count("select count(*) from witness_request where answered_at is not null")
            .await,
        0
    );
    let candidate = candidate_browser(&app, &enrolled).await;
    assert!(
        candidate
            .get(&format!("/evidence/{evidence}"))
            .await
            .text("#witnesses .witness-request")
            .contains("the link expired unused")
    );
}

#[sqlx::test]
async fn an_upload_that_stalls_is_ended_and_lets_go_of_its_connection(pool: PgPool) {
    let settings = attest::config::Settings {
        upload_idle: std::time::Duration::from_millis(300),
        ..attest::config::Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let enrolled = app.enrolled("sta").await;
    let candidate = candidate_browser(&app, &enrolled).await;
    let token = candidate.csrf_token().await;
    let boundary = "----attest-stall";
    let start = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nStalled\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    );
    // The first bytes, then nothing, for as long as the client likes.
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(start))]);
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let started = std::time::Instant::now();
    let response = candidate
        .send(
            axum::http::Method::POST,
            &format!("/enrolments/{}/evidence/new", enrolled.enrolment),
            &[
                ("content-type", content_type.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
            body,
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        app.count("select count(*) from evidence").await,
        0,
        "nothing of it is kept"
    );
    assert_eq!(app.count("select count(*) from blob_chunk").await, 0);
}

#[sqlx::test]
async fn a_download_nobody_reads_holds_no_database_connection(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("dlr").await;
    let browser = candidate_browser(&app, &enrolled).await;
    let bytes = pdf_of(6 * 1024 * 1024, 3);
    let (id, file) = draft_with_file(&app, &browser, &enrolled, "big.pdf", &bytes).await;

    // The client takes the first chunk, then reads nothing more.
    let response = browser
        .get_response(&format!("/evidence/{id}/files/{file}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (mut whole, rest) = app.read_with_a_pause(response).await;
    assert!(!whole.is_empty());

    // Read on, it is all there.
    whole.extend_from_slice(&rest);
    assert_eq!(Sha256::digest(&whole), Sha256::digest(&bytes));
}

#[sqlx::test]
async fn a_portfolio_is_drawn_from_memory_until_something_it_shows_changes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("kept").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let page = format!("/enrolments/{}", enrolled.enrolment);
    let progress = |body: &crate::helpers::TestResponse| body.text("#progress");

    let evidence = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;
    assert!(progress(&candidate.get(&page).await).starts_with("In progress."));

    // A change that leaves the revision where it was is not seen: the page came from memory.
    sqlx::query("alter table enrolment_progress disable trigger enrolment_progress_revised")
        .execute(&app.pool)
        .await
        .expect("trigger off");
    sqlx::query("update enrolment_progress set performance_met = 7 where enrolment_id = $1")
        .bind(enrolled.enrolment)
        .execute(&app.pool)
        .await
        .expect("quiet change");
    assert!(progress(&candidate.get(&page).await).contains("PC 0 of 9"));
    sqlx::query("alter table enrolment_progress enable trigger enrolment_progress_revised")
        .execute(&app.pool)
        .await
        .expect("trigger on");
    app.store_status(enrolled.enrolment).await;

    // Every change the page shows moves the revision, whoever makes it and however.
    let judged = app.judge(&assessor, &evidence, &[("PC1", true, "")]).await;
    assert_eq!(judged.status, StatusCode::SEE_OTHER);
    assert!(progress(&candidate.get(&page).await).contains("PC 1 of 9"));
    let draft = candidate
        .post_multipart(
            &format!("/enrolments/{}/evidence/new", enrolled.enrolment),
            &[
                ("title", "Half-written"),
                ("method", "product"),
                ("statement", ""),
                ("action", "save"),
            ],
            &[],
        )
        .await;
    assert!(
        draft
            .location()
            .is_some_and(|l| l.starts_with("/evidence/"))
    );
    assert!(
        candidate
            .get(&page)
            .await
            .text("main")
            .contains("Half-written")
    );
}

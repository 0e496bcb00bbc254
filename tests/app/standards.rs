//! The standards pages and importing standards.

use attest::audit::Actor;
use attest::standards::import::{self, BUNDLED_TEXT, ImportError, ImportOutcome};
use attest::standards::parser;
use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::TestApp;

/// The numbered lines of the published file, as published: 9 performance criteria, then 12
/// knowledge items.
fn published_items() -> (Vec<String>, Vec<String>) {
    let items: Vec<String> = BUNDLED_TEXT
        .lines()
        .filter_map(|line| {
            let (number, text) = line.split_once(". ")?;
            number
                .parse::<u32>()
                .ok()
                .map(|_| text.trim_end().to_owned())
        })
        .collect();
    assert_eq!(items.len(), 21, "the published file has 21 numbered lines");
    let (pcs, ks) = items.split_at(9);
    (pcs.to_vec(), ks.to_vec())
}

#[sqlx::test]
async fn the_standard_page_lists_pc1_to_pc9_and_k1_to_k12_word_for_word(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards/TECIT50761").await;
    assert_eq!(page.status, StatusCode::OK);

    let (pcs, ks) = published_items();
    let pc_codes = page.texts("#performance-criteria .criterion-code");
    let expected_pc_codes: Vec<String> = (1..=9).map(|n| format!("PC{n}")).collect();
    assert_eq!(pc_codes, expected_pc_codes);
    assert_eq!(page.texts("#performance-criteria .criterion-text"), pcs);

    let k_codes = page.texts("#knowledge-items .criterion-code");
    let expected_k_codes: Vec<String> = (1..=12).map(|n| format!("K{n}")).collect();
    assert_eq!(k_codes, expected_k_codes);
    assert_eq!(page.texts("#knowledge-items .criterion-text"), ks);
}

#[sqlx::test]
async fn the_standard_page_shows_title_urn_version_overview_and_metadata(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards/TECIT50761").await;

    assert_eq!(page.texts("h1"), ["Lead DevOps activities"]);
    assert_eq!(page.text("#urn"), "TECIT50761");
    assert_eq!(page.text("#version"), "1");
    let overview = page.texts("section[aria-labelledby=overview-heading] p");
    assert_eq!(overview.len(), 3);
    assert!(overview[1].starts_with("The specific goals of a DevOps approach"));

    let keys = page.texts(".metadata dt");
    assert_eq!(
        keys,
        [
            "Developed by",
            "Version Number",
            "Date Approved",
            "Indicative Review Date",
            "Validity",
            "Status",
            "Originating Organisation",
            "Original URN",
            "Relevant Occupations",
            "Suite",
            "Keywords"
        ]
    );
    let values = page.texts(".metadata dd");
    assert_eq!(values[0], "e-skills");
    assert_eq!(values[3], "April 2019");
    assert_eq!(values[10], "DevOps, digital delivery");
}

#[sqlx::test]
async fn a_standard_past_its_review_date_carries_a_notice(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards/TECIT50761").await;
    let notice = page.text("#review-notice");
    assert!(notice.contains("Review overdue"), "{notice}");
    assert!(notice.contains("April 2019"), "{notice}");

    // A standard whose review date is still ahead carries none.
    let text = BUNDLED_TEXT
        .replace("Original URN\tTECIT50761", "Original URN\tFUTURE1")
        .replace(
            "Indicative Review Date\tApril 2019",
            "Indicative Review Date\tApril 2999",
        );
    let parsed = parser::parse(&text).expect("parses");
    let mut conn = app.pool.acquire().await.expect("connection");
    import::import(&mut conn, &parsed, &Actor::cli())
        .await
        .expect("imports");
    let page = app.get("/standards/FUTURE1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.texts("#review-notice").is_empty());
}

#[sqlx::test]
async fn the_standards_list_links_to_each_standard(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("h1"), ["Standards"]);
    let rows = page.texts("tbody tr");
    assert_eq!(
        rows,
        ["Lead DevOps activities TECIT50761 1 9 performance, 12 knowledge"]
    );
    let html = page.html();
    let link = html
        .select(&scraper::Selector::parse("tbody a").expect("selector"))
        .next()
        .expect("a link");
    assert_eq!(link.value().attr("href"), Some("/standards/TECIT50761"));
}

#[sqlx::test]
async fn an_unknown_standard_is_a_404_page_inside_the_layout(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards/NOPE123").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(page.texts("h1"), ["Page not found"]);
    assert_eq!(page.texts("nav[aria-label=Main] a"), ["Standards"]);
    assert_eq!(page.texts("a.skip-link"), ["Skip to main content"]);
}

#[sqlx::test]
async fn importing_the_same_standard_again_changes_nothing(pool: PgPool) {
    let parsed = parser::parse(BUNDLED_TEXT).expect("parses");
    let mut conn = pool.acquire().await.expect("connection");
    let first = import::import(&mut conn, &parsed, &Actor::cli())
        .await
        .expect("first import");
    let ImportOutcome::Created(id) = first else {
        panic!("first import creates: {first:?}")
    };

    // The same text with other line endings and spacing is the same standard.
    let again = parser::parse(&BUNDLED_TEXT.replace('\n', " \r\n")).expect("parses");
    let second = import::import(&mut conn, &again, &Actor::cli())
        .await
        .expect("second import");
    assert_eq!(second, ImportOutcome::Unchanged(id));

    let counts = sqlx::query!(
        r#"select (select count(*) from standard) as "standards!",
                  (select count(*) from criterion) as "criteria!",
                  (select count(*) from audit_event where action = 'standard.imported') as "events!""#
    )
    .fetch_one(&mut *conn)
    .await
    .expect("counts");
    assert_eq!(
        (counts.standards, counts.criteria, counts.events),
        (1, 21, 1)
    );
}

#[sqlx::test]
async fn changed_text_under_the_same_version_is_refused(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("connection");
    let parsed = parser::parse(BUNDLED_TEXT).expect("parses");
    import::import(&mut conn, &parsed, &Actor::cli())
        .await
        .expect("first import");

    let changed = parser::parse(&BUNDLED_TEXT.replace("secure operations", "safe operations"))
        .expect("parses");
    let error = import::import(&mut conn, &changed, &Actor::cli())
        .await
        .expect_err("refused");
    assert!(
        matches!(error, ImportError::DifferentContent { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("must carry a new version number")
    );

    let pc1: String = sqlx::query_scalar!("select text from criterion where code = 'PC1'")
        .fetch_one(&mut *conn)
        .await
        .expect("PC1");
    assert!(pc1.ends_with("secure operations"));
}

#[sqlx::test]
async fn the_page_shows_the_newest_version_of_a_standard(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // Seen once before the import: the page is then kept in memory for a few seconds.
    let before = app.get("/standards/TECIT50761").await;
    assert_eq!(before.text("#version"), "1");
    let text = BUNDLED_TEXT
        .replace("Version Number\t1", "Version Number\t2")
        .replace(
            "changing business requirements\n",
            "changing business requirements\n10. lead by example\n",
        );
    let parsed = parser::parse(&text).expect("parses");
    assert_eq!(parsed.version, "2");
    let mut conn = app.pool.acquire().await.expect("connection");
    import::import(&mut conn, &parsed, &Actor::cli())
        .await
        .expect("imports version 2");

    app.clock().advance(attest::standards::cache::RECHECK);
    let page = app.get("/standards/TECIT50761").await;
    assert_eq!(page.text("#version"), "2");
    let codes = page.texts("#performance-criteria .criterion-code");
    assert_eq!(codes.last().map(String::as_str), Some("PC10"));
}

#[sqlx::test]
async fn the_standard_page_is_kept_in_memory_with_an_etag(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.get("/standards/TECIT50761").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert_eq!(first.header("cache-control"), Some("public, max-age=60"));

    // A second copy of the page needs no database: with the pool closed it still answers.
    let again = app
        .request(
            axum::http::Request::get("/standards/TECIT50761")
                .header("if-none-match", &etag)
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    app.pool.close().await;
    let offline = app.get("/standards/TECIT50761").await;
    assert_eq!(offline.status, StatusCode::OK);
    assert_eq!(offline.header("etag"), Some(etag.as_str()));
    assert_eq!(
        offline.texts("#performance-criteria .criterion-code").len(),
        9
    );

    // Signed-in people get the page with their own header, never the shared copy.
    assert_eq!(
        offline.texts("#account-link").len(),
        0,
        "the shared copy is the signed-out page"
    );
}

#[sqlx::test]
async fn a_signed_in_person_sees_the_standard_with_their_own_header(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let _ = app.get("/standards/TECIT50761").await;
    let (_, browser) = app.signed_in(&[attest::identity::Role::Assessor]).await;
    let page = browser.get("/standards/TECIT50761").await;
    assert_eq!(page.texts("#account-link").len(), 1);
    assert_eq!(page.header("etag"), None);
}

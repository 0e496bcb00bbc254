//! The tamper-evident audit trail: one chain, verified, that names what was changed or removed.

use attest::audit::{self, Actor, NewAuditEvent};
use attest::identity::Role;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp};

async fn some_history(app: &TestApp) {
    app.create_user("ann@example.org", "Ann", &[Role::Candidate])
        .await;
    let ann = app.browser();
    ann.sign_in("ann@example.org", PASSWORD).await;
    ann.post_form("/logout", &[]).await;
    app.browser().sign_in("ann@example.org", PASSWORD).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    admin
        .post_form(
            "/admin/users",
            &[
                ("name", "Ben"),
                ("email", "ben@example.org"),
                ("role", "assessor"),
            ],
        )
        .await;
    app.seal_audit().await;
}

/// The events' ids in chain order.
async fn ids(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar!("select audit_event_id from audit_event order by chain_seq")
        .fetch_all(&app.pool)
        .await
        .expect("ids")
}

/// Tampering as someone with direct database access would: past the append-only trigger.
pub async fn tamper(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.expect("begin");
    sqlx::raw_sql("alter table audit_event disable trigger audit_event_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .expect("disable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await
        .expect("tamper");
    sqlx::raw_sql("alter table audit_event enable trigger audit_event_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .expect("enable");
    tx.commit().await.expect("commit");
}

#[sqlx::test]
async fn an_untouched_trail_verifies_and_reports_its_head(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_history(&app).await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let report = audit::verify(&mut conn).await.expect("verify");
    assert_eq!(report.broken, None);
    assert_eq!(report.pending, 0);
    assert_eq!(
        report.events,
        u64::try_from(ids(&app).await.len()).expect("count")
    );
    assert!(report.events >= 4);
    let head: Option<Vec<u8>> =
        sqlx::query_scalar!("select hash from audit_event order by chain_seq desc limit 1")
            .fetch_one(&app.pool)
            .await
            .expect("head");
    assert_eq!(head.as_deref(), Some(&report.head[..]));
}

#[sqlx::test]
async fn an_event_changed_with_plain_sql_is_named(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_history(&app).await;
    let ids = ids(&app).await;
    let target = ids[ids.len() / 2];
    tamper(
        &app,
        &format!(
            "update audit_event set detail = '{{\"forged\": true}}' where audit_event_id = {target}"
        ),
    )
    .await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let report = audit::verify(&mut conn).await.expect("verify");
    let (id, reason) = report.broken.expect("broken");
    assert_eq!(id, target);
    assert!(reason.contains("was changed"), "{reason}");
}

#[sqlx::test]
async fn a_deleted_event_is_detected_at_the_gap(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_history(&app).await;
    let ids = ids(&app).await;
    let target = ids[2];
    tamper(
        &app,
        &format!("delete from audit_event where audit_event_id = {target}"),
    )
    .await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let (id, reason) = audit::verify(&mut conn)
        .await
        .expect("verify")
        .broken
        .expect("broken");
    assert_eq!(id, ids[3]);
    assert!(
        reason.contains(&format!("does not follow event {}", ids[1])),
        "{reason}"
    );

    // Removing the oldest events is noticed too.
    tamper(
        &app,
        &format!(
            "delete from audit_event where audit_event_id in ({}, {})",
            ids[0], ids[1]
        ),
    )
    .await;
    let (id, reason) = audit::verify(&mut conn)
        .await
        .expect("verify")
        .broken
        .expect("broken");
    assert_eq!(id, ids[3]);
    assert!(reason.contains("older events were removed"), "{reason}");
}

#[sqlx::test]
async fn the_append_only_trigger_refuses_changes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_history(&app).await;
    assert!(
        sqlx::query!("update audit_event set actor = 'someone else'")
            .execute(&app.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query!("delete from audit_event")
            .execute(&app.pool)
            .await
            .is_err()
    );
}

async fn append(pool: &PgPool, entity_id: String) {
    let mut tx = pool.begin().await.expect("begin");
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::system(),
            action: "test.appended",
            entity_type: "test",
            entity_id,
            detail: json!({ "k": [1, 2] }),
        },
    )
    .await
    .expect("record");
    tx.commit().await.expect("commit");
}

#[sqlx::test]
async fn thirty_two_concurrent_writers_and_two_sealers_make_one_chain(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut writers = Vec::new();
    for writer in 0..32 {
        let pool = app.pool.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..5 {
                append(&pool, format!("{writer}-{n}")).await;
            }
        }));
    }
    // Two sealers, as two `attest serve` processes on one database run.
    let sealers: Vec<_> = (0..2)
        .map(|_| {
            let pool = app.pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.expect("connection");
                let mut sealed = 0;
                for _ in 0..40 {
                    sealed += audit::seal_pending(&mut conn).await.expect("seal");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                sealed
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut sealed = app.seal_audit().await;
    for sealer in sealers {
        sealed += sealer.await.expect("sealer");
    }
    assert_eq!(sealed, 160, "each event sealed once");
    let events = app.count("select count(*) from audit_event").await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let report = audit::verify(&mut conn).await.expect("verify");
    assert_eq!((report.broken, report.pending), (None, 0));
    assert_eq!(i64::try_from(report.events).expect("count"), events);
    assert_eq!(
        app.count("select count(distinct prev_hash) from audit_event")
            .await,
        events,
        "no fork"
    );
    assert_eq!(
        app.count("select max(chain_seq) from audit_event").await,
        events,
        "no gap"
    );
}

#[sqlx::test]
async fn a_writer_does_not_wait_for_another_writers_commit(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // A change that has written its event and is still working, as a roster import does.
    let mut slow = app.pool.begin().await.expect("begin");
    audit::record(
        &mut slow,
        NewAuditEvent {
            actor: &Actor::system(),
            action: "test.slow",
            entity_type: "test",
            entity_id: "slow".into(),
            detail: json!({}),
        },
    )
    .await
    .expect("record");

    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        append(&app.pool, "quick".into()),
    )
    .await
    .expect("the second writer commits while the first is still open");
    // The sealer links what is committed and leaves the open change for later.
    assert_eq!(app.seal_audit().await, 1);
    slow.commit().await.expect("commit");
    assert_eq!(app.seal_audit().await, 1);

    let chain: Vec<String> = sqlx::query_scalar!(
        "select entity_id from audit_event where entity_type = 'test' order by chain_seq"
    )
    .fetch_all(&app.pool)
    .await
    .expect("chain");
    assert_eq!(
        chain,
        ["quick", "slow"],
        "the chain keeps the order of commits"
    );
    let mut conn = app.pool.acquire().await.expect("connection");
    let report = audit::verify(&mut conn).await.expect("verify");
    assert_eq!((report.broken, report.pending), (None, 0));
}

#[sqlx::test]
async fn events_waiting_for_the_sealer_are_sealed_in_order(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // Rows as a change, or a version from before the chain, leaves them: without hashes.
    sqlx::raw_sql(
        "insert into audit_event (actor, action, entity_type, entity_id, detail)
         values ('system', 'legacy.one', 'x', '1', '{}'), ('system', 'legacy.two', 'x', '2', '{\"k\": [1, 2]}')",
    )
    .execute(&app.pool)
    .await
    .expect("unsealed rows");
    let mut conn = app.pool.acquire().await.expect("connection");
    let waiting = audit::verify(&mut conn).await.expect("verify");
    assert_eq!((waiting.broken, waiting.pending), (None, 2));
    assert_eq!(audit::head(&mut conn).await.expect("head"), waiting.head);

    assert_eq!(app.seal_audit().await, 2);
    let sealed = audit::verify(&mut conn).await.expect("verify");
    assert_eq!((sealed.broken, sealed.pending), (None, 0));
    assert_eq!(sealed.events, waiting.events + 2);
    assert_ne!(sealed.head, waiting.head);
    assert_eq!(audit::head(&mut conn).await.expect("head"), sealed.head);
    let chain: Vec<String> = sqlx::query_scalar!(
        "select action from audit_event where action like 'legacy.%' order by chain_seq"
    )
    .fetch_all(&app.pool)
    .await
    .expect("chain");
    assert_eq!(chain, ["legacy.one", "legacy.two"]);
    assert_eq!(app.seal_audit().await, 0, "nothing is sealed twice");
}

#[sqlx::test]
async fn admins_filter_the_trail_and_download_it_as_csv(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_history(&app).await;
    // Someone whose email a spreadsheet would read as a formula.
    app.create_user("=cmd@example.org", "Formula", &[Role::Candidate])
        .await;
    app.browser().sign_in("=cmd@example.org", PASSWORD).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;

    let all = admin.get("/admin/audit").await;
    assert_eq!(all.status, axum::http::StatusCode::OK);
    let total = ids(&app).await.len();
    assert_eq!(all.texts("#events tbody tr").len(), total);
    let signed_in = admin.get("/admin/audit?entity=login_succeeded").await;
    assert_eq!(
        signed_in.texts("#events .action"),
        [
            "auth.login_succeeded",
            "auth.login_succeeded",
            "auth.login_succeeded"
        ]
    );
    let by_actor = admin.get("/admin/audit?actor=%3Dcmd").await;
    assert_eq!(by_actor.texts("#events .action"), ["auth.login_succeeded"]);
    let ancient = admin
        .get("/admin/audit?from=-5000-01-01&to=99999-01-01")
        .await;
    assert_eq!(
        ancient.status,
        axum::http::StatusCode::OK,
        "dates out of range are ignored, not a 500"
    );
    let future = admin.get("/admin/audit?from=2999-01-01").await;
    assert_eq!(future.texts("#no-events").len(), 1);

    let (status, headers, body) = admin
        .get_bytes("/admin/audit.csv?entity=login_succeeded")
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(body.as_slice());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        [
            "id",
            "occurred_at",
            "actor",
            "action",
            "entity_type",
            "entity_id",
            "client_ip",
            "detail"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(
        &records[0][2], "'=cmd@example.org",
        "a formula is neutralised"
    );
    assert_eq!(&records[1][2], "ann@example.org");
    assert_eq!(&records[0][3], "auth.login_succeeded");
}

#[sqlx::test]
async fn the_csv_export_reads_in_pages_and_holds_no_connection_while_the_client_reads(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let mut tx = app.pool.begin().await.expect("begin");
    for n in 0..2_500 {
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::system(),
                action: "test.bulk",
                entity_type: "test",
                entity_id: format!("bulk-{n}"),
                detail: json!({ "n": n }),
            },
        )
        .await
        .expect("record");
    }
    tx.commit().await.expect("commit");
    let (_, admin) = app.signed_in(&[Role::Admin]).await;

    let response = admin.get_response("/admin/audit.csv?entity=bulk").await;
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let (_, rest) = app.read_with_a_pause(response).await;

    // Read on: every event once, newest first, across the pages.
    let text = String::from_utf8(rest).expect("text");
    let ids: Vec<i64> = text
        .lines()
        .filter(|l| l.contains("test.bulk"))
        .map(|l| l.split(',').next().expect("id").parse().expect("a number"))
        .collect();
    assert_eq!(ids.len(), 2_500);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "each once, newest first"
    );
}

//! User management by admins.

use attest::identity::Role;
use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp};

#[sqlx::test]
async fn an_admin_creates_a_user_and_gets_an_invitation_link_that_works(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let form = admin.get("/admin/users/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(
        form.texts("label[for^=role-]"),
        ["Candidate", "Assessor", "Internal quality assurer", "Admin"]
    );

    let created = admin
        .post_form(
            "/admin/users",
            &[
                ("name", "Ines  Iqa "),
                ("email", "Ines@Example.org"),
                ("role", "iqa"),
                ("role", "assessor"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.text("h1"), "Ines Iqa");
    assert_eq!(created.text("#user-status"), "Invited, no password yet");
    let url = created
        .attr("#access-link-url", "value")
        .expect("an invitation link");
    assert!(
        url.starts_with("http://127.0.0.1:3000/invitations/"),
        "{url}"
    );
    let checked: Vec<String> = ["candidate", "assessor", "iqa", "admin"]
        .into_iter()
        .filter(|r| {
            created
                .attr(&format!("#role-{r}[checked]"), "value")
                .is_some()
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(checked, ["assessor", "iqa"]);

    let path = url.trim_start_matches("http://127.0.0.1:3000");
    let invitee = app.browser();
    invitee
        .post_form(
            path,
            &[("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await
        .assert_redirect_to("/");
    let home = invitee.get("/").await;
    assert_eq!(home.texts(".panel h2"), ["Assessing", "Quality assurance"]);

    let list = admin.get("/admin/users?q=ines").await;
    assert_eq!(list.texts("#users tbody th"), ["Ines Iqa"]);
    assert_eq!(
        list.texts("#users tbody td")[1],
        "Assessor, Internal quality assurer"
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"user.created".to_owned())
    );
}

#[sqlx::test]
async fn bad_input_is_marked_on_the_form_and_nothing_is_created(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    app.create_user("taken@example.org", "Taken", &[Role::Candidate])
        .await;
    let before = app.count("select count(*) from app_user").await;

    let response = admin
        .post_form(
            "/admin/users",
            &[("name", " "), ("email", "nope"), ("role", "root")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.texts(".error-summary a"),
        [
            "Enter the person's name",
            "Enter an email address like name@example.org",
            "\"root\" is not a role"
        ]
    );
    assert_eq!(response.attr("#email", "value").as_deref(), Some("nope"));

    let duplicate = admin
        .post_form(
            "/admin/users",
            &[("name", "Again"), ("email", "TAKEN@example.org")],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        duplicate.text("#email-error"),
        "Error: An account with this email address already exists"
    );
    assert_eq!(app.count("select count(*) from app_user").await, before);
}

#[sqlx::test]
async fn search_finds_by_name_or_email_without_regard_to_case(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    app.create_user("zoe@example.org", "Zoë Zimmer", &[Role::Candidate])
        .await;
    app.create_user("yan@sample.net", "Yan Young", &[Role::Assessor])
        .await;
    assert_eq!(
        admin
            .get("/admin/users?q=ZIMMER")
            .await
            .texts("#users tbody th"),
        ["Zoë Zimmer"]
    );
    assert_eq!(
        admin
            .get("/admin/users?q=sample.net")
            .await
            .texts("#users tbody th"),
        ["Yan Young"]
    );
    assert_eq!(
        admin
            .get("/admin/users?q=100%25")
            .await
            .texts("#no-users")
            .len(),
        1
    );
}

#[sqlx::test]
async fn changing_roles_gives_the_users_session_a_new_id(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let (user, person) = app.signed_in(&[Role::Candidate]).await;
    let before = person.cookie("attest_session").expect("session");

    admin
        .post_form(
            &format!("/admin/users/{user}"),
            &[
                ("name", "Renamed Person"),
                ("role", "candidate"),
                ("role", "assessor"),
            ],
        )
        .await
        .assert_redirect_to(&format!("/admin/users/{user}"));

    let page = person.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("h1"), "Welcome, Renamed Person");
    let after = person.cookie("attest_session").expect("session");
    assert_ne!(before, after, "a new session id after the role change");
    let stale = app.browser();
    stale.set_cookie("attest_session", &before);
    assert!(stale.get("/").await.is_sign_in_redirect());
    assert!(
        app.audit_actions()
            .await
            .contains(&"user.roles_changed".to_owned())
    );
}

#[sqlx::test]
async fn an_admin_cannot_remove_their_own_admin_role(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (me, admin) = app.signed_in(&[Role::Admin]).await;
    app.create_user("other.admin@example.org", "Other Admin", &[Role::Admin])
        .await;
    let response = admin
        .post_form(
            &format!("/admin/users/{me}"),
            &[("name", "Me"), ("role", "assessor")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text("#role-admin-error")
            .contains("cannot remove your own admin role")
    );
    let roles: Vec<Role> = sqlx::query_scalar!(
        r#"select roles as "roles: Vec<Role>" from app_user where user_id = $1"#,
        me.0
    )
    .fetch_one(&app.pool)
    .await
    .expect("roles");
    assert_eq!(roles, [Role::Admin]);
}

#[sqlx::test]
async fn the_last_active_admin_cannot_be_deactivated_or_demoted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (me, admin) = app.signed_in(&[Role::Admin]).await;
    let response = admin
        .post_form(&format!("/admin/users/{me}/deactivate"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text("#deactivate-error")
            .contains("cannot deactivate your own account")
    );
    assert_eq!(
        app.count("select count(*) from app_user where is_active")
            .await,
        1
    );

    // With a second admin, either may deactivate the other, and the last one stays.
    let other = app
        .create_user("second@example.org", "Second Admin", &[Role::Admin])
        .await;
    admin
        .post_form(&format!("/admin/users/{other}/deactivate"), &[])
        .await
        .assert_redirect_to(&format!("/admin/users/{other}"));
    let demote = admin
        .post_form(&format!("/admin/users/{me}"), &[("name", "Me")])
        .await;
    assert_eq!(demote.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test]
async fn deactivating_a_user_ends_their_sessions_and_stops_sign_in_until_reactivated(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let user = app
        .create_user("dee@example.org", "Dee Active", &[Role::Candidate])
        .await;
    let person = app.browser();
    person
        .sign_in("dee@example.org", PASSWORD)
        .await
        .assert_redirect_to("/");

    let response = admin
        .post_form(&format!("/admin/users/{user}/deactivate"), &[])
        .await;
    response.assert_redirect_to(&format!("/admin/users/{user}"));
    assert_eq!(
        admin
            .get(&format!("/admin/users/{user}"))
            .await
            .text("#flash"),
        "Dee Active is deactivated and signed out."
    );
    assert!(person.get("/").await.is_sign_in_redirect());
    let refused = app.browser().sign_in("dee@example.org", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.text(".field-error"),
        "Error: The email address or password is not right."
    );

    admin
        .post_form(&format!("/admin/users/{user}/reactivate"), &[])
        .await;
    app.browser()
        .sign_in("dee@example.org", PASSWORD)
        .await
        .assert_redirect_to("/");
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"user.deactivated".to_owned())
            && actions.contains(&"user.reactivated".to_owned())
    );
}

#[sqlx::test]
async fn a_new_access_link_is_a_reset_link_for_a_user_with_a_password_and_retires_older_ones(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let created = admin
        .post_form(
            "/admin/users",
            &[
                ("name", "Pat"),
                ("email", "pat@example.org"),
                ("role", "candidate"),
            ],
        )
        .await;
    let first = created.attr("#access-link-url", "value").expect("link");
    let id = sqlx::query_scalar!("select user_id from app_user where email = 'pat@example.org'")
        .fetch_one(&app.pool)
        .await
        .expect("id");

    let reissued = admin
        .post_form(&format!("/admin/users/{id}/access-link"), &[])
        .await;
    assert_eq!(reissued.text("#access-link h2"), "Invitation link");
    let second = reissued.attr("#access-link-url", "value").expect("link");
    let strip = |url: &str| url.trim_start_matches("http://127.0.0.1:3000").to_owned();
    assert_eq!(
        app.get(&strip(&first)).await.status,
        StatusCode::NOT_FOUND,
        "the first link is retired"
    );
    app.browser()
        .post_form(
            &strip(&second),
            &[("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await
        .assert_redirect_to("/");

    let reset = admin
        .post_form(&format!("/admin/users/{id}/access-link"), &[])
        .await;
    assert_eq!(reset.text("#access-link h2"), "Password reset link");
    assert!(
        reset
            .attr("#access-link-url", "value")
            .expect("link")
            .contains("/password-reset/")
    );
}

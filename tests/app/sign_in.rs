use switchboard_core::Role;

use crate::harness::TestApp;

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    TestApp::set_cookie_value(response, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_signs_in_and_lands_on_their_home() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("carol", 12_340_000).await;
    let http = TestApp::browser();
    let response = app.sign_in(&http, &username, &password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/portal");
    let home = app.page(&http, "/portal").await;
    assert!(home.contains("$12.34"), "the balance is shown");
    assert!(home.contains("carol Co"));
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_rotates_the_session_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("rotor", 0).await;
    let http = TestApp::browser();
    let first = app.sign_in(&http, &username, &password).await;
    let first_token = cookie_value(&first, "sb_session").expect("a session cookie");
    let second = app.sign_in_again(&http, &username, &password).await;
    let second_token = cookie_value(&second, "sb_session").expect("a new session cookie");
    assert_ne!(first_token, second_token);

    let stale = TestApp::browser();
    let response = stale
        .get(app.url("/portal"))
        .header("cookie", format!("sb_session={first_token}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.status(),
        303,
        "the replaced session no longer signs in"
    );
    let fresh = http.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(fresh.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let (_, username, _) = app.client("dave", 0).await;
    let wrong = app
        .sign_in(&TestApp::browser(), &username, "not-the-password")
        .await;
    let unknown = app
        .sign_in(&TestApp::browser(), "nobody-here", "not-the-password")
        .await;
    assert_eq!(wrong.status(), 422);
    assert_eq!(unknown.status(), 422);
    let wrong = wrong.text().await.expect("body");
    let unknown = unknown.text().await.expect("body");
    assert!(wrong.contains("Wrong username or password."));
    let strip = |page: &str, name: &str| {
        page.replace(name, "")
            .replace(&crate::harness::csrf_in(page).unwrap_or_default(), "")
    };
    assert_eq!(strip(&wrong, &username), strip(&unknown, "nobody-here"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_attempts_are_limited_per_username_and_address_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("erin", 0).await;
    for _ in 0..5 {
        let response = app
            .sign_in(&TestApp::browser(), &username, "wrong-password")
            .await;
        assert_eq!(response.status(), 422);
    }
    let blocked = app.sign_in(&TestApp::browser(), &username, &password).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked
        .text()
        .await
        .expect("body")
        .contains("Too many failed sign-in attempts"));
    // Another user from the same address is not blocked by erin's failures.
    let (_, other, other_password) = app.client("frank", 0).await;
    assert_eq!(
        app.sign_in(&TestApp::browser(), &other, &other_password)
            .await
            .status(),
        303
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_attempts_are_limited_per_address() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("gina", 0).await;
    for n in 0..30 {
        let response = app
            .sign_in(&TestApp::browser(), &format!("guess{n}"), "wrong-password")
            .await;
        assert_eq!(response.status(), 422);
    }
    assert_eq!(
        app.sign_in(&TestApp::browser(), &username, &password)
            .await
            .status(),
        429
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("hank", 0).await;
    let http = app.signed_in(&username, &password).await;
    let token = app.csrf_token(&http, "/portal").await;
    let out = http
        .post(app.url("/sign-out"))
        .form(&[("csrf", token)])
        .send()
        .await
        .expect("POST");
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/sign-in?signed_out=1");
    let home = http.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(home.status(), 303);
    assert!(home.headers()["location"]
        .to_str()
        .expect("text")
        .starts_with("/sign-in?next=/portal"));
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let live: i64 = switchboard_core::schema::sessions::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(live, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_open_only_to_their_roles() {
    let app = TestApp::spawn().await;
    let (_, client, client_password) = app.client("ivy", 0).await;
    app.user("sid", Role::Staff, None).await;
    let anonymous = TestApp::browser();
    for path in ["/portal", "/admin"] {
        let response = anonymous.get(app.url(path)).send().await.expect("GET");
        assert_eq!(
            response.status(),
            303,
            "{path} sends anonymous visitors to sign in"
        );
    }
    let client = app.signed_in(&client, &client_password).await;
    assert_eq!(
        client
            .get(app.url("/admin"))
            .send()
            .await
            .expect("GET")
            .status(),
        403
    );
    let staff = app.signed_in("sid", "sid-password-123").await;
    assert_eq!(
        staff
            .get(app.url("/portal"))
            .send()
            .await
            .expect("GET")
            .status(),
        403
    );
    assert_eq!(
        staff
            .get(app.url("/admin"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_with_a_one_time_password_must_choose_a_new_one_first() {
    let app = TestApp::spawn().await;
    let (id, password) = app.user("olga", Role::Admin, None).await;
    {
        let mut conn = app.conn().await;
        switchboard_core::people::users::set_password(&mut conn, id, &password, true)
            .await
            .expect("marking the password as one-time");
    }
    let http = TestApp::browser();
    let response = app.sign_in(&http, "olga", &password).await;
    assert_eq!(response.headers()["location"], "/account/password");
    let admin = http.get(app.url("/admin")).send().await.expect("GET");
    assert_eq!(admin.headers()["location"], "/account/password");
    // The API is closed too, but for what it takes to choose a new password.
    let accounts = app
        .graphql(
            &http,
            "{ accounts { edges { node { name } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        accounts["errors"][0]["message"],
        "Choose a new password first (changePassword)."
    );
    let viewer = app
        .graphql(
            &http,
            "{ viewer { user { mustChangePassword } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(viewer["data"]["viewer"]["user"]["mustChangePassword"], true);

    let token = app.csrf_token(&http, "/account/password").await;
    let mismatch = http
        .post(app.url("/account/password"))
        .form(&[
            ("csrf", token.as_str()),
            ("current_password", &password),
            ("new_password", "a-brand-new-pass"),
            ("confirm_password", "another-one-here"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(mismatch.status(), 422);
    let changed = http
        .post(app.url("/account/password"))
        .form(&[
            ("csrf", token.as_str()),
            ("current_password", &password),
            ("new_password", "a-brand-new-pass"),
            ("confirm_password", "a-brand-new-pass"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(changed.status(), 200);
    assert!(changed
        .text()
        .await
        .expect("body")
        .contains("Your password has been changed."));
    assert_eq!(
        http.get(app.url("/admin"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
    let again = app
        .sign_in(&TestApp::browser(), "olga", "a-brand-new-pass")
        .await;
    assert_eq!(again.headers()["location"], "/admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sign_in_only_a_path_on_this_site_is_followed() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("nextdoor", 0).await;
    for (next, expected) in [
        ("/portal?tab=1", "/portal?tab=1"),
        ("//evil.example/", "/portal"),
        ("/\\evil.example/", "/portal"),
        ("/\t/evil.example", "/portal"),
        ("https://evil.example/", "/portal"),
    ] {
        let http = TestApp::browser();
        let token = app.csrf_token(&http, "/sign-in").await;
        let response = http
            .post(app.url("/sign-in"))
            .form(&[
                ("csrf", token.as_str()),
                ("username", &username),
                ("password", &password),
                ("next", next),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.headers()["location"], expected, "next={next:?}");
    }
}

/// Signs in through the form from `address`, as a trusted proxy forwards it;
/// returns the status.
async fn sign_in_from(app: &TestApp, address: &str, user: &str, pass: &str) -> reqwest::StatusCode {
    let http = TestApp::browser();
    let token = app.csrf_token(&http, "/sign-in").await;
    http.post(app.url("/sign-in"))
        .header("x-forwarded-for", format!("{address}, 127.0.0.1"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", user),
            ("password", pass),
        ])
        .send()
        .await
        .expect("POST")
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_limits_count_the_forwarded_address() {
    let app = TestApp::spawn_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("address")];
    })
    .await;
    let (_, username, password) = app.client("proxied", 0).await;
    for n in 0..30 {
        let status =
            sign_in_from(&app, "203.0.113.7", &format!("guess{n}"), "wrong-password").await;
        assert_eq!(status, 422);
    }
    assert_eq!(
        sign_in_from(&app, "203.0.113.7", &username, &password).await,
        429
    );
    assert_eq!(
        sign_in_from(&app, "198.51.100.9", &username, &password).await,
        303,
        "another client is not locked out"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_from_one_address_do_not_lock_the_owner_out_elsewhere() {
    let app = TestApp::spawn_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("address")];
    })
    .await;
    let (_, username, password) = app.client("targeted", 0).await;
    for _ in 0..5 {
        assert_eq!(
            sign_in_from(&app, "203.0.113.30", &username, "wrong-password").await,
            422
        );
    }
    assert_eq!(
        sign_in_from(&app, "203.0.113.30", &username, "wrong-password").await,
        429
    );
    assert_eq!(
        sign_in_from(&app, "198.51.100.30", &username, &password).await,
        303,
        "the owner signs in from their own address, slowed down but not locked out"
    );
    // An unknown user and a wrong password still read alike.
    assert_eq!(
        sign_in_from(&app, "198.51.100.31", &username, "wrong-password").await,
        422
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_the_current_password_through_the_api_is_limited_too() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("guessed", 0).await;
    let http = app.signed_in(&username, &password).await;
    let change = |current: &'static str| {
        let (http, app) = (http.clone(), &app);
        async move {
            app.graphql(
                &http,
                "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"a-new-password-9\") }",
                serde_json::json!({ "c": current }),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            change("wrong-guess-00").await["errors"][0]["message"],
            "The current password is wrong."
        );
    }
    let blocked = change("wrong-guess-00").await;
    assert!(blocked["errors"][0]["message"]
        .as_str()
        .expect("a message")
        .starts_with("Too many failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_cookie_sent_twice_signs_nobody_in() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("twice", 0).await;
    let response = app.sign_in(&TestApp::browser(), &username, &password).await;
    let token = cookie_value(&response, "sb_session").expect("a session");
    let doubled = TestApp::browser()
        .get(app.url("/portal"))
        .header("cookie", format!("sb_session={token}; sb_session=planted"))
        .send()
        .await
        .expect("GET");
    assert_eq!(doubled.status(), 303);
    let single = TestApp::browser()
        .get(app.url("/portal"))
        .header("cookie", format!("sb_session={token}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(single.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_read_gets_the_viewers_account_with_the_session() {
    use switchboard_core::people::sessions;
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("quinn", 7_500_000).await;
    let (client, _) = app.user("quinn2", Role::Client, Some(account)).await;
    let (staff, _) = app.user("rhea", Role::Staff, None).await;
    let lifetime = chrono::Duration::hours(1);
    let max_age = chrono::Duration::hours(12);
    let mut conn = app.conn().await;
    let client_token = sessions::create(&mut conn, client, lifetime, "127.0.0.1", "test")
        .await
        .expect("a session");
    let staff_token = sessions::create(&mut conn, staff, lifetime, "127.0.0.1", "test")
        .await
        .expect("a session");

    // A read: the account and its balance come with the session.
    let user = sessions::lookup(&mut conn, &client_token, max_age, true)
        .await
        .expect("the lookup")
        .expect("a live session");
    let (row, balance) = user.account.clone().expect("the account, read with it");
    assert_eq!((row.id, row.name.as_str()), (account.0, "quinn Co"));
    assert_eq!(balance.0, 7_500_000);
    assert_eq!(user.account_id, Some(account));

    // A change: the session alone, the rest as it was.
    let alone = sessions::lookup(&mut conn, &client_token, max_age, false)
        .await
        .expect("the lookup")
        .expect("a live session");
    assert_eq!(alone.account, None);
    assert_eq!(
        switchboard_core::people::sessions::SessionUser {
            account: None,
            ..user
        },
        alone
    );

    // A user without an account still has their session.
    let staff_user = sessions::lookup(&mut conn, &staff_token, max_age, true)
        .await
        .expect("the lookup")
        .expect("staff's session, though they have no account");
    assert_eq!((staff_user.role, staff_user.account), (Role::Staff, None));

    // An unknown token finds nothing, with or without the account.
    for with_account in [true, false] {
        assert!(
            sessions::lookup(&mut conn, "no-such-token", max_age, with_account)
                .await
                .expect("the lookup")
                .is_none()
        );
    }
}

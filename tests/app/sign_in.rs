use switchboard_core::Role;

use crate::harness::TestApp;

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            c[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_owned()
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_signs_in_and_lands_on_their_home() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("carol", 12_340_000).await;
    let http = TestApp::browser();
    let response = app.sign_in(&http, &username, &password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/portal");
    let home = http
        .get(app.url("/portal"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
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
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
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
async fn sign_in_attempts_are_limited_per_username_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("erin", 0).await;
    for _ in 0..5 {
        let response = app
            .sign_in(&TestApp::browser(), &username, "wrong-password")
            .await;
        assert_eq!(response.status(), 401);
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
        assert_eq!(response.status(), 401);
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
        switchboard_core::users::set_password(&mut conn, id, &password, true)
            .await
            .expect("marking the password as one-time");
    }
    let http = TestApp::browser();
    let response = app.sign_in(&http, "olga", &password).await;
    assert_eq!(response.headers()["location"], "/account/password");
    let admin = http.get(app.url("/admin")).send().await.expect("GET");
    assert_eq!(admin.headers()["location"], "/account/password");

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

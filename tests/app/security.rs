use switchboard_core::Role;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn a_form_without_the_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("mallory", 0).await;
    let http = TestApp::browser();
    http.get(app.url("/sign-in")).send().await.expect("GET");
    let missing = http
        .post(app.url("/sign-in"))
        .form(&[
            ("username", username.as_str()),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(missing.status(), 403);
    assert!(missing.headers().get("location").is_none());

    // A token issued to another browser is no good either.
    let other = TestApp::browser();
    let foreign = app.csrf_token(&other, "/sign-in").await;
    let forged = http
        .post(app.url("/sign-in"))
        .form(&[
            ("csrf", foreign.as_str()),
            ("username", &username),
            ("password", &password),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), 403);

    let signed_in = app.signed_in(&username, &password).await;
    let sign_out = signed_in
        .post(app.url("/sign-out"))
        .form(&[("x", "y")])
        .send()
        .await
        .expect("POST");
    assert_eq!(sign_out.status(), 403);
    assert_eq!(
        signed_in
            .get(app.url("/portal"))
            .send()
            .await
            .expect("GET")
            .status(),
        200,
        "still signed in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_authenticated_graphql_needs_the_csrf_header() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("nina", 0).await;
    let http = app.signed_in(&username, &password).await;
    let query = serde_json::json!({ "query": "{ viewer { user { username } } }" });
    let refused = http
        .post(app.url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 403);
    let answer = app
        .graphql(
            &http,
            "{ viewer { user { username } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(answer["data"]["viewer"]["user"]["username"], "nina");

    // Without cookies there is no ambient authority to protect: the request
    // runs as nobody.
    let anonymous = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), 200);
    let body: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "Sign in first.");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/sign-in",
        "/healthz",
        "/nowhere",
        "/static/switchboard.css",
    ] {
        let response = TestApp::browser()
            .get(app.url(path))
            .send()
            .await
            .expect("GET");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("text");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(csp.contains("script-src 'self'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    }
    let page = TestApp::browser()
        .get(app.url("/sign-in"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains("<script"),
        "pages work without JavaScript and carry none inline"
    );
    assert!(!page.contains("style="), "no inline styles");
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookies_are_http_only_and_lax_and_secure_over_https() {
    for (https, secure) in [(false, false), (true, true)] {
        let app = TestApp::spawn_with(|settings| {
            if https {
                settings.base_url = "https://portal.example.com".into();
            }
        })
        .await;
        let (_, username, password) = app.client("otto", 0).await;
        let response = app.sign_in(&TestApp::browser(), &username, &password).await;
        let session = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("sb_session=") || c.starts_with("__Host-sb_session="))
            .expect("a session cookie")
            .to_owned();
        assert!(session.contains("HttpOnly"));
        assert!(session.contains("SameSite=Lax"));
        assert_eq!(session.contains("Secure"), secure, "{session}");
        assert_eq!(session.starts_with("__Host-"), secure, "{session}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_are_stored_as_argon2id_hashes_and_sessions_as_digests() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::{sessions, users};
    let app = TestApp::spawn().await;
    let (id, password) = app.user("petra", Role::Staff, None).await;
    let response = app.sign_in(&TestApp::browser(), "petra", &password).await;
    let cookie = TestApp::set_cookie_value(&response, "sb_session").expect("a session cookie");
    let mut conn = app.conn().await;
    let hash: String = users::table
        .find(id.0)
        .select(users::password_hash)
        .first(&mut conn)
        .await
        .expect("user");
    assert!(hash.starts_with("$argon2id$"));
    assert!(!hash.contains(&password));
    let stored: String = sessions::table
        .select(sessions::token_hash)
        .first(&mut conn)
        .await
        .expect("session");
    assert_ne!(stored, cookie, "the token itself is never stored");
    assert_eq!(
        stored,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(cookie.as_bytes()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_request_is_refused_before_anything_reads_it() {
    let app = TestApp::spawn().await;
    let http = TestApp::browser();
    let token = app.csrf_token(&http, "/sign-in").await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let response = http
        .post(app.url("/sign-in"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", huge.as_str()),
            ("password", "p"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);

    // Signed-in staff send whole price lists; clients stay at 2 MiB.
    let (_, username, password) = app.client("bulky", 0).await;
    let client = app.signed_in(&username, &password).await;
    let (_, staff_password) = app.user("bulky-staff", Role::Staff, None).await;
    let staff = app.signed_in("bulky-staff", &staff_password).await;
    let big = "y".repeat(3 * 1024 * 1024);
    for (who, http, status) in [("client", &client, 413), ("staff", &staff, 200)] {
        let token = app.csrf_token(http, "/graphql/console").await;
        let response = http
            .post(app.url("/graphql"))
            .header("x-csrf-token", token)
            .json(&serde_json::json!({
                "query": "query($s: String) { __typename }",
                "variables": { "s": big },
            }))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), status, "{who}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_cookies_carry_the_host_prefix() {
    let app =
        TestApp::spawn_with(|settings| settings.base_url = "https://portal.example.com".into())
            .await;
    let page = TestApp::browser()
        .get(app.url("/sign-in"))
        .send()
        .await
        .expect("GET");
    let csrf = page.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        csrf.starts_with("__Host-sb_csrf=") && csrf.contains("Secure") && csrf.contains("Path=/"),
        "{csrf}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_browsers_are_told_to_stay_on_https() {
    let secure = TestApp::spawn_with(|s| s.base_url = "https://portal.example.com".into()).await;
    let response = reqwest::get(secure.url("/healthz")).await.expect("GET");
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let plain = TestApp::spawn().await;
    let response = reqwest::get(plain.url("/healthz")).await.expect("GET");
    assert!(response
        .headers()
        .get("strict-transport-security")
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_at_its_maximum_age_however_busy_it_is() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::sessions;
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("busy", 0).await;
    let http = app.signed_in(&username, &password).await;
    assert_eq!(
        http.get(app.url("/portal"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
    // Started eight days ago and used a moment ago: the default week is over.
    diesel::update(sessions::table)
        .set((
            sessions::created_at.eq(chrono::Utc::now() - chrono::Duration::days(8)),
            sessions::last_seen_at.eq(chrono::Utc::now()),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("aged");
    assert_eq!(
        http.get(app.url("/portal"))
            .send()
            .await
            .expect("GET")
            .status(),
        303,
        "sent to sign in again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_pages_writes_nothing_to_the_session_and_its_use_extends_it_later() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::sessions;
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("reader", 0).await;
    let http = app.signed_in(&username, &password).await;
    // Last used ten minutes ago, and ending in an hour.
    let (seen, expires) = (
        chrono::Utc::now() - chrono::Duration::minutes(10),
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    diesel::update(sessions::table)
        .set((
            sessions::last_seen_at.eq(seen),
            sessions::expires_at.eq(expires),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("aged");
    let row = || async {
        sessions::table
            .select((sessions::last_seen_at, sessions::expires_at))
            .first::<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>(
                &mut app.conn().await,
            )
            .await
            .expect("the session")
    };
    let before = row().await;
    for path in ["/portal", "/portal/reports", "/plans"] {
        let page = http.get(app.url(path)).send().await.expect("GET");
        assert_eq!(page.status(), 200, "{path}");
    }
    assert_eq!(row().await, before, "the reads wrote nothing");

    let extended = switchboard_web::pipeline::extend_sessions_in_use(&app.state)
        .await
        .expect("extended");
    assert_eq!(extended, 1);
    let (seen_now, expires_now) = row().await;
    assert!(seen_now > seen + chrono::Duration::minutes(9));
    assert!(expires_now > expires + chrono::Duration::hours(1));
    assert_eq!(
        switchboard_web::pipeline::extend_sessions_in_use(&app.state)
            .await
            .expect("nothing to extend"),
        0,
        "each use is written once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_used_in_its_last_seconds_does_not_lapse_before_its_extension() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::sessions;
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("lastminute", 0).await;
    let http = app.signed_in(&username, &password).await;
    // Two seconds left: the page is read while the session is live…
    diesel::update(sessions::table)
        .set(sessions::expires_at.eq(chrono::Utc::now() + chrono::Duration::seconds(2)))
        .execute(&mut app.conn().await)
        .await
        .expect("nearly out");
    let page = http.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    // …and the extension runs after it ran out.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let extended = switchboard_web::pipeline::extend_sessions_in_use(&app.state)
        .await
        .expect("extended");
    assert_eq!(extended, 1, "a session used while live is extended");
    let page = http.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(page.status(), 200, "still signed in");
    assert!(!page.url().path().starts_with("/sign-in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_pages_show_only_notices_the_server_wrote() {
    let app = TestApp::spawn().await;
    let (_, password) = app.user("noticed", Role::Admin, None).await;
    let http = app.signed_in("noticed", &password).await;
    let forged = app
        .page(
            &http,
            "/admin/calls?priced=Your+account+is+suspended%2C+call+%2B1+555+0100",
        )
        .await;
    assert!(
        !forged.contains("Your account is suspended"),
        "a stranger's words are not shown"
    );
    let created = app
        .graphql(
            &http,
            "mutation { createCallingPlan(name: \"Noticed\") { id } }",
            serde_json::json!({}),
        )
        .await;
    let plan = created["data"]["createCallingPlan"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let forged = app
        .page(
            &http,
            &format!("/admin/calling-plans/{plan}?imported=everything%2C+call+us"),
        )
        .await;
    assert!(forged.contains("Noticed"), "the calling plan's page");
    assert!(!forged.contains("everything, call us"));
}

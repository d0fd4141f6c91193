//! Two-factor sign-in: a code from an authenticator app after the password,
//! recovery codes, each code taken once, and required of admins in
//! production.

use switchboard_core::config::Mode;
use switchboard_core::people::two_factor;
use switchboard_core::Role;

use crate::harness::TestApp;

/// Base32 (RFC 4648) as an app reads a typed-in key.
fn from_base32(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c)
            .expect("a base32 letter") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn code_at(secret: &[u8], steps_from_now: i64) -> String {
    let step = two_factor::step_at(chrono::Utc::now()) + steps_from_now;
    two_factor::code_at_step(secret, step)
}

/// Posts a form of `page` (with its CSRF token) to `action`.
async fn post(
    app: &TestApp,
    http: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(http, page).await;
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    http.post(app.url(action))
        .form(&form)
        .send()
        .await
        .expect("POST")
}

/// Signs in with the password, which asks for the code; then sends `code`.
async fn sign_in_with_code(
    app: &TestApp,
    http: &reqwest::Client,
    username: &str,
    password: &str,
    code: &str,
) -> reqwest::Response {
    let first = app.sign_in(http, username, password).await;
    assert_eq!(first.status(), 303);
    assert_eq!(
        first.headers()["location"],
        "/sign-in/code",
        "the password alone signs nobody in"
    );
    let no_session = http.get(app.url("/portal")).send().await.expect("GET");
    assert!(no_session.headers()["location"]
        .to_str()
        .expect("text")
        .starts_with("/sign-in"));
    post(
        app,
        http,
        "/sign-in/code",
        "/sign-in/code",
        &[("code", code)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_with_two_factor_signs_in() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("twofa", 1_000_000).await;
    let http = app.signed_in(&username, &password).await;

    // Turned on from the page: a key to scan, a first code, recovery codes.
    let started = post(
        &app,
        &http,
        "/account/two-factor",
        "/account/two-factor",
        &[("action", "start")],
    )
    .await;
    let page = started.text().await.expect("text");
    assert!(page.contains("<svg"), "a QR code to scan");
    let at = page.find("id=\"totp-secret\">").expect("the key") + 17;
    let secret = from_base32(&page[at..at + 32]);
    let wrong = post(
        &app,
        &http,
        "/account/two-factor",
        "/account/two-factor",
        &[("action", "confirm"), ("code", "000000"), ("secret", "x")],
    )
    .await;
    assert_eq!(wrong.status(), 422);
    let confirmed = post(
        &app,
        &http,
        "/account/two-factor",
        "/account/two-factor",
        &[("action", "confirm"), ("code", &code_at(&secret, 0))],
    )
    .await;
    let page = confirmed.text().await.expect("text");
    assert!(page.contains("Two-factor sign-in is on"), "{page}");
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..19].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");

    // Password, then a code from the app.
    let browser = TestApp::browser();
    let done = sign_in_with_code(&app, &browser, &username, &password, &code_at(&secret, 1)).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/portal");
    assert!(app
        .page(&browser, "/portal")
        .await
        .contains("data-testid=\"balance\""));

    // The same code again, within its window: refused.
    let again = TestApp::browser();
    let reused = sign_in_with_code(&app, &again, &username, &password, &code_at(&secret, 1)).await;
    assert_eq!(reused.status(), 422);
    assert!(reused
        .text()
        .await
        .expect("text")
        .contains("That code is not right, or it was used already."));
    // A recovery code works, once.
    let recovered = post(
        &app,
        &again,
        "/sign-in/code",
        "/sign-in/code",
        &[("code", &codes[0].to_uppercase())],
    )
    .await;
    assert_eq!(recovered.status(), 303);
    let third = TestApp::browser();
    let used = sign_in_with_code(&app, &third, &username, &password, &codes[0]).await;
    assert_eq!(used.status(), 422);
    // Guessing codes meets the sign-in limits, as guessing passwords does.
    let mut statuses = Vec::new();
    for guess in ["111111", "222222", "333333", "444444"] {
        statuses.push(
            post(
                &app,
                &third,
                "/sign-in/code",
                "/sign-in/code",
                &[("code", guess)],
            )
            .await
            .status()
            .as_u16(),
        );
    }
    assert_eq!(statuses, [422, 422, 422, 429], "{statuses:?}");
    let status = app
        .graphql(
            &browser,
            "{ twoFactor { enabled recoveryCodesLeft } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        status["data"]["twoFactor"],
        serde_json::json!({ "enabled": true, "recoveryCodesLeft": 9 })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_in_production_turns_two_factor_on_before_anything_else() {
    let app = TestApp::spawn_with(|settings| settings.mode = Mode::Production).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let http = app.signed_in("ada", &password).await;
    let sent = http.get(app.url("/admin")).send().await.expect("GET");
    assert_eq!(sent.headers()["location"], "/account/two-factor");
    let answer = app
        .graphql(
            &http,
            "{ accounts { edges { node { name } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        answer["errors"][0]["message"],
        "Turn on two-factor sign-in first (startTwoFactor)."
    );
    let page = app.page(&http, "/account/two-factor").await;
    assert!(page.contains("turn it on before you go on"), "{page}");

    let setup = app
        .graphql(
            &http,
            "mutation { startTwoFactor { secret } }",
            serde_json::json!({}),
        )
        .await;
    let secret = from_base32(
        setup["data"]["startTwoFactor"]["secret"]
            .as_str()
            .expect("a key"),
    );
    let on = app
        .graphql(
            &http,
            "mutation C($c: String!) { confirmTwoFactor(code: $c) }",
            serde_json::json!({ "c": code_at(&secret, 0) }),
        )
        .await;
    assert!(on["errors"].is_null(), "{on}");
    assert_eq!(
        http.get(app.url("/admin"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
    let off = app
        .graphql(
            &http,
            "mutation O($p: String!) { turnOffTwoFactor(password: $p) }",
            serde_json::json!({ "p": password }),
        )
        .await;
    assert_eq!(
        off["errors"][0]["message"],
        "Admins must sign in with two factors here; it stays on."
    );

    // Staff are not held to it.
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let staff = app.signed_in("sam", &staff_password).await;
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

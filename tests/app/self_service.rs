//! Clients help themselves: their profile, a new email address through a
//! link sent to it, and a forgotten password through a link sent to their
//! address.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_core::schema::{accounts, audit_log, emails, password_resets, sessions, users};
use switchboard_core::{AccountKind, Role};

use crate::browser::{browser, screenshot, sign_in};
use crate::harness::{csrf_in, post_form, TestApp};
use crate::smtp::SmtpServer;

/// The emails queued for `to`, oldest first: (subject, text as sent).
async fn emails_to(app: &TestApp, to: &str) -> Vec<(String, String)> {
    let rows: Vec<(String, String, bool)> = emails::table
        .filter(emails::to_address.eq(to))
        .order(emails::id)
        .select((emails::subject, emails::text_body, emails::sealed))
        .load(&mut app.conn().await)
        .await
        .expect("the outbox");
    rows.into_iter()
        .map(|(subject, text, sealed)| {
            let text = if sealed {
                app.state
                    .key
                    .decrypt(switchboard_core::outbox::SEALED_BODY, &text)
                    .expect("a sealed body opens")
            } else {
                text
            };
            (subject, text)
        })
        .collect()
}

/// The token of the last link to `path` emailed to `to`.
async fn token_sent_to(app: &TestApp, to: &str, path: &str) -> String {
    let (_, text) = emails_to(app, to)
        .await
        .into_iter()
        .rev()
        .find(|(_, text)| text.contains(path))
        .unwrap_or_else(|| panic!("no link to {path} for {to}"));
    token_in(&text, path)
}

fn token_in(text: &str, path: &str) -> String {
    let at = text.find(path).expect("a link") + path.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A message body as written, its quoted-printable soft breaks and escapes
/// undone.
fn unquoted(data: &str) -> String {
    let joined = data.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| joined.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Asks for a recovery link through the page; returns the status and the
/// page's alert or status message.
async fn ask_for_a_link(app: &TestApp, http: &reqwest::Client, login: &str) -> (u16, String) {
    let response = post_form(
        app,
        http,
        "/password/forgot",
        "/password/forgot",
        &[("login", login)],
    )
    .await;
    let status = response.status().as_u16();
    let page = response.text().await.expect("the page");
    let said = page
        .split("role=\"")
        .skip(1)
        .map(|part| part.split_once('>').map_or("", |(_, rest)| rest))
        .map(|rest| rest.split('<').next().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    (status, said)
}

/// Sets a password with a link's token through the API; the errors, if any.
async fn reset(app: &TestApp, token: &str, username: Option<&str>, password: &str) -> Vec<String> {
    // The schema's own `execute`, not Diesel's.
    let answer = async_graphql::Schema::execute(
        &app.state.schema,
        async_graphql::Request::new(
                "mutation($t: String!, $p: String!, $u: String) { resetPassword(token: $t, newPassword: $p, username: $u) }",
            )
            .variables(async_graphql::Variables::from_json(serde_json::json!({
                "t": token, "p": password, "u": username,
            }))),
    )
    .await;
    answer.errors.into_iter().map(|e| e.message).collect()
}

async fn sessions_of(app: &TestApp, username: &str) -> i64 {
    sessions::table
        .inner_join(users::table)
        .filter(users::username.eq(username))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count")
}

async fn can_sign_in(app: &TestApp, username: &str, password: &str) -> bool {
    app.sign_in(&TestApp::browser(), username, password)
        .await
        .status()
        == 303
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_recovers_a_forgotten_password() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("forgetful", 0).await;
    let elsewhere = app.signed_in(&username, &password).await;
    let _workers = app.start_workers(smtp.port);
    let browser = browser().await;
    browser.goto(&app.url("/sign-in")).await.expect("sign-in");
    browser
        .find(Locator::LinkText("Forgot your password?"))
        .await
        .expect("the link")
        .click()
        .await
        .expect("click");
    browser
        .wait()
        .for_element(Locator::Id("login"))
        .await
        .expect("the form")
        .send_keys("Forgetful@Example.com")
        .await
        .expect("type");
    browser
        .find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let sent = browser
        .wait()
        .for_element(Locator::Css("[data-testid=recovery-sent]"))
        .await
        .expect("the answer");
    assert_eq!(
        sent.text().await.expect("text"),
        switchboard_web::recovery::SENT
    );

    let email = smtp
        .wait_for("recovery email", |m| {
            m.data.contains("Subject: Set a new Switchboard password")
        })
        .await;
    assert_eq!(email.to, ["<forgetful@example.com>"]);
    let body = unquoted(&email.data);
    assert!(!body.contains(&password), "never a password");
    let at = body
        .find(&app.url("/password/reset?token="))
        .expect("a link");
    let link: String = body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    browser.goto(&link).await.expect("the link");
    let shown = browser
        .find(Locator::Id("username"))
        .await
        .expect("the user the link is for");
    assert_eq!(
        shown.prop("value").await.expect("value").as_deref(),
        Some("forgetful")
    );
    for field in ["new_password", "confirm_password"] {
        browser
            .find(Locator::Id(field))
            .await
            .expect(field)
            .send_keys("remembered-at-last-1")
            .await
            .expect("type");
    }
    screenshot(&browser, "recovery-new-password").await;
    browser
        .find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let done = browser
        .wait()
        .for_element(Locator::Css(".alert.ok"))
        .await
        .expect("done");
    assert!(done
        .text()
        .await
        .expect("text")
        .starts_with("Your password is set."));

    let portal = elsewhere.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(portal.status(), 303, "the session signed in before ended");
    assert!(!can_sign_in(&app, "forgetful", &password).await);
    sign_in(&browser, &app, "forgetful", "remembered-at-last-1").await;
    let url = browser.current_url().await.expect("a page");
    assert_eq!(url.path(), "/portal");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_answers_alike_for_known_and_unknown_addresses_and_usernames() {
    let app = TestApp::spawn().await;
    let (_, username, _) = app.client("known", 0).await;
    let http = TestApp::browser();
    let mut answers = Vec::new();
    for login in [
        "known@example.com",
        "unknown@example.com",
        username.as_str(),
        "nobody-at-all",
    ] {
        answers.push(ask_for_a_link(&app, &http, login).await);
    }
    assert_eq!(answers[0].0, 200);
    assert!(
        answers[0].1.contains(switchboard_web::recovery::SENT),
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "every answer alike: {answers:?}"
    );
    // Only the known user got links, one for each way they were named.
    assert_eq!(emails_to(&app, "known@example.com").await.len(), 2);
    assert!(emails_to(&app, "unknown@example.com").await.is_empty());
    let all: i64 = emails::table
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(all, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_sends_three_links_an_hour_to_an_email_and_refuses_a_busy_address() {
    let app = TestApp::spawn().await;
    app.client("popular", 0).await;
    let http = TestApp::browser();
    // Named by address or by username, the same user's email counts.
    for login in [
        "popular@example.com",
        "popular",
        "POPULAR@example.com",
        "popular",
    ] {
        let (status, said) = ask_for_a_link(&app, &http, login).await;
        assert_eq!(status, 200);
        assert!(said.contains(switchboard_web::recovery::SENT), "{said}");
    }
    assert_eq!(
        emails_to(&app, "popular@example.com").await.len(),
        3,
        "the fourth request sends nothing, and says the same"
    );
    // Ten requests an hour from one address, whatever they name.
    for n in 0..6 {
        let (status, _) = ask_for_a_link(&app, &http, &format!("guess{n}@example.com")).await;
        assert_eq!(status, 200, "request {}", n + 5);
    }
    let (status, said) = ask_for_a_link(&app, &http, "guess-eleven@example.com").await;
    assert_eq!(status, 429);
    assert!(
        said.contains("Too many requests from your address"),
        "{said}"
    );
}

/// A client who asked for a recovery link: (username, token).
async fn recovering(app: &TestApp, name: &str) -> (String, String) {
    let (_, username, _) = app.client(name, 0).await;
    let http = TestApp::browser();
    let (status, _) = ask_for_a_link(app, &http, &format!("{name}@example.com")).await;
    assert_eq!(status, 200);
    let token = token_sent_to(
        app,
        &format!("{name}@example.com"),
        "/password/reset?token=",
    )
    .await;
    (username, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_token_works_once_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let (username, token) = recovering(&app, "twice").await;
    let password = format!("{username}-password-123");
    let _one = app.signed_in(&username, &password).await;
    let _two = app.signed_in(&username, &password).await;
    assert_eq!(sessions_of(&app, &username).await, 2);
    assert_eq!(
        reset(&app, &token, None, "first-new-password").await,
        Vec::<String>::new()
    );
    assert_eq!(sessions_of(&app, &username).await, 0, "every session ended");
    assert_eq!(
        reset(&app, &token, None, "second-new-password").await,
        ["This link has expired or was used already; ask for a new one."]
    );
    assert!(can_sign_in(&app, &username, "first-new-password").await);
    assert!(!can_sign_in(&app, &username, "second-new-password").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_token_older_than_an_hour_is_refused() {
    let app = TestApp::spawn().await;
    let (username, token) = recovering(&app, "late").await;
    let expires: chrono::DateTime<chrono::Utc> = password_resets::table
        .select(password_resets::expires_at)
        .first(&mut app.conn().await)
        .await
        .expect("the link");
    let left = expires - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::hours(1) && left > chrono::Duration::minutes(59),
        "{left}"
    );
    diesel::update(password_resets::table)
        .set(password_resets::expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut app.conn().await)
        .await
        .expect("an hour passes");
    assert_eq!(
        reset(&app, &token, Some(&username), "too-late-password").await,
        ["This link has expired or was used already; ask for a new one."]
    );
    assert!(!can_sign_in(&app, &username, "too-late-password").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_token_for_another_user_is_refused_and_stays_good_for_its_own() {
    let app = TestApp::spawn().await;
    let (alice, alices_token) = recovering(&app, "alice").await;
    let (bob, _) = recovering(&app, "bob").await;
    let bobs_password = format!("{bob}-password-123");
    let _bob = app.signed_in(&bob, &bobs_password).await;
    assert_eq!(
        reset(&app, &alices_token, Some(&bob), "taken-over-password").await,
        ["This link is for another user: open the link from your own email."]
    );
    // The form says whose link it is; changed by hand, it is refused too.
    let visitor = TestApp::browser();
    let page = format!("/password/reset?token={alices_token}&user={bob}");
    let response = post_form(
        &app,
        &visitor,
        &page,
        "/password/reset",
        &[
            ("token", alices_token.as_str()),
            ("username", bob.as_str()),
            ("new_password", "taken-over-password"),
            ("confirm_password", "taken-over-password"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(sessions_of(&app, &bob).await, 1, "bob's session stays");
    assert!(can_sign_in(&app, &bob, &bobs_password).await);
    assert!(!can_sign_in(&app, &bob, "taken-over-password").await);
    assert_eq!(
        reset(&app, &alices_token, Some(&alice), "alice-chose-this-1").await,
        Vec::<String>::new(),
        "still good for its own user"
    );
    assert!(can_sign_in(&app, &alice, "alice-chose-this-1").await);
}

/// Asks for a new address from the profile page; returns the response.
async fn ask_for_address(
    app: &TestApp,
    http: &reqwest::Client,
    new_email: &str,
    password: &str,
) -> reqwest::Response {
    post_form(
        app,
        http,
        "/portal/profile",
        "/portal/profile/email",
        &[("new_email", new_email), ("current_password", password)],
    )
    .await
}

async fn follow(app: &TestApp, token: &str) -> (u16, String) {
    let visitor = TestApp::browser();
    let page = app
        .page(&visitor, &format!("/account/email/confirm?token={token}"))
        .await;
    let csrf = csrf_in(&page).expect("a form");
    let response = visitor
        .post(app.url("/account/email/confirm"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .expect("POST");
    (
        response.status().as_u16(),
        response.text().await.expect("the page"),
    )
}

async fn email_of(app: &TestApp, username: &str) -> String {
    users::table
        .filter(users::username.eq(username))
        .select(users::email)
        .first(&mut app.conn().await)
        .await
        .expect("the user")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_address_takes_effect_only_through_the_link_sent_to_it() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("mover", 0).await;
    diesel::update(accounts::table.find(account.0))
        .set(accounts::email.eq("mover@example.com"))
        .execute(&mut app.conn().await)
        .await
        .expect("the account's contact is the user");
    let http = app.signed_in(&username, &password).await;
    let wrong = ask_for_address(&app, &http, "new-home@example.com", "not-my-password").await;
    assert_eq!(wrong.status(), 422);
    assert!(wrong
        .text()
        .await
        .expect("page")
        .contains("Your current password is wrong."));
    assert!(emails_to(&app, "new-home@example.com").await.is_empty());

    let asked = ask_for_address(&app, &http, "new-home@example.com", &password).await;
    assert_eq!(asked.status(), 303);
    let profile = app
        .page(
            &http,
            asked.headers()["location"].to_str().expect("a location"),
        )
        .await;
    assert!(
        profile.contains("We sent a link to new-home@example.com"),
        "{profile}"
    );
    assert!(profile.contains("data-testid=\"pending-email\""));
    assert_eq!(
        email_of(&app, &username).await,
        "mover@example.com",
        "nothing changes before the link is followed"
    );
    let token = token_sent_to(
        &app,
        "new-home@example.com",
        "/account/email/confirm?token=",
    )
    .await;
    let (status, page) = follow(&app, &token).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your email address is changed"));
    assert_eq!(email_of(&app, &username).await, "new-home@example.com");
    let contact: String = accounts::table
        .find(account.0)
        .select(accounts::email)
        .first(&mut app.conn().await)
        .await
        .expect("the account");
    assert_eq!(contact, "new-home@example.com");
    assert!(
        emails_to(&app, "mover@example.com")
            .await
            .iter()
            .any(|(subject, _)| subject == "Your Switchboard email address was changed"),
        "the old address is told"
    );
    assert_eq!(follow(&app, &token).await.0, 422, "a link works once");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_link_followed_after_the_address_changed_again_is_refused() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("restless", 0).await;
    let http = app.signed_in(&username, &password).await;
    for address in ["first@example.com", "second@example.com"] {
        assert_eq!(
            ask_for_address(&app, &http, address, &password)
                .await
                .status(),
            303
        );
    }
    let first = token_sent_to(&app, "first@example.com", "/account/email/confirm?token=").await;
    let second = token_sent_to(&app, "second@example.com", "/account/email/confirm?token=").await;
    assert_eq!(follow(&app, &second).await.0, 200);
    let (status, page) = follow(&app, &first).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Your email address has changed since this link was sent"),
        "{page}"
    );
    assert_eq!(email_of(&app, &username).await, "second@example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_wrong_fields_names_each_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("careful", 0).await;
    let http = app.signed_in(&username, &password).await;
    let response = post_form(
        &app,
        &http,
        "/portal/profile",
        "/portal/profile",
        &[
            ("contact_name", "  "),
            ("company", "Careful Dental"),
            ("phone", "ring me maybe"),
            ("address", "1 Quay Street"),
            ("time_zone", "Mars/Olympus_Mons"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    for message in [
        "Your name must not be empty.",
        "Phone may hold only digits, spaces, +, -, dots and brackets.",
        "Time zone is not a time zone we know: choose one such as Europe/London.",
    ] {
        assert!(page.contains(message), "{message} in {page}");
    }
    assert!(
        page.contains("value=\"Careful Dental\""),
        "what was typed stays"
    );
    let stored: (String, String, String) = accounts::table
        .find(account.0)
        .select((
            accounts::contact_name,
            accounts::company,
            accounts::time_zone,
        ))
        .first(&mut app.conn().await)
        .await
        .expect("the account");
    assert_eq!(
        stored,
        ("careful Co owner".into(), "careful Co".into(), "UTC".into())
    );

    let saved = post_form(
        &app,
        &http,
        "/portal/profile",
        "/portal/profile",
        &[
            ("contact_name", "Cara Careful"),
            ("company", "Careful Dental"),
            ("phone", "+1 (555) 010-0142"),
            ("address", "1 Quay Street"),
            ("time_zone", "America/New_York"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303);
    let page = app
        .page(
            &http,
            saved.headers()["location"].to_str().expect("a location"),
        )
        .await;
    assert!(page.contains("Your contact details are saved."));
    assert!(page.contains("<option value=\"America/New_York\" selected>"));
    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("account.update_profile"))
        .filter(audit_log::subject.eq(format!("account:{}", account.0)))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(audited, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_edits_only_their_own_account() {
    let app = TestApp::spawn().await;
    let (mine, username, password) = app.client("owner", 0).await;
    let theirs = app.account("Neighbour", AccountKind::Retail, None, 0).await;
    let (_, neighbour_password) = app.user("neighbour", Role::Client, Some(theirs)).await;
    let http = app.signed_in(&username, &password).await;
    let ours = serde_json::json!({ "contactName": "Owen Owner", "timeZone": "Europe/Dublin" });
    // The profile mutation takes no id: it changes the viewer's account.
    let answer = app
        .graphql(
            &http,
            "mutation($input: ProfileInput!) { updateProfile(input: $input) { id contact { name } } }",
            serde_json::json!({ "input": ours }),
        )
        .await;
    assert_eq!(
        answer["data"]["updateProfile"]["id"],
        mine.0.to_string(),
        "{answer}"
    );
    // The staff's account edit, with the neighbour's id, is refused.
    let refused = app
        .graphql(
            &http,
            &format!(
                r#"mutation {{ updateAccount(id: "{}", input: {{ name: "Mine now", kind: RETAIL, contactName: "Owen", email: "owner@example.com", creditLimit: "0", lowBalanceThreshold: "0" }}) {{ name }} }}"#,
                theirs.0
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["message"], "You are not allowed to do this.",
        "{refused}"
    );
    let neighbour: (String, String) = accounts::table
        .find(theirs.0)
        .select((accounts::name, accounts::contact_name))
        .first(&mut app.conn().await)
        .await
        .expect("the neighbour");
    assert_eq!(neighbour, ("Neighbour".into(), "Neighbour owner".into()));
    // Nor can the neighbour's address be moved from here: a change names
    // only the viewer's own user.
    assert_eq!(
        ask_for_address(&app, &http, "owner-moved@example.com", &password)
            .await
            .status(),
        303
    );
    let token = token_sent_to(
        &app,
        "owner-moved@example.com",
        "/account/email/confirm?token=",
    )
    .await;
    let neighbour_http = app.signed_in("neighbour", &neighbour_password).await;
    let answer = app
        .graphql(
            &neighbour_http,
            "mutation($t: String!) { confirmEmailChange(token: $t) }",
            serde_json::json!({ "t": token }),
        )
        .await;
    assert_eq!(answer["data"]["confirmEmailChange"], true, "{answer}");
    assert_eq!(email_of(&app, "neighbour").await, "neighbour@example.com");
    assert_eq!(email_of(&app, "owner").await, "owner-moved@example.com");
}

//! Staff running the business: one page per account, its edits and money
//! by hand, users' passwords, PBX password reveals, calling status, rates
//! changed one at a time, the staff themselves and the audit log.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_core::schema::{audit_log, journal_transactions, pbxes};
use switchboard_core::{AccountKind, Role};

use crate::browser::{browser, sign_in};
use crate::harness::{csrf_in, post_form, TestApp};

/// An audit record as a test reads it: action, actor, subject, ip, before, after.
type Audited = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

async fn audited(app: &TestApp, action: &str) -> Vec<Audited> {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .order(audit_log::id)
        .select((
            audit_log::action,
            audit_log::actor,
            audit_log::subject,
            audit_log::ip,
            audit_log::before,
            audit_log::after,
        ))
        .load(&mut app.conn().await)
        .await
        .expect("audit records")
}

/// A client's active PBX whose GUI password is `password`, sealed as
/// provisioning seals it.
async fn pbx_with_password(
    app: &TestApp,
    account: switchboard_core::AccountId,
    password: &str,
) -> i64 {
    let plan = crate::commerce::seed_plan(app).await;
    let pbx = app
        .pbx(account, plan, "active", &format!("pbx-{password}"))
        .await;
    diesel::update(pbxes::table.find(pbx))
        .set(
            pbxes::gui_password_sealed.eq(app
                .state
                .key
                .encrypt(switchboard_core::commerce::pbxes::GUI_PASSWORD, password)),
        )
        .execute(&mut app.conn().await)
        .await
        .expect("sealed");
    pbx
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_reveal_a_pbx_password_and_the_reveal_is_audited() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("revealco", 1_000_000).await;
    let pbx = pbx_with_password(&app, account, "Gui-Secret-4711").await;
    let (_, password) = app.user("sam", Role::Staff, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "sam", &password).await;
    browser
        .goto(&app.url(&format!("/admin/accounts/{}", account.0)))
        .await
        .expect("the account");
    browser
        .find(Locator::LinkText(&format!("PBX #{pbx}")))
        .await
        .expect("its PBX")
        .click()
        .await
        .expect("click");
    let reveal = |typed: String| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .for_element(Locator::Id("reveal-password"))
                .await
                .expect("the password field")
                .send_keys(&typed)
                .await
                .expect("type");
            browser
                .find(Locator::Css("form[action$='/reveal#gui-password'] button"))
                .await
                .expect("the button")
                .click()
                .await
                .expect("click");
        }
    };
    reveal("not my password".into()).await;
    let refused = browser
        .wait()
        .for_element(Locator::Css("#gui-password + .card .alert.error"))
        .await
        .expect("a refusal")
        .text()
        .await
        .expect("text");
    assert!(refused.contains("Your password is wrong"), "{refused}");
    reveal(password.clone()).await;
    let shown = browser
        .wait()
        .for_element(Locator::Id("revealed-password"))
        .await
        .expect("the password")
        .text()
        .await
        .expect("text");
    assert_eq!(shown, "Gui-Secret-4711");
    browser.close().await.expect("close");

    // Who, when, which PBX, from where: the reveal and the refusal before it.
    let subject = format!("pbx:{pbx}");
    let revealed = audited(&app, "pbx.reveal_password").await;
    assert_eq!(revealed.len(), 1);
    assert_eq!(
        (
            revealed[0].1.as_str(),
            revealed[0].2.as_str(),
            revealed[0].3.as_str()
        ),
        ("sam", subject.as_str(), "127.0.0.1")
    );
    let refused = audited(&app, "pbx.reveal_password_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].1.as_str(), refused[0].2.as_str()),
        ("sam", subject.as_str())
    );
    // Nothing secret is kept in the log.
    let all: Vec<String> = audit_log::table
        .select(audit_log::detail)
        .load(&mut app.conn().await)
        .await
        .expect("details");
    assert!(all.iter().all(|d| !d.contains("Gui-Secret-4711")));

    // An admin finds both on the audit log page.
    let (_, admin_password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &admin_password).await;
    let log = app.page(&admin, "/admin/audit?kind=pbx").await;
    assert!(log.contains("pbx.reveal_password</code>"), "{log}");
    assert!(log.contains("pbx.reveal_password_refused"), "{log}");
    assert!(
        log.contains(&format!("<a href=\"/admin/pbxes/{pbx}\">pbx:{pbx}</a>")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_credits_an_account_and_the_statement_shows_it() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("creditco", 10_000_000).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "ada", &password).await;
    browser
        .goto(&app.url(&format!("/admin/accounts/{}", account.0)))
        .await
        .expect("the account");
    for (field, text) in [("amount", "25"), ("reason", "Goodwill for the outage")] {
        browser
            .find(Locator::Id(field))
            .await
            .expect("a field")
            .send_keys(text)
            .await
            .expect("type");
    }
    browser
        .find(Locator::Css("#money-by-hand button[type=submit]"))
        .await
        .expect("post")
        .click()
        .await
        .expect("click");
    let notice = browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("a notice")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("Credited 25"), "{notice}");
    let balance = browser
        .find(Locator::Css("[data-testid=balance]"))
        .await
        .expect("balance")
        .text()
        .await
        .expect("text");
    assert_eq!(balance, "$35.00");
    let first_line = browser
        .find(Locator::Css("#account-movements tbody tr"))
        .await
        .expect("a line")
        .text()
        .await
        .expect("text");
    assert!(
        first_line.contains("adjustment")
            && first_line.contains("Goodwill for the outage")
            && first_line.contains("$25.00"),
        "{first_line}"
    );
    browser.close().await.expect("close");
    let records = audited(&app, "account.adjust_balance").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].4.as_deref(), Some("{\"balance\":10000000}"));
    assert_eq!(records[0].5.as_deref(), Some("{\"balance\":35000000}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_sent_twice_moves_money_once_and_staff_cannot_send_it() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("twiceco", 0).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &password).await;
    let path = format!("/admin/accounts/{}", account.0);
    let page = app.page(&admin, &path).await;
    let key_at = page.find("name=\"key\" value=\"").expect("the form's key") + 18;
    let key = page[key_at..key_at + 64].to_owned();
    let csrf = csrf_in(&page).expect("a CSRF token");
    let send = || async {
        admin
            .post(app.url(&format!("{path}/adjust")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("key", key.as_str()),
                ("direction", "debit"),
                ("amount", "4.50"),
                ("reason", "Cable"),
            ])
            .send()
            .await
            .expect("POST")
    };
    assert_eq!(send().await.status(), 303);
    assert_eq!(
        send().await.status(),
        303,
        "the second is answered like the first"
    );
    let posted: i64 = journal_transactions::table
        .filter(journal_transactions::memo.eq("Cable"))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(posted, 1);
    let page = app.page(&admin, &path).await;
    assert!(page.contains("-$4.50"), "debited once");

    // Staff see the statement but neither the form nor its effect.
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let staff = app.signed_in("sam", &staff_password).await;
    let page = app.page(&staff, &path).await;
    assert!(page.contains("Cable") && !page.contains("money-by-hand"));
    let refused = post_form(
        &app,
        &staff,
        &path,
        &format!("{path}/adjust"),
        &[
            ("key", "x"),
            ("direction", "credit"),
            ("amount", "1"),
            ("reason", "r"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 403);
}

/// Every admin action refused to staff, through the API.
#[tokio::test(flavor = "multi_thread")]
async fn staff_trying_an_admin_action_through_the_api_are_refused() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("guardco", 0).await;
    let (client_user, _) = app.user("guarded", Role::Client, Some(account)).await;
    let (colleague, _) = app.user("colleague", Role::Staff, None).await;
    let (_, password) = app.user("sam", Role::Staff, None).await;
    let staff = app.signed_in("sam", &password).await;
    let plan = switchboard_core::calls::calling_plans::create(
        &mut app.conn().await,
        "Guarded",
        "USD",
        None,
    )
    .await
    .expect("a calling plan");
    let (a, u, c) = (account.0, client_user.0, colleague.0);
    for operation in [
        format!(r#"mutation {{ adjustBalance(input: {{ accountId: "{a}", amount: "5", memo: "m", idempotencyKey: "k" }}) {{ replayed }} }}"#),
        format!(r#"mutation {{ updateAccount(id: "{a}", input: {{ name: "X", kind: WHOLESALE, contactName: "C", email: "x@example.com", creditLimit: "1000", lowBalanceThreshold: "0" }}) {{ name }} }}"#),
        format!(r#"mutation {{ setOneTimePassword(userId: "{u}", password: "stolen-password-1") }}"#),
        format!(r#"mutation {{ sendPasswordReset(userId: "{u}") }}"#),
        r#"mutation { createStaffUser(input: { username: "mole", email: "mole@example.com", role: ADMIN, oneTimePassword: "a-good-password" }) { id } }"#.to_owned(),
        format!(r#"mutation {{ updateStaffUser(userId: "{c}", role: ADMIN) {{ role }} }}"#),
        format!(r#"mutation {{ setRate(input: {{ callingPlanId: "{plan}", prefix: "44", perMinute: "0.001" }}) {{ prefix }} }}"#),
        format!(r#"mutation {{ turnAccountOff(accountId: "{a}", reason: "r") {{ turnedOff }} }}"#),
        format!(r#"mutation {{ turnAccountOn(accountId: "{a}", reason: "r") {{ turnedOff }} }}"#),
        r#"mutation { changePbxPassword(pbxId: "1", generate: true) { password } }"#.to_owned(),
        "{ auditLog { edges { node { action } } } }".to_owned(),
        "{ staffUsers { username } }".to_owned(),
    ] {
        let answer = app.graphql(&staff, &operation, serde_json::json!({})).await;
        assert_eq!(
            answer["errors"][0]["message"], "You are not allowed to do this.",
            "{operation}: {answer}"
        );
    }
    let changed: i64 = audit_log::table
        .filter(audit_log::action.ne("user.sign_in"))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(changed, 0, "nothing was done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_staff_members_session_ends_at_the_next_request() {
    let app = TestApp::spawn().await;
    let (sam, password) = app.user("sam", Role::Staff, None).await;
    let (_, admin_password) = app.user("ada", Role::Admin, None).await;
    let staff = app.signed_in("sam", &password).await;
    assert!(app.page(&staff, "/admin").await.contains("Accounts"));
    let admin = app.signed_in("ada", &admin_password).await;
    let response = post_form(
        &app,
        &admin,
        "/admin/staff",
        &format!("/admin/staff/{}", sam.0),
        &[("disabled", "true")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let after = staff.get(app.url("/admin")).send().await.expect("GET");
    assert_eq!(after.status(), 303);
    assert!(after.headers()["location"]
        .to_str()
        .expect("text")
        .starts_with("/sign-in"));
    assert_eq!(
        app.sign_in(&TestApp::browser(), "sam", &password)
            .await
            .status(),
        422,
        "nor signs in again"
    );
    let records = audited(&app, "user.disable").await;
    assert_eq!(
        records[0].4.as_deref(),
        Some("{\"disabled\":false,\"role\":\"staff\"}")
    );
    assert_eq!(
        records[0].5.as_deref(),
        Some("{\"disabled\":true,\"role\":\"staff\"}")
    );

    // Enabled again, and made an admin; the last admin stays one.
    post_form(
        &app,
        &admin,
        "/admin/staff",
        &format!("/admin/staff/{}", sam.0),
        &[("disabled", "false")],
    )
    .await;
    post_form(
        &app,
        &admin,
        "/admin/staff",
        &format!("/admin/staff/{}", sam.0),
        &[("role", "ADMIN")],
    )
    .await;
    assert_eq!(
        app.sign_in(&TestApp::browser(), "sam", &password)
            .await
            .status(),
        303
    );
    let ada_id = app
        .graphql(&admin, "{ viewer { user { id } } }", serde_json::json!({}))
        .await["data"]["viewer"]["user"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let own = app
        .graphql(
            &admin,
            &format!(
                r#"mutation {{ updateStaffUser(userId: "{ada_id}", disabled: true) {{ id }} }}"#
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        own["errors"][0]["message"],
        "Admins cannot disable themselves or take away their own admin role."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_adds_staff_who_set_their_password_through_the_emailed_link() {
    let app = TestApp::spawn().await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &password).await;
    let response = post_form(
        &app,
        &admin,
        "/admin/staff",
        "/admin/staff",
        &[
            ("username", "newbie"),
            ("email", "newbie@example.com"),
            ("role", "STAFF"),
            ("one_time_password", ""),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    let page = app
        .page(
            &admin,
            response.headers()["location"].to_str().expect("text"),
        )
        .await;
    assert!(
        page.contains("newbie is added; a link to set their password is on its way."),
        "{page}"
    );
    // The link is sealed in the outbox, like a PBX password.
    let sealed: (bool, String) = switchboard_core::schema::emails::table
        .filter(switchboard_core::schema::emails::to_address.eq("newbie@example.com"))
        .select((
            switchboard_core::schema::emails::sealed,
            switchboard_core::schema::emails::text_body,
        ))
        .first(&mut app.conn().await)
        .await
        .expect("the email");
    assert!(sealed.0);
    let text = app
        .state
        .key
        .decrypt(switchboard_core::outbox::SEALED_BODY, &sealed.1)
        .expect("opens");
    let link_at = text.find("/password/reset?token=").expect("a link");
    let token: String = text[link_at + 22..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let visitor = TestApp::browser();
    let form = app
        .page(&visitor, &format!("/password/reset?token={token}"))
        .await;
    let csrf = csrf_in(&form).expect("a form");
    let set = |password: &'static str| {
        let (visitor, csrf, token) = (visitor.clone(), csrf.clone(), token.clone());
        let url = app.url("/password/reset");
        async move {
            visitor
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("token", token.as_str()),
                    ("new_password", password),
                    ("confirm_password", password),
                ])
                .send()
                .await
                .expect("POST")
        }
    };
    let done = set("newbie-chose-this-1").await;
    assert_eq!(done.status(), 200);
    assert!(done
        .text()
        .await
        .expect("text")
        .contains("Your password is set."));
    assert_eq!(
        set("someone-else-too-1").await.status(),
        422,
        "a link works once"
    );
    assert_eq!(
        app.sign_in(&TestApp::browser(), "newbie", "newbie-chose-this-1")
            .await
            .status(),
        303
    );
    assert_eq!(audited(&app, "user.create_staff").await.len(), 1);
    assert_eq!(audited(&app, "user.reset_password").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_gives_a_client_a_one_time_password_and_their_sessions_end() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("forgetful", 0).await;
    let client = app.signed_in(&username, &password).await;
    let (_, admin_password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &admin_password).await;
    let user_id: i64 = switchboard_core::schema::users::table
        .filter(switchboard_core::schema::users::username.eq(&username))
        .select(switchboard_core::schema::users::id)
        .first(&mut app.conn().await)
        .await
        .expect("the user");
    let path = format!("/admin/accounts/{}", account.0);
    let page = app.page(&admin, &path).await;
    assert!(
        page.contains("forgetful@example.com"),
        "the account's users are listed"
    );
    let response = post_form(
        &app,
        &admin,
        &path,
        &format!("{path}/users/{user_id}"),
        &[("action", "one_time"), ("password", "hand-it-over-1")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let gone = client.get(app.url("/portal")).send().await.expect("GET");
    assert_eq!(gone.status(), 303, "their session ended");
    let again = app
        .sign_in(&TestApp::browser(), &username, "hand-it-over-1")
        .await;
    assert_eq!(
        again.headers()["location"],
        "/account/password",
        "they choose their own next"
    );
    let page = app.page(&admin, &path).await;
    assert!(
        !page.contains("hand-it-over-1"),
        "a portal password is never shown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_is_audited_before_and_after_and_the_accounts_calling_plan_prices_its_calls() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("editco", 50_000_000).await;
    let plan = crate::commerce::seed_plan(&app).await;
    let pbx = app.pbx(account, plan, "active", "pbx-editco").await;
    let mut conn = app.conn().await;
    let own = switchboard_core::calls::calling_plans::create(&mut conn, "Special", "USD", None)
        .await
        .expect("a calling plan");
    crate::calls::add_rate(&mut conn, own, "1", 100_000, chrono::Duration::days(3)).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &password).await;
    let path = format!("/admin/accounts/{}", account.0);
    let edit = |fields: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        let path = path.clone();
        let app = &app;
        async move {
            let mut form: Vec<(&str, String)> = vec![
                ("name", "Edit Co".into()),
                ("kind", "retail".into()),
                ("contact_name", "Eddie".into()),
                ("email", "eddie@example.com".into()),
                ("credit_limit", "10".into()),
                ("low_balance_threshold", "5".into()),
                ("calling_plan_id", own.to_string()),
            ];
            for (name, value) in fields {
                form.retain(|(n, _)| *n != name);
                form.push((name, value));
            }
            let token = app.csrf_token(&admin, &format!("{path}/edit")).await;
            form.push(("csrf", token));
            admin
                .post(app.url(&format!("{path}/edit")))
                .form(&form)
                .send()
                .await
                .expect("POST")
        }
    };
    let refused = edit(vec![
        ("email", "not an email".into()),
        ("credit_limit", "-3".into()),
    ])
    .await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("text");
    assert!(
        page.contains("Email must look like name@example.com."),
        "{page}"
    );
    assert!(
        page.contains("Credit limit must not be negative."),
        "{page}"
    );
    assert_eq!(edit(vec![]).await.status(), 303);
    let page = app.page(&admin, &path).await;
    assert!(
        page.contains("Edit Co")
            && page.contains("eddie@example.com")
            && page.contains(&format!("calling plan #{own}"))
    );
    let records = audited(&app, "account.update").await;
    assert_eq!(records.len(), 1);
    let (before, after) = (
        records[0].4.clone().expect("before"),
        records[0].5.clone().expect("after"),
    );
    assert!(
        before.contains("\"name\":\"editco Co\"") && before.contains("\"calling_plan_id\":null"),
        "{before}"
    );
    assert!(
        after.contains("\"name\":\"Edit Co\"")
            && after.contains(&format!("\"calling_plan_id\":{own}"))
            && after.contains("\"credit_limit\":10000000"),
        "{after}"
    );

    // A call now bills with the account's own plan, not its PBX plan's (none).
    let line = "\"\",\"201\",\"15550100100\",\"from-internal\",\"\",\"PJSIP/201-00000031\",\"PJSIP/voipms-00000032\",\"Dial\",\"\",\"2026-11-30 09:15:02\",\"2026-11-30 09:15:09\",\"2026-11-30 09:16:09\",67,60,\"ANSWERED\",\"DOCUMENTATION\",\"1764494102.31\",\"\"\n";
    let (records, _) = switchboard_core::calls::cdr::read_csv(
        line,
        &switchboard_core::calls::cdr::MASTER_CSV_COLUMNS,
        chrono_tz::UTC,
    );
    let ingested = switchboard_core::calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "csv",
        &records,
        &[],
    )
    .await
    .expect("ingested");
    assert_eq!(
        ingested.unrated, 0,
        "priced with the account's calling plan"
    );
    let page = app
        .page(&admin, &format!("/admin/calling-plans/{own}"))
        .await;
    assert!(
        page.contains(&format!(
            "<a href=\"/admin/accounts/{}\">Edit Co</a>",
            account.0
        )),
        "the calling plan says who it prices"
    );

    // A sub-account stays retail; a wholesale account with sub-accounts stays wholesale.
    let parent = app.account("Parent", AccountKind::Wholesale, None, 0).await;
    app.account("Child", AccountKind::Retail, Some(parent), 0)
        .await;
    let token = app
        .csrf_token(&admin, &format!("/admin/accounts/{}/edit", parent.0))
        .await;
    let refused = admin
        .post(app.url(&format!("/admin/accounts/{}/edit", parent.0)))
        .form(&[
            ("csrf", token.as_str()),
            ("name", "Parent"),
            ("kind", "retail"),
            ("contact_name", "P"),
            ("email", "p@example.com"),
            ("credit_limit", "0"),
            ("low_balance_threshold", "0"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .await
        .expect("text")
        .contains("stays wholesale while it has sub-accounts"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_page_pages_through_the_statement() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("longco", 0).await;
    let mut conn = app.conn().await;
    for n in 1..=25 {
        switchboard_core::money::ledger::adjust(
            &mut conn,
            account,
            switchboard_core::Money(n * 1_000_000),
            &format!("top-up {n}"),
            &format!("test:{n}"),
            None,
        )
        .await
        .expect("posted");
    }
    let (_, password) = app.user("sam", Role::Staff, None).await;
    let staff = app.signed_in("sam", &password).await;
    let first = app
        .page(&staff, &format!("/admin/accounts/{}", account.0))
        .await;
    assert!(
        first.contains("top-up 25") && first.contains("top-up 6") && !first.contains("top-up 5<")
    );
    let older_at = first.find("?after=").expect("an older page");
    let cursor: String = first[older_at + 7..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let second = app
        .page(
            &staff,
            &format!("/admin/accounts/{}?after={cursor}", account.0),
        )
        .await;
    assert!(
        second.contains("top-up 5<")
            && second.contains("top-up 1<")
            && !second.contains("top-up 6<"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calling_status_shows_live_calls_from_the_controller_and_accounts_in_trouble() {
    let app = TestApp::spawn().await;
    crate::commerce::seed_plan(&app).await;
    // Two PBXs made by the simulator: one of a client in good standing, one
    // of a client whose account is turned off.
    for name in ["goodco", "troubleco"] {
        let (http, order) = crate::commerce::signed_up(&app, name).await;
        let paid = crate::commerce::pay(&app, &http, &order, "4242424242424242", None).await;
        assert!(paid.status().is_redirection() || paid.status().is_success());
    }
    crate::commerce::run_jobs(&app, 3).await;
    let account_of = |username: &'static str| {
        let app = &app;
        async move {
            use switchboard_core::schema::users;
            users::table
                .filter(users::username.eq(username))
                .select(users::account_id)
                .first::<Option<i64>>(&mut app.conn().await)
                .await
                .expect("the user")
                .expect("an account")
        }
    };
    let (good, trouble) = (account_of("goodco").await, account_of("troubleco").await);
    diesel::update(switchboard_core::schema::accounts::table.find(trouble))
        .set((
            switchboard_core::schema::accounts::turned_off.eq(true),
            switchboard_core::schema::accounts::turned_off_at.eq(chrono::Utc::now()),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("turned off");
    let (_, password) = app.user("sam", Role::Staff, None).await;
    let staff = app.signed_in("sam", &password).await;
    let page = app.page(&staff, "/admin/calling").await;
    assert!(
        page.contains("/static/calling-status.js") && page.contains("Refresh now"),
        "it keeps itself current: {page}"
    );
    let link = |account: i64| format!("href=\"/admin/accounts/{account}\"");
    assert!(
        page.contains(&link(good)) && page.contains(&link(trouble)),
        "{page}"
    );
    assert!(
        page.contains("calls in progress") && !page.contains("no answer"),
        "the controller answered for each: {page}"
    );
    let in_trouble = app.page(&staff, "/admin/calling?trouble=1").await;
    assert!(
        in_trouble.contains(&link(trouble)) && !in_trouble.contains(&link(good)),
        "{in_trouble}"
    );
    // The live calls are the controller's: the API hands them on.
    let answer = app
        .graphql(&staff, "{ callingStatus { edges { node { liveCalls { direction from to } health { calling } } } } }", serde_json::json!({}))
        .await;
    let edges = answer["data"]["callingStatus"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 2, "{answer}");
    for edge in edges {
        assert!(edge["node"]["liveCalls"].is_array(), "{edge}");
        assert_eq!(edge["node"]["health"]["calling"], "enabled");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_changes_one_rate_in_its_row_as_a_new_version() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    let plan = switchboard_core::calls::calling_plans::create(&mut conn, "Retail", "USD", None)
        .await
        .expect("a calling plan");
    crate::calls::add_rate(&mut conn, plan, "44", 12_000, chrono::Duration::days(3)).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let admin = app.signed_in("ada", &password).await;
    let path = format!("/admin/calling-plans/{plan}");
    let row = app.page(&admin, &format!("{path}?edit=44")).await;
    assert!(
        row.contains("id=\"rate-form\""),
        "the row turns into a form"
    );
    let send = |per_minute: &'static str, effective: &'static str| {
        let admin = admin.clone();
        let path = path.clone();
        let app = &app;
        async move {
            let token = app.csrf_token(&admin, &path).await;
            admin
                .post(app.url(&format!("{path}/rates")))
                .form(&[
                    ("csrf", token.as_str()),
                    ("prefix", "44"),
                    ("description", "United Kingdom"),
                    ("per_minute", per_minute),
                    ("effective_at", effective),
                ])
                .send()
                .await
                .expect("POST")
        }
    };
    let refused = send("-1", "").await;
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .await
        .expect("text")
        .contains("must not be negative"));
    let past = send("0.02", "2020-01-01T00:00:00Z").await;
    assert!(past
        .text()
        .await
        .expect("text")
        .contains("Rates take effect now or later"));
    assert_eq!(send("0.0125", "").await.status(), 303);
    let page = app.page(&admin, &format!("{path}?history=44")).await;
    assert!(
        page.contains("$0.0125") && page.contains("$0.012"),
        "both versions are kept: {page}"
    );
    let records = audited(&app, "rate.set").await;
    assert_eq!(records.len(), 1);
    assert!(
        records[0]
            .4
            .as_deref()
            .expect("before")
            .contains("\"per_minute\":\"0.012\""),
        "{records:?}"
    );
    assert!(records[0]
        .5
        .as_deref()
        .expect("after")
        .contains("\"per_minute\":\"0.0125\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_filtered_by_actor_account_and_kind() {
    let app = TestApp::spawn().await;
    let (mine, _, _) = app.client("mineco", 0).await;
    let (theirs, _, _) = app.client("theirco", 0).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let (_, other_password) = app.user("bob", Role::Admin, None).await;
    let ada = app.signed_in("ada", &password).await;
    let bob = app.signed_in("bob", &other_password).await;
    let adjust = |who: &reqwest::Client, account: i64, key: &'static str| {
        let who = who.clone();
        let app = &app;
        async move {
            let answer = app
                .graphql(&who, &format!(r#"mutation {{ adjustBalance(input: {{ accountId: "{account}", amount: "1", memo: "m", idempotencyKey: "{key}" }}) {{ replayed }} }}"#), serde_json::json!({}))
                .await;
            assert!(answer["errors"].is_null(), "{answer}");
        }
    };
    adjust(&ada, mine.0, "a").await;
    adjust(&bob, theirs.0, "b").await;
    let log = app
        .page(&ada, &format!("/admin/audit?account={}", mine.0))
        .await;
    assert!(
        log.contains(&format!("account:{}", mine.0))
            && !log.contains(&format!("account:{}", theirs.0))
    );
    let answer = app
        .graphql(
            &ada,
            "{ staffUsers { id username } }",
            serde_json::json!({}),
        )
        .await;
    let bob_id = answer["data"]["staffUsers"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|u| u["username"] == "bob")
        .expect("bob")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let log = app
        .page(
            &ada,
            &format!("/admin/audit?actor={bob_id}&kind=account.adjust_balance"),
        )
        .await;
    assert!(
        log.contains(&format!("account:{}", theirs.0))
            && !log.contains(&format!("account:{}", mine.0)),
        "{log}"
    );
    let none = app.page(&ada, "/admin/audit?kind=pbx").await;
    assert!(none.contains("Nothing matches."));
}

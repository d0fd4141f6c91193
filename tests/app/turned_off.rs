//! An admin turns an account off and on again: its PBXs stop calling and
//! are powered off through the controller, its users still sign in and see
//! why, recurring charges pause, and the switch overrides standing until it
//! is turned on, when the PBXs come back in order.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_core::billing::periods::period_start;
use switchboard_core::billing::recurring;
use switchboard_core::schema::{accounts, audit_log, background_jobs, journal_transactions};
use switchboard_core::{AccountId, Role};

use crate::balance::{
    adjust, controller_view, on_clock, pbx_on_simulator, pbx_states, queue_review, run_jobs_with,
    standing,
};
use crate::browser::{browser, screenshot, sign_in};
use crate::commerce::seed_plan;
use crate::harness::TestApp;

/// The commands of every PBX command job still queued.
async fn queued_commands(app: &TestApp) -> Vec<String> {
    background_jobs::table
        .filter(background_jobs::job_type.eq("pbx_command"))
        .order(background_jobs::id)
        .select(background_jobs::data)
        .load(&mut app.conn().await)
        .await
        .expect("jobs")
}

/// Clicks the element `css` finds, once it is there.
pub async fn click(browser: &fantoccini::Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// The text of the element `css` finds, once it is there.
pub async fn text_of(browser: &fantoccini::Client, css: &str) -> String {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn switch_with_reason(browser: &fantoccini::Client, reason: &str, button: &str) {
    browser
        .wait()
        .for_element(Locator::Id("switch-reason"))
        .await
        .expect("the reason field")
        .send_keys(reason)
        .await
        .expect("type");
    click(browser, button).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_turns_an_account_off_and_back_on() {
    let app = TestApp::spawn().await;
    let plan = seed_plan(&app).await;
    let (account, client, client_password) = app.client("switchco", 20_000_000).await;
    let (_, first) = pbx_on_simulator(&app, account, plan, "switch-1").await;
    let (_, second) = pbx_on_simulator(&app, account, plan, "switch-2").await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "ada", &password).await;

    // From the accounts list to the account, and off with a reason.
    browser
        .find(Locator::LinkText("switchco Co"))
        .await
        .expect("the account in the list")
        .click()
        .await
        .expect("click");
    switch_with_reason(&browser, "Suspected fraud, under review", "#turn-off").await;
    let notice = text_of(&browser, "[data-testid=turned-off-notice]").await;
    screenshot(&browser, "account-turned-off").await;
    assert!(
        notice.contains("Turned off by an admin") && notice.contains("Suspected fraud"),
        "{notice}"
    );
    run_jobs_with(&app, &app.jobs, 5).await;
    assert_eq!(pbx_states(&app, account).await, ["powered_off"; 2]);
    assert_eq!(
        controller_view(&app, &first),
        (false, false),
        "powered off, calling stopped"
    );
    assert_eq!(controller_view(&app, &second), (false, false));

    // The accounts list says so.
    browser.goto(&app.url("/admin")).await.expect("the list");
    let row = text_of(&browser, "table tbody tr").await;
    assert!(row.contains("turned off"), "{row}");

    // The client still signs in and sees why.
    let http = app.signed_in(&client, &client_password).await;
    let home = app.page(&http, "/portal").await;
    assert!(
        home.contains("This account is turned off")
            && home.contains("Suspected fraud, under review"),
        "{home}"
    );

    // On again: powered on, calling resumed, and the notice gone.
    browser
        .goto(&app.url(&format!("/admin/accounts/{}", account.0)))
        .await
        .expect("the account");
    switch_with_reason(&browser, "Review cleared", "#turn-on").await;
    let done = text_of(&browser, "#notice").await;
    assert!(done.starts_with("Turned on"), "{done}");
    assert!(browser
        .find(Locator::Css("[data-testid=turned-off-notice]"))
        .await
        .is_err());
    run_jobs_with(&app, &app.jobs, 5).await;
    assert_eq!(pbx_states(&app, account).await, ["active"; 2]);
    assert_eq!(controller_view(&app, &first), (true, true));
    assert_eq!(controller_view(&app, &second), (true, true));
    browser.close().await.expect("close");
    let home = app.page(&http, "/portal").await;
    assert!(!home.contains("This account is turned off"), "{home}");
    let log: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.like("account.turn_%"))
        .order(audit_log::id)
        .select((audit_log::action, audit_log::detail))
        .load(&mut app.conn().await)
        .await
        .expect("audit");
    assert_eq!(
        log,
        [
            (
                "account.turn_off".to_owned(),
                "Suspected fraud, under review".to_owned()
            ),
            ("account.turn_on".to_owned(), "Review cleared".to_owned()),
        ]
    );
}

const TURN_OFF: &str = r#"mutation($a: ID!, $r: String!) { turnAccountOff(accountId: $a, reason: $r) { turnedOff turnedOffReason } }"#;
const TURN_ON: &str =
    r#"mutation($a: ID!, $r: String!) { turnAccountOn(accountId: $a, reason: $r) { turnedOff } }"#;

async fn turned_off(app: &TestApp, account: AccountId) -> bool {
    accounts::table
        .find(account.0)
        .select(accounts::turned_off)
        .first(&mut app.conn().await)
        .await
        .expect("the account")
}

async fn charges(app: &TestApp) -> Vec<String> {
    journal_transactions::table
        .filter(journal_transactions::idempotency_key.like("recurring:%"))
        .order(journal_transactions::id)
        .select(journal_transactions::idempotency_key)
        .load(&mut app.conn().await)
        .await
        .expect("charges")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turned_off_account_is_not_billed_and_standing_leaves_its_pbxs_alone() {
    let app = TestApp::spawn().await;
    let plan = seed_plan(&app).await;
    let (account, _, _) = app.client("pausedco", 100_000_000).await;
    let (pbx, on_controller) = pbx_on_simulator(&app, account, plan, "paused-1").await;
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let (_, admin_password) = app.user("ada", Role::Admin, None).await;
    let staff = app.signed_in("sam", &staff_password).await;
    let admin = app.signed_in("ada", &admin_password).await;
    let vars = |reason: &str| serde_json::json!({ "a": account.0.to_string(), "r": reason });

    // Staff may not turn an account off, nor an admin without a reason.
    let refused = app.graphql(&staff, TURN_OFF, vars("because")).await;
    assert_eq!(
        refused["errors"][0]["message"],
        "You are not allowed to do this."
    );
    let no_reason = app.graphql(&admin, TURN_OFF, vars("  ")).await;
    assert!(
        no_reason["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Say why")),
        "{no_reason}"
    );
    assert!(!turned_off(&app, account).await);

    // The PBX's plan is billed monthly from an activation ten weeks ago:
    // its second period, about forty days ago, was billed then.
    let now = Utc::now();
    let activated = now - Duration::days(70);
    let period = |n| period_start(activated, n).expect("a period");
    recurring::start_pbx_plan(&mut app.conn().await, account, pbx, plan, activated)
        .await
        .expect("billed monthly");
    let ctx = on_clock(&app, now);
    recurring::bill_due(&mut app.conn().await, period(2) - Duration::days(1), 100)
        .await
        .expect("billed");
    assert_eq!(charges(&app).await.len(), 1, "the period under way is paid");

    // Turned off: calling stops, then the PBX is powered off.
    let off = app
        .graphql(&admin, TURN_OFF, vars("Chargeback on file"))
        .await;
    assert_eq!(off["data"]["turnAccountOff"]["turnedOff"], true, "{off}");
    assert_eq!(
        off["data"]["turnAccountOff"]["turnedOffReason"],
        "Chargeback on file"
    );
    let again = app.graphql(&admin, TURN_OFF, vars("twice")).await;
    assert_eq!(
        again["errors"][0]["message"],
        "This account is turned off already."
    );
    assert_eq!(
        queued_commands(&app).await,
        [format!(
            r#"{{"pbx":{pbx},"commands":["suspend_calling","power_off"],"while_state":"powered_off"}}"#
        )]
    );
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(controller_view(&app, &on_controller), (false, false));

    // As if it had been off since before the third period began: that
    // period is not billed, however late billing runs.
    diesel::update(accounts::table.find(account.0))
        .set(accounts::turned_off_at.eq(period(2) - Duration::days(2)))
        .execute(&mut app.conn().await)
        .await
        .expect("off for longer");
    let billed = recurring::bill_due(&mut app.conn().await, now + Duration::days(1), 100)
        .await
        .expect("a run");
    assert_eq!(billed.charged, 0);
    assert_eq!(charges(&app).await.len(), 1);

    // The balance falls through the credit limit and comes back: standing
    // moves, but neither suspends nor restores the turned-off PBX.
    adjust(&app, account, -30_000_000, "calls").await;
    queue_review(&app).await;
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(standing(&app, account).await, "calling_suspended");
    adjust(&app, account, 40_000_000, "paid").await;
    queue_review(&app).await;
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(standing(&app, account).await, "good");
    assert_eq!(pbx_states(&app, account).await, ["powered_off"]);
    assert_eq!(controller_view(&app, &on_controller), (false, false));
    assert!(queued_commands(&app).await.is_empty());

    // Turned on: powered on first, calling resumed second; billing resumes
    // with the next period, the skipped one never billed.
    let on = app
        .graphql(&admin, TURN_ON, vars("Chargeback withdrawn"))
        .await;
    assert_eq!(on["data"]["turnAccountOn"]["turnedOff"], false, "{on}");
    assert_eq!(
        queued_commands(&app).await,
        [format!(
            r#"{{"pbx":{pbx},"commands":["power_on","resume_calling"],"while_state":"active"}}"#
        )]
    );
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(pbx_states(&app, account).await, ["active"]);
    assert_eq!(controller_view(&app, &on_controller), (true, true));
    let next = period(3);
    let skipped = recurring::bill_due(&mut app.conn().await, next - Duration::minutes(1), 100)
        .await
        .expect("a run");
    assert_eq!(skipped.charged, 0, "the period begun while off is skipped");
    recurring::bill_due(&mut app.conn().await, next, 100)
        .await
        .expect("a run");
    let keys = charges(&app).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys[1].ends_with(&next.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        "{keys:?}"
    );

    // Every switch is audited with its reason, before and after.
    let log: Vec<(String, String, Option<String>)> = audit_log::table
        .filter(audit_log::action.like("account.turn_%"))
        .order(audit_log::id)
        .select((audit_log::action, audit_log::detail, audit_log::after))
        .load(&mut app.conn().await)
        .await
        .expect("audit");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].1, "Chargeback on file");
    assert!(log[0]
        .2
        .as_deref()
        .is_some_and(|a| a.contains(r#""turned_off":true"#)));
    assert_eq!(log[1].0, "account.turn_on");
}

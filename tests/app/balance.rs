//! The balance runs the account: recurring charges over a simulated year,
//! standing driven by balance and time against the PBX simulator, low-balance
//! notices once per crossing. Time comes from a clock the tests move.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_controller::simulator::Faults;
use switchboard_controller::CreatePbx;
use switchboard_core::billing::recurring;
use switchboard_core::clock::Clock;
use switchboard_core::money::ledger;
use switchboard_core::schema::{
    accounts, background_jobs, emails, journal_transactions, pbxes, standing_changes,
};
use switchboard_core::{AccountId, Money};
use switchboard_jobs::{run_due, JobContext};

use crate::commerce::seed_plan;
use crate::harness::TestApp;

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

/// The app's job context on a clock of the test's own, standing at `start`.
pub fn on_clock(app: &TestApp, start: DateTime<Utc>) -> JobContext {
    let mut ctx = app.jobs.clone();
    ctx.clock = Clock::at(start);
    ctx
}

/// Runs due jobs with `ctx` until none is left (retries made due at once),
/// at most `passes` times.
pub async fn run_jobs_with(app: &TestApp, ctx: &JobContext, passes: usize) {
    for _ in 0..passes {
        diesel::update(background_jobs::table)
            .set(background_jobs::run_after.eq(Utc::now()))
            .execute(&mut app.conn().await)
            .await
            .expect("due now");
        let pass = run_due(&app.pool, ctx).await.expect("a pass");
        if pass == switchboard_jobs::Pass::default() {
            break;
        }
    }
}

/// Queues a standing review of every account that may need one.
pub async fn queue_review(app: &TestApp) {
    switchboard_jobs::enqueue(
        &mut app.conn().await,
        switchboard_jobs::Job::ReviewStanding,
        "",
        Some("review_standing"),
    )
    .await
    .expect("queued");
}

pub async fn emails_to(app: &TestApp, to: &str, subject: &str) -> i64 {
    emails::table
        .filter(emails::to_address.eq(to))
        .filter(emails::subject.eq(subject))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("count")
}

async fn balance(app: &TestApp, account: AccountId) -> i64 {
    ledger::balance(&mut app.conn().await, account)
        .await
        .expect("balance")
        .micros()
}

pub async fn standing(app: &TestApp, account: AccountId) -> String {
    accounts::table
        .find(account.0)
        .select(accounts::standing)
        .first(&mut app.conn().await)
        .await
        .expect("standing")
}

pub async fn adjust(app: &TestApp, account: AccountId, micros: i64, key: &str) {
    ledger::adjust(
        &mut app.conn().await,
        account,
        Money(micros),
        "test",
        key,
        None,
    )
    .await
    .expect("adjusted");
}

/// Bills what is due on two "instances" at once, as two servers on one
/// database would.
async fn bill_on_two_runners(app: &TestApp, now: DateTime<Utc>) {
    let (mut a, mut b) = (app.conn().await, app.conn().await);
    let (first, second) = tokio::join!(
        recurring::bill_due(&mut a, now, usize::MAX),
        recurring::bill_due(&mut b, now, usize::MAX)
    );
    first.expect("first runner");
    second.expect("second runner");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_year_bills_every_period_exactly_once() {
    let app = TestApp::spawn().await;
    let plan = seed_plan(&app).await; // $79 a month
    let start = at("2027-01-31T09:00:00Z");
    let ctx = on_clock(&app, start);
    // Rich never runs low; Thin runs low, is paid up, and runs low again.
    let rich = app
        .account(
            "Rich",
            switchboard_core::AccountKind::Retail,
            None,
            5_000_000_000,
        )
        .await;
    let thin = app
        .account(
            "Thin",
            switchboard_core::AccountKind::Retail,
            None,
            200_000_000,
        )
        .await;
    diesel::update(accounts::table.find(thin.0))
        .set(accounts::credit_limit.eq(10_000_000_000i64))
        .execute(&mut app.conn().await)
        .await
        .expect("a deep credit limit keeps Thin calling");
    let mut items = Vec::new();
    for (n, account) in [rich, rich, thin].into_iter().enumerate() {
        let pbx = app.pbx(account, plan, "active", &format!("year-{n}")).await;
        recurring::start_pbx_plan(&mut app.conn().await, account, pbx, plan, start)
            .await
            .expect("billed from the month after");
        items.push((account, pbx));
    }

    let day = Duration::days(1);
    let mut now = start;
    let end = start + Duration::days(366);
    let mut topped_up = false;
    while now < end {
        now += day * 5;
        let outage = now > start + Duration::days(180) && now < start + Duration::days(285);
        if outage {
            // No server runs for more than three periods.
            continue;
        }
        ctx.clock.set(now);
        if now > start + Duration::days(120) && !topped_up {
            adjust(&app, thin, 700_000_000, "year:top-up").await;
            topped_up = true;
        }
        if now > start + Duration::days(60) && now < start + Duration::days(66) {
            // A restart in the middle of a billing run: the run is cut off
            // wherever it is, and the next one finishes it.
            let mut conn = app.conn().await;
            let cut = tokio::spawn(async move { recurring::bill_due(&mut conn, now, 1).await });
            cut.abort();
            let _ = cut.await;
        }
        bill_on_two_runners(&app, now).await;
        // Two runners take the queued jobs at once, as two instances do.
        queue_review(&app).await;
        tokio::join!(run_jobs_with(&app, &ctx, 5), run_jobs_with(&app, &ctx, 5));
    }

    // Twelve periods after the first month, each charged once.
    let mut conn = app.conn().await;
    let items_rows = recurring::of_account(&mut conn, rich)
        .await
        .expect("items")
        .into_iter()
        .chain(recurring::of_account(&mut conn, thin).await.expect("items"));
    for item in items_rows {
        let keys: Vec<String> = journal_transactions::table
            .filter(journal_transactions::idempotency_key.like(format!("recurring:{}:%", item.id)))
            .select(journal_transactions::idempotency_key)
            .load(&mut conn)
            .await
            .expect("keys");
        assert_eq!(
            keys.len(),
            12,
            "item {} was billed {} times",
            item.id,
            keys.len()
        );
        assert_eq!(item.next_period, 13);
    }
    assert_eq!(
        balance(&app, rich).await,
        5_000_000_000 - 2 * 12 * 79_000_000
    );
    assert_eq!(
        balance(&app, thin).await,
        200_000_000 + 700_000_000 - 12 * 79_000_000
    );
    // Thin crossed below the threshold twice: two notices to it and two to
    // staff, whatever the runners did in between.
    let crossings: i64 = standing_changes::table
        .filter(standing_changes::account_id.eq(thin.0))
        .filter(standing_changes::from_standing.eq("good"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(crossings, 2);
    assert_eq!(
        emails_to(&app, "thin@example.com", "Your Switchboard balance is low").await,
        2
    );
    assert_eq!(
        emails_to(
            &app,
            &app.jobs.settings.email.staff_address,
            "Thin: balance low"
        )
        .await,
        2
    );
    assert_eq!(
        emails_to(&app, "rich@example.com", "Your Switchboard balance is low").await,
        0
    );
}

/// A PBX that the simulator made, recorded as active for `account`.
pub async fn pbx_on_simulator(
    app: &TestApp,
    account: AccountId,
    plan: i64,
    name: &str,
) -> (i64, String) {
    let created = app
        .jobs
        .controller
        .create(&CreatePbx {
            request_id: name.into(),
            plan: "office".into(),
            extensions: 5,
            gui_password: "secret-secret".into(),
            account: account.0.to_string(),
        })
        .await
        .expect("the simulator made it");
    let id = app.pbx(account, plan, "active", name).await;
    diesel::update(pbxes::table.find(id))
        .set(pbxes::controller_id.eq(&created.id))
        .execute(&mut app.conn().await)
        .await
        .expect("its controller id");
    (id, created.id)
}

/// What the simulator says of its PBX: (powered, calling).
pub fn controller_view(app: &TestApp, id: &str) -> (bool, bool) {
    let pbx = app
        .simulator
        .pbxes()
        .into_iter()
        .find(|p| p.id == id)
        .expect("the simulator has it");
    (pbx.powered, pbx.calling)
}

pub async fn pbx_states(app: &TestApp, account: AccountId) -> Vec<String> {
    pbxes::table
        .filter(pbxes::account_id.eq(account.0))
        .order(pbxes::id)
        .select(pbxes::state)
        .load(&mut app.conn().await)
        .await
        .expect("states")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpaid_account_is_suspended_then_powered_off_then_restored_on_payment() {
    let app = TestApp::spawn().await;
    let plan = seed_plan(&app).await;
    let (account, username, password) = app.client("debtor", 3_000_000).await;
    diesel::update(accounts::table.find(account.0))
        .set(accounts::email.eq("debtor@example.com"))
        .execute(&mut app.conn().await)
        .await
        .expect("an email");
    let (_, first) = pbx_on_simulator(&app, account, plan, "debtor-1").await;
    let (_, second) = pbx_on_simulator(&app, account, plan, "debtor-2").await;
    let start = at("2027-03-01T12:00:00Z");
    let ctx = on_clock(&app, start);

    // Calls bring the balance below zero: calling is suspended on both.
    adjust(&app, account, -4_000_000, "calls").await;
    queue_review(&app).await;
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(standing(&app, account).await, "calling_suspended");
    assert_eq!(pbx_states(&app, account).await, ["calling_suspended"; 2]);
    assert_eq!(controller_view(&app, &first), (true, false));
    assert_eq!(controller_view(&app, &second), (true, false));
    assert_eq!(
        emails_to(
            &app,
            "debtor@example.com",
            "Outbound calling is suspended on your PBXs"
        )
        .await,
        1
    );

    // A day short of the grace period nothing more happens.
    ctx.clock
        .set(start + Duration::days(7) - Duration::minutes(1));
    queue_review(&app).await;
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(standing(&app, account).await, "calling_suspended");

    // The grace period ends while the controller is down: the standing
    // changes on time, and the power-off is retried until it answers.
    ctx.clock.set(start + Duration::days(7));
    app.simulator.arm(Faults {
        fail: 4,
        ..Faults::default()
    });
    queue_review(&app).await;
    let pass = run_due(&app.pool, &ctx).await.expect("a pass");
    assert!(pass.failed >= 1, "the controller refused: {pass:?}");
    assert_eq!(standing(&app, account).await, "powered_off");
    assert_eq!(pbx_states(&app, account).await, ["powered_off"; 2]);
    assert!(controller_view(&app, &first).0 || controller_view(&app, &second).0);
    run_jobs_with(&app, &ctx, 10).await;
    assert_eq!(controller_view(&app, &first), (false, false));
    assert_eq!(controller_view(&app, &second), (false, false));
    assert_eq!(
        emails_to(&app, "debtor@example.com", "Your PBXs are powered off").await,
        1
    );

    // Thirty days on, staff hear the account is due for termination, once.
    ctx.clock.set(start + Duration::days(37));
    for _ in 0..2 {
        queue_review(&app).await;
        run_jobs_with(&app, &ctx, 5).await;
    }
    let staff = app.jobs.settings.email.staff_address.clone();
    assert_eq!(
        emails_to(&app, &staff, "debtor Co is due for termination").await,
        1
    );
    assert_eq!(standing(&app, account).await, "powered_off");

    // The client pays through the panel's operation: PBXs are powered on,
    // then calling resumes, in that order, and the client is told.
    let http = app.signed_in(&username, &password).await;
    let added = app
        .graphql(
            &http,
            "mutation($a: String!) { addFunds(amount: $a) { order { id } paymentUrl } }",
            serde_json::json!({ "a": "50" }),
        )
        .await;
    let order = added["data"]["addFunds"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{added}"))
        .to_owned();
    let paid = app
        .graphql(
            &http,
            "mutation($o: ID!) { payWithTestCard(orderId: $o, cardNumber: \"4242424242424242\") { outcome } }",
            serde_json::json!({ "o": order }),
        )
        .await;
    assert_eq!(paid["data"]["payWithTestCard"]["outcome"], "PAID", "{paid}");
    assert_eq!(balance(&app, account).await, -1_000_000 + 50_000_000);
    ctx.clock.set(start + Duration::days(38));
    let policy = switchboard_core::standing::Policy {
        periods: ctx.settings.billing.periods(),
        staff_address: &ctx.settings.email.staff_address,
        base_url: ctx.settings.base_url(),
    };
    switchboard_core::standing::review(&mut app.conn().await, account, &policy, ctx.clock.now())
        .await
        .expect("the review the payment queued");
    let queued: Vec<String> = background_jobs::table
        .filter(background_jobs::job_type.eq("pbx_command"))
        .select(background_jobs::data)
        .load(&mut app.conn().await)
        .await
        .expect("jobs");
    assert_eq!(queued.len(), 2);
    assert!(
        queued
            .iter()
            .all(|d| d.contains(r#""commands":["power_on","resume_calling"]"#)),
        "{queued:?}"
    );
    run_jobs_with(&app, &ctx, 5).await;
    assert_eq!(standing(&app, account).await, "good");
    assert_eq!(pbx_states(&app, account).await, ["active"; 2]);
    assert_eq!(controller_view(&app, &first), (true, true));
    assert_eq!(controller_view(&app, &second), (true, true));
    assert_eq!(
        emails_to(&app, "debtor@example.com", "Your PBXs are back").await,
        1
    );

    // Every transition is recorded with its time and cause.
    let history: Vec<(DateTime<Utc>, String, String)> = standing_changes::table
        .filter(standing_changes::account_id.eq(account.0))
        .order(standing_changes::id)
        .select((
            standing_changes::at,
            standing_changes::to_standing,
            standing_changes::cause,
        ))
        .load(&mut app.conn().await)
        .await
        .expect("history");
    let steps: Vec<(&str, DateTime<Utc>)> = history
        .iter()
        .map(|(at, to, _)| (to.as_str(), *at))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("calling_suspended", start),
            ("powered_off", start + Duration::days(7)),
            ("powered_off", start + Duration::days(37)),
            ("good", start + Duration::days(38)),
        ]
    );
    assert!(history[3].2.contains("payment"), "{:?}", history[3]);
    // The staff's account page shows it.
    let (_, admin_password) = app.user("boss", switchboard_core::Role::Staff, None).await;
    let staff_http = app.signed_in("boss", &admin_password).await;
    let page = app
        .page(&staff_http, &format!("/admin/accounts/{}", account.0))
        .await;
    assert!(
        page.contains("Standing history") && page.contains("grace period"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_balance_notice_is_sent_once_per_crossing() {
    let app = TestApp::spawn().await;
    let account = app
        .account(
            "Lowly",
            switchboard_core::AccountKind::Retail,
            None,
            10_000_000,
        )
        .await;
    let ctx = on_clock(&app, at("2027-05-01T00:00:00Z"));
    let notices = || emails_to(&app, "lowly@example.com", "Your Switchboard balance is low");
    let review_twice = async || {
        // Two runners look at the account at the same moment.
        let policy = switchboard_core::standing::Policy {
            periods: ctx.settings.billing.periods(),
            staff_address: &ctx.settings.email.staff_address,
            base_url: ctx.settings.base_url(),
        };
        let (mut a, mut b) = (app.conn().await, app.conn().await);
        let now = ctx.clock.now();
        let (x, y) = tokio::join!(
            switchboard_core::standing::review(&mut a, account, &policy, now),
            switchboard_core::standing::review(&mut b, account, &policy, now)
        );
        x.expect("a review");
        y.expect("a review");
    };

    adjust(&app, account, -6_000_000, "spend-1").await;
    review_twice().await;
    review_twice().await;
    assert_eq!(standing(&app, account).await, "low");
    assert_eq!(notices().await, 1);
    assert_eq!(
        emails_to(
            &app,
            &ctx.settings.email.staff_address,
            "Lowly: balance low"
        )
        .await,
        1
    );

    // Still below: no second notice, however often the job runs.
    adjust(&app, account, -1_000_000, "spend-2").await;
    for _ in 0..3 {
        queue_review(&app).await;
        run_jobs_with(&app, &ctx, 3).await;
    }
    assert_eq!(notices().await, 1);

    // Rising above the threshold re-arms it; the next crossing tells again.
    adjust(&app, account, 10_000_000, "pay").await;
    review_twice().await;
    assert_eq!(standing(&app, account).await, "good");
    assert_eq!(notices().await, 1);
    adjust(&app, account, -10_000_000, "spend-3").await;
    review_twice().await;
    assert_eq!(notices().await, 2);
    assert_eq!(
        emails_to(
            &app,
            &ctx.settings.email.staff_address,
            "Lowly: balance low"
        )
        .await,
        2
    );
}

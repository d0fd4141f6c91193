//! Several PBXs on one balance: another PBX ordered from the panel and paid
//! from the balance, each PBX named, and each PBX's month on the home, the
//! reports and the statement.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_core::schema::{
    audit_log, background_jobs, calls, journal_transactions, orders, pbxes, recurring_items,
};
use switchboard_core::AccountId;

use crate::browser::{browser, screenshot, sign_in, wait_until};
use crate::calls::balance_of;
use crate::harness::{post_form, TestApp};

/// One answered call of `pbx` that started a moment ago, costing `cost`
/// micro-units (written directly: rating has tests of its own).
async fn a_call(app: &TestApp, account: AccountId, pbx: i64, cost: i64) {
    a_call_at(app, account, pbx, cost, chrono::Utc::now()).await;
}

/// [`a_call`] that started at `now`.
async fn a_call_at(
    app: &TestApp,
    account: AccountId,
    pbx: i64,
    cost: i64,
    now: chrono::DateTime<chrono::Utc>,
) {
    diesel::insert_into(calls::table)
        .values((
            calls::pbx_id.eq(pbx),
            calls::call_key.eq(format!("call-{pbx}-{}", now.timestamp_micros())),
            calls::account_id.eq(account.0),
            calls::start.eq(now),
            calls::lead_answered.eq(true),
            calls::lead_calldate.eq(now),
            calls::lead_key.eq("lead"),
            calls::src.eq("201"),
            calls::dst.eq("15550100100"),
            calls::direction.eq("outbound"),
            calls::extension.eq(Some("201")),
            calls::status.eq("answered"),
            calls::duration.eq(125),
            calls::billsec.eq(121),
            calls::cost.eq(cost),
            calls::legs.eq(1),
            calls::rated.eq(true),
            calls::unrated.eq(false),
            calls::billed_seconds.eq(180),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("a call");
}

/// How many orders, PBXs and queued provisioning jobs there are.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let mut conn = app.conn().await;
    let orders: i64 = orders::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("orders");
    let pbxes: i64 = pbxes::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("PBXs");
    let jobs: i64 = background_jobs::table
        .filter(background_jobs::job_type.eq(switchboard_core::queue::PROVISION_PBX))
        .count()
        .get_result(&mut conn)
        .await
        .expect("jobs");
    (orders, pbxes, jobs)
}

/// A client with `balance` and an active PBX on the Office plan ($99 setup,
/// $79 a month): (account, PBX, username, password).
async fn a_client_with_a_pbx(
    app: &TestApp,
    name: &str,
    balance: i64,
) -> (AccountId, i64, String, String) {
    let plan = match switchboard_core::commerce::plans::by_slug(&mut app.conn().await, "office")
        .await
        .expect("plans")
    {
        Some(plan) => plan.id,
        None => crate::commerce::seed_plan(app).await,
    };
    let (account, username, password) = app.client(name, balance).await;
    let pbx = app
        .pbx(account, plan, "active", &format!("pbx-{name}"))
        .await;
    (account, pbx, username, password)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_orders_a_second_pbx_and_sees_usage_per_pbx() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = TestApp::spawn().await;
    let (account, first, username, password) =
        a_client_with_a_pbx(&app, "branching", 20_000_000).await;
    a_call(&app, account, first, 120_000).await;
    let _workers = app.start_workers(smtp.port);
    let browser = browser().await;
    sign_in(&browser, &app, &username, &password).await;
    let click = |locator: Locator<'static>| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .for_element(locator)
                .await
                .unwrap_or_else(|e| panic!("{locator:?}: {e}"))
                .click()
                .await
                .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
        }
    };
    let text_of = |css: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"))
                .text()
                .await
                .expect("text")
        }
    };

    // $20 does not cover Office's $178: the page says what is missing and
    // offers to add it by card.
    click(Locator::LinkText("Order another PBX")).await;
    click(Locator::Id("plan_office")).await;
    click(Locator::Css("form[action='/portal/pbxes/new'] button")).await;
    let short = text_of("[data-testid=shortfall]").await;
    assert!(short.contains("$158.00 is missing"), "{short}");
    screenshot(&browser, "pbx-order-short").await;
    click(Locator::Css("[data-testid=shortfall] button")).await;
    let card = browser
        .wait()
        .for_element(Locator::Id("card_number"))
        .await
        .expect("the card form");
    card.send_keys("4242 4242 4242 4242").await.expect("type");
    click(Locator::Css("form.stack button[type=submit]")).await;
    wait_until(&browser, |url| url.path().starts_with("/orders/")).await;
    assert_eq!(text_of("h1").await, "Funds added");

    // Ordered again: paid from the balance, and provisioned.
    browser.goto(&app.url("/portal")).await.expect("home");
    click(Locator::LinkText("Order another PBX")).await;
    click(Locator::Id("plan_office")).await;
    click(Locator::Css("form[action='/portal/pbxes/new'] button")).await;
    let started = Instant::now();
    loop {
        let heading = match browser.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if heading == "Your PBX is ready" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {heading:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    smtp.wait_for("the new PBX's credentials", |m| {
        m.data.contains("Subject: Your Switchboard PBX is ready")
    })
    .await;

    // Named, then listed by name with its month beside the first one's.
    browser
        .goto(&app.url("/portal/pbxes"))
        .await
        .expect("the PBXs");
    let second: i64 = pbxes::table
        .filter(pbxes::account_id.eq(account.0))
        .filter(pbxes::id.ne(first))
        .select(pbxes::id)
        .first(&mut app.conn().await)
        .await
        .expect("the second PBX");
    let field = format!("label-{second}");
    browser
        .find(Locator::Id(&field))
        .await
        .expect("its name field")
        .send_keys("Branch office")
        .await
        .expect("type");
    let save = format!("form[action='/portal/pbxes/{second}/label'] button");
    browser
        .find(Locator::Css(&save))
        .await
        .expect("its save button")
        .click()
        .await
        .expect("click");
    assert!(text_of(".alert.info").await.contains("name is saved"));
    click(Locator::LinkText("Home")).await;
    let names = text_of("#pbxes tbody").await;
    assert!(
        names.contains(&format!("#{second} Branch office")),
        "{names}"
    );
    let usage = text_of("#usage-per-pbx tbody").await;
    screenshot(&browser, "home-usage-per-pbx").await;
    let rows: Vec<&str> = usage.lines().collect();
    assert!(
        usage.contains("$0.12") && usage.contains("1 calls"),
        "the first PBX's call: {usage}"
    );
    assert!(
        rows.iter().any(|r| r.contains("Branch office")) && usage.contains("$178.00"),
        "the second PBX's setup and first month: {usage}"
    );
    let total = text_of("[data-testid=usage-total]").await;
    assert!(total.starts_with("$178.12"), "the account's total: {total}");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_double_submitted_pbx_order_is_one_order_and_one_charge() {
    let app = TestApp::spawn().await;
    let (account, _, username, password) = a_client_with_a_pbx(&app, "doubler", 500_000_000).await;
    let http = app.signed_in(&username, &password).await;
    let page = app.page(&http, "/portal/pbxes/new").await;
    let key_at = page
        .find("name=\"request_key\" value=\"")
        .expect("a one-time key")
        + "name=\"request_key\" value=\"".len();
    let key = page[key_at..key_at + page[key_at..].find('"').expect("its end")].to_owned();
    let before = counts(&app).await;
    let fields = [("plan", "office"), ("request_key", key.as_str())];
    let submit = || {
        post_form(
            &app,
            &http,
            "/portal/pbxes/new",
            "/portal/pbxes/new",
            &fields,
        )
    };
    let (one, two) = tokio::join!(submit(), submit());
    let three = submit().await;
    let places: Vec<String> = [one, two, three]
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 303, "each submission goes to the order");
            r.headers()["location"].to_str().expect("text").to_owned()
        })
        .collect();
    assert!(places.iter().all(|p| p == &places[0]), "{places:?}");
    let after = counts(&app).await;
    assert_eq!(
        after,
        (before.0 + 1, before.1 + 1, before.2 + 1),
        "one order, one PBX, one job"
    );
    let mut conn = app.conn().await;
    assert_eq!(
        balance_of(&mut conn, account.0).await,
        500_000_000 - 178_000_000,
        "charged once"
    );
    let charges: i64 = journal_transactions::table
        .filter(journal_transactions::kind.eq("charge"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("charges");
    assert_eq!(charges, 1);

    // Provisioned as at signup: the plan billed monthly, its first month paid.
    crate::commerce::run_jobs(&app, 2).await;
    let pbx: (i64, String) = pbxes::table
        .filter(pbxes::account_id.eq(account.0))
        .order(pbxes::id.desc())
        .select((pbxes::id, pbxes::state))
        .first(&mut conn)
        .await
        .expect("the PBX");
    assert_eq!(pbx.1, "active");
    let next_period: i32 = recurring_items::table
        .filter(recurring_items::subject_id.eq(pbx.0))
        .select(recurring_items::next_period)
        .first(&mut conn)
        .await
        .expect("its plan billed monthly");
    assert_eq!(next_period, 1, "the first month was paid with the order");
}

#[tokio::test(flavor = "multi_thread")]
async fn too_little_balance_charges_nothing_and_provisions_nothing() {
    let app = TestApp::spawn().await;
    let (account, _, username, password) = a_client_with_a_pbx(&app, "shorty", 5_000_000).await;
    let http = app.signed_in(&username, &password).await;
    let before = counts(&app).await;
    let response = post_form(
        &app,
        &http,
        "/portal/pbxes/new",
        "/portal/pbxes/new",
        &[("plan", "office"), ("request_key", "shorty-order-key-0001")],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("the page");
    assert!(page.contains("$173.00</strong> is missing"), "{page}");
    assert!(
        page.contains("name=\"amount\" value=\"173.00\""),
        "the top-up offered covers the shortfall"
    );
    assert_eq!(counts(&app).await, before, "no order, no PBX, no job");
    assert_eq!(
        balance_of(&mut app.conn().await, account.0).await,
        5_000_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_clients_pbx_cannot_be_named_nor_ordered_for() {
    let app = TestApp::spawn().await;
    let (_, _, username, password) = a_client_with_a_pbx(&app, "intruder", 500_000_000).await;
    let (victim, victims_pbx, _, _) = a_client_with_a_pbx(&app, "victim", 500_000_000).await;
    let http = app.signed_in(&username, &password).await;
    let before = counts(&app).await;

    let named = app
        .graphql(
            &http,
            "mutation($p: ID!) { setPbxLabel(pbxId: $p, label: \"Mine now\") { label } }",
            serde_json::json!({ "p": victims_pbx.to_string() }),
        )
        .await;
    assert_eq!(
        named["errors"][0]["message"],
        format!("No PBX {victims_pbx}.")
    );
    let ordered = app
        .graphql(
            &http,
            "mutation($a: ID!) { orderPbx(plan: \"office\", requestKey: \"intruder-order-key-01\", accountId: $a) { new } }",
            serde_json::json!({ "a": victim.0.to_string() }),
        )
        .await;
    assert_eq!(
        ordered["errors"][0]["message"],
        format!("No account {}.", victim.0)
    );
    let response = post_form(
        &app,
        &http,
        "/portal/pbxes",
        &format!("/portal/pbxes/{victims_pbx}/label"),
        &[("label", "Mine now")],
    )
    .await;
    assert_eq!(response.status(), 422, "the form is refused as well");

    let mut conn = app.conn().await;
    let label: String = pbxes::table
        .find(victims_pbx)
        .select(pbxes::label)
        .first(&mut conn)
        .await
        .expect("the PBX");
    assert_eq!(label, "", "nothing changed");
    assert_eq!(counts(&app).await, before, "nothing ordered");
    assert_eq!(balance_of(&mut conn, victim.0).await, 500_000_000);
    let audited: i64 = audit_log::table
        .filter(audit_log::subject.eq(format!("pbx:{victims_pbx}")))
        .count()
        .get_result(&mut conn)
        .await
        .expect("audit");
    assert_eq!(audited, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_statement_and_the_reports_split_the_month_by_pbx() {
    let app = TestApp::spawn().await;
    let (account, first, username, password) =
        a_client_with_a_pbx(&app, "splitter", 500_000_000).await;
    a_call(&app, account, first, 250_000).await;
    let http = app.signed_in(&username, &password).await;
    let ordered = post_form(
        &app,
        &http,
        "/portal/pbxes/new",
        "/portal/pbxes/new",
        &[("plan", "office"), ("request_key", "splitter-order-key-01")],
    )
    .await;
    assert_eq!(ordered.status(), 303);
    let second: i64 = pbxes::table
        .filter(pbxes::account_id.eq(account.0))
        .filter(pbxes::id.ne(first))
        .select(pbxes::id)
        .first(&mut app.conn().await)
        .await
        .expect("the second PBX");
    let named = post_form(
        &app,
        &http,
        "/portal/pbxes",
        &format!("/portal/pbxes/{second}/label"),
        &[("label", "Warehouse")],
    )
    .await;
    assert_eq!(named.status(), 303);

    let statement = app.page(&http, "/portal/statements").await;
    let table = &statement[statement.find("id=\"per-pbx\"").expect("the split")..];
    let table = &table[..table.find("</table>").expect("its end")];
    let row_of = |name: &str| {
        let at = table
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {table}"));
        table[at..]
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let first_row = row_of(&format!("#{first}<"));
    assert!(
        first_row.contains("$0.25") && first_row.contains("$0.00"),
        "{first_row}"
    );
    let second_row = row_of(&format!("#{second} Warehouse"));
    assert!(second_row.contains("$178.00"), "{second_row}");

    for path in ["/portal/reports", "/portal"] {
        let page = app.page(&http, path).await;
        let usage = &page[page.find("id=\"usage-per-pbx\"").expect("usage per PBX")..];
        assert!(usage.contains(&format!("#{second} Warehouse")), "{path}");
        assert!(usage.contains("$178.25"), "{path}: the account's total");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_name_a_clients_pbx_and_the_audit_log_says_who_and_what() {
    let app = TestApp::spawn().await;
    let (_, pbx, username, password) = a_client_with_a_pbx(&app, "named", 0).await;
    let (_, staff_password) = app.user("namer", switchboard_core::Role::Staff, None).await;
    let staff = app.signed_in("namer", &staff_password).await;
    let page = format!("/admin/pbxes/{pbx}");
    let response = post_form(
        &app,
        &staff,
        &page,
        &format!("/admin/pbxes/{pbx}/label"),
        &[("label", "  Front desk ")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(app
        .page(&staff, &page)
        .await
        .contains("value=\"Front desk\""));
    let (actor, before, after): (String, Option<String>, Option<String>) = audit_log::table
        .filter(audit_log::action.eq("pbx.set_label"))
        .filter(audit_log::subject.eq(format!("pbx:{pbx}")))
        .select((audit_log::actor, audit_log::before, audit_log::after))
        .first(&mut app.conn().await)
        .await
        .expect("an audit record");
    assert_eq!(actor, "namer");
    assert_eq!(before.as_deref(), Some(r#"{"label":""}"#));
    assert_eq!(after.as_deref(), Some(r#"{"label":"Front desk"}"#));
    let client = app.signed_in(&username, &password).await;
    let home = app.page(&client, "/portal").await;
    assert!(
        home.contains(&format!("#{pbx} Front desk")),
        "the client sees the name"
    );
    let too_long = post_form(
        &app,
        &staff,
        &page,
        &format!("/admin/pbxes/{pbx}/label"),
        &[("label", &"x".repeat(61))],
    )
    .await;
    assert_eq!(
        too_long.status(),
        422,
        "a name past 60 characters is refused"
    );
}

/// The home and the report ask for this month and the last together, and
/// both are read in one statement: each call counts in its own month, in
/// the account's time zone, for its own PBX, and a month asked alone reads
/// the same.
#[tokio::test(flavor = "multi_thread")]
async fn this_month_and_the_last_are_read_together_and_each_holds_its_own_calls() {
    use switchboard_core::billing::per_pbx;
    use switchboard_core::schema::accounts;
    let app = TestApp::spawn().await;
    let (account, first, username, password) =
        a_client_with_a_pbx(&app, "two-months", 10_000_000).await;
    let plan: i64 = pbxes::table
        .find(first)
        .select(pbxes::plan_id)
        .first(&mut app.conn().await)
        .await
        .expect("the plan");
    let second = app.pbx(account, plan, "active", "pbx-two-months-b").await;
    let zone_name = "America/New_York";
    diesel::update(accounts::table.find(account.0))
        .set(accounts::time_zone.eq(zone_name))
        .execute(&mut app.conn().await)
        .await
        .expect("a time zone");
    let zone: chrono_tz::Tz = zone_name.parse().expect("a zone");
    let now = chrono::Utc::now();
    let (this_from, _) = switchboard_core::calls::month_bounds(now, zone, 0);
    let (last_from, last_to) = switchboard_core::calls::month_bounds(now, zone, 1);
    let minute = chrono::Duration::minutes(1);
    // Calls are kept in one table per (UTC) month; these go back further
    // than a new database has tables for.
    let months = switchboard_core::calls::months::months_of([
        last_from - minute,
        last_from,
        last_to - minute,
        this_from,
        now,
    ]);
    switchboard_core::calls::months::make_ready(&mut app.conn().await, &months)
        .await
        .expect("the months' tables");
    // Last month: two calls of the first PBX, at its first and last minute.
    a_call_at(&app, account, first, 100, last_from).await;
    a_call_at(&app, account, first, 200, last_to - minute).await;
    // The month before: not in either.
    a_call_at(&app, account, first, 50_000, last_from - minute).await;
    // This month: one call of each PBX.
    a_call_at(&app, account, first, 400, this_from).await;
    a_call_at(&app, account, second, 800, this_from.max(now - minute)).await;

    let mut conn = app.conn().await;
    let months = per_pbx::months(&mut conn, account, zone_name, "USD", now, &[0, 1])
        .await
        .expect("both months");
    let figures = |month: &per_pbx::Month| -> Vec<(Option<i64>, i64, i64)> {
        month
            .lines
            .iter()
            .map(|l| (l.pbx_id, l.calls, l.calls_cost.0))
            .collect()
    };
    assert_eq!(months.len(), 2);
    assert_eq!((months[0].from, months[1].from), (this_from, last_from));
    assert_eq!(
        figures(&months[0]),
        [(Some(first), 1, 400), (Some(second), 1, 800)]
    );
    assert_eq!(
        figures(&months[1]),
        [(Some(first), 2, 300), (Some(second), 0, 0)]
    );
    for (back, together) in [0, 1].into_iter().zip(&months) {
        let alone = per_pbx::month(&mut conn, account, zone_name, "USD", now, back)
            .await
            .expect("the month alone");
        assert_eq!(&alone, together, "{back}");
    }

    let http = app.signed_in(&username, &password).await;
    let answer = app
        .graphql(
            &http,
            "{ viewer { account { \
               thisMonth: pbxUsage(monthsBack: 0) { total { calls callsCost { micros } } } \
               lastMonth: pbxUsage(monthsBack: 1) { total { calls callsCost { micros } } } \
               before: pbxUsage(monthsBack: 2) { total { calls callsCost { micros } } } \
             } } }",
            serde_json::json!({}),
        )
        .await;
    let account = &answer["data"]["viewer"]["account"];
    let total = |name: &str| {
        (
            account[name]["total"]["calls"].as_i64(),
            account[name]["total"]["callsCost"]["micros"].clone(),
        )
    };
    assert_eq!(
        total("thisMonth"),
        (Some(2), serde_json::json!("1200")),
        "{answer}"
    );
    assert_eq!(
        total("lastMonth"),
        (Some(2), serde_json::json!("300")),
        "{answer}"
    );
    assert_eq!(
        total("before"),
        (Some(1), serde_json::json!("50000")),
        "{answer}"
    );
}

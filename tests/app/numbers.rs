//! Phone numbers: staff load the inventory from a rate-center file (bad
//! rows previewed, nothing changed); clients order numbers from the
//! balance, once, and one number is sold once; the controller assigns
//! them or staff are told; a release stops the fee after the paid period
//! and quarantines the number; calls to a number are recognized and shown.

use chrono::{Duration, Utc};
use diesel::{ExpressionMethods, QueryDsl, TextExpressionMethods};
use diesel_async::RunQueryDsl;
use serde_json::json;
use switchboard_core::billing::recurring;
use switchboard_core::numbers::ordering::{self, NewOrder, Notices, OrderError};
use switchboard_core::numbers::{inventory, Status};
use switchboard_core::schema::{emails, number_orders, numbers};

use switchboard_core::{AccountId, AccountKind, Role};
use switchboard_graphql::Viewer;

use crate::calls::balance_of;
use crate::harness::TestApp;

/// Four numbers in two Illinois rate centers and one in New York.
pub(crate) const INVENTORY: &str = "TN;NPA;NXX;Rate Center;State;City;LATA;NRC;MRC\n\
    (312) 555-0142;312;555;CHICAGO;IL;Chicago;358;1.00;0.85\n\
    312-555-0143;312;555;CHICAGO;IL;Chicago;358;1.00;0.85\n\
    1-847-555-0100;847;555;EVANSTON;IL;Evanston;358;1.00;1.25\n\
    +1 212 555 0100;212;555;NWYRCYZN01;NY;New York;132;2.00;1.50\n";

pub(crate) const IMPORT: &str =
    "mutation($csv: String!) { importNumbers(csv: $csv) { rows new updated held errors { line column reason } } }";
const PREVIEW: &str =
    "query($csv: String!) { numberImportPreview(csv: $csv) { rows new updated held errors { line column reason } } }";
pub(crate) const ORDER: &str = "mutation($pbx: ID!, $numbers: [ID!]!, $key: String!) { orderNumbers(pbxId: $pbx, numberIds: $numbers, requestKey: $key) { id total { micros } replayed numbers { e164 status } } }";

pub(crate) async fn run(
    app: &TestApp,
    viewer: &Viewer,
    operation: &str,
    variables: serde_json::Value,
) -> async_graphql::Response {
    let request = async_graphql::Request::new(operation)
        .variables(async_graphql::Variables::from_json(variables))
        .data(viewer.clone());
    async_graphql::Schema::execute(&app.state.schema, request).await
}

pub(crate) async fn staff(app: &TestApp, username: &str) -> Viewer {
    let (id, _) = app.user(username, Role::Staff, None).await;
    Viewer::signed_in(app.session_user(id).await, "192.0.2.10")
}

/// A client with `balance` and an active PBX: (viewer, account, PBX).
pub(crate) async fn customer(
    app: &TestApp,
    username: &str,
    balance: i64,
) -> (Viewer, AccountId, i64) {
    let account = app
        .account(
            &format!("{username} Co"),
            AccountKind::Retail,
            None,
            balance,
        )
        .await;
    let (user, _) = app.user(username, Role::Client, Some(account)).await;
    let pbx = pbx_of(app, account, username).await;
    (
        Viewer::signed_in(app.session_user(user).await, "192.0.2.20"),
        account,
        pbx,
    )
}

/// An active PBX of `account`, on a plan of its own named after `name`.
pub(crate) async fn pbx_of(app: &TestApp, account: AccountId, name: &str) -> i64 {
    let plan = switchboard_core::commerce::plans::create(
        &mut app.conn().await,
        &switchboard_core::commerce::plans::PlanInput {
            slug: format!("{name}-plan"),
            name: format!("{name} plan"),
            description: "Five desks".into(),
            currency: "USD".into(),
            setup_fee: "10".into(),
            monthly_fee: "20".into(),
            included_extensions: "5".into(),
            active: true,
            position: 0,
            calling_plan_id: None,
        },
    )
    .await
    .expect("a plan");
    app.pbx(account, plan, "active", &format!("pbx-{name}"))
        .await
}

async fn number_id(app: &TestApp, e164: &str) -> i64 {
    numbers::table
        .filter(numbers::e164.eq(e164))
        .select(numbers::id)
        .first(&mut app.conn().await)
        .await
        .expect("the number")
}

async fn inventory_of(app: &TestApp) -> Vec<(String, String, i64)> {
    numbers::table
        .order(numbers::e164)
        .select((numbers::e164, numbers::status, numbers::monthly_fee))
        .load(&mut app.conn().await)
        .await
        .expect("numbers")
}

async fn emails_about(app: &TestApp, subject: &str) -> Vec<(String, String)> {
    emails::table
        .filter(emails::subject.like(format!("%{subject}%")))
        .select((emails::to_address, emails::subject))
        .load(&mut app.conn().await)
        .await
        .expect("emails")
}

fn notices(app: &TestApp) -> Notices<'_> {
    Notices {
        staff_address: &app.jobs.settings.email.staff_address,
        base_url: app.jobs.settings.base_url(),
        controller_assigns: app.jobs.controller.assigns_numbers(),
        controller_unassigns: app.jobs.controller.unassigns_numbers(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_with_a_bad_row_is_previewed_row_by_row_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    let imported = run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    let before = inventory_of(&app).await;
    assert_eq!(before.len(), 4);
    assert_eq!(before[0].0, "+12125550100", "stored E.164");

    // A new price for one number, and four bad rows.
    let bad = "number,rate_center,state,tier,setup_fee,monthly_fee\n\
               312-555-0142,CHICAGO,IL,,1.00,9.99\n\
               312-555-01,CHICAGO,IL,,1.00,0.85\n\
               312-555-0142,CHICAGO,IL,,1.00,0.85\n\
               312-555-0150,CHICAGO,IL,platinum,,\n\
               312-555-0151,CHICAGO,IL,,free,0.85\n";
    let preview = run(&app, &staff, PREVIEW, json!({ "csv": bad })).await;
    assert!(preview.errors.is_empty(), "{:?}", preview.errors);
    let preview = preview.data.into_json().expect("json");
    let errors: Vec<(i64, String)> = preview["numberImportPreview"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().expect("line"),
                e["column"].as_str().expect("column").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (3, "number".to_owned()),
            (4, "number".to_owned()),
            (5, "tier".to_owned()),
            (6, "setup_fee".to_owned()),
        ]
    );
    let refused = run(&app, &staff, IMPORT, json!({ "csv": bad })).await;
    assert!(
        refused.errors[0].message.contains("nothing was imported"),
        "{:?}",
        refused.errors
    );
    assert_eq!(inventory_of(&app).await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn re_uploading_updates_available_numbers_and_never_touches_ordered_ones() {
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    let (client, _, pbx) = customer(&app, "olga", 50_000_000).await;
    let ordered = number_id(&app, "+13125550142").await;
    let placed = run(
        &app,
        &client,
        ORDER,
        json!({ "pbx": pbx.to_string(), "numbers": [ordered.to_string()], "key": "k1" }),
    )
    .await;
    assert!(placed.errors.is_empty(), "{:?}", placed.errors);

    let repriced = INVENTORY.replace("0.85", "0.95");
    let again = run(&app, &staff, IMPORT, json!({ "csv": repriced })).await;
    let again = again.data.into_json().expect("json");
    assert_eq!(again["importNumbers"]["updated"], 3);
    assert_eq!(again["importNumbers"]["held"], json!(["+13125550142"]));
    let stored = inventory_of(&app).await;
    let fee = |e164: &str| {
        stored
            .iter()
            .find(|(n, _, _)| n == e164)
            .map(|(_, status, fee)| (status.clone(), *fee))
    };
    assert_eq!(fee("+13125550142"), Some(("ordered".into(), 850_000)));
    assert_eq!(fee("+13125550143"), Some(("available".into(), 950_000)));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_racing_for_one_number_get_one_sale() {
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    let (first, first_account, first_pbx) = customer(&app, "ann", 20_000_000).await;
    let (second, second_account, second_pbx) = customer(&app, "bob", 20_000_000).await;
    let number = number_id(&app, "+18475550100").await.to_string();

    for round in 0..5 {
        let (a, b) = tokio::join!(
            run(
                &app,
                &first,
                ORDER,
                json!({ "pbx": first_pbx.to_string(), "numbers": [number], "key": format!("a{round}") }),
            ),
            run(
                &app,
                &second,
                ORDER,
                json!({ "pbx": second_pbx.to_string(), "numbers": [number], "key": format!("b{round}") }),
            ),
        );
        let sold: Vec<bool> = [&a, &b].iter().map(|r| r.errors.is_empty()).collect();
        if round == 0 {
            assert_eq!(sold.iter().filter(|s| **s).count(), 1, "{a:?} {b:?}");
        } else {
            assert_eq!(sold, [false, false], "sold once, ever");
        }
        for refused in [&a, &b].iter().filter(|r| !r.errors.is_empty()) {
            assert!(
                refused.errors[0].message.contains("was just taken"),
                "{:?}",
                refused.errors
            );
        }
    }
    let mut conn = app.conn().await;
    let balances = (
        balance_of(&mut conn, first_account.0).await,
        balance_of(&mut conn, second_account.0).await,
    );
    // $1.00 setup and $1.25 for the first month, charged to one of them once.
    assert!(
        balances == (17_750_000, 20_000_000) || balances == (20_000_000, 17_750_000),
        "{balances:?}"
    );
    let orders: i64 = number_orders::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(orders, 1);
    assert_eq!(emails_about(&app, "Configure +18475550100").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ordering_with_too_little_balance_is_refused_before_anything_is_reserved() {
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    let (client, account, pbx) = customer(&app, "poppy", 2_000_000).await;
    let wanted = [
        number_id(&app, "+13125550142").await.to_string(),
        number_id(&app, "+13125550143").await.to_string(),
    ];
    let refused = run(
        &app,
        &client,
        ORDER,
        json!({ "pbx": pbx.to_string(), "numbers": wanted, "key": "k" }),
    )
    .await;
    assert!(
        refused.errors[0].message.contains("add funds first"),
        "{:?}",
        refused.errors
    );
    assert!(refused.errors[0].message.contains("$3.70"));
    assert_eq!(
        balance_of(&mut app.conn().await, account.0).await,
        2_000_000
    );
    assert!(inventory_of(&app)
        .await
        .iter()
        .all(|(_, status, _)| status == "available"));
    assert!(emails_about(&app, "Configure").await.is_empty());

    // One of them fits, and ordering it twice with the same form charges once.
    let one = json!({ "pbx": pbx.to_string(), "numbers": [wanted[0]], "key": "k2" });
    let placed = run(&app, &client, ORDER, one.clone()).await;
    assert!(placed.errors.is_empty(), "{:?}", placed.errors);
    let again = run(&app, &client, ORDER, one).await;
    let again = again.data.into_json().expect("json");
    assert_eq!(again["orderNumbers"]["replayed"], true);
    assert_eq!(again["orderNumbers"]["numbers"][0]["status"], "ORDERED");
    assert_eq!(balance_of(&mut app.conn().await, account.0).await, 150_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_number_is_billed_to_the_end_of_its_paid_period_then_rests_in_quarantine() {
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    let (_, account, pbx) = customer(&app, "rita", 10_000_000).await;
    let number = number_id(&app, "+12125550100").await;
    let mut conn = app.conn().await;
    let ordered_at = Utc::now();
    ordering::order(
        &mut conn,
        &NewOrder {
            account,
            pbx,
            numbers: vec![number],
            request_key: "k".into(),
            ordered_by: None,
            actor: "rita".into(),
        },
        notices(&app),
        ordered_at,
    )
    .await
    .expect("ordered");
    assert_eq!(balance_of(&mut conn, account.0).await, 6_500_000);

    // The clock moves on: the second month is billed from the balance.
    let second_month = ordered_at + Duration::days(32);
    recurring::bill_due(&mut conn, second_month, 100)
        .await
        .expect("billed");
    assert_eq!(balance_of(&mut conn, account.0).await, 5_000_000);

    // Released two days into it: that month stays paid, nothing after it is billed.
    let released_at = ordered_at + Duration::days(33);
    let released = ordering::release(
        &mut conn,
        Some(account),
        number,
        "rita",
        30,
        notices(&app),
        released_at,
    )
    .await
    .expect("released");
    assert_eq!(released.number.status, "quarantined");
    let paid_until = released.paid_until.expect("a paid period");
    assert!(paid_until > released_at && paid_until < released_at + Duration::days(31));
    recurring::bill_due(&mut conn, ordered_at + Duration::days(200), 100)
        .await
        .expect("billed");
    assert_eq!(balance_of(&mut conn, account.0).await, 5_000_000);
    assert_eq!(
        emails_about(&app, "Take +12125550100 off").await.len(),
        1,
        "no unassign command: staff are told"
    );

    // Nobody can have it for thirty days; then it is for sale again.
    let in_quarantine = released_at + Duration::days(29);
    assert!(!ordering::is_available(&mut conn, number, in_quarantine)
        .await
        .expect("query"));
    let (_, other, other_pbx) = customer(&app, "sid", 10_000_000).await;
    let early = ordering::order(
        &mut conn,
        &NewOrder {
            account: other,
            pbx: other_pbx,
            numbers: vec![number],
            request_key: "early".into(),
            ordered_by: None,
            actor: "sid".into(),
        },
        notices(&app),
        in_quarantine,
    )
    .await;
    assert!(matches!(early, Err(OrderError::Taken(_))), "{early:?}");
    let after = released_at + Duration::days(31);
    assert!(ordering::is_available(&mut conn, number, after)
        .await
        .expect("query"));
    let history: Vec<String> = inventory::history(&mut conn, number)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(history, ["imported", "ordered", "released"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inbound_call_to_an_ordered_number_is_shown_per_number_and_charged() {
    use switchboard_core::calls::cdr::RawCdr;
    use switchboard_core::calls::ingest;
    let app = TestApp::spawn().await;
    let staff = staff(&app, "stella").await;
    run(&app, &staff, IMPORT, json!({ "csv": INVENTORY })).await;
    let (_, client_http, pbx, account) = crate::calls::pbx_with_rates(&app).await;
    let number = number_id(&app, "+13125550142").await;
    let mut conn = app.conn().await;
    ordering::order(
        &mut conn,
        &NewOrder {
            account: AccountId(account),
            pbx,
            numbers: vec![number],
            request_key: "k".into(),
            ordered_by: None,
            actor: "caller".into(),
        },
        notices(&app),
        Utc::now(),
    )
    .await
    .expect("ordered");

    // The PBX wrote the DID without +1 and the call reached an extension
    // through a context that names no trunk.
    let at = Utc::now() - Duration::minutes(10);
    let call = RawCdr {
        calldate: at,
        src: "17735550111".into(),
        dst: "201".into(),
        dcontext: "from-internal".into(),
        channel: "PJSIP/provider-000001".into(),
        dstchannel: "PJSIP/201-000002".into(),
        lastapp: "Dial".into(),
        duration: 130,
        billsec: 120,
        disposition: "ANSWERED".into(),
        uniqueid: "1764000000.1".into(),
        did: Some("3125550142".into()),
        ..RawCdr::default()
    };
    ingest(&mut conn, &app.state.rate_tables, pbx, "push", &[call], &[])
        .await
        .expect("ingested");
    let month = at.format("%Y-%m").to_string();
    let report = app
        .graphql(
            &client_http,
            "query($month: String!) { viewer { account { inboundCallsByNumber(month: $month) { e164 calls seconds cost { micros } } } } }",
            json!({ "month": month }),
        )
        .await;
    let rows = &report["data"]["viewer"]["account"]["inboundCallsByNumber"];
    assert_eq!(rows[0]["e164"], "+13125550142", "{report}");
    assert_eq!(rows[0]["calls"], 1);
    assert_eq!(rows[0]["seconds"], 120);
    // Two minutes at the calling plan's inbound $0.006.
    assert_eq!(rows[0]["cost"]["micros"], "12000");

    // The client's call report lists it under its number.
    let which = if month == Utc::now().format("%Y-%m").to_string() {
        "current"
    } else {
        "last"
    };
    let page = app
        .page(&client_http, &format!("/portal/reports?month={which}"))
        .await;
    let table = &page[page
        .find("inbound-per-number")
        .unwrap_or_else(|| panic!("the report lists inbound calls per number: {page}"))..];
    let table = &table[..table.find("</table>").expect("the table's end")];
    assert!(
        table.contains("+13125550142") && table.contains("2.0") && table.contains("$0.01"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_failing_to_assign_leaves_the_number_ordered_and_staff_told() {
    let app = TestApp::spawn_with(|settings| {
        let (assign, unassign) =
            switchboard_core::config::ControllerCommands::reference_number_commands();
        settings.controller.commands.assign_number = Some(assign);
        settings.controller.commands.unassign_number = Some(unassign);
    })
    .await;
    let staff_viewer = staff(&app, "stella").await;
    run(&app, &staff_viewer, IMPORT, json!({ "csv": INVENTORY })).await;
    let (client, _, pbx) = customer(&app, "carl", 20_000_000).await;
    let created = at_the_controller(&app, pbx, "carl").await;
    let number = number_id(&app, "+13125550143").await;
    app.simulator
        .arm(switchboard_controller::simulator::Faults {
            fail: 3,
            ..Default::default()
        });
    let placed = run(
        &app,
        &client,
        ORDER,
        json!({ "pbx": pbx.to_string(), "numbers": [number.to_string()], "key": "k" }),
    )
    .await;
    assert!(placed.errors.is_empty(), "{:?}", placed.errors);

    switchboard_jobs::run_due(&app.pool, &app.jobs)
        .await
        .expect("jobs ran");
    let stored = inventory::get(&mut app.conn().await, number)
        .await
        .expect("query")
        .expect("the number");
    assert_eq!(stored.status_at(Utc::now()), Status::Ordered);
    assert!(stored.last_error.is_some());
    assert_eq!(
        emails_about(&app, "did not assign +13125550143").await,
        [(
            app.jobs.settings.email.staff_address.clone(),
            format!("The controller did not assign +13125550143 to PBX #{pbx}")
        )]
    );

    // The controller works again: the retry assigns it and it is active.
    app.simulator.arm(Default::default());
    diesel::update(switchboard_core::schema::background_jobs::table)
        .set(switchboard_core::schema::background_jobs::run_after.eq(Utc::now()))
        .execute(&mut app.conn().await)
        .await
        .expect("due now");
    switchboard_jobs::run_due(&app.pool, &app.jobs)
        .await
        .expect("jobs ran");
    let stored = inventory::get(&mut app.conn().await, number)
        .await
        .expect("query")
        .expect("the number");
    assert_eq!(stored.status, "active");
    let on_pbx = app
        .simulator
        .pbxes()
        .into_iter()
        .find(|p| p.id == created.id)
        .expect("the PBX");
    assert_eq!(on_pbx.numbers, ["+13125550143"]);
}

/// A PBX made at the controller (the simulator) for `pbx`, which now
/// knows its id and host name; the controller's answer.
async fn at_the_controller(
    app: &TestApp,
    pbx: i64,
    owner: &str,
) -> switchboard_controller::Created {
    use switchboard_core::schema::pbxes;
    let created = app
        .jobs
        .controller
        .create(&switchboard_controller::CreatePbx {
            request_id: format!("pbx-{owner}"),
            plan: "office".into(),
            extensions: 5,
            gui_password: "a-long-password".into(),
            account: owner.into(),
        })
        .await
        .expect("a PBX at the controller");
    diesel::update(pbxes::table.find(pbx))
        .set((
            pbxes::controller_id.eq(&created.id),
            pbxes::hostname.eq(&created.hostname),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("its id and host name");
    created
}

/// The inventory loaded, and +1 312 555 0142 ordered by `account` for
/// `pbx`: its id (for the pages' walks).
pub(crate) async fn stocked(app: &TestApp, account: AccountId, pbx: i64) -> i64 {
    let mut conn = app.conn().await;
    // Enough to pay for it, whatever the account had.
    switchboard_core::money::ledger::adjust(
        &mut conn,
        account,
        switchboard_core::Money(10_000_000),
        "credit for a phone number",
        &format!("test:stocked:{}", account.0),
        None,
    )
    .await
    .expect("credited");
    inventory::import(&mut conn, INVENTORY, "USD", "staff", Utc::now())
        .await
        .expect("imported");
    let number = number_id(app, "+13125550142").await;
    ordering::order(
        &mut conn,
        &NewOrder {
            account,
            pbx,
            numbers: vec![number],
            request_key: "stocked".into(),
            ordered_by: None,
            actor: "test".into(),
        },
        notices(app),
        Utc::now(),
    )
    .await
    .expect("ordered");
    number
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_orders_a_number_from_the_rate_center_list() {
    use crate::accessibility::click;
    use crate::browser::{browser, screenshot, sign_in, wait_until};
    use fantoccini::Locator;
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        let (assign, unassign) =
            switchboard_core::config::ControllerCommands::reference_number_commands();
        settings.controller.commands.assign_number = Some(assign);
        settings.controller.commands.unassign_number = Some(unassign);
    })
    .await;
    let _workers = app.start_workers(smtp.port);
    let (_, staff_password) = app.user("stella", Role::Staff, None).await;
    let account = app
        .account("Lakeside Dental", AccountKind::Retail, None, 20_000_000)
        .await;
    let (_, client_password) = app.user("lena", Role::Client, Some(account)).await;
    let pbx = pbx_of(&app, account, "lena").await;
    let created = at_the_controller(&app, pbx, "lena").await;
    let browser = browser().await;

    // Staff paste a carrier's file, preview it and import it.
    sign_in(&browser, &app, "stella", &staff_password).await;
    click(&browser, Locator::LinkText("PBXs")).await;
    click(&browser, Locator::LinkText("Phone numbers")).await;
    browser
        .wait()
        .for_element(Locator::Id("csv"))
        .await
        .expect("the upload form")
        .send_keys(INVENTORY)
        .await
        .expect("pasted");
    click(
        &browser,
        Locator::Css("#upload-inventory button[type=submit]"),
    )
    .await;
    click(
        &browser,
        Locator::Css("#import-inventory button[type=submit]"),
    )
    .await;
    let notice = browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("imported")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("4 new numbers"), "{notice}");
    click(&browser, Locator::Css(".who button")).await;
    wait_until(&browser, |url| {
        url.path() == "/sign-in" || url.path() == "/"
    })
    .await;

    // The client finds Chicago's numbers by state and rate center and orders one.
    sign_in(&browser, &app, "lena", &client_password).await;
    click(&browser, Locator::LinkText("Numbers")).await;
    click(&browser, Locator::LinkText("Find a number")).await;
    click(
        &browser,
        Locator::Css("a[href='/portal/numbers/find?state=IL']"),
    )
    .await;
    click(&browser, Locator::LinkText("CHICAGO")).await;
    click(&browser, Locator::Css("label[for^=number-]")).await;
    screenshot(&browser, "numbers-chosen").await;
    click(&browser, Locator::Css("#order-numbers button[type=submit]")).await;
    let notice = browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("ordered")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("+13125550142"), "{notice}");
    assert!(notice.contains("$1.85"), "{notice}");

    // Staff are told what to configure where; the controller routes it.
    let told = smtp
        .wait_for("the staff's notice", |m| {
            m.data.contains("Subject: Configure +13125550142")
        })
        .await;
    assert!(told.data.contains(&created.hostname), "{}", told.data);
    let started = std::time::Instant::now();
    while !app
        .simulator
        .pbxes()
        .iter()
        .any(|p| p.id == created.id && p.numbers == ["+13125550142"])
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never assigned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let number = number_id(&app, "+13125550142").await;
    while inventory::get(&mut app.conn().await, number)
        .await
        .expect("query")
        .is_none_or(|n| n.status != "active")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never active"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    browser.refresh().await.expect("reload");
    let row = browser
        .wait()
        .for_element(Locator::Css("#numbers tbody tr"))
        .await
        .expect("the number")
        .text()
        .await
        .expect("text");
    assert!(row.contains("Active"), "{row}");
    browser.close().await.expect("close");
}

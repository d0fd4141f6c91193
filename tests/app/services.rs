//! Additional services: a client orders one from the panel, paid from the
//! balance once however often the form is sent, never beyond the balance;
//! staff are emailed and mark it done; a cancelled service is billed to the
//! end of the period paid and no further. A client never reaches another's
//! service.

use chrono::{DateTime, Duration, Utc};
use diesel::{ExpressionMethods, QueryDsl, TextExpressionMethods};
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_core::billing::recurring;
use switchboard_core::commerce::services::{self, NewOrder, Orderer, ServiceInput};
use switchboard_core::money::ledger;
use switchboard_core::schema::{
    emails, journal_transactions, recurring_items, service_orders, users,
};
use switchboard_core::support::tickets::Mail;
use switchboard_core::{AccountId, Money, Role, UserId};
use switchboard_graphql::Viewer;

use crate::accessibility::click;
use crate::browser::{browser, screenshot, sign_in, wait_until};
use crate::harness::{csrf_in, post_form, TestApp};
use crate::smtp::SmtpServer;
use crate::support::{sign_out, text_of};

const MAIL: Mail<'static> = Mail {
    base_url: "http://127.0.0.1",
    staff_address: "staff@switchboard.invalid",
};

/// A service of the catalogue: `attaches_to` is `pbx` or `account`.
pub async fn a_service(
    app: &TestApp,
    name: &str,
    one_time: &str,
    monthly: &str,
    attaches_to: &str,
    needs_staff: bool,
) -> i64 {
    services::create(
        &mut app.conn().await,
        &ServiceInput {
            name: name.into(),
            description: format!("{name}, as the catalogue describes it."),
            currency: "USD".into(),
            one_time_fee: one_time.into(),
            monthly_fee: monthly.into(),
            attaches_to: attaches_to.into(),
            needs_staff,
            offered: true,
        },
    )
    .await
    .expect("a service")
}

/// The first user of `account`: who orders for it in these tests.
async fn user_of(app: &TestApp, account: AccountId) -> Orderer {
    let (id, username): (i64, String) = users::table
        .filter(users::account_id.eq(account.0))
        .order(users::id)
        .select((users::id, users::username))
        .first(&mut app.conn().await)
        .await
        .expect("a user of the account");
    Orderer {
        user_id: UserId(id),
        username,
    }
}

/// `account` orders `service` at `now` (its first user does); the order's id.
pub async fn an_order(
    app: &TestApp,
    account: AccountId,
    service: i64,
    pbx: Option<i64>,
    now: DateTime<Utc>,
) -> i64 {
    let orderer = user_of(app, account).await;
    let key = format!(
        "test-{}-{}",
        account.0,
        now.timestamp_nanos_opt().unwrap_or(0)
    );
    services::order(
        &mut app.conn().await,
        MAIL,
        &orderer,
        account,
        &NewOrder {
            service,
            pbx,
            request_key: &key,
        },
        now,
    )
    .await
    .expect("ordered")
    .order
    .id
}

/// A service ordered by the account `username` belongs to (paid for with
/// funds added first); the order's id. For the pages' accessibility walk.
pub async fn an_ordered_service(app: &TestApp, username: &str) -> (i64, i64) {
    let account: i64 = users::table
        .filter(users::username.eq(username))
        .select(users::account_id)
        .first::<Option<i64>>(&mut app.conn().await)
        .await
        .expect("the user")
        .expect("an account");
    let account = AccountId(account);
    ledger::adjust(
        &mut app.conn().await,
        account,
        Money(30_000_000),
        "for services",
        &format!("test:services:{}", account.0),
        None,
    )
    .await
    .expect("funds");
    let service = a_service(app, "Toll-free number", "15", "6", "account", true).await;
    a_service(app, "Fax to email", "10", "4.99", "pbx", true).await;
    let order = an_order(app, account, service, None, Utc::now()).await;
    (service, order)
}

/// What the authorization matrix's service placeholders stand for, for an
/// asker who sees `account`: `{service}` a free service anyone may order,
/// `{own_service_order}` a new order of `account`, `{waiting_service_order}`
/// a new order waiting for staff.
pub async fn fill_placeholders(app: &TestApp, mut text: String, account: AccountId) -> String {
    if !text.contains("service") {
        return text;
    }
    let find_or_create = |name: &'static str, needs_staff: bool| async move {
        let found = services::catalogue(&mut app.conn().await, false)
            .await
            .expect("the catalogue")
            .into_iter()
            .find(|s| s.name == name);
        match found {
            Some(service) => service.id,
            None => a_service(app, name, "0", "0", "account", needs_staff).await,
        }
    };
    let free = find_or_create("Matrix free", false).await;
    let waiting = find_or_create("Matrix setup", true).await;
    text = text.replace("{service}", &free.to_string());
    while text.contains("{own_service_order}") {
        let order = an_order(app, account, free, None, Utc::now()).await;
        text = text.replacen("{own_service_order}", &order.to_string(), 1);
    }
    while text.contains("{waiting_service_order}") {
        let order = an_order(app, account, waiting, None, Utc::now()).await;
        text = text.replacen("{waiting_service_order}", &order.to_string(), 1);
    }
    text
}

async fn balance(app: &TestApp, account: AccountId) -> Money {
    ledger::balance(&mut app.conn().await, account)
        .await
        .expect("a balance")
}

async fn orders_of(app: &TestApp, account: AccountId) -> Vec<i64> {
    service_orders::table
        .filter(service_orders::account_id.eq(account.0))
        .select(service_orders::id)
        .load(&mut app.conn().await)
        .await
        .expect("orders")
}

/// Emails to staff about services.
async fn service_emails(app: &TestApp) -> i64 {
    emails::table
        .filter(emails::subject.like("Service%"))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count")
}

/// A signed-in client's order form: (the form's CSRF token, its one-time
/// value).
async fn order_form(app: &TestApp, http: &reqwest::Client, service: i64) -> (String, String) {
    let page = app
        .page(http, &format!("/portal/services/order/{service}"))
        .await;
    let csrf = csrf_in(&page).expect("a CSRF token");
    let start = page
        .find("name=\"request_key\" value=\"")
        .expect("a one-time value")
        + "name=\"request_key\" value=\"".len();
    let end = page[start..].find('"').expect("its end");
    (csrf, page[start..start + end].to_owned())
}

async fn post_order(
    app: &TestApp,
    http: &reqwest::Client,
    service: i64,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    http.post(app.url(&format!("/portal/services/order/{service}")))
        .form(fields)
        .send()
        .await
        .expect("POST the order")
}

#[tokio::test(flavor = "multi_thread")]
async fn ordering_twice_with_the_same_form_gives_one_order_and_one_charge() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("dora", 40_000_000).await;
    let service = a_service(&app, "Priority support", "5", "25", "account", false).await;
    let http = app.signed_in(&username, &password).await;
    let (csrf, key) = order_form(&app, &http, service).await;
    let fields = [("csrf", csrf.as_str()), ("request_key", key.as_str())];
    // A double press: both submissions at once, then a third after them.
    let (first, second) = tokio::join!(
        post_order(&app, &http, service, &fields),
        post_order(&app, &http, service, &fields)
    );
    let third = post_order(&app, &http, service, &fields).await;
    let orders = orders_of(&app, account).await;
    assert_eq!(orders.len(), 1, "one order");
    for response in [first, second, third] {
        assert_eq!(response.status(), 303);
        let location = response.headers()["location"].to_str().expect("text");
        assert!(
            location.starts_with(&format!("/portal/services/{}?", orders[0])),
            "{location}"
        );
    }
    assert_eq!(
        balance(&app, account).await,
        Money(10_000_000),
        "one charge"
    );
    let charges: i64 = journal_transactions::table
        .filter(journal_transactions::idempotency_key.like("service-order:%"))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(charges, 1);
    assert_eq!(service_emails(&app).await, 1, "staff told once");
}

#[tokio::test(flavor = "multi_thread")]
async fn too_little_balance_orders_nothing_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("penny", 12_000_000).await;
    let service = a_service(&app, "Toll-free number", "15", "6", "account", true).await;
    let http = app.signed_in(&username, &password).await;
    let (csrf, key) = order_form(&app, &http, service).await;
    let response = post_order(
        &app,
        &http,
        service,
        &[("csrf", csrf.as_str()), ("request_key", key.as_str())],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("the page");
    assert!(
        page.contains(
            "Your balance ($12.00) does not cover this service&#39;s first payment ($21.00)"
        ) || page
            .contains("Your balance ($12.00) does not cover this service's first payment ($21.00)"),
        "{page}"
    );
    assert!(page.contains("Nothing was charged."), "{page}");
    assert!(
        page.contains("href=\"/portal/funds\""),
        "a way to add funds"
    );
    assert!(orders_of(&app, account).await.is_empty(), "no order");
    assert_eq!(balance(&app, account).await, Money(12_000_000));
    let items: i64 = recurring_items::table
        .filter(recurring_items::account_id.eq(account.0))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(items, 0, "nothing billed monthly");
    assert_eq!(service_emails(&app).await, 0, "staff hear of nothing");
    // The page offers a new one-time value: after adding funds, the next
    // press orders.
    ledger::adjust(
        &mut app.conn().await,
        account,
        Money(10_000_000),
        "top-up",
        "test:penny",
        None,
    )
    .await
    .expect("funds");
    let again = page
        .find("name=\"request_key\" value=\"")
        .map(|start| start + "name=\"request_key\" value=\"".len())
        .expect("a one-time value");
    let again = &page[again..again + page[again..].find('"').expect("its end")];
    assert_ne!(again, key);
    let csrf = csrf_in(&page).expect("a CSRF token");
    let response = post_order(
        &app,
        &http,
        service,
        &[("csrf", csrf.as_str()), ("request_key", again)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(balance(&app, account).await, Money(1_000_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_can_neither_read_nor_cancel_nor_attach_to_another_clients_service() {
    let app = TestApp::spawn().await;
    let plan = crate::commerce::seed_plan(&app).await;
    let (mine, my_name, my_password) = app.client("mona", 50_000_000).await;
    let (theirs, their_name, their_password) = app.client("theo", 50_000_000).await;
    let their_pbx = app.pbx(theirs, plan, "active", "pbx-theo").await;
    let recording = a_service(&app, "Call recording storage", "0", "9.99", "pbx", true).await;
    let their_order = an_order(&app, theirs, recording, Some(their_pbx), Utc::now()).await;
    let client = Viewer::signed_in(
        app.session_user(user_of(&app, mine).await.user_id).await,
        "",
    );
    let run = |operation: String| {
        let app = &app;
        let client = client.clone();
        async move {
            // Named in full: the database's `execute` is in scope too.
            switchboard_graphql::SwitchboardSchema::execute(
                &app.state.schema,
                async_graphql::Request::new(operation).data(client),
            )
            .await
        }
    };
    let expected = format!("No service order {their_order}.");
    for operation in [
        format!("{{ serviceOrder(id: \"{their_order}\") {{ name state }} }}"),
        format!("mutation {{ cancelService(serviceOrderId: \"{their_order}\") {{ endsAt }} }}"),
    ] {
        let response = run(operation.clone()).await;
        assert_eq!(response.errors[0].message, expected, "{operation}");
    }
    let unknown = run("{ serviceOrder(id: \"999999\") { name } }".into()).await;
    assert_eq!(
        unknown.errors[0].message, "No service order 999999.",
        "unknown and foreign ids read alike"
    );
    let attach = run(format!(
        "mutation {{ orderService(input: {{ serviceId: \"{recording}\", pbxId: \"{their_pbx}\", requestKey: \"mona-1\" }}) {{ id }} }}"
    ))
    .await;
    assert!(!attach.errors.is_empty(), "another's PBX");
    assert!(
        format!("{:?}", attach.errors[0].extensions).contains("is not one of your working PBXs"),
        "{:?}",
        attach.errors
    );
    // Nothing changed: their order stands, none was made for the client,
    // and neither balance moved.
    let (cancelled, ends): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = service_orders::table
        .find(their_order)
        .select((service_orders::cancelled_at, service_orders::ends_at))
        .first(&mut app.conn().await)
        .await
        .expect("their order");
    assert_eq!((cancelled, ends), (None, None));
    assert!(orders_of(&app, mine).await.is_empty());
    assert_eq!(balance(&app, mine).await, Money(50_000_000));
    assert_eq!(balance(&app, theirs).await, Money(40_010_000));
    // Nor through the pages.
    let http = app.signed_in(&my_name, &my_password).await;
    let page = http
        .get(app.url(&format!("/portal/services/{their_order}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 404);
    let theo = app.signed_in(&their_name, &their_password).await;
    assert_eq!(
        theo.get(app.url(&format!("/portal/services/{their_order}")))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_ends_billing_at_the_end_of_the_period_paid() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("carla", 100_000_000).await;
    let fax = a_service(&app, "Fax to email", "5", "10", "account", false).await;
    let ordered = DateTime::parse_from_rfc3339("2031-01-31T10:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let order = an_order(&app, account, fax, None, ordered).await;
    assert_eq!(
        balance(&app, account).await,
        Money(85_000_000),
        "fee and first month"
    );

    // A month on, the second month is charged.
    let mut conn = app.conn().await;
    let run = recurring::bill_due(&mut conn, ordered + Duration::days(29), 100)
        .await
        .expect("billed");
    assert_eq!(run.charged, 1);
    assert_eq!(balance(&app, account).await, Money(75_000_000));

    // Cancelled ten days into it: it runs to the end of that month.
    let cancelled_at = ordered + Duration::days(38);
    let cancelled = {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| services::cancel(conn, MAIL, order, cancelled_at).await)
            .await
            .expect("cancelled")
    };
    let ends = DateTime::parse_from_rfc3339("2031-03-31T10:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    assert_eq!(cancelled.ends_at, Some(ends));
    assert_eq!(
        cancelled.status(ends - Duration::seconds(1)),
        services::Status::Active
    );
    assert_eq!(cancelled.status(ends), services::Status::Ended);
    assert_eq!(cancelled.next_charge_at(cancelled_at), None);

    // Half a year on, nothing more was charged, and nothing refunded.
    for months in 2..=6 {
        recurring::bill_due(&mut conn, ordered + Duration::days(31 * months), 100)
            .await
            .expect("billed");
    }
    assert_eq!(balance(&app, account).await, Money(75_000_000));
    // Cancelling again changes nothing.
    let again = {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| {
            services::cancel(conn, MAIL, order, cancelled_at + Duration::days(5)).await
        })
        .await
        .expect("cancelled")
    };
    assert_eq!(again.ends_at, Some(ends));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_orders_a_service_and_staff_are_told() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn().await;
    let _workers = app.start_workers(smtp.port);
    let plan = crate::commerce::seed_plan(&app).await;
    let (account, client, client_password) = app.client("olive", 50_000_000).await;
    let pbx = app.pbx(account, plan, "active", "pbx-olive").await;
    a_service(&app, "Call recording storage", "0", "9.99", "pbx", true).await;
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let browser = browser().await;

    // The client orders call recording for their PBX, paid from the balance.
    sign_in(&browser, &app, &client, &client_password).await;
    click(&browser, Locator::LinkText("Services")).await;
    click(
        &browser,
        Locator::Css("a[aria-label='Order Call recording storage']"),
    )
    .await;
    assert_eq!(
        text_of(&browser, "[data-testid=first-payment]").await,
        "$9.99"
    );
    click(&browser, Locator::Css("#order-service button[type=submit]")).await;
    wait_until(&browser, |url| {
        url.query().is_some_and(|q| q.contains("done="))
    })
    .await;
    assert_eq!(
        text_of(&browser, "[data-testid=service-state]").await,
        "Paid, waiting for staff to set it up"
    );
    screenshot(&browser, "service-ordered").await;
    assert_eq!(balance(&app, account).await, Money(40_010_000));
    let order = orders_of(&app, account).await[0];

    // Staff hear of it by email, with where to mark it done.
    let staff = app.jobs.settings.email.staff_address.clone();
    let told = smtp
        .wait_for("the staff's email", |m| {
            m.to.iter().any(|to| to.contains(&staff)) && m.data.contains("Service to set up")
        })
        .await;
    assert!(told.data.contains(&format!("PBX #{pbx}")), "{}", told.data);
    assert!(
        told.data
            .contains(&format!("/admin/service-orders/{order}")),
        "{}",
        told.data
    );
    sign_out(&browser).await;

    // Staff find it waiting and mark it done.
    sign_in(&browser, &app, "sam", &staff_password).await;
    browser
        .goto(&app.url("/admin/service-orders"))
        .await
        .expect("the queue");
    click(
        &browser,
        Locator::Css("#service-orders a[href^='/admin/service-orders/']"),
    )
    .await;
    click(
        &browser,
        Locator::Css("#complete-order button[type=submit]"),
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("done");
    assert_eq!(
        text_of(&browser, "[data-testid=service-state]").await,
        "Active"
    );
    sign_out(&browser).await;

    // The client sees it working.
    sign_in(&browser, &app, &client, &client_password).await;
    click(&browser, Locator::LinkText("Services")).await;
    let listed = text_of(&browser, "#your-services").await;
    assert!(listed.contains("Call recording storage"), "{listed}");
    assert!(listed.contains("Active"), "{listed}");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_keep_the_catalogue_with_a_form_and_each_change_is_audited() {
    use switchboard_core::schema::{audit_log, services as catalogue};
    let app = TestApp::spawn().await;
    let (staff, password) = app.user("stella", Role::Staff, None).await;
    let http = app.signed_in("stella", &password).await;
    let (_, client, client_password) = app.client("chloe", 0).await;
    let client = app.signed_in(&client, &client_password).await;
    let form = |name: &'static str, one_time: &'static str, offered: bool| {
        let mut fields = vec![
            ("id", ""),
            ("name", name),
            ("description", "Faxes arrive as PDFs."),
            ("currency", "USD"),
            ("one_time_fee", one_time),
            ("monthly_fee", "4.99"),
            ("attaches_to", "PBX"),
            ("needs_staff", "yes"),
        ];
        if offered {
            fields.push(("offered", "yes"));
        }
        fields
    };

    // Wrong input: each wrong field named beside it, nothing stored.
    let response = post_form(
        &app,
        &http,
        "/admin/services",
        "/admin/services",
        &form("", "1.001", true),
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("the page");
    assert!(page.contains("Name must be 1 to 80 characters."), "{page}");
    assert!(
        page.contains("One-time fee must be whole cents, such as 4.99."),
        "{page}"
    );
    let stored: i64 = catalogue::table
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(stored, 0);

    // Added: clients see it, and the audit log says who added what.
    let response = post_form(
        &app,
        &http,
        "/admin/services",
        "/admin/services",
        &form("Fax to email", "10", true),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(app
        .page(&client, "/portal/services")
        .await
        .contains("Fax to email"));
    let id: i64 = catalogue::table
        .select(catalogue::id)
        .first(&mut app.conn().await)
        .await
        .expect("the service");

    // Withdrawn: clients no longer see it.
    let mut withdraw = form("Fax to email", "10", false);
    let id_text = id.to_string();
    withdraw[0] = ("id", &id_text);
    let response = post_form(&app, &http, "/admin/services", "/admin/services", &withdraw).await;
    assert_eq!(response.status(), 303);
    assert!(!app
        .page(&client, "/portal/services")
        .await
        .contains("Fax to email"));
    let actions: Vec<(String, Option<String>)> = audit_log::table
        .filter(audit_log::actor_user_id.eq(staff.0))
        .filter(audit_log::action.like("service%"))
        .order(audit_log::id)
        .select((audit_log::action, audit_log::after))
        .load(&mut app.conn().await)
        .await
        .expect("the audit log");
    assert_eq!(
        actions.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["service.create", "service.update"]
    );
    assert!(actions[1]
        .1
        .as_deref()
        .is_some_and(|after| after.contains("\"offered\":false")));
}

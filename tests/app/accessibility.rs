//! axe-core, run in Chromium on every page a visitor, a client and an admin
//! reach: any serious or critical violation fails. axe-core comes from npm
//! (`npm ci --prefix tests/axe`, which `.ci/run` does), pinned by the lock
//! file there. The same sessions check the layout at a laptop's and a
//! phone's width.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use switchboard_core::Role;

use crate::browser::{browser, screenshot, sign_in};
use crate::harness::TestApp;

const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/axe/node_modules/axe-core/axe.min.js"
);

/// Rules that only GraphiQL's own markup breaks (we ship it as its project
/// builds it), checked everywhere but inside it: CodeMirror's hidden
/// textareas have no label, its scrolling editor takes no focus of its own,
/// and its logo and syntax colours are lighter than 4.5:1.
const GRAPHIQL_OWN: &[&str] = &["color-contrast", "label", "scrollable-region-focusable"];

fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        std::fs::read_to_string(AXE).unwrap_or_else(|_| {
            panic!("the accessibility check needs axe-core: npm ci --prefix tests/axe")
        })
    })
}

/// The serious and critical violations in `context` (an axe-core context:
/// the document, a selector, an exclusion) of the page the browser shows,
/// leaving out `ignored` rules; one line each.
async fn violations(browser: &Client, context: Value, ignored: &[&str]) -> Vec<String> {
    browser
        .execute(axe_source(), vec![])
        .await
        .expect("axe-core loads into the page");
    let found = browser
        .execute_async(
            "const [context, ignored, done] = arguments;
             const rules = {};
             for (const rule of ignored) rules[rule] = { enabled: false };
             axe.run(context || document, { resultTypes: ['violations'], rules })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))))
               .catch(e => done([{ id: 'axe-failed', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![context, json!(ignored)],
        )
        .await
        .expect("axe-core runs");
    found
        .as_array()
        .map(|all| {
            all.iter()
                .map(|v| {
                    format!(
                        "{} ({}): {} at {}",
                        v["id"], v["impact"], v["help"], v["nodes"]
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Opens `path` and checks it; what is wrong goes into `wrong`.
async fn check(browser: &Client, app: &TestApp, path: &str, wrong: &mut Vec<String>) {
    browser.goto(&app.url(path)).await.expect("open the page");
    screenshot(browser, &path.replace(['/', '?', '=', '&'], "-")).await;
    check_here(browser, path, wrong).await;
}

/// Checks the page the browser shows with every rule.
async fn check_here(browser: &Client, name: &str, wrong: &mut Vec<String>) {
    for violation in violations(browser, Value::Null, &[]).await {
        wrong.push(format!("{name}: {violation}"));
    }
}

/// Waits (up to 30 s) until the page's `h1` reads `heading`.
async fn wait_for_heading(browser: &Client, heading: &str) {
    let started = Instant::now();
    loop {
        let now = match browser.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if now == heading {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {now:?}, waiting for {heading:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn click(browser: &Client, locator: Locator<'_>) {
    browser
        .wait()
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("{locator:?}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
}

/// GraphiQL, once it has drawn itself, checked with its own rules left out.
async fn check_graphiql(browser: &Client, app: &TestApp, wrong: &mut Vec<String>) {
    browser.goto(&app.url("/graphql")).await.expect("GraphiQL");
    browser
        .wait()
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("GraphiQL starts");
    let ours = json!({ "exclude": [["#graphiql"]] });
    for violation in violations(browser, ours, &[]).await {
        wrong.push(format!("/graphql, around GraphiQL: {violation}"));
    }
    for violation in violations(browser, json!("#graphiql"), GRAPHIQL_OWN).await {
        wrong.push(format!("/graphql, GraphiQL: {violation}"));
    }
}

/// A three weeks' worth of calls for the account's PBX.
async fn calls_for(app: &TestApp, pbx: i64) {
    let records =
        switchboard_controller::traffic::generate(9, chrono::Utc::now(), 40, 5, "15550100177");
    let mut conn = app.conn().await;
    switchboard_core::calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        &records,
        &[],
    )
    .await
    .expect("ingested");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reaches_every_page_accessibly_and_sees_costs_at_phone_width() {
    let app = TestApp::spawn().await;
    crate::commerce::seed_plan(&app).await;
    // Signed up (the form is a browser test of its own); to pay in the browser.
    let (_, order) = crate::commerce::signed_up(&app, "axe-client").await;
    let browser = browser().await;
    let mut wrong = Vec::new();
    for path in [
        "/",
        "/plans",
        "/plans/office",
        "/cart?plan=office",
        "/terms",
        "/privacy",
        "/sign-in",
        "/password/forgot",
        "/password/reset?token=none&user=axe-client",
        "/account/email/confirm?token=none",
        "/no/such/page",
    ] {
        check(&browser, &app, path, &mut wrong).await;
    }
    sign_in(&browser, &app, "axe-client", "a-good-password").await;
    check(&browser, &app, &format!("/orders/{order}"), &mut wrong).await;
    check(&browser, &app, &format!("/pay/test/{order}"), &mut wrong).await;
    browser
        .find(Locator::Id("card_number"))
        .await
        .expect("the card field")
        .send_keys("4000 0025 0000 3155")
        .await
        .expect("type");
    click(&browser, Locator::Css("form.stack button[type=submit]")).await;
    browser
        .wait()
        .for_element(Locator::Css("button[value=yes]"))
        .await
        .expect("the bank asks");
    check_here(&browser, "authentication", &mut wrong).await;
    click(&browser, Locator::Css("button[value=yes]")).await;
    wait_for_heading(&browser, "Setting up your PBX").await;
    check_here(&browser, "the order while its PBX is set up", &mut wrong).await;
    crate::commerce::run_jobs(&app, 1).await;
    // The page brings the news by itself.
    wait_for_heading(&browser, "Your PBX is ready").await;
    check_here(&browser, "the order when ready", &mut wrong).await;

    let pbx = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::pbxes;
        pbxes::table
            .select(pbxes::id)
            .first::<i64>(&mut app.conn().await)
            .await
            .expect("the PBX")
    };
    calls_for(&app, pbx).await;
    let ticket = crate::support::a_ticket_with_a_note(&app, "axe-client").await;
    let (service, service_order) = crate::services::an_ordered_service(&app, "axe-client").await;
    let owner = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::pbxes;
        pbxes::table
            .find(pbx)
            .select(pbxes::account_id)
            .first::<i64>(&mut app.conn().await)
            .await
            .expect("its account")
    };
    crate::numbers::stocked(&app, switchboard_core::AccountId(owner), pbx).await;
    for path in [
        "/portal".to_owned(),
        format!("/portal/pbxes/{pbx}/password"),
        "/portal/pbxes".to_owned(),
        "/portal/pbxes/new".to_owned(),
        "/portal/reports".to_owned(),
        "/portal/reports?month=last".to_owned(),
        "/portal/funds".to_owned(),
        "/portal/funds/card".to_owned(),
        "/portal/statements".to_owned(),
        "/portal/profile".to_owned(),
        "/portal/tickets".to_owned(),
        "/portal/tickets/new".to_owned(),
        format!("/portal/tickets/{ticket}"),
        "/portal/services".to_owned(),
        format!("/portal/services/order/{service}"),
        format!("/portal/services/{service_order}"),
        "/portal/numbers".to_owned(),
        "/portal/numbers/find".to_owned(),
        "/portal/numbers/find?state=IL".to_owned(),
        "/portal/numbers/find?state=IL&rate_center=CHICAGO".to_owned(),
        "/account/password".to_owned(),
        "/graphql/console".to_owned(),
        "/no/such/page".to_owned(),
    ] {
        check(&browser, &app, &path, &mut wrong).await;
    }
    check_graphiql(&browser, &app, &mut wrong).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // At a phone's width every table shows its last column, the cost.
    browser
        .set_window_size(390, 844)
        .await
        .expect("a phone's size");
    for path in [
        "/portal".to_owned(),
        "/portal/pbxes".to_owned(),
        "/portal/reports?month=last".to_owned(),
        "/portal/tickets".to_owned(),
        format!("/portal/tickets/{ticket}"),
        "/portal/services".to_owned(),
        format!("/portal/services/{service_order}"),
        "/portal/numbers".to_owned(),
        "/portal/numbers/find?state=IL".to_owned(),
        "/portal/numbers/find?state=IL&rate_center=CHICAGO".to_owned(),
    ] {
        browser.goto(&app.url(&path)).await.expect("open");
        let hidden: Value = browser
            .execute(
                "const width = document.documentElement.clientWidth;
                 return [...document.querySelectorAll('main table')].flatMap(table =>
                   [...table.querySelectorAll('tbody tr, tfoot tr')].filter(row => {
                     const last = row.lastElementChild;
                     if (!last || last.colSpan > 1) return false;
                     const box = last.getBoundingClientRect();
                     return box.width === 0 || box.right > width + 1;
                   }).map(row => (table.id || 'a table') + ': ' + row.innerText.replace(/\\s+/g, ' ')));",
                vec![],
            )
            .await
            .expect("measured");
        screenshot(
            &browser,
            &format!("phone{}", path.replace(['/', '?', '='], "-")),
        )
        .await;
        assert_eq!(
            hidden,
            json!([]),
            "{path}: rows whose last column is off screen"
        );
    }
    // The profile's forms fit a phone: nothing wider than the window.
    for path in [
        "/portal/profile".to_owned(),
        "/password/forgot".to_owned(),
        "/portal/pbxes".to_owned(),
        "/portal/pbxes/new".to_owned(),
        format!("/portal/services/order/{service}"),
    ] {
        browser.goto(&app.url(&path)).await.expect("open");
        let overflow: Value = browser
            .execute(
                "const width = document.documentElement.clientWidth;
                 return [...document.querySelectorAll('main input, main select, main textarea, main button')]
                   .filter(e => e.getBoundingClientRect().right > width + 1)
                   .map(e => e.id || e.name || e.tagName);",
                vec![],
            )
            .await
            .expect("measured");
        screenshot(&browser, &format!("phone{}", path.replace('/', "-"))).await;
        assert_eq!(overflow, json!([]), "{path}: fields wider than a phone");
    }
    browser.close().await.expect("close");
}

/// An account with a failed PBX, its calls, a calling plan with a rate's
/// history, and a sealed message: (account, PBX, calling plan, message).
async fn an_account_with_everything(app: &TestApp) -> (i64, i64, i64, i64) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::outbox::{self, Email};
    use switchboard_core::schema::{emails, pbxes};
    let plan = crate::commerce::seed_plan(app).await;
    let (account, _, _) = app.client("axe-owner", 12_000_000).await;
    let mut conn = app.conn().await;
    let calling_plan =
        switchboard_core::calls::calling_plans::create(&mut conn, "Standard", "USD", None)
            .await
            .expect("a calling plan");
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        9_000,
        chrono::Duration::days(40),
    )
    .await;
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        8_500,
        chrono::Duration::days(2),
    )
    .await;
    app.bill_with(plan, calling_plan).await;
    let pbx = app.pbx(account, plan, "failed", "pbx-axe").await;
    diesel::update(pbxes::table.find(pbx))
        .set(pbxes::last_error.eq("the controller answered 503"))
        .execute(&mut conn)
        .await
        .expect("its error");
    calls_for(app, pbx).await;
    let email = Email {
        to: "axe-owner@example.com".into(),
        subject: "Your Switchboard PBX is ready".into(),
        text: "PBX administrator password: x".into(),
        html: "<p>x</p>".into(),
    };
    outbox::queue_sealed(&mut conn, &app.state.key, &email, None)
        .await
        .expect("queued");
    let message: i64 = emails::table
        .select(emails::id)
        .first(&mut conn)
        .await
        .expect("the message");
    (account.0, pbx, calling_plan, message)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_reaches_every_page_accessibly_and_the_navigation_fits_1366_pixels() {
    let app = TestApp::spawn().await;
    let (account, pbx, calling_plan, message) = an_account_with_everything(&app).await;
    let ticket = crate::support::a_ticket_with_a_note(&app, "axe-owner").await;
    let (_, service_order) = crate::services::an_ordered_service(&app, "axe-owner").await;
    let owner = switchboard_core::AccountId(account);
    let number_pbx = crate::numbers::pbx_of(&app, owner, "axe-numbers").await;
    let number = crate::numbers::stocked(&app, owner, number_pbx).await;
    let (_, password) = app.user("axe-admin", Role::Admin, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "axe-admin", &password).await;
    let mut wrong = Vec::new();
    for path in [
        "/admin".to_owned(),
        "/admin?search=axe".to_owned(),
        format!("/admin/accounts/{account}"),
        format!("/admin/accounts/{account}/edit"),
        "/admin/calling".to_owned(),
        "/admin/calling?trouble=1".to_owned(),
        "/admin/staff".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/pbxes".to_owned(),
        format!("/admin/pbxes/{pbx}"),
        "/admin/plans".to_owned(),
        "/admin/calling-plans".to_owned(),
        format!("/admin/calling-plans/{calling_plan}"),
        format!("/admin/calling-plans/{calling_plan}?history=1"),
        format!("/admin/calling-plans/{calling_plan}?edit=1#edit-rate"),
        "/admin/calls".to_owned(),
        "/admin/tickets".to_owned(),
        "/admin/tickets?state=AWAITING_CLIENT&assignee=nobody".to_owned(),
        format!("/admin/tickets/{ticket}"),
        "/admin/services".to_owned(),
        "/admin/services?edit=1#service-form".to_owned(),
        "/admin/service-orders".to_owned(),
        "/admin/service-orders?show=all".to_owned(),
        format!("/admin/service-orders/{service_order}"),
        "/admin/outbox".to_owned(),
        format!("/admin/outbox/{message}"),
        format!("/admin/outbox/{message}?open=sealed"),
        "/admin/numbers".to_owned(),
        "/admin/numbers?status=ORDERED&state=IL".to_owned(),
        "/admin/numbers/awaiting".to_owned(),
        format!("/admin/numbers/{number}"),
        "/account/password".to_owned(),
        "/account/two-factor".to_owned(),
        "/graphql/console".to_owned(),
    ] {
        check(&browser, &app, &path, &mut wrong).await;
    }
    // An inventory file previewed, with its bad rows named.
    browser
        .goto(&app.url("/admin/numbers"))
        .await
        .expect("open");
    browser
        .find(Locator::Id("csv"))
        .await
        .expect("the upload form")
        .send_keys("number,rate_center,state,setup_fee,monthly_fee\n312-555-01,CHICAGO,IL,1,x\n")
        .await
        .expect("pasted");
    click(
        &browser,
        Locator::Css("#upload-inventory button[type=submit]"),
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Id("bad-rows"))
        .await
        .expect("the bad rows");
    check_here(&browser, "an inventory preview with bad rows", &mut wrong).await;
    // Setting two-factor sign-in up: the QR code and the code's form.
    browser
        .goto(&app.url("/account/two-factor"))
        .await
        .expect("open");
    click(
        &browser,
        Locator::Css("form[action='/account/two-factor'] button"),
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Id("totp-secret"))
        .await
        .expect("the key to scan");
    check_here(&browser, "two-factor set-up", &mut wrong).await;
    // A PBX's password, revealed.
    browser
        .goto(&app.url(&format!("/admin/pbxes/{pbx}")))
        .await
        .expect("open");
    browser
        .find(Locator::Id("reveal-password"))
        .await
        .expect("the field")
        .send_keys(&password)
        .await
        .expect("type");
    click(
        &browser,
        Locator::Css("form[action$='/reveal#gui-password'] button"),
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Css(
            "#revealed-password, #gui-password + .card .alert",
        ))
        .await
        .expect("the outcome");
    check_here(&browser, "a revealed PBX password", &mut wrong).await;
    check_graphiql(&browser, &app, &mut wrong).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // On a 1366-pixel laptop the staff's navigation and the sign-out button
    // share one line.
    browser
        .set_window_size(1366, 768)
        .await
        .expect("a laptop's size");
    browser.goto(&app.url("/admin")).await.expect("open");
    let tops: Value = browser
        .execute(
            "return [...document.querySelectorAll('header nav.main a, header .who button')]
               .map(e => Math.round(e.getBoundingClientRect().top));",
            vec![],
        )
        .await
        .expect("measured");
    screenshot(&browser, "admin-1366").await;
    let tops: Vec<i64> = tops
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(tops.len() >= 9, "{tops:?}");
    assert!(
        tops.iter().max().unwrap_or(&0) - tops.iter().min().unwrap_or(&0) <= 4,
        "one line: {tops:?}"
    );
    browser.close().await.expect("close");
}

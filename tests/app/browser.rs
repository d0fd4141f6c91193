//! What a person clicks through, in headless Chromium driven over WebDriver.

use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use switchboard_core::{AccountKind, Role};

use crate::harness::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One ChromeDriver for the whole run, stopped when the run ends.
fn chromedriver() -> &'static str {
    static DRIVER: OnceLock<(String, Mutex<ChildStdin>)> = OnceLock::new();
    &DRIVER
        .get_or_init(|| {
            assert!(
                std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
                "browser tests need Chromium and ChromeDriver: apt-get install chromium chromium-driver"
            );
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            // The watchdog must outlive every test; it ends with the run.
            #[allow(clippy::zombie_processes)]
            let mut child = Command::new("sh")
                .arg("-c")
                .arg("\"$0\" --port=\"$1\" >/dev/null 2>&1 & pid=$!; read _; kill $pid")
                .arg(CHROMEDRIVER)
                .arg(port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver");
            let started = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            let stdin = child.stdin.take().expect("the watchdog's stdin");
            (format!("http://127.0.0.1:{port}"), Mutex::new(stdin))
        })
        .0
}

pub async fn browser() -> Client {
    let profile = tempfile::tempdir().expect("a profile folder").keep();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(chromedriver())
        .await
        .expect("a Chromium session")
}

pub async fn sign_in(browser: &Client, app: &TestApp, username: &str, password: &str) {
    browser.goto(&app.url("/")).await.expect("open the site");
    browser
        .find(Locator::LinkText("Sign in"))
        .await
        .expect("a sign-in link")
        .click()
        .await
        .expect("click");
    browser
        .find(Locator::Id("username"))
        .await
        .expect("field")
        .send_keys(username)
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("field")
        .send_keys(password)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_until(browser, |url| url.path() != "/sign-in").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_signs_in_and_sees_the_balance() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("winnie", 42_424_242).await;
    let browser = browser().await;
    sign_in(&browser, &app, &username, &password).await;
    let balance = browser
        .wait()
        .for_element(Locator::Css("[data-testid=balance]"))
        .await
        .expect("the balance");
    assert_eq!(balance.text().await.expect("text"), "$42.42");
    assert_eq!(browser.current_url().await.expect("url").path(), "/portal");
    let current = browser
        .find(Locator::Css("nav.main a[aria-current=page]"))
        .await
        .expect("the current section");
    assert_eq!(current.text().await.expect("text"), "Home");
    let body = browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text");
    assert!(body.contains("winnie Co"));
    assert!(body.contains("opening balance"));

    browser
        .find(Locator::Css(".who button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    browser
        .wait()
        .for_element(Locator::Css(".alert.info"))
        .await
        .expect("signed out notice");
    browser.goto(&app.url("/portal")).await.expect("go");
    assert_eq!(browser.current_url().await.expect("url").path(), "/sign-in");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_sign_in_and_see_the_accounts_list() {
    let app = TestApp::spawn().await;
    app.account("Acme Plumbing", AccountKind::Retail, None, 15_000_000)
        .await;
    app.account("Zenith Telecom", AccountKind::Wholesale, None, -2_500_000)
        .await;
    let (_, password) = app.user("stella", Role::Staff, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "stella", &password).await;
    let table = browser
        .wait()
        .for_element(Locator::Id("accounts"))
        .await
        .expect("the accounts table");
    let text = table.text().await.expect("text");
    assert!(
        text.contains("Acme Plumbing") && text.contains("$15.00"),
        "{text}"
    );
    assert!(
        text.contains("Zenith Telecom") && text.contains("-$2.50"),
        "{text}"
    );

    browser
        .find(Locator::Id("search"))
        .await
        .expect("search")
        .send_keys("zenith")
        .await
        .expect("type");
    browser
        .find(Locator::Css("form.inline button"))
        .await
        .expect("filter")
        .click()
        .await
        .expect("click");
    wait_until(&browser, |url| {
        url.query() == Some("search=zenith&standing=")
    })
    .await;
    let text = browser
        .find(Locator::Id("accounts"))
        .await
        .expect("table")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("Zenith Telecom") && !text.contains("Acme Plumbing"),
        "{text}"
    );
    browser.close().await.expect("close");
}

/// Waits (up to 15 s) until the browser's address satisfies `done`: a click
/// that submits a form returns before the next page has loaded.
pub async fn wait_until(browser: &Client, done: impl Fn(&url::Url) -> bool) {
    let started = Instant::now();
    loop {
        if let Ok(url) = browser.current_url().await {
            if done(&url) {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the page did not change in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a screenshot when `SWITCHBOARD_SCREENSHOTS` names a folder, for
/// looking at the pages by eye.
pub async fn screenshot(browser: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_SCREENSHOTS") {
        let png = browser.screenshot().await.expect("a screenshot");
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png)
            .expect("saving it");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_runs_an_operation_as_the_signed_in_client() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("gwen", 3_000_000).await;
    let browser = browser().await;
    sign_in(&browser, &app, &username, &password).await;
    screenshot(&browser, "client-home").await;
    browser
        .wait()
        .for_element(Locator::LinkText("API"))
        .await
        .expect("the API link")
        .click()
        .await
        .expect("click");
    browser
        .wait()
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("GraphiQL starts")
        .click()
        .await
        .expect("run the default operation");
    let started = Instant::now();
    let answer = loop {
        let text = browser
            .find(Locator::Css(".graphiql-response"))
            .await
            .expect("the result pane")
            .text()
            .await
            .expect("text");
        if text.contains("$3.00") || started.elapsed() > Duration::from_secs(15) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    screenshot(&browser, "graphiql").await;
    assert!(answer.contains("\"username\": \"gwen\""), "{answer}");
    assert!(answer.contains("$3.00"), "{answer}");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_signs_up_pays_and_gets_a_running_pbx() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = TestApp::spawn().await;
    crate::commerce::seed_plan(&app).await;
    let _workers = app.start_workers(smtp.port);
    let browser = browser().await;
    browser.goto(&app.url("/")).await.expect("open the site");
    let click = |locator: Locator<'static>| {
        let browser = browser.clone();
        async move {
            let element = browser
                .wait()
                .for_element(locator)
                .await
                .unwrap_or_else(|e| panic!("{locator:?}: {e}"));
            element
                .click()
                .await
                .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
        }
    };
    click(Locator::LinkText("See the plans")).await;
    click(Locator::LinkText("Choose Office")).await;
    click(Locator::LinkText("Sign up for Office")).await;
    let total = browser
        .wait()
        .for_element(Locator::Css("[data-testid=cart-total]"))
        .await
        .expect("the total");
    // The setup fee and first month ($178) with the suggested $25 of call
    // credit; another choice changes what is due.
    assert_eq!(total.text().await.expect("text"), "$203.00");
    click(Locator::Id("starting_credit_10")).await;
    assert_eq!(total.text().await.expect("text"), "$188.00");
    screenshot(&browser, "cart").await;
    for (field, value) in [
        ("username", "visitor"),
        ("password", "visitor-password-1"),
        ("password_confirmation", "visitor-password-1"),
        ("contact_name", "Vera Visitor"),
        ("company", "Visitor Dental"),
        ("email", "vera@example.com"),
        ("phone", "+1 555 010 0142"),
        ("address", "42 Harbour Road, Springfield"),
    ] {
        browser
            .find(Locator::Id(field))
            .await
            .expect(field)
            .send_keys(value)
            .await
            .expect("type");
    }
    click(Locator::Id("accept_terms")).await;
    click(Locator::Css("form.stack button[type=submit]")).await;

    browser
        .wait()
        .for_element(Locator::Id("card_number"))
        .await
        .expect("the payment page");
    screenshot(&browser, "payment").await;
    browser
        .find(Locator::Id("card_number"))
        .await
        .expect("card")
        .send_keys("4242 4242 4242 4242")
        .await
        .expect("type");
    click(Locator::Css("form.stack button[type=submit]")).await;

    // The order page refreshes itself until the PBX is active.
    let started = Instant::now();
    loop {
        let heading = match browser.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            // The page may be reloading itself at this very moment.
            Err(_) => String::new(),
        };
        if heading == "Your PBX is ready" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {heading:?} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    screenshot(&browser, "order-ready").await;
    let hostname = browser
        .find(Locator::Css("[data-testid=pbx-hostname]"))
        .await
        .expect("host")
        .text()
        .await
        .expect("text");
    assert!(hostname.ends_with(".pbx.switchboard.test"), "{hostname}");

    // The welcome email reached the SMTP listener, with the PBX's password.
    let welcome = smtp
        .wait_for("welcome email", |m| {
            m.data.contains("Subject: Your Switchboard PBX is ready")
        })
        .await;
    assert_eq!(welcome.to, ["<vera@example.com>"]);
    let password = app.simulator.pbxes()[0].gui_password.clone();
    assert!(
        welcome.data.contains(&password),
        "the email carries the PBX password"
    );
    assert!(
        !welcome.data.contains("visitor-password-1"),
        "never the portal password"
    );

    click(Locator::LinkText("Go to your control panel")).await;
    let state = browser
        .wait()
        .for_element(Locator::Css("[data-testid=pbx-state]"))
        .await
        .expect("the PBX");
    assert_eq!(state.text().await.expect("text"), "Active");
    let balance = browser
        .find(Locator::Css("[data-testid=balance]"))
        .await
        .expect("balance");
    assert_eq!(
        balance.text().await.expect("text"),
        "$10.00",
        "paid $188, charged $178: the call credit stays"
    );
    screenshot(&browser, "client-home-with-pbx").await;
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sees_last_calls_and_monthly_extension_totals() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let plan = crate::commerce::seed_plan(&app).await;
    let account = app
        .account("Reporting Co", AccountKind::Retail, None, 20_000_000)
        .await;
    let (_, password) = app.user("reporter", Role::Client, Some(account)).await;
    let (_, admin_password) = app.user("reporting-admin", Role::Admin, None).await;
    let mut conn = app.conn().await;
    let calling_plan: i64 = diesel::insert_into(switchboard_core::schema::calling_plans::table)
        .values(switchboard_core::schema::calling_plans::name.eq("Reporting"))
        .returning(switchboard_core::schema::calling_plans::id)
        .get_result(&mut conn)
        .await
        .expect("a calling plan");
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        12_000,
        chrono::Duration::hours(2),
    )
    .await;
    app.bill_with(plan, calling_plan).await;
    let pbx = app.pbx(account, plan, "active", "pbx-report").await;
    let admin = app.signed_in("reporting-admin", &admin_password).await;
    let issued = app
        .graphql(
            &admin,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            serde_json::json!({ "p": pbx.to_string() }),
        )
        .await;
    let token = issued["data"]["issueCdrToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let at = |seconds_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago)).to_rfc3339()
    };
    let leg = |ago: i64, ext: &str, dst: &str, billsec: i32, disposition: &str, id: &str| {
        serde_json::json!({
            "calldate": at(ago), "src": ext, "dst": dst, "dcontext": "from-internal",
            "channel": format!("PJSIP/{ext}-0000{id}"), "dstchannel": "PJSIP/voipms-00000099",
            "duration": billsec + 5, "billsec": billsec, "disposition": disposition, "uniqueid": id, "cnum": ext,
        })
    };
    let batch = serde_json::json!({ "cdrs": [
        leg(300, "201", "15550100100", 125, "ANSWERED", "1.1"),
        leg(240, "201", "15550100101", 0, "NO ANSWER", "1.2"),
        leg(180, "202", "15550100102", 60, "ANSWERED", "1.3"),
        leg(120, "201", "15550100103", 30, "ANSWERED", "1.4"),
    ]});
    let pushed: serde_json::Value = reqwest::Client::new()
        .post(app.url("/cdrs/push"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(pushed["accepted"], 4, "{pushed}");

    let browser = browser().await;
    sign_in(&browser, &app, "reporter", &password).await;
    let calls = browser
        .wait()
        .for_element(Locator::Id("calls"))
        .await
        .expect("the last calls");
    let text = calls.text().await.expect("text");
    assert!(
        text.contains("15550100103") && text.contains("15550100100"),
        "{text}"
    );
    assert!(
        text.find("15550100103") < text.find("15550100100"),
        "newest first: {text}"
    );
    assert!(text.contains("no answer"));
    screenshot(&browser, "client-home-with-calls").await;

    browser
        .find(Locator::LinkText("Reports"))
        .await
        .expect("Reports")
        .click()
        .await
        .expect("click");
    let totals = browser
        .wait()
        .for_element(Locator::Id("by-extension"))
        .await
        .expect("per extension");
    let rows = totals.text().await.expect("text");
    // 201: three calls, two answered, 125 + 30 s = 2.6 min; 202: one call, 1 min.
    assert!(rows.contains("201 3 2 2.6"), "{rows}");
    assert!(rows.contains("202 1 1 1.0"), "{rows}");
    let total = browser
        .find(Locator::Css("[data-testid=total-calls]"))
        .await
        .expect("total")
        .text()
        .await
        .expect("text");
    assert_eq!(total, "4");
    assert!(
        browser
            .find(Locator::Css("figure.chart svg rect"))
            .await
            .is_ok(),
        "a chart is drawn"
    );
    screenshot(&browser, "reports").await;

    let csv = browser
        .find(Locator::LinkText("Download the calls (CSV)"))
        .await
        .expect("link")
        .attr("href")
        .await
        .expect("href");
    assert_eq!(
        csv.as_deref(),
        Some("/portal/reports/calls.csv?month=current")
    );
    browser.close().await.expect("close");

    let http = app.signed_in("reporter", &password).await;
    let download = http
        .get(app.url("/portal/reports/calls.csv?month=current"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        download.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let body = download.text().await.expect("body");
    assert_eq!(body.lines().count(), 5, "a header and four calls: {body}");
    assert!(body.starts_with(
        "start,pbx,from,to,direction,extension,status,answered_seconds,billed_seconds,cost_usd_exact,unrated"
    ));
    let last_month = app
        .page(&http, "/portal/reports/calls.csv?month=last")
        .await;
    assert_eq!(last_month.lines().count(), 1, "nothing last month");
}

/// Waits (up to 60 s) until the element `id` shows text that satisfies
/// `done`; returns that text.
async fn wait_for_text(browser: &Client, id: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = browser.find(Locator::Id(id)).await {
            if let Ok(text) = element.text().await {
                if done(&text) {
                    return text;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "#{id} did not show what was expected in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_imports_a_100k_rate_file_with_its_progress_shown() {
    let app = TestApp::spawn().await;
    let plan = {
        let mut conn = app.conn().await;
        switchboard_core::calls::calling_plans::create(&mut conn, "Wholesale", "USD", None)
            .await
            .expect("a calling plan")
    };
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("wholesale.csv");
    let mut csv =
        String::from("prefix,description,per_minute,initial_increment,subsequent_increment\n");
    for n in 0..100_000u32 {
        csv.push_str(&format!(
            "{},Destination {n},0.{:04},6,6\n",
            2_000_000 + n,
            10 + n % 9_000
        ));
    }
    std::fs::write(&file, &csv).expect("the file");
    let (_, password) = app.user("rita", Role::Admin, None).await;
    let browser = browser().await;
    sign_in(&browser, &app, "rita", &password).await;
    browser
        .goto(&app.url(&format!("/admin/calling-plans/{plan}")))
        .await
        .expect("the plan's page");
    let picker = browser
        .wait()
        .for_element(Locator::Css("#csv-file:not([hidden])"))
        .await
        .expect("the script offers a file picker");
    picker
        .send_keys(file.to_str().expect("a path"))
        .await
        .expect("choosing the file");
    let read = wait_for_text(&browser, "import-status", |t| t.contains("rows read")).await;
    assert!(read.contains("100,000 rows read"), "{read}");
    let bar = browser
        .find(Locator::Id("import-progress"))
        .await
        .expect("the progress bar");
    assert_eq!(
        bar.attr("value").await.expect("value"),
        Some(csv.len().to_string()),
        "the bar is full once the file is read"
    );

    let started = Instant::now();
    browser
        .find(Locator::Css("#rate-import button[type=submit]"))
        .await
        .expect("Preview")
        .click()
        .await
        .expect("click");
    // While the file travels the status says how far it has got; once the
    // preview arrives it replaces the page.
    let preview = wait_for_text(&browser, "preview", |t| t.contains("added")).await;
    let previewed = started.elapsed();
    assert!(preview.contains("100000 added, 0 changed"), "{preview}");
    screenshot(&browser, "rate-import-preview").await;

    let started = Instant::now();
    browser
        .find(Locator::Css("#rate-import button[type=submit]"))
        .await
        .expect("Import these rates")
        .click()
        .await
        .expect("click");
    let notice = wait_for_text(&browser, "notice", |t| t.contains("Imported")).await;
    let imported = started.elapsed();
    assert!(notice.contains("Imported: 100000 added"), "{notice}");
    eprintln!(
        "100,000 rates ({} KB): preview {:.1} s, import {:.1} s, in the browser",
        csv.len() / 1024,
        previewed.as_secs_f64(),
        imported.as_secs_f64()
    );
    let mut conn = app.conn().await;
    let table = switchboard_core::calls::calling_plans::rate_table(&mut conn, plan)
        .await
        .expect("rates");
    assert_eq!(table.current(chrono::Utc::now()).len(), 100_000);
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_adds_funds_and_turns_on_auto_replenish() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("topper", 1_000_000).await;
    let browser = browser().await;
    sign_in(&browser, &app, &username, &password).await;
    let click = |locator: Locator<'static>| {
        let browser = browser.clone();
        async move {
            browser
                .find(locator)
                .await
                .unwrap_or_else(|e| panic!("finding {locator:?}: {e}"))
                .click()
                .await
                .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
        }
    };
    let type_into = |id: &'static str, text: &'static str| {
        let browser = browser.clone();
        async move {
            let field = browser.find(Locator::Id(id)).await.expect(id);
            field.clear().await.expect("clear");
            field.send_keys(text).await.expect("type");
        }
    };
    click(Locator::LinkText("Funds")).await;
    // A bad amount is refused with a message, and nothing is charged.
    type_into("amount", "0").await;
    click(Locator::Css("form[action='/portal/funds'] button")).await;
    let error = browser
        .wait()
        .for_element(Locator::Css(".alert.error"))
        .await
        .expect("an error");
    assert!(error
        .text()
        .await
        .expect("text")
        .contains("between $10.00 and $1,000.00"));

    type_into("amount", "40").await;
    click(Locator::Css("form[action='/portal/funds'] button")).await;
    browser
        .wait()
        .for_element(Locator::Id("card_number"))
        .await
        .expect("the test gateway's card form");
    type_into("card_number", "4242 4242 4242 4242").await;
    click(Locator::Css("form.stack button[type=submit]")).await;
    wait_until(&browser, |url| url.path().starts_with("/orders/")).await;
    let heading = browser.find(Locator::Css("h1")).await.expect("a heading");
    assert_eq!(heading.text().await.expect("text"), "Funds added");
    click(Locator::LinkText("Back to Funds")).await;
    let balance = browser
        .wait()
        .for_element(Locator::Css("[data-testid=balance]"))
        .await
        .expect("the balance");
    assert_eq!(balance.text().await.expect("text"), "$41.00");
    let card = browser
        .find(Locator::Css("[data-testid=saved-card]"))
        .await
        .expect("the card");
    assert_eq!(card.text().await.expect("text"), "VISA ending 4242");

    click(Locator::Id("enabled")).await;
    type_into("threshold", "15").await;
    type_into("replenish_amount", "30").await;
    type_into("monthly_cap", "90").await;
    click(Locator::Css(
        "form[action='/portal/funds/auto-replenish'] button",
    ))
    .await;
    let saved = browser
        .wait()
        .for_element(Locator::Css(".alert.info"))
        .await
        .expect("saved");
    assert!(saved
        .text()
        .await
        .expect("text")
        .contains("settings are saved"));
    assert!(browser
        .find(Locator::Id("enabled"))
        .await
        .expect("box")
        .is_selected()
        .await
        .expect("state"));
    let threshold = browser
        .find(Locator::Id("threshold"))
        .await
        .expect("field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(threshold.as_deref(), Some("15.00"));
    let past = browser
        .find(Locator::Css("#top-ups tbody"))
        .await
        .expect("past top-ups")
        .text()
        .await
        .expect("text");
    assert!(past.contains("$40.00") && past.contains("paid"), "{past}");
    screenshot(&browser, "funds").await;
    browser.close().await.expect("close");
}

//! The client's pages show the API's figures: every table of a month's
//! report, its totals, and the home's calls and movements.

use serde_json::{json, Value};
use switchboard_core::{AccountKind, Money, Role};

use crate::harness::TestApp;

/// The cells of each row of the table `id` in `page`, tags stripped, the
/// footer's rows last.
pub fn table_rows(page: &str, id: &str) -> Vec<Vec<String>> {
    let named = page
        .find(&format!(" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id} in {page}"));
    let start = page[..named].rfind("<table").expect("a table");
    let table = &page[start..start + page[start..].find("</table>").expect("a closed table")];
    let body = &table[table.find("</thead>").map_or(0, |i| i + 8)..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<t")
                .skip(1)
                .filter(|cell| cell.starts_with('d') || cell.starts_with('h'))
                .map(|cell| text_of(&cell[cell.find('>').map_or(0, |i| i + 1)..]))
                .collect()
        })
        .collect()
}

/// Text without tags, entities of the pages decoded, spaces collapsed.
pub fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A client whose PBX made three weeks of office calls, rated at a price
/// that leaves fractions of a cent on nearly every call; returns the
/// client's signed-in browser.
async fn client_with_a_month_of_calls(app: &TestApp) -> reqwest::Client {
    let mut conn = app.conn().await;
    let calling_plan = switchboard_core::calls::calling_plans::create(
        &mut conn,
        "Fractional",
        "USD",
        Some(switchboard_core::money::PerMinute(6_789_000)),
    )
    .await
    .expect("a calling plan");
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        12_345,
        chrono::Duration::days(60),
    )
    .await;
    let plan = crate::commerce::seed_plan(app).await;
    app.bill_with(plan, calling_plan).await;
    let account = app
        .account("Figures Co", AccountKind::Retail, None, 100_000_000)
        .await;
    let (_, password) = app.user("figures", Role::Client, Some(account)).await;
    let pbx = app.pbx(account, plan, "active", "pbx-figures").await;
    let records =
        switchboard_controller::traffic::generate(5, chrono::Utc::now(), 40, 6, "15550100199");
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
    app.signed_in("figures", &password).await
}

const FIGURES: &str = "key calls answered minutes cost { micros formatted }";

/// A group's row as the page should show it, from the API's numbers.
fn expected_row(group: &Value) -> Vec<String> {
    vec![
        group["key"].as_str().expect("key").replace('_', " "),
        group["calls"].to_string(),
        group["answered"].to_string(),
        group["minutes"].to_string(),
        group["cost"]["formatted"]
            .as_str()
            .expect("cost")
            .to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_months_tables_show_the_apis_figures_and_each_totals_to_the_summary() {
    let app = TestApp::spawn().await;
    let client = client_with_a_month_of_calls(&app).await;
    let mut months_with_calls = 0;
    for (month, query) in [("CURRENT", "current"), ("LAST", "last")] {
        let api = app
            .graphql(
                &client,
                &format!(
                    "query($m: ReportMonth!) {{ viewer {{ account {{ report(month: $m) {{
                        total {{ {FIGURES} }} byDirection {{ {FIGURES} }} byExtension {{ {FIGURES} }}
                        byPbx {{ {FIGURES} }} byStatus {{ key calls }} }} }} }} }}"
                ),
                json!({ "m": month }),
            )
            .await;
        let report = &api["data"]["viewer"]["account"]["report"];
        let total = &report["total"];
        assert!(total.is_object(), "{api}");
        if total["calls"] == 0 {
            continue;
        }
        months_with_calls += 1;
        let page = app
            .page(&client, &format!("/portal/reports?month={query}"))
            .await;
        // The summary.
        for (testid, figure) in [
            ("total-calls", total["calls"].to_string()),
            ("total-answered", total["answered"].to_string()),
            ("total-minutes", total["minutes"].to_string()),
            (
                "total-cost",
                total["cost"]["formatted"]
                    .as_str()
                    .expect("cost")
                    .to_owned(),
            ),
        ] {
            assert!(
                page.contains(&format!("data-testid=\"{testid}\">{figure}<")),
                "{month} {testid} should read {figure}"
            );
        }
        // The total is the exact sum, rounded once.
        let exact: i64 = report["byExtension"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|g| {
                g["cost"]["micros"]
                    .as_str()
                    .expect("micros")
                    .parse::<i64>()
                    .expect("digits")
            })
            .sum();
        assert_eq!(total["cost"]["micros"], exact.to_string());
        assert_eq!(total["cost"]["formatted"], Money(exact).format("USD"));
        // Every table: its rows are the API's groups, its footer the total.
        for (id, field) in [
            ("by-extension", "byExtension"),
            ("by-direction", "byDirection"),
        ] {
            let mut expected: Vec<Vec<String>> = report[field]
                .as_array()
                .expect("groups")
                .iter()
                .map(expected_row)
                .collect();
            let mut footer = expected_row(total);
            footer[0] = "All calls".into();
            expected.push(footer);
            assert_eq!(table_rows(&page, id), expected, "{month} #{id}");
        }
        let mut statuses: Vec<Vec<String>> = report["byStatus"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| {
                vec![
                    g["key"].as_str().expect("key").replace('_', " "),
                    g["calls"].to_string(),
                ]
            })
            .collect();
        statuses.push(vec!["All calls".into(), total["calls"].to_string()]);
        assert_eq!(
            table_rows(&page, "by-status"),
            statuses,
            "{month} #by-status"
        );
    }
    assert!(
        months_with_calls > 0,
        "three weeks of calls fall in one month or two"
    );

    // The home lists the API's last calls and movements.
    let api = app
        .graphql(
            &client,
            "{ viewer { account { recentCalls(limit: 10) { to rating cost { exact } }
                recentEntries(limit: 10) { memo amount { formatted } } } } }",
            json!({}),
        )
        .await;
    let account = &api["data"]["viewer"]["account"];
    let home = app.page(&client, "/portal").await;
    let calls: Vec<(String, String)> = table_rows(&home, "calls")
        .into_iter()
        .map(|cells| (cells[2].clone(), cells[6].clone()))
        .collect();
    let expected: Vec<(String, String)> = account["recentCalls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            // A call no rate matched yet is pending, not free.
            let cost = if c["rating"] == "unrated" {
                "pending"
            } else {
                c["cost"]["exact"].as_str().expect("cost")
            };
            (c["to"].as_str().expect("to").to_owned(), cost.to_owned())
        })
        .collect();
    assert_eq!(calls, expected);
    let entries: Vec<(String, String)> = table_rows(&home, "movements")
        .into_iter()
        .map(|cells| (cells[2].clone(), cells[3].clone()))
        .collect();
    let expected: Vec<(String, String)> = account["recentEntries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["memo"].as_str().expect("memo").to_owned(),
                e["amount"]["formatted"]
                    .as_str()
                    .expect("amount")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(entries, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn months_read_as_people_write_them_and_an_empty_month_says_so() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("quiet", 1_000_000).await;
    let client = app.signed_in(&username, &password).await;
    let now = chrono::Utc::now();
    let this_month = now.format("%B %Y").to_string();
    let page = app.page(&client, "/portal/reports").await;
    assert!(
        page.contains(&format!("<h1>Calls in {this_month}</h1>")),
        "{page}"
    );
    assert!(
        page.contains(&format!("No calls in {this_month} yet.")),
        "{page}"
    );
    assert!(!page.contains("<figure"), "no empty charts");
    assert!(!page.contains("calls.csv"), "no empty download");
    let first = chrono::Datelike::with_day0(&now.date_naive(), 0).expect("the first");
    let last_month = (first - chrono::Duration::days(1))
        .format("%B %Y")
        .to_string();
    let page = app.page(&client, "/portal/reports?month=last").await;
    assert!(
        page.contains(&format!("<h1>Calls in {last_month}</h1>")),
        "{page}"
    );
    assert!(
        page.contains(&format!("No calls in {last_month}.")),
        "{page}"
    );
}

//! Calling plans through the API: importing price lists in the formats
//! people bring, all or nothing, versioned by the moment they take effect.

use serde_json::json;
use switchboard_core::Role;

use crate::harness::TestApp;

async fn admin(app: &TestApp) -> reqwest::Client {
    let (_, password) = app.user("rates-admin", Role::Admin, None).await;
    app.signed_in("rates-admin", &password).await
}

async fn calling_plan(app: &TestApp, http: &reqwest::Client) -> String {
    let created = app
        .graphql(http, "mutation { createCallingPlan(name: \"Standard\", inboundPerMinute: \"0.005\") { id } }", json!({}))
        .await;
    created["data"]["createCallingPlan"]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

async fn import(
    app: &TestApp,
    http: &reqwest::Client,
    plan: &str,
    csv: &str,
    effective_at: Option<&str>,
) -> serde_json::Value {
    app.graphql(
        http,
        "mutation($i: RateImportInput!) { importRates(input: $i) { added changed removed unchanged } }",
        json!({ "i": { "callingPlanId": plan, "csv": csv, "effectiveAt": effective_at } }),
    )
    .await
}

/// Imports a whole price list: prefixes it does not name are removed.
async fn import_whole_list(
    app: &TestApp,
    http: &reqwest::Client,
    plan: &str,
    csv: &str,
    effective_at: Option<&str>,
) -> serde_json::Value {
    app.graphql(
        http,
        "mutation($i: RateImportInput!) { importRates(input: $i) { added changed removed unchanged } }",
        json!({ "i": { "callingPlanId": plan, "csv": csv, "effectiveAt": effective_at, "replace": true } }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_file_is_previewed_then_imported_all_or_nothing() {
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    let bad = "dialprefix;destination;rateinitial;initblock;billingblock;connectcharge\n44;UK;0.012;60;60;0\n44x;Oops;0.1;30;6;0\n";
    let preview = app
        .graphql(
            &http,
            "query($i: RateImportInput!) { previewRateImport(input: $i) { summary { added } errorCount errors { line column reason } } }",
            json!({ "i": { "callingPlanId": plan, "csv": bad } }),
        )
        .await;
    let preview = &preview["data"]["previewRateImport"];
    assert_eq!(preview["errorCount"], 1);
    assert_eq!(preview["errors"][0]["line"], 3);
    assert_eq!(preview["errors"][0]["column"], "dialprefix");
    let refused = import(&app, &http, &plan, bad, None).await;
    assert!(refused["errors"][0]["message"]
        .as_str()
        .expect("a message")
        .contains("nothing was imported"));
    let count = app
        .graphql(
            &http,
            "query($id: ID!) { callingPlan(id: $id) { rateCount } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(
        count["data"]["callingPlan"]["rateCount"], 0,
        "all or nothing"
    );

    let good = "Code,Destination,Connection Cost,Cost/Min,Initial Increment,Increment\n1,USA,0,0.009,6,6\n44,UK,0.05,0.012,60,60\n447,UK Mobile,0,0.1,30,6\n";
    let imported = import(&app, &http, &plan, good, None).await;
    assert_eq!(
        imported["data"]["importRates"],
        json!({ "added": 3, "changed": 0, "removed": 0, "unchanged": 0 }),
        "{imported}"
    );
    let priced = app
        .graphql(
            &http,
            "query($id: ID!) { callingPlan(id: $id) { uk: priceCall(number: \"+44 20 7946 0958\", seconds: 61) { prefix billedSeconds cost { micros } } mobile: priceCall(number: \"011447700900123\", seconds: 31) { prefix billedSeconds cost { micros } } nowhere: priceCall(number: \"+33 1 23 45 67 89\", seconds: 60) { prefix } } }",
            json!({ "id": plan }),
        )
        .await;
    let plan_data = &priced["data"]["callingPlan"];
    assert_eq!(
        plan_data["uk"],
        json!({ "prefix": "44", "billedSeconds": 120, "cost": { "micros": "74000" } })
    );
    assert_eq!(
        plan_data["mobile"],
        json!({ "prefix": "447", "billedSeconds": 36, "cost": { "micros": "60000" } })
    );
    assert_eq!(
        plan_data["nowhere"],
        serde_json::Value::Null,
        "no matching rate: unrated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_price_change_takes_effect_at_its_moment_and_keeps_its_history() {
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    import(
        &app,
        &http,
        &plan,
        "prefix,per_minute\n1,0.01\n44,0.02\n",
        None,
    )
    .await;
    let later = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let changed = import_whole_list(
        &app,
        &http,
        &plan,
        "prefix,per_minute\n1,0.015\n",
        Some(&later),
    )
    .await;
    assert_eq!(
        changed["data"]["importRates"],
        json!({ "added": 0, "changed": 1, "removed": 1, "unchanged": 0 }),
        "{changed}"
    );
    let past = import(
        &app,
        &http,
        &plan,
        "prefix,per_minute\n1,0.5\n",
        Some("2020-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        past["errors"][0]["message"],
        "Rates take effect now or later: calls already made keep their price."
    );

    let soon = (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    let after = (chrono::Utc::now() + chrono::Duration::days(11)).to_rfc3339();
    let read = app
        .graphql(
            &http,
            "query($id: ID!, $soon: DateTime!, $after: DateTime!) { callingPlan(id: $id) { now: rateCount(at: $soon) later: rateCount(at: $after) before: priceCall(number: \"15550100199\", seconds: 60, at: $soon) { cost { micros } } after: priceCall(number: \"15550100199\", seconds: 60, at: $after) { cost { micros } } history(prefix: \"44\") { perMinute { amount } removed } csv: exportCsv(at: $after) } }",
            json!({ "id": plan, "soon": soon, "after": after }),
        )
        .await;
    let data = &read["data"]["callingPlan"];
    assert_eq!(
        (data["now"].clone(), data["later"].clone()),
        (json!(2), json!(1)),
        "{read}"
    );
    assert_eq!(data["before"]["cost"]["micros"], "10000");
    assert_eq!(data["after"]["cost"]["micros"], "15000");
    assert_eq!(
        data["history"],
        json!([{ "perMinute": { "amount": "0.02" }, "removed": false }, { "perMinute": { "amount": "0.02" }, "removed": true }])
    );
    assert_eq!(data["csv"], "prefix,description,per_minute,connection_fee,initial_increment,subsequent_increment,minimum_duration\n1,,0.015,0,60,60,0\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_previews_then_confirms_a_price_list_on_the_rates_page() {
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    let page = format!("/admin/calling-plans/{plan}");
    let post = |fields: Vec<(&'static str, String)>| post_import(&app, &http, &page, fields);
    let bad = post(vec![
        ("csv", "prefix,per_minute\n44,abc\n".into()),
        ("replace", "yes".into()),
    ])
    .await;
    let bad = bad.text().await.expect("body");
    assert!(
        bad.contains("1 rows cannot be imported") && bad.contains("per_minute"),
        "the bad row is named"
    );
    let preview = post(vec![
        (
            "csv",
            "prefix,description,per_minute\n44,UK,0.02\n1,USA,0.01\n".into(),
        ),
        ("replace", "yes".into()),
    ])
    .await;
    let preview = preview.text().await.expect("body");
    assert!(
        preview.contains("2 added, 0 changed, 0 removed"),
        "a preview before anything changes"
    );
    assert!(preview.contains("Import these rates"));
    let previewed = hidden_field(&preview, "previewed");
    let still_empty = app
        .graphql(
            &http,
            "query($id: ID!) { callingPlan(id: $id) { rateCount } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(still_empty["data"]["callingPlan"]["rateCount"], 0);
    let confirmed = post(vec![
        (
            "csv",
            "prefix,description,per_minute\n44,UK,0.02\n1,USA,0.01\n".into(),
        ),
        ("replace", "yes".into()),
        ("confirm", "yes".into()),
        ("previewed", previewed),
    ])
    .await;
    assert_eq!(confirmed.status(), 303);
    let shown = app
        .page(
            &http,
            confirmed.headers()["location"].to_str().expect("text"),
        )
        .await;
    assert!(shown.contains("Imported: 2 added, 0 changed, 0 removed."));
    assert!(shown.contains("United") || shown.contains("UK"));
    // A later version of the UK rate: the page shows both, oldest first.
    let fields = vec![
        ("csv", "prefix,description,per_minute\n44,UK,0.03\n".into()),
        ("effective_at", "2099-01-01T00:00:00Z".into()),
    ];
    let preview = post(fields.clone()).await.text().await.expect("body");
    let mut confirm = fields;
    confirm.push(("confirm", "yes".into()));
    confirm.push(("previewed", hidden_field(&preview, "previewed")));
    let later = post(confirm).await;
    assert_eq!(later.status(), 303);
    let history = app.page(&http, &format!("{page}?history=44")).await;
    let versions = &history[history.find("id=\"rate-history\"").expect("the versions")..];
    let (now, then) = (
        versions.find("$0.02").expect("the current price"),
        versions.find("$0.03").expect("the coming price"),
    );
    assert!(now < then, "oldest first");
    assert!(versions.contains("2099-01-01 00:00"));
    let (_, staff_password) = app.user("rates-staff", Role::Staff, None).await;
    let staff = app.signed_in("rates-staff", &staff_password).await;
    let read_only = app.page(&staff, &page).await;
    assert!(
        !read_only.contains("Import a price list"),
        "staff read rates; admins change them"
    );
}

/// Posts the rates page's import form (a preview, or a confirmation).
async fn post_import(
    app: &TestApp,
    http: &reqwest::Client,
    page: &str,
    mut fields: Vec<(&'static str, String)>,
) -> reqwest::Response {
    let token = app.csrf_token(http, page).await;
    fields.push(("csrf", token));
    http.post(app.url(&format!("{page}/import")))
        .form(&fields)
        .send()
        .await
        .expect("POST")
}

/// The value of a hidden form field on a page.
fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .map(|at| at + marker.len())
        .unwrap_or_else(|| panic!("no {name} field"));
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_changed_after_its_preview_is_previewed_again_and_removal_is_never_the_default() {
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    import(
        &app,
        &http,
        &plan,
        "prefix,per_minute\n1,0.01\n44,0.02\n33,0.03\n",
        None,
    )
    .await;
    let page = format!("/admin/calling-plans/{plan}");
    let form = app.page(&http, &page).await;
    assert!(
        form.contains("id=\"replace\"") && !form.contains("name=\"replace\" value=\"yes\" checked"),
        "removing the prefixes a file does not name is never ticked by default"
    );
    let post = |fields: Vec<(&'static str, String)>| post_import(&app, &http, &page, fields);
    let csv = "prefix,per_minute\n1,0.011\n".to_owned();
    let preview = post(vec![("csv", csv.clone())])
        .await
        .text()
        .await
        .expect("body");
    assert!(
        preview.contains("0 added, 1 changed, 0 removed"),
        "{preview}"
    );
    assert!(!preview.contains("removal-warning"));
    let previewed = hidden_field(&preview, "previewed");
    // Ticking removal after a preview that removed nothing: previewed again,
    // now saying loudly what would go; nothing imported.
    let sneaked = post(vec![
        ("csv", csv.clone()),
        ("replace", "yes".into()),
        ("confirm", "yes".into()),
        ("previewed", previewed),
    ])
    .await;
    assert_eq!(sneaked.status(), 200, "shown a new preview, not imported");
    let sneaked = sneaked.text().await.expect("body");
    assert!(sneaked.contains("0 added, 1 changed, 2 removed"));
    assert!(
        sneaked.contains("id=\"removal-warning\"")
            && sneaked.contains("2 prefixes will be removed")
    );
    let count = app
        .graphql(&http, "query($id: ID!) { callingPlan(id: $id) { rateCount rates(prefix: \"1\") { perMinute { amount } } } }", json!({ "id": plan }))
        .await;
    assert_eq!(
        count["data"]["callingPlan"]["rateCount"], 3,
        "nothing changed"
    );
    assert_eq!(
        count["data"]["callingPlan"]["rates"][0]["perMinute"]["amount"],
        "0.01"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_leaves_columns_out_keeps_the_current_terms_and_the_preview_names_every_change()
{
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    import(
        &app,
        &http,
        &plan,
        "prefix,description,per_minute,connection_fee,initial_increment,subsequent_increment,minimum_duration\n44,UK,0.02,0.05,30,6,10\n",
        None,
    )
    .await;
    let file = "prefix,rate,surcharge\n44,0.0212345,9\n33,0.03,1\n";
    let preview = app
        .graphql(
            &http,
            "query($i: RateImportInput!) { previewRateImport(input: $i) { summary { added changed removed } format notInFile unknownColumns columns { header meaning } changed { prefix changes { field from to } becomes { connectionFee { micros } initialIncrement subsequentIncrement minimumDuration } } added { prefix connectionFee { micros } initialIncrement subsequentIncrement } } }",
            json!({ "i": { "callingPlanId": plan, "csv": file } }),
        )
        .await;
    let p = &preview["data"]["previewRateImport"];
    assert_eq!(
        p["summary"],
        json!({ "added": 1, "changed": 1, "removed": 0 }),
        "{preview}"
    );
    assert_eq!(
        p["unknownColumns"],
        json!(["surcharge"]),
        "an unrecognized header is named"
    );
    assert!(p["notInFile"]
        .as_array()
        .expect("a list")
        .contains(&json!("connection fee")));
    assert_eq!(
        p["changed"][0]["changes"],
        json!([{ "field": "per-minute price", "from": "$0.02", "to": "$0.0212345" }]),
        "only the price changes, to the decimal"
    );
    assert_eq!(
        p["changed"][0]["becomes"],
        json!({ "connectionFee": { "micros": "50000" }, "initialIncrement": 30, "subsequentIncrement": 6, "minimumDuration": 10 }),
        "the fee, blocks and minimum the file leaves out are kept"
    );
    assert_eq!(
        p["added"][0],
        json!({ "prefix": "33", "connectionFee": { "micros": "0" }, "initialIncrement": 60, "subsequentIncrement": 60 }),
        "a new prefix gets the defaults, as the preview says"
    );
    let done = import(&app, &http, &plan, file, None).await;
    assert_eq!(done["data"]["importRates"]["changed"], 1, "{done}");
    let priced = app
        .graphql(
            &http,
            "query($id: ID!) { callingPlan(id: $id) { priceCall(number: \"+44 20 7946 0958\", seconds: 31) { billedSeconds cost { micros } } } }",
            json!({ "id": plan }),
        )
        .await;
    // 36 s at 0.0212345 a minute = 0.012740700 → 12,741, plus the kept
    // connection fee of 0.05.
    assert_eq!(
        priced["data"]["callingPlan"]["priceCall"],
        json!({ "billedSeconds": 36, "cost": { "micros": "62741" } })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_export_carries_no_formulas_and_reads_back_unchanged() {
    let app = TestApp::spawn().await;
    let http = admin(&app).await;
    let plan = calling_plan(&app, &http).await;
    let file = "prefix,description,per_minute\n1,=1+2,0.01\n44,@SUM(A1),0.1\n33,-cheap,0.2\n";
    let imported = import(&app, &http, &plan, file, None).await;
    assert!(imported["errors"].is_null(), "{imported}");
    let exported = app
        .graphql(
            &http,
            "query($id: ID!) { callingPlan(id: $id) { exportCsv } }",
            json!({ "id": plan }),
        )
        .await;
    let csv = exported["data"]["callingPlan"]["exportCsv"]
        .as_str()
        .expect("CSV")
        .to_owned();
    let cells: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "a formula reached the export: {cell}\n{csv}"
        );
    }
    assert!(
        cells.contains(&"'=1+2") && cells.contains(&"'@SUM(A1)") && cells.contains(&"'-cheap"),
        "{csv}"
    );
    // Our own export, imported again, changes nothing.
    let preview = app
        .graphql(
            &http,
            "query($i: RateImportInput!) { previewRateImport(input: $i) { summary { changed unchanged } errorCount } }",
            json!({ "i": { "callingPlanId": plan, "csv": csv } }),
        )
        .await;
    assert_eq!(
        preview["data"]["previewRateImport"]["summary"],
        json!({ "changed": 0, "unchanged": 3 }),
        "{preview}"
    );
}

//! Every call billed once and right: direction from a PBX's known trunks,
//! numbers read by its dialling rules, the legs that cost money, calls as
//! people count them, and what the database itself refuses.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use switchboard_core::schema::{calls, cdr_rejects, cdrs, pbxes};

use crate::calls::{add_rate, another_pbx, balance_of, pbx_with_rates};
use crate::harness::TestApp;

/// A PBX's push token.
pub(crate) async fn push_token(app: &TestApp, staff: &reqwest::Client, pbx: i64) -> String {
    let issued = app
        .graphql(
            staff,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await;
    issued["data"]["issueCdrToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {issued}"))
        .to_owned()
}

/// Pushes CDRs as a PBX does; returns the answer.
pub(crate) async fn push(app: &TestApp, token: &str, cdrs: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(app.url("/cdrs/push"))
        .bearer_auth(token)
        .json(&json!({ "cdrs": cdrs }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON")
}

/// Sets a PBX's dialling rules through the API.
async fn set_rules(app: &TestApp, admin: &reqwest::Client, pbx: i64, rules: serde_json::Value) {
    let set = app
        .graphql(
            admin,
            "mutation($p: ID!, $r: DiallingRulesInput!) { setDiallingRules(pbxId: $p, rules: $r) { trunks } }",
            json!({ "p": pbx.to_string(), "r": rules }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
}

/// North America's rules with `changes` on top.
fn rules(changes: serde_json::Value) -> serde_json::Value {
    let mut rules = json!({
        "countryCode": "1", "nationalPrefix": "1", "internationalPrefix": "011",
        "outsideLine": "", "areaCode": "",
        "serviceNumbers": ["911", "933", "112", "211", "311", "411", "511", "611", "711", "811", "988"],
        "trunks": []
    });
    for (key, value) in changes.as_object().expect("an object") {
        rules[key] = value.clone();
    }
    rules
}

/// An answered outbound call of `billsec` seconds from extension 201 to
/// `dst` through the trunk.
fn outbound(uniqueid: &str, dst: &str, billsec: i32) -> serde_json::Value {
    json!({ "calldate": "2026-11-21T08:00:00Z", "src": "201", "dst": dst, "dcontext": "from-internal",
            "channel": "PJSIP/201-00000001", "dstchannel": "PJSIP/voipms-00000002",
            "duration": billsec + 5, "billsec": billsec, "disposition": "ANSWERED", "uniqueid": uniqueid })
}

/// The calling plan a test PBX's plan bills with.
async fn calling_plan_of(conn: &mut diesel_async::AsyncPgConnection, pbx: i64) -> i64 {
    use switchboard_core::schema::plans;
    pbxes::table
        .inner_join(plans::table)
        .filter(pbxes::id.eq(pbx))
        .select(plans::calling_plan_id.assume_not_null())
        .first(conn)
        .await
        .expect("a calling plan")
}

/// What each stored record of a PBX cost, by uniqueid.
async fn costs(
    conn: &mut diesel_async::AsyncPgConnection,
    pbx: i64,
) -> Vec<(String, String, String, i64)> {
    cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .order(cdrs::id)
        .select((cdrs::uniqueid, cdrs::direction, cdrs::rating, cdrs::cost))
        .load(conn)
        .await
        .expect("the records")
}

#[tokio::test(flavor = "multi_thread")]
async fn emergency_service_and_local_numbers_are_never_rated_as_international() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    let plan = calling_plan_of(&mut conn, pbx).await;
    // India (+91), Brazil (+55) and an expensive +1 lookalike of 112.
    add_rate(&mut conn, plan, "91", 200_000, chrono::Duration::days(30)).await;
    add_rate(&mut conn, plan, "55", 300_000, chrono::Duration::days(30)).await;
    let token = push_token(&app, &admin, pbx).await;
    let answer = push(
        &app,
        &token,
        json!([
            outbound("emergency", "911", 60),
            outbound("european-emergency", "112", 60),
            outbound("local", "5550199", 60),
        ]),
    )
    .await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(
        costs(&mut conn, pbx).await,
        [
            ("emergency".into(), "outbound".into(), "free".into(), 0),
            (
                "european-emergency".into(),
                "outbound".into(),
                "free".into(),
                0
            ),
            ("local".into(), "outbound".into(), "unrated".into(), 0),
        ],
        "911 is not India, 112 not +1, and a local number without its area code is not Brazil"
    );
    // With the PBX's rules: an outside-line 9 and the area code of its
    // local numbers.
    let second = another_pbx(&app, pbx).await;
    set_rules(
        &app,
        &admin,
        second,
        rules(json!({ "outsideLine": "9", "areaCode": "212" })),
    )
    .await;
    let token = push_token(&app, &admin, second).await;
    let before = balance_of(&mut conn, account).await;
    push(
        &app,
        &token,
        json!([
            outbound("nine-emergency", "9911", 60),
            outbound("plain-emergency", "911", 60),
            outbound("nine-national", "915550100100", 60),
            outbound("nine-local", "95550199", 60),
            outbound("nine-international", "9011442079460958", 31),
        ]),
    )
    .await;
    assert_eq!(
        costs(&mut conn, second).await,
        [
            ("nine-emergency".into(), "outbound".into(), "free".into(), 0),
            (
                "plain-emergency".into(),
                "outbound".into(),
                "free".into(),
                0
            ),
            (
                "nine-national".into(),
                "outbound".into(),
                "rated".into(),
                10_000
            ),
            (
                "nine-local".into(),
                "outbound".into(),
                "rated".into(),
                10_000
            ),
            // 36 s of the UK at $0.10 and its $0.02 connection fee.
            (
                "nine-international".into(),
                "outbound".into(),
                "rated".into(),
                80_000
            ),
        ],
        "the outside line is dropped before anything else; never India's 91"
    );
    assert_eq!(before - balance_of(&mut conn, account).await, 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pbxs_known_trunks_decide_direction_and_the_same_call_costs_the_same_from_every_source() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    let plan = calling_plan_of(&mut conn, pbx).await;
    add_rate(&mut conn, plan, "211", 900_000, chrono::Duration::days(30)).await;
    // An office PBX's Master.csv: an outside caller reaches the DID 211553
    // on the numerically named trunk SIP/211553 and is forwarded to another
    // PBX's trunk.
    let forwarded = concat!(
        "\"\",\"15550177777\",\"211553\",\"from-internal\",\"\"\"Caller\"\" <15550177777>\",\"SIP/211553-0000abcd\",",
        "\"SIP/otherpbx-0000abce\",\"Dial\",\"SIP/otherpbx/211553\",\"2026-11-20 09:00:00\",\"2026-11-20 09:00:03\",",
        "\"2026-11-20 09:01:03\",63,60,\"ANSWERED\",\"DOCUMENTATION\",\"1763629200.7\",\"\"\n",
    );
    set_rules(
        &app,
        &admin,
        pbx,
        rules(json!({ "trunks": ["SIP/211553", "SIP/otherpbx"] })),
    )
    .await;
    let imported = app
        .graphql(
            &admin,
            "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted } }",
            json!({ "i": { "pbxId": pbx.to_string(), "csv": forwarded } }),
        )
        .await;
    assert_eq!(
        imported["data"]["importCdrCsv"]["accepted"], 1,
        "{imported}"
    );
    assert_eq!(
        costs(&mut conn, pbx).await,
        [(
            "1763629200.7".into(),
            "inbound".into(),
            "rated".into(),
            6_000
        )],
        "an inbound call at the inbound price ($0.006 a minute), not a call to South Sudan"
    );

    // An ordinary inbound call pushed with FreePBX's `did` and imported from
    // Master.csv (which has no such column): one direction, one price.
    let pushed_to = another_pbx(&app, pbx).await;
    let imported_to = another_pbx(&app, pushed_to).await;
    let token = push_token(&app, &admin, pushed_to).await;
    push(
        &app,
        &token,
        json!([{ "calldate": "2026-11-20T11:00:00Z", "src": "15550177777", "dst": "203", "dcontext": "from-trunk",
                 "channel": "PJSIP/voipms-00000040", "dstchannel": "PJSIP/203-00000041", "duration": 54, "billsec": 50,
                 "disposition": "ANSWERED", "uniqueid": "1763636400.40", "did": "15550100199" }]),
    )
    .await;
    let line = "\"\",\"15550177777\",\"203\",\"from-trunk\",\"\",\"PJSIP/voipms-00000040\",\"PJSIP/203-00000041\",\"Dial\",\"\",\"2026-11-20 11:00:00\",\"2026-11-20 11:00:04\",\"2026-11-20 11:00:54\",54,50,\"ANSWERED\",\"DOCUMENTATION\",\"1763636400.40\",\"\"\n";
    app.graphql(
        &admin,
        "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted } }",
        json!({ "i": { "pbxId": imported_to.to_string(), "csv": line } }),
    )
    .await;
    let (pushed, imported) = (
        costs(&mut conn, pushed_to).await,
        costs(&mut conn, imported_to).await,
    );
    assert_eq!(pushed, imported, "the same call from two sources");
    assert_eq!(pushed[0].3, 5_000, "50 s by the second at $0.006");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_through_a_local_channel_to_a_mobile_is_billed_and_plumbing_is_not() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let token = push_token(&app, &admin, pbx).await;
    push(
        &app,
        &token,
        json!([
            // Follow-me: the inbound call rings a mobile through Local/…;2.
            { "calldate": "2026-11-21T09:00:00Z", "src": "15550177777", "dst": "15550100188", "dcontext": "from-internal",
              "channel": "Local/15550100188@from-internal-00000012;2", "dstchannel": "PJSIP/voipms-00000013",
              "duration": 95, "billsec": 90, "disposition": "ANSWERED", "uniqueid": "forward", "linkedid": "call-1" },
            // A queue member reached through Local/: plumbing, not a call.
            { "calldate": "2026-11-21T09:05:00Z", "src": "15550177777", "dst": "201", "dcontext": "from-queue",
              "channel": "Local/201@from-queue-00000001;2", "dstchannel": "PJSIP/201-00000070",
              "duration": 65, "billsec": 60, "disposition": "ANSWERED", "uniqueid": "plumbing", "linkedid": "call-2" },
        ]),
    )
    .await;
    let mut conn = app.conn().await;
    assert_eq!(
        costs(&mut conn, pbx).await,
        [
            ("forward".into(), "outbound".into(), "rated".into(), 20_000),
            ("plumbing".into(), "internal".into(), "free".into(), 0),
        ],
        "90 s to a US mobile: two minutes at $0.01"
    );
    let held: Vec<String> = calls::table
        .filter(calls::pbx_id.eq(pbx))
        .select(calls::call_key)
        .load(&mut conn)
        .await
        .expect("calls");
    assert_eq!(held, ["call-1"], "the helper leg makes no call");
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_counted_as_people_count_them_and_a_bad_record_is_kept_once() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let token = push_token(&app, &admin, pbx).await;
    let inbound = |uniqueid: &str, at: &str, dstchannel: &str, billsec: i32| {
        json!({ "calldate": at, "src": "15550177777", "dst": "15550100199", "dcontext": "ext-queues",
                "channel": "PJSIP/voipms-00000050", "dstchannel": dstchannel, "duration": billsec + 4,
                "billsec": billsec, "disposition": "ANSWERED", "uniqueid": uniqueid, "linkedid": uniqueid })
    };
    let mut transferred = inbound("transfer", "2026-11-21T10:00:00Z", "PJSIP/201-1", 30);
    let mut second_half = inbound("transfer-b", "2026-11-21T10:00:31Z", "PJSIP/202-2", 90);
    transferred["linkedid"] = json!("transfer");
    second_half["linkedid"] = json!("transfer");
    let malformed = json!({ "calldate": "2026-11-21T10:05:00Z", "disposition": "ANSWERED", "duration": 5, "billsec": 9, "uniqueid": "bad" });
    let answer = push(
        &app,
        &token,
        json!([
            // A queue call answered by 201 through Local/.
            inbound(
                "queued",
                "2026-11-21T09:00:00Z",
                "Local/201@from-queue-00000001;1",
                100
            ),
            transferred,
            second_half,
            malformed.clone(),
        ]),
    )
    .await;
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (json!(3), json!(1))
    );
    let again = push(&app, &token, json!([malformed])).await;
    assert_eq!(again["rejected"], 1);
    let mut conn = app.conn().await;
    let rejects: i64 = cdr_rejects::table
        .filter(cdr_rejects::pbx_id.eq(pbx))
        .count()
        .get_result(&mut conn)
        .await
        .expect("rejects");
    assert_eq!(
        rejects, 1,
        "the same malformed record sent twice is listed once"
    );

    let held: Vec<(String, Option<String>, i32, i32, i64)> = calls::table
        .filter(calls::pbx_id.eq(pbx))
        .order(calls::start)
        .select((
            calls::call_key,
            calls::extension,
            calls::billsec,
            calls::billed_seconds,
            calls::cost,
        ))
        .load(&mut conn)
        .await
        .expect("calls");
    assert_eq!(
        held,
        [
            ("queued".into(), Some("201".into()), 100, 100, 10_000),
            // Both halves talked and both were billed (inbound, by the second
            // at $0.006): 30 + 90 seconds, 3,000 + 9,000 micro-units.
            ("transfer".into(), Some("201".into()), 120, 120, 12_000),
        ],
        "the extension that answered; seconds and cost that agree with what was billed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_without_a_call_date_is_refused_not_dated_1970() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let token = push_token(&app, &admin, pbx).await;
    let answer = push(
        &app,
        &token,
        json!([{ "src": "201", "dst": "15550100100", "channel": "PJSIP/201-1", "dstchannel": "PJSIP/voipms-2",
                 "duration": 70, "billsec": 61, "disposition": "ANSWERED", "uniqueid": "undated" }]),
    )
    .await;
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (json!(0), json!(1)),
        "{answer}"
    );
    let mut conn = app.conn().await;
    let reason: String = cdr_rejects::table
        .filter(cdr_rejects::pbx_id.eq(pbx))
        .select(cdr_rejects::reason)
        .first(&mut conn)
        .await
        .expect("the reject");
    assert!(reason.contains("no call date"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_keeps_records_as_received_costs_positive_and_currencies_tied() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let token = push_token(&app, &admin, pbx).await;
    push(&app, &token, json!([outbound("kept", "15550100100", 61)])).await;
    let mut conn = app.conn().await;
    let refused = |result: Result<usize, diesel::result::Error>| result.is_err();
    assert!(
        refused(
            diesel::update(cdrs::table.filter(cdrs::pbx_id.eq(pbx)))
                .set(cdrs::dst.eq("15550100999"))
                .execute(&mut conn)
                .await
        ),
        "a record is kept as received"
    );
    assert!(
        refused(
            diesel::delete(cdrs::table.filter(cdrs::pbx_id.eq(pbx)))
                .execute(&mut conn)
                .await
        ),
        "a record is never deleted"
    );
    assert!(
        refused(
            diesel::update(cdrs::table.filter(cdrs::pbx_id.eq(pbx)))
                .set(cdrs::cost.eq(-1))
                .execute(&mut conn)
                .await
        ),
        "a cost is never negative"
    );
    assert!(
        refused(
            diesel::update(calls::table.filter(calls::pbx_id.eq(pbx)))
                .set(calls::cost.eq(-1))
                .execute(&mut conn)
                .await
        ),
        "a call's cost is never negative"
    );
    assert_eq!(
        diesel::update(cdrs::table.filter(cdrs::pbx_id.eq(pbx)))
            .set(cdrs::cost.eq(cdrs::cost))
            .execute(&mut conn)
            .await
            .expect("pricing may change"),
        1
    );

    // A plan in dollars cannot bill calls with a calling plan in euros.
    let euros = app
        .graphql(
            &admin,
            "mutation { createCallingPlan(name: \"Euro\", currency: \"EUR\") { id } }",
            json!({}),
        )
        .await;
    let euros = euros["data"]["createCallingPlan"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mixed = app
        .graphql(
            &admin,
            "mutation($c: ID!) { createPlan(input: { slug: \"mixed\", name: \"Mixed\", currency: \"USD\", setupFee: \"1\", monthlyFee: \"2\", includedExtensions: 3, callingPlanId: $c }) { id } }",
            json!({ "c": euros }),
        )
        .await;
    assert_eq!(
        mixed["errors"][0]["extensions"]["fields"][0]["field"], "calling_plan",
        "{mixed}"
    );
    // Nor may an account in euros have a PBX on a plan in dollars.
    let account = app
        .account("Euro Co", switchboard_core::AccountKind::Retail, None, 0)
        .await;
    diesel::update(switchboard_core::schema::accounts::table.find(account.0))
        .set(switchboard_core::schema::accounts::currency.eq("EUR"))
        .execute(&mut conn)
        .await
        .expect("an account without PBXs may change its currency");
    let plan: i64 = pbxes::table
        .find(pbx)
        .select(pbxes::plan_id)
        .first(&mut conn)
        .await
        .expect("the plan");
    let crossed = diesel::insert_into(pbxes::table)
        .values((
            pbxes::account_id.eq(account.0),
            pbxes::plan_id.eq(plan),
            pbxes::request_id.eq("pbx-crossed"),
            pbxes::gui_password_sealed.eq("v1:x"),
            pbxes::state.eq("active"),
        ))
        .execute(&mut conn)
        .await;
    assert!(
        crossed.is_err(),
        "a PBX's plan is in its account's currency"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_accounts_ingestion_does_not_wait_for_another_accounts_posting() {
    use diesel_async::AsyncConnection;
    use switchboard_core::money::ledger::{self, Book, NewTransaction};
    let app = TestApp::spawn().await;
    let (_, _, pbx, _) = pbx_with_rates(&app).await;
    let other = app
        .account(
            "Other Co",
            switchboard_core::AccountKind::Retail,
            None,
            5_000_000,
        )
        .await;
    let mut conn = app.conn().await;
    ledger::book(&mut conn, Book::Revenue, "USD")
        .await
        .expect("the book exists");
    // The call's month is made, as the daily job makes months ahead of
    // their calls: making one waits for writes under way to the tables CDRs
    // refer to, the journal among them (see `calls::months::make_ready`).
    let month: chrono::DateTime<chrono::Utc> = "2026-11-21T08:00:00Z".parse().expect("a time");
    switchboard_core::calls::months::make_ready(&mut conn, &[month])
        .await
        .expect("the month made");
    // Another account's posting to the revenue book, held open.
    let mut holder = app.conn().await;
    holder
        .begin_test_transaction()
        .await
        .expect("a transaction never committed");
    let customer = ledger::customer_account(&mut holder, other)
        .await
        .expect("a ledger account");
    let revenue = ledger::book(&mut holder, Book::Revenue, "USD")
        .await
        .expect("the book");
    ledger::post(
        &mut holder,
        &NewTransaction {
            idempotency_key: "held-open".into(),
            kind: "charge".into(),
            memo: "held open".into(),
            currency: "USD".into(),
            posted_by: None,
            entries: vec![
                (customer, switchboard_core::Money(-1_000_000)),
                (revenue, switchboard_core::Money(1_000_000)),
            ],
        },
    )
    .await
    .expect("posted, not committed");
    // Meanwhile this account's calls are stored and billed; a lock it had to
    // wait for would time out.
    diesel::sql_query("SET lock_timeout = '3s'")
        .execute(&mut conn)
        .await
        .expect("a timeout");
    let record: switchboard_core::calls::cdr::RawCdr =
        serde_json::from_value(outbound("meanwhile", "15550100100", 61)).expect("a record");
    let stored = switchboard_core::calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        &[record],
        &[],
    )
    .await
    .expect("not blocked by another account's open posting");
    assert_eq!(stored.billed.micros(), 20_000);
    drop(holder);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plans_calling_plan_and_every_calls_exact_cost_are_read_through_the_api() {
    let app = TestApp::spawn().await;
    let (admin, client, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    let calling_plan = calling_plan_of(&mut conn, pbx).await;
    let plans = app
        .graphql(&admin, "{ allPlans { slug callingPlanId } }", json!({}))
        .await;
    assert_eq!(
        plans["data"]["allPlans"][0]["callingPlanId"],
        calling_plan.to_string(),
        "{plans}"
    );
    let created = app
        .graphql(
            &admin,
            "mutation($c: ID!) { createPlan(input: { slug: \"billed\", name: \"Billed\", setupFee: \"1\", monthlyFee: \"2\", includedExtensions: 3, callingPlanId: $c }) { callingPlanId } }",
            json!({ "c": calling_plan.to_string() }),
        )
        .await;
    assert_eq!(
        created["data"]["createPlan"]["callingPlanId"],
        calling_plan.to_string(),
        "{created}"
    );

    // Five calls at a fraction of a cent each: 7 s of a $0.0012345 rate.
    add_rate(
        &mut conn,
        calling_plan,
        "4420",
        1_234,
        chrono::Duration::days(30),
    )
    .await;
    let token = push_token(&app, &admin, pbx).await;
    let before = balance_of(&mut conn, account).await;
    let calls: Vec<serde_json::Value> = (0..5)
        .map(|n| {
            let mut call = outbound(&format!("fraction-{n}"), "442079460958", 7);
            call["calldate"] = json!(format!("2026-11-2{n}T08:00:00Z"));
            call
        })
        .collect();
    push(&app, &token, json!(calls)).await;
    let spent = before - balance_of(&mut conn, account).await;
    assert_eq!(
        spent,
        5 * 1_234,
        "60 s billed of each at 1,234 micro-units a minute"
    );
    let page = |after: Option<String>| {
        let (client, app) = (client.clone(), &app);
        async move {
            app.graphql(
                &client,
                "query($a: ID!, $after: String) { account(id: $a) { calls(from: \"2026-11-21T00:00:00Z\", to: \"2026-11-25T00:00:00Z\", first: 2, after: $after) { edges { cursor node { to billedSeconds cost { micros } } } pageInfo { hasNextPage } } } }",
                json!({ "a": account.to_string(), "after": after }),
            )
            .await
        }
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let answer = page(after.clone()).await;
        let connection = &answer["data"]["account"]["calls"];
        let edges = connection["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        for edge in edges {
            seen.push(
                edge["node"]["cost"]["micros"]
                    .as_str()
                    .expect("micros")
                    .parse::<i64>()
                    .expect("a number"),
            );
            after = Some(edge["cursor"].as_str().expect("a cursor").to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
    }
    assert_eq!(
        seen, [1_234; 4],
        "the 21st to the 24th, newest first, each exactly as billed"
    );
    // Each is shown as what it cost, on the client's home and the staff's
    // account page, not as "$0.00".
    let home = app.page(&client, "/portal").await;
    assert_eq!(home.matches("$0.001234").count(), 5, "{home}");
    let staff_page = app
        .page(&admin, &format!("/admin/accounts/{account}"))
        .await;
    assert_eq!(staff_page.matches("$0.001234").count(), 5, "{staff_page}");
    let csv = app
        .graphql(
            &client,
            "query($a: ID!) { account(id: $a) { callsCsv(month: CURRENT) } }",
            json!({ "a": account.to_string() }),
        )
        .await;
    let csv = csv["data"]["account"]["callsCsv"]
        .as_str()
        .unwrap_or_default();
    assert!(
        csv.lines()
            .next()
            .unwrap_or_default()
            .contains("billed_seconds,cost_usd_exact"),
        "the header says what the CSV holds: {csv}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_csv_is_read_in_the_pbxs_zone_and_the_calls_csv_holds_exact_amounts() {
    let app = TestApp::spawn().await;
    let (admin, client, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    diesel::update(pbxes::table.find(pbx))
        .set(pbxes::time_zone.eq("America/New_York"))
        .execute(&mut conn)
        .await
        .expect("the PBX's zone");
    let plan = calling_plan_of(&mut conn, pbx).await;
    // A tenth of a cent a minute, by the second: each 7 s call costs
    // 0.000117 — nothing, rounded to cents.
    diesel::insert_into(switchboard_core::schema::rates::table)
        .values((
            switchboard_core::schema::rates::calling_plan_id.eq(plan),
            switchboard_core::schema::rates::prefix.eq("4420"),
            switchboard_core::schema::rates::per_minute_nanos.eq(1_000_000i64),
            switchboard_core::schema::rates::initial_increment.eq(1),
            switchboard_core::schema::rates::subsequent_increment.eq(1),
            switchboard_core::schema::rates::effective_from
                .eq(chrono::Utc::now() - chrono::Duration::days(40)),
        ))
        .execute(&mut conn)
        .await
        .expect("a rate");
    let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
    let now = chrono::Utc::now();
    let local = (now - chrono::Duration::minutes(6)).with_timezone(&zone);
    // The calls' month in the account's zone (UTC), should they fall just
    // before the first of a month.
    let month = if chrono::Datelike::month(&(now - chrono::Duration::minutes(6)))
        == chrono::Datelike::month(&now)
    {
        "CURRENT"
    } else {
        "LAST"
    };
    let lines: String = (0..4)
        .map(|n| {
            let start = (local + chrono::Duration::minutes(n)).format("%Y-%m-%d %H:%M:%S");
            format!(
                "\"\",\"201\",\"442079460958\",\"from-internal\",\"\",\"PJSIP/201-1\",\"PJSIP/voipms-2\",\"Dial\",\"\",\"{start}\",,\"\",9,7,\"ANSWERED\",\"DOCUMENTATION\",\"zone.{n}\",\"\"\n"
            )
        })
        .collect();
    let imported = app
        .graphql(
            &admin,
            "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted billed { micros } } }",
            json!({ "i": { "pbxId": pbx.to_string(), "csv": lines } }),
        )
        .await;
    assert_eq!(
        imported["data"]["importCdrCsv"],
        json!({ "accepted": 4, "billed": { "micros": "468" } }),
        "{imported}"
    );
    let first: chrono::DateTime<chrono::Utc> = cdrs::table
        .filter(cdrs::uniqueid.eq("zone.0"))
        .select(cdrs::calldate)
        .first(&mut conn)
        .await
        .expect("the first call");
    assert_eq!(
        first.timestamp(),
        local.timestamp(),
        "read in the PBX's zone, not as UTC"
    );
    let csv = app
        .graphql(
            &client,
            &format!("query($a: ID!) {{ account(id: $a) {{ callsCsv(month: {month}) }} }}"),
            json!({ "a": account.to_string() }),
        )
        .await;
    let csv = csv["data"]["account"]["callsCsv"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().expect("a header").clone();
    let column = headers
        .iter()
        .position(|h| h == "cost_usd_exact")
        .unwrap_or_else(|| panic!("the header names the exact cost: {headers:?}"));
    let total: i64 = reader
        .records()
        .map(|r| {
            switchboard_core::Money::parse_decimal(&r.expect("a row")[column])
                .expect("an amount")
                .micros()
        })
        .sum();
    assert_eq!(
        total, 468,
        "a month of fractions of a cent adds up to what was billed"
    );
}

//! CDRs in: imported from Master.csv or pushed by the PBX, rated against the
//! plan's calling plan, billed once, and shown on the client home.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use switchboard_core::schema::{
    calls, cdr_rejects, cdrs, journal_entries, journal_transactions, pbxes, plans,
};
use switchboard_core::{AccountKind, Role};

use crate::harness::TestApp;

/// A client with $10, a PBX on a plan billed by a calling plan with US and
/// UK rates and an inbound price; returns (staff browser, client browser, PBX id, account id).
pub(crate) async fn pbx_with_rates(app: &TestApp) -> (reqwest::Client, reqwest::Client, i64, i64) {
    let (_, admin_password) = app.user("calls-admin", Role::Admin, None).await;
    let admin = app.signed_in("calls-admin", &admin_password).await;
    let created = app
        .graphql(&admin, "mutation { createCallingPlan(name: \"Standard\", inboundPerMinute: \"0.006\") { id } }", json!({}))
        .await;
    let calling_plan: i64 = created["data"]["createCallingPlan"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("number");
    // Rates that took effect on the 1st, before the calls below (imports
    // only take effect now or later, so the history is written directly).
    {
        use switchboard_core::schema::rates;
        let mut conn = app.conn().await;
        let from: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse().expect("a time");
        for (prefix, per_minute, initial, subsequent, fee) in [
            ("1", 10_000i64, 60, 60, 0i64),
            ("44", 100_000, 30, 6, 20_000),
        ] {
            diesel::insert_into(rates::table)
                .values((
                    rates::calling_plan_id.eq(calling_plan),
                    rates::prefix.eq(prefix),
                    rates::per_minute_nanos.eq(per_minute * 1_000),
                    rates::connection_fee.eq(fee),
                    rates::initial_increment.eq(initial),
                    rates::subsequent_increment.eq(subsequent),
                    rates::effective_from.eq(from),
                ))
                .execute(&mut conn)
                .await
                .expect("a rate");
        }
    }
    let plan = crate::commerce::seed_plan(app).await;
    let account = app
        .account("Caller Co", AccountKind::Retail, None, 10_000_000)
        .await;
    let (_, client_password) = app.user("caller", Role::Client, Some(account)).await;
    let mut conn = app.conn().await;
    diesel::update(plans::table.find(plan))
        .set(plans::calling_plan_id.eq(calling_plan))
        .execute(&mut conn)
        .await
        .expect("plan billed by the calling plan");
    let pbx: i64 = diesel::insert_into(pbxes::table)
        .values((
            pbxes::account_id.eq(account.0),
            pbxes::plan_id.eq(plan),
            pbxes::request_id.eq("pbx-calls"),
            pbxes::gui_password_sealed.eq("v1:x"),
            pbxes::state.eq("active"),
            pbxes::hostname.eq("calls.pbx.switchboard.test"),
        ))
        .returning(pbxes::id)
        .get_result(&mut conn)
        .await
        .expect("a PBX");
    let client = app.signed_in("caller", &client_password).await;
    (admin, client, pbx, account.0)
}

/// An account's balance in micro-units, as the ledger keeps it.
pub(crate) async fn balance_of(conn: &mut diesel_async::AsyncPgConnection, account: i64) -> i64 {
    switchboard_core::money::ledger::balance(conn, switchboard_core::AccountId(account))
        .await
        .expect("balance")
        .micros()
}

/// How many CDRs of a PBX are stored.
async fn stored_cdrs(conn: &mut diesel_async::AsyncPgConnection, pbx: i64) -> i64 {
    cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .count()
        .get_result(conn)
        .await
        .expect("stored CDRs")
}

/// A rate for `prefix` at `per_minute` micro-units, 60/60, in force since
/// `ago` (written directly: imports only take effect now or later).
pub async fn add_rate(
    conn: &mut diesel_async::AsyncPgConnection,
    calling_plan: i64,
    prefix: &str,
    per_minute: i64,
    ago: chrono::Duration,
) {
    use switchboard_core::schema::rates;
    diesel::insert_into(rates::table)
        .values((
            rates::calling_plan_id.eq(calling_plan),
            rates::prefix.eq(prefix),
            rates::per_minute_nanos.eq(per_minute * 1_000),
            rates::initial_increment.eq(60),
            rates::subsequent_increment.eq(60),
            rates::effective_from.eq(chrono::Utc::now() - ago),
        ))
        .execute(conn)
        .await
        .expect("a rate");
}

/// Asterisk's Master.csv: an answered call to the US (2:01 → three minutes
/// at 60/60 and $0.01), one to the UK (0:31 → 36 s at $0.10 + $0.02), one to France (no
/// rate: unrated), an inbound call to a DID (0:50 by the second at $0.006),
/// an unanswered call, a Local/ helper leg, and a line that is not a CDR.
const MASTER_CSV: &str = concat!(
    "\"\",\"201\",\"15550100100\",\"from-internal\",\"\"\"Front Desk\"\" <201>\",\"PJSIP/201-00000031\",\"PJSIP/voipms-00000032\",\"Dial\",\"PJSIP/15550100100@voipms\",\"2026-11-20 09:15:02\",\"2026-11-20 09:15:09\",\"2026-11-20 09:17:10\",128,121,\"ANSWERED\",\"DOCUMENTATION\",\"1763630102.31\",\"\"\n",
    "\"\",\"202\",\"442079460958\",\"from-internal\",\"\",\"PJSIP/202-00000033\",\"PJSIP/voipms-00000034\",\"Dial\",\"\",\"2026-11-20 10:00:00\",\"2026-11-20 10:00:05\",\"2026-11-20 10:00:36\",36,31,\"ANSWERED\",\"DOCUMENTATION\",\"1763632800.33\",\"\"\n",
    "\"\",\"202\",\"33123456789\",\"from-internal\",\"\",\"PJSIP/202-00000035\",\"PJSIP/voipms-00000036\",\"Dial\",\"\",\"2026-11-20 10:05:00\",\"2026-11-20 10:05:02\",\"2026-11-20 10:06:02\",62,60,\"ANSWERED\",\"DOCUMENTATION\",\"1763633100.35\",\"\"\n",
    "\"\",\"15550177777\",\"203\",\"from-trunk\",\"\",\"PJSIP/voipms-00000040\",\"PJSIP/203-00000041\",\"Dial\",\"\",\"2026-11-20 11:00:00\",\"2026-11-20 11:00:04\",\"2026-11-20 11:00:54\",54,50,\"ANSWERED\",\"DOCUMENTATION\",\"1763636400.40\",\"\"\n",
    "\"\",\"204\",\"15550100101\",\"from-internal\",\"\",\"PJSIP/204-00000042\",\"\",\"Dial\",\"\",\"2026-11-20 12:00:00\",,\"2026-11-20 12:00:30\",30,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1763640000.42\",\"\"\n",
    "\"\",\"201\",\"15550100100\",\"from-queue\",\"\",\"Local/201@from-queue-00000001;2\",\"PJSIP/201-00000050\",\"Dial\",\"\",\"2026-11-20 13:00:00\",\"2026-11-20 13:00:01\",\"2026-11-20 13:01:01\",61,60,\"ANSWERED\",\"DOCUMENTATION\",\"1763643600.50\",\"\"\n",
    "this is not a CDR\n",
);

#[tokio::test(flavor = "multi_thread")]
async fn a_master_csv_import_rates_and_bills_each_call_once() {
    let app = TestApp::spawn().await;
    let (staff, client, pbx, account) = pbx_with_rates(&app).await;
    // The inbound call must be to a DID to be priced.
    let csv = MASTER_CSV.replace("\"from-trunk\"", "\"ext-did-0001\"");
    let import = |csv: String| {
        let (staff, app) = (staff.clone(), &app);
        async move {
            app.graphql(
                &staff,
                "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted duplicates rejected unrated billed { micros } } }",
                json!({ "i": { "pbxId": pbx.to_string(), "csv": csv, "timeZone": "UTC" } }),
            )
            .await
        }
    };
    let first = import(csv.clone()).await;
    let first = &first["data"]["importCdrCsv"];
    assert_eq!(
        (
            first["accepted"].clone(),
            first["rejected"].clone(),
            first["unrated"].clone()
        ),
        (json!(6), json!(1), json!(1)),
        "{first}"
    );
    // US: 180 s × $0.01/min = $0.03. UK: $0.02 + 36 s × $0.10/min = $0.08.
    // Inbound: 50 s × $0.006/min = $0.005. Total $0.115.
    assert_eq!(first["billed"]["micros"], "115000");

    let mut conn = app.conn().await;
    let usage: (i64, i64) = journal_transactions::table
        .filter(journal_transactions::kind.eq("usage"))
        .select((journal_transactions::id, journal_transactions::id))
        .first(&mut conn)
        .await
        .expect("one usage transaction");
    let costs: Vec<i64> = cdrs::table
        .filter(cdrs::ledger_transaction_id.eq(usage.0))
        .select(cdrs::cost)
        .load(&mut conn)
        .await
        .expect("billed calls");
    let entries: Vec<i64> = journal_entries::table
        .filter(journal_entries::transaction_id.eq(usage.0))
        .select(journal_entries::amount)
        .load(&mut conn)
        .await
        .expect("entries");
    assert_eq!(
        costs.iter().sum::<i64>(),
        115_000,
        "the batch's amount is the sum of its calls"
    );
    assert!(entries.contains(&-115_000) && entries.contains(&115_000));
    let balance = balance_of(&mut conn, account).await;
    assert_eq!(balance, 10_000_000 - 115_000);
    let rejects: Vec<String> = cdr_rejects::table
        .select(cdr_rejects::reason)
        .load(&mut conn)
        .await
        .expect("rejects");
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].contains("line 7"), "{rejects:?}");

    let again = import(csv).await;
    let again = &again["data"]["importCdrCsv"];
    assert_eq!(
        (
            again["accepted"].clone(),
            again["duplicates"].clone(),
            again["billed"]["micros"].clone()
        ),
        (json!(0), json!(6), json!("0"))
    );
    let usages: i64 = journal_transactions::table
        .filter(journal_transactions::kind.eq("usage"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(usages, 1, "re-importing bills nothing");

    // Staff see the unrated call and the line that could not be read.
    let page = app.page(&staff, "/admin/calls").await;
    let unrated = &page[page.find("id=\"unrated\"").expect("the unrated calls")..];
    let unrated = &unrated[..unrated.find("</table>").expect("its end")];
    assert!(unrated.contains("33123456789"), "{unrated}");
    assert!(
        !unrated.contains("442079460958"),
        "a priced call is not listed"
    );
    let set_aside = &page[page.find("id=\"rejects\"").expect("the records set aside")..];
    assert!(set_aside.contains("this is not a CDR") && set_aside.contains("line 7"));
    let refused = client
        .get(app.url("/admin/calls"))
        .send()
        .await
        .expect("GET");
    assert!(
        !refused.text().await.expect("body").contains("33123456789"),
        "clients do not see the staff list"
    );

    // The client home lists the calls, newest first, the helper leg left out.
    let home = app.page(&client, "/portal").await;
    let health = &home[home
        .find("data-testid=\"pbx-health\"")
        .expect("the PBX's health")..];
    assert!(
        health
            .trim_start_matches("data-testid=\"pbx-health\">")
            .contains("unknown"),
        "no controller answer: unknown"
    );
    let calls = &home[home.find("id=\"calls\"").expect("the calls table")..];
    assert!(calls.contains("442079460958") && calls.contains("$0.08"));
    assert!(
        calls.contains("pending"),
        "the unrated call shows as pending, never free"
    );
    assert!(
        calls.find("15550100101").expect("the unanswered call")
            < calls.find("15550100100").expect("the US call"),
        "newest first"
    );

    // France gets a rate today; an admin prices the unrated call with it.
    let calling_plan: i64 = pbxes::table
        .inner_join(plans::table)
        .filter(pbxes::id.eq(pbx))
        .select(plans::calling_plan_id)
        .first::<Option<i64>>(&mut conn)
        .await
        .expect("the plan")
        .expect("a calling plan");
    add_rate(
        &mut conn,
        calling_plan,
        "33",
        50_000,
        chrono::Duration::seconds(1),
    )
    .await;
    let price = || {
        let (staff, app) = (staff.clone(), &app);
        async move {
            let token = app.csrf_token(&staff, "/admin/calls").await;
            let posted = staff
                .post(app.url("/admin/calls/price"))
                .form(&[("csrf", token), ("pbx_id", pbx.to_string())])
                .send()
                .await
                .expect("POST");
            assert_eq!(posted.status(), 303);
            let shown = posted.headers()["location"]
                .to_str()
                .expect("text")
                .to_owned();
            app.page(&staff, &shown).await
        }
    };
    let priced = price().await;
    assert!(
        priced.contains("1 calls priced, $0.05 billed; 0 still match no rate"),
        "{priced}"
    );
    let unrated = &priced[priced.find("id=\"unrated\"").expect("the list")..];
    assert!(
        !unrated.contains("33123456789"),
        "priced calls leave the list"
    );
    let again = price().await;
    assert!(again.contains("0 calls priced, $0.00 billed"), "{again}");
    let balance = balance_of(&mut conn, account).await;
    assert_eq!(balance, 10_000_000 - 115_000 - 50_000, "billed once");
    let (cost, unrated): (i64, bool) = switchboard_core::schema::calls::table
        .filter(switchboard_core::schema::calls::dst.eq("33123456789"))
        .select((
            switchboard_core::schema::calls::cost,
            switchboard_core::schema::calls::unrated,
        ))
        .first(&mut conn)
        .await
        .expect("the call");
    assert_eq!((cost, unrated), (50_000, false));
    assert_day_totals_follow_the_calls(&mut conn).await;
    let audited: i64 = switchboard_core::schema::audit_log::table
        .filter(switchboard_core::schema::audit_log::action.eq("pbx.price_unrated_calls"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("audit");
    assert_eq!(
        audited, 1,
        "the pricing is recorded; the one that found nothing changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_cdrs_need_the_pbxs_own_token_and_bad_records_are_kept_aside() {
    let app = TestApp::spawn().await;
    let (staff, _, pbx, _) = pbx_with_rates(&app).await;
    let issued = app
        .graphql(
            &staff,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await;
    let token = issued["data"]["issueCdrToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let batch = json!({ "cdrs": [
        { "calldate": "2026-11-21T08:00:00Z", "src": "201", "dst": "15550100100", "dcontext": "from-internal",
          "channel": "PJSIP/201-00000001", "dstchannel": "PJSIP/voipms-00000002", "duration": 70, "billsec": 61,
          "disposition": "ANSWERED", "uniqueid": "1763712000.1" },
        { "calldate": "yesterday", "disposition": "ANSWERED" },
        { "calldate": "2026-11-21T08:05:00Z", "disposition": "ANSWERED", "duration": 5, "billsec": 9, "uniqueid": "x" },
    ]});
    let push = |token: &str| {
        reqwest::Client::new()
            .post(app.url("/cdrs/push"))
            .bearer_auth(token)
            .json(&batch)
            .send()
    };
    assert_eq!(push("not-the-token").await.expect("POST").status(), 401);
    let unauthenticated = reqwest::Client::new()
        .post(app.url("/cdrs/push"))
        .json(&batch)
        .send()
        .await
        .expect("POST");
    assert_eq!(unauthenticated.status(), 401);
    let accepted: serde_json::Value = push(&token)
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        accepted,
        json!({ "accepted": 1, "duplicates": 0, "rejected": 2, "unrated": 0 })
    );
    let again: serde_json::Value = push(&token)
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["duplicates"], 1);
    let mut conn = app.conn().await;
    let cost: i64 = cdrs::table
        .select(cdrs::cost)
        .first(&mut conn)
        .await
        .expect("the call");
    assert_eq!(cost, 20_000, "61 s at 60/60 is two minutes at $0.01");
    let reissued = app
        .graphql(
            &staff,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await;
    assert_ne!(reissued["data"]["issueCdrToken"], token);
    assert_eq!(
        push(&token).await.expect("POST").status(),
        401,
        "the old token stops working"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cdrs_are_pulled_from_asterisks_table_in_mariadb_incrementally() {
    use mysql_async::prelude::Queryable;
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let mut table = crate::pulling::CdrTable::new(pbx, "incremental").await;
    let mysql = &mut table.mysql;
    let insert = "INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, duration, billsec, disposition, uniqueid, did, cnum, outbound_cnum, linkedid, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, 'Dial', ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        i32,
        i32,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        i32,
    );
    let first: Vec<Row> = vec![
        // Outbound to the US, 61 s: two minutes at $0.01.
        (
            "2026-11-20 09:00:00",
            "\"Desk\" <201>",
            "201",
            "15550100100",
            "from-internal",
            "PJSIP/201-00000001",
            "PJSIP/voipms-00000002",
            70,
            61,
            "ANSWERED",
            "1763629200.1",
            "",
            "201",
            "15550100999",
            "1763629200.1",
            1,
        ),
        // A ring group: two phones ring for one inbound call, one answers.
        (
            "2026-11-20 09:10:00",
            "\"Caller\" <15550177777>",
            "15550177777",
            "s",
            "ext-group",
            "PJSIP/voipms-00000010",
            "PJSIP/202-00000011",
            30,
            0,
            "NO ANSWER",
            "1763629800.11",
            "15550100199",
            "",
            "",
            "1763629800.10",
            2,
        ),
        (
            "2026-11-20 09:10:00",
            "\"Caller\" <15550177777>",
            "15550177777",
            "s",
            "ext-group",
            "PJSIP/voipms-00000010",
            "PJSIP/203-00000012",
            40,
            35,
            "ANSWERED",
            "1763629800.12",
            "15550100199",
            "",
            "",
            "1763629800.10",
            3,
        ),
    ];
    let params = |row: &Row| {
        mysql_async::Params::Positional(vec![
            row.0.into(),
            row.1.into(),
            row.2.into(),
            row.3.into(),
            row.4.into(),
            row.5.into(),
            row.6.into(),
            row.7.into(),
            row.8.into(),
            row.9.into(),
            row.10.into(),
            row.11.into(),
            row.12.into(),
            row.13.into(),
            row.14.into(),
            row.15.into(),
        ])
    };
    for row in &first {
        mysql.exec_drop(insert, params(row)).await.expect("a row");
    }
    let url = table.url.clone();
    let set = app
        .graphql(&admin, "mutation($p: ID!, $u: String!) { setCdrSource(pbxId: $p, url: $u, timeZone: \"UTC\") }", json!({ "p": pbx.to_string(), "u": url }))
        .await;
    assert_eq!(set["data"]["setCdrSource"], true, "{set}");
    let mut conn = app.conn().await;
    let sealed: Option<String> = pbxes::table
        .find(pbx)
        .select(pbxes::cdr_source_sealed)
        .first(&mut conn)
        .await
        .expect("sealed");
    assert!(
        !sealed.expect("a source").contains("127.0.0.1"),
        "the address and its password are sealed"
    );

    let pull = || {
        let (admin, app) = (admin.clone(), &app);
        async move {
            let queued = app
                .graphql(
                    &admin,
                    "mutation($p: ID!) { pullCdrs(pbxId: $p) }",
                    json!({ "p": pbx.to_string() }),
                )
                .await;
            assert_eq!(queued["data"]["pullCdrs"], true, "{queued}");
            crate::commerce::run_jobs(app, 3).await
        }
    };
    assert_eq!(pull().await.succeeded, 1);
    let stored: i64 = cdrs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(stored, 3);
    let outbound_cost: i64 = cdrs::table
        .filter(cdrs::uniqueid.eq("1763629200.1"))
        .select(cdrs::cost)
        .first(&mut conn)
        .await
        .expect("the outbound call");
    assert_eq!(outbound_cost, 20_000);
    let ring_group_calls: Vec<String> = cdrs::table
        .filter(cdrs::call_key.eq("1763629800.10"))
        .select(cdrs::status)
        .load(&mut conn)
        .await
        .expect("the ring group's legs");
    assert_eq!(ring_group_calls.len(), 2, "two legs of one call");

    // A late row inside the overlap window, and a new one.
    mysql
        .exec_drop(
            insert,
            params(&(
                "2026-11-20 09:05:00",
                "",
                "204",
                "15550100104",
                "from-internal",
                "PJSIP/204-00000020",
                "PJSIP/voipms-00000021",
                10,
                5,
                "ANSWERED",
                "1763629500.20",
                "",
                "204",
                "15550100999",
                "1763629500.20",
                4,
            )),
        )
        .await
        .expect("a late row");
    mysql
        .exec_drop(
            insert,
            params(&(
                "2026-11-20 10:00:00",
                "",
                "201",
                "442079460958",
                "from-internal",
                "PJSIP/201-00000030",
                "PJSIP/voipms-00000031",
                40,
                31,
                "ANSWERED",
                "1763632800.30",
                "",
                "201",
                "15550100999",
                "1763632800.30",
                5,
            )),
        )
        .await
        .expect("a new row");
    assert_eq!(pull().await.succeeded, 1);
    let stored: i64 = cdrs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(
        stored, 5,
        "re-read rows are recognised; the late and the new one are added"
    );
    let usages: i64 = journal_transactions::table
        .filter(journal_transactions::kind.eq("usage"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(usages, 2, "one usage posting per pull");
    table.drop().await;
}

/// A second PBX of the same account on the same plan.
pub(crate) async fn another_pbx(app: &TestApp, like: i64) -> i64 {
    let mut conn = app.conn().await;
    let (account, plan): (i64, i64) = pbxes::table
        .find(like)
        .select((pbxes::account_id, pbxes::plan_id))
        .first(&mut conn)
        .await
        .expect("the first PBX");
    diesel::insert_into(pbxes::table)
        .values((
            pbxes::account_id.eq(account),
            pbxes::plan_id.eq(plan),
            pbxes::request_id.eq(format!("pbx-like-{like}")),
            pbxes::gui_password_sealed.eq("v1:x"),
            pbxes::state.eq("active"),
        ))
        .returning(pbxes::id)
        .get_result(&mut conn)
        .await
        .expect("a PBX")
}

#[derive(diesel::QueryableByName)]
struct DayTotals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    differ: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    days: i64,
}

/// Each PBX's day totals are exactly its calls summed by day (UTC): the
/// database keeps them as calls are written, moved and priced.
pub(crate) async fn assert_day_totals_follow_the_calls(conn: &mut diesel_async::AsyncPgConnection) {
    let found: DayTotals = diesel::sql_query(
        "WITH summed AS ( \
           SELECT account_id, (start AT TIME ZONE 'UTC')::date AS day, pbx_id, \
                  count(*)::bigint AS calls, sum(cost)::bigint AS cost \
           FROM calls GROUP BY 1, 2, 3 \
         ), kept AS ( \
           SELECT account_id, day, pbx_id, calls, cost FROM call_days WHERE calls <> 0 OR cost <> 0 \
         ) \
         SELECT (SELECT count(*) FROM ((SELECT * FROM summed EXCEPT ALL SELECT * FROM kept) \
                  UNION ALL (SELECT * FROM kept EXCEPT ALL SELECT * FROM summed)) x) AS differ, \
                (SELECT count(*) FROM kept) AS days",
    )
    .get_result(conn)
    .await
    .expect("the day totals");
    assert_eq!(found.differ, 0, "day totals that differ from their calls");
    assert!(found.days > 0, "calls were held");
}

#[tokio::test(flavor = "multi_thread")]
async fn legs_arriving_in_any_batches_and_order_make_the_same_calls_and_the_report_adds_up() {
    use switchboard_core::calls::{calls_between, ingest, report};
    use switchboard_core::schema::calls;
    let app = TestApp::spawn().await;
    let (_, _, first, account) = pbx_with_rates(&app).await;
    let second = another_pbx(&app, first).await;
    let now = chrono::Utc::now();
    // Three weeks of an office: ring groups (several legs, one call),
    // transfers, unanswered and busy legs, outbound calls priced by the plan.
    let records = switchboard_controller::traffic::generate(11, now, 21, 8, "15550100199");
    assert!(records.len() > 200, "{} records", records.len());
    let mut conn = app.conn().await;

    // The first PBX gets everything at once; the second gets the same
    // records backwards, in batches of 7, each batch sent twice.
    ingest(
        &mut conn,
        &app.state.rate_tables,
        first,
        "push",
        &records,
        &[],
    )
    .await
    .expect("one batch");
    let mut backwards = records.clone();
    backwards.reverse();
    let mut billed_twice = switchboard_core::Money::ZERO;
    for batch in backwards.chunks(7) {
        let once = ingest(
            &mut conn,
            &app.state.rate_tables,
            second,
            "push",
            batch,
            &[],
        )
        .await
        .expect("a batch");
        let again = ingest(
            &mut conn,
            &app.state.rate_tables,
            second,
            "push",
            batch,
            &[],
        )
        .await
        .expect("the batch again");
        assert_eq!((again.accepted, again.duplicates), (0, batch.len()));
        assert_eq!(again.billed, switchboard_core::Money::ZERO);
        billed_twice = billed_twice.checked_add(once.billed).expect("a sum");
    }

    type Row = (
        String,
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        String,
        Option<String>,
        String,
        i32,
        i64,
        i32,
        bool,
    );
    let calls_of = |pbx: i64| {
        calls::table
            .filter(calls::pbx_id.eq(pbx))
            .order(calls::call_key)
            .select((
                calls::call_key,
                calls::start,
                calls::src,
                calls::dst,
                calls::status,
                calls::extension,
                calls::lead_key,
                calls::billsec,
                calls::cost,
                calls::legs,
                calls::unrated,
            ))
    };
    let one: Vec<Row> = calls_of(first).load(&mut conn).await.expect("calls");
    let many: Vec<Row> = calls_of(second).load(&mut conn).await.expect("calls");
    assert_eq!(one, many, "the same calls, however the legs arrived");
    let legs: i64 = cdrs::table
        .filter(cdrs::pbx_id.eq(first))
        .filter(cdrs::helper_leg.eq(false))
        .count()
        .get_result(&mut conn)
        .await
        .expect("legs");
    assert!(
        (one.len() as i64) < legs,
        "ring groups fold: {} calls from {legs} legs",
        one.len()
    );
    assert_eq!(
        one.iter().map(|c| i64::from(c.9)).sum::<i64>(),
        legs,
        "every leg is in one call"
    );
    let cost_of = |rows: &[Row]| rows.iter().map(|c| c.8).sum::<i64>();
    assert_eq!(billed_twice.micros(), cost_of(&many));
    assert!(cost_of(&one) > 0, "outbound calls were priced");
    let balance = balance_of(&mut conn, account).await;
    assert_eq!(
        balance,
        10_000_000 - cost_of(&one) - cost_of(&many),
        "the ledger holds exactly the calls' costs"
    );

    // The report, summed by the database, agrees with the calls behind it.
    let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
    let (from, to) = (
        now - chrono::Duration::days(30),
        now + chrono::Duration::days(1),
    );
    let report = report(
        &mut conn,
        switchboard_core::AccountId(account),
        from,
        to,
        zone,
    )
    .await
    .expect("the report");
    let listed = calls_between(&mut conn, switchboard_core::AccountId(account), from, to)
        .await
        .expect("the calls");
    assert_eq!(report.all.calls as usize, listed.len());
    assert_eq!(report.all.calls as usize, one.len() * 2);
    assert_eq!(
        report.all.seconds,
        listed.iter().map(|c| i64::from(c.billsec)).sum::<i64>()
    );
    assert_eq!(report.all.cost.micros(), cost_of(&one) * 2);
    assert_eq!(
        report.by_pbx.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(report.by_pbx[0].1, report.by_pbx[1].1);
    for (name, groups) in [
        ("status", &report.by_status),
        ("direction", &report.by_direction),
        ("extension", &report.by_extension),
        ("day", &report.by_day),
    ] {
        let calls: i64 = groups.iter().map(|(_, t)| t.calls).sum();
        let seconds: i64 = groups.iter().map(|(_, t)| t.seconds).sum();
        assert_eq!(
            (calls, seconds),
            (report.all.calls, report.all.seconds),
            "by {name}"
        );
    }
    let answered = listed.iter().filter(|c| c.status == "answered").count() as i64;
    assert_eq!(report.all.answered, answered);
    let mut days: std::collections::BTreeMap<String, i64> = Default::default();
    for call in &listed {
        *days
            .entry(
                call.start
                    .with_timezone(&zone)
                    .format("%Y-%m-%d")
                    .to_string(),
            )
            .or_default() += 1;
    }
    assert_eq!(
        report
            .by_day
            .iter()
            .map(|(d, t)| (d.clone(), t.calls))
            .collect::<Vec<_>>(),
        days.into_iter().collect::<Vec<_>>(),
        "calls per day, in New York"
    );

    // Each PBX's months, as the home shows them, agree with the calls, in
    // a zone behind UTC and in one a quarter of an hour off the hour: the
    // day totals held for the second PBX were built from legs that moved
    // its calls earlier, many of them into another day.
    assert_day_totals_follow_the_calls(&mut conn).await;
    for zone in ["America/New_York", "Asia/Kathmandu", "UTC"] {
        let months = switchboard_core::billing::per_pbx::months(
            &mut conn,
            switchboard_core::AccountId(account),
            zone,
            "USD",
            now,
            &[0, 1],
        )
        .await
        .expect("the months");
        for month in &months {
            let held = calls_between(
                &mut conn,
                switchboard_core::AccountId(account),
                month.from,
                month.to,
            )
            .await
            .expect("the calls");
            for pbx in [first, second] {
                let line = month
                    .lines
                    .iter()
                    .find(|l| l.pbx_id == Some(pbx))
                    .expect("a line per PBX");
                let calls: Vec<_> = held.iter().filter(|c| c.pbx_id == pbx).collect();
                assert_eq!(
                    (line.calls, line.calls_cost.micros()),
                    (
                        calls.len() as i64,
                        calls.iter().map(|c| c.cost).sum::<i64>()
                    ),
                    "PBX {pbx} from {} in {zone}",
                    month.from
                );
            }
        }
        assert!(
            months.iter().map(|m| m.lines[0].calls).sum::<i64>() > 0,
            "{months:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_records_sent_at_once_by_several_sources_are_stored_and_billed_once() {
    use switchboard_core::calls::ingest;
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let records =
        switchboard_controller::traffic::generate(5, chrono::Utc::now(), 10, 6, "15550100199");
    // A pull, an import and two pushes of overlapping batches, all at once.
    let mut tasks = Vec::new();
    for (n, source) in ["pull", "csv", "push", "push"].into_iter().enumerate() {
        let mut conn = app.conn().await;
        let rates = app.state.rate_tables.clone();
        let batch: Vec<_> = records[n * records.len() / 8..].to_vec();
        tasks.push(tokio::spawn(async move {
            ingest(&mut conn, &rates, pbx, source, &batch, &[])
                .await
                .expect("a batch")
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.expect("the task").accepted;
    }
    assert_eq!(accepted, records.len(), "each record stored once");
    let mut conn = app.conn().await;
    let stored = stored_cdrs(&mut conn, pbx).await;
    assert_eq!(stored as usize, records.len());
    let costs: Vec<(i64, Option<i64>)> = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .select((cdrs::cost, cdrs::ledger_transaction_id))
        .load(&mut conn)
        .await
        .expect("costs");
    let cost: i64 = costs.iter().map(|(c, _)| c).sum();
    assert!(cost > 0, "some calls were priced");
    assert!(
        costs.iter().all(|(c, billed)| (*c > 0) == billed.is_some()),
        "every priced record is billed, by one posting"
    );
    let balance = balance_of(&mut conn, account).await;
    assert_eq!(balance, 10_000_000 - cost, "billed once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_refused_while_writing_stores_and_bills_nothing_and_the_connection_goes_on() {
    use switchboard_core::calls::ingest;
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let records =
        switchboard_controller::traffic::generate(9, chrono::Utc::now(), 3, 6, "15550100199");
    let rejects = vec![("garbage".to_owned(), "not a CDR".to_owned())];
    let mut conn = app.conn().await;
    diesel::sql_query(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
    )
    .execute(&mut conn)
    .await
    .expect("function");
    // The CDR insert fails first (the writes sent after it find the
    // transaction aborted), then the calls write after the CDRs went in,
    // then the last write, after every other one went in.
    for table in ["cdrs", "calls", "cdr_rejects"] {
        diesel::sql_query(format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()"
        ))
        .execute(&mut conn)
        .await
        .expect("trigger");
        let refused = ingest(
            &mut conn,
            &app.state.rate_tables,
            pbx,
            "push",
            &records,
            &rejects,
        )
        .await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("refused by the test")),
            "{table}: {refused:?}"
        );
        let stored = stored_cdrs(&mut conn, pbx).await;
        let calls: i64 = calls::table
            .count()
            .get_result(&mut conn)
            .await
            .expect("calls");
        let kept: i64 = cdr_rejects::table
            .count()
            .get_result(&mut conn)
            .await
            .expect("rejects");
        let usage: i64 = journal_transactions::table
            .filter(journal_transactions::kind.eq("usage"))
            .count()
            .get_result(&mut conn)
            .await
            .expect("usage");
        let balance = balance_of(&mut conn, account).await;
        assert_eq!(
            (stored, calls, kept, usage, balance),
            (0, 0, 0, 0, 10_000_000),
            "{table}: nothing stored, nothing billed"
        );
        diesel::sql_query(format!("DROP TRIGGER refuse ON {table}"))
            .execute(&mut conn)
            .await
            .expect("drop trigger");
    }
    // The same batch again, on the same connection, goes in whole.
    let ingested = ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        &records,
        &rejects,
    )
    .await
    .expect("the batch");
    assert_eq!((ingested.accepted, ingested.rejected), (records.len(), 1));
    let costs: Vec<i64> = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .select(cdrs::cost)
        .load(&mut conn)
        .await
        .expect("costs");
    let cost: i64 = costs.iter().sum();
    assert!(cost > 0, "some calls were priced");
    assert_eq!(ingested.billed.micros(), cost);
    let balance = balance_of(&mut conn, account).await;
    assert_eq!(balance, 10_000_000 - cost, "billed once");

    // Another priced leg of a call already held: the merging write, the one
    // that changes stored calls, is refused; nothing of the batch stays.
    let (priced_key, call_key): (String, String) = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .filter(cdrs::cost.gt(0))
        .filter(cdrs::helper_leg.eq(false))
        .select((cdrs::record_key, cdrs::call_key))
        .first(&mut conn)
        .await
        .expect("a priced leg");
    let mut leg = records
        .iter()
        .find(|r| switchboard_core::calls::cdr::record_key(r) == priced_key)
        .expect("its record")
        .clone();
    leg.uniqueid = "1763999999.1".into();
    leg.linkedid = Some(call_key.clone());
    let legs_of_call = async |conn: &mut diesel_async::AsyncPgConnection| -> i32 {
        calls::table
            .filter(calls::pbx_id.eq(pbx))
            .filter(calls::call_key.eq(&call_key))
            .select(calls::legs)
            .first(conn)
            .await
            .expect("the call")
    };
    let legs_before = legs_of_call(&mut conn).await;
    diesel::sql_query(
        "CREATE TRIGGER refuse BEFORE UPDATE ON calls FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    let refused = ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        std::slice::from_ref(&leg),
        &[],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    let stored = stored_cdrs(&mut conn, pbx).await;
    let after = balance_of(&mut conn, account).await;
    assert_eq!(
        (stored as usize, after, legs_of_call(&mut conn).await),
        (records.len(), balance, legs_before)
    );
    diesel::sql_query("DROP TRIGGER refuse ON calls")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    let merged = ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        std::slice::from_ref(&leg),
        &[],
    )
    .await
    .expect("the leg");
    assert!(merged.billed.micros() > 0);
    assert_eq!(legs_of_call(&mut conn).await, legs_before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_table_is_loaded_once_and_again_only_when_its_rates_change() {
    use switchboard_core::calls::cdr::RawCdr;
    use switchboard_core::calls::ingest;
    use switchboard_core::schema::calling_plans;
    let app = TestApp::spawn().await;
    let (_, _, pbx, _) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    let calling_plan: i64 = pbxes::table
        .inner_join(plans::table)
        .filter(pbxes::id.eq(pbx))
        .select(plans::calling_plan_id)
        .first::<Option<i64>>(&mut conn)
        .await
        .expect("the plan")
        .expect("a calling plan");
    let version = async |conn: &mut diesel_async::AsyncPgConnection| -> i64 {
        calling_plans::table
            .find(calling_plan)
            .select(calling_plans::rates_version)
            .first(conn)
            .await
            .expect("the version")
    };
    let tables = &app.state.rate_tables;
    let before = version(&mut conn).await;
    let first = tables
        .get(&mut conn, calling_plan, before)
        .await
        .expect("loaded");
    let again = tables
        .get(&mut conn, calling_plan, before)
        .await
        .expect("held");
    assert!(std::sync::Arc::ptr_eq(&first, &again), "loaded once");

    // A call to France: no rate yet.
    let call = |n: i64| RawCdr {
        calldate: chrono::Utc::now() - chrono::Duration::seconds(120 - n),
        src: "201".into(),
        dst: "33123456789".into(),
        dcontext: "from-internal".into(),
        channel: format!("PJSIP/201-0000{n:04}"),
        dstchannel: "PJSIP/voipms-00000001".into(),
        lastapp: "Dial".into(),
        duration: 65,
        billsec: 60,
        disposition: "ANSWERED".into(),
        uniqueid: format!("1763700000.{n}"),
        ..RawCdr::default()
    };
    let one = ingest(&mut conn, tables, pbx, "push", &[call(1)], &[])
        .await
        .expect("a batch");
    assert_eq!(one.unrated, 1);
    let used = tables
        .get(&mut conn, calling_plan, before)
        .await
        .expect("held");
    assert!(
        std::sync::Arc::ptr_eq(&first, &used),
        "the batch used the table held"
    );
    // Rates are added (here by hand, as a migration from another system
    // would): the plan's version moves on in the same statement.
    add_rate(
        &mut conn,
        calling_plan,
        "33",
        50_000,
        chrono::Duration::seconds(60),
    )
    .await;
    let after = version(&mut conn).await;
    assert!(after > before, "{before} → {after}");
    // The next batch is priced with the new rate, not the table held.
    let two = ingest(&mut conn, tables, pbx, "push", &[call(100)], &[])
        .await
        .expect("a batch");
    assert_eq!((two.unrated, two.billed.micros()), (0, 50_000));
    let reloaded = tables
        .get(&mut conn, calling_plan, after)
        .await
        .expect("held");
    assert!(!std::sync::Arc::ptr_eq(&first, &reloaded), "loaded again");
    let kept = tables
        .get(&mut conn, calling_plan, after)
        .await
        .expect("held");
    assert!(
        std::sync::Arc::ptr_eq(&reloaded, &kept),
        "the batch loaded it, and it is kept"
    );
    assert!(reloaded
        .price("33123456789", chrono::Utc::now(), 60)
        .is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calls_csv_carries_no_formulas_from_caller_numbers() {
    let app = TestApp::spawn().await;
    let (admin, client, pbx, _) = pbx_with_rates(&app).await;
    let issued = app
        .graphql(
            &admin,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await;
    let token = issued["data"]["issueCdrToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let now = chrono::Utc::now() - chrono::Duration::minutes(5);
    let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // What a stranger can put in a caller number, and a dialled number.
    let record = |uniqueid: &str, src: &str, dst: &str, channel: &str, dstchannel: &str| {
        json!({ "calldate": at, "src": src, "dst": dst, "dcontext": "from-trunk", "channel": channel,
                "dstchannel": dstchannel, "duration": 20, "billsec": 15, "disposition": "ANSWERED",
                "uniqueid": uniqueid })
    };
    let batch = json!({ "cdrs": [
        record("f.1", "=HYPERLINK(\"http://evil.invalid\",\"Call back\")", "201", "PJSIP/voipms-00000001", "PJSIP/201-00000002"),
        record("f.2", "@SUM(1+1)", "201", "PJSIP/voipms-00000003", "PJSIP/201-00000004"),
        record("f.3", "-2+3", "202", "PJSIP/voipms-00000005", "PJSIP/202-00000006"),
        record("f.4", "201", "+442071234567", "PJSIP/201-00000007", "PJSIP/voipms-00000008"),
    ]});
    let pushed = reqwest::Client::new()
        .post(app.url("/cdrs/push"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .expect("POST");
    assert_eq!(pushed.status(), 200);
    let csv = app
        .page(&client, "/portal/reports/calls.csv?month=current")
        .await;
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let mut texts = Vec::new();
    for row in reader.records() {
        let row = row.expect("a CSV row");
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '@']) && !cell.starts_with("-2"),
                "a formula: {cell}\n{csv}"
            );
            texts.push(cell.to_owned());
        }
    }
    for expected in [
        "'=HYPERLINK(\"http://evil.invalid\",\"Call back\")",
        "'@SUM(1+1)",
        "'-2+3",
        "'+442071234567",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} missing from\n{csv}"
        );
    }
}

//! Pulling a PBX's Asterisk CDR table from a real MariaDB: every row read,
//! however late Asterisk writes it; progress whatever the overlap holds; the
//! same checks and the same record keys as every other source.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mysql_async::prelude::Queryable;
use serde_json::json;
use switchboard_core::schema::{background_jobs, cdr_rejects, cdrs};

use crate::calls::{another_pbx, balance_of, pbx_with_rates};
use crate::harness::TestApp;

/// One PBX's CDR table in the test run's MariaDB.
pub(crate) struct CdrTable {
    pub(crate) mysql: mysql_async::Conn,
    pub(crate) url: String,
    database: String,
}

/// A row as Asterisk writes it into FreePBX's table.
struct Row<'a> {
    calldate: &'a str,
    dst: &'a str,
    channel: &'a str,
    dstchannel: &'a str,
    duration: i32,
    billsec: i32,
    disposition: &'a str,
    uniqueid: &'a str,
    linkedid: &'a str,
    sequence: i32,
}

/// An answered outbound call from 201 through the trunk.
fn answered<'a>(calldate: &'a str, uniqueid: &'a str, duration: i32) -> Row<'a> {
    Row {
        calldate,
        dst: "15550100100",
        channel: "PJSIP/201-00000001",
        dstchannel: "PJSIP/voipms-00000002",
        duration,
        billsec: duration - 5,
        disposition: "ANSWERED",
        uniqueid,
        linkedid: uniqueid,
        sequence: 1,
    }
}

impl CdrTable {
    pub(crate) async fn new(pbx: i64, name: &str) -> CdrTable {
        let server = crate::mariadb::mariadb();
        let database = format!("cdr_{name}_{pbx}_{}", std::process::id());
        let mut mysql =
            mysql_async::Conn::from_url(format!("mysql://root@127.0.0.1:{}/", server.port))
                .await
                .expect("connecting to MariaDB");
        mysql
            .query_drop(format!("CREATE DATABASE {database}"))
            .await
            .expect("a database");
        mysql
            .query_drop(format!("USE {database}"))
            .await
            .expect("use it");
        mysql
            .query_drop(crate::mariadb::CDR_TABLE)
            .await
            .expect("the cdr table");
        CdrTable {
            mysql,
            url: format!("mysql://root@127.0.0.1:{}/{database}", server.port),
            database,
        }
    }

    async fn insert(&mut self, row: &Row<'_>) {
        self.mysql
            .exec_drop(
                "INSERT INTO cdr (calldate, src, dst, dcontext, channel, dstchannel, lastapp, duration, billsec, disposition, uniqueid, linkedid, sequence) \
                 VALUES (?, '201', ?, 'from-internal', ?, ?, 'Dial', ?, ?, ?, ?, ?, ?)",
                mysql_async::Params::Positional(vec![
                    row.calldate.into(),
                    row.dst.into(),
                    row.channel.into(),
                    row.dstchannel.into(),
                    row.duration.into(),
                    row.billsec.into(),
                    row.disposition.into(),
                    row.uniqueid.into(),
                    row.linkedid.into(),
                    row.sequence.into(),
                ]),
            )
            .await
            .expect("a row");
    }

    /// Makes this table the PBX's CDR source.
    async fn attach(&self, app: &TestApp, admin: &reqwest::Client, pbx: i64) {
        let set = app
            .graphql(
                admin,
                "mutation($p: ID!, $u: String!) { setCdrSource(pbxId: $p, url: $u, timeZone: \"UTC\") }",
                json!({ "p": pbx.to_string(), "u": self.url }),
            )
            .await;
        assert_eq!(set["data"]["setCdrSource"], true, "{set}");
    }

    pub(crate) async fn drop(mut self) {
        self.mysql
            .query_drop(format!("DROP DATABASE {}", self.database))
            .await
            .expect("cleaned up");
    }
}

/// Queues a pull of the PBX and runs jobs until none is due; returns the
/// number of pulls that ran.
async fn pull(app: &TestApp, admin: &reqwest::Client, pbx: i64) -> usize {
    let queued = app
        .graphql(
            admin,
            "mutation($p: ID!) { pullCdrs(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await;
    assert_eq!(queued["data"]["pullCdrs"], true, "{queued}");
    let pass = crate::commerce::run_jobs(app, 50).await;
    assert_eq!(pass.failed + pass.given_up, 0, "{pass:?}");
    pass.succeeded
}

async fn stored(conn: &mut diesel_async::AsyncPgConnection, pbx: i64) -> Vec<String> {
    cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .order(cdrs::uniqueid)
        .select(cdrs::uniqueid)
        .load(conn)
        .await
        .expect("stored records")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_call_written_after_many_short_ones_is_pulled_and_billed() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, account) = pbx_with_rates(&app).await;
    let mut table = CdrTable::new(pbx, "long").await;
    table.attach(&app, &admin, pbx).await;
    // Thirty short calls from 10:00 to 10:29, a minute each.
    let short: Vec<(String, String)> = (0..30)
        .map(|n| {
            (
                format!("2026-11-20 10:{n:02}:00"),
                format!("1763632800.{n}"),
            )
        })
        .collect();
    for (at, id) in &short {
        table.insert(&answered(at, id, 60)).await;
    }
    pull(&app, &admin, pbx).await;
    let mut conn = app.conn().await;
    assert_eq!(stored(&mut conn, pbx).await.len(), 30);
    let before = balance_of(&mut conn, account).await;
    // A 45-minute call that started at 09:50 ends at 10:35: Asterisk
    // writes its row now, long after the short calls.
    table
        .insert(&answered("2026-11-20 09:50:00", "1763632200.99", 45 * 60))
        .await;
    pull(&app, &admin, pbx).await;
    assert!(
        stored(&mut conn, pbx)
            .await
            .contains(&"1763632200.99".to_owned()),
        "the long call is read"
    );
    assert_eq!(
        before - balance_of(&mut conn, account).await,
        450_000,
        "and billed once: 2,695 s at 60/60 is 45 minutes at $0.01"
    );
    table.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_whose_overlap_holds_more_rows_than_a_batch_moves_on() {
    let app = TestApp::spawn_with(|settings| settings.cdr_pull.batch = 5).await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let mut table = CdrTable::new(pbx, "batch").await;
    table.attach(&app, &admin, pbx).await;
    // Twelve calls ending a few seconds apart, all inside the overlap, and
    // seven ending in the very same second: more than a batch of each.
    let ids: Vec<String> = (0..19).map(|n| format!("1763632800.{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let at = if n < 12 {
            format!("2026-11-20 10:00:{:02}", n * 3)
        } else {
            "2026-11-20 10:01:00".to_owned()
        };
        table.insert(&answered(&at, id, 30)).await;
    }
    let pulls = pull(&app, &admin, pbx).await;
    let mut conn = app.conn().await;
    assert_eq!(stored(&mut conn, pbx).await, ids, "every row, each once");
    assert!(
        (4..=8).contains(&pulls),
        "{pulls} pulls: each full batch moves on, and they stop"
    );
    let waiting: i64 = background_jobs::table
        .filter(background_jobs::job_type.eq(switchboard_core::queue::PULL_CDRS))
        .count()
        .get_result(&mut conn)
        .await
        .expect("jobs");
    assert_eq!(waiting, 0, "no pull left re-reading the same batch");
    // The next pull reads only the overlap again and adds nothing.
    table
        .insert(&answered("2026-11-20 10:05:00", "1763633100.1", 30))
        .await;
    pull(&app, &admin, pbx).await;
    assert_eq!(stored(&mut conn, pbx).await.len(), 20);
    table.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pulled_rows_get_the_checks_every_source_gets() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, _) = pbx_with_rates(&app).await;
    let mut table = CdrTable::new(pbx, "checks").await;
    table.attach(&app, &admin, pbx).await;
    table
        .insert(&answered("2026-11-20 10:00:00", "good", 60))
        .await;
    let mut backwards = answered("2026-11-20 10:01:00", "backwards", 10);
    backwards.billsec = 50;
    table.insert(&backwards).await;
    let mut undisposed = answered("2026-11-20 10:02:00", "undisposed", 10);
    undisposed.disposition = "";
    table.insert(&undisposed).await;
    pull(&app, &admin, pbx).await;
    let mut conn = app.conn().await;
    assert_eq!(stored(&mut conn, pbx).await, ["good"]);
    let reasons: Vec<String> = cdr_rejects::table
        .filter(cdr_rejects::pbx_id.eq(pbx))
        .order(cdr_rejects::id)
        .select(cdr_rejects::reason)
        .load(&mut conn)
        .await
        .expect("rejects");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("do not fit together")));
    assert!(reasons.iter().any(|r| r.contains("no disposition")));
    table.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_is_one_record_whichever_way_it_arrives_and_a_failover_is_two() {
    let app = TestApp::spawn().await;
    let (admin, _, pbx, account) = pbx_with_rates(&app).await;
    let mut table = CdrTable::new(pbx, "keys").await;
    table.attach(&app, &admin, pbx).await;
    // A call to the US, and a trunk failover: CONGESTION on the first trunk,
    // ANSWERED on the second, one channel and one uniqueid.
    let call = answered("2026-11-20 09:00:00", "1763629200.1", 70);
    let congested = Row {
        dstchannel: "PJSIP/trunk1-00000011",
        duration: 2,
        billsec: 0,
        disposition: "CONGESTION",
        sequence: 8,
        ..answered("2026-11-20 09:10:00", "1763629800.10", 2)
    };
    let failed_over = Row {
        dstchannel: "PJSIP/trunk2-00000012",
        duration: 95,
        billsec: 90,
        sequence: 9,
        ..answered("2026-11-20 09:10:00", "1763629800.10", 95)
    };
    for row in [&call, &congested, &failed_over] {
        table.insert(row).await;
    }
    let before = {
        let mut conn = app.conn().await;
        balance_of(&mut conn, account).await
    };
    pull(&app, &admin, pbx).await;
    let mut conn = app.conn().await;
    assert_eq!(
        stored(&mut conn, pbx).await.len(),
        3,
        "both records of the failover"
    );
    // The same three from Master.csv (no sequence, no linkedid) and pushed.
    let master_csv = |row: &Row<'_>| {
        format!(
            "\"\",\"201\",\"{}\",\"from-internal\",\"\",\"{}\",\"{}\",\"Dial\",\"\",\"{}\",,\"\",{},{},\"{}\",\"DOCUMENTATION\",\"{}\",\"\"\n",
            row.dst, row.channel, row.dstchannel, row.calldate, row.duration, row.billsec, row.disposition, row.uniqueid
        )
    };
    let csv: String = [&call, &congested, &failed_over]
        .iter()
        .map(|r| master_csv(r))
        .collect();
    let imported = app
        .graphql(
            &admin,
            "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted duplicates } }",
            json!({ "i": { "pbxId": pbx.to_string(), "csv": csv } }),
        )
        .await;
    assert_eq!(
        imported["data"]["importCdrCsv"],
        json!({ "accepted": 0, "duplicates": 3 }),
        "{imported}"
    );
    let pushed = |row: &Row<'_>| {
        json!({ "calldate": format!("{}Z", row.calldate.replace(' ', "T")), "src": "201", "dst": row.dst,
                "dcontext": "from-internal", "channel": row.channel, "dstchannel": row.dstchannel,
                "duration": row.duration, "billsec": row.billsec, "disposition": row.disposition, "uniqueid": row.uniqueid })
    };
    let token = app
        .graphql(
            &admin,
            "mutation($p: ID!) { issueCdrToken(pbxId: $p) }",
            json!({ "p": pbx.to_string() }),
        )
        .await["data"]["issueCdrToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(app.url("/cdrs/push"))
        .bearer_auth(&token)
        .json(&json!({ "cdrs": [pushed(&call), pushed(&congested), pushed(&failed_over)] }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (answer["accepted"].clone(), answer["duplicates"].clone()),
        (json!(0), json!(3)),
        "{answer}"
    );
    assert_eq!(
        before - balance_of(&mut conn, account).await,
        40_000,
        "billed once: 65 s and 90 s, two minutes each at $0.01"
    );
    // Master.csv alone keeps both records of the failover too.
    let other = another_pbx(&app, pbx).await;
    let failover_csv: String = [&congested, &failed_over]
        .iter()
        .map(|r| master_csv(r))
        .collect();
    let alone = app
        .graphql(
            &admin,
            "mutation($i: CdrCsvInput!) { importCdrCsv(input: $i) { accepted duplicates } }",
            json!({ "i": { "pbxId": other.to_string(), "csv": failover_csv } }),
        )
        .await;
    assert_eq!(
        alone["data"]["importCdrCsv"],
        json!({ "accepted": 2, "duplicates": 0 }),
        "{alone}"
    );
    table.drop().await;
}

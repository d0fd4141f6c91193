//! CDRs and calls kept in one table per month: each row in its month's
//! table, months made ahead by a job and by ingestion when a batch reaches
//! one not made yet, calls that span months kept whole and billed once, and
//! the home and the month report reading one or two months' tables.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use switchboard_core::calls::cdr::RawCdr;
use switchboard_core::calls::{self, months};
use switchboard_core::schema::{calls as calls_table, journal_transactions, pbxes, plans};
use switchboard_core::AccountId;
use switchboard_jobs::{enqueue, run_due, Job, Pass};

use crate::calls::{add_rate, balance_of, pbx_with_rates};
use crate::harness::TestApp;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a time")
}

/// An answered call from extension 201 to a US number, `billsec` long.
pub(crate) fn outbound(
    uniqueid: &str,
    linkedid: &str,
    start: DateTime<Utc>,
    billsec: i32,
) -> RawCdr {
    RawCdr {
        calldate: start,
        src: "201".into(),
        dst: "15550100100".into(),
        dcontext: "from-internal".into(),
        channel: format!("PJSIP/201-{uniqueid}"),
        dstchannel: format!("PJSIP/voipms-{uniqueid}"),
        lastapp: "Dial".into(),
        duration: billsec + 5,
        billsec,
        disposition: "ANSWERED".into(),
        uniqueid: uniqueid.into(),
        linkedid: Some(linkedid.into()),
        ..RawCdr::default()
    }
}

/// Prices US calls at $0.02 a minute, 60/60, since long before the calls
/// below (the test PBX's own rates only start this November).
pub(crate) async fn rated_since_long_ago(conn: &mut diesel_async::AsyncPgConnection, pbx: i64) {
    let calling_plan: Option<i64> = pbxes::table
        .inner_join(plans::table)
        .filter(pbxes::id.eq(pbx))
        .select(plans::calling_plan_id)
        .first(conn)
        .await
        .expect("the PBX's plan");
    add_rate(
        conn,
        calling_plan.expect("a calling plan"),
        "1",
        20_000,
        Duration::days(4_000),
    )
    .await;
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = Text)]
    part: String,
    #[diesel(sql_type = Text)]
    key: String,
}

/// The table each of a PBX's CDRs (`cdrs`) or calls (`calls`) is kept in,
/// with the record's uniqueid or the call's key, ordered by key.
async fn tables_of(
    conn: &mut diesel_async::AsyncPgConnection,
    table: &str,
    pbx: i64,
) -> Vec<(String, String)> {
    let key = if table == "cdrs" {
        "uniqueid"
    } else {
        "call_key"
    };
    diesel::sql_query(format!(
        "SELECT tableoid::regclass::text AS part, {key} AS key FROM {table} WHERE pbx_id = $1 ORDER BY {key}"
    ))
    .bind::<BigInt, _>(pbx)
    .load::<Held>(conn)
    .await
    .expect("rows")
    .into_iter()
    .map(|h| (h.part, h.key))
    .collect()
}

/// The months' tables of `parent`, by name.
async fn month_tables(conn: &mut diesel_async::AsyncPgConnection, parent: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    diesel::sql_query(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits \
         WHERE inhparent = $1::regclass ORDER BY 1",
    )
    .bind::<Text, _>(parent)
    .load::<Name>(conn)
    .await
    .expect("partitions")
    .into_iter()
    .map(|n| n.name)
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_record_and_call_is_kept_in_its_months_table_even_a_month_not_made_yet() {
    let app = TestApp::spawn().await;
    let (_, _, pbx, _) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    assert!(
        !month_tables(&mut conn, "cdrs")
            .await
            .contains(&"cdrs_y2025m03".to_owned()),
        "last year's March is not made yet"
    );
    let now = Utc::now();
    // Last year's Master.csv and a call of today, in one batch.
    let batch = [
        outbound(
            "1741996800.1",
            "1741996800.1",
            at("2025-03-15T00:00:00Z"),
            60,
        ),
        outbound(
            "1743465599.2",
            "1743465599.2",
            at("2025-03-31T23:59:59Z"),
            30,
        ),
        outbound("now.3", "now.3", now - Duration::minutes(5), 45),
    ];
    let ingested = calls::ingest(&mut conn, &app.state.rate_tables, pbx, "csv", &batch, &[])
        .await
        .expect("the batch");
    assert_eq!((ingested.accepted, ingested.rejected), (3, 0));
    let this_month = now.format("%Ym%m").to_string();
    assert_eq!(
        tables_of(&mut conn, "cdrs", pbx).await,
        vec![
            ("cdrs_y2025m03".to_owned(), "1741996800.1".to_owned()),
            ("cdrs_y2025m03".to_owned(), "1743465599.2".to_owned()),
            (format!("cdrs_y{this_month}"), "now.3".to_owned()),
        ]
    );
    assert_eq!(
        tables_of(&mut conn, "calls", pbx).await,
        vec![
            ("calls_y2025m03".to_owned(), "1741996800.1".to_owned()),
            ("calls_y2025m03".to_owned(), "1743465599.2".to_owned()),
            (format!("calls_y{this_month}"), "now.3".to_owned()),
        ]
    );
    assert!(
        !month_tables(&mut conn, "cdrs")
            .await
            .contains(&"cdrs_y2025m04".to_owned()),
        "only the months a batch reaches are made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_calls_earlier_leg_arriving_later_from_the_month_before_makes_one_call_there_billed_once()
{
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    rated_since_long_ago(&mut conn, pbx).await;
    let linked = "1790812790.7";
    // The transfer's second leg, just after midnight on 1 October, comes
    // first; the first leg, from the last seconds of September, later.
    let second = outbound("1790812810.8", linked, at("2026-10-01T00:00:10Z"), 60);
    let first = outbound(linked, linked, at("2026-09-30T23:59:50Z"), 120);
    let one = calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        std::slice::from_ref(&second),
        &[],
    )
    .await
    .expect("the second leg");
    assert_eq!(one.billed.micros(), 20_000, "one minute at $0.02");
    assert_eq!(
        tables_of(&mut conn, "calls", pbx).await,
        vec![("calls_y2026m10".to_owned(), linked.to_owned())]
    );
    let two = calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "pull",
        std::slice::from_ref(&first),
        &[],
    )
    .await
    .expect("the first leg");
    assert_eq!(two.billed.micros(), 40_000, "two minutes at $0.02");
    // Both again, from other sources, in one batch: nothing new.
    let again = calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "csv",
        &[first.clone(), second.clone()],
        &[],
    )
    .await
    .expect("both again");
    assert_eq!(
        (again.accepted, again.duplicates, again.billed.micros()),
        (0, 2, 0)
    );

    assert_eq!(
        tables_of(&mut conn, "calls", pbx).await,
        vec![("calls_y2026m09".to_owned(), linked.to_owned())],
        "one call, moved to the month it started in"
    );
    assert_eq!(
        tables_of(&mut conn, "cdrs", pbx).await,
        vec![
            ("cdrs_y2026m09".to_owned(), linked.to_owned()),
            ("cdrs_y2026m10".to_owned(), "1790812810.8".to_owned()),
        ]
    );
    let (start, legs, billsec, cost, lead): (DateTime<Utc>, i32, i32, i64, String) =
        calls_table::table
            .filter(calls_table::pbx_id.eq(pbx))
            .select((
                calls_table::start,
                calls_table::legs,
                calls_table::billsec,
                calls_table::cost,
                calls_table::lead_key,
            ))
            .first(&mut conn)
            .await
            .expect("the call");
    assert_eq!(
        (start, legs, billsec, cost),
        (at("2026-09-30T23:59:50Z"), 2, 180, 60_000)
    );
    assert_eq!(
        lead,
        calls::cdr::record_key(&first),
        "the earlier leg leads"
    );
    let usage: i64 = journal_transactions::table
        .filter(journal_transactions::kind.eq("usage"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("usage");
    assert_eq!(usage, 2, "one posting per batch that brought a new leg");
    assert_eq!(balance_of(&mut conn, account).await, 10_000_000 - 60_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_pushed_with_a_fraction_of_a_second_and_pulled_again_is_stored_and_billed_once() {
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    rated_since_long_ago(&mut conn, pbx).await;
    let whole = Utc::now().with_timezone(&Utc) - Duration::hours(1);
    let whole = DateTime::<Utc>::from_timestamp(whole.timestamp(), 0).expect("a time");
    let pulled = outbound("1764590000.5", "1764590000.5", whole, 60);
    let pushed = RawCdr {
        calldate: whole + Duration::milliseconds(730),
        ..pulled.clone()
    };
    let first = calls::ingest(
        &mut conn,
        &app.state.rate_tables,
        pbx,
        "push",
        std::slice::from_ref(&pushed),
        &[],
    )
    .await
    .expect("pushed");
    assert_eq!(first.accepted, 1);
    for source in ["pull", "csv", "push"] {
        let again = calls::ingest(
            &mut conn,
            &app.state.rate_tables,
            pbx,
            source,
            &[pulled.clone(), pushed.clone()],
            &[],
        )
        .await
        .expect("again");
        assert_eq!(
            (again.accepted, again.duplicates, again.billed.micros()),
            (0, 2, 0),
            "{source}"
        );
    }
    let stored: Vec<DateTime<Utc>> = switchboard_core::schema::cdrs::table
        .filter(switchboard_core::schema::cdrs::pbx_id.eq(pbx))
        .select(switchboard_core::schema::cdrs::calldate)
        .load(&mut conn)
        .await
        .expect("stored");
    assert_eq!(stored, vec![whole], "kept once, to the second");
    assert_eq!(
        balance_of(&mut conn, account).await,
        10_000_000 - first.billed.micros()
    );
    assert!(first.billed.micros() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_makes_this_month_and_the_next_ones_and_makes_nothing_when_run_again() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    let mut ctx = app.jobs.clone();
    let then = at("2031-05-20T12:00:00Z");
    ctx.clock = switchboard_core::clock::Clock::at(then);
    let before = month_tables(&mut conn, "calls").await;
    assert!(!before.contains(&"calls_y2031m05".to_owned()));

    let name = Job::MakeCallMonths.name();
    assert!(enqueue(&mut conn, Job::MakeCallMonths, "", Some(name))
        .await
        .expect("queued"));
    let pass = run_due(&app.pool, &ctx).await.expect("ran");
    assert_eq!(
        pass,
        Pass {
            succeeded: 1,
            failed: 0,
            given_up: 0
        }
    );
    let made = month_tables(&mut conn, "calls").await;
    for month in ["2031m05", "2031m06", "2031m07"] {
        assert!(made.contains(&format!("calls_y{month}")), "{month}");
        assert!(
            month_tables(&mut conn, "cdrs")
                .await
                .contains(&format!("cdrs_y{month}")),
            "{month}"
        );
    }
    assert_eq!(made.len(), before.len() + 1 + months::AHEAD as usize);
    assert!(!made.contains(&"calls_y2031m08".to_owned()));

    assert!(enqueue(&mut conn, Job::MakeCallMonths, "", Some(name))
        .await
        .expect("queued again"));
    let pass = run_due(&app.pool, &ctx).await.expect("ran again");
    assert_eq!(pass.succeeded, 1);
    assert_eq!(month_tables(&mut conn, "calls").await, made, "nothing new");
    assert_eq!(
        months::make_ready(&mut conn, &months::coming(then))
            .await
            .expect("made"),
        0
    );
}

/// The statements `run` sends on `conn`, as the database receives them
/// (placeholders and the values bound to them).
async fn statements_of<T>(
    conn: &mut diesel_async::AsyncPgConnection,
    run: impl AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> T,
) -> (T, Vec<String>) {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel_async::AsyncConnection;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = seen.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            into.lock().expect("the list").push(query.to_string());
        }
    });
    let result = run(conn).await;
    conn.set_instrumentation(Option::<Box<dyn Instrumentation>>::None);
    let statements = seen.lock().expect("the list").clone();
    (result, statements)
}

/// The plan of `sql` as executed, prepared as the pool's connections prepare
/// it and run with `values` bound.
async fn executed_plan(
    conn: &mut diesel_async::AsyncPgConnection,
    sql: &str,
    values: &[String],
) -> Vec<String> {
    diesel::sql_query(format!("PREPARE read_calls AS {sql}"))
        .execute(conn)
        .await
        .expect("prepare");
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }
    let plan: Vec<String> = diesel::sql_query(format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE read_calls({})",
        values.join(", ")
    ))
    .load::<Line>(conn)
    .await
    .expect("the plan")
    .into_iter()
    .map(|l| l.line)
    .collect();
    diesel::sql_query("DEALLOCATE read_calls")
        .execute(conn)
        .await
        .expect("deallocate");
    plan
}

/// The months' tables of `calls` that running `statement` (a statement as
/// `statements_of` saw it) read, from its plan as executed; at least one.
async fn months_read(conn: &mut diesel_async::AsyncPgConnection, statement: &str) -> Vec<String> {
    let (read, plan) = tables_read(conn, statement).await;
    assert!(!read.is_empty(), "no month's table in {plan:#?}");
    read
}

/// The months' tables of `calls` that running `statement` read, and its
/// plan as executed.
async fn tables_read(
    conn: &mut diesel_async::AsyncPgConnection,
    statement: &str,
) -> (Vec<String>, Vec<String>) {
    let (sql, binds) = statement
        .split_once(" -- binds: ")
        .expect("a statement with its binds");
    // The values as literals of the types the statement gives them (an
    // array as `'{a,b}'`).
    let mut values: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut depth = 0;
    let literal = |v: &str| format!("'{}'", v.trim_matches('"').replace('\'', "''"));
    for c in binds.trim_start_matches('[').trim_end_matches(']').chars() {
        match c {
            '[' => {
                depth += 1;
                value.push('{');
            }
            ']' => {
                depth -= 1;
                value.push('}');
            }
            ',' if depth == 0 => values.push(literal(value.trim())),
            ',' => value.push(','),
            ' ' if depth > 0 => {}
            c => value.push(c),
        }
        if c == ',' && depth == 0 {
            value.clear();
        }
    }
    if !value.trim().is_empty() {
        values.push(literal(value.trim()));
    }
    let plan = executed_plan(conn, sql, &values).await;
    let mut read: Vec<String> = plan
        .iter()
        .filter(|line| !line.contains("never executed"))
        .filter_map(|line| {
            let at = line.find(" on calls_y")?;
            line[at + 4..].split_whitespace().next().map(str::to_owned)
        })
        .collect();
    read.sort();
    read.dedup();
    (read, plan)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_home_and_the_month_report_read_one_or_two_months_tables() {
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let account = AccountId(account);
    // Planned as the pages' statements are, on a connection of the pool.
    let mut conn = switchboard_core::db::conn(&app.pool)
        .await
        .expect("a pooled connection");
    // A call every ten days for the last year, and a few today.
    let now = Utc::now();
    let mut batch: Vec<RawCdr> = (1..37)
        .map(|n| {
            let id = format!("year.{n}");
            outbound(&id, &id, now - Duration::days(10 * n), 60)
        })
        .collect();
    batch.extend((0..12).map(|n| {
        let id = format!("today.{n}");
        outbound(&id, &id, now - Duration::minutes(n + 1), 30)
    }));
    calls::ingest(&mut conn, &app.state.rate_tables, pbx, "pull", &batch, &[])
        .await
        .expect("a year of calls");
    diesel::sql_query("ANALYZE calls")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let held = month_tables(&mut conn, "calls").await.len();
    assert!(held >= 12, "{held} months");

    let (recent, sent) = statements_of(&mut conn, async |conn| {
        calls::recent_calls(conn, account, 10).await
    })
    .await;
    let recent = recent.expect("recent calls");
    assert_eq!(
        recent
            .iter()
            .map(|c| c.call_key.as_str())
            .collect::<Vec<_>>(),
        batch[36..46]
            .iter()
            .map(|r| r.uniqueid.as_str())
            .collect::<Vec<_>>(),
        "the ten newest, newest first"
    );
    // Today's calls are enough: one statement reading this month's table
    // (and tomorrow's on a month's last day, as a PBX's clock may run a day
    // ahead); two on a month's first minutes, when some of them are last
    // month's.
    assert!(sent.len() <= 2, "{sent:#?}");
    let mut read = Vec::new();
    for statement in &sent {
        read.extend(months_read(&mut conn, statement).await);
    }
    read.sort();
    read.dedup();
    let expected: Vec<String> = months::months_of(
        recent
            .iter()
            .map(|c| c.start)
            .chain([now + Duration::days(1)]),
    )
    .iter()
    .map(|m| format!("calls_y{}", m.format("%Ym%m")))
    .collect();
    assert_eq!(read, expected);
    assert!(read.len() <= 2 || sent.len() == 2, "{read:?}");

    // The home's lists read together: one statement, this month's calls
    // from this month's table (and tomorrow's, as above).
    let (overview, sent) = statements_of(&mut conn, async |conn| {
        let wanted = switchboard_core::people::overview::Wanted {
            pbxes: true,
            orders: true,
            replenishments: 1,
            entries: 10,
            calls: 10,
        };
        switchboard_core::people::overview::read(conn, account, wanted, now).await
    })
    .await;
    assert!(overview.expect("the overview").calls.is_some());
    let [statement] = sent.as_slice() else {
        panic!("one statement: {sent:#?}");
    };
    let this_month: Vec<String> = months::months_of([now, now + Duration::days(1)])
        .iter()
        .map(|m| format!("calls_y{}", m.format("%Ym%m")))
        .collect();
    assert_eq!(months_read(&mut conn, statement).await, this_month);

    // Each PBX's usage this month and last, as the home and the report
    // show it: one statement, each month's calls counted from its own
    // table and only those two months' tables read.
    let (usage, sent) = statements_of(&mut conn, async |conn| {
        switchboard_core::billing::per_pbx::months(conn, account, "UTC", "USD", now, &[0, 1]).await
    })
    .await;
    let usage = usage.expect("the usage");
    let this_start = months::month_of(now);
    let last_start = months::month_of(this_start - Duration::days(1));
    let held_in = |from: DateTime<Utc>, to: DateTime<Utc>| {
        batch
            .iter()
            .filter(|r| r.calldate >= from && r.calldate < to)
            .count() as i64
    };
    assert_eq!(
        usage[0].lines[0].calls,
        held_in(this_start, now + Duration::days(1))
    );
    assert_eq!(usage[1].lines[0].calls, held_in(last_start, this_start));
    assert!(usage[1].lines[0].calls > 0, "{usage:#?}");
    let [statement] = sent.as_slice() else {
        panic!("one statement: {sent:#?}");
    };
    // Months in UTC are whole days: their calls come from each PBX's day
    // totals, and no month's table is read.
    let (read, plan) = tables_read(&mut conn, statement).await;
    assert_eq!(read, Vec::<String>::new(), "{plan:#?}");
    assert!(
        plan.iter()
            .any(|line| line.contains(" on call_days") && !line.contains("never executed")),
        "{plan:#?}"
    );
    // Months in New York start and end at 04:00 or 05:00 UTC: only the
    // tables holding those hours at the ends are read.
    let (usage, sent) = statements_of(&mut conn, async |conn| {
        switchboard_core::billing::per_pbx::months(
            conn,
            account,
            "America/New_York",
            "USD",
            now,
            &[0, 1],
        )
        .await
    })
    .await;
    assert!(usage.expect("the usage")[1].lines[0].calls > 0);
    let [statement] = sent.as_slice() else {
        panic!("one statement: {sent:#?}");
    };
    let new_york: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
    let ends: Vec<String> = [0, 1]
        .iter()
        .flat_map(|&back| {
            let (from, to) = calls::month_bounds(now, new_york, back);
            [from, to - Duration::seconds(1)]
        })
        .map(|t| format!("calls_y{}", months::month_of(t).format("%Ym%m")))
        .collect();
    let read = months_read(&mut conn, statement).await;
    assert!(
        !read.is_empty() && read.iter().all(|table| ends.contains(table)),
        "{read:?} of {ends:?}"
    );

    let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
    for back in [0, 1, 5] {
        let (from, to) = calls::month_bounds(now, zone, back);
        let (report, sent) = statements_of(&mut conn, async |conn| {
            calls::report(conn, account, from, to, zone).await
        })
        .await;
        assert!(report.expect("the report").all.calls > 0, "{back}");
        let [statement] = sent.as_slice() else {
            panic!("one statement: {sent:#?}");
        };
        // A month in New York spans the ends of two months in UTC.
        let expected: Vec<String> = months::months_of([from, to - Duration::seconds(1)])
            .iter()
            .map(|m| format!("calls_y{}", m.format("%Ym%m")))
            .collect();
        assert_eq!(months_read(&mut conn, statement).await, expected, "{back}");
    }
}

/// The pool's connections plan a statement once for any values, so that
/// month tables are left out when a plan starts rather than planned for on
/// every run. A plan made once cannot use a partial index whose condition
/// is a bound value: the list of unrated legs writes its condition into the
/// statement, so that its plan can use the index of unrated legs.
#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_plan_once_and_unrated_legs_keep_their_index() {
    let app = TestApp::spawn().await;
    let (_, _, pbx, _) = pbx_with_rates(&app).await;
    let mut conn = switchboard_core::db::conn(&app.pool)
        .await
        .expect("a pooled connection");

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        plan_cache_mode: String,
    }
    let setting: Setting = diesel::sql_query("SHOW plan_cache_mode")
        .get_result(&mut conn)
        .await
        .expect("the setting");
    assert_eq!(setting.plan_cache_mode, "force_generic_plan");

    // A call to France, which the PBX's plan has no rate for, stays unrated.
    let now = Utc::now();
    let mut leg = outbound("nowhere.1", "nowhere.1", now - Duration::minutes(5), 60);
    leg.dst = "33123456789".into();
    calls::ingest(&mut conn, &app.state.rate_tables, pbx, "pull", &[leg], &[])
        .await
        .expect("ingested");
    let (legs, sent) = statements_of(&mut conn, async |conn| {
        calls::unrated_legs(conn, None, 50).await
    })
    .await;
    assert_eq!(legs.expect("the list").len(), 1);
    let [statement] = sent.as_slice() else {
        panic!("one statement: {sent:#?}");
    };
    let (sql, binds) = statement
        .split_once(" -- binds: ")
        .expect("a statement with its binds");
    assert!(!binds.contains("unrated"), "{binds}");
    let values: Vec<String> = binds
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(", ")
        .filter(|v| !v.is_empty())
        .map(|v| v.trim_matches('"').to_owned())
        .collect();
    // The plan knows the value, so the index of unrated legs is open to it
    // (on tables this small it may read them whole all the same).
    let plan = executed_plan(&mut conn, sql, &values).await;
    assert!(
        plan.iter().any(|line| line.contains(" on cdrs_y")),
        "{plan:#?}"
    );
    assert!(
        !plan.iter().any(|line| line.contains("rating = $")),
        "{plan:#?}"
    );
}

/// What `sql` makes the database answer, as the error's text (empty when it
/// is carried out).
async fn refusal(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> String {
    match diesel::sql_query(sql).execute(conn).await {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_and_records_are_never_truncated_in_any_months_table_and_deleting_calls_keeps_the_day_totals(
) {
    let app = TestApp::spawn().await;
    let (_, _, pbx, _) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    rated_since_long_ago(&mut conn, pbx).await;
    let batch = [
        outbound(
            "1741996800.1",
            "1741996800.1",
            at("2025-03-15T00:00:00Z"),
            60,
        ),
        outbound("now.2", "now.2", Utc::now() - Duration::minutes(5), 45),
    ];
    calls::ingest(&mut conn, &app.state.rate_tables, pbx, "csv", &batch, &[])
        .await
        .expect("the batch");
    // A month made after the migrations, by the job's function.
    months::make_ready(&mut conn, &[at("2031-05-20T12:00:00Z")])
        .await
        .expect("made");

    let mut tables = vec!["cdrs".to_owned(), "calls".to_owned()];
    tables.extend(month_tables(&mut conn, "cdrs").await);
    tables.extend(month_tables(&mut conn, "calls").await);
    for month in [
        "cdrs_y2025m03",
        "calls_y2025m03",
        "cdrs_y2031m05",
        "calls_y2031m05",
    ] {
        assert!(tables.contains(&month.to_owned()), "{month}");
    }
    for table in &tables {
        let said = refusal(&mut conn, &format!("TRUNCATE {table}")).await;
        let expected = if table.starts_with("calls") {
            "calls are not truncated"
        } else {
            "call records are never deleted"
        };
        assert!(said.contains(expected), "TRUNCATE {table}: {said:?}");
    }
    let held: i64 = calls_table::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(held, 2, "nothing was truncated");

    // Deleting is how calls go, and their day totals go with them.
    crate::calls::assert_day_totals_follow_the_calls(&mut conn).await;
    assert_eq!(
        refusal(
            &mut conn,
            "DELETE FROM calls WHERE start < '2026-01-01T00:00:00Z'"
        )
        .await,
        ""
    );
    crate::calls::assert_day_totals_follow_the_calls(&mut conn).await;
    #[derive(QueryableByName)]
    struct Days {
        #[diesel(sql_type = BigInt)]
        days: i64,
    }
    let left: Days = diesel::sql_query(
        "SELECT count(*) AS days FROM call_days WHERE day < '2026-01-01' AND (calls <> 0 OR cost <> 0)",
    )
    .get_result(&mut conn)
    .await
    .expect("days");
    assert_eq!(left.days, 0, "last year's March has no calls left");
}

/// How many rows of `account`'s calls in `[from, to)` an index-only scan
/// had to read from the table, its pages not being marked all-visible.
async fn heap_fetches(
    conn: &mut diesel_async::AsyncPgConnection,
    account: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> i64 {
    for setting in ["enable_seqscan", "enable_bitmapscan"] {
        diesel::sql_query(format!("SET {setting} = off"))
            .execute(conn)
            .await
            .expect("set");
    }
    let plan = executed_plan(
        conn,
        "SELECT count(*) FROM calls WHERE account_id = $1 AND start >= $2 AND start < $3",
        &[
            account.to_string(),
            format!("'{}'::timestamptz", from.to_rfc3339()),
            format!("'{}'::timestamptz", to.to_rfc3339()),
        ],
    )
    .await;
    for setting in ["enable_seqscan", "enable_bitmapscan"] {
        diesel::sql_query(format!("RESET {setting}"))
            .execute(conn)
            .await
            .expect("reset");
    }
    assert!(
        plan.iter().any(|l| l.contains("Index Only Scan")),
        "{plan:#?}"
    );
    plan.iter()
        .filter_map(|l| l.trim().strip_prefix("Heap Fetches: "))
        .map(|n| n.parse::<i64>().expect("a count"))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_job_vacuums_last_and_this_months_calls_so_they_are_read_from_the_index_alone() {
    let app = TestApp::spawn().await;
    let (_, _, pbx, account) = pbx_with_rates(&app).await;
    let mut conn = app.conn().await;
    rated_since_long_ago(&mut conn, pbx).await;
    let now = Utc::now();
    let this_month = months::month_of(now);
    let last_month = this_month - Duration::days(3);
    let batch = [
        outbound("last.1", "last.1", last_month, 60),
        outbound("last.2", "last.2", last_month + Duration::hours(1), 30),
        outbound("now.3", "now.3", now - Duration::minutes(5), 45),
    ];
    calls::ingest(&mut conn, &app.state.rate_tables, pbx, "csv", &batch, &[])
        .await
        .expect("the batch");
    let (from, to) = (this_month - Duration::days(40), now + Duration::hours(1));
    assert_eq!(
        heap_fetches(&mut conn, account, from, to).await,
        3,
        "written, not vacuumed yet"
    );

    let name = Job::MakeCallMonths.name();
    assert!(enqueue(&mut conn, Job::MakeCallMonths, "", Some(name))
        .await
        .expect("queued"));
    let pass = run_due(&app.pool, &app.jobs).await.expect("ran");
    assert_eq!(pass.succeeded, 1);
    assert_eq!(heap_fetches(&mut conn, account, from, to).await, 0);

    // Run again, nothing new: it finds the tables and vacuums them again.
    assert_eq!(
        months::vacuum_read_months(&mut conn, now)
            .await
            .expect("vacuumed"),
        2
    );
    // A month with no table of its calls is passed over.
    assert_eq!(
        months::vacuum_read_months(&mut conn, at("2041-03-10T00:00:00Z"))
            .await
            .expect("nothing to vacuum"),
        0
    );
}

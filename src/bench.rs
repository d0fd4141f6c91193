//! `switchboard bench`: how fast calls come in and how fast the pages that
//! show them answer, printed as figures. Not a test: the machine it runs on
//! decides the numbers.
//!
//! 1. Ingestion: synthetic FreePBX CDRs through `calls::ingest`
//!    (derive, rate, store, fold into calls, bill) against a raw PostgreSQL
//!    `COPY` of the same rows into `cdrs`, in the same process; the ratio is
//!    ingestion's rate over COPY's.
//! 2. Latency: p50/p99 of the client home and of the month report, run as
//!    their GraphQL operations in-process, with 1M and then 10M CDRs stored.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use diesel_async::RunQueryDsl;
use futures::{SinkExt, TryStreamExt};
use rand::Rng;
use switchboard_controller::traffic;
use switchboard_core::calls::cdr::RawCdr;
use switchboard_core::config::Settings;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::people::sessions::SessionUser;
use switchboard_core::{
    calls, calls::calling_plans, calls::rate_csv, db, AccountId, AccountKind, Role, UserId,
};
use switchboard_graphql::Viewer;
use switchboard_web::AppState;

const ACCOUNTS: usize = 200;

/// Runs the benchmark against the database at `url` (which it fills) and
/// prints the figures. `large` is the big volume (10M in the README).
pub async fn run(
    url: &str,
    settings: Settings,
    large: i64,
    ingest_only: bool,
) -> anyhow::Result<()> {
    let pool = db::pool(url, 8)?;
    let mut conn = db::conn(&pool).await?;
    println!("Preparing {ACCOUNTS} accounts, each with a PBX on a rated plan …");
    sold_plan(
        &mut conn,
        "bench",
        "Bench",
        RATES,
        Some(switchboard_core::money::PerMinute(4_000_000)),
    )
    .await?;
    let mut pbxes = Vec::new();
    for n in 0..ACCOUNTS {
        let account = accounts::create(
            &mut conn,
            &NewAccount {
                name: format!("Bench {n}"),
                kind: AccountKind::Retail,
                parent: None,
                currency: "USD".into(),
                contact_name: String::new(),
                company: String::new(),
                email: format!("bench{n}@example.com"),
                phone: String::new(),
                address: String::new(),
            },
        )
        .await?;
        let pbx: i64 = diesel::sql_query(format!(
            "INSERT INTO pbxes (account_id, plan_id, request_id, gui_password_sealed, state) \
             SELECT {}, id, 'bench-{n}', 'v1:x', 'active' FROM plans WHERE slug = 'bench' RETURNING id AS n",
        account.0))
        .get_result::<Count>(&mut conn)
        .await?
        .n;
        pbxes.push((account, pbx));
    }

    // 1. Ingestion against COPY.
    let mut batches: Vec<(i64, Vec<RawCdr>)> = Vec::new();
    for (n, (_, pbx)) in pbxes.iter().take(40).enumerate() {
        batches.push((
            *pbx,
            traffic::generate(n as u64, Utc::now(), 60, 20, "15550100199"),
        ));
    }
    let total: usize = batches.iter().map(|(_, b)| b.len()).sum();
    println!(
        "Ingesting {total} synthetic CDRs in {} batches, one per PBX (derive, rate, store, fold into calls, bill) …",
        batches.len()
    );
    let rates = calling_plans::RateTables::default();
    let started = Instant::now();
    for (pbx, batch) in &batches {
        calls::ingest(&mut conn, &rates, *pbx, "pull", batch, &[])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let ingest = started.elapsed();
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting for COPY")?;
    tokio::spawn(connection);
    // The same rows into the same table: each batch's rows exactly as
    // ingestion stored them (every column it writes, so the same foreign
    // keys, checks and indexes apply), copied back in under one of 40 other
    // PBXs, one COPY per batch (each its own transaction, as each ingested
    // batch is). CDRs are never deleted: the copies stay, and count towards
    // the volumes filled below.
    let mut files = Vec::new();
    for (n, (pbx, _)) in batches.iter().enumerate() {
        let twin = pbxes[batches.len() + n].1;
        let out = client
            .copy_out(&format!(
                "COPY (SELECT {twin}, {COPY_COLUMNS} FROM cdrs WHERE pbx_id = {pbx} ORDER BY id) TO STDOUT"
            ))
            .await?;
        let chunks: Vec<bytes::Bytes> = out.try_collect().await?;
        files.push(bytes::Bytes::from(chunks.concat()));
    }
    let started = Instant::now();
    let mut copied = 0;
    for file in files {
        let sink = client
            .copy_in(&format!("COPY cdrs (pbx_id, {COPY_COLUMNS}) FROM STDIN"))
            .await?;
        futures::pin_mut!(sink);
        sink.send(file).await?;
        copied += sink.finish().await?;
    }
    let copy = started.elapsed();
    let ingest_rate = total as f64 / ingest.as_secs_f64();
    let copy_rate = copied as f64 / copy.as_secs_f64();
    println!(
        "ingest + rating: {ingest_rate:>10.0} CDRs/s ({total} in {:.2} s)",
        ingest.as_secs_f64()
    );
    println!(
        "raw COPY:        {copy_rate:>10.0} CDRs/s ({copied} in {:.2} s)",
        copy.as_secs_f64()
    );
    println!(
        "ratio:           {:>10.2} (target ≥ 0.5)",
        ingest_rate / copy_rate
    );
    two_accounts_at_once(&pool, &rates, &pbxes).await?;
    large_rate_table(&mut conn, &pbxes).await?;
    if ingest_only {
        return Ok(());
    }

    // 2. Latency at 1M and at the large volume.
    let state = AppState::new(pool.clone(), SecretKey::generate(), settings)?;
    let mut users = Vec::new();
    for (n, (account, _)) in pbxes.iter().enumerate() {
        let user: i64 = diesel::sql_query(format!(
            "INSERT INTO users (username, email, password_hash, role, account_id) VALUES ('bench{n}', 'u{n}@example.com', 'x', 'client', {}) RETURNING id AS n",
            account.0
        ))
        .get_result::<Count>(&mut conn)
        .await?
        .n;
        users.push((UserId(user), *account));
    }
    let mut round = 1;
    for target in [1_000_000i64, large] {
        fill(&mut conn, &rates, &pbxes, target, &mut round).await?;
        for (name, operation, variables) in [
            (
                "client home",
                switchboard_portal::CLIENT_HOME,
                serde_json::json!({}),
            ),
            (
                "month report",
                switchboard_portal::reports::REPORT,
                serde_json::json!({ "month": "CURRENT" }),
            ),
        ] {
            let mut timings = Vec::new();
            for round in 0..120 {
                let (user, account) = users[rand::thread_rng().gen_range(0..users.len())];
                let viewer = Viewer::signed_in(
                    SessionUser {
                        user_id: user,
                        username: format!("bench{round}"),
                        role: Role::Client,
                        account_id: Some(account),
                        must_change_password: false,
                        two_factor: false,
                        account: None,
                    },
                    "127.0.0.1",
                );
                let request = async_graphql::Request::new(operation)
                    .variables(async_graphql::Variables::from_json(variables.clone()))
                    .data(viewer);
                let started = Instant::now();
                let response = switchboard_graphql::execute(&state.schema, request).await;
                let took = started.elapsed();
                anyhow::ensure!(response.errors.is_empty(), "{name}: {:?}", response.errors);
                if round >= 20 {
                    timings.push(took);
                }
            }
            timings.sort();
            println!(
                "{name:<13} at {target:>10} CDRs: p50 {:>7.1} ms, p99 {:>7.1} ms",
                ms(timings[timings.len() / 2]),
                ms(timings[timings.len() * 99 / 100])
            );
        }
    }
    Ok(())
}

/// Every CDR column ingestion writes, but the PBX (which the COPY baseline
/// changes); `id` and `ingested_at` take their defaults.
const COPY_COLUMNS: &str = "source, record_key, calldate, clid, src, dst, dcontext, channel, dstchannel, \
    lastapp, lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid, userfield, linkedid, \
    sequence, did, recordingfile, cnum, cnam, outbound_cnum, outbound_cnam, dst_cnam, peeraccount, direction, \
    extension, status, call_key, helper_leg, rating, billed_seconds, rate_id, cost, ledger_transaction_id";

/// Ingests two PBXs of two accounts one after the other, then two others at
/// once on two connections: postings lock only their own customer, so the
/// second should take less time than the first.
async fn two_accounts_at_once(
    pool: &db::Pool,
    rates: &calling_plans::RateTables,
    pbxes: &[(AccountId, i64)],
) -> anyhow::Result<()> {
    const BATCHES: usize = 30;
    let traffic = |n: u64| -> Vec<Vec<RawCdr>> {
        let records = traffic::generate(1_000 + n, Utc::now(), 150, 40, "15550100199");
        let size = records.len().div_ceil(BATCHES);
        records.chunks(size).map(<[RawCdr]>::to_vec).collect()
    };
    let run = |pbx: i64, batches: Vec<Vec<RawCdr>>| {
        let (pool, rates) = (pool.clone(), rates.clone());
        async move {
            let mut conn = db::conn(&pool).await?;
            let mut count = 0;
            for batch in &batches {
                calls::ingest(&mut conn, &rates, pbx, "push", batch, &[])
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                count += batch.len();
            }
            anyhow::Ok(count)
        }
    };
    let (a, b, c, d) = (pbxes[80].1, pbxes[81].1, pbxes[82].1, pbxes[83].1);
    let (one, two, three, four) = (traffic(0), traffic(1), traffic(2), traffic(3));
    let started = Instant::now();
    let sequential = run(a, one).await? + run(b, two).await?;
    let after_another = started.elapsed();
    let started = Instant::now();
    let (left, right) = futures::try_join!(run(c, three), run(d, four))?;
    let at_once = started.elapsed();
    let concurrent = left + right;
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "two PBXs of two accounts, one after the other: {:>8.0} CDRs/s ({sequential} in {:.2} s)",
        rate(sequential, after_another),
        after_another.as_secs_f64()
    );
    println!(
        "two PBXs of two accounts, both at once:        {:>8.0} CDRs/s ({concurrent} in {:.2} s)",
        rate(concurrent, at_once),
        at_once.as_secs_f64()
    );
    println!(
        "at once over one after the other: {:>5.2}×",
        rate(concurrent, at_once) / rate(sequential, after_another)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Ingests synthetic FreePBX traffic (two months per PBX, a fresh seed each
/// round) through `calls::ingest`, as PBXs would push it, until the
/// table holds `target` CDRs; then vacuums, as autovacuum would have.
async fn fill(
    conn: &mut db::PooledConn,
    rates: &calling_plans::RateTables,
    pbxes: &[(switchboard_core::AccountId, i64)],
    target: i64,
    round: &mut u64,
) -> anyhow::Result<()> {
    let count = async |conn: &mut db::PooledConn| -> anyhow::Result<i64> {
        Ok(diesel::sql_query("SELECT count(*) AS n FROM cdrs")
            .get_result::<Count>(conn)
            .await?
            .n)
    };
    let mut have = count(conn).await?;
    if have >= target {
        return Ok(());
    }
    println!("Filling to {target} CDRs through ingest …");
    let (from, started) = (have, Instant::now());
    'fill: loop {
        for (n, (_, pbx)) in pbxes.iter().enumerate() {
            let records =
                traffic::generate((*round << 16) | n as u64, Utc::now(), 60, 20, "15550100199");
            let ingested = calls::ingest(conn, rates, *pbx, "push", &records, &[])
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            have += ingested.accepted as i64;
            if have >= target {
                break 'fill;
            }
        }
        *round += 1;
    }
    let took = started.elapsed().as_secs_f64();
    diesel::sql_query("VACUUM ANALYZE cdrs")
        .execute(conn)
        .await?;
    diesel::sql_query("VACUUM ANALYZE calls")
        .execute(conn)
        .await?;
    let calls = diesel::sql_query("SELECT count(*) AS n FROM calls")
        .get_result::<Count>(conn)
        .await?
        .n;
    println!(
        "  {} CDRs ingested in {took:.0} s ({:.0} CDRs/s, with {target} stored at the end); {calls} calls",
        have - from,
        (have - from) as f64 / took
    );
    Ok(())
}

/// A calling plan priced by the rates in `csv` (in force since 2020) and a
/// plan on sale billed by it, under `slug`; returns the calling plan.
pub(crate) async fn sold_plan(
    conn: &mut db::PooledConn,
    slug: &str,
    name: &str,
    csv: &str,
    inbound: Option<switchboard_core::money::PerMinute>,
) -> anyhow::Result<i64> {
    let calling_plan = calling_plans::create(conn, name, "USD", inbound)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows = rate_csv::parse(csv)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .rows;
    calling_plans::import_history(
        conn,
        calling_plan,
        &rows,
        "2020-01-01T00:00:00Z".parse()?,
        &switchboard_core::audit::Actor::system("bench"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    diesel::sql_query(
        "INSERT INTO plans (slug, name, setup_fee, monthly_fee, included_extensions, calling_plan_id) \
         VALUES ($1, $2, 0, 0, 20, $3)",
    )
    .bind::<diesel::sql_types::Text, _>(slug)
    .bind::<diesel::sql_types::Text, _>(name)
    .bind::<diesel::sql_types::BigInt, _>(calling_plan)
    .execute(conn)
    .await?;
    Ok(calling_plan)
}

/// Rates in the large calling plan: the bench's own and enough made-up
/// six-digit prefixes to make 100,000.
const LARGE_RATES: usize = 100_000;

/// Small batches priced with a 100,000-rate calling plan, as PBXs pushing
/// every few minutes send them: with the rate table kept between batches
/// (`RateTables`), and loaded for every batch as a baseline.
async fn large_rate_table(
    conn: &mut db::PooledConn,
    pbxes: &[(switchboard_core::AccountId, i64)],
) -> anyhow::Result<()> {
    let mut csv = String::from(RATES);
    let own = RATES.lines().count() - 1;
    for n in 0..LARGE_RATES - own {
        csv.push_str(&format!("{},0.03,60,60\n", 200_000 + n));
    }
    let calling_plan = sold_plan(conn, "bench-large", "Bench large", &csv, None).await?;
    // Read once untimed, so neither round pays for cold buffers.
    calling_plans::rate_table(conn, calling_plan).await?;
    const PBXES: usize = 4;
    const BATCH: usize = 100;
    let mut timings = Vec::new();
    for (round, label) in ["loaded for every batch", "kept between batches"]
        .into_iter()
        .enumerate()
    {
        let kept = calling_plans::RateTables::default();
        let mut batches = Vec::new();
        for n in 0..PBXES {
            let (account, _) = pbxes[round * PBXES + n];
            let pbx = diesel::sql_query(format!(
                "INSERT INTO pbxes (account_id, plan_id, request_id, gui_password_sealed, state) \
                 SELECT {}, id, 'bench-large-{round}-{n}', 'v1:x', 'active' FROM plans WHERE slug = 'bench-large' \
                 RETURNING id AS n",
                account.0
            ))
            .get_result::<Count>(conn)
            .await?
            .n;
            let records = traffic::generate(1_000 + n as u64, Utc::now(), 30, 20, "15550100199");
            for batch in records.chunks(BATCH) {
                batches.push((pbx, batch.to_vec()));
            }
        }
        let count: usize = batches.iter().map(|(_, b)| b.len()).sum();
        let started = Instant::now();
        for (pbx, batch) in &batches {
            let fresh = calling_plans::RateTables::default();
            let rates = if round == 0 { &fresh } else { &kept };
            calls::ingest(conn, rates, *pbx, "push", batch, &[])
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let took = started.elapsed();
        let rate = count as f64 / took.as_secs_f64();
        println!(
            "{LARGE_RATES} rates, batches of {BATCH}, table {label:<22}: {rate:>8.0} CDRs/s ({count} in {:.2} s)",
            took.as_secs_f64()
        );
        timings.push(rate);
    }
    println!("kept over loaded:  {:>10.1}×", timings[1] / timings[0]);
    Ok(())
}

pub(crate) const RATES: &str = "prefix,per_minute,initial_increment,subsequent_increment\n1,0.012,6,6\n1416,0.015,6,6\n44,0.021,30,6\n447,0.12,30,6\n33,0.028,30,6\n49,0.025,30,6\n61,0.045,60,60\n";

/// Measures a 100,000-row inventory file: reading and checking it alone,
/// the preview, the first import (every number new) and a re-import (every
/// number updated), in the database at `url`.
pub async fn numbers(url: &str) -> anyhow::Result<()> {
    use switchboard_core::numbers::{inventory, inventory_csv};
    const ROWS: usize = 100_000;
    let pool = db::pool(url, 2)?;
    let mut conn = db::conn(&pool).await?;
    diesel::sql_query(
        "DELETE FROM number_events WHERE number_id IN (SELECT id FROM numbers WHERE status = 'available')",
    )
    .execute(&mut conn)
    .await?;
    diesel::sql_query("DELETE FROM numbers WHERE status = 'available'")
        .execute(&mut conn)
        .await?;
    let mut csv = String::from("TN;NPA;NXX;Rate Center;State;City;LATA;NRC;MRC\n");
    for n in 0..ROWS {
        // Ten exchanges of ten thousand lines, as a carrier's block export lists them.
        let (nxx, line) = (200 + n / 10_000, n % 10_000);
        csv.push_str(&format!(
            "(312) {nxx}-{line:04};312;{nxx};CHICAGO;IL;Chicago;358;1.00;0.85\n"
        ));
    }
    println!("An inventory file of {ROWS} rows, {} bytes:", csv.len());
    let started = Instant::now();
    let parsed = inventory_csv::parse(&csv, &Default::default())
        .map_err(|e| anyhow::anyhow!("the file: {e}"))?;
    anyhow::ensure!(parsed.errors.is_empty() && parsed.rows.len() == ROWS);
    println!(
        "  read and checked:        {:>8.1} ms",
        ms(started.elapsed())
    );
    let started = Instant::now();
    let preview = inventory::preview(&mut conn, &csv, "USD", Utc::now()).await?;
    anyhow::ensure!(preview.new == ROWS, "{} new", preview.new);
    println!(
        "  preview:                 {:>8.1} ms",
        ms(started.elapsed())
    );
    let started = Instant::now();
    let imported = inventory::import(&mut conn, &csv, "USD", "bench", Utc::now()).await?;
    anyhow::ensure!(imported.new == ROWS, "{} new", imported.new);
    println!(
        "  imported, all new:       {:>8.1} ms",
        ms(started.elapsed())
    );
    let repriced = csv.replace(";0.85\n", ";0.95\n");
    let started = Instant::now();
    let imported = inventory::import(&mut conn, &repriced, "USD", "bench", Utc::now()).await?;
    anyhow::ensure!(imported.updated == ROWS, "{} updated", imported.updated);
    println!(
        "  imported again, updated: {:>8.1} ms",
        ms(started.elapsed())
    );
    Ok(())
}

/// Filler accounts and their PBXs each.
const FILL_ACCOUNTS: usize = 100;
const FILL_PBXES_EACH: i64 = 20;
/// Calls written by one statement (two CDRs each).
const FILL_CHUNK: i64 = 250_000;

/// Fills the database at `pool` to `target` CDRs with SQL alone
/// (`generate_series`), fast enough for 100M: other customers' calls, made
/// of two CDRs each (an answered leg and a ring-group leg that was not),
/// spread evenly over the last `months` months and 2,000 PBXs of
/// [`FILL_ACCOUNTS`] accounts, each with its row in `calls`. They are
/// internal calls, free, so the ledger has nothing to say of them; they
/// bypass ingestion (whose rate `switchboard bench` measures) and only make
/// the tables as large as a large reseller's. Prints how long it took.
pub async fn fill_with_sql(pool: &db::Pool, target: i64, months: u32) -> anyhow::Result<()> {
    use diesel::sql_types::{Array, BigInt, Double, Text, Timestamptz};
    let mut conn = db::conn(pool).await?;
    let have = diesel::sql_query("SELECT count(*) AS n FROM cdrs")
        .get_result::<Count>(&mut conn)
        .await?
        .n;
    if have >= target {
        println!("The database holds {have} CDRs already.");
        return Ok(());
    }
    let pbxes = filler_pbxes(&mut conn).await?;
    let count = (target - have + 1) / 2;
    println!(
        "Filling to {target} CDRs with SQL: {count} calls of {} PBXs over {months} months …",
        pbxes.len()
    );
    let started = Instant::now();
    let now = Utc::now();
    let first = now - chrono::Months::new(months);
    let spread = (now - first).num_seconds() as f64;
    let starts: Vec<chrono::DateTime<Utc>> = (0..=months)
        .filter_map(|n| first.checked_add_months(chrono::Months::new(n)))
        .collect();
    calls::months::make_ready(&mut conn, &starts).await?;
    let tag = now.timestamp_micros().to_string();
    let (pbx_ids, account_ids): (Vec<i64>, Vec<i64>) = pbxes.into_iter().unzip();
    // Call `c` of this run starts `c × step` seconds before now, newest
    // first, so each statement writes into one or two months' tables.
    let step = spread / count as f64;
    let mut written = 0;
    for from in (0..count).step_by(FILL_CHUNK as usize) {
        let to = (from + FILL_CHUNK).min(count);
        let chunk = "FROM generate_series($1::bigint, $2::bigint - 1) AS c, \
             LATERAL (SELECT ($4::bigint[])[1 + c % cardinality($4::bigint[])] AS pbx_id, \
                             ($5::bigint[])[1 + c % cardinality($5::bigint[])] AS account_id, \
                             date_trunc('second', $6::timestamptz - make_interval(secs => c * $3::float8)) AS start, \
                             'fill.' || $7::text || '.' || c AS call_key, \
                             (200 + c % 50)::text AS ext, (250 + c % 50)::text AS other, \
                             (20 + c % 400)::int AS billsec) f";
        let bound = |sql: String| {
            diesel::sql_query(sql)
                .bind::<BigInt, _>(from)
                .bind::<BigInt, _>(to)
                .bind::<Double, _>(step)
                .bind::<Array<BigInt>, _>(pbx_ids.clone())
                .bind::<Array<BigInt>, _>(account_ids.clone())
                .bind::<Timestamptz, _>(now)
                .bind::<Text, _>(tag.clone())
        };
        written += bound(format!(
            "INSERT INTO cdrs (pbx_id, record_key, source, calldate, clid, src, dst, dcontext, channel, \
                 dstchannel, lastapp, duration, billsec, disposition, uniqueid, linkedid, direction, \
                 extension, status, call_key, helper_leg, rating) \
             SELECT pbx_id, call_key || '.' || leg || '#fill', 'push', start + leg * interval '1 second', \
                 '\"' || ext || '\" <' || ext || '>', ext, other, 'from-internal', \
                 'PJSIP/' || ext || '-' || c, 'PJSIP/' || other || '-' || c || '.' || leg, 'Dial', \
                 billsec + 5, CASE WHEN leg = 0 THEN billsec ELSE 0 END, \
                 CASE WHEN leg = 0 THEN 'ANSWERED' ELSE 'NO ANSWER' END, \
                 call_key || '.' || leg, call_key, 'internal', ext, \
                 CASE WHEN leg = 0 THEN 'answered' ELSE 'no_answer' END, call_key, false, 'free' \
             {chunk}, generate_series(0, 1) AS leg"
        ))
        .execute(&mut conn)
        .await?;
        bound(format!(
            "INSERT INTO calls (pbx_id, call_key, account_id, start, lead_answered, lead_calldate, \
                 lead_key, src, dst, direction, extension, status, duration, billsec, cost, legs, \
                 rated, unrated, billed_seconds) \
             SELECT pbx_id, call_key, account_id, start, true, start, call_key || '.0#fill', ext, \
                 other, 'internal', ext, 'answered', billsec + 5, billsec, 0, 2, false, false, 0 \
             {chunk}"
        ))
        .execute(&mut conn)
        .await?;
        if (to / FILL_CHUNK) % 20 == 0 || to == count {
            println!(
                "  {} CDRs written, {:.0} s",
                written,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let filled = started.elapsed().as_secs_f64();
    let vacuumed = Instant::now();
    diesel::sql_query("VACUUM ANALYZE cdrs")
        .execute(&mut conn)
        .await?;
    diesel::sql_query("VACUUM ANALYZE calls")
        .execute(&mut conn)
        .await?;
    let vacuum = vacuumed.elapsed().as_secs_f64();
    println!(
        "  {written} CDRs and {count} calls written in {filled:.1} s ({:.0} CDRs/s), then vacuumed \
         and analyzed in {vacuum:.1} s; {} CDRs held",
        written as f64 / filled,
        have + written as i64
    );
    Ok(())
}

/// The filler's PBXs with their accounts, made the first time.
async fn filler_pbxes(conn: &mut db::PooledConn) -> anyhow::Result<Vec<(i64, i64)>> {
    #[derive(diesel::QueryableByName)]
    struct Pbx {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        account_id: i64,
    }
    let held = async |conn: &mut db::PooledConn| -> anyhow::Result<Vec<(i64, i64)>> {
        Ok(diesel::sql_query(
            "SELECT id, account_id FROM pbxes WHERE request_id LIKE 'filler-%' ORDER BY id",
        )
        .load::<Pbx>(conn)
        .await?
        .into_iter()
        .map(|p| (p.id, p.account_id))
        .collect())
    };
    let pbxes = held(conn).await?;
    if !pbxes.is_empty() {
        return Ok(pbxes);
    }
    sold_plan(conn, "filler", "Filler", RATES, None).await?;
    for n in 0..FILL_ACCOUNTS {
        let account = accounts::create(
            conn,
            &NewAccount {
                name: format!("Filler {n}"),
                kind: AccountKind::Retail,
                parent: None,
                currency: "USD".into(),
                contact_name: String::new(),
                company: String::new(),
                email: format!("filler{n}@example.com"),
                phone: String::new(),
                address: String::new(),
            },
        )
        .await?;
        diesel::sql_query(format!(
            "INSERT INTO pbxes (account_id, plan_id, request_id, gui_password_sealed, state) \
             SELECT {}, plans.id, 'filler-{n}-' || p, 'v1:x', 'active' \
             FROM plans, generate_series(1, {FILL_PBXES_EACH}) AS p WHERE slug = 'filler'",
            account.0
        ))
        .execute(conn)
        .await?;
    }
    held(conn).await
}

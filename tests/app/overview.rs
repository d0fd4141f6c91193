//! An account's short lists read in one statement (the client home's PBXs,
//! orders, top-up attempts, ledger entries and last calls): each list the
//! same as its own query reads it, over the API as well.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{json, Value};
use switchboard_core::billing::replenish;
use switchboard_core::calls::{self, cdr::RawCdr};
use switchboard_core::commerce::{orders as core_orders, pbxes as core_pbxes};
use switchboard_core::money::ledger;
use switchboard_core::people::overview::{self, Wanted};
use switchboard_core::schema::{orders, pbxes};
use switchboard_core::AccountId;

use crate::call_months::{outbound, rated_since_long_ago};
use crate::calls::pbx_with_rates;
use crate::harness::TestApp;

/// A client with two PBXs, three orders, three top-up attempts, three calls
/// this month and twelve before it; returns the signed-in client, the
/// account and the number of this month's calls.
async fn busy_account(app: &TestApp) -> (reqwest::Client, AccountId, usize) {
    let (_, client, pbx, account) = pbx_with_rates(app).await;
    let mut conn = app.conn().await;
    rated_since_long_ago(&mut conn, pbx).await;
    let plan: i64 = pbxes::table
        .find(pbx)
        .select(pbxes::plan_id)
        .get_result(&mut conn)
        .await
        .expect("the PBX's plan");
    let second = app
        .pbx(AccountId(account), plan, "provisioning", "pbx-second")
        .await;
    diesel::update(pbxes::table.find(second))
        .set(pbxes::label.eq("Warehouse"))
        .execute(&mut conn)
        .await
        .expect("a second PBX, named");
    for n in 0..3 {
        diesel::insert_into(orders::table)
            .values((
                orders::public_id.eq(format!("overvieworder{n:019}")),
                orders::account_id.eq(account),
                orders::kind.eq("pbx"),
                orders::plan_id.eq(plan),
                orders::currency.eq("USD"),
                orders::total.eq(2_000_000i64 + n),
                orders::gateway.eq("balance"),
            ))
            .execute(&mut conn)
            .await
            .expect("an order");
    }
    for (attempt, state) in ["declined", "needs_authentication", "succeeded"]
        .into_iter()
        .enumerate()
    {
        diesel::sql_query(
            "INSERT INTO replenishments (account_id, crossing, attempt, amount, currency, gateway, \
                                         reference, state, detail, created_at, settled_at) \
             VALUES ($1, 1, $2, 25000000, 'USD', 'test', 'ch_' || $2, $3, 'a detail', \
                     now() - ($2 || ' hours')::interval, now())",
        )
        .bind::<diesel::sql_types::BigInt, _>(account)
        .bind::<diesel::sql_types::Integer, _>(attempt as i32)
        .bind::<diesel::sql_types::Text, _>(state)
        .execute(&mut conn)
        .await
        .expect("a top-up attempt");
    }
    // Three calls in the last hours of this month (on a month's first
    // hours some fall in last month, which the comparisons hold as well),
    // and twelve spread over the months before.
    let now = Utc::now();
    let mut batch: Vec<RawCdr> = (0..3)
        .map(|n| {
            let id = format!("recent.{n}");
            outbound(&id, &id, now - Duration::minutes(10 * n + 1), 45)
        })
        .collect();
    batch.extend((1..13).map(|n| {
        let id = format!("older.{n}");
        outbound(&id, &id, now - Duration::days(9 * n + 2), 90)
    }));
    // One at a time, so that each is charged in an entry of its own.
    for record in &batch {
        calls::ingest(
            &mut conn,
            &app.state.rate_tables,
            pbx,
            "pull",
            std::slice::from_ref(record),
            &[],
        )
        .await
        .expect("a call");
    }
    let this_month = batch
        .iter()
        .filter(|r| r.calldate >= calls::months::month_of(now))
        .count();
    (client, AccountId(account), this_month)
}

fn debug<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:#?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_reads_each_list_as_its_own_query_does() {
    let app = TestApp::spawn().await;
    let (_, account, this_month) = busy_account(&app).await;
    let mut conn = app.conn().await;
    let wanted = Wanted {
        pbxes: true,
        orders: true,
        replenishments: 2,
        entries: 5,
        calls: 10,
    };
    let read = overview::read(&mut conn, account, wanted, Utc::now())
        .await
        .expect("the overview");

    let pbxes = read.pbxes.as_ref().expect("the PBXs");
    assert_eq!(pbxes.len(), 2);
    assert_eq!(
        debug(pbxes),
        debug(
            &core_pbxes::of_account(&mut conn, account)
                .await
                .expect("PBXs")
        )
    );
    let orders = read.orders.as_ref().expect("the orders");
    assert_eq!(orders.len(), 3);
    assert_eq!(
        debug(orders),
        debug(
            &core_orders::of_account(&mut conn, account)
                .await
                .expect("orders")
        )
    );
    let attempts = read.replenishments.as_ref().expect("the attempts");
    assert_eq!(attempts.len(), 2, "as many as asked for");
    assert_eq!(
        debug(attempts),
        debug(
            &replenish::of_account(&mut conn, account, 2)
                .await
                .expect("attempts")
        )
    );
    let entries = read.entries.as_ref().expect("the entries");
    assert_eq!(entries.len(), 5);
    assert_eq!(
        entries,
        &ledger::recent_entries(&mut conn, account, 5)
            .await
            .expect("entries")
    );
    // This month's calls, then the months before read as the home does.
    let this_months = read.calls.clone().expect("this month's calls");
    assert_eq!(this_months.len(), this_month);
    assert!(this_months.iter().all(|c| c.rated && c.cost > 0));
    let recent = calls::older_calls(&mut conn, account, read.now, this_months, 10)
        .await
        .expect("the months before");
    assert_eq!(recent.len(), 10);
    assert_eq!(
        recent,
        calls::recent_calls(&mut conn, account, 10)
            .await
            .expect("recent calls")
    );

    // Lists not asked for are not read.
    let some = overview::read(
        &mut conn,
        account,
        Wanted {
            orders: true,
            entries: 1,
            ..Wanted::default()
        },
        Utc::now(),
    )
    .await
    .expect("some lists");
    assert!(some.pbxes.is_none() && some.replenishments.is_none() && some.calls.is_none());
    assert_eq!(some.orders.map(|o| o.len()), Some(3));
    assert_eq!(some.entries.map(|e| e.len()), Some(1));

    // An account with nothing yet has empty lists, not missing ones.
    let empty = app
        .account("Empty Co", switchboard_core::AccountKind::Retail, None, 0)
        .await;
    let nothing = overview::read(&mut conn, empty, wanted, Utc::now())
        .await
        .expect("an empty overview");
    assert_eq!(nothing.pbxes.map(|l| l.len()), Some(0));
    assert_eq!(nothing.orders.map(|l| l.len()), Some(0));
    assert_eq!(nothing.replenishments.map(|l| l.len()), Some(0));
    assert_eq!(nothing.entries.map(|l| l.len()), Some(0));
    assert_eq!(nothing.calls.map(|l| l.len()), Some(0));
}

/// The lists of one request asking for several, against the same lists
/// each asked for alone (read by its own query).
#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_the_same_whether_the_lists_are_read_together_or_alone() {
    let app = TestApp::spawn().await;
    let (client, account, _) = busy_account(&app).await;
    let fields = [
        ("pbxes", "pbxes { id label state hostname }"),
        ("orders", "orders { id state total { formatted } }"),
        (
            "replenishments",
            "replenishments(first: 2) { at state detail amount { formatted } }",
        ),
        (
            "recentEntries",
            "recentEntries(limit: 4) { id postedAt kind memo amount { micros } }",
        ),
        // More than this month holds: the months before are read too.
        (
            "recentCalls",
            "recentCalls(limit: 12) { start from to direction status duration cost { exact } }",
        ),
    ];
    let together = app
        .graphql(
            &client,
            &format!(
                "{{ viewer {{ account {{ {} fewer: recentEntries(limit: 2) {{ id }} }} }} }}",
                fields.map(|(_, f)| f).join(" ")
            ),
            json!({}),
        )
        .await;
    assert!(together.get("errors").is_none(), "{together}");
    let together = &together["data"]["viewer"]["account"];
    for (name, field) in fields {
        let alone = app
            .graphql(
                &client,
                &format!("{{ viewer {{ account {{ {field} }} }} }}"),
                json!({}),
            )
            .await;
        assert!(alone.get("errors").is_none(), "{alone}");
        let alone = &alone["data"]["viewer"]["account"][name];
        assert!(
            alone.as_array().is_some_and(|l| !l.is_empty()),
            "{name}: {alone}"
        );
        assert_eq!(&together[name], alone, "{name}");
    }
    assert_eq!(together["recentCalls"].as_array().map(Vec::len), Some(12));
    // A second selection of a list with a smaller limit gets the newest of
    // the same entries.
    let ids = |list: &Value| -> Vec<Value> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|e| e["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&together["fewer"]),
        ids(&together["recentEntries"])[..2]
    );

    // Staff reading the account by id get the same lists.
    let (_, staff_password) = app
        .user("overview-staff", switchboard_core::Role::Staff, None)
        .await;
    let staff = app.signed_in("overview-staff", &staff_password).await;
    let by_id = app
        .graphql(
            &staff,
            &format!(
                "query($id: ID!) {{ account(id: $id) {{ {} }} }}",
                fields.map(|(_, f)| f).join(" ")
            ),
            json!({ "id": account.0.to_string() }),
        )
        .await;
    assert!(by_id.get("errors").is_none(), "{by_id}");
    for (name, _) in fields {
        assert_eq!(by_id["data"]["account"][name], together[name], "{name}");
    }
}

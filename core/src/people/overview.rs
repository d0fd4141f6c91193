//! An account's short lists read together: its PBXs, orders, last top-up
//! attempts, newest ledger entries and this month's last calls, in one
//! statement. The client home shows all of them at once; read one by one
//! they cost a statement each, and on these pages PostgreSQL's time goes to
//! starting statements more than to running them.
//!
//! Each list is exactly what its own function reads (`pbxes::of_account`,
//! `orders::of_account`, `replenish::of_account`, `ledger::recent_entries`,
//! `records::recent_calls` for this month), in the same order; the tests
//! hold them equal. Lists not asked for are not read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::billing::replenish::Replenishment;
use crate::calls::{self as records, BilledCall};
use crate::commerce::orders::Order;
use crate::commerce::pbxes::Pbx;
use crate::db::KeepPrepared;
use crate::domain::AccountId;
use crate::money::ledger::StatementLine;

/// Which lists to read; a limit of 0 reads none of that list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub pbxes: bool,
    pub orders: bool,
    pub replenishments: i64,
    pub entries: i64,
    pub calls: i64,
}

impl Wanted {
    pub fn any(&self) -> bool {
        self.pbxes || self.orders || self.replenishments > 0 || self.entries > 0 || self.calls > 0
    }
}

/// What was read; `None` for a list not asked for.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    pub pbxes: Option<Vec<Pbx>>,
    pub orders: Option<Vec<Order>>,
    pub replenishments: Option<Vec<Replenishment>>,
    pub entries: Option<Vec<StatementLine>>,
    /// This month's last calls, newest first. When there are fewer than
    /// asked for, [`records::older_calls`] goes on from last month.
    pub calls: Option<Vec<BilledCall>>,
    /// The time this month was taken from, for `older_calls`.
    pub now: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    pbxes: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    orders: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    replenishments: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    entries: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    calls: Option<String>,
}

/// Each list as a JSON array of rows whose keys are the fields of its Rust
/// type; `CASE` leaves a list not asked for unread. A column added to one
/// of these types must be added here too: its deserialising then fails, and
/// the tests with it.
const OVERVIEW: &str = "SELECT \
  CASE WHEN $2 THEN (SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text FROM ( \
    SELECT id, account_id, plan_id, order_id, request_id, controller_id, hostname, \
           gui_password_sealed, state, last_error, created_at, activated_at, label \
    FROM pbxes WHERE account_id = $1) p) END AS pbxes, \
  CASE WHEN $3 THEN (SELECT coalesce(json_agg(o ORDER BY o.id DESC), '[]')::text FROM ( \
    SELECT id, public_id, account_id, kind, plan_id, state, currency, total, gateway, \
           gateway_session_id, checkout_token, paid_at, created_at, checkout_attempt \
    FROM orders WHERE account_id = $1) o) END AS orders, \
  CASE WHEN $4 > 0 THEN (SELECT coalesce(json_agg(r ORDER BY r.id DESC), '[]')::text FROM ( \
    SELECT id, account_id, crossing, attempt, amount, currency, gateway, reference, state, \
           detail, created_at, settled_at \
    FROM replenishments WHERE account_id = $1 ORDER BY id DESC LIMIT $4) r) END AS replenishments, \
  CASE WHEN $5 > 0 THEN (SELECT coalesce(json_agg(e ORDER BY e.entry_id DESC), '[]')::text FROM ( \
    SELECT je.id AS entry_id, je.transaction_id, t.posted_at, t.kind, t.memo, je.amount \
    FROM journal_entries je \
    JOIN journal_transactions t ON t.id = je.transaction_id \
    JOIN ledger_accounts a ON a.id = je.ledger_account_id \
    WHERE a.account_id = $1 ORDER BY je.id DESC LIMIT $5) e) END AS entries, \
  CASE WHEN $6 > 0 THEN (SELECT coalesce(json_agg(c ORDER BY c.start DESC, c.pbx_id DESC, c.call_key DESC), '[]')::text FROM ( \
    SELECT pbx_id, call_key, start, src, dst, direction, extension, status, duration, \
           billsec, billed_seconds, cost, legs, rated, unrated \
    FROM calls WHERE account_id = $1 AND start >= $7 AND start < $8 \
    ORDER BY start DESC, pbx_id DESC, call_key DESC LIMIT $6) c) END AS calls";

/// Reads the lists `wanted` asks for, in one statement.
pub async fn read(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    wanted: Wanted,
    now: DateTime<Utc>,
) -> QueryResult<Overview> {
    let (from, to) = records::this_months_range(now);
    let row: Row = diesel::sql_query(OVERVIEW)
        .bind::<BigInt, _>(account.0)
        .bind::<Bool, _>(wanted.pbxes)
        .bind::<Bool, _>(wanted.orders)
        .bind::<BigInt, _>(wanted.replenishments.max(0))
        .bind::<BigInt, _>(wanted.entries.max(0))
        .bind::<BigInt, _>(wanted.calls.max(0))
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .kept_prepared()
        .get_result(conn)
        .await?;
    Ok(Overview {
        pbxes: parse(row.pbxes)?,
        orders: parse(row.orders)?,
        replenishments: parse(row.replenishments)?,
        entries: parse(row.entries)?,
        calls: parse(row.calls)?,
        now,
    })
}

fn parse<T: serde::de::DeserializeOwned>(json: Option<String>) -> QueryResult<Option<Vec<T>>> {
    json.map(|text| {
        serde_json::from_str(&text)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
    })
    .transpose()
}

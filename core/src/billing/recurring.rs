//! Recurring items: anything billed each period (a PBX's plan, an ordered
//! service; numbers later). One ledger transaction per (item, period), its
//! idempotency key made of both; periods missed while no server ran are
//! billed when one runs again, each once. Items are claimed one at a time
//! with `FOR UPDATE SKIP LOCKED`, each period posted and the item moved on
//! in one short transaction, so several instances share the work, a stop in
//! the middle loses nothing and doubles nothing.
//!
//! An account an admin turned off is not billed for periods that start
//! while it is off: they wait while it is off and are skipped when it is
//! turned on, so billing resumes with the first period that starts after.
//! The period under way when it was turned off was paid in advance and
//! stays paid.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::billing::periods::{due_periods, period_start};
use crate::domain::AccountId;
use crate::money::ledger::{self, Book, LedgerError, NewTransaction};
use crate::money::Money;
use crate::schema::{plans, recurring_items};

/// The kind of a PBX's plan as a recurring item; its subject is the PBX.
pub const PBX_PLAN: &str = "pbx_plan";

/// The kind of an ordered service's monthly fee; its subject is the order
/// (`service_orders`).
pub const SERVICE: &str = "service";
/// The kind of a phone number's monthly fee; its subject is the number's
/// `ordered` event, one per holder.
pub const NUMBER: &str = "number";

/// A recurring item as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = recurring_items)]
pub struct Item {
    pub id: i64,
    pub account_id: i64,
    pub kind: String,
    pub subject_id: i64,
    pub description: String,
    pub amount: i64,
    pub currency: String,
    pub anchor: DateTime<Utc>,
    pub next_period: i32,
    pub next_due_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// An item to start billing.
#[derive(Clone, Debug)]
pub struct NewItem<'a> {
    pub account: AccountId,
    pub kind: &'a str,
    pub subject_id: i64,
    pub description: String,
    pub amount: Money,
    pub currency: &'a str,
    /// Periods follow this moment's anniversary.
    pub anchor: DateTime<Utc>,
    /// The first period to bill: 1 when the first one was paid already (a
    /// signup pays its first month).
    pub first_period: i32,
}

/// Starts billing an item; starting the same (kind, subject) again changes
/// nothing. Returns whether it was new.
pub async fn start(conn: &mut AsyncPgConnection, item: &NewItem<'_>) -> QueryResult<bool> {
    let due =
        period_start(item.anchor, item.first_period).ok_or(diesel::result::Error::NotFound)?;
    diesel::insert_into(recurring_items::table)
        .values((
            recurring_items::account_id.eq(item.account.0),
            recurring_items::kind.eq(item.kind),
            recurring_items::subject_id.eq(item.subject_id),
            recurring_items::description.eq(&item.description),
            recurring_items::amount.eq(item.amount.micros()),
            recurring_items::currency.eq(item.currency),
            recurring_items::anchor.eq(item.anchor),
            recurring_items::next_period.eq(item.first_period),
            recurring_items::next_due_at.eq(due),
        ))
        .on_conflict((recurring_items::kind, recurring_items::subject_id))
        .do_nothing()
        .execute(conn)
        .await
        .map(|rows| rows == 1)
}

/// Starts billing a PBX's plan from the month after `activated_at`.
pub async fn start_pbx_plan(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    pbx: i64,
    plan: i64,
    activated_at: DateTime<Utc>,
) -> QueryResult<bool> {
    let (name, fee, currency): (String, i64, String) = plans::table
        .find(plan)
        .select((plans::name, plans::monthly_fee, plans::currency))
        .first(conn)
        .await?;
    start(
        conn,
        &NewItem {
            account,
            kind: PBX_PLAN,
            subject_id: pbx,
            description: format!("{name} (PBX #{pbx})"),
            amount: Money(fee),
            currency: &currency,
            anchor: activated_at,
            first_period: 1,
        },
    )
    .await
}

/// Starts billing an item and returns its id (the existing one when the
/// same kind and subject was started before).
pub async fn start_returning_id(
    conn: &mut AsyncPgConnection,
    item: &NewItem<'_>,
) -> QueryResult<i64> {
    start(conn, item).await?;
    recurring_items::table
        .filter(recurring_items::kind.eq(item.kind))
        .filter(recurring_items::subject_id.eq(item.subject_id))
        .select(recurring_items::id)
        .first(conn)
        .await
}

/// Stops an item at the end of the period under way at `now` (the first
/// period starting after `now` is never billed); returns that end. A period
/// that started but is not billed yet is still billed.
pub async fn end_after_paid_period(
    conn: &mut AsyncPgConnection,
    item: i64,
    now: DateTime<Utc>,
) -> QueryResult<DateTime<Utc>> {
    let (anchor, next): (DateTime<Utc>, i32) = recurring_items::table
        .find(item)
        .select((recurring_items::anchor, recurring_items::next_period))
        .for_update()
        .first(conn)
        .await?;
    let end = period_start(anchor, skip_to(anchor, next, now)).unwrap_or(now);
    diesel::update(recurring_items::table.find(item))
        .set(recurring_items::ends_at.eq(end))
        .execute(conn)
        .await?;
    Ok(end)
}

/// The idempotency key of an item's period: the item and the period's start.
pub fn posting_key(item: i64, start: DateTime<Utc>) -> String {
    format!("recurring:{item}:{}", start.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// What a billing run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Periods charged now.
    pub charged: usize,
    /// Periods another run had charged already (nothing changed).
    pub replayed: usize,
    /// Periods of items that cost nothing (moved on, nothing posted).
    pub free: usize,
}

/// Why a billing run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("the ledger refused a recurring charge: {0}")]
    Ledger(#[from] LedgerError),
    #[error("an item's period has no start (item {0})")]
    NoPeriod(i64),
}

impl From<diesel::result::Error> for BillingError {
    fn from(error: diesel::result::Error) -> BillingError {
        BillingError::Ledger(LedgerError::Database(error))
    }
}

/// Charges every period due at `now`, oldest first, one period per database
/// transaction; at most `limit` periods (so a run can be cut short, as a
/// stop would).
pub async fn bill_due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Run, BillingError> {
    let mut run = Run::default();
    while run.charged + run.replayed + run.free < limit {
        let done = conn
            .transaction(async |conn| bill_one_period(conn, now).await)
            .await?;
        match done {
            None => break,
            Some(Billed::Charged) => run.charged += 1,
            Some(Billed::Replayed) => run.replayed += 1,
            Some(Billed::Free) => run.free += 1,
        }
    }
    Ok(run)
}

enum Billed {
    Charged,
    Replayed,
    Free,
}

/// Claims the item due first that no other run holds, charges its next
/// period and moves it on.
async fn bill_one_period(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> Result<Option<Billed>, BillingError> {
    let item: Option<Item> = recurring_items::table
        .filter(recurring_items::next_due_at.le(now))
        .filter(
            recurring_items::ends_at
                .is_null()
                .or(recurring_items::ends_at.gt(recurring_items::next_due_at.nullable())),
        )
        // Periods that start while the account is turned off wait (and are
        // skipped when it is turned on).
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = recurring_items.account_id \
             AND a.turned_off AND a.turned_off_at <= recurring_items.next_due_at)",
        ))
        .order((recurring_items::next_due_at, recurring_items::id))
        .select(Item::as_select())
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()?;
    let Some(item) = item else {
        return Ok(None);
    };
    let due = due_periods(item.anchor, item.next_period, now, item.ends_at);
    if due.is_empty() {
        // The stored due time and the periods disagree (an item edited by
        // hand): put the due time right and look again next run.
        let start =
            period_start(item.anchor, item.next_period).ok_or(BillingError::NoPeriod(item.id))?;
        diesel::update(recurring_items::table.find(item.id))
            .set(recurring_items::next_due_at.eq(start))
            .execute(conn)
            .await?;
        return Ok(Some(Billed::Free));
    }
    let n = item.next_period;
    let start = period_start(item.anchor, n).ok_or(BillingError::NoPeriod(item.id))?;
    let end = period_start(item.anchor, n + 1).ok_or(BillingError::NoPeriod(item.id))?;
    let billed = if item.amount == 0 {
        Billed::Free
    } else {
        let customer = ledger::customer_account(conn, AccountId(item.account_id)).await?;
        let revenue = ledger::book(conn, Book::Revenue, &item.currency).await?;
        let amount = Money(item.amount);
        let posted = ledger::post(
            conn,
            &NewTransaction {
                idempotency_key: posting_key(item.id, start),
                kind: "charge".into(),
                memo: format!(
                    "{}, {} to {}",
                    item.description,
                    start.format("%Y-%m-%d"),
                    end.format("%Y-%m-%d")
                ),
                currency: item.currency.clone(),
                posted_by: None,
                entries: vec![(customer, -amount), (revenue, amount)],
            },
        )
        .await?;
        match posted {
            ledger::Posted::New(_) => Billed::Charged,
            ledger::Posted::Replayed(_) => Billed::Replayed,
        }
    };
    diesel::update(recurring_items::table.find(item.id))
        .set((
            recurring_items::next_period.eq(n + 1),
            recurring_items::next_due_at.eq(end),
        ))
        .execute(conn)
        .await?;
    Ok(Some(billed))
}

/// Moves an account's items past the periods that started from `from` to
/// `to` (the time an account was turned off and on again) unbilled. An
/// item with an earlier period still unbilled is left to be billed as it
/// is: its periods were due before the account was turned off.
pub async fn skip_periods_between(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<usize> {
    let items: Vec<Item> = recurring_items::table
        .filter(recurring_items::account_id.eq(account.0))
        .filter(recurring_items::next_due_at.ge(from))
        .filter(recurring_items::next_due_at.le(to))
        .select(Item::as_select())
        .for_update()
        .load(conn)
        .await?;
    let mut skipped = 0;
    for item in items {
        let first_after = skip_to(item.anchor, item.next_period, to);
        if first_after == item.next_period {
            continue;
        }
        let Some(due) = period_start(item.anchor, first_after) else {
            continue;
        };
        diesel::update(recurring_items::table.find(item.id))
            .set((
                recurring_items::next_period.eq(first_after),
                recurring_items::next_due_at.eq(due),
            ))
            .execute(conn)
            .await?;
        skipped += usize::try_from(first_after - item.next_period).unwrap_or(0);
    }
    Ok(skipped)
}

/// The first period from `next` on that starts after `to`.
fn skip_to(anchor: DateTime<Utc>, next: i32, to: DateTime<Utc>) -> i32 {
    let mut n = next;
    while period_start(anchor, n).is_some_and(|start| start <= to) {
        n += 1;
    }
    n
}

/// An account's recurring items, oldest first.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Vec<Item>> {
    recurring_items::table
        .filter(recurring_items::account_id.eq(account.0))
        .order(recurring_items::id)
        .select(Item::as_select())
        .load(conn)
        .await
}

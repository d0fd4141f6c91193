//! The inventory in the database: tiers, importing a checked file all or
//! nothing, browsing by state and rate center, searching, and a number's
//! history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::money::Money;
use crate::numbers::inventory_csv::{self, FileError, InventoryRow, RowError, TierPrices};
use crate::numbers::Status;
use crate::schema::{number_events, number_tiers, numbers};
use crate::AccountId;

/// A number as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = numbers)]
pub struct Number {
    pub id: i64,
    pub e164: String,
    pub npa: String,
    pub nxx: String,
    pub rate_center: String,
    pub state: String,
    pub city: Option<String>,
    pub lata: Option<String>,
    pub carrier: Option<String>,
    pub tier: Option<String>,
    pub setup_fee: i64,
    pub monthly_fee: i64,
    pub currency: String,
    pub status: String,
    pub account_id: Option<i64>,
    pub pbx_id: Option<i64>,
    pub order_id: Option<i64>,
    pub recurring_item_id: Option<i64>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub quarantined_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Number {
    /// Where it is at `now`: a quarantine that ended makes it available.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match Status::parse(&self.status) {
            Some(Status::Quarantined) if self.quarantined_until.is_some_and(|u| u <= now) => {
                Status::Available
            }
            Some(status) => status,
            None => Status::Available,
        }
    }
}

/// Numbers that may be sold at `now`.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn available_at(now: DateTime<Utc>) -> _ {
    numbers::status.eq("available").or(numbers::status
        .eq("quarantined")
        .and(numbers::quarantined_until.le(now)))
}

/// One line of a number's history.
#[derive(Clone, Debug, Queryable)]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub account_id: Option<i64>,
    pub pbx_id: Option<i64>,
    pub actor: String,
    pub detail: String,
}

/// Writes a line of a number's history.
pub async fn record(
    conn: &mut AsyncPgConnection,
    number: i64,
    kind: &str,
    account: Option<i64>,
    pbx: Option<i64>,
    actor: &str,
    detail: &str,
) -> QueryResult<i64> {
    diesel::insert_into(number_events::table)
        .values((
            number_events::number_id.eq(number),
            number_events::kind.eq(kind),
            number_events::account_id.eq(account),
            number_events::pbx_id.eq(pbx),
            number_events::actor.eq(actor),
            number_events::detail.eq(detail),
        ))
        .returning(number_events::id)
        .get_result(conn)
        .await
}

/// A number's history, oldest first.
pub async fn history(conn: &mut AsyncPgConnection, number: i64) -> QueryResult<Vec<Event>> {
    number_events::table
        .filter(number_events::number_id.eq(number))
        .order(number_events::id)
        .select((
            number_events::id,
            number_events::at,
            number_events::kind,
            number_events::account_id,
            number_events::pbx_id,
            number_events::actor,
            number_events::detail,
        ))
        .load(conn)
        .await
}

/// One number.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Number>> {
    numbers::table
        .find(id)
        .select(Number::as_select())
        .first(conn)
        .await
        .optional()
}

/// A tier as staff priced it.
#[derive(Clone, Debug, Queryable, PartialEq, Eq, serde::Serialize)]
pub struct Tier {
    pub name: String,
    pub setup_fee: i64,
    pub monthly_fee: i64,
    pub currency: String,
}

/// Every tier, by name.
pub async fn tiers(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Tier>> {
    number_tiers::table
        .order(number_tiers::name)
        .select((
            number_tiers::name,
            number_tiers::setup_fee,
            number_tiers::monthly_fee,
            number_tiers::currency,
        ))
        .load(conn)
        .await
}

/// Prices a tier (new or not), and every available number it prices;
/// returns the tier before, if it existed. Numbers already sold keep the
/// price they were sold at.
pub async fn set_tier(conn: &mut AsyncPgConnection, tier: &Tier) -> QueryResult<Option<Tier>> {
    let before = tiers(conn).await?.into_iter().find(|t| t.name == tier.name);
    diesel::insert_into(number_tiers::table)
        .values((
            number_tiers::name.eq(&tier.name),
            number_tiers::setup_fee.eq(tier.setup_fee),
            number_tiers::monthly_fee.eq(tier.monthly_fee),
            number_tiers::currency.eq(&tier.currency),
        ))
        .on_conflict(number_tiers::name)
        .do_update()
        .set((
            number_tiers::setup_fee.eq(tier.setup_fee),
            number_tiers::monthly_fee.eq(tier.monthly_fee),
            number_tiers::currency.eq(&tier.currency),
            number_tiers::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    diesel::update(
        numbers::table
            .filter(numbers::tier.eq(&tier.name))
            .filter(numbers::priced_by_tier)
            .filter(numbers::status.ne("ordered"))
            .filter(numbers::status.ne("active")),
    )
    .set((
        numbers::setup_fee.eq(tier.setup_fee),
        numbers::monthly_fee.eq(tier.monthly_fee),
        numbers::currency.eq(&tier.currency),
    ))
    .execute(conn)
    .await?;
    Ok(before)
}

/// What importing a file would do, or did.
#[derive(Clone, Debug, Default)]
pub struct Preview {
    /// Good rows.
    pub rows: usize,
    /// Numbers not in the inventory yet.
    pub new: usize,
    /// Available numbers whose details the file changes or repeats.
    pub updated: usize,
    /// Numbers ordered, active or quarantined: the file leaves them alone.
    pub held: Vec<String>,
    /// Every bad row: line, column, reason.
    pub errors: Vec<RowError>,
    pub columns: Vec<(String, &'static str)>,
    pub unknown: Vec<String>,
}

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("{} rows are bad; nothing was imported", .0.errors.len())]
    BadRows(Box<Preview>),
    #[error("{0} is not a currency")]
    Currency(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

async fn checked(
    conn: &mut AsyncPgConnection,
    text: &str,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<InventoryRow>, Preview), ImportError> {
    let currency = crate::domain::parse_currency(currency)
        .map_err(|_| ImportError::Currency(currency.to_owned()))?;
    let tiers: HashMap<String, TierPrices> = tiers(conn)
        .await?
        .into_iter()
        .filter(|t| t.currency == currency)
        .map(|t| {
            (
                t.name,
                TierPrices {
                    setup_fee: Money(t.setup_fee),
                    monthly_fee: Money(t.monthly_fee),
                },
            )
        })
        .collect();
    let parsed = inventory_csv::parse(text, &tiers)?;
    let wanted: Vec<&str> = parsed.rows.iter().map(|r| r.number.as_str()).collect();
    let known: Vec<Number> = numbers::table
        .filter(numbers::e164.eq_any(&wanted))
        .select(Number::as_select())
        .load(conn)
        .await?;
    let mut preview = Preview {
        rows: parsed.rows.len(),
        errors: parsed.errors,
        columns: parsed.columns,
        unknown: parsed.unknown,
        ..Preview::default()
    };
    for number in &known {
        if number.status_at(now) == Status::Available {
            preview.updated += 1;
        } else {
            preview.held.push(number.e164.clone());
        }
    }
    preview.held.sort();
    preview.new = preview.rows - known.len();
    Ok((parsed.rows, preview))
}

/// What importing `text` would do: changes nothing.
pub async fn preview(
    conn: &mut AsyncPgConnection,
    text: &str,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Preview, ImportError> {
    checked(conn, text, currency, now).await.map(|(_, p)| p)
}

/// Imports a file with no bad row, all or nothing, in one statement: new
/// numbers are added and available ones updated; ordered, active and
/// quarantined numbers are left as they are. Every number added or
/// updated gets a line of history naming `actor`.
pub async fn import(
    conn: &mut AsyncPgConnection,
    text: &str,
    currency: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Preview, ImportError> {
    let currency = crate::domain::parse_currency(currency)
        .map_err(|_| ImportError::Currency(currency.to_owned()))?;
    conn.transaction(async |conn| {
        let (rows, mut preview) = checked(conn, text, &currency, now).await?;
        if !preview.errors.is_empty() {
            return Err(ImportError::BadRows(Box::new(preview)));
        }
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = BigInt)]
            new: i64,
            #[diesel(sql_type = BigInt)]
            updated: i64,
        }
        fn column<T>(rows: &[InventoryRow], f: impl Fn(&InventoryRow) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        let counts: Counts = diesel::sql_query(
            "WITH up AS ( \
               INSERT INTO numbers (currency, e164, npa, nxx, rate_center, state, city, lata, \
                 carrier, tier, priced_by_tier, setup_fee, monthly_fee) \
               SELECT $1, unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), \
                 unnest($5::text[]), unnest($6::text[]), unnest($7::text[]), unnest($8::text[]), \
                 unnest($9::text[]), unnest($10::text[]), unnest($11::bool[]), \
                 unnest($12::bigint[]), unnest($13::bigint[]) \
               ON CONFLICT (e164) DO UPDATE SET npa = excluded.npa, nxx = excluded.nxx, \
                 rate_center = excluded.rate_center, state = excluded.state, city = excluded.city, \
                 lata = excluded.lata, carrier = excluded.carrier, tier = excluded.tier, \
                 priced_by_tier = excluded.priced_by_tier, setup_fee = excluded.setup_fee, \
                 monthly_fee = excluded.monthly_fee, currency = excluded.currency, \
                 status = 'available', quarantined_until = NULL, updated_at = now() \
               WHERE numbers.status = 'available' \
                 OR (numbers.status = 'quarantined' AND numbers.quarantined_until <= $14) \
               RETURNING id, (xmax = 0) AS inserted), \
             history AS ( \
               INSERT INTO number_events (number_id, kind, actor, detail) \
               SELECT id, CASE WHEN inserted THEN 'imported' ELSE 'updated' END, $15, '' FROM up) \
             SELECT count(*) FILTER (WHERE inserted) AS new, \
                    count(*) FILTER (WHERE NOT inserted) AS updated FROM up",
        )
        .bind::<Text, _>(&currency)
        .bind::<Array<Text>, _>(column(&rows, |r| r.number.as_str().to_owned()))
        .bind::<Array<Text>, _>(column(&rows, |r| r.npa.clone()))
        .bind::<Array<Text>, _>(column(&rows, |r| r.nxx.clone()))
        .bind::<Array<Text>, _>(column(&rows, |r| r.rate_center.clone()))
        .bind::<Array<Text>, _>(column(&rows, |r| r.state.clone()))
        .bind::<Array<Nullable<Text>>, _>(column(&rows, |r| r.city.clone()))
        .bind::<Array<Nullable<Text>>, _>(column(&rows, |r| r.lata.clone()))
        .bind::<Array<Nullable<Text>>, _>(column(&rows, |r| r.carrier.clone()))
        .bind::<Array<Nullable<Text>>, _>(column(&rows, |r| r.tier.clone()))
        .bind::<Array<Bool>, _>(column(&rows, |r| r.priced_by_tier))
        .bind::<Array<BigInt>, _>(column(&rows, |r| r.setup_fee.micros()))
        .bind::<Array<BigInt>, _>(column(&rows, |r| r.monthly_fee.micros()))
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(actor)
        .get_result(conn)
        .await?;
        // What the statement did is the truth (a number ordered since the
        // preview was read is left alone).
        preview.new = usize::try_from(counts.new).unwrap_or(0);
        preview.updated = usize::try_from(counts.updated).unwrap_or(0);
        Ok(preview)
    })
    .await
}

/// How many numbers are available in each state, by state.
pub async fn states(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(String, i64)>> {
    numbers::table
        .filter(available_at(now))
        .group_by(numbers::state)
        .order(numbers::state)
        .select((numbers::state, diesel::dsl::count_star()))
        .load(conn)
        .await
}

/// A rate center with numbers for sale.
#[derive(Clone, Debug, Queryable)]
pub struct RateCenter {
    pub state: String,
    pub rate_center: String,
    pub available: i64,
    /// The lowest monthly fee among them.
    pub from_monthly: Option<i64>,
    pub currency: Option<String>,
}

/// A state's rate centers with numbers for sale, by name.
pub async fn rate_centers(
    conn: &mut AsyncPgConnection,
    state: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<RateCenter>> {
    numbers::table
        .filter(available_at(now))
        .filter(numbers::state.eq(state))
        .group_by((numbers::state, numbers::rate_center))
        .order(numbers::rate_center)
        .select((
            numbers::state,
            numbers::rate_center,
            diesel::dsl::count_star(),
            diesel::dsl::min(numbers::monthly_fee),
            diesel::dsl::min(numbers::currency),
        ))
        .load(conn)
        .await
}

/// What to look for in the inventory.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub state: Option<String>,
    pub rate_center: Option<String>,
    /// Three digits: the area code.
    pub area_code: Option<String>,
    /// Digits the number contains anywhere.
    pub digits: Option<String>,
    /// `None`: available ones (what clients see), or all of `account`'s.
    pub status: Option<Status>,
    /// Only this account's (ordered or active) numbers.
    pub account: Option<AccountId>,
}

/// One page of numbers matching `search`, by id, after `after`.
pub async fn search(
    conn: &mut AsyncPgConnection,
    search: &Search,
    now: DateTime<Utc>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Number>> {
    let mut query = numbers::table
        .order(numbers::id)
        .limit(limit)
        .select(Number::as_select())
        .into_boxed();
    match search.status {
        // An account's numbers, whatever their status.
        None if search.account.is_some() => {}
        None | Some(Status::Available) => query = query.filter(available_at(now)),
        Some(Status::Quarantined) => {
            query = query
                .filter(numbers::status.eq("quarantined"))
                .filter(numbers::quarantined_until.gt(now))
        }
        Some(status) => query = query.filter(numbers::status.eq(status.as_str())),
    }
    if let Some(state) = &search.state {
        query = query.filter(numbers::state.eq(state.clone()));
    }
    if let Some(rate_center) = &search.rate_center {
        query = query.filter(numbers::rate_center.eq(rate_center.clone()));
    }
    if let Some(area_code) = &search.area_code {
        query = query.filter(numbers::npa.eq(area_code.clone()));
    }
    if let Some(digits) = &search.digits {
        let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
        query = query.filter(numbers::e164.like(format!("%{digits}%")));
    }
    if let Some(account) = search.account {
        query = query.filter(numbers::account_id.eq(account.0));
    }
    if let Some(after) = after {
        query = query.filter(numbers::id.gt(after));
    }
    query.load(conn).await
}

/// An account's numbers (ordered or active), by number.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Vec<Number>> {
    numbers::table
        .filter(numbers::account_id.eq(account.0))
        .order(numbers::e164)
        .select(Number::as_select())
        .load(conn)
        .await
}

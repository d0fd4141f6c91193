//! Calling plans and their versioned rates, as stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::audit::{self, Actor};
use crate::calls::rate_csv::{self, Diff, RateRow, Terms};
use crate::calls::rating::{Rate, RateTable};
use crate::money::{Money, PerMinute};
use crate::schema::{calling_plans, rates};

/// A calling plan as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = calling_plans)]
pub struct CallingPlan {
    pub id: i64,
    pub name: String,
    pub currency: String,
    pub inbound_per_minute_nanos: Option<i64>,
    pub created_at: DateTime<Utc>,
}

type RateRecord = (
    i64,
    String,
    String,
    i64,
    i64,
    i32,
    i32,
    i32,
    DateTime<Utc>,
    bool,
);

fn to_rate(r: RateRecord) -> Rate {
    Rate {
        id: r.0,
        prefix: r.1,
        description: r.2,
        per_minute: PerMinute(r.3),
        connection_fee: Money(r.4),
        initial_increment: u32::try_from(r.5).unwrap_or(1),
        subsequent_increment: u32::try_from(r.6).unwrap_or(1),
        minimum_duration: u32::try_from(r.7).unwrap_or(0),
        effective_from: r.8,
        removed: r.9,
    }
}

/// Why a calling plan change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallingPlanError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such calling plan")]
    NotFound,
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// Adds a calling plan.
pub async fn create(
    conn: &mut AsyncPgConnection,
    name: &str,
    currency: &str,
    inbound_per_minute: Option<PerMinute>,
) -> Result<i64, CallingPlanError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 80 {
        return Err(CallingPlanError::Invalid(
            "The name must be 1 to 80 characters.".into(),
        ));
    }
    let currency = crate::domain::parse_currency(currency)
        .map_err(|why| CallingPlanError::Invalid(format!("The currency {why}.")))?;
    diesel::insert_into(calling_plans::table)
        .values((
            calling_plans::name.eq(name),
            calling_plans::currency.eq(currency),
            calling_plans::inbound_per_minute_nanos.eq(inbound_per_minute.map(PerMinute::nanos)),
        ))
        .returning(calling_plans::id)
        .get_result(conn)
        .await
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                CallingPlanError::Invalid("Another calling plan has that name.".into())
            }
            other => other.into(),
        })
}

/// Every calling plan, by name.
pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<CallingPlan>> {
    calling_plans::table
        .order(calling_plans::name)
        .select(CallingPlan::as_select())
        .load(conn)
        .await
}

/// One calling plan.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<CallingPlan>> {
    calling_plans::table
        .find(id)
        .select(CallingPlan::as_select())
        .first(conn)
        .await
        .optional()
}

fn rate_columns() -> (
    rates::id,
    rates::prefix,
    rates::description,
    rates::per_minute_nanos,
    rates::connection_fee,
    rates::initial_increment,
    rates::subsequent_increment,
    rates::minimum_duration,
    rates::effective_from,
    rates::removed,
) {
    (
        rates::id,
        rates::prefix,
        rates::description,
        rates::per_minute_nanos,
        rates::connection_fee,
        rates::initial_increment,
        rates::subsequent_increment,
        rates::minimum_duration,
        rates::effective_from,
        rates::removed,
    )
}

/// Every version of every rate of a plan, indexed for pricing.
pub async fn rate_table(conn: &mut AsyncPgConnection, plan: i64) -> QueryResult<RateTable> {
    let rows: Vec<RateRecord> = rates::table
        .filter(rates::calling_plan_id.eq(plan))
        .select(rate_columns())
        .load(conn)
        .await?;
    Ok(RateTable::new(rows.into_iter().map(to_rate)))
}

/// Rate tables loaded for pricing, by calling plan, each with the plan's
/// rates version it was loaded at. Rates are append-only and every insert
/// moves the version on (a trigger, in the same transaction), so a table
/// whose version is still the plan's is the plan's table. Clones share one
/// store; keep one per database.
#[derive(Clone, Default)]
pub struct RateTables(Arc<Mutex<HeldTables>>);

/// By calling plan: the rates version a table was loaded at, and the table.
type HeldTables = HashMap<i64, (i64, Arc<RateTable>)>;

impl RateTables {
    /// The plan's table for pricing: the one held when `version` (the plan's
    /// `rates_version`, just read) is what it was loaded at, otherwise loaded
    /// now, together with the version it is at, in one statement.
    pub async fn get(
        &self,
        conn: &mut AsyncPgConnection,
        plan: i64,
        version: i64,
    ) -> QueryResult<Arc<RateTable>> {
        if let Some((held, table)) = self.lock().get(&plan) {
            if *held == version {
                return Ok(Arc::clone(table));
            }
        }
        let rows: Vec<(i64, Option<RateRecord>)> = calling_plans::table
            .find(plan)
            .left_join(rates::table)
            .select((calling_plans::rates_version, rate_columns().nullable()))
            .load(conn)
            .await?;
        let loaded_at = <[_]>::first(&rows).map_or(version, |(v, _)| *v);
        let table = Arc::new(RateTable::new(
            rows.into_iter().filter_map(|(_, rate)| rate.map(to_rate)),
        ));
        // A slower load of an older version does not replace a newer one.
        let mut held = self.lock();
        match held.get(&plan) {
            Some((newer, _)) if *newer > loaded_at => {}
            _ => {
                held.insert(plan, (loaded_at, Arc::clone(&table)));
            }
        }
        Ok(table)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeldTables> {
        // A panic elsewhere while holding the lock leaves whole entries
        // behind: the map is still sound.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every version of one prefix, oldest first: its history.
pub async fn history(
    conn: &mut AsyncPgConnection,
    plan: i64,
    prefix: &str,
) -> QueryResult<Vec<Rate>> {
    let rows: Vec<RateRecord> = rates::table
        .filter(rates::calling_plan_id.eq(plan))
        .filter(rates::prefix.eq(prefix))
        .order(rates::effective_from)
        .select(rate_columns())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(to_rate).collect())
}

/// What an import did, or would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl From<&Diff> for ImportSummary {
    fn from(diff: &Diff) -> ImportSummary {
        ImportSummary {
            added: diff.added.len(),
            changed: diff.changed.len(),
            removed: diff.removed.len(),
            unchanged: diff.unchanged,
        }
    }
}

/// Applies a checked file: new versions for added and changed prefixes and
/// removal versions for dropped ones, all taking effect at `effective_at`,
/// all or nothing. The plan is locked meanwhile, so two imports never
/// interleave.
pub async fn apply_import(
    conn: &mut AsyncPgConnection,
    plan: i64,
    rows: &[RateRow],
    replace: bool,
    effective_at: DateTime<Utc>,
    actor: &Actor,
) -> Result<ImportSummary, CallingPlanError> {
    if effective_at < Utc::now() - Duration::minutes(1) {
        return Err(CallingPlanError::Invalid(
            "Rates take effect now or later: calls already made keep their price.".into(),
        ));
    }
    write_versions(conn, plan, rows, replace, effective_at, actor).await
}

/// Loads an existing price list's history (demo data, a move from another
/// system): like `apply_import`, but the moment may be in the past. Never
/// reachable from the API, where rates take effect now or later.
pub async fn import_history(
    conn: &mut AsyncPgConnection,
    plan: i64,
    rows: &[RateRow],
    effective_at: DateTime<Utc>,
    actor: &Actor,
) -> Result<ImportSummary, CallingPlanError> {
    write_versions(conn, plan, rows, false, effective_at, actor).await
}

async fn write_versions(
    conn: &mut AsyncPgConnection,
    plan: i64,
    rows: &[RateRow],
    replace: bool,
    effective_at: DateTime<Utc>,
    actor: &Actor,
) -> Result<ImportSummary, CallingPlanError> {
    conn.transaction(async |conn| {
        calling_plans::table
            .find(plan)
            .select(calling_plans::id)
            .for_update()
            .first::<i64>(conn)
            .await
            .optional()?
            .ok_or(CallingPlanError::NotFound)?;
        let table = rate_table(conn, plan).await?;
        let diff = rate_csv::diff(&table.current(effective_at), rows, replace);
        // New versions for added and changed prefixes; removal versions, which
        // keep the last terms for the record, for dropped ones.
        let removals: Vec<Terms> = diff.removed.iter().map(Terms::of).collect();
        let versions = diff
            .added
            .iter()
            .map(|(_, terms)| terms)
            .chain(diff.changed.iter().map(|(_, terms, _)| terms))
            .map(|terms| (terms, false))
            .chain(removals.iter().map(|terms| (terms, true)));
        let values: Vec<_> = versions
            .map(|(terms, removed)| {
                (
                    rates::calling_plan_id.eq(plan),
                    rates::prefix.eq(terms.prefix.clone()),
                    rates::description.eq(terms.description.clone()),
                    rates::per_minute_nanos.eq(terms.per_minute.nanos()),
                    rates::connection_fee.eq(terms.connection_fee.micros()),
                    rates::initial_increment.eq(terms.initial_increment as i32),
                    rates::subsequent_increment.eq(terms.subsequent_increment as i32),
                    rates::minimum_duration.eq(terms.minimum_duration as i32),
                    rates::effective_from.eq(effective_at),
                    rates::removed.eq(removed),
                )
            })
            .collect();
        // PostgreSQL takes at most 65535 parameters a statement: 10 a row.
        for chunk in values.chunks(5_000) {
            diesel::insert_into(rates::table)
                .values(chunk)
                .execute(conn)
                .await
                .map_err(|e| match e {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => CallingPlanError::Invalid(
                        "Some of these rates already have a version taking effect at that very moment; choose another.".into(),
                    ),
                    other => other.into(),
                })?;
        }
        let summary = ImportSummary::from(&diff);
        audit::record(
            conn,
            actor,
            "calling_plan.import_rates",
            &format!("calling_plan:{plan}"),
            &format!(
                "{} added, {} changed, {} removed, effective {}",
                summary.added, summary.changed, summary.removed, effective_at
            ),
        )
        .await?;
        Ok(summary)
    })
    .await
}

/// Sets one rate of a plan by hand: a new version of `row`'s prefix taking
/// effect at `effective_at` (now or later), written and audited like an
/// import of one line. Returns the terms before (none for a new prefix) and
/// after; `Invalid` when nothing would change.
pub async fn set_rate(
    conn: &mut AsyncPgConnection,
    plan: i64,
    row: &RateRow,
    effective_at: DateTime<Utc>,
    actor: &Actor,
) -> Result<(Option<Terms>, Terms), CallingPlanError> {
    if effective_at < Utc::now() - Duration::minutes(1) {
        return Err(CallingPlanError::Invalid(
            "Rates take effect now or later: calls already made keep their price.".into(),
        ));
    }
    conn.transaction(async |conn| {
        calling_plans::table
            .find(plan)
            .select(calling_plans::id)
            .for_update()
            .first::<i64>(conn)
            .await
            .optional()?
            .ok_or(CallingPlanError::NotFound)?;
        let table = rate_table(conn, plan).await?;
        let current = table.current(effective_at);
        let diff = rate_csv::diff(&current, std::slice::from_ref(row), false);
        let (before, after) = match (
            <[_]>::first(&diff.added),
            <[_]>::first(&diff.changed),
        ) {
            (Some((_, terms)), _) => (None, terms.clone()),
            (None, Some((old, terms, _))) => (Some(Terms::of(old)), terms.clone()),
            (None, None) => {
                return Err(CallingPlanError::Invalid(
                    "That is the rate already: nothing changes.".into(),
                ))
            }
        };
        diesel::insert_into(rates::table)
            .values((
                rates::calling_plan_id.eq(plan),
                rates::prefix.eq(&after.prefix),
                rates::description.eq(&after.description),
                rates::per_minute_nanos.eq(after.per_minute.nanos()),
                rates::connection_fee.eq(after.connection_fee.micros()),
                rates::initial_increment.eq(after.initial_increment as i32),
                rates::subsequent_increment.eq(after.subsequent_increment as i32),
                rates::minimum_duration.eq(after.minimum_duration as i32),
                rates::effective_from.eq(effective_at),
                rates::removed.eq(false),
            ))
            .execute(conn)
            .await
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    CallingPlanError::Invalid(
                        "This rate already has a version taking effect at that very moment; choose another.".into(),
                    )
                }
                other => other.into(),
            })?;
        let terms_json = |t: &Terms| {
            serde_json::json!({
                "prefix": t.prefix,
                "description": t.description,
                "per_minute": t.per_minute.decimal(),
                "connection_fee": t.connection_fee.micros(),
                "increments": format!("{}/{}", t.initial_increment, t.subsequent_increment),
                "minimum_duration": t.minimum_duration,
            })
        };
        audit::record_change(
            conn,
            actor,
            "rate.set",
            &format!("calling_plan:{plan}"),
            &format!("{} effective {}", after.prefix, effective_at),
            &audit::Change {
                before: before.as_ref().map(terms_json),
                after: Some(terms_json(&after)),
            },
        )
        .await?;
        Ok((before, after))
    })
    .await
}

/// The plans that bill their PBXs' calls with a calling plan, by name.
pub async fn plans_using(
    conn: &mut AsyncPgConnection,
    calling_plan: i64,
) -> QueryResult<Vec<crate::commerce::plans::Plan>> {
    use crate::schema::plans;
    plans::table
        .filter(plans::calling_plan_id.eq(calling_plan))
        .order(plans::name)
        .select(crate::commerce::plans::Plan::as_select())
        .load(conn)
        .await
}

/// The accounts whose calls a calling plan prices, by id: those that
/// chose it, and those with a PBX on a plan that bills with it and no
/// calling plan of their own. At most `limit`.
pub async fn accounts_using(
    conn: &mut AsyncPgConnection,
    calling_plan: i64,
    limit: i64,
) -> QueryResult<Vec<crate::people::accounts::Account>> {
    use crate::people::accounts::Account;
    use crate::schema::{accounts, pbxes, plans};
    let through_plans = pbxes::table
        .inner_join(plans::table)
        .filter(plans::calling_plan_id.eq(calling_plan))
        .select(pbxes::account_id);
    accounts::table
        .filter(
            accounts::calling_plan_id
                .eq(calling_plan)
                .or(accounts::calling_plan_id
                    .is_null()
                    .and(accounts::id.eq_any(through_plans))),
        )
        .order(accounts::id)
        .limit(limit)
        .select(Account::as_select())
        .load(conn)
        .await
}

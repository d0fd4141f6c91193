//! Calling plans and their rates: read by staff, changed by admins.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Actor};
use switchboard_core::calls::calling_plans::{
    self, CallingPlanError, ImportSummary as CoreSummary,
};
use switchboard_core::calls::dialling::{Dialled, DiallingRules};
use switchboard_core::calls::rate_csv::{self, Terms};
use switchboard_core::calls::rating::{self, Rate as CoreRate};
use switchboard_core::db;
use switchboard_core::money::PerMinute;

use crate::guards::{self, Allow, Viewer, ADMIN, STAFF};
use crate::types::{parse_id, Money, PerMinutePrice};
use crate::{internal, pool};

/// A rate table that plans bill calls with.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct CallingPlan {
    pub id: ID,
    pub name: String,
    pub currency: String,
    /// What an answered inbound call costs a minute, if anything.
    pub inbound_per_minute: Option<PerMinutePrice>,
    pub created_at: DateTime<Utc>,
}

impl From<calling_plans::CallingPlan> for CallingPlan {
    fn from(plan: calling_plans::CallingPlan) -> CallingPlan {
        CallingPlan {
            id: ID(plan.id.to_string()),
            inbound_per_minute: plan
                .inbound_per_minute_nanos
                .map(|n| PerMinutePrice::new(PerMinute(n), &plan.currency)),
            name: plan.name,
            currency: plan.currency,
            created_at: plan.created_at,
        }
    }
}

/// One version of a rate.
#[derive(SimpleObject, Clone, Debug)]
pub struct Rate {
    pub id: ID,
    pub prefix: String,
    pub description: String,
    /// As written in the price list, to nine decimals.
    pub per_minute: PerMinutePrice,
    pub connection_fee: Money,
    pub initial_increment: i32,
    pub subsequent_increment: i32,
    pub minimum_duration: i32,
    pub effective_from: DateTime<Utc>,
    /// This version takes the prefix out of the table.
    pub removed: bool,
}

fn rate(rate: &CoreRate, currency: &str) -> Rate {
    Rate {
        id: ID(rate.id.to_string()),
        prefix: rate.prefix.clone(),
        description: rate.description.clone(),
        per_minute: PerMinutePrice::new(rate.per_minute, currency),
        connection_fee: Money::new(rate.connection_fee, currency),
        initial_increment: rate.initial_increment as i32,
        subsequent_increment: rate.subsequent_increment as i32,
        minimum_duration: rate.minimum_duration as i32,
        effective_from: rate.effective_from,
        removed: rate.removed,
    }
}

/// What a call would cost.
#[derive(SimpleObject, Clone, Debug)]
pub struct CallPrice {
    pub rate_id: ID,
    pub prefix: String,
    pub billed_seconds: i32,
    pub cost: Money,
}

#[ComplexObject]
impl CallingPlan {
    /// The plans on sale whose PBXs' calls this calling plan prices.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn plans(&self, ctx: &Context<'_>) -> Result<Vec<crate::commerce::Plan>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(calling_plans::plans_using(&mut conn, parse_id(&self.id)?)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The accounts whose calls this calling plan prices: those that chose
    /// it, and those on a plan that bills with it without a calling plan of
    /// their own; by id.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "At most 200.")] first: i32,
    ) -> Result<Vec<crate::types::Account>> {
        use switchboard_core::money::ledger;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = calling_plans::accounts_using(
            &mut conn,
            parse_id(&self.id)?,
            i64::from(first.clamp(1, 200)),
        )
        .await
        .map_err(internal)?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in rows {
            let balance = ledger::balance(&mut conn, row.id())
                .await
                .map_err(internal)?;
            accounts.push(crate::types::Account::new(row, balance));
        }
        Ok(accounts)
    }

    /// The rates in force at `at` (now if not given), by prefix; optionally
    /// only prefixes starting with `prefix`.
    #[graphql(
        complexity = "crate::limits::cost::RATE_TABLE + (first.clamp(1, 1000) as usize) * child_complexity"
    )]
    async fn rates(
        &self,
        ctx: &Context<'_>,
        at: Option<DateTime<Utc>>,
        prefix: Option<String>,
        #[graphql(default = 100, desc = "At most 1000.")] first: i32,
    ) -> Result<Vec<Rate>> {
        let table = self.table(ctx).await?;
        let at = at.unwrap_or_else(Utc::now);
        let prefix = prefix.unwrap_or_default();
        Ok(table
            .current(at)
            .into_iter()
            .filter(|r| r.prefix.starts_with(&prefix))
            .take(first.clamp(1, 1000) as usize)
            .map(|r| rate(r, &self.currency))
            .collect())
    }

    /// How many rates are in force at `at` (now if not given).
    #[graphql(complexity = "crate::limits::cost::RATE_TABLE")]
    async fn rate_count(&self, ctx: &Context<'_>, at: Option<DateTime<Utc>>) -> Result<i32> {
        let table = self.table(ctx).await?;
        Ok(table.current(at.unwrap_or_else(Utc::now)).len() as i32)
    }

    /// Every version of one prefix, oldest first.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn history(&self, ctx: &Context<'_>, prefix: String) -> Result<Vec<Rate>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let versions = calling_plans::history(&mut conn, parse_id(&self.id)?, &prefix)
            .await
            .map_err(internal)?;
        Ok(versions.iter().map(|r| rate(r, &self.currency)).collect())
    }

    /// The rates in force at `at` as CSV, in the format imports read.
    #[graphql(complexity = "crate::limits::cost::RATE_EXPORT")]
    async fn export_csv(&self, ctx: &Context<'_>, at: Option<DateTime<Utc>>) -> Result<String> {
        let table = self.table(ctx).await?;
        Ok(rate_csv::export(
            &table.current(at.unwrap_or_else(Utc::now)),
        ))
    }

    /// What an answered call to `number` lasting `seconds` would cost if it
    /// started at `at`; null when no rate matches (such a call is unrated).
    /// The number is read as dialled in North America, or as `+` and
    /// international digits.
    #[graphql(complexity = "crate::limits::cost::RATE_TABLE + child_complexity")]
    async fn price_call(
        &self,
        ctx: &Context<'_>,
        number: String,
        seconds: i32,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<CallPrice>> {
        let seconds = u32::try_from(seconds).map_err(|_| "seconds must not be negative")?;
        let number = match DiallingRules::default().normalize(&number) {
            Dialled::Number(number) => number,
            Dialled::Service(_) => {
                return Err("An emergency or service number is not charged.".into())
            }
            Dialled::Unknown => return Err("That is not a number such as +44 20 7946 0958.".into()),
        };
        let table = self.table(ctx).await?;
        match table.price(&number, at.unwrap_or_else(Utc::now), seconds) {
            Ok(priced) => Ok(Some(CallPrice {
                rate_id: ID(priced.rate_id.to_string()),
                prefix: priced.prefix,
                billed_seconds: priced.billed_seconds as i32,
                cost: Money::new(priced.cost, &self.currency),
            })),
            Err(rating::NotPriced::NoRate) => Ok(None),
            Err(rating::NotPriced::TooLarge) => {
                Err("That call's cost is larger than any amount.".into())
            }
        }
    }
}

impl CallingPlan {
    /// The plan's rate table, shared with ingestion's while the plan's rates
    /// are unchanged: however many fields of a request ask for it, one copy
    /// is held.
    async fn table(&self, ctx: &Context<'_>) -> Result<Arc<rating::RateTable>> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::calling_plans as plans;
        let id = parse_id(&self.id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let version: i64 = plans::table
            .find(id)
            .select(plans::rates_version)
            .first(&mut conn)
            .await
            .map_err(internal)?;
        crate::commerce::commerce(ctx)?
            .rate_tables
            .get(&mut conn, id, version)
            .await
            .map_err(internal)
    }
}

/// What an import does.
#[derive(SimpleObject, Clone, Debug)]
pub struct ImportSummary {
    pub added: i32,
    pub changed: i32,
    pub removed: i32,
    pub unchanged: i32,
}

impl From<CoreSummary> for ImportSummary {
    fn from(s: CoreSummary) -> ImportSummary {
        ImportSummary {
            added: s.added as i32,
            changed: s.changed as i32,
            removed: s.removed as i32,
            unchanged: s.unchanged as i32,
        }
    }
}

/// A row of a rate file that cannot be imported.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateRowError {
    pub line: i32,
    pub column: String,
    pub reason: String,
}

/// A rate as a file would set it: the file's values, and for what the
/// file leaves out the current rate's or the defaults.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateLine {
    pub line: i32,
    pub prefix: String,
    pub description: String,
    pub per_minute: PerMinutePrice,
    pub connection_fee: Money,
    pub initial_increment: i32,
    pub subsequent_increment: i32,
    pub minimum_duration: i32,
}

impl RateLine {
    fn new(line: usize, terms: &Terms, currency: &str) -> RateLine {
        RateLine {
            line: line as i32,
            prefix: terms.prefix.clone(),
            description: terms.description.clone(),
            per_minute: PerMinutePrice::new(terms.per_minute, currency),
            connection_fee: Money::new(terms.connection_fee, currency),
            initial_increment: terms.initial_increment as i32,
            subsequent_increment: terms.subsequent_increment as i32,
            minimum_duration: terms.minimum_duration as i32,
        }
    }
}

/// One field an import changes.
#[derive(SimpleObject, Clone, Debug)]
pub struct FieldChange {
    /// `description`, `per-minute price`, `connection fee`, `billing blocks`
    /// or `minimum billed`.
    pub field: String,
    pub from: String,
    pub to: String,
}

/// A prefix whose terms an import changes, field by field.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateChange {
    pub line: i32,
    pub prefix: String,
    pub changes: Vec<FieldChange>,
    /// The terms it would have.
    pub becomes: RateLine,
}

/// A column of the file and what it was read as.
#[derive(SimpleObject, Clone, Debug)]
pub struct ColumnRead {
    pub header: String,
    pub meaning: String,
}

/// What importing a file would do, before anything changes.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateImportPreview {
    pub summary: ImportSummary,
    /// Whose column names the file uses: `ours`, `a2billing` or `astpp`.
    pub format: String,
    /// The file's columns that were read, and as what.
    pub columns: Vec<ColumnRead>,
    /// What the file does not give: prefixes already in the table keep their
    /// value, new ones get the default (no fee, 60/60, no minimum).
    pub not_in_file: Vec<String>,
    /// Headers that mean nothing here: those columns are not read.
    pub unknown_columns: Vec<String>,
    /// The first 50 added prefixes, as they would be.
    pub added: Vec<RateLine>,
    /// The first 50 changed prefixes, with every field that changes.
    pub changed: Vec<RateChange>,
    /// The first 50 removed prefixes.
    pub removed: Vec<Rate>,
    /// Every bad row (the first 500), with its line, column and reason.
    pub errors: Vec<RateRowError>,
    pub error_count: i32,
}

/// A rate file to import.
#[derive(InputObject)]
pub struct RateImportInput {
    pub calling_plan_id: ID,
    /// The file's text: our export, A2Billing's or ASTPP's columns, `,` or `;`.
    pub csv: String,
    /// Remove the prefixes the file does not name (the file is the whole
    /// price list). Off unless asked for.
    #[graphql(default = false)]
    pub replace: bool,
    /// When the new prices take effect; now if not given, never in the past.
    pub effective_at: Option<DateTime<Utc>>,
}

/// Calling plans' reads.
#[derive(Default)]
pub struct RatesQuery;

#[Object]
impl RatesQuery {
    /// Every calling plan, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn calling_plans(&self, ctx: &Context<'_>) -> Result<Vec<CallingPlan>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(calling_plans::list(&mut conn)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One calling plan, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn calling_plan(&self, ctx: &Context<'_>, id: ID) -> Result<CallingPlan> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        calling_plans::get(&mut conn, parse_id(&id)?)
            .await
            .map_err(internal)?
            .map(Into::into)
            .ok_or_else(|| "No such calling plan.".into())
    }

    /// What importing a rate file would do; changes nothing.
    #[graphql(
        guard = "Allow(ADMIN)",
        complexity = "crate::limits::cost::RATE_TABLE + child_complexity"
    )]
    async fn preview_rate_import(
        &self,
        ctx: &Context<'_>,
        input: RateImportInput,
    ) -> Result<RateImportPreview> {
        let plan_id = parse_id(&input.calling_plan_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let plan = calling_plans::get(&mut conn, plan_id)
            .await
            .map_err(internal)?
            .ok_or("No such calling plan.")?;
        let parsed =
            rate_csv::parse(&input.csv).map_err(|e| format!("The file cannot be read: {e}."))?;
        let table = calling_plans::rate_table(&mut conn, plan_id)
            .await
            .map_err(internal)?;
        let at = input.effective_at.unwrap_or_else(Utc::now);
        let diff = rate_csv::diff(&table.current(at), &parsed.rows, input.replace);
        let currency = plan.currency.as_str();
        Ok(RateImportPreview {
            summary: CoreSummary::from(&diff).into(),
            format: match parsed.dialect {
                rate_csv::Dialect::Ours => "ours",
                rate_csv::Dialect::A2Billing => "a2billing",
                rate_csv::Dialect::Astpp => "astpp",
            }
            .into(),
            columns: parsed
                .columns
                .iter()
                .map(|(header, meaning)| ColumnRead {
                    header: header.clone(),
                    meaning: (*meaning).into(),
                })
                .collect(),
            not_in_file: parsed.missing.iter().map(|m| (*m).into()).collect(),
            unknown_columns: parsed.unknown.clone(),
            added: diff
                .added
                .iter()
                .take(50)
                .map(|(line, terms)| RateLine::new(*line, terms, currency))
                .collect(),
            changed: diff
                .changed
                .iter()
                .take(50)
                .map(|(old, terms, line)| RateChange {
                    line: *line as i32,
                    prefix: terms.prefix.clone(),
                    changes: rate_csv::changes(&Terms::of(old), terms, currency)
                        .into_iter()
                        .map(|c| FieldChange {
                            field: c.field.into(),
                            from: c.from,
                            to: c.to,
                        })
                        .collect(),
                    becomes: RateLine::new(*line, terms, currency),
                })
                .collect(),
            removed: diff
                .removed
                .iter()
                .take(50)
                .map(|r| rate(r, &plan.currency))
                .collect(),
            error_count: parsed.errors.len() as i32,
            errors: parsed
                .errors
                .iter()
                .take(500)
                .map(|e| RateRowError {
                    line: e.line as i32,
                    column: e.column.clone(),
                    reason: e.reason.clone(),
                })
                .collect(),
        })
    }
}

/// Calling plans' changes.
#[derive(Default)]
pub struct RatesMutation;

#[Object]
impl RatesMutation {
    /// Adds a calling plan.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn create_calling_plan(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default_with = "\"USD\".to_string()")] currency: String,
        #[graphql(desc = "Decimal, per minute.")] inbound_per_minute: Option<String>,
    ) -> Result<CallingPlan> {
        let inbound = match inbound_per_minute.filter(|s| !s.trim().is_empty()) {
            Some(text) => Some(
                PerMinute::parse_decimal(&text).map_err(|e| format!("The inbound price {e}."))?,
            ),
            None => None,
        };
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let plan = conn
            .transaction(async |conn| {
                let id = calling_plans::create(conn, &name, &currency, inbound).await?;
                let plan = calling_plans::get(conn, id)
                    .await?
                    .ok_or(CallingPlanError::NotFound)?;
                let change = audit::Change::created(serde_json::json!({
                    "name": plan.name,
                    "currency": plan.currency,
                    "inbound_per_minute": plan.inbound_per_minute_nanos.map(|n| PerMinute(n).decimal()),
                }));
                audit::record_change(
                    conn,
                    &actor,
                    "calling_plan.create",
                    &format!("calling_plan:{id}"),
                    "",
                    &change,
                )
                .await?;
                Ok::<_, CallingPlanError>(plan)
            })
            .await
            .map_err(refusal)?;
        Ok(plan.into())
    }

    /// Sets one rate: a new version of its prefix, taking effect now or
    /// later; calls already rated keep their price. Audited with the terms
    /// before and after.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn set_rate(&self, ctx: &Context<'_>, input: RateInput) -> Result<Rate> {
        let plan_id = parse_id(&input.calling_plan_id)?;
        let row = rate_csv::RateRow::from_form(
            &input.prefix,
            input.description.as_deref(),
            &input.per_minute,
            input.connection_fee.as_deref(),
            input.initial_increment,
            input.subsequent_increment,
            input.minimum_duration,
        )
        .map_err(async_graphql::Error::new)?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let plan = calling_plans::get(&mut conn, plan_id)
            .await
            .map_err(internal)?
            .ok_or("No such calling plan.")?;
        let effective_at = input.effective_at.unwrap_or_else(Utc::now);
        calling_plans::set_rate(&mut conn, plan_id, &row, effective_at, &actor)
            .await
            .map_err(refusal)?;
        let versions = calling_plans::history(&mut conn, plan_id, &row.prefix)
            .await
            .map_err(internal)?;
        let newest = versions
            .iter()
            .rfind(|r| r.effective_from == effective_at)
            .or(versions.last())
            .ok_or("The rate vanished.")?;
        Ok(rate(newest, &plan.currency))
    }

    /// Imports a rate file, all or nothing: a file with any bad row changes
    /// nothing. New prices take effect at `effectiveAt` and never re-price
    /// calls already rated.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn import_rates(
        &self,
        ctx: &Context<'_>,
        input: RateImportInput,
    ) -> Result<ImportSummary> {
        let plan_id = parse_id(&input.calling_plan_id)?;
        let parsed =
            rate_csv::parse(&input.csv).map_err(|e| format!("The file cannot be read: {e}."))?;
        if let Some(first) = parsed.errors.first() {
            return Err(format!(
                "The file has {} bad rows (the first: line {}, {} {}); nothing was imported.",
                parsed.errors.len(),
                first.line,
                first.column,
                first.reason
            )
            .into());
        }
        let user = guards::user(ctx)?;
        let actor = Actor {
            user_id: Some(user.user_id),
            label: user.username.clone(),
            ip: ctx
                .data_opt::<Viewer>()
                .map(|v| v.ip.clone())
                .unwrap_or_default(),
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let summary = calling_plans::apply_import(
            &mut conn,
            plan_id,
            &parsed.rows,
            input.replace,
            input.effective_at.unwrap_or_else(Utc::now),
            &actor,
        )
        .await
        .map_err(refusal)?;
        Ok(summary.into())
    }
}

/// One rate as an admin sets it by hand.
#[derive(InputObject)]
pub struct RateInput {
    pub calling_plan_id: ID,
    pub prefix: String,
    /// The destination's name; left out, the current one stays.
    pub description: Option<String>,
    /// Decimal, per minute, to nine places.
    pub per_minute: String,
    /// Decimal; left out, the current one stays (none for a new prefix).
    pub connection_fee: Option<String>,
    pub initial_increment: Option<i32>,
    pub subsequent_increment: Option<i32>,
    pub minimum_duration: Option<i32>,
    /// When it takes effect; now if not given, never in the past.
    pub effective_at: Option<DateTime<Utc>>,
}

fn refusal(error: CallingPlanError) -> async_graphql::Error {
    match error {
        CallingPlanError::Invalid(why) => why.into(),
        CallingPlanError::NotFound => "No such calling plan.".into(),
        other => internal(other),
    }
}

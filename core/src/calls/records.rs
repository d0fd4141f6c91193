//! Storing CDRs: derived, rated and billed as they arrive. Ingestion is
//! idempotent per record, and usage reaches the ledger in one transaction per
//! batch whose amount is exactly the sum of its calls' costs.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sha2::Digest;

use crate::db::KeepPrepared;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::calls::calling_plans::RateTables;
use crate::calls::cdr::{self, Direction, RawCdr, Status};
use crate::calls::dialling::{Dialled, DiallingRules};
use crate::calls::months;
use crate::calls::rating::{self, NotPriced, Rate, RateTable};
use crate::domain::AccountId;
use crate::money::ledger::{self, Book, LedgerError, NewTransaction};
use crate::money::{self, Money, PerMinute};
use crate::schema::{accounts, calling_plans, calls, cdr_rejects, cdrs, pbxes, plans};

/// What one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Calls that should cost money and matched no rate: flagged for staff.
    pub unrated: usize,
    /// What this batch's usage took from the balance.
    pub billed: Money,
}

/// How a record is priced.
struct Derived {
    direction: Direction,
    extension: Option<String>,
    status: Status,
    helper: bool,
    rating: &'static str,
    billed_seconds: i32,
    rate_id: Option<i64>,
    cost: Money,
    /// The account's phone number the call reached.
    number_id: Option<i64>,
}

/// What a PBX's calls are priced by.
struct Terms {
    account_id: i64,
    currency: String,
    rules: DiallingRules,
    table: Option<Arc<RateTable>>,
    inbound: Option<PerMinute>,
    /// The account's phone numbers: a call to one of them is inbound.
    numbers: Vec<(i64, crate::numbers::E164)>,
}

/// Derives a record's direction, extension and price under the PBX's
/// terms; `Err` names why the record cannot be stored.
///
/// Only answered legs with seconds cost money: outbound ones by the rate of
/// the number dialled (normalized by the PBX's dialling rules; emergency and
/// service numbers are free, a number the rules cannot place is unrated),
/// inbound ones by the calling plan's inbound price when it has one, by the
/// second. `Local/` plumbing and internal calls are free.
fn derive(record: &RawCdr, terms: &Terms) -> Result<Derived, String> {
    let number_id =
        crate::numbers::ordering::reached(&terms.numbers, record.did.as_deref(), &record.dst);
    let direction = match number_id {
        Some(_) => Direction::Inbound,
        None => cdr::direction(record, &terms.rules),
    };
    let status = cdr::status(&record.disposition);
    let helper = cdr::is_helper_leg(record, &terms.rules);
    let mut derived = Derived {
        direction,
        extension: cdr::extension(record, direction),
        status,
        helper,
        rating: "free",
        billed_seconds: 0,
        rate_id: None,
        cost: Money::ZERO,
        number_id,
    };
    let billsec = u32::try_from(record.billsec).unwrap_or(0);
    if helper || status != Status::Answered || billsec == 0 {
        return Ok(derived);
    }
    let priced = match direction {
        Direction::Outbound => match terms.rules.normalize(&record.dst) {
            Dialled::Service(_) => return Ok(derived),
            Dialled::Unknown => Err(NotPriced::NoRate),
            Dialled::Number(number) => match &terms.table {
                Some(table) => table.price(&number, record.calldate, billsec),
                None => Err(NotPriced::NoRate),
            },
        },
        Direction::Inbound => match terms.inbound {
            Some(per_minute) => {
                // Inbound minutes are billed by the second.
                let rate = Rate {
                    id: 0,
                    prefix: String::new(),
                    description: String::new(),
                    per_minute,
                    connection_fee: Money::ZERO,
                    initial_increment: 1,
                    subsequent_increment: 1,
                    minimum_duration: 0,
                    effective_from: DateTime::<Utc>::MIN_UTC,
                    removed: false,
                };
                let billed = rating::billed_seconds(billsec, &rate);
                rating::cost(billed, &rate)
                    .map(|cost| rating::Priced {
                        rate_id: 0,
                        prefix: String::new(),
                        billed_seconds: billed,
                        cost,
                    })
                    .ok_or(NotPriced::TooLarge)
            }
            None => return Ok(derived),
        },
        Direction::Internal => return Ok(derived),
    };
    match priced {
        Ok(priced) => {
            derived.rating = "rated";
            derived.billed_seconds = i32::try_from(priced.billed_seconds)
                .map_err(|_| "its billed seconds do not fit".to_owned())?;
            derived.rate_id = (priced.rate_id != 0).then_some(priced.rate_id);
            derived.cost = priced.cost;
        }
        Err(NotPriced::NoRate) => derived.rating = "unrated",
        Err(NotPriced::TooLarge) => return Err("its cost is larger than any amount".into()),
    }
    Ok(derived)
}

/// Why a batch could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no PBX {0}")]
    UnknownPbx(i64),
    #[error("the ledger refused the usage: {0}")]
    Ledger(String),
    #[error("the batch's usage is larger than any amount")]
    Overflow,
    #[error("PBX {pbx} belongs to an account in {account} but bills calls in {plan}")]
    CurrencyMismatch {
        pbx: i64,
        account: String,
        plan: String,
    },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// A record ready to store: its keys and what was derived from it.
struct Leg<'a> {
    record: &'a RawCdr,
    record_key: String,
    call_key: String,
    derived: Derived,
}

/// One call as the `calls` table keeps it, folded from any number of its
/// legs. Folding is associative, so legs may arrive in any batches and any
/// order: [`CallRollup::merge`] and the upsert in [`ingest`] apply the same
/// rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRollup {
    pub call_key: String,
    /// The earliest leg's start.
    pub start: DateTime<Utc>,
    /// The lead leg (the first answered leg, else the first leg; between
    /// legs that started in the same second, the smaller record key) speaks
    /// for the call: these fields are its.
    pub lead_answered: bool,
    pub lead_calldate: DateTime<Utc>,
    pub lead_key: String,
    pub src: String,
    pub dst: String,
    pub direction: String,
    pub extension: Option<String>,
    pub status: String,
    pub duration: i32,
    /// The answered legs' seconds, added up.
    pub billsec: i32,
    /// The seconds the legs were billed for, added up.
    pub billed_seconds: i32,
    /// The sum of the legs' costs.
    pub cost: i64,
    pub legs: i32,
    pub rated: bool,
    pub unrated: bool,
}

impl CallRollup {
    fn of_leg(leg: &Leg<'_>) -> CallRollup {
        let answered = leg.derived.status == Status::Answered;
        CallRollup {
            call_key: leg.call_key.clone(),
            start: leg.record.calldate,
            lead_answered: answered,
            lead_calldate: leg.record.calldate,
            lead_key: leg.record_key.clone(),
            src: leg.record.src.clone(),
            dst: leg.record.dst.clone(),
            direction: leg.derived.direction.as_str().into(),
            extension: leg.derived.extension.clone(),
            status: leg.derived.status.as_str().into(),
            duration: leg.record.duration,
            billsec: if answered { leg.record.billsec } else { 0 },
            billed_seconds: leg.derived.billed_seconds,
            cost: leg.derived.cost.micros(),
            legs: 1,
            rated: leg.derived.rating == "rated",
            unrated: leg.derived.rating == "unrated",
        }
    }

    /// Takes in another part of the same call. The other part's lead wins
    /// when it was answered and this one's was not, or when both were (or
    /// neither was) and it started earlier, or in the same second with a
    /// smaller record key (compared bytewise, as `COLLATE "C"` does).
    pub fn merge(&mut self, other: CallRollup) {
        self.start = self.start.min(other.start);
        self.billsec = self.billsec.saturating_add(other.billsec);
        self.billed_seconds = self.billed_seconds.saturating_add(other.billed_seconds);
        self.cost = self.cost.saturating_add(other.cost);
        self.legs += other.legs;
        self.rated |= other.rated;
        self.unrated |= other.unrated;
        if (other.lead_answered, self.lead_calldate, &self.lead_key)
            > (self.lead_answered, other.lead_calldate, &other.lead_key)
        {
            self.lead_answered = other.lead_answered;
            self.lead_calldate = other.lead_calldate;
            self.lead_key = other.lead_key;
            self.src = other.src;
            self.dst = other.dst;
            self.direction = other.direction;
            self.extension = other.extension;
            self.status = other.status;
            self.duration = other.duration;
        }
    }
}

/// Folds legs into calls by call key, in first-seen order; helper legs are
/// not calls.
fn fold_calls(legs: &[Leg<'_>]) -> Vec<CallRollup> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut calls: Vec<CallRollup> = Vec::new();
    for leg in legs.iter().filter(|l| !l.derived.helper) {
        match index.get(leg.call_key.as_str()) {
            Some(&at) => calls[at].merge(CallRollup::of_leg(leg)),
            None => {
                index.insert(&leg.call_key, calls.len());
                calls.push(CallRollup::of_leg(leg));
            }
        }
    }
    calls
}

/// The columns a call's lead leg sets, replaced together when a better lead
/// arrives.
const LEAD_COLUMNS: [&str; 9] = [
    "lead_answered",
    "lead_calldate",
    "lead_key",
    "src",
    "dst",
    "direction",
    "extension",
    "status",
    "duration",
];

/// `INSERT INTO table (fixed…, columns…) SELECT $1, …, unnest($n::type[]), …`:
/// one array parameter per column after the fixed ones. Set-returning
/// functions in the select list step through their arrays together without
/// first copying each into a temporary store, as `FROM unnest(…)` would.
fn insert_arrays(table: &str, fixed: &[&str], columns: &[(&str, &str)]) -> String {
    let names: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(columns.iter().map(|(name, _)| *name))
        .collect();
    let values: Vec<String> = (1..=fixed.len())
        .map(|n| format!("${n}"))
        .chain(
            columns
                .iter()
                .enumerate()
                .map(|(n, (_, ty))| format!("unnest(${}::{ty}[])", fixed.len() + 1 + n)),
        )
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT {}",
        names.join(", "),
        values.join(", ")
    )
}

/// The call columns sent as arrays, with their types, in the order
/// `write_calls` binds them (after `pbx_id` and the account or the starts
/// the calls are held under).
const CALL_ARRAYS: [(&str, &str); 17] = [
    ("call_key", "text"),
    ("start", "timestamptz"),
    ("lead_answered", "bool"),
    ("lead_calldate", "timestamptz"),
    ("lead_key", "text"),
    ("src", "text"),
    ("dst", "text"),
    ("direction", "text"),
    ("extension", "text"),
    ("status", "text"),
    ("duration", "int"),
    ("billsec", "int"),
    ("billed_seconds", "int"),
    ("cost", "bigint"),
    ("legs", "int"),
    ("rated", "bool"),
    ("unrated", "bool"),
];

/// Folds calls into the rows held for them with the same rule as
/// [`CallRollup::merge`]. Each row is found by its key and the start it is
/// held under (`$2`, one per call); a call that gains an earlier leg starts
/// earlier, which may move its row into an earlier month's table.
fn merge_calls_sql() -> String {
    let arrays: Vec<String> = CALL_ARRAYS
        .iter()
        .enumerate()
        .map(|(n, (name, ty))| format!("unnest(${}::{ty}[]) AS {name}", n + 3))
        .collect();
    let lead: Vec<String> = LEAD_COLUMNS
        .iter()
        .map(|column| {
            format!(
                "{column} = CASE WHEN (u.lead_answered, calls.lead_calldate, calls.lead_key COLLATE \"C\") \
                 > (calls.lead_answered, u.lead_calldate, u.lead_key COLLATE \"C\") \
                 THEN u.{column} ELSE calls.{column} END"
            )
        })
        .collect();
    format!(
        "UPDATE calls SET start = least(calls.start, u.start), {}, \
            billsec = calls.billsec + u.billsec, \
            billed_seconds = calls.billed_seconds + u.billed_seconds, cost = calls.cost + u.cost, \
            legs = calls.legs + u.legs, rated = calls.rated OR u.rated, \
            unrated = calls.unrated OR u.unrated \
         FROM (SELECT unnest($2::timestamptz[]) AS held_start, {}) u \
         WHERE calls.pbx_id = $1 AND calls.call_key = u.call_key AND calls.start = u.held_start",
        lead.join(", "),
        arrays.join(", ")
    )
}

/// The CDR columns sent as arrays, with their types, in the order
/// `insert_legs` binds them (after `pbx_id` and `source`).
const CDR_ARRAYS: [(&str, &str); 38] = [
    ("ledger_transaction_id", "bigint"),
    ("record_key", "text"),
    ("calldate", "timestamptz"),
    ("clid", "text"),
    ("src", "text"),
    ("dst", "text"),
    ("dcontext", "text"),
    ("channel", "text"),
    ("dstchannel", "text"),
    ("lastapp", "text"),
    ("lastdata", "text"),
    ("duration", "int"),
    ("billsec", "int"),
    ("disposition", "text"),
    ("amaflags", "int"),
    ("accountcode", "text"),
    ("uniqueid", "text"),
    ("userfield", "text"),
    ("linkedid", "text"),
    ("sequence", "int"),
    ("did", "text"),
    ("recordingfile", "text"),
    ("cnum", "text"),
    ("cnam", "text"),
    ("outbound_cnum", "text"),
    ("outbound_cnam", "text"),
    ("dst_cnam", "text"),
    ("peeraccount", "text"),
    ("direction", "text"),
    ("extension", "text"),
    ("status", "text"),
    ("call_key", "text"),
    ("helper_leg", "bool"),
    ("rating", "text"),
    ("billed_seconds", "int"),
    ("rate_id", "bigint"),
    ("cost", "bigint"),
    ("number_id", "bigint"),
];

diesel::define_sql_function!(
    /// The first of two ids that is not null.
    fn coalesce(x: diesel::sql_types::Nullable<BigInt>, y: diesel::sql_types::Nullable<BigInt>) -> diesel::sql_types::Nullable<BigInt>
);

/// Takes the PBX's turn (batches and pricing of one PBX never overlap) and
/// loads its account and the calling plan it bills with (the account's own,
/// or its plan's). The lock and the lookup
/// are pipelined: their order does not matter (the lock guards the PBX's
/// records, not its terms), and both are done before anything else is read.
async fn lock_and_load_terms(
    conn: &mut AsyncPgConnection,
    rates: &RateTables,
    pbx_id: i64,
) -> Result<Terms, IngestError> {
    type Found = (
        i64,
        String,
        Option<serde_json::Value>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let found = {
        let (mut a, mut b) = (&*conn, &*conn);
        futures::try_join!(
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('cdrs:' || $1))")
                .bind::<BigInt, _>(pbx_id)
                .execute(&mut a),
            pbxes::table
                .inner_join(accounts::table)
                .inner_join(plans::table)
                // The account's own calling plan, where it has one, over the plan's.
                .left_join(
                    calling_plans::table.on(calling_plans::id
                        .nullable()
                        .eq(coalesce(accounts::calling_plan_id, plans::calling_plan_id))),
                )
                .filter(pbxes::id.eq(pbx_id))
                .select((
                    pbxes::account_id,
                    accounts::currency,
                    pbxes::dialling_rules,
                    calling_plans::id.nullable(),
                    calling_plans::currency.nullable(),
                    calling_plans::inbound_per_minute_nanos.nullable(),
                    calling_plans::rates_version.nullable(),
                ))
                .first::<Found>(&mut b),
        )
    };
    let (account_id, currency, rules, calling_plan, plan_currency, inbound, version) = found
        .map(|(_, terms)| terms)
        .optional()?
        .ok_or(IngestError::UnknownPbx(pbx_id))?;
    if let Some(plan_currency) = plan_currency.filter(|c| *c != currency) {
        // The database refuses this; should it ever be, nothing is priced
        // in one currency and charged in another.
        return Err(IngestError::CurrencyMismatch {
            pbx: pbx_id,
            account: currency,
            plan: plan_currency,
        });
    }
    let table = match (calling_plan, version) {
        (Some(plan), Some(version)) => Some(rates.get(conn, plan, version).await?),
        _ => None,
    };
    let numbers = crate::numbers::ordering::held_by(conn, account_id).await?;
    Ok(Terms {
        account_id,
        currency,
        rules: rules_of(rules),
        table,
        inbound: inbound.map(PerMinute),
        numbers,
    })
}

/// A PBX's dialling rules as stored: North America's when none are set.
pub fn rules_of(stored: Option<serde_json::Value>) -> DiallingRules {
    stored
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default()
}

/// What pricing a PBX's unrated calls did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repriced {
    /// Legs that found a rate and were billed.
    pub priced: usize,
    /// Legs that still match no rate.
    pub still_unrated: usize,
    pub billed: Money,
}

/// A leg priced anew: its id and start (which name its row; the start, its
/// month's table), its price, and its call's key.
type PricedLeg<'a> = ((i64, DateTime<Utc>), rating::Priced, &'a str);

/// Prices a PBX's unrated call legs with the rates in force at `at` (a
/// staff decision: the rates in force when the calls started had none for
/// them), bills them as one usage posting, updates their calls and records
/// who did it, in one transaction.
pub async fn price_unrated(
    conn: &mut AsyncPgConnection,
    pbx_id: i64,
    at: DateTime<Utc>,
    actor: &crate::audit::Actor,
) -> Result<Repriced, IngestError> {
    conn.transaction(async |conn| {
        // A staff action, seldom taken: the rate table is loaded afresh.
        let terms = lock_and_load_terms(conn, &RateTables::default(), pbx_id).await?;
        let unrated: Vec<(i64, DateTime<Utc>, String, i32, String)> = cdrs::table
            .filter(cdrs::pbx_id.eq(pbx_id))
            .filter(unrated_predicate())
            .order(cdrs::id)
            .select((
                cdrs::id,
                cdrs::calldate,
                cdrs::dst,
                cdrs::billsec,
                cdrs::call_key,
            ))
            .load(conn)
            .await?;
        let priced: Vec<PricedLeg<'_>> = unrated
            .iter()
            .filter_map(|(id, calldate, dst, billsec, call_key)| {
                let billsec = u32::try_from(*billsec).unwrap_or(0);
                let Dialled::Number(number) = terms.rules.normalize(dst) else {
                    return None;
                };
                let priced = terms.table.as_ref()?.price(&number, at, billsec).ok()?;
                Some(((*id, *calldate), priced, call_key.as_str()))
            })
            .collect();
        let mut result = Repriced {
            priced: priced.len(),
            still_unrated: unrated.len() - priced.len(),
            billed: Money::ZERO,
        };
        let Some(((first, _), _, _)) = <[_]>::first(&priced) else {
            return Ok(result);
        };
        let total = money::checked_sum(priced.iter().map(|(_, p, _)| p.cost))
            .ok_or(IngestError::Overflow)?;
        let usage = if total > Money::ZERO {
            let key = format!("usage-priced:pbx:{pbx_id}:cdr:{first}");
            let calls = priced.iter().filter(|(_, p, _)| p.cost > Money::ZERO).count();
            Some(
                post_usage(
                    conn,
                    pbx_id,
                    AccountId(terms.account_id),
                    &terms.currency,
                    total,
                    key,
                    calls,
                )
                .await?,
            )
        } else {
            None
        };
        diesel::sql_query(
            "UPDATE cdrs SET rating = 'rated', billed_seconds = u.billed_seconds, rate_id = u.rate_id, \
                    cost = u.cost, ledger_transaction_id = CASE WHEN u.cost > 0 THEN $1 END \
             FROM (SELECT unnest($2::bigint[]) AS id, unnest($3::int[]) AS billed_seconds, \
                          unnest($4::bigint[]) AS rate_id, unnest($5::bigint[]) AS cost, \
                          unnest($6::timestamptz[]) AS calldate) u \
             WHERE cdrs.id = u.id AND cdrs.calldate = u.calldate",
        )
        .bind::<Nullable<BigInt>, _>(usage)
        .bind::<Array<BigInt>, _>(
            priced
                .iter()
                .map(|((id, _), _, _)| *id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(
            priced
                .iter()
                .map(|(_, p, _)| i32::try_from(p.billed_seconds).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(priced.iter().map(|(_, p, _)| p.rate_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            priced
                .iter()
                .map(|(_, p, _)| p.cost.micros())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(
            priced
                .iter()
                .map(|((_, calldate), _, _)| *calldate)
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await?;
        // Their calls: the new costs added, still unrated only if another
        // leg is. A call started at most the longest call before its legs,
        // and none after its first: only those months are read.
        let longest = chrono::Duration::seconds(i64::from(cdr::LONGEST_CALL_SECONDS));
        let starts = priced.iter().map(|((_, calldate), _, _)| *calldate);
        let (earliest, latest) = (
            starts.clone().min().unwrap_or(at) - longest,
            starts.max().unwrap_or(at),
        );
        diesel::sql_query(
            "UPDATE calls SET cost = calls.cost + u.cost, billed_seconds = calls.billed_seconds + u.billed, \
                    rated = true, \
                    unrated = EXISTS (SELECT 1 FROM cdrs WHERE cdrs.pbx_id = $1 AND cdrs.call_key = calls.call_key \
                                      AND cdrs.rating = 'unrated' AND cdrs.calldate >= calls.start) \
             FROM (SELECT call_key, sum(cost)::bigint AS cost, sum(billed)::int AS billed \
                   FROM unnest($2::text[], $3::bigint[], $4::int[]) AS x(call_key, cost, billed) \
                   GROUP BY call_key) u \
             WHERE calls.pbx_id = $1 AND calls.call_key = u.call_key \
               AND calls.start BETWEEN $5 AND $6",
        )
        .bind::<BigInt, _>(pbx_id)
        .bind::<Array<Text>, _>(priced.iter().map(|(_, _, key)| *key).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            priced
                .iter()
                .map(|(_, p, _)| p.cost.micros())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(
            priced
                .iter()
                .map(|(_, p, _)| i32::try_from(p.billed_seconds).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind::<Timestamptz, _>(earliest)
        .bind::<Timestamptz, _>(latest)
        .execute(conn)
        .await?;
        result.billed = total;
        crate::audit::record(
            conn,
            actor,
            "pbx.price_unrated_calls",
            &format!("pbx:{pbx_id}"),
            &format!(
                "{} calls priced at the rates of {}, {} micros billed",
                result.priced,
                at.to_rfc3339(),
                total.micros()
            ),
        )
        .await?;
        Ok(result)
    })
    .await
}

/// A record with its start to the second; borrowed when it has no fraction.
fn to_the_second(record: &RawCdr) -> Cow<'_, RawCdr> {
    use chrono::Timelike;
    if record.calldate.nanosecond() == 0 {
        return Cow::Borrowed(record);
    }
    let mut whole = record.clone();
    whole.calldate = record
        .calldate
        .with_nanosecond(0)
        .unwrap_or(record.calldate);
    Cow::Owned(whole)
}

/// Stores a batch of a PBX's CDRs (and the lines that could not be read),
/// rates them with the PBX's plan's calling plan, folds them into calls, and
/// posts their usage to the ledger, all in one database transaction.
///
/// Batches of one PBX take turns (an advisory lock), so which records are new
/// is settled before anything is written: the usage posting covers exactly
/// the new records, and each is stored already billed by it. Rows travel as
/// one array per column (`unnest`), a handful of parameters per batch instead
/// of one per field. The calling plan's rate table comes from `rates` while
/// the plan's rates are unchanged.
pub async fn ingest(
    conn: &mut AsyncPgConnection,
    rates: &RateTables,
    pbx_id: i64,
    source: &str,
    records: &[RawCdr],
    rejects: &[(String, String)],
) -> Result<Ingested, IngestError> {
    let now = Utc::now();
    // Stored to the second, as a record's key has it: the same record from
    // any source lands on the same row (only a push can carry a fraction).
    let records: Vec<Cow<'_, RawCdr>> = records.iter().map(to_the_second).collect();
    // The months the batch reaches are made first, in a short transaction
    // of their own when the caller has none open (see `months::make_ready`).
    let reached = months::months_of(
        records
            .iter()
            .filter(|r| cdr::problem(r, now).is_none())
            .map(|r| r.calldate),
    );
    months::make_ready(conn, &reached).await?;
    conn.transaction(async |conn| {
        let terms = lock_and_load_terms(conn, rates, pbx_id).await?;

        let mut result = Ingested::default();
        let mut rejects = rejects.to_vec();
        let mut seen = HashSet::new();
        let mut legs: Vec<Leg<'_>> = Vec::with_capacity(records.len());
        for record in &records {
            let record = record.as_ref();
            // The same checks whichever way a record arrived.
            let derived =
                match cdr::problem(record, now).map_or_else(|| derive(record, &terms), Err) {
                    Ok(derived) => derived,
                    Err(why) => {
                        rejects.push((serde_json::to_string(record).unwrap_or_default(), why));
                        continue;
                    }
                };
            let record_key = cdr::record_key(record);
            if !seen.insert(record_key.clone()) {
                result.duplicates += 1;
                continue;
            }
            legs.push(Leg {
                record,
                call_key: cdr::call_key(record),
                derived,
                record_key,
            });
        }
        // Which records and calls are held already: asked together, after
        // the lock, so nothing can slip in between. A record's key names its
        // start, so it is looked for in the batch's months only; a call
        // among those that started within the longest call of its legs (all
        // of a call's legs start while it lasts, and no call lasts longer
        // than `LONGEST_CALL_SECONDS`).
        let keys: Vec<&str> = legs.iter().map(|l| l.record_key.as_str()).collect();
        let call_keys: Vec<&str> = legs
            .iter()
            .filter(|l| !l.derived.helper)
            .map(|l| l.call_key.as_str())
            .collect();
        let starts = legs.iter().map(|l| l.record.calldate);
        let (first, last) = (
            starts.clone().min().unwrap_or(now),
            starts.max().unwrap_or(now),
        );
        let longest = chrono::Duration::seconds(i64::from(cdr::LONGEST_CALL_SECONDS));
        let (held, held_calls) = {
            let (mut a, mut b) = (&*conn, &*conn);
            futures::try_join!(
                cdrs::table
                    .filter(cdrs::pbx_id.eq(pbx_id))
                    .filter(cdrs::record_key.eq_any(&keys))
                    .filter(cdrs::calldate.between(first, last))
                    .select(cdrs::record_key)
                    .load::<String>(&mut a),
                calls::table
                    .filter(calls::pbx_id.eq(pbx_id))
                    .filter(calls::call_key.eq_any(&call_keys))
                    .filter(calls::start.between(first - longest, last + longest))
                    .select((calls::call_key, calls::start))
                    .load::<(String, DateTime<Utc>)>(&mut b),
            )?
        };
        let held: HashSet<String> = held.into_iter().collect();
        let held_calls: HashMap<String, DateTime<Utc>> = held_calls.into_iter().collect();
        legs.retain(|l| !held.contains(&l.record_key));
        result.duplicates += held.len();

        let total = money::checked_sum(
            legs.iter()
                .filter(|l| l.derived.rating == "rated")
                .map(|l| l.derived.cost),
        )
        .ok_or(IngestError::Overflow)?;
        let usage = match <[_]>::first(&legs) {
            Some(first) if total > Money::ZERO => Some(
                post_usage(
                    conn,
                    pbx_id,
                    AccountId(terms.account_id),
                    &terms.currency,
                    total,
                    format!("usage:pbx:{pbx_id}:{}", first.record_key),
                    legs.iter().filter(|l| l.derived.cost > Money::ZERO).count(),
                )
                .await?,
            ),
            _ => None,
        };
        result.billed = usage.map(|_| total).unwrap_or(Money::ZERO);
        result.unrated = legs
            .iter()
            .filter(|l| l.derived.rating == "unrated")
            .count();
        // The writes are pipelined on the one connection (the server runs
        // them in order), which saves the waits between them; if any fails,
        // the transaction rolls back and nothing is stored or billed.
        let (merged, new): (Vec<CallRollup>, Vec<CallRollup>) = fold_calls(&legs)
            .into_iter()
            .partition(|c| held_calls.contains_key(&c.call_key));
        let (inserted, _, folded, _) = futures::try_join!(
            insert_legs(conn, pbx_id, source, usage, &legs),
            write_calls(
                conn,
                pbx_id,
                CallRows::New {
                    account_id: terms.account_id
                },
                &new
            ),
            write_calls(conn, pbx_id, CallRows::Held(&held_calls), &merged),
            insert_rejects(conn, pbx_id, source, &rejects),
        )?;
        if inserted != legs.len() || folded != merged.len() {
            // The lock makes this impossible; if it happens, store nothing
            // rather than bill a call twice or not at all.
            return Err(IngestError::Database(
                diesel::result::Error::RollbackTransaction,
            ));
        }
        result.accepted = legs.len();
        result.rejected = rejects.len();
        Ok(result)
    })
    .await
    .inspect(|ingested: &Ingested| {
        crate::metrics::global().cdrs(
            source,
            ingested.accepted,
            ingested.duplicates,
            ingested.rejected,
        );
    })
}

/// Keeps the lines that could not be read, with why.
async fn insert_rejects(
    mut conn: &AsyncPgConnection,
    pbx_id: i64,
    source: &str,
    rejects: &[(String, String)],
) -> QueryResult<usize> {
    // A record sent again is kept once: rejects are known by their text.
    let mut digests = HashSet::new();
    let once: Vec<(&str, &str, String)> = rejects
        .iter()
        .filter_map(|(raw, why)| {
            let digest = hex::encode(sha2::Sha256::digest(raw.as_bytes()));
            digests
                .insert(digest.clone())
                .then_some((raw.as_str(), why.as_str(), digest))
        })
        .collect();
    if once.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "INSERT INTO cdr_rejects (pbx_id, source, raw, reason, raw_digest) \
         SELECT $1, $2, u.raw, u.reason, u.digest FROM unnest($3::text[], $4::text[], $5::text[]) AS u(raw, reason, digest) \
         ON CONFLICT (pbx_id, raw_digest) DO NOTHING",
    )
    .bind::<BigInt, _>(pbx_id)
    .bind::<Text, _>(source)
    .bind::<Array<Text>, _>(once.iter().map(|(raw, _, _)| *raw).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(once.iter().map(|(_, why, _)| *why).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        once.iter()
            .map(|(_, _, digest)| digest.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut conn)
    .await
}

/// Inserts new legs, one array per column; returns how many went in.
async fn insert_legs(
    mut conn: &AsyncPgConnection,
    pbx_id: i64,
    source: &str,
    usage: Option<i64>,
    legs: &[Leg<'_>],
) -> QueryResult<usize> {
    if legs.is_empty() {
        return Ok(0);
    }
    fn column<'a, T>(legs: &'a [Leg<'a>], f: impl Fn(&'a Leg<'a>) -> T) -> Vec<T> {
        legs.iter().map(f).collect()
    }
    diesel::sql_query(insert_arrays("cdrs", &["pbx_id", "source"], &CDR_ARRAYS))
        .into_boxed::<Pg>()
        .bind::<BigInt, _>(pbx_id)
        .bind::<Text, _>(source.to_owned())
        .bind::<Array<Nullable<BigInt>>, _>(column(legs, |l| {
            usage.filter(|_| l.derived.cost > Money::ZERO)
        }))
        .bind::<Array<Text>, _>(column(legs, |l| l.record_key.as_str()))
        .bind::<Array<Timestamptz>, _>(column(legs, |l| l.record.calldate))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.clid.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.src.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.dst.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.dcontext.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.channel.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.dstchannel.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.lastapp.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.lastdata.as_str()))
        .bind::<Array<Integer>, _>(column(legs, |l| l.record.duration))
        .bind::<Array<Integer>, _>(column(legs, |l| l.record.billsec))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.disposition.as_str()))
        .bind::<Array<Integer>, _>(column(legs, |l| l.record.amaflags))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.accountcode.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.uniqueid.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.record.userfield.as_str()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.linkedid.as_deref()))
        .bind::<Array<Nullable<Integer>>, _>(column(legs, |l| l.record.sequence))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.did.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.recordingfile.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.cnum.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.cnam.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.outbound_cnum.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.outbound_cnam.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.dst_cnam.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.record.peeraccount.as_deref()))
        .bind::<Array<Text>, _>(column(legs, |l| l.derived.direction.as_str()))
        .bind::<Array<Nullable<Text>>, _>(column(legs, |l| l.derived.extension.as_deref()))
        .bind::<Array<Text>, _>(column(legs, |l| l.derived.status.as_str()))
        .bind::<Array<Text>, _>(column(legs, |l| l.call_key.as_str()))
        .bind::<Array<Bool>, _>(column(legs, |l| l.derived.helper))
        .bind::<Array<Text>, _>(column(legs, |l| l.derived.rating))
        .bind::<Array<Integer>, _>(column(legs, |l| l.derived.billed_seconds))
        .bind::<Array<Nullable<BigInt>>, _>(column(legs, |l| l.derived.rate_id))
        .bind::<Array<BigInt>, _>(column(legs, |l| l.derived.cost.micros()))
        .bind::<Array<Nullable<BigInt>>, _>(column(legs, |l| l.derived.number_id))
        .execute(&mut conn)
        .await
}

/// Which rows calls go to.
enum CallRows<'a> {
    /// New rows, of this account.
    New { account_id: i64 },
    /// The rows held for them (legs of them came in an earlier batch), by
    /// the start each is held under.
    Held(&'a HashMap<String, DateTime<Utc>>),
}

/// Adds calls to the `calls` table: inserted when not held yet, or merged
/// into the rows held for them; returns how many rows were written.
async fn write_calls(
    mut conn: &AsyncPgConnection,
    pbx_id: i64,
    rows: CallRows<'_>,
    calls: &[CallRollup],
) -> QueryResult<usize> {
    if calls.is_empty() {
        return Ok(0);
    }
    fn column<'a, T>(calls: &'a [CallRollup], f: impl Fn(&'a CallRollup) -> T) -> Vec<T> {
        calls.iter().map(f).collect()
    }
    let query = match rows {
        CallRows::New { account_id } => diesel::sql_query(insert_arrays(
            "calls",
            &["pbx_id", "account_id"],
            &CALL_ARRAYS,
        ))
        .into_boxed::<Pg>()
        .bind::<BigInt, _>(pbx_id)
        .bind::<BigInt, _>(account_id),
        CallRows::Held(starts) => diesel::sql_query(merge_calls_sql())
            .into_boxed::<Pg>()
            .bind::<BigInt, _>(pbx_id)
            .bind::<Array<Timestamptz>, _>(column(calls, |c| {
                starts.get(&c.call_key).copied().unwrap_or(c.start)
            })),
    };
    query
        .bind::<Array<Text>, _>(column(calls, |c| c.call_key.as_str()))
        .bind::<Array<Timestamptz>, _>(column(calls, |c| c.start))
        .bind::<Array<Bool>, _>(column(calls, |c| c.lead_answered))
        .bind::<Array<Timestamptz>, _>(column(calls, |c| c.lead_calldate))
        .bind::<Array<Text>, _>(column(calls, |c| c.lead_key.as_str()))
        .bind::<Array<Text>, _>(column(calls, |c| c.src.as_str()))
        .bind::<Array<Text>, _>(column(calls, |c| c.dst.as_str()))
        .bind::<Array<Text>, _>(column(calls, |c| c.direction.as_str()))
        .bind::<Array<Nullable<Text>>, _>(column(calls, |c| c.extension.as_deref()))
        .bind::<Array<Text>, _>(column(calls, |c| c.status.as_str()))
        .bind::<Array<Integer>, _>(column(calls, |c| c.duration))
        .bind::<Array<Integer>, _>(column(calls, |c| c.billsec))
        .bind::<Array<Integer>, _>(column(calls, |c| c.billed_seconds))
        .bind::<Array<BigInt>, _>(column(calls, |c| c.cost))
        .bind::<Array<Integer>, _>(column(calls, |c| c.legs))
        .bind::<Array<Bool>, _>(column(calls, |c| c.rated))
        .bind::<Array<Bool>, _>(column(calls, |c| c.unrated))
        .execute(&mut conn)
        .await
}

/// Posts usage as one ledger transaction. Its key names the first record it
/// bills (each record is billed once, so no two postings share it).
async fn post_usage(
    conn: &mut AsyncPgConnection,
    pbx_id: i64,
    account: AccountId,
    currency: &str,
    total: Money,
    idempotency_key: String,
    calls: usize,
) -> Result<i64, IngestError> {
    let customer = ledger::customer_account(conn, account).await?;
    let revenue = ledger::book(conn, Book::Revenue, currency).await?;
    let posted = ledger::post(
        conn,
        &NewTransaction {
            idempotency_key,
            kind: "usage".into(),
            memo: format!("Calls: {calls} of PBX #{pbx_id}"),
            currency: currency.to_owned(),
            posted_by: None,
            entries: vec![(customer, -total), (revenue, total)],
        },
    )
    .await
    .map_err(|e| match e {
        LedgerError::Database(e) => IngestError::Database(e),
        other => IngestError::Ledger(other.to_string()),
    })?;
    Ok(posted.id().0)
}

/// An account's last `limit` calls, newest first, read a month at a time so
/// that each statement reads its month's table only: this month (to a day
/// ahead, as far as a PBX's clock may run), then, while fewer than `limit`
/// are found, last month, then every month before. An account that calls
/// is answered from this month's table alone.
pub async fn recent_calls(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    limit: usize,
) -> QueryResult<Vec<BilledCall>> {
    let now = Utc::now();
    let (from, to) = this_months_range(now);
    let found = calls_page(conn, account, Some(from), Some(to), None, limit as i64).await?;
    older_calls(conn, account, now, found, limit).await
}

/// Where [`recent_calls`] looks first: this month, up to a day past `now`
/// (a PBX's clock may run ahead).
pub fn this_months_range(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (months::month_of(now), now + chrono::Duration::days(1))
}

/// Goes on from this month's calls (`found`, newest first) to last month's
/// and then the rest, until `limit` calls are found: each range reads its
/// own partitions only, and the older ones only when the newer fall short.
pub async fn older_calls(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    now: DateTime<Utc>,
    mut found: Vec<BilledCall>,
    limit: usize,
) -> QueryResult<Vec<BilledCall>> {
    let this_month = months::month_of(now);
    let last_month = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(this_month);
    for (from, to) in [(Some(last_month), this_month), (None, last_month)] {
        let wanted = limit.saturating_sub(found.len());
        if wanted == 0 {
            break;
        }
        found.extend(calls_page(conn, account, from, Some(to), None, wanted as i64).await?);
    }
    found.truncate(limit);
    Ok(found)
}

/// An account's calls that started in `[from, to)`, oldest first.
pub async fn calls_between(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<BilledCall>> {
    calls::table
        .filter(calls::account_id.eq(account.0))
        .filter(calls::start.ge(from))
        .filter(calls::start.lt(to))
        .order((calls::start, calls::pbx_id, calls::call_key))
        .select(BILLED_CALL)
        .load(conn)
        .await
}

/// A call with everything billing knows of it, as the home, the reports'
/// CSV and the API list it.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, serde::Deserialize)]
pub struct BilledCall {
    pub pbx_id: i64,
    pub call_key: String,
    pub start: DateTime<Utc>,
    pub src: String,
    pub dst: String,
    pub direction: String,
    pub extension: Option<String>,
    pub status: String,
    pub duration: i32,
    pub billsec: i32,
    pub billed_seconds: i32,
    pub cost: i64,
    pub legs: i32,
    pub rated: bool,
    pub unrated: bool,
}

/// The columns of a [`BilledCall`], in its order.
type BilledCallColumns = (
    calls::pbx_id,
    calls::call_key,
    calls::start,
    calls::src,
    calls::dst,
    calls::direction,
    calls::extension,
    calls::status,
    calls::duration,
    calls::billsec,
    calls::billed_seconds,
    calls::cost,
    calls::legs,
    calls::rated,
    calls::unrated,
);

/// The columns of a [`BilledCall`], selected.
const BILLED_CALL: BilledCallColumns = (
    calls::pbx_id,
    calls::call_key,
    calls::start,
    calls::src,
    calls::dst,
    calls::direction,
    calls::extension,
    calls::status,
    calls::duration,
    calls::billsec,
    calls::billed_seconds,
    calls::cost,
    calls::legs,
    calls::rated,
    calls::unrated,
);

impl BilledCall {
    /// `unrated` when some leg matched no rate, `rated` when one was priced,
    /// `free` otherwise.
    pub fn rating(&self) -> &'static str {
        if self.unrated {
            "unrated"
        } else if self.rated {
            "rated"
        } else {
            "free"
        }
    }
}

/// Where a page of calls ends: the last call's start, PBX and key.
pub type CallCursor = (DateTime<Utc>, i64, String);

/// An account's calls that started in `[from, to)` (either end open when
/// not given), newest first, `limit` of them after `after`.
pub async fn calls_page(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    after: Option<&CallCursor>,
    limit: i64,
) -> QueryResult<Vec<BilledCall>> {
    let mut query = calls::table
        .filter(calls::account_id.eq(account.0))
        .order((
            calls::start.desc(),
            calls::pbx_id.desc(),
            calls::call_key.desc(),
        ))
        .limit(limit)
        .select(BILLED_CALL)
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(calls::start.ge(from));
    }
    if let Some(to) = to {
        query = query.filter(calls::start.lt(to));
    }
    if let Some((start, pbx, key)) = after {
        query = query.filter(
            calls::start.lt(*start).or(calls::start.eq(*start).and(
                calls::pbx_id
                    .lt(*pbx)
                    .or(calls::pbx_id.eq(*pbx).and(calls::call_key.lt(key.clone()))),
            )),
        );
    }
    query.load(conn).await
}

/// A leg that should cost money and matched no rate, as staff see it.
#[derive(Clone, Debug, Queryable)]
pub struct UnratedLeg {
    pub id: i64,
    pub pbx_id: i64,
    pub account_id: i64,
    pub calldate: DateTime<Utc>,
    pub src: String,
    pub dst: String,
    pub direction: String,
    pub billsec: i32,
    pub ingested_at: DateTime<Utc>,
}

/// `rating = 'unrated'` written into the statement, not bound: the partial
/// index of unrated legs is used only by a plan that knows the value, and
/// pooled connections plan every statement once, for any value
/// ([`crate::db::CONNECTION_SETTINGS`]).
fn unrated_predicate() -> diesel::expression::SqlLiteral<Bool> {
    diesel::dsl::sql::<Bool>("cdrs.rating = 'unrated'")
}

/// Unrated legs, newest first, `limit` of them with ids below `before`.
pub async fn unrated_legs(
    conn: &mut AsyncPgConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<UnratedLeg>> {
    let mut query = cdrs::table
        .inner_join(pbxes::table)
        .filter(unrated_predicate())
        .order(cdrs::id.desc())
        .limit(limit)
        .select((
            cdrs::id,
            cdrs::pbx_id,
            pbxes::account_id,
            cdrs::calldate,
            cdrs::src,
            cdrs::dst,
            cdrs::direction,
            cdrs::billsec,
            cdrs::ingested_at,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(cdrs::id.lt(before));
    }
    query.load(conn).await
}

/// A record that could not be read, kept with its reason.
#[derive(Clone, Debug, Queryable)]
pub struct Reject {
    pub id: i64,
    pub pbx_id: i64,
    pub account_id: i64,
    pub source: String,
    pub raw: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// Records set aside, newest first, `limit` of them with ids below `before`.
pub async fn rejects(
    conn: &mut AsyncPgConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Reject>> {
    let mut query = cdr_rejects::table
        .inner_join(pbxes::table)
        .order(cdr_rejects::id.desc())
        .limit(limit)
        .select((
            cdr_rejects::id,
            cdr_rejects::pbx_id,
            pbxes::account_id,
            cdr_rejects::source,
            cdr_rejects::raw,
            cdr_rejects::reason,
            cdr_rejects::received_at,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(cdr_rejects::id.lt(before));
    }
    query.load(conn).await
}

/// Totals for a group of calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: i64,
    pub answered: i64,
    pub seconds: i64,
    pub cost: Money,
}

/// A month of calls, summed every way the reports show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub all: Totals,
    pub by_status: Vec<(String, Totals)>,
    pub by_direction: Vec<(String, Totals)>,
    pub by_extension: Vec<(String, Totals)>,
    pub by_pbx: Vec<(i64, Totals)>,
    /// Per day in the account's time zone: `2026-11-05`.
    pub by_day: Vec<(String, Totals)>,
    pub unrated: i64,
}

#[derive(QueryableByName)]
struct GroupRow {
    /// Which grouping set the row sums: `grouping()` of the five keys.
    #[diesel(sql_type = Integer)]
    set: i32,
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    answered: i64,
    #[diesel(sql_type = BigInt)]
    seconds: i64,
    #[diesel(sql_type = BigInt)]
    cost: i64,
    #[diesel(sql_type = BigInt)]
    unrated: i64,
}

/// Sums an account's calls that started in `[from, to)` by status,
/// direction, extension (`—` for none), PBX and day in `zone`, in one pass of
/// the database over the account's index. A call's day is grouped as a date
/// and written out once per day: formatting it for every call was about a
/// fifth of the statement's time.
pub async fn report(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: chrono_tz::Tz,
) -> QueryResult<Report> {
    let rows: Vec<GroupRow> = diesel::sql_query(
        "SELECT grouping(status, direction, extension, pbx_id, day)::int AS set, \
                coalesce(status, direction, extension, pbx_id::text, to_char(day, 'YYYY-MM-DD')) AS key, \
                count(*) AS calls, count(*) FILTER (WHERE status = 'answered') AS answered, \
                coalesce(sum(billsec), 0)::bigint AS seconds, coalesce(sum(cost), 0)::bigint AS cost, \
                count(*) FILTER (WHERE unrated) AS unrated \
         FROM (SELECT status, direction, coalesce(extension, '—') AS extension, pbx_id, billsec, cost, unrated, \
                      (start AT TIME ZONE $4)::date AS day \
               FROM calls WHERE account_id = $1 AND start >= $2 AND start < $3) c \
         GROUP BY GROUPING SETS ((), (status), (direction), (extension), (pbx_id), (day))",
    )
    .bind::<BigInt, _>(account.0)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Text, _>(zone.name())
    .kept_prepared()
    .load(conn)
    .await?;
    let mut report = Report::default();
    for row in rows {
        let totals = Totals {
            calls: row.calls,
            answered: row.answered,
            seconds: row.seconds,
            cost: Money(row.cost),
        };
        let key = row.key.unwrap_or_default();
        match row.set {
            0b01111 => report.by_status.push((key, totals)),
            0b10111 => report.by_direction.push((key, totals)),
            0b11011 => report.by_extension.push((key, totals)),
            0b11101 => report.by_pbx.push((
                key.parse().map_err(|_| diesel::result::Error::NotFound)?,
                totals,
            )),
            0b11110 => report.by_day.push((key, totals)),
            _ => {
                report.unrated = row.unrated;
                report.all = totals;
            }
        }
    }
    report
        .by_status
        .sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    report.by_direction.sort_by(|a, b| a.0.cmp(&b.0));
    report.by_extension.sort_by(|a, b| a.0.cmp(&b.0));
    report.by_pbx.sort_by_key(|(id, _)| *id);
    report.by_day.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(report)
}

/// The first instant of the month `months_back` before the one holding
/// `now`, and of the month after it, in `zone`.
pub fn month_bounds(
    now: DateTime<Utc>,
    zone: chrono_tz::Tz,
    months_back: u32,
) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let local = now.with_timezone(&zone);
    let index = local.year() * 12 + local.month0() as i32 - months_back as i32;
    let start_of = |index: i32| {
        let date =
            NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
                .expect("the first of a month exists");
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        zone.from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
    };
    (start_of(index), start_of(index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn leg(key: &str, second: u32, disposition: &str, billsec: i32, cost: i64) -> CallRollup {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 20, 9, 0, second)
            .single()
            .expect("a time");
        let answered = disposition == "ANSWERED";
        CallRollup {
            call_key: key.into(),
            start: at,
            lead_answered: answered,
            lead_calldate: at,
            lead_key: format!("{second}.{disposition}"),
            src: "15550177777".into(),
            dst: format!("20{second}"),
            direction: "inbound".into(),
            extension: Some(format!("20{second}")),
            status: cdr::status(disposition).as_str().into(),
            duration: billsec + 5,
            billsec,
            billed_seconds: if cost > 0 { billsec } else { 0 },
            cost,
            legs: 1,
            rated: cost > 0,
            unrated: false,
        }
    }

    #[test]
    fn a_ring_group_is_one_call_led_by_the_phone_that_answered() {
        let legs = [
            leg("r", 1, "NO ANSWER", 0, 0),
            leg("r", 2, "ANSWERED", 40, 4_000),
            leg("r", 3, "ANSWERED", 90, 0),
            leg("r", 0, "BUSY", 0, 0),
        ];
        let mut call = legs[0].clone();
        for l in &legs[1..] {
            call.merge(l.clone());
        }
        assert_eq!(call.start, legs[3].start, "the earliest leg's start");
        assert_eq!(call.dst, "202", "the first answered leg leads");
        assert_eq!(
            (call.billsec, call.billed_seconds, call.cost, call.legs),
            (130, 40, 4_000, 4),
            "both answered legs talked (a transfer): their seconds add up, as their costs do"
        );
        assert_eq!(call.status, "answered");
    }

    proptest::proptest! {
        /// Legs may arrive in any order and any batches: every order and
        /// grouping folds to the same call.
        #[test]
        fn folding_legs_ignores_order_and_batching(
            picks in proptest::collection::vec((0u32..50, 0usize..4, 0i32..300, 0i64..9_000), 1..8),
            split in 0usize..8,
        ) {
            const DISPOSITIONS: [&str; 4] = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED"];
            let legs: Vec<CallRollup> = picks
                .iter()
                .map(|&(s, d, b, c)| leg("k", s, DISPOSITIONS[d], b, c))
                .collect();
            let fold = |legs: &[CallRollup]| {
                let mut call = legs[0].clone();
                for l in &legs[1..] {
                    call.merge(l.clone());
                }
                call
            };
            let in_order = fold(&legs);
            let mut reversed = legs.clone();
            reversed.reverse();
            let backwards = fold(&reversed);
            proptest::prop_assert_eq!(&in_order.start, &backwards.start);
            proptest::prop_assert_eq!(
                (in_order.billsec, in_order.cost, in_order.legs, &in_order.status, &in_order.lead_key),
                (backwards.billsec, backwards.cost, backwards.legs, &backwards.status, &backwards.lead_key)
            );
            let split = split.min(legs.len() - 1).max(1).min(legs.len());
            if split < legs.len() {
                let mut batched = fold(&legs[..split]);
                batched.merge(fold(&legs[split..]));
                proptest::prop_assert_eq!(batched, in_order);
            }
        }
    }

    #[test]
    fn months_are_cut_at_local_midnight() {
        let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
        let now = Utc
            .with_ymd_and_hms(2026, 12, 1, 3, 0, 0)
            .single()
            .expect("a time");
        let (from, to) = month_bounds(now, zone, 0);
        assert_eq!(
            from.to_rfc3339(),
            "2026-11-01T04:00:00+00:00",
            "still November in New York"
        );
        assert_eq!(to.to_rfc3339(), "2026-12-01T05:00:00+00:00");
        let (from, to) = month_bounds(
            Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
                .single()
                .expect("a time"),
            chrono_tz::UTC,
            1,
        );
        assert_eq!(
            (from.to_rfc3339().as_str(), to.to_rfc3339().as_str()),
            ("2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00")
        );
    }
}

//! Storing CDRs: derived, rated and billed as they arrive. Ingestion is
//! idempotent per record, and usage reaches the ledger in one transaction per
//! batch whose amount is exactly the sum of its calls' costs.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::calling_plans as plans_of_rates;
use crate::cdr::{self, Direction, RawCdr, Status};
use crate::domain::AccountId;
use crate::ledger::{self, Book, LedgerError, NewTransaction};
use crate::money::Money;
use crate::rating::{self, Rate, RateTable};
use crate::schema::{calling_plans, cdr_rejects, cdrs, ledger_accounts, pbxes, plans};

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
}

fn derive(record: &RawCdr, table: Option<&RateTable>, inbound: Option<Money>) -> Derived {
    let direction = cdr::direction(record);
    let status = cdr::status(&record.disposition);
    let helper = cdr::is_helper_leg(record);
    let mut derived = Derived {
        direction,
        extension: cdr::extension(record, direction),
        status,
        helper,
        rating: "free",
        billed_seconds: 0,
        rate_id: None,
        cost: Money::ZERO,
    };
    let billsec = u32::try_from(record.billsec).unwrap_or(0);
    if helper || status != Status::Answered || billsec == 0 {
        return derived;
    }
    match direction {
        Direction::Outbound => {
            match table.and_then(|t| t.price(&record.dst, record.calldate, billsec)) {
                Some(priced) => {
                    derived.rating = "rated";
                    derived.billed_seconds = priced.billed_seconds as i32;
                    derived.rate_id = Some(priced.rate_id);
                    derived.cost = priced.cost;
                }
                None => derived.rating = "unrated",
            }
        }
        // A call to one of the account's numbers: FreePBX names the DID, or
        // routes it through an ext-did context (Master.csv has no DID column).
        Direction::Inbound
            if record.did.as_deref().is_some_and(|d| !d.is_empty())
                || record.dcontext.starts_with("ext-did") =>
        {
            if let Some(per_minute) = inbound {
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
                derived.rating = "rated";
                derived.billed_seconds = rating::billed_seconds(billsec, &rate) as i32;
                derived.cost = rating::cost(derived.billed_seconds as u32, &rate);
            }
        }
        _ => {}
    }
    derived
}

/// Why a batch could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no PBX {0}")]
    UnknownPbx(i64),
    #[error("the ledger refused the usage: {0}")]
    Ledger(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Stores a batch of a PBX's CDRs (and the lines that could not be read),
/// rates them with the PBX's plan's calling plan, and posts their usage to
/// the ledger, all in one database transaction.
pub async fn ingest(
    conn: &mut AsyncPgConnection,
    pbx_id: i64,
    source: &str,
    records: &[RawCdr],
    rejects: &[(String, String)],
) -> Result<Ingested, IngestError> {
    conn.transaction(async |conn| {
        let (account_id, calling_plan): (i64, Option<i64>) = pbxes::table
            .inner_join(plans::table)
            .filter(pbxes::id.eq(pbx_id))
            .select((pbxes::account_id, plans::calling_plan_id))
            .first(conn)
            .await
            .optional()?
            .ok_or(IngestError::UnknownPbx(pbx_id))?;
        let (table, inbound) = match calling_plan {
            Some(plan) => {
                let inbound: Option<i64> = calling_plans::table
                    .find(plan)
                    .select(calling_plans::inbound_per_minute)
                    .first(conn)
                    .await?;
                (
                    Some(plans_of_rates::rate_table(conn, plan).await?),
                    inbound.map(Money),
                )
            }
            None => (None, None),
        };
        let mut result = Ingested::default();
        for chunk in records.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|record| {
                    let d = derive(record, table.as_ref(), inbound);
                    (
                        (
                            cdrs::pbx_id.eq(pbx_id),
                            cdrs::record_key.eq(cdr::record_key(record)),
                            cdrs::source.eq(source),
                            cdrs::calldate.eq(record.calldate),
                            cdrs::clid.eq(&record.clid),
                            cdrs::src.eq(&record.src),
                            cdrs::dst.eq(&record.dst),
                            cdrs::dcontext.eq(&record.dcontext),
                            cdrs::channel.eq(&record.channel),
                            cdrs::dstchannel.eq(&record.dstchannel),
                            cdrs::lastapp.eq(&record.lastapp),
                            cdrs::lastdata.eq(&record.lastdata),
                            cdrs::duration.eq(record.duration),
                            cdrs::billsec.eq(record.billsec),
                            cdrs::disposition.eq(&record.disposition),
                            cdrs::amaflags.eq(record.amaflags),
                        ),
                        (
                            cdrs::accountcode.eq(&record.accountcode),
                            cdrs::uniqueid.eq(&record.uniqueid),
                            cdrs::userfield.eq(&record.userfield),
                            cdrs::linkedid.eq(&record.linkedid),
                            cdrs::sequence.eq(record.sequence),
                            cdrs::did.eq(&record.did),
                            cdrs::recordingfile.eq(&record.recordingfile),
                            cdrs::cnum.eq(&record.cnum),
                            cdrs::cnam.eq(&record.cnam),
                            cdrs::outbound_cnum.eq(&record.outbound_cnum),
                            cdrs::outbound_cnam.eq(&record.outbound_cnam),
                            cdrs::dst_cnam.eq(&record.dst_cnam),
                            cdrs::peeraccount.eq(&record.peeraccount),
                        ),
                        (
                            cdrs::direction.eq(d.direction.as_str()),
                            cdrs::extension.eq(d.extension),
                            cdrs::status.eq(d.status.as_str()),
                            cdrs::call_key.eq(cdr::call_key(record)),
                            cdrs::helper_leg.eq(d.helper),
                            cdrs::rating.eq(d.rating),
                            cdrs::billed_seconds.eq(d.billed_seconds),
                            cdrs::rate_id.eq(d.rate_id),
                            cdrs::cost.eq(d.cost.micros()),
                        ),
                    )
                })
                .collect();
            let inserted = diesel::insert_into(cdrs::table)
                .values(&rows)
                .on_conflict((cdrs::pbx_id, cdrs::record_key))
                .do_nothing()
                .execute(conn)
                .await?;
            result.accepted += inserted;
            result.duplicates += chunk.len() - inserted;
        }
        for (raw, reason) in rejects {
            diesel::insert_into(cdr_rejects::table)
                .values((
                    cdr_rejects::pbx_id.eq(pbx_id),
                    cdr_rejects::source.eq(source),
                    cdr_rejects::raw.eq(raw),
                    cdr_rejects::reason.eq(reason),
                ))
                .execute(conn)
                .await?;
        }
        result.rejected = rejects.len();
        result.unrated = cdrs::table
            .filter(cdrs::pbx_id.eq(pbx_id))
            .filter(cdrs::rating.eq("unrated"))
            .count()
            .get_result::<i64>(conn)
            .await? as usize;
        result.billed = bill(conn, pbx_id, AccountId(account_id)).await?;
        Ok(result)
    })
    .await
}

/// Posts every rated, unbilled call of a PBX as one ledger transaction whose
/// amount is exactly their sum, and marks them billed by it.
async fn bill(
    conn: &mut AsyncPgConnection,
    pbx_id: i64,
    account: AccountId,
) -> Result<Money, IngestError> {
    let unbilled: Vec<(i64, i64)> = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx_id))
        .filter(cdrs::rating.eq("rated"))
        .filter(cdrs::ledger_transaction_id.is_null())
        .filter(cdrs::cost.gt(0))
        .order(cdrs::id)
        .select((cdrs::id, cdrs::cost))
        .for_update()
        .load(conn)
        .await?;
    let (Some(first), Some(last)) = (<[_]>::first(&unbilled), <[_]>::last(&unbilled)) else {
        return Ok(Money::ZERO);
    };
    let total = Money(unbilled.iter().map(|(_, cost)| cost).sum());
    let customer = ledger::customer_account(conn, account).await?;
    let currency: String = ledger_accounts::table
        .find(customer.0)
        .select(ledger_accounts::currency)
        .first(conn)
        .await?;
    let revenue = ledger::book(conn, Book::Revenue, &currency).await?;
    let posted = ledger::post(
        conn,
        &NewTransaction {
            idempotency_key: format!("usage:pbx:{pbx_id}:{}-{}", first.0, last.0),
            kind: "usage".into(),
            memo: format!("Calls: {} of PBX #{pbx_id}", unbilled.len()),
            currency,
            posted_by: None,
            entries: vec![(customer, -total), (revenue, total)],
        },
    )
    .await
    .map_err(|e| match e {
        LedgerError::Database(e) => IngestError::Database(e),
        other => IngestError::Ledger(other.to_string()),
    })?;
    let ids: Vec<i64> = unbilled.iter().map(|(id, _)| *id).collect();
    diesel::update(cdrs::table.filter(cdrs::id.eq_any(&ids)))
        .set(cdrs::ledger_transaction_id.eq(posted.id().0))
        .execute(conn)
        .await?;
    Ok(total)
}

/// One call as the client home lists it.
#[derive(Clone, Debug, Queryable)]
pub struct CallLine {
    pub pbx_id: i64,
    pub calldate: DateTime<Utc>,
    pub src: String,
    pub dst: String,
    pub direction: String,
    pub extension: Option<String>,
    pub status: String,
    pub duration: i32,
    pub billsec: i32,
    pub rating: String,
    pub cost: i64,
    pub call_key: String,
}

/// An account's last `limit` calls, newest first: one line per call (its
/// answered leg if any), helper legs left out.
pub async fn recent_calls(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    limit: usize,
) -> QueryResult<Vec<CallLine>> {
    let legs: Vec<CallLine> = cdrs::table
        .inner_join(pbxes::table)
        .filter(pbxes::account_id.eq(account.0))
        .filter(cdrs::helper_leg.eq(false))
        .order(cdrs::calldate.desc())
        .limit((limit * 10) as i64)
        .select((
            cdrs::pbx_id,
            cdrs::calldate,
            cdrs::src,
            cdrs::dst,
            cdrs::direction,
            cdrs::extension,
            cdrs::status,
            cdrs::duration,
            cdrs::billsec,
            cdrs::rating,
            cdrs::cost,
            cdrs::call_key,
        ))
        .load(conn)
        .await?;
    let mut calls: Vec<CallLine> = Vec::new();
    for leg in legs {
        match calls.iter_mut().find(|c| c.call_key == leg.call_key) {
            Some(call) => {
                if call.status != "answered" && leg.status == "answered" {
                    let start = call.calldate.min(leg.calldate);
                    *call = CallLine {
                        calldate: start,
                        ..leg
                    };
                } else {
                    call.cost += leg.cost;
                }
            }
            None => calls.push(leg),
        }
    }
    calls.truncate(limit);
    Ok(calls)
}

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

/// A call as reports count it: its legs folded into one.
#[derive(Clone, Debug, PartialEq, Eq, diesel::QueryableByName)]
pub struct ReportCall {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pbx_id: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub src: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub dst: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub direction: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub extension: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub billsec: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub cost: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub unrated: bool,
}

/// An account's calls that started in `[from, to)`, one row per call (legs
/// folded by their call key, the answered leg speaking for the call, helper
/// legs left out), oldest first.
pub async fn calls_between(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<ReportCall>> {
    diesel::sql_query(
        "SELECT c.pbx_id, min(c.calldate) AS start, \
                (array_agg(c.src ORDER BY (c.status = 'answered') DESC, c.calldate))[1] AS src, \
                (array_agg(c.dst ORDER BY (c.status = 'answered') DESC, c.calldate))[1] AS dst, \
                (array_agg(c.direction ORDER BY (c.status = 'answered') DESC, c.calldate))[1] AS direction, \
                (array_agg(c.extension ORDER BY (c.status = 'answered') DESC, c.calldate))[1] AS extension, \
                (array_agg(c.status ORDER BY (c.status = 'answered') DESC, c.calldate))[1] AS status, \
                max(CASE WHEN c.status = 'answered' THEN c.billsec ELSE 0 END) AS billsec, \
                sum(c.cost)::bigint AS cost, \
                bool_or(c.rating = 'unrated') AS unrated \
         FROM cdrs c JOIN pbxes p ON p.id = c.pbx_id \
         WHERE p.account_id = $1 AND NOT c.helper_leg AND c.calldate >= $2 AND c.calldate < $3 \
         GROUP BY c.pbx_id, c.call_key \
         ORDER BY start",
    )
    .bind::<diesel::sql_types::BigInt, _>(account.0)
    .bind::<diesel::sql_types::Timestamptz, _>(from)
    .bind::<diesel::sql_types::Timestamptz, _>(to)
    .load(conn)
    .await
}

/// Totals for a group of calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: i64,
    pub answered: i64,
    pub seconds: i64,
    pub cost: Money,
}

impl Totals {
    fn add(&mut self, call: &ReportCall) {
        self.calls += 1;
        if call.status == "answered" {
            self.answered += 1;
        }
        self.seconds += i64::from(call.billsec);
        self.cost = self.cost + Money(call.cost);
    }
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

fn bump<K: PartialEq + Clone>(groups: &mut Vec<(K, Totals)>, key: &K, call: &ReportCall) {
    match groups.iter_mut().find(|(k, _)| k == key) {
        Some((_, totals)) => totals.add(call),
        None => {
            let mut totals = Totals::default();
            totals.add(call);
            groups.push((key.clone(), totals));
        }
    }
}

/// Sums calls; days are counted in `zone`. Pure.
pub fn summarize(calls: &[ReportCall], zone: chrono_tz::Tz) -> Report {
    let mut report = Report::default();
    for call in calls {
        report.all.add(call);
        bump(&mut report.by_status, &call.status, call);
        bump(&mut report.by_direction, &call.direction, call);
        let extension = call.extension.clone().unwrap_or_else(|| "—".into());
        bump(&mut report.by_extension, &extension, call);
        bump(&mut report.by_pbx, &call.pbx_id, call);
        let day = call
            .start
            .with_timezone(&zone)
            .format("%Y-%m-%d")
            .to_string();
        bump(&mut report.by_day, &day, call);
        if call.unrated {
            report.unrated += 1;
        }
    }
    report
        .by_status
        .sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    report.by_direction.sort_by(|a, b| a.0.cmp(&b.0));
    report.by_extension.sort_by(|a, b| a.0.cmp(&b.0));
    report.by_pbx.sort_by_key(|(id, _)| *id);
    report.by_day.sort_by(|a, b| a.0.cmp(&b.0));
    report
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

    fn call(
        extension: &str,
        status: &str,
        direction: &str,
        billsec: i32,
        cost: i64,
        day: u32,
    ) -> ReportCall {
        ReportCall {
            pbx_id: if extension == "300" { 2 } else { 1 },
            start: Utc
                .with_ymd_and_hms(2026, 11, day, 23, 30, 0)
                .single()
                .expect("a time"),
            src: String::new(),
            dst: String::new(),
            direction: direction.into(),
            extension: Some(extension.into()),
            status: status.into(),
            billsec,
            cost,
            unrated: false,
        }
    }

    #[test]
    fn reports_sum_calls_by_status_direction_extension_pbx_and_local_day() {
        let calls = [
            call("201", "answered", "outbound", 120, 30_000, 1),
            call("201", "no_answer", "outbound", 0, 0, 1),
            call("202", "answered", "inbound", 60, 5_000, 2),
            call("300", "busy", "internal", 0, 0, 2),
        ];
        let zone: chrono_tz::Tz = "America/New_York".parse().expect("a zone");
        let report = summarize(&calls, zone);
        assert_eq!(
            (report.all.calls, report.all.answered, report.all.seconds),
            (4, 2, 180)
        );
        assert_eq!(report.all.cost, Money(35_000));
        assert_eq!(
            report.by_status[0],
            (
                "answered".into(),
                Totals {
                    calls: 2,
                    answered: 2,
                    seconds: 180,
                    cost: Money(35_000)
                }
            )
        );
        let extensions: Vec<(&str, i64)> = report
            .by_extension
            .iter()
            .map(|(e, t)| (e.as_str(), t.calls))
            .collect();
        assert_eq!(extensions, [("201", 2), ("202", 1), ("300", 1)]);
        assert_eq!(
            report
                .by_pbx
                .iter()
                .map(|(p, t)| (*p, t.cost))
                .collect::<Vec<_>>(),
            [(1, Money(35_000)), (2, Money::ZERO)]
        );
        let days: Vec<&str> = report.by_day.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(
            days,
            ["2026-11-01", "2026-11-02"],
            "23:30 UTC is the same evening in New York"
        );
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

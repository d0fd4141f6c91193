//! Calls: CDRs in, and the calls an account made.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::calls::cdr::{self, MASTER_CSV_COLUMNS};
use switchboard_core::calls::dialling::DiallingRules as CoreRules;
use switchboard_core::calls::{self, IngestError};
use switchboard_core::{audit, csv_cell};
use switchboard_core::{commerce::pbxes, db, AccountId, Money as CoreMoney};

use crate::commerce::{connection, page};
use crate::guards::{Allow, ADMIN, STAFF};
use crate::types::{parse_id, Money};
use crate::{internal, pool};

/// One call, as the client home lists it.
#[derive(SimpleObject, Clone, Debug)]
pub struct CallLine {
    pub pbx_id: ID,
    pub start: DateTime<Utc>,
    pub from: String,
    pub to: String,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    pub extension: Option<String>,
    /// `answered`, `no_answer`, `busy`, `failed` or `congestion`.
    pub status: String,
    pub duration: i32,
    pub billsec: i32,
    /// `free`, `rated` or `unrated` (no rate matched: staff are looking into it).
    pub rating: String,
    pub cost: Money,
}

/// A call as billing knows it: its seconds, the seconds billed and its
/// exact cost.
#[derive(SimpleObject, Clone, Debug)]
pub struct BilledCall {
    pub pbx_id: ID,
    pub start: DateTime<Utc>,
    pub from: String,
    pub to: String,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// The extension that made it or answered it first.
    pub extension: Option<String>,
    /// `answered`, `no_answer`, `busy`, `failed` or `congestion`.
    pub status: String,
    pub duration: i32,
    /// Its answered legs' seconds, added up.
    pub answered_seconds: i32,
    /// The seconds its legs were billed for, after increments and minimums.
    pub billed_seconds: i32,
    /// How many CDRs (legs) make it.
    pub legs: i32,
    /// `free`, `rated` or `unrated` (no rate matched: staff are looking into it).
    pub rating: String,
    /// Exact, in micro-units: what the balance was charged.
    pub cost: Money,
}

/// An account's calls, newest first, a page at a time.
pub async fn calls_page(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    first: i32,
    after: Option<String>,
) -> Result<Connection<String, BilledCall>> {
    if !(1..=200).contains(&first) {
        return Err("first must be between 1 and 200.".into());
    }
    let cursor = after.as_deref().map(read_cursor).transpose()?;
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let mut rows = calls::calls_page(
        &mut conn,
        AccountId(account),
        from,
        to,
        cursor.as_ref(),
        i64::from(first) + 1,
    )
    .await
    .map_err(internal)?;
    let has_next = rows.len() > first as usize;
    rows.truncate(first as usize);
    let mut connection = Connection::new(cursor.is_some(), has_next);
    connection.edges.extend(rows.into_iter().map(|c| {
        let cursor = write_cursor(&(c.start, c.pbx_id, c.call_key.clone()));
        let rating = c.rating();
        async_graphql::connection::Edge::new(
            cursor,
            BilledCall {
                pbx_id: ID(c.pbx_id.to_string()),
                start: c.start,
                from: c.src,
                to: c.dst,
                direction: c.direction,
                extension: c.extension,
                status: c.status,
                duration: c.duration,
                answered_seconds: c.billsec,
                billed_seconds: c.billed_seconds,
                legs: c.legs,
                rating: rating.into(),
                cost: Money::new(CoreMoney(c.cost), currency),
            },
        )
    }));
    Ok(connection)
}

/// A page's end as an opaque cursor: the call's start, PBX and key.
fn write_cursor((start, pbx, key): &calls::CallCursor) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{pbx}|{key}", start.timestamp_micros()))
}

fn read_cursor(cursor: &str) -> Result<calls::CallCursor> {
    use base64::Engine;
    let refused = || format!("{cursor:?} is not a cursor from this list");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(refused)?;
    let mut parts = text.splitn(3, '|');
    let (Some(start), Some(pbx), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refused().into());
    };
    let start = start
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(refused)?;
    let pbx = pbx.parse::<i64>().map_err(|_| refused())?;
    Ok((start, pbx, key.to_owned()))
}

/// A PBX's dialling rules (DESIGN.md, Dialling rules).
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "DiallingRulesInput")]
pub struct DiallingRules {
    /// The country calling code: `1`, `44`.
    pub country_code: String,
    /// Dialled before a national number: `1` in North America, `0` in the UK.
    pub national_prefix: String,
    /// Dialled before an international number: `011`, `00`.
    pub international_prefix: String,
    /// Dialled before every outside number (`9`), if the PBX uses one.
    pub outside_line: String,
    /// The area code of local numbers dialled without it; empty if none.
    pub area_code: String,
    /// Emergency and service numbers: never rated as international, not charged.
    pub service_numbers: Vec<String>,
    /// The PBX's trunks as channel names (`PJSIP/voipms`, `SIP/211553`,
    /// `DAHDI/*`); empty: trunks are guessed from channel names.
    pub trunks: Vec<String>,
}

impl From<CoreRules> for DiallingRules {
    fn from(r: CoreRules) -> DiallingRules {
        DiallingRules {
            country_code: r.country_code,
            national_prefix: r.national_prefix,
            international_prefix: r.international_prefix,
            outside_line: r.outside_line,
            area_code: r.area_code,
            service_numbers: r.service_numbers,
            trunks: r.trunks,
        }
    }
}

impl From<DiallingRules> for CoreRules {
    fn from(r: DiallingRules) -> CoreRules {
        let trimmed = |v: Vec<String>| {
            v.into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        CoreRules {
            country_code: r.country_code.trim().to_owned(),
            national_prefix: r.national_prefix.trim().to_owned(),
            international_prefix: r.international_prefix.trim().to_owned(),
            outside_line: r.outside_line.trim().to_owned(),
            area_code: r.area_code.trim().to_owned(),
            service_numbers: trimmed(r.service_numbers),
            trunks: trimmed(r.trunks),
        }
    }
}

/// A PBX's dialling rules, for staff.
pub async fn dialling_rules_of(ctx: &Context<'_>, pbx: i64) -> Result<DiallingRules> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    Ok(pbxes::dialling_rules(&mut conn, pbx)
        .await
        .map_err(internal)?
        .ok_or("No such PBX.")?
        .into())
}

/// Lists an account's last calls.
pub async fn recent(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    limit: i32,
) -> Result<Vec<CallLine>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let lines = calls::recent_calls(&mut conn, AccountId(account), limit.clamp(1, 100) as usize)
        .await
        .map_err(internal)?;
    Ok(CallLine::all(lines, currency))
}

impl CallLine {
    pub(crate) fn all(lines: Vec<calls::BilledCall>, currency: &str) -> Vec<CallLine> {
        lines
            .into_iter()
            .map(|l| CallLine {
                pbx_id: ID(l.pbx_id.to_string()),
                rating: l.rating().into(),
                start: l.start,
                from: l.src,
                to: l.dst,
                direction: l.direction,
                extension: l.extension,
                status: l.status,
                duration: l.duration,
                billsec: l.billsec,
                cost: Money::new(CoreMoney(l.cost), currency),
            })
            .collect()
    }
}

/// A CDR file from a PBX.
#[derive(InputObject)]
pub struct CdrCsvInput {
    pub pbx_id: ID,
    /// The file's text: Asterisk's `Master.csv`, or a `cdr_custom` file.
    pub csv: String,
    /// The column order of a `cdr_custom` file; `Master.csv`'s when not given.
    pub columns: Option<Vec<String>>,
    /// The zone the PBX wrote its times in (`America/New_York`); the PBX's
    /// own zone if not given.
    pub time_zone: Option<String>,
}

/// What a batch of CDRs did.
#[derive(SimpleObject)]
pub struct CdrImportResult {
    pub accepted: i32,
    /// Records already held: ignored.
    pub duplicates: i32,
    /// Lines that could not be read, kept aside with their reason.
    pub rejected: i32,
    /// Records of this batch that should cost money and matched no rate:
    /// flagged for staff (`unratedCalls`), never free.
    pub unrated: i32,
    /// What this batch's calls took from the balance.
    pub billed: Money,
}

/// A call leg that should cost money and matched no rate.
#[derive(SimpleObject)]
pub struct UnratedCall {
    pub id: ID,
    pub pbx_id: ID,
    pub account_id: ID,
    pub start: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub direction: String,
    /// Answered seconds.
    pub billsec: i32,
    pub ingested_at: DateTime<Utc>,
}

/// A CDR that could not be read, kept with why.
#[derive(SimpleObject)]
pub struct CdrReject {
    pub id: ID,
    pub pbx_id: ID,
    pub account_id: ID,
    /// `pull`, `csv` or `push`.
    pub source: String,
    /// The line or record as it arrived.
    pub raw: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// What pricing unrated calls did.
#[derive(SimpleObject)]
pub struct PricedCalls {
    /// Call legs that found a rate and were billed.
    pub priced: i32,
    /// Call legs that still match no rate.
    pub still_unrated: i32,
    pub billed: Money,
}

/// Calls' reads for staff.
#[derive(Default)]
pub struct CallsQuery;

#[Object]
impl CallsQuery {
    /// Call legs that should cost money and matched no rate, newest first:
    /// the client sees them as pending until staff price them.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn unrated_calls(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, UnratedCall>> {
        let (first, before) = page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = calls::unrated_legs(&mut conn, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |r| r.id,
            |r| UnratedCall {
                id: ID(r.id.to_string()),
                pbx_id: ID(r.pbx_id.to_string()),
                account_id: ID(r.account_id.to_string()),
                start: r.calldate,
                from: r.src,
                to: r.dst,
                direction: r.direction,
                billsec: r.billsec,
                ingested_at: r.ingested_at,
            },
        ))
    }

    /// CDRs that could not be read, newest first, with the reason.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn cdr_rejects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, CdrReject>> {
        let (first, before) = page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = calls::rejects(&mut conn, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |r| r.id,
            |r| CdrReject {
                id: ID(r.id.to_string()),
                pbx_id: ID(r.pbx_id.to_string()),
                account_id: ID(r.account_id.to_string()),
                source: r.source,
                raw: r.raw,
                reason: r.reason,
                received_at: r.received_at,
            },
        ))
    }
}

/// Calls' changes.
#[derive(Default)]
pub struct CallsMutation;

#[Object]
impl CallsMutation {
    /// Gives a PBX a new token for `POST /cdrs/push`, replacing the old one.
    /// The token is shown once. Admins only: the token lets its holder bill
    /// the PBX's account.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn issue_cdr_token(&self, ctx: &Context<'_>, pbx_id: ID) -> Result<String> {
        let pbx = parse_id(&pbx_id)?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let token = pbxes::issue_cdr_token(conn, pbx).await?;
            if token.is_some() {
                audit::record(
                    conn,
                    &actor,
                    "pbx.issue_cdr_token",
                    &format!("pbx:{pbx}"),
                    "",
                )
                .await?;
            }
            Ok::<_, diesel::result::Error>(token)
        })
        .await
        .map_err(internal)?
        .ok_or_else(|| "No such PBX.".into())
    }

    /// Prices a PBX's unrated calls with the rates in force now and bills
    /// them: for calls that started before their destination had a rate.
    /// Calls that still match no rate stay unrated. Recorded in the audit log.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn price_unrated_calls(&self, ctx: &Context<'_>, pbx_id: ID) -> Result<PricedCalls> {
        let pbx = parse_id(&pbx_id)?;
        let actor = crate::mutation::actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let done = calls::price_unrated(&mut conn, pbx, Utc::now(), &actor)
            .await
            .map_err(|e| match e {
                IngestError::UnknownPbx(_) => "No such PBX.".into(),
                other => internal(other),
            })?;
        let currency = account_currency(&mut conn, pbx).await?;
        Ok(PricedCalls {
            priced: done.priced as i32,
            still_unrated: done.still_unrated as i32,
            billed: Money::new(done.billed, &currency),
        })
    }

    /// Where to pull a PBX's CDRs from: its Asterisk CDR database
    /// (`mysql://reader:secret@host:3306/asteriskcdrdb`, kept sealed), and the
    /// time zone the PBX writes times in. Pulls then run every five minutes.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn set_cdr_source(
        &self,
        ctx: &Context<'_>,
        pbx_id: ID,
        url: String,
        #[graphql(default_with = "\"UTC\".to_string()")] time_zone: String,
    ) -> Result<bool> {
        let key = &ctx.data::<crate::Commerce>()?.key;
        let pbx = parse_id(&pbx_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let before = pbxes::cdr_source(&mut conn, pbx)
            .await
            .map_err(internal)?
            .map(|(_, _, zone)| serde_json::json!({ "time_zone": zone }));
        match pbxes::set_cdr_source(&mut conn, key, pbx, &url, &time_zone).await {
            Ok(true) => {}
            Ok(false) => return Err("No such PBX.".into()),
            Err(why) => return Err(format!("The CDR source {why}.").into()),
        }
        // The address without its user and password, which stay sealed.
        let address = url.trim().rsplit_once('@').map_or("", |(_, host)| host);
        let change = audit::Change {
            before,
            after: Some(serde_json::json!({ "address": address, "time_zone": time_zone })),
        };
        let actor = crate::mutation::actor(ctx);
        audit::record_change(
            &mut conn,
            &actor,
            "pbx.set_cdr_source",
            &format!("pbx:{pbx}"),
            "",
            &change,
        )
        .await
        .map_err(internal)?;
        Ok(true)
    }

    /// Sets how a PBX dials and which of its channels are trunks: new calls
    /// are normalized, directed and priced by them (calls already stored
    /// keep what they got). Recorded in the audit log with the rules before
    /// and after.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn set_dialling_rules(
        &self,
        ctx: &Context<'_>,
        pbx_id: ID,
        rules: DiallingRules,
    ) -> Result<DiallingRules> {
        let pbx = parse_id(&pbx_id)?;
        let rules: CoreRules = rules.into();
        let actor = crate::mutation::actor(ctx);
        rules.check().map_err(async_graphql::Error::new)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        // The rules and their audit record are written together.
        conn.transaction(async |conn| {
            let Some(before) = pbxes::dialling_rules(conn, pbx).await? else {
                return Ok(Err("No such PBX."));
            };
            if !pbxes::set_dialling_rules(conn, pbx, &rules)
                .await
                .map_err(|_| diesel::result::Error::RollbackTransaction)?
            {
                return Ok(Err("No such PBX."));
            }
            switchboard_core::audit::record_change(
                conn,
                &actor,
                "pbx.set_dialling_rules",
                &format!("pbx:{pbx}"),
                "",
                &switchboard_core::audit::Change::from_to(&before, &rules),
            )
            .await?;
            Ok::<_, diesel::result::Error>(Ok(()))
        })
        .await
        .map_err(internal)??;
        Ok(rules.into())
    }

    /// Pulls a PBX's new CDRs now (queued as a job).
    #[graphql(guard = "Allow(STAFF)")]
    async fn pull_cdrs(&self, ctx: &Context<'_>, pbx_id: ID) -> Result<bool> {
        let pbx = parse_id(&pbx_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        if pbxes::cdr_source(&mut conn, pbx)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err("This PBX has no CDR source.".into());
        }
        let key = format!("{}:{pbx}", switchboard_core::queue::PULL_CDRS);
        let actor = crate::mutation::actor(ctx);
        conn.transaction(async |conn| {
            switchboard_core::queue::enqueue(
                conn,
                switchboard_core::queue::PULL_CDRS,
                &pbx.to_string(),
                Some(&key),
            )
            .await?;
            audit::record(conn, &actor, "pbx.pull_cdrs", &format!("pbx:{pbx}"), "").await
        })
        .await
        .map_err(internal)?;
        Ok(true)
    }

    /// Imports a PBX's CSV CDRs; re-importing a record changes nothing.
    /// Admins only: the calls are billed to the PBX's account.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn import_cdr_csv(
        &self,
        ctx: &Context<'_>,
        input: CdrCsvInput,
    ) -> Result<CdrImportResult> {
        let pbx = parse_id(&input.pbx_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let zone: chrono_tz::Tz = match input.time_zone.filter(|z| !z.trim().is_empty()) {
            Some(zone) => zone
                .parse()
                .map_err(|_| "The time zone is not one such as America/New_York.")?,
            // Master.csv holds the PBX's local times: read them in its zone.
            None => pbxes::time_zone(&mut conn, pbx)
                .await
                .map_err(internal)?
                .ok_or("No such PBX.")?
                .parse()
                .unwrap_or(chrono_tz::UTC),
        };
        let columns: Vec<String> = input
            .columns
            .unwrap_or_else(|| MASTER_CSV_COLUMNS.iter().map(|c| c.to_string()).collect());
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let (records, rejected) = cdr::read_csv(&input.csv, &names, zone);
        let rejects: Vec<(String, String)> = rejected
            .into_iter()
            .map(|r| (r.raw, format!("line {}: {}", r.line, r.reason)))
            .collect();
        let result = calls::ingest(
            &mut conn,
            &crate::commerce::commerce(ctx)?.rate_tables,
            pbx,
            "csv",
            &records,
            &rejects,
        )
        .await
        .map_err(|e| match e {
            IngestError::UnknownPbx(_) => "No such PBX.".into(),
            other => internal(other),
        })?;
        let detail = format!(
            "{} accepted, {} duplicates, {} rejected, {} unrated, {} micros billed",
            result.accepted,
            result.duplicates,
            result.rejected,
            result.unrated,
            result.billed.micros()
        );
        let actor = crate::mutation::actor(ctx);
        audit::record(
            &mut conn,
            &actor,
            "pbx.import_cdr_csv",
            &format!("pbx:{pbx}"),
            &detail,
        )
        .await
        .map_err(internal)?;
        let currency = account_currency(&mut conn, pbx).await?;
        Ok(CdrImportResult {
            accepted: result.accepted as i32,
            duplicates: result.duplicates as i32,
            rejected: result.rejected as i32,
            unrated: result.unrated as i32,
            billed: Money::new(result.billed, &currency),
        })
    }
}

async fn account_currency(conn: &mut diesel_async::AsyncPgConnection, pbx: i64) -> Result<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::{accounts, pbxes};
    pbxes::table
        .inner_join(accounts::table)
        .filter(pbxes::id.eq(pbx))
        .select(accounts::currency)
        .first(conn)
        .await
        .map_err(internal)
}

/// Which month a report covers, in the account's time zone.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReportMonth {
    #[default]
    Current,
    Last,
}

/// Totals for a group of calls (calls, not legs).
#[derive(SimpleObject, Clone, Debug)]
pub struct CallTotals {
    /// What the group is: a status, a direction, an extension, a PBX id or a day.
    pub key: String,
    pub calls: i32,
    pub answered: i32,
    /// Answered seconds.
    pub seconds: i32,
    pub minutes: f64,
    pub cost: Money,
}

/// A month of an account's calls.
#[derive(SimpleObject, Clone, Debug)]
pub struct CallReport {
    /// `2026-11`.
    pub month: String,
    pub time_zone: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: CallTotals,
    pub by_status: Vec<CallTotals>,
    pub by_direction: Vec<CallTotals>,
    pub by_extension: Vec<CallTotals>,
    pub by_pbx: Vec<CallTotals>,
    pub by_day: Vec<CallTotals>,
    /// Calls that should cost money and matched no rate yet.
    pub unrated: i32,
}

fn totals(key: String, t: &calls::Totals, currency: &str) -> CallTotals {
    CallTotals {
        key,
        calls: t.calls as i32,
        answered: t.answered as i32,
        seconds: t.seconds as i32,
        minutes: (t.seconds as f64 / 60.0 * 10.0).round() / 10.0,
        cost: Money::new(t.cost, currency),
    }
}

/// The zone and the bounds of the month a report covers.
fn month_of(time_zone: &str, month: ReportMonth) -> (chrono_tz::Tz, DateTime<Utc>, DateTime<Utc>) {
    let zone: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let back = match month {
        ReportMonth::Current => 0,
        ReportMonth::Last => 1,
    };
    let (from, to) = calls::month_bounds(Utc::now(), zone, back);
    (zone, from, to)
}

/// The report of one month of an account's calls.
pub async fn report(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    time_zone: &str,
    month: ReportMonth,
) -> Result<CallReport> {
    let (zone, from, to) = month_of(time_zone, month);
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let report = calls::report(&mut conn, AccountId(account), from, to, zone)
        .await
        .map_err(internal)?;
    let group = |groups: &[(String, calls::Totals)]| {
        groups
            .iter()
            .map(|(k, t)| totals(k.clone(), t, currency))
            .collect()
    };
    Ok(CallReport {
        month: from.with_timezone(&zone).format("%Y-%m").to_string(),
        time_zone: zone.to_string(),
        from,
        to,
        total: totals("all".into(), &report.all, currency),
        by_status: group(&report.by_status),
        by_direction: group(&report.by_direction),
        by_extension: group(&report.by_extension),
        by_pbx: report
            .by_pbx
            .iter()
            .map(|(k, t)| totals(k.to_string(), t, currency))
            .collect(),
        by_day: group(&report.by_day),
        unrated: report.unrated as i32,
    })
}

/// The calls behind a month's report, as CSV.
pub async fn calls_csv(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    time_zone: &str,
    month: ReportMonth,
) -> Result<String> {
    let (zone, from, to) = month_of(time_zone, month);
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let calls = calls::calls_between(&mut conn, AccountId(account), from, to)
        .await
        .map_err(internal)?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    // The cost is exact, to the micro-unit billed, in the account's
    // currency, and the header says so: a month of fractions of a cent
    // adds up to what the balance was charged.
    let cost_column = format!("cost_{}_exact", currency.to_ascii_lowercase());
    let header = [
        "start",
        "pbx",
        "from",
        "to",
        "direction",
        "extension",
        "status",
        "answered_seconds",
        "billed_seconds",
        cost_column.as_str(),
        "unrated",
    ];
    writer.write_record(header).map_err(internal)?;
    for call in calls {
        // Caller numbers are set by whoever places the call: no formulas.
        let record = [
            call.start
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            call.pbx_id.to_string(),
            call.src,
            call.dst,
            call.direction,
            call.extension.unwrap_or_default(),
            call.status,
            call.billsec.to_string(),
            call.billed_seconds.to_string(),
            CoreMoney(call.cost).decimal(),
            call.unrated.to_string(),
        ];
        writer
            .write_record(
                record
                    .iter()
                    .map(|cell| csv_cell::neutralize(cell).into_owned()),
            )
            .map_err(internal)?;
    }
    String::from_utf8(writer.into_inner().map_err(internal)?).map_err(internal)
}

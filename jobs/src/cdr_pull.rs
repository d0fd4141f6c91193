//! Pulling CDRs from a PBX's Asterisk CDR table (MySQL/MariaDB
//! `asteriskcdrdb.cdr`, which has no primary key): incrementally by the end
//! of each call, re-reading an overlap window so late writes are not missed;
//! re-read rows are recognised by their record key and ignored. The walk
//! itself is described in `switchboard_core::calls::pulling`.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDateTime, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use mysql_async::prelude::Queryable;
use switchboard_core::calls::cdr::{self, RawCdr};
use switchboard_core::calls::pulling::{self, Cut};
use switchboard_core::calls::{self, Ingested};
use switchboard_core::commerce::pbxes;

use crate::JobContext;

/// FreePBX's optional columns, read when the table has them.
const OPTIONAL: [&str; 10] = [
    "did",
    "recordingfile",
    "cnum",
    "cnam",
    "outbound_cnum",
    "outbound_cnam",
    "dst_cnam",
    "linkedid",
    "peeraccount",
    "sequence",
];

/// Reads new rows of one PBX's CDR table and ingests them; returns what was
/// stored and whether more rows are waiting (a full batch).
pub async fn pull(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    pbx: i64,
) -> anyhow::Result<(Ingested, bool)> {
    let (sealed, pull_from, zone) = pbxes::cdr_source(conn, pbx)
        .await?
        .context("the PBX has no CDR source")?;
    let url = ctx
        .key
        .decrypt(pbxes::CDR_SOURCE, &sealed)
        .context("opening the CDR source")?;
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let batch = ctx.settings.cdr_pull.batch.max(1);
    let overlap = chrono::Duration::minutes(i64::from(ctx.settings.cdr_pull.overlap_minutes));
    let opts = mysql_async::Opts::from_url(&url)
        .map_err(|_| anyhow::anyhow!("the CDR source URL is not valid"))?;
    let mut mysql = tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| anyhow::anyhow!("the PBX's CDR database did not answer in time"))?
        .map_err(|e| anyhow::anyhow!("connecting to the PBX's CDR database: {e}"))?;
    let present: HashSet<String> = mysql
        .query::<String, _>("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cdr'")
        .await?
        .into_iter()
        .collect();
    anyhow::ensure!(
        present.contains("calldate") && present.contains("uniqueid"),
        "the database has no Asterisk cdr table"
    );
    let optional: Vec<&str> = OPTIONAL
        .iter()
        .copied()
        .filter(|c| present.contains(*c))
        .collect();
    let mut columns = vec![
        "clid",
        "src",
        "dst",
        "dcontext",
        "channel",
        "dstchannel",
        "lastapp",
        "lastdata",
        "duration",
        "billsec",
        "disposition",
        "amaflags",
        "accountcode",
        "uniqueid",
        "userfield",
    ];
    columns.extend(&optional);
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST(`{c}` AS CHAR) AS `{c}`"))
        .collect();
    let ended = "DATE_ADD(calldate, INTERVAL duration SECOND)";
    let query = |condition: &str, limit: &str| {
        format!(
            "SELECT calldate, {ended} AS call_end, {} FROM cdr WHERE {condition} ORDER BY call_end{limit}",
            select.join(", ")
        )
    };
    // Rows that ended at or after the starting point; the bound on the
    // start (the longest call believed) lets the table's calldate index
    // narrow the scan.
    let from = pull_from.map_or(NaiveDateTime::MIN, |from| pulling::local_from(from, &zone));
    let earliest_start = from
        .checked_sub_signed(chrono::Duration::seconds(i64::from(
            cdr::LONGEST_CALL_SECONDS,
        )))
        .unwrap_or(NaiveDateTime::MIN)
        .max(epoch());
    let mut rows: Vec<mysql_async::Row> = mysql
        .exec(
            query(
                &format!("calldate >= ? AND {ended} >= ?"),
                &format!(" LIMIT {batch}"),
            ),
            (earliest_start, from.max(epoch())),
        )
        .await?;
    let ends: Vec<NaiveDateTime> = rows
        .iter()
        .map(|row| {
            row.get_opt::<NaiveDateTime, _>("call_end")
                .and_then(Result::ok)
                .unwrap_or(NaiveDateTime::MIN)
        })
        .collect();
    let cut = pulling::cut(&ends, batch);
    let next_from = match cut {
        Cut::All => ends
            .iter()
            .max()
            .map(|latest| pulling::instant(*latest, &zone) - overlap)
            .map(|next| pull_from.map_or(next, |from| from.max(next))),
        Cut::Before { rows: keep, end } => {
            rows.truncate(keep);
            Some(pulling::instant(end, &zone))
        }
        Cut::Second { end } => {
            rows = mysql
                .exec(
                    query(&format!("calldate >= ? AND {ended} = ?"), ""),
                    (earliest_start, end),
                )
                .await?;
            Some(pulling::instant(end + chrono::Duration::seconds(1), &zone))
        }
    };
    let _ = mysql.disconnect().await;
    let more = cut != Cut::All;
    let (records, rejects) = read_rows(rows, zone);
    let ingested = calls::ingest(conn, &ctx.rate_tables, pbx, "pull", &records, &rejects).await?;
    if let Some(next_from) = next_from {
        pbxes::set_pull_from(conn, pbx, next_from).await?;
    }
    Ok((ingested, more))
}

/// The earliest time MySQL's DATETIME holds.
fn epoch() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(1000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN)
}

/// Turns rows into records, and rows that cannot be read into rejects.
fn read_rows(
    rows: Vec<mysql_async::Row>,
    zone: chrono_tz::Tz,
) -> (Vec<RawCdr>, Vec<(String, String)>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut rejects = Vec::new();
    for row in rows {
        let text = |name: &str| {
            row.get_opt::<Option<String>, _>(name)
                .and_then(Result::ok)
                .flatten()
                .unwrap_or_default()
        };
        let optional_text = |name: &str| Some(text(name)).filter(|v| !v.is_empty());
        let number = |name: &str| text(name).trim().parse::<i32>().ok();
        let calldate = match row
            .get_opt::<NaiveDateTime, _>("calldate")
            .and_then(Result::ok)
        {
            Some(local) => match zone.from_local_datetime(&local).earliest() {
                Some(t) => t.with_timezone(&Utc),
                None => {
                    rejects.push((
                        format!("{row:?}"),
                        format!("{local} does not exist in {zone}"),
                    ));
                    continue;
                }
            },
            None => {
                rejects.push((format!("{row:?}"), "no calldate".into()));
                continue;
            }
        };
        let (Some(duration), Some(billsec)) = (number("duration"), number("billsec")) else {
            rejects.push((
                format!("{row:?}"),
                "duration or billsec is not a number".into(),
            ));
            continue;
        };
        records.push(RawCdr {
            calldate,
            clid: text("clid"),
            src: text("src"),
            dst: text("dst"),
            dcontext: text("dcontext"),
            channel: text("channel"),
            dstchannel: text("dstchannel"),
            lastapp: text("lastapp"),
            lastdata: text("lastdata"),
            duration,
            billsec,
            disposition: text("disposition"),
            amaflags: number("amaflags").unwrap_or(0),
            accountcode: text("accountcode"),
            uniqueid: text("uniqueid"),
            userfield: text("userfield"),
            linkedid: optional_text("linkedid"),
            sequence: number("sequence"),
            did: optional_text("did"),
            recordingfile: optional_text("recordingfile"),
            cnum: optional_text("cnum"),
            cnam: optional_text("cnam"),
            outbound_cnum: optional_text("outbound_cnum"),
            outbound_cnam: optional_text("outbound_cnam"),
            dst_cnam: optional_text("dst_cnam"),
            peeraccount: optional_text("peeraccount"),
        });
    }
    (records, rejects)
}

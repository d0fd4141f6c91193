//! Pulling CDRs from a PBX's Asterisk CDR table (MySQL/MariaDB
//! `asteriskcdrdb.cdr`, which has no primary key): incrementally by
//! `calldate`, re-reading an overlap window so late writes are not missed;
//! re-read rows are recognised by their record key and ignored.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDateTime, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use mysql_async::prelude::Queryable;
use switchboard_core::calls::cdr::RawCdr;
use switchboard_core::calls::{self, Ingested};
use switchboard_core::commerce::pbxes;

use crate::JobContext;

/// How far back each pull starts before the last record seen.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(10);
/// Rows read in one pull; a full batch queues another pull at once.
pub const BATCH: usize = 20_000;

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
/// stored and whether the batch was full.
pub async fn pull(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    pbx: i64,
) -> anyhow::Result<(Ingested, bool)> {
    let (sealed, until, zone) = pbxes::cdr_source(conn, pbx)
        .await?
        .context("the PBX has no CDR source")?;
    let url = ctx
        .key
        .decrypt(pbxes::CDR_SOURCE, &sealed)
        .context("opening the CDR source")?;
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
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
        "calldate",
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
    let since = until
        .map(|u| (u - OVERLAP).with_timezone(&zone).naive_local())
        .unwrap_or_else(|| {
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a valid date")
        });
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            if *c == "calldate" {
                "calldate".to_owned()
            } else {
                format!("CAST(`{c}` AS CHAR) AS `{c}`")
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM cdr WHERE calldate >= ? ORDER BY calldate LIMIT {BATCH}",
        select.join(", ")
    );
    let rows: Vec<mysql_async::Row> = mysql.exec(sql, (since,)).await?;
    let _ = mysql.disconnect().await;
    let full = rows.len() == BATCH;
    let mut records = Vec::with_capacity(rows.len());
    let mut rejects = Vec::new();
    let mut latest = until;
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
        latest = Some(latest.map_or(calldate, |l| l.max(calldate)));
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
    let ingested = calls::ingest(conn, &ctx.rate_tables, pbx, "pull", &records, &rejects).await?;
    if let Some(latest) = latest {
        pbxes::set_pulled_until(conn, pbx, latest).await?;
    }
    Ok((ingested, full))
}

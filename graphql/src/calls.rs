//! Calls: CDRs in, and the calls an account made.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use switchboard_core::call_records::{self, IngestError};
use switchboard_core::cdr::{self, MASTER_CSV_COLUMNS};
use switchboard_core::{db, pbxes, AccountId, Money as CoreMoney};

use crate::guards::{Allow, STAFF};
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

/// Lists an account's last calls.
pub async fn recent(
    ctx: &Context<'_>,
    account: i64,
    currency: &str,
    limit: i32,
) -> Result<Vec<CallLine>> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let lines =
        call_records::recent_calls(&mut conn, AccountId(account), limit.clamp(1, 100) as usize)
            .await
            .map_err(internal)?;
    Ok(lines
        .into_iter()
        .map(|l| CallLine {
            pbx_id: ID(l.pbx_id.to_string()),
            start: l.calldate,
            from: l.src,
            to: l.dst,
            direction: l.direction,
            extension: l.extension,
            status: l.status,
            duration: l.duration,
            billsec: l.billsec,
            rating: l.rating,
            cost: Money::new(CoreMoney(l.cost), currency),
        })
        .collect())
}

/// A CDR file from a PBX.
#[derive(InputObject)]
pub struct CdrCsvInput {
    pub pbx_id: ID,
    /// The file's text: Asterisk's `Master.csv`, or a `cdr_custom` file.
    pub csv: String,
    /// The column order of a `cdr_custom` file; `Master.csv`'s when not given.
    pub columns: Option<Vec<String>>,
    /// The zone the PBX wrote its times in (`America/New_York`); UTC if not given.
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
    pub unrated: i32,
    /// What this batch's calls took from the balance.
    pub billed: Money,
}

/// Calls' changes.
#[derive(Default)]
pub struct CallsMutation;

#[Object]
impl CallsMutation {
    /// Gives a PBX a new token for `POST /cdrs/push`, replacing the old one.
    /// The token is shown once.
    #[graphql(guard = "Allow(STAFF)")]
    async fn issue_cdr_token(&self, ctx: &Context<'_>, pbx_id: ID) -> Result<String> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        pbxes::issue_cdr_token(&mut conn, parse_id(&pbx_id)?)
            .await
            .map_err(internal)?
            .ok_or_else(|| "No such PBX.".into())
    }

    /// Imports a PBX's CSV CDRs; re-importing a record changes nothing.
    #[graphql(guard = "Allow(STAFF)")]
    async fn import_cdr_csv(
        &self,
        ctx: &Context<'_>,
        input: CdrCsvInput,
    ) -> Result<CdrImportResult> {
        let pbx = parse_id(&input.pbx_id)?;
        let zone: chrono_tz::Tz = input
            .time_zone
            .as_deref()
            .unwrap_or("UTC")
            .parse()
            .map_err(|_| "The time zone is not one such as America/New_York.")?;
        let columns: Vec<String> = input
            .columns
            .unwrap_or_else(|| MASTER_CSV_COLUMNS.iter().map(|c| c.to_string()).collect());
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let (records, rejected) = cdr::read_csv(&input.csv, &names, zone);
        let rejects: Vec<(String, String)> = rejected
            .into_iter()
            .map(|r| (r.raw, format!("line {}: {}", r.line, r.reason)))
            .collect();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let result = call_records::ingest(&mut conn, pbx, "csv", &records, &rejects)
            .await
            .map_err(|e| match e {
                IngestError::UnknownPbx(_) => "No such PBX.".into(),
                other => internal(other),
            })?;
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

//! CDRs and calls are kept in one table per month (UTC) of their start, so
//! that a page or a report reads one or two months however long the history
//! grows. Months are made ahead of time by a daily job, and by ingestion for
//! any month a batch reaches that does not exist yet (an import of last
//! year's `Master.csv`, a PBX whose clock is wrong). Dates no PBX can mean
//! (before 2000, or more than a day ahead) never reach a table: ingestion
//! keeps them aside as rejects (`cdr::problem`).

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use diesel::sql_types::{Array, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// How many months after the current one the daily job makes ready.
pub const AHEAD: u32 = 2;

/// The first instant (UTC) of the month holding `at`.
pub fn month_of(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

/// The months holding `times`, each once, in order.
pub fn months_of(times: impl IntoIterator<Item = DateTime<Utc>>) -> Vec<DateTime<Utc>> {
    let mut months: Vec<DateTime<Utc>> = times.into_iter().map(month_of).collect();
    months.sort();
    months.dedup();
    months
}

/// The month holding `now` and the [`AHEAD`] after it.
pub fn coming(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let this = month_of(now);
    (0..=AHEAD)
        .filter_map(|n| this.checked_add_months(Months::new(n)))
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Made {
    #[diesel(sql_type = Integer)]
    made: i32,
}

/// Makes the tables of the months holding `months` that do not exist yet;
/// returns how many tables were made. Outside a transaction it is one short
/// transaction of its own: attaching a month locks the tables CDRs refer to
/// (PBXs, rates, journal transactions, numbers) against changes, so it waits
/// for writes to them under way and holds new ones back until it is done,
/// which should not last as long as a batch. That is why the daily job makes
/// months ahead: ingestion of current calls finds them made and waits for
/// nobody. Instances making the same month take turns, and the second finds
/// it made.
pub async fn make_ready(
    conn: &mut AsyncPgConnection,
    months: &[DateTime<Utc>],
) -> diesel::QueryResult<usize> {
    if months.is_empty() {
        return Ok(0);
    }
    diesel::sql_query("SELECT call_months_ready($1) AS made")
        .bind::<Array<Timestamptz>, _>(months)
        .get_result::<Made>(conn)
        .await
        .map(|m| usize::try_from(m.made).unwrap_or(0))
}

#[derive(diesel::QueryableByName)]
struct Held {
    #[diesel(sql_type = Array<Text>)]
    tables: Vec<String>,
}

/// The name of the table holding `parent`'s rows (`calls`, `cdrs`) of the
/// month holding `at`: `calls_y2026m11`.
pub fn table_of(parent: &str, at: DateTime<Utc>) -> String {
    format!("{parent}_y{:04}m{:02}", at.year(), at.month())
}

/// Vacuums the calls of the month holding `now` and of the month before;
/// returns how many tables it vacuumed. The home and the month report read
/// an account's calls from the index alone where the table's pages are
/// marked all-visible, and only vacuum marks them. Autovacuum comes when a
/// fifth of a table has changed since it last came, so a month that closes
/// can keep the last fifth of its calls read row by row from the table for
/// good; the daily job vacuums it once more after it closes. A vacuum of
/// pages already marked reads nothing of them, so it costs about the pages
/// written since the last one. Must run outside a transaction; a table
/// another instance is vacuuming is left to it.
pub async fn vacuum_read_months(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    let this = month_of(now);
    let before = this.checked_sub_months(Months::new(1)).unwrap_or(this);
    let names = vec![table_of("calls", before), table_of("calls", this)];
    let held: Held = diesel::sql_query(
        "SELECT coalesce(array_agg(n ORDER BY n), '{}') AS tables \
         FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL",
    )
    .bind::<Array<Text>, _>(&names)
    .get_result(conn)
    .await?;
    if held.tables.is_empty() {
        return Ok(0);
    }
    // The names are made of digits above and were found as tables.
    diesel::sql_query(format!("VACUUM (SKIP_LOCKED) {}", held.tables.join(", ")))
        .execute(conn)
        .await?;
    Ok(held.tables.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    #[test]
    fn a_month_starts_at_midnight_utc_on_its_first() {
        assert_eq!(
            month_of(at("2026-11-30T23:59:59Z")),
            at("2026-11-01T00:00:00Z")
        );
        assert_eq!(
            months_of([
                at("2026-12-01T00:00:00Z"),
                at("2026-11-05T10:00:00Z"),
                at("2026-11-30T10:00:00Z")
            ]),
            vec![at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")]
        );
    }

    #[test]
    fn the_coming_months_run_across_the_year() {
        assert_eq!(
            coming(at("2026-12-15T12:00:00Z")),
            vec![
                at("2026-12-01T00:00:00Z"),
                at("2027-01-01T00:00:00Z"),
                at("2027-02-01T00:00:00Z")
            ]
        );
    }
}

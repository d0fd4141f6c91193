//! What each PBX of an account cost in a month: its calls (from the rated
//! calls) and its charges (its plan's setup and first month, from the order
//! that bought it, and its plan's recurring periods), beside the account's
//! total. A charge is tied to its PBX by what caused it, which its ledger
//! transaction's idempotency key names (`order:<id>:charges`,
//! `recurring:<item>:<period>`); a charge tied to no PBX (an account-wide
//! service, say) is counted on a line of its own.
//!
//! A range's calls are summed from each PBX's day totals (`call_days`,
//! which the database keeps as calls are written) for the whole days (UTC)
//! inside it, and from the calls themselves only for what is left at either
//! end: a month costs a row per PBX and day, however many calls it held.

use crate::db::KeepPrepared;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::calls::month_bounds;
use crate::domain::AccountId;
use crate::money::{self, Money};

/// One PBX's month, or (with no PBX) the charges tied to none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbxUsage {
    /// `None` for the line of charges tied to no PBX, and for the total.
    pub pbx_id: Option<i64>,
    pub label: String,
    pub calls: i64,
    pub calls_cost: Money,
    pub charges: Money,
}

impl PbxUsage {
    /// Its calls and its charges.
    pub fn total(&self) -> Money {
        self.calls_cost
            .checked_add(self.charges)
            .unwrap_or(self.calls_cost)
    }
}

/// The account's figure: the sum of its lines.
pub fn total(lines: &[PbxUsage]) -> PbxUsage {
    let sum =
        |f: fn(&PbxUsage) -> Money| money::checked_sum(lines.iter().map(f)).unwrap_or(Money::ZERO);
    PbxUsage {
        pbx_id: None,
        label: String::new(),
        calls: lines.iter().map(|l| l.calls).sum(),
        calls_cost: sum(|l| l.calls_cost),
        charges: sum(|l| l.charges),
    }
}

/// A month of an account, per PBX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Month {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    /// Every PBX of the account, oldest first, then the charges tied to no
    /// PBX if there were any.
    pub lines: Vec<PbxUsage>,
}

#[derive(QueryableByName)]
struct Row {
    /// Which of the ranges asked for, from 1.
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pbx_id: Option<i64>,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    calls_cost: i64,
    #[diesel(sql_type = BigInt)]
    charges: i64,
}

/// The month `months_back` before `now`'s in the account's time zone
/// `zone` (an IANA name; UTC when unknown), its figures in `currency`: the
/// caller has the account already, so it is not read again.
pub async fn month(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    zone: &str,
    currency: &str,
    now: DateTime<Utc>,
    months_back: u32,
) -> QueryResult<Month> {
    let mut months = months(conn, account, zone, currency, now, &[months_back]).await?;
    Ok(months.remove(0))
}

/// The months `months_back` (each as [`month`] reads one) in one statement,
/// in the order asked.
pub async fn months(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    zone: &str,
    currency: &str,
    now: DateTime<Utc>,
    months_back: &[u32],
) -> QueryResult<Vec<Month>> {
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = months_back
        .iter()
        .map(|&back| month_bounds(now, zone, back))
        .collect();
    let lines = between_each(conn, account, &ranges).await?;
    Ok(ranges
        .into_iter()
        .zip(lines)
        .map(|((from, to), lines)| Month {
            from,
            to,
            currency: currency.to_owned(),
            lines,
        })
        .collect())
}

/// Each PBX's calls that started, and charges posted, in `[from, to)`.
pub async fn between(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<PbxUsage>> {
    let mut each = between_each(conn, account, &[(from, to)]).await?;
    Ok(each.remove(0))
}

/// A range `[from, to)` cut at midnights (UTC): the whole days inside it,
/// summed from the day totals, and the less than a day left at either end,
/// read from the calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Split {
    /// The whole days, `[first, end)`.
    days: Option<(NaiveDate, NaiveDate)>,
    /// What is left, as ranges of time.
    ends: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn split(from: DateTime<Utc>, to: DateTime<Utc>) -> Split {
    if from >= to {
        return Split::default();
    }
    let first = if midnight(from.date_naive()) == from {
        Some(from.date_naive())
    } else {
        from.date_naive().succ_opt()
    };
    let end = to.date_naive();
    match first {
        Some(first) if first < end => Split {
            days: Some((first, end)),
            ends: [(from, midnight(first)), (midnight(end), to)]
                .into_iter()
                .filter(|(f, t)| f < t)
                .collect(),
        },
        _ => Split {
            days: None,
            ends: vec![(from, to)],
        },
    }
}

/// [`between`] for each of `ranges`, in one statement: the lines of the
/// `i`-th range are the `i`-th list. Each range's calls are its whole days'
/// totals plus the calls of its ends, which are read from the months'
/// tables of the ends alone (none when every range starts and ends at
/// midnight UTC); a call in two ranges is counted in both. The charges are
/// read once, from the first range's start to the last range's end.
///
/// `OFFSET 0` keeps each range's subquery a scan of that range alone:
/// without it the planner folds it into the outer query and reads every
/// call from the first end to the last, the whole months between them.
pub async fn between_each(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    ranges: &[(DateTime<Utc>, DateTime<Utc>)],
) -> QueryResult<Vec<Vec<PbxUsage>>> {
    let (Some(earliest), Some(latest)) = (
        ranges.iter().map(|r| r.0).min(),
        ranges.iter().map(|r| r.1).max(),
    ) else {
        return Ok(Vec::new());
    };
    let (mut day_ranges, mut firsts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    let (mut end_ranges, mut end_froms, mut end_tos) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (from, to)) in (1i64..).zip(ranges) {
        let split = split(*from, *to);
        if let Some((first, end)) = split.days {
            day_ranges.push(n);
            firsts.push(first);
            ends.push(end);
        }
        for (f, t) in split.ends {
            end_ranges.push(n);
            end_froms.push(f);
            end_tos.push(t);
        }
    }
    // The months' tables the ends need; an empty range when there are none,
    // which leaves every month's table unread.
    let ends_from = end_froms.iter().min().copied().unwrap_or(earliest);
    let ends_to = end_tos.iter().max().copied().unwrap_or(ends_from);
    let rows: Vec<Row> = diesel::sql_query(
        "WITH m AS ( \
           SELECT n, f, t FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS m(f, t, n) \
         ), charged AS ( \
           SELECT m.n, coalesce(r.subject_id, po.id) AS pbx_id, sum(-e.amount)::bigint AS charges \
           FROM journal_entries e \
           JOIN journal_transactions t ON t.id = e.transaction_id \
           JOIN m ON t.posted_at >= m.f AND t.posted_at < m.t \
           JOIN ledger_accounts a ON a.id = e.ledger_account_id \
           LEFT JOIN recurring_items r ON r.account_id = $1 AND r.kind = 'pbx_plan' \
             AND starts_with(t.idempotency_key, 'recurring:' || r.id || ':') \
           LEFT JOIN orders o ON o.account_id = $1 \
             AND t.idempotency_key = 'order:' || o.id || ':charges' \
           LEFT JOIN pbxes po ON po.order_id = o.id \
           WHERE a.account_id = $1 AND t.kind = 'charge' \
             AND t.posted_at >= $4 AND t.posted_at < $5 \
           GROUP BY 1, 2 \
         ), called AS ( \
           SELECT n, pbx_id, sum(calls)::bigint AS calls, sum(cost)::bigint AS cost FROM ( \
             SELECT d.n, x.pbx_id, x.calls, x.cost \
             FROM unnest($6::bigint[], $7::date[], $8::date[]) AS d(n, first_day, end_day) \
             CROSS JOIN LATERAL ( \
               SELECT pbx_id, calls, cost FROM call_days \
               WHERE account_id = $1 AND day >= d.first_day AND day < d.end_day OFFSET 0 \
             ) x \
             UNION ALL \
             SELECT e.n, c.pbx_id, 1, c.cost \
             FROM unnest($9::bigint[], $10::timestamptz[], $11::timestamptz[]) AS e(n, f, t) \
             CROSS JOIN LATERAL ( \
               SELECT pbx_id, cost FROM calls \
               WHERE account_id = $1 AND start >= $12 AND start < $13 \
                 AND start >= e.f AND start < e.t OFFSET 0 \
             ) c \
           ) parts \
           GROUP BY n, pbx_id \
         ) \
         SELECT m.n, p.id AS pbx_id, p.label, coalesce(c.calls, 0)::bigint AS calls, \
           coalesce(c.cost, 0)::bigint AS calls_cost, coalesce(ch.charges, 0)::bigint AS charges \
         FROM m CROSS JOIN pbxes p \
         LEFT JOIN called c ON c.n = m.n AND c.pbx_id = p.id \
         LEFT JOIN charged ch ON ch.n = m.n AND ch.pbx_id = p.id \
         WHERE p.account_id = $1 \
         UNION ALL \
         SELECT n, NULL, '', 0, 0, charges FROM charged WHERE pbx_id IS NULL AND charges <> 0 \
         ORDER BY 1, 2 NULLS LAST",
    )
    .bind::<BigInt, _>(account.0)
    .bind::<Array<Timestamptz>, _>(ranges.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(ranges.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(earliest)
    .bind::<Timestamptz, _>(latest)
    .bind::<Array<BigInt>, _>(day_ranges)
    .bind::<Array<Date>, _>(firsts)
    .bind::<Array<Date>, _>(ends)
    .bind::<Array<BigInt>, _>(end_ranges)
    .bind::<Array<Timestamptz>, _>(end_froms)
    .bind::<Array<Timestamptz>, _>(end_tos)
    .bind::<Timestamptz, _>(ends_from)
    .bind::<Timestamptz, _>(ends_to)
    .kept_prepared()
    .load(conn)
    .await?;
    let mut each: Vec<Vec<PbxUsage>> = vec![Vec::new(); ranges.len()];
    for r in rows {
        let Some(lines) = usize::try_from(r.n - 1).ok().and_then(|i| each.get_mut(i)) else {
            continue;
        };
        lines.push(PbxUsage {
            pbx_id: r.pbx_id,
            label: r.label,
            calls: r.calls,
            calls_cost: Money(r.calls_cost),
            charges: Money(r.charges),
        });
    }
    Ok(each)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pbx: Option<i64>, calls: i64, cost: i64, charges: i64) -> PbxUsage {
        PbxUsage {
            pbx_id: pbx,
            label: String::new(),
            calls,
            calls_cost: Money(cost),
            charges: Money(charges),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn a_range_is_its_whole_days_in_utc_and_what_is_left_at_either_end() {
        // A month in UTC: its days alone.
        assert_eq!(
            split(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")),
            Split {
                days: Some((day("2026-11-01"), day("2026-12-01"))),
                ends: vec![],
            }
        );
        // A month in New York: five hours at each end.
        assert_eq!(
            split(at("2026-11-01T04:00:00Z"), at("2026-12-01T05:00:00Z")),
            Split {
                days: Some((day("2026-11-02"), day("2026-12-01"))),
                ends: vec![
                    (at("2026-11-01T04:00:00Z"), at("2026-11-02T00:00:00Z")),
                    (at("2026-12-01T00:00:00Z"), at("2026-12-01T05:00:00Z")),
                ],
            }
        );
        // A month in Kathmandu (UTC+5:45) ends before midnight UTC.
        assert_eq!(
            split(at("2026-10-31T18:15:00Z"), at("2026-11-30T18:15:00Z")),
            Split {
                days: Some((day("2026-11-01"), day("2026-11-30"))),
                ends: vec![
                    (at("2026-10-31T18:15:00Z"), at("2026-11-01T00:00:00Z")),
                    (at("2026-11-30T00:00:00Z"), at("2026-11-30T18:15:00Z")),
                ],
            }
        );
        // Under a whole day between two midnights, or across one: no days.
        for (from, to) in [
            ("2026-11-03T10:00:00Z", "2026-11-03T20:00:00Z"),
            ("2026-11-03T10:00:00Z", "2026-11-04T09:00:00Z"),
            ("2026-11-03T10:00:00Z", "2026-11-04T00:00:00Z"),
        ] {
            assert_eq!(
                split(at(from), at(to)),
                Split {
                    days: None,
                    ends: vec![(at(from), at(to))],
                },
                "{from} to {to}"
            );
        }
        // One whole day.
        assert_eq!(
            split(at("2026-11-03T00:00:00Z"), at("2026-11-04T00:00:00Z")).days,
            Some((day("2026-11-03"), day("2026-11-04")))
        );
        // Nothing, and backwards: nothing read.
        let none = Split::default();
        assert_eq!(
            split(at("2026-11-03T10:00:00Z"), at("2026-11-03T10:00:00Z")),
            none
        );
        assert_eq!(
            split(at("2026-11-04T10:00:00Z"), at("2026-11-03T10:00:00Z")),
            none
        );
    }

    #[test]
    fn the_account_total_is_the_sum_of_its_lines() {
        let lines = [
            line(Some(1), 3, 120_000, 20_000_000),
            line(Some(2), 1, 5_000, 35_000_000),
            line(None, 0, 0, 4_000_000),
        ];
        let sum = total(&lines);
        assert_eq!(sum.calls, 4);
        assert_eq!(sum.calls_cost, Money(125_000));
        assert_eq!(sum.charges, Money(59_000_000));
        assert_eq!(sum.total(), Money(59_125_000));
        assert_eq!(lines[0].total(), Money(20_120_000));
    }
}

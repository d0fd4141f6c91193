//! What each PBX of an account cost in a month: its calls (from the rated
//! calls) and its charges (its plan's setup and first month, from the order
//! that bought it, and its plan's recurring periods), beside the account's
//! total. A charge is tied to its PBX by what caused it, which its ledger
//! transaction's idempotency key names (`order:<id>:charges`,
//! `recurring:<item>:<period>`); a charge tied to no PBX (an account-wide
//! service, say) is counted on a line of its own.

use crate::db::KeepPrepared;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
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

/// [`between`] for each of `ranges`, in one statement: the lines of the
/// `i`-th range are the `i`-th list. The statement reads only the months'
/// tables from the first range's start to the last range's end; the calls
/// are grouped a range at a time, each range reading its own months' tables
/// (a call in two ranges is counted in both), and the charges are read once.
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
           SELECT m.n, c.pbx_id, c.calls, c.cost \
           FROM m CROSS JOIN LATERAL ( \
             SELECT pbx_id, count(*)::bigint AS calls, coalesce(sum(cost), 0)::bigint AS cost \
             FROM calls \
             WHERE account_id = $1 AND start >= $4 AND start < $5 \
               AND start >= m.f AND start < m.t \
             GROUP BY pbx_id \
           ) c \
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

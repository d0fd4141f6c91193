//! Monthly statements: an account's month in the account's time zone, read
//! from the ledger (opening and closing balance, payments, charges, usage,
//! adjustments) with each PBX's calls and charges beside it. Figures are exact
//! micro-units, rounded only when shown.

use crate::db::KeepPrepared;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::billing::per_pbx;
use crate::calls::month_bounds;
use crate::domain::AccountId;
use crate::money::{self, Money};
use crate::outbox;
use crate::people::accounts;

/// One movement on a statement.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Line {
    #[diesel(sql_type = Timestamptz)]
    pub posted_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub memo: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
}

/// The cost of one PBX's calls in the month.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct PbxUsage {
    #[diesel(sql_type = BigInt)]
    pub pbx_id: i64,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub cost: i64,
}

/// A month of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub account: AccountId,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub opening: Money,
    pub closing: Money,
    /// Money in: payments and top-ups.
    pub payments: Money,
    /// Plan fees and other charges.
    pub charges: Money,
    /// Calls.
    pub usage: Money,
    /// Everything else (adjustments, refunds, disputes).
    pub other: Money,
    pub lines: Vec<Line>,
    pub usage_per_pbx: Vec<PbxUsage>,
    /// Each PBX's calls and charges, and the charges tied to no PBX.
    pub per_pbx: Vec<per_pbx::PbxUsage>,
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    micros: i64,
}

/// The statement of the month `months_back` before `now`'s, in the
/// account's time zone; `None` for no such account.
pub async fn statement(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    now: DateTime<Utc>,
    months_back: u32,
) -> QueryResult<Option<Statement>> {
    let Some((row, _)) = accounts::get(conn, account).await? else {
        return Ok(None);
    };
    let zone: chrono_tz::Tz = row.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let (from, to) = month_bounds(now, zone, months_back);
    let balance_before = async |conn: &mut AsyncPgConnection, at: DateTime<Utc>| {
        diesel::sql_query(
            "SELECT coalesce(sum(e.amount), 0)::bigint AS micros FROM journal_entries e \
             JOIN journal_transactions t ON t.id = e.transaction_id \
             JOIN ledger_accounts a ON a.id = e.ledger_account_id \
             WHERE a.account_id = $1 AND t.posted_at < $2",
        )
        .bind::<BigInt, _>(account.0)
        .bind::<Timestamptz, _>(at)
        .kept_prepared()
        .get_result::<Sum>(conn)
        .await
        .map(|s| Money(s.micros))
    };
    let opening = balance_before(conn, from).await?;
    let closing = balance_before(conn, to).await?;
    let lines: Vec<Line> = diesel::sql_query(
        "SELECT t.posted_at, t.kind, t.memo, e.amount FROM journal_entries e \
         JOIN journal_transactions t ON t.id = e.transaction_id \
         JOIN ledger_accounts a ON a.id = e.ledger_account_id \
         WHERE a.account_id = $1 AND t.posted_at >= $2 AND t.posted_at < $3 \
         ORDER BY t.posted_at, e.id",
    )
    .bind::<BigInt, _>(account.0)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .kept_prepared()
    .load(conn)
    .await?;
    let usage_per_pbx: Vec<PbxUsage> = diesel::sql_query(
        "SELECT pbx_id, count(*)::bigint AS calls, coalesce(sum(cost), 0)::bigint AS cost \
         FROM calls WHERE account_id = $1 AND start >= $2 AND start < $3 \
         GROUP BY pbx_id ORDER BY pbx_id",
    )
    .bind::<BigInt, _>(account.0)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .kept_prepared()
    .load(conn)
    .await?;
    let per_pbx = per_pbx::between(conn, account, from, to).await?;
    let total = |kinds: &[&str], inside: bool| {
        money::checked_sum(
            lines
                .iter()
                .filter(|l| kinds.contains(&l.kind.as_str()) == inside)
                .map(|l| Money(l.amount)),
        )
        .unwrap_or(Money::ZERO)
    };
    Ok(Some(Statement {
        account,
        currency: row.currency.clone(),
        from,
        to,
        opening,
        closing,
        payments: total(&["payment"], true),
        charges: total(&["charge"], true),
        usage: total(&["usage"], true),
        other: total(&["payment", "charge", "usage"], false),
        lines,
        usage_per_pbx,
        per_pbx,
    }))
}

/// The statement as an email to the account's contact.
pub fn email(to: &str, name: &str, statement: &Statement, base_url: &str) -> outbox::Email {
    let c = &statement.currency;
    let month = statement.from.format("%B %Y");
    let mut paragraphs = vec![
        format!("Your statement for {month}, account {name}."),
        format!(
            "Opening balance {}; payments {}; plan and other charges {}; calls {}; other {}; closing balance {}.",
            statement.opening.format(c),
            statement.payments.format(c),
            statement.charges.format(c),
            statement.usage.format(c),
            statement.other.format(c),
            statement.closing.format(c),
        ),
    ];
    for pbx in &statement.per_pbx {
        let name = match (pbx.pbx_id, pbx.label.as_str()) {
            (Some(id), "") => format!("PBX #{id}"),
            (Some(id), label) => format!("PBX #{id} ({label})"),
            (None, _) => "Not tied to a PBX".to_owned(),
        };
        paragraphs.push(format!(
            "{name}: {} calls costing {}, plan and other charges {}.",
            pbx.calls,
            pbx.calls_cost.format(c),
            pbx.charges.format(c)
        ));
    }
    let link = format!("{base_url}/portal/statements");
    outbox::client_notice(
        to,
        &format!("Your Switchboard statement for {month}"),
        &paragraphs,
        Some(("Every line of it in your control panel", &link)),
    )
}

//! Applying the standing rules to one account, in one database transaction
//! under the account's row lock: two instances reviewing the same account
//! take turns, and the second finds nothing left to do. Each change is
//! recorded with its time and cause; notices are queued with keys that make
//! them once per change; the PBXs' states change at once and the
//! controller's commands are queued as jobs, sent when the controller
//! answers.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::billing::replenish::{self, Decision};
use crate::commerce::pbx_commands::{move_account_pbxes, Command};
use crate::domain::{AccountId, Standing};
use crate::money::Money;
use crate::people::accounts::{self, Account};
use crate::schema::{accounts as accounts_table, ledger_accounts, standing_changes};
use crate::standing::rules::{self, Cause, Facts, Periods, Step};
use crate::{outbox, queue};

/// What a review needs besides the database.
#[derive(Clone, Debug)]
pub struct Policy<'a> {
    pub periods: Periods,
    pub staff_address: &'a str,
    pub base_url: &'a str,
}

/// One recorded change of standing.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct Change {
    pub id: i64,
    pub account_id: i64,
    pub at: DateTime<Utc>,
    pub from_standing: String,
    pub to_standing: String,
    pub cause: String,
    pub balance: i64,
}

/// The accounts whose standing may change now: the balance says another
/// standing than they have, time may move a suspended or powered-off one,
/// or an automatic top-up may be due.
pub async fn accounts_to_review(conn: &mut AsyncPgConnection) -> QueryResult<Vec<i64>> {
    accounts_table::table
        .inner_join(ledger_accounts::table)
        .filter(
            accounts_table::standing
                .eq("good")
                .and(ledger_accounts::balance.lt(accounts_table::low_balance_threshold))
                .or(accounts_table::standing.eq("low").and(
                    ledger_accounts::balance
                        .ge(accounts_table::low_balance_threshold)
                        .or((ledger_accounts::balance + accounts_table::credit_limit).lt(0i64))
                        .or(accounts_table::auto_replenish),
                ))
                .or(accounts_table::standing.eq_any(["calling_suspended", "powered_off"])),
        )
        .order(accounts_table::id)
        .select(accounts_table::id)
        .load(conn)
        .await
}

/// Applies the rules to one account at `now` until they say to stay;
/// returns the changes made.
pub async fn review(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Change>> {
    conn.transaction(async |conn| {
        accounts_table::table
            .find(account.0)
            .select(accounts_table::id)
            .for_update()
            .first::<i64>(conn)
            .await?;
        let mut changes = Vec::new();
        // At most: suspended, powered off, due for termination, plus a
        // restore; a loop that went on would be a bug in the rules.
        for _ in 0..4 {
            let Some((row, balance)) = accounts::get(conn, account).await? else {
                break;
            };
            let facts = Facts {
                standing: row.standing(),
                since: row.standing_since,
                balance,
                threshold: Money(row.low_balance_threshold),
                credit_limit: Money(row.credit_limit),
                termination_notice_sent: row.termination_notice_at.is_some(),
            };
            match rules::next(&facts, &policy.periods, now) {
                Step::Stay => {
                    top_up_if_due(conn, &row, balance, now).await?;
                    break;
                }
                Step::Move(to, cause) => {
                    changes.push(apply(conn, &row, balance, to, cause, policy, now).await?);
                }
                Step::DueForTermination => {
                    changes.push(due_for_termination(conn, &row, balance, policy, now).await?);
                }
            }
        }
        Ok(changes)
    })
    .await
}

/// Queues an automatic top-up when the rule calls for one.
async fn top_up_if_due(
    conn: &mut AsyncPgConnection,
    row: &Account,
    balance: Money,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    if !row.auto_replenish || row.standing() == Standing::Good {
        return Ok(());
    }
    let has_card = replenish::has_saved_card(conn, row.id()).await?;
    if let Decision::Charge { .. } = replenish::decision(conn, row, has_card, balance, now).await? {
        queue::enqueue(
            conn,
            queue::REPLENISH,
            &row.id.to_string(),
            Some(&format!("{}:{}", queue::REPLENISH, row.id)),
        )
        .await?;
    }
    Ok(())
}

async fn record(
    conn: &mut AsyncPgConnection,
    row: &Account,
    balance: Money,
    to: Standing,
    cause: &str,
    now: DateTime<Utc>,
) -> QueryResult<Change> {
    diesel::insert_into(standing_changes::table)
        .values((
            standing_changes::account_id.eq(row.id),
            standing_changes::at.eq(now),
            standing_changes::from_standing.eq(&row.standing),
            standing_changes::to_standing.eq(to.as_str()),
            standing_changes::cause.eq(cause),
            standing_changes::balance.eq(balance.micros()),
        ))
        .returning((
            standing_changes::id,
            standing_changes::account_id,
            standing_changes::at,
            standing_changes::from_standing,
            standing_changes::to_standing,
            standing_changes::cause,
            standing_changes::balance,
        ))
        .get_result(conn)
        .await
}

async fn apply(
    conn: &mut AsyncPgConnection,
    row: &Account,
    balance: Money,
    to: Standing,
    cause: Cause,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> QueryResult<Change> {
    let from = row.standing();
    let change = record(conn, row, balance, to, cause.describe(), now).await?;
    let leaves_good = from == Standing::Good;
    let crossings = row.low_crossings + i32::from(leaves_good);
    diesel::update(accounts_table::table.find(row.id))
        .set((
            accounts_table::standing.eq(to.as_str()),
            accounts_table::standing_since.eq(now),
            accounts_table::low_crossings.eq(crossings),
            accounts_table::termination_notice_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    let shown = balance.format(&row.currency);
    let home = format!("{}/portal", policy.base_url);
    let funds = format!("{}/portal/funds", policy.base_url);
    let staff_page = format!("{}/admin/accounts/{}", policy.base_url, row.id);
    let key = |what: &str| format!("standing:{}:{}:{what}", row.id, change.id);
    let staff_facts = |note: &str| {
        outbox::staff_notice(
            policy.staff_address,
            &format!("{}: {}", row.name, note),
            &format!(
                "The account's standing changed because {}.",
                cause.describe()
            ),
            &[
                ("Account", row.name.as_str()),
                ("Balance", shown.as_str()),
                ("Standing", to.as_str()),
                ("Staff page", staff_page.as_str()),
            ],
        )
    };
    if leaves_good {
        // Once per crossing: rising back above the threshold re-arms it.
        let note = if row.auto_replenish {
            "We will charge your saved card for an automatic top-up, as your settings ask."
        } else {
            "Add funds to keep your PBXs calling."
        };
        let client = outbox::client_notice(
            &row.email,
            "Your Switchboard balance is low",
            &[
                format!(
                    "Your balance is {shown}, below your low-balance threshold of {}.",
                    Money(row.low_balance_threshold).format(&row.currency)
                ),
                note.to_owned(),
            ],
            Some(("Add funds", &funds)),
        );
        let crossing = format!("low-balance:{}:{crossings}", row.id);
        outbox::queue(conn, &client, Some(&format!("{crossing}:client"))).await?;
        outbox::queue(
            conn,
            &staff_facts("balance low"),
            Some(&format!("{crossing}:staff")),
        )
        .await?;
    }
    match to {
        Standing::CallingSuspended => {
            // An admin's turn-off overrides standing: its PBXs stay off.
            if !row.turned_off {
                move_account_pbxes(
                    conn,
                    row.id,
                    &["active"],
                    "calling_suspended",
                    &[Command::SuspendCalling],
                )
                .await?;
            }
            let days = policy.periods.grace.num_days();
            let client = outbox::client_notice(
                &row.email,
                "Outbound calling is suspended on your PBXs",
                &[
                    format!("Your balance is {shown}, below what your account may owe. Your PBXs can still receive calls, but they can no longer call out."),
                    format!("Add funds to resume calling at once. If the balance is still unpaid in {days} days, your PBXs will be powered off."),
                ],
                Some(("Add funds", &funds)),
            );
            outbox::queue(conn, &client, Some(&key("client"))).await?;
            outbox::queue(conn, &staff_facts("calling suspended"), Some(&key("staff"))).await?;
        }
        Standing::PoweredOff => {
            if !row.turned_off {
                move_account_pbxes(
                    conn,
                    row.id,
                    &["active", "calling_suspended"],
                    "powered_off",
                    &[Command::PowerOff],
                )
                .await?;
            }
            let client = outbox::client_notice(
                &row.email,
                "Your PBXs are powered off",
                &[
                    format!("Your balance is {shown} and was not paid within the grace period, so your PBXs are powered off. Nothing has been deleted."),
                    "Add funds to power them on again.".to_owned(),
                ],
                Some(("Add funds", &funds)),
            );
            outbox::queue(conn, &client, Some(&key("client"))).await?;
            outbox::queue(conn, &staff_facts("PBXs powered off"), Some(&key("staff"))).await?;
        }
        Standing::Good | Standing::Low
            if matches!(from, Standing::CallingSuspended | Standing::PoweredOff) =>
        {
            // An admin's turn-off overrides standing: its PBXs stay as they are.
            if !row.turned_off {
                move_account_pbxes(
                    conn,
                    row.id,
                    &["powered_off"],
                    "active",
                    &[Command::PowerOn, Command::ResumeCalling],
                )
                .await?;
                move_account_pbxes(
                    conn,
                    row.id,
                    &["calling_suspended"],
                    "active",
                    &[Command::ResumeCalling],
                )
                .await?;
            }
            let client = if row.turned_off {
                outbox::client_notice(
                    &row.email,
                    "Your balance is paid",
                    &[format!("Thank you: your balance is {shown}. Your account is still turned off by us, so your PBXs stay off until we turn it on again.")],
                    Some(("Your control panel", &home)),
                )
            } else {
                outbox::client_notice(
                    &row.email,
                    "Your PBXs are back",
                    &[format!("Thank you: your balance is {shown}. Your PBXs are being powered on and outbound calling is resumed; this takes a minute or two.")],
                    Some(("Your control panel", &home)),
                )
            };
            outbox::queue(conn, &client, Some(&key("client"))).await?;
            outbox::queue(
                conn,
                &staff_facts("restored after payment"),
                Some(&key("staff")),
            )
            .await?;
        }
        Standing::Good | Standing::Low => {}
    }
    Ok(change)
}

async fn due_for_termination(
    conn: &mut AsyncPgConnection,
    row: &Account,
    balance: Money,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> QueryResult<Change> {
    let change = record(
        conn,
        row,
        balance,
        row.standing(),
        "still unpaid after the termination period: staff told the account is due for termination",
        now,
    )
    .await?;
    diesel::update(accounts_table::table.find(row.id))
        .set(accounts_table::termination_notice_at.eq(now))
        .execute(conn)
        .await?;
    let shown = balance.format(&row.currency);
    let since = row.standing_since.format("%Y-%m-%d").to_string();
    let staff_page = format!("{}/admin/accounts/{}", policy.base_url, row.id);
    let notice = outbox::staff_notice(
        policy.staff_address,
        &format!("{} is due for termination", row.name),
        &format!(
            "The account's PBXs have been powered off for {} days and its balance is still unpaid. Nothing has been deleted: decide what to do with it.",
            policy.periods.termination.num_days()
        ),
        &[
            ("Account", row.name.as_str()),
            ("Balance", shown.as_str()),
            ("Powered off since", since.as_str()),
            ("Staff page", staff_page.as_str()),
        ],
    );
    outbox::queue(
        conn,
        &notice,
        Some(&format!("standing:{}:{}:staff", row.id, change.id)),
    )
    .await?;
    Ok(change)
}

/// An account's standing changes, newest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    limit: i64,
) -> QueryResult<Vec<Change>> {
    standing_changes::table
        .filter(standing_changes::account_id.eq(account.0))
        .order(standing_changes::id.desc())
        .limit(limit)
        .select((
            standing_changes::id,
            standing_changes::account_id,
            standing_changes::at,
            standing_changes::from_standing,
            standing_changes::to_standing,
            standing_changes::cause,
            standing_changes::balance,
        ))
        .load(conn)
        .await
}

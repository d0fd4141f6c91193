//! The manual switch: an admin turns an account off, with a reason, and on
//! again. Off overrides standing: every PBX stops calling and is powered
//! off, the review leaves its PBXs alone, and no recurring period that
//! starts while it is off is billed. On puts the PBXs back where the
//! account's standing says they belong (powered on first, calling resumed
//! second) and queues a review, so standing applies again from there.
//!
//! Both run in the caller's transaction (beside its audit record), under
//! the account's row lock that the standing review takes too, so a review
//! and a switch never interleave.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::billing::recurring;
use crate::commerce::pbx_commands::{move_account_pbxes, Command};
use crate::domain::{AccountId, Standing};
use crate::money::Money;
use crate::people::accounts::{self, Account};
use crate::schema::{accounts as accounts_table, standing_changes};
use crate::{outbox, queue};

/// Why the switch did not move.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("No account {0}.")]
    NotFound(AccountId),
    #[error("Say why: the reason is kept in the audit log and shown to the account's users.")]
    NoReason,
    #[error("The reason must be at most 500 characters.")]
    ReasonTooLong,
    #[error("This account is turned off already.")]
    AlreadyOff,
    #[error("This account is not turned off.")]
    AlreadyOn,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Where the PBXs of an account that is turned on again belong, by its
/// standing: the states they move from, the state they move to, and the
/// commands that get them there, in order. `None`: they stay powered off.
pub fn pbxes_when_turned_on(standing: Standing) -> Option<(&'static str, &'static [Command])> {
    match standing {
        Standing::Good | Standing::Low => {
            Some(("active", &[Command::PowerOn, Command::ResumeCalling]))
        }
        // Powered on, but calling stays suspended until the balance is paid.
        Standing::CallingSuspended => Some(("calling_suspended", &[Command::PowerOn])),
        Standing::PoweredOff => None,
    }
}

fn checked_reason(reason: &str) -> Result<&str, SwitchError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(SwitchError::NoReason);
    }
    if reason.chars().count() > 500 {
        return Err(SwitchError::ReasonTooLong);
    }
    Ok(reason)
}

/// The switch's part of an account, as the audit log keeps it.
pub fn for_audit(account: &Account) -> serde_json::Value {
    serde_json::json!({
        "turned_off": account.turned_off,
        "turned_off_reason": account.turned_off_reason,
    })
}

async fn locked(
    conn: &mut AsyncPgConnection,
    id: AccountId,
) -> Result<(Account, Money), SwitchError> {
    accounts_table::table
        .find(id.0)
        .select(accounts_table::id)
        .for_update()
        .first::<i64>(conn)
        .await
        .optional()?
        .ok_or(SwitchError::NotFound(id))?;
    accounts::get(conn, id)
        .await?
        .ok_or(SwitchError::NotFound(id))
}

async fn record(
    conn: &mut AsyncPgConnection,
    row: &Account,
    balance: Money,
    cause: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(standing_changes::table)
        .values((
            standing_changes::account_id.eq(row.id),
            standing_changes::at.eq(now),
            standing_changes::from_standing.eq(&row.standing),
            standing_changes::to_standing.eq(&row.standing),
            standing_changes::cause.eq(cause),
            standing_changes::balance.eq(balance.micros()),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Turns an account off; returns it as it was and as it is.
pub async fn turn_off(
    conn: &mut AsyncPgConnection,
    id: AccountId,
    reason: &str,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<(Account, Account), SwitchError> {
    let reason = checked_reason(reason)?;
    let (before, balance) = locked(conn, id).await?;
    if before.turned_off {
        return Err(SwitchError::AlreadyOff);
    }
    diesel::update(accounts_table::table.find(id.0))
        .set((
            accounts_table::turned_off.eq(true),
            accounts_table::turned_off_reason.eq(reason),
            accounts_table::turned_off_at.eq(now),
        ))
        .execute(conn)
        .await?;
    // Calling stops first, so nothing dials out while the PBX shuts down.
    move_account_pbxes(
        conn,
        id.0,
        &["active", "calling_suspended"],
        "powered_off",
        &[Command::SuspendCalling, Command::PowerOff],
    )
    .await?;
    record(
        conn,
        &before,
        balance,
        &format!("turned off by an admin: {reason}"),
        now,
    )
    .await?;
    if !before.email.is_empty() {
        let notice = outbox::client_notice(
            &before.email,
            "Your Switchboard account is turned off",
            &[
                format!("We have turned your account off: {reason}"),
                "Your PBXs are powered off and no monthly charges are billed while it is off. Nothing has been deleted, and you can still sign in to your control panel. Reply to this message or contact us to have it turned on again.".to_owned(),
            ],
            Some(("Your control panel", &format!("{base_url}/portal"))),
        );
        outbox::queue(conn, &notice, None).await?;
    }
    let (after, _) = accounts::get(conn, id)
        .await?
        .ok_or(SwitchError::NotFound(id))?;
    Ok((before, after))
}

/// Turns an account on again; returns it as it was and as it is.
pub async fn turn_on(
    conn: &mut AsyncPgConnection,
    id: AccountId,
    reason: &str,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<(Account, Account), SwitchError> {
    let reason = checked_reason(reason)?;
    let (before, balance) = locked(conn, id).await?;
    if !before.turned_off {
        return Err(SwitchError::AlreadyOn);
    }
    diesel::update(accounts_table::table.find(id.0))
        .set((
            accounts_table::turned_off.eq(false),
            accounts_table::turned_off_reason.eq(None::<String>),
            accounts_table::turned_off_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    if let Some((to, commands)) = pbxes_when_turned_on(before.standing()) {
        move_account_pbxes(conn, id.0, &["powered_off"], to, commands).await?;
    }
    // The periods that began while the account was off are not billed.
    let off_since = before.turned_off_at.unwrap_or(now);
    recurring::skip_periods_between(conn, id, off_since, now).await?;
    record(
        conn,
        &before,
        balance,
        &format!("turned on by an admin: {reason}"),
        now,
    )
    .await?;
    // Standing applies again: the balance may have moved while it was off.
    queue::review_standing(conn, id.0).await?;
    if !before.email.is_empty() {
        let notice = outbox::client_notice(
            &before.email,
            "Your Switchboard account is turned on again",
            &[
                "Your account is turned on again. Your PBXs are being powered on and their calling resumed as your balance allows; this takes a minute or two.".to_owned(),
                "Monthly charges start again with the next period; the periods that began while the account was off are not billed.".to_owned(),
            ],
            Some(("Your control panel", &format!("{base_url}/portal"))),
        );
        outbox::queue(conn, &notice, None).await?;
    }
    let (after, _) = accounts::get(conn, id)
        .await?
        .ok_or(SwitchError::NotFound(id))?;
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turned_on_pbxes_go_where_the_standing_says_powered_on_before_calling_resumes() {
        assert_eq!(
            pbxes_when_turned_on(Standing::Good),
            Some(("active", &[Command::PowerOn, Command::ResumeCalling][..]))
        );
        assert_eq!(
            pbxes_when_turned_on(Standing::Low),
            pbxes_when_turned_on(Standing::Good)
        );
        assert_eq!(
            pbxes_when_turned_on(Standing::CallingSuspended),
            Some(("calling_suspended", &[Command::PowerOn][..]))
        );
        assert_eq!(pbxes_when_turned_on(Standing::PoweredOff), None);
    }

    #[test]
    fn a_reason_is_needed_and_kept_short() {
        assert!(matches!(checked_reason("  "), Err(SwitchError::NoReason)));
        assert!(matches!(
            checked_reason(&"x".repeat(501)),
            Err(SwitchError::ReasonTooLong)
        ));
        assert_eq!(checked_reason(" fraud check ").ok(), Some("fraud check"));
    }
}

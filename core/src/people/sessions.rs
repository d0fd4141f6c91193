//! Sessions, stored in PostgreSQL so any instance behind a load balancer can
//! serve any request. The cookie carries a random token; the table only its
//! SHA-256.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use crate::domain::{AccountId, Role, UserId};
use crate::keys::random_token;
use crate::money::Money;
use crate::people::accounts::Account;
use crate::schema::{accounts, ledger_accounts, sessions, users};

/// Who a live session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub account_id: Option<AccountId>,
    pub must_change_password: bool,
    /// Signs in with a second factor (TOTP).
    pub two_factor: bool,
    /// The user's account with its balance, read in the same statement as
    /// the session when [`lookup`] was asked for it (a page's read): the
    /// schema's `viewer` then reads nothing more. `None` when not asked for,
    /// or when the user has no account.
    pub account: Option<(Account, Money)>,
}

/// user id, username, role, account, must change password, two-factor.
type SessionRow = (i64, String, String, Option<i64>, bool, bool);

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session and returns the token for the cookie.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user: UserId,
    lifetime: Duration,
    ip: &str,
    user_agent: &str,
) -> QueryResult<String> {
    let token = random_token();
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash(&token)),
            sessions::user_id.eq(user.0),
            sessions::expires_at.eq(Utc::now() + lifetime),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent.chars().take(300).collect::<String>()),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The user behind a token, if the session is live and the user may still
/// sign in. Reading writes nothing: a session's use is noted in memory
/// ([`Activity`]) and extends it in the background, within a minute.
/// However much it is used, a session ends `max_age` after its start: a
/// stolen session that is kept busy still ends.
///
/// `with_account` also reads the user's account and its balance, in the
/// same statement, into [`SessionUser::account`]: for a request that only
/// reads (a page), so that what it shows is read once. A request that
/// changes something reads the account after the change instead.
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    token: &str,
    max_age: Duration,
    with_account: bool,
) -> QueryResult<Option<SessionUser>> {
    let hash = token_hash(token);
    let now = Utc::now();
    let live = sessions::token_hash
        .eq(hash)
        .and(sessions::expires_at.gt(now))
        .and(sessions::created_at.gt(now - max_age))
        .and(users::disabled.eq(false));
    let columns = (
        users::id,
        users::username,
        users::role,
        users::account_id,
        users::must_change_password,
        users::totp_enabled,
    );
    let (found, account) = if with_account {
        let found: Option<(SessionRow, Option<Account>, Option<i64>)> = sessions::table
            .inner_join(users::table.left_join(accounts::table.inner_join(ledger_accounts::table)))
            .filter(live)
            .select((
                columns,
                Option::<Account>::as_select(),
                ledger_accounts::balance.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        match found {
            Some((row, account, balance)) => (Some(row), account.zip(balance)),
            None => (None, None),
        }
    } else {
        let found: Option<SessionRow> = sessions::table
            .inner_join(users::table)
            .filter(live)
            .select(columns)
            .first(conn)
            .await
            .optional()?;
        (found, None)
    };
    let Some((user_id, username, role, account_id, must_change_password, two_factor)) = found
    else {
        return Ok(None);
    };
    let Ok(role) = role.parse() else {
        return Ok(None);
    };
    Ok(Some(SessionUser {
        user_id: UserId(user_id),
        username,
        role,
        account_id: account_id.map(AccountId),
        must_change_password,
        two_factor,
        account: account.map(|(row, balance)| (row, Money(balance))),
    }))
}

/// How long after a session's use it is extended (with every other session
/// used meanwhile).
pub const EXTEND_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The sessions this instance saw used and has not extended yet.
#[derive(Debug, Default)]
pub struct Activity {
    seen: std::sync::Mutex<HashSet<String>>,
}

impl Activity {
    /// Notes that the session of `token` was used. True for the first
    /// session noted since the last [`Activity::take`]: its caller extends
    /// what is noted `EXTEND_AFTER` later.
    pub fn used(&self, token: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let first = seen.is_empty();
        seen.insert(token_hash(token));
        first
    }

    /// The sessions noted since the last time, to extend.
    pub fn take(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *seen).into_iter().collect()
    }
}

/// Extends sessions that were used (as [`Activity::take`] returns them) by
/// `lifetime` from now. Each was live when it was used, at most
/// [`EXTEND_AFTER`] ago (twice that allows for a late run), so one that ran
/// out in between is extended too: a session used in its last minute does
/// not lapse. One ended meanwhile (signed out, its user's sessions ended) is
/// gone and stays so.
pub async fn extend(
    conn: &mut AsyncPgConnection,
    used: &[String],
    lifetime: Duration,
) -> QueryResult<usize> {
    let now = Utc::now();
    let used_while_live = now - Duration::seconds(2 * EXTEND_AFTER.as_secs() as i64);
    diesel::update(
        sessions::table
            .filter(sessions::token_hash.eq_any(used))
            .filter(sessions::expires_at.gt(used_while_live)),
    )
    .set((
        sessions::last_seen_at.eq(now),
        sessions::expires_at.eq(now + lifetime),
    ))
    .execute(conn)
    .await
}

/// Ends one session.
pub async fn end(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(token_hash(token)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Ends every session of a user but, optionally, one (after a password change).
pub async fn end_all_for_user(
    conn: &mut AsyncPgConnection,
    user: UserId,
    keep: Option<&str>,
) -> QueryResult<usize> {
    let keep = keep.map(token_hash).unwrap_or_default();
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user.0))
            .filter(sessions::token_hash.ne(keep)),
    )
    .execute(conn)
    .await
}

/// Deletes expired sessions; returns how many.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(Utc::now())))
        .execute(conn)
        .await
}

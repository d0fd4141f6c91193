//! Checking a username and password, with failures counted per username
//! and address together, per address, and per username. Counts live in
//! PostgreSQL so every instance sees them.
//!
//! Nobody can lock anyone else out: failures of a username from one address
//! refuse only that address, and failures from everywhere only slow every
//! attempt on that username down, so its owner still signs in, a few
//! seconds later at worst.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::{self, Pool};
use crate::people::users::{find_by_username, User};
use crate::people::{passwords, two_factor};
use crate::schema::{sign_in_attempts, sign_up_attempts, users};

/// How many failures are allowed in a window, and what follows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Failures of one username from one address before that address is
    /// refused for it.
    pub per_username_and_address: i64,
    /// Failures of one username, from anywhere, before every further attempt
    /// on it is slowed down.
    pub per_username_before_slowing: i64,
    /// Failures from one address, whatever the usernames, before it is refused.
    pub per_address: i64,
    pub window: Duration,
    /// The longest a slowed-down attempt waits.
    pub max_delay: std::time::Duration,
    /// Sign-ups from one address in `sign_up_window`.
    pub sign_ups_per_address: i64,
    pub sign_up_window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_username_and_address: 5,
            per_username_before_slowing: 5,
            per_address: 30,
            window: Duration::minutes(15),
            max_delay: std::time::Duration::from_secs(10),
            sign_ups_per_address: 20,
            sign_up_window: Duration::hours(1),
        }
    }
}

/// Recent failures that bear on one attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    /// Of this username from this address.
    pub pair: i64,
    /// Of this username from anywhere.
    pub username: i64,
    /// From this address, any username.
    pub address: i64,
}

/// What happens to an attempt, given the failures before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password, after waiting this long.
    Check { delay: std::time::Duration },
    /// Refuse without checking.
    Refuse,
}

/// Decides an attempt: refused when this address has failed too often, for
/// this username or for any; otherwise checked, later the more the username
/// has failed from everywhere (one second, doubling, up to `max_delay`).
pub fn verdict(failures: Failures, limits: &Limits) -> Verdict {
    if failures.pair >= limits.per_username_and_address || failures.address >= limits.per_address {
        return Verdict::Refuse;
    }
    let past = failures.username - limits.per_username_before_slowing;
    let delay = if past < 0 {
        std::time::Duration::ZERO
    } else {
        std::time::Duration::from_secs(1u64 << past.min(16)).min(limits.max_delay)
    };
    Verdict::Check { delay }
}

/// Why a sign-in failed. The message is the same for an unknown username and
/// a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Wrong username or password.")]
    Refused,
    #[error("That code is not right, or it was used already.")]
    WrongCode,
    #[error("Too many failed sign-in attempts. Wait {minutes} minutes and try again.")]
    Throttled { minutes: i64 },
    #[error("the database is not answering: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// What the password is being checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Starting a session.
    SignIn,
    /// Proving it again before a sensitive change (a new password), or to
    /// take up a checkout already submitted.
    Reauthenticate,
}

/// An attempt counted against the limits: recorded as a failure until it
/// [succeeds](Attempt::succeed).
#[derive(Debug)]
pub struct Attempt {
    id: i64,
    /// The user the username names, if any.
    pub user: Option<User>,
}

impl Attempt {
    /// Records the attempt as a success, which forgives the username's
    /// earlier failures; a sign-in also notes its time on the user.
    pub async fn succeed(&self, pool: &Pool, purpose: Purpose) -> Result<(), SignInError> {
        let mut conn = db::conn(pool)
            .await
            .map_err(|e| SignInError::Unavailable(format!("{e:#}")))?;
        diesel::update(sign_in_attempts::table.find(self.id))
            .set(sign_in_attempts::succeeded.eq(true))
            .execute(&mut conn)
            .await?;
        if let (Purpose::SignIn, Some(user)) = (purpose, &self.user) {
            diesel::update(users::table.find(user.id))
                .set(users::last_sign_in_at.eq(Utc::now()))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// Counts an attempt on `username` (any text naming what is tried: a
/// username, or an OpenID sign-in from an address) from `address` against
/// the limits, and waits out its delay, with no connection held; refused
/// when the limits say so.
///
/// The attempt is counted and recorded as a failure under advisory locks on
/// the username and the address, so parallel guesses cannot slip past the
/// limit.
pub async fn begin(
    pool: &Pool,
    username: &str,
    address: &str,
    limits: Limits,
) -> Result<Attempt, SignInError> {
    let key = username.trim().to_lowercase();
    let (id, user, delay) = {
        let mut conn = db::conn(pool)
            .await
            .map_err(|e| SignInError::Unavailable(format!("{e:#}")))?;
        conn.transaction(async |conn| record_attempt(conn, &key, address, limits).await)
            .await?
    };
    tokio::time::sleep(delay).await;
    Ok(Attempt { id, user })
}

/// Checks the credentials, counting the attempt against the limits.
///
/// The database connection goes back to the pool while the attempt waits
/// out its delay and while argon2 works. A sign-in of a user with two-factor
/// sign-in is not yet a success: it stays counted as a failure until the
/// second factor is given ([`second_factor`]), so a known password is no
/// way to reset the count while guessing codes.
pub async fn sign_in(
    pool: &Pool,
    username: &str,
    password: &str,
    address: &str,
    limits: Limits,
    purpose: Purpose,
) -> Result<User, SignInError> {
    let attempt = begin(pool, username, address, limits).await?;
    let password_owned = password.to_owned();
    let candidate = attempt.user.clone();
    let matched = tokio::task::spawn_blocking(move || match candidate {
        Some(user) => passwords::verify(&password_owned, &user.password_hash),
        None => {
            passwords::verify_nothing(&password_owned);
            false
        }
    })
    .await
    .expect("password checks do not panic");
    let user = attempt
        .user
        .clone()
        .filter(|u| matched && !u.disabled)
        .ok_or(SignInError::Refused)?;
    if purpose == Purpose::SignIn && user.totp_enabled {
        return Ok(user);
    }
    attempt.succeed(pool, purpose).await?;
    Ok(user)
}

/// Checks a second factor (a code from the app or a recovery code) of a
/// user whose password was just checked, counting it against the same
/// limits as the password.
pub async fn second_factor(
    pool: &Pool,
    key: &crate::keys::SecretKey,
    user: &User,
    code: &str,
    address: &str,
    limits: Limits,
) -> Result<two_factor::Factor, SignInError> {
    let attempt = begin(pool, &user.username, address, limits).await?;
    let checked = {
        let mut conn = db::conn(pool)
            .await
            .map_err(|e| SignInError::Unavailable(format!("{e:#}")))?;
        two_factor::check(&mut conn, key, user.id(), code, Utc::now()).await
    };
    match checked {
        Ok(factor) if !user.disabled => {
            attempt.succeed(pool, Purpose::SignIn).await?;
            Ok(factor)
        }
        Ok(_) | Err(two_factor::CodeError::Wrong | two_factor::CodeError::NotStarted) => {
            Err(SignInError::WrongCode)
        }
        Err(two_factor::CodeError::Database(e)) => Err(e.into()),
        Err(two_factor::CodeError::Sealed) => Err(SignInError::Unavailable(
            "a two-factor secret does not open with the secret key".into(),
        )),
    }
}

/// Counts recent failures and records this attempt as one, atomically per
/// username and per address; returns the attempt's id, the user, if any,
/// and how long to wait before checking the password.
async fn record_attempt(
    conn: &mut AsyncPgConnection,
    key: &str,
    address: &str,
    limits: Limits,
) -> Result<(i64, Option<User>, std::time::Duration), SignInError> {
    // Always username first, then address: no two sign-ins wait on each other in a circle.
    for lock in [
        format!("sign-in:user:{key}"),
        format!("sign-in:address:{address}"),
    ] {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(lock)
            .execute(conn)
            .await?;
    }
    let since = Utc::now() - limits.window;
    let last_success: Option<chrono::DateTime<Utc>> = sign_in_attempts::table
        .filter(sign_in_attempts::username.eq(key))
        .filter(sign_in_attempts::succeeded.eq(true))
        .select(diesel::dsl::max(sign_in_attempts::at))
        .first(conn)
        .await?;
    // A success forgives the username's earlier failures.
    let username_since = since.max(last_success.unwrap_or(since));
    let failed = || sign_in_attempts::table.filter(sign_in_attempts::succeeded.eq(false));
    let failures = Failures {
        pair: failed()
            .filter(sign_in_attempts::username.eq(key))
            .filter(sign_in_attempts::ip.eq(address))
            .filter(sign_in_attempts::at.gt(username_since))
            .count()
            .get_result(conn)
            .await?,
        username: failed()
            .filter(sign_in_attempts::username.eq(key))
            .filter(sign_in_attempts::at.gt(username_since))
            .count()
            .get_result(conn)
            .await?,
        address: failed()
            .filter(sign_in_attempts::ip.eq(address))
            .filter(sign_in_attempts::at.gt(since))
            .count()
            .get_result(conn)
            .await?,
    };
    let Verdict::Check { delay } = verdict(failures, &limits) else {
        return Err(SignInError::Throttled {
            minutes: limits.window.num_minutes(),
        });
    };
    let attempt: i64 = diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::username.eq(key),
            sign_in_attempts::ip.eq(address),
            sign_in_attempts::succeeded.eq(false),
        ))
        .returning(sign_in_attempts::id)
        .get_result(conn)
        .await?;
    let user = find_by_username(conn, key).await?;
    Ok((attempt, user, delay))
}

/// Counts a sign-up from `address`; false, and nothing counted, when the
/// address has signed up `sign_ups_per_address` times in the window.
pub async fn count_sign_up(
    conn: &mut AsyncPgConnection,
    address: &str,
    limits: Limits,
) -> QueryResult<bool> {
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(format!("sign-up:address:{address}"))
            .execute(conn)
            .await?;
        let recent: i64 = sign_up_attempts::table
            .filter(sign_up_attempts::ip.eq(address))
            .filter(sign_up_attempts::at.gt(Utc::now() - limits.sign_up_window))
            .count()
            .get_result(conn)
            .await?;
        if recent >= limits.sign_ups_per_address {
            return Ok(false);
        }
        diesel::insert_into(sign_up_attempts::table)
            .values(sign_up_attempts::ip.eq(address))
            .execute(conn)
            .await?;
        Ok(true)
    })
    .await
}

/// Deletes attempts older than any window looks at.
pub async fn purge_old_attempts(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    let old = Utc::now() - Duration::days(1);
    let sign_ins = diesel::delete(sign_in_attempts::table.filter(sign_in_attempts::at.lt(old)))
        .execute(conn)
        .await?;
    let sign_ups = diesel::delete(sign_up_attempts::table.filter(sign_up_attempts::at.lt(old)))
        .execute(conn)
        .await?;
    Ok(sign_ins + sign_ups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(pair: i64, username: i64, address: i64) -> Verdict {
        verdict(
            Failures {
                pair,
                username,
                address,
            },
            &Limits::default(),
        )
    }

    fn delay(seconds: u64) -> Verdict {
        Verdict::Check {
            delay: std::time::Duration::from_secs(seconds),
        }
    }

    #[test]
    fn five_failures_from_one_address_refuse_that_address_only() {
        assert_eq!(after(5, 5, 5), Verdict::Refuse);
        assert_eq!(
            after(0, 5, 0),
            delay(1),
            "the owner, elsewhere, is slowed, not refused"
        );
    }

    #[test]
    fn failures_from_everywhere_slow_a_username_down_doubling_up_to_a_cap() {
        assert_eq!(after(0, 4, 0), delay(0));
        assert_eq!(after(0, 5, 0), delay(1));
        assert_eq!(after(0, 6, 0), delay(2));
        assert_eq!(after(0, 8, 0), delay(8));
        assert_eq!(after(0, 9, 0), delay(10));
        assert_eq!(after(0, 10_000, 0), delay(10));
    }

    #[test]
    fn thirty_failures_from_one_address_refuse_it_for_every_username() {
        assert_eq!(after(0, 0, 29), delay(0));
        assert_eq!(after(0, 0, 30), Verdict::Refuse);
    }
}

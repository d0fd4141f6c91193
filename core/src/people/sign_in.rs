//! Checking a username and password, with attempts limited per username and
//! per address. Counts live in PostgreSQL so every instance sees them.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::{self, Pool};
use crate::people::passwords;
use crate::people::users::{find_by_username, User};
use crate::schema::{sign_in_attempts, users};

/// How many failures are allowed in a window before sign-in is refused.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_username: i64,
    pub per_address: i64,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_username: 5,
            per_address: 30,
            window: Duration::minutes(15),
        }
    }
}

/// Why a sign-in failed. The message is the same for an unknown username and
/// a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Wrong username or password.")]
    Refused,
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
    /// Proving it again before a sensitive change (a new password).
    Reauthenticate,
}

/// Checks the credentials, counting the attempt against both limits.
///
/// The attempt is counted and recorded as a failure under advisory locks on
/// the username and the address before the password is checked, so parallel
/// guesses cannot slip past the limit; it becomes a success afterwards. The
/// database connection goes back to the pool while argon2 works.
pub async fn sign_in(
    pool: &Pool,
    username: &str,
    password: &str,
    address: &str,
    limits: Limits,
    purpose: Purpose,
) -> Result<User, SignInError> {
    let key = username.trim().to_lowercase();
    let (attempt, user) = {
        let mut conn = db::conn(pool)
            .await
            .map_err(|e| SignInError::Unavailable(format!("{e:#}")))?;
        conn.transaction(async |conn| record_attempt(conn, &key, address, limits).await)
            .await?
    };

    let password_owned = password.to_owned();
    let (user, matched) = tokio::task::spawn_blocking(move || match user {
        Some(user) => {
            let matched = passwords::verify(&password_owned, &user.password_hash);
            (Some(user), matched)
        }
        None => {
            passwords::verify_nothing(&password_owned);
            (None, false)
        }
    })
    .await
    .expect("password checks do not panic");
    let user = user
        .filter(|u| matched && !u.disabled)
        .ok_or(SignInError::Refused)?;

    let mut conn = db::conn(pool)
        .await
        .map_err(|e| SignInError::Unavailable(format!("{e:#}")))?;
    diesel::update(sign_in_attempts::table.find(attempt))
        .set(sign_in_attempts::succeeded.eq(true))
        .execute(&mut conn)
        .await?;
    if purpose == Purpose::SignIn {
        diesel::update(users::table.find(user.id))
            .set(users::last_sign_in_at.eq(Utc::now()))
            .execute(&mut conn)
            .await?;
    }
    Ok(user)
}

/// Counts recent failures and records this attempt as one, atomically per
/// username and per address; returns the attempt's id and the user, if any.
async fn record_attempt(
    conn: &mut AsyncPgConnection,
    key: &str,
    address: &str,
    limits: Limits,
) -> Result<(i64, Option<User>), SignInError> {
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
    let username_failures: i64 = sign_in_attempts::table
        .filter(sign_in_attempts::username.eq(key))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::at.gt(since.max(last_success.unwrap_or(since))))
        .count()
        .get_result(conn)
        .await?;
    let address_failures: i64 = sign_in_attempts::table
        .filter(sign_in_attempts::ip.eq(address))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::at.gt(since))
        .count()
        .get_result(conn)
        .await?;
    if username_failures >= limits.per_username || address_failures >= limits.per_address {
        return Err(SignInError::Throttled {
            minutes: limits.window.num_minutes(),
        });
    }
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
    Ok((attempt, user))
}

/// Deletes attempts older than any window looks at.
pub async fn purge_old_attempts(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(
        sign_in_attempts::table.filter(sign_in_attempts::at.lt(Utc::now() - Duration::days(1))),
    )
    .execute(conn)
    .await
}

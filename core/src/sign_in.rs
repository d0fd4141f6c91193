//! Checking a username and password, with attempts limited per username and
//! per address. Counts live in PostgreSQL so every instance sees them.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::passwords;
use crate::schema::{sign_in_attempts, users};
use crate::users::{find_by_username, User};

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
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Checks the credentials and records the attempt.
pub async fn sign_in(
    conn: &mut AsyncPgConnection,
    username: &str,
    password: &str,
    address: &str,
    limits: Limits,
) -> Result<User, SignInError> {
    let key = username.trim().to_lowercase();
    let since = Utc::now() - limits.window;
    let last_success: Option<chrono::DateTime<Utc>> = sign_in_attempts::table
        .filter(sign_in_attempts::username.eq(&key))
        .filter(sign_in_attempts::succeeded.eq(true))
        .select(diesel::dsl::max(sign_in_attempts::at))
        .first(conn)
        .await?;
    let username_failures: i64 = sign_in_attempts::table
        .filter(sign_in_attempts::username.eq(&key))
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

    let user = find_by_username(conn, &key).await?;
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
    let user = user.filter(|u| matched && !u.disabled);

    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::username.eq(&key),
            sign_in_attempts::ip.eq(address),
            sign_in_attempts::succeeded.eq(user.is_some()),
        ))
        .execute(conn)
        .await?;
    let user = user.ok_or(SignInError::Refused)?;
    diesel::update(users::table.find(user.id))
        .set(users::last_sign_in_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(user)
}

/// Deletes attempts older than any window looks at.
pub async fn purge_old_attempts(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(
        sign_in_attempts::table.filter(sign_in_attempts::at.lt(Utc::now() - Duration::days(1))),
    )
    .execute(conn)
    .await
}

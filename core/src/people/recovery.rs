//! "Forgot your password?": a link to set a new one, sent to the user's
//! email address through the password-reset links an admin also sends.
//!
//! Whoever asks gets the same answer whether the username or address names
//! a user or not. Requests are counted per address of the asker and per
//! email, named or not, so the count says nothing about who exists either:
//! too many from one address are refused, and past the limit of one email
//! nothing more is sent to it (the answer stays the same).

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::people::password_resets;
use crate::people::users::{self, User};
use crate::schema::{password_recovery_requests, users as users_table};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// How many requests are allowed in a window.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryLimits {
    /// Requests from one address, whatever they name, before it is refused.
    pub per_address: i64,
    /// Links sent to one email address.
    pub per_email: i64,
    pub window: Duration,
}

impl Default for RecoveryLimits {
    fn default() -> RecoveryLimits {
        RecoveryLimits {
            per_address: 10,
            per_email: 3,
            window: Duration::hours(1),
        }
    }
}

/// What becomes of one request, given the requests before it in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send a link if the login names a user.
    Send,
    /// Answer as always, but send nothing more to this email.
    Quiet,
    /// Refuse the asker's address for a while.
    Refuse,
}

/// Decides a request from how many came before it from the same address
/// and for the same email.
pub fn verdict(from_address: i64, for_email: i64, limits: &RecoveryLimits) -> Verdict {
    if from_address >= limits.per_address {
        Verdict::Refuse
    } else if for_email >= limits.per_email {
        Verdict::Quiet
    } else {
        Verdict::Send
    }
}

/// What a request led to.
#[derive(Debug)]
pub enum Recovery {
    /// A new link for this user: its token, for the email.
    Link { user: User, token: String },
    /// Nothing to send: nobody by that name, a disabled user, or the email
    /// had its share of links.
    Nothing,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("Too many requests from your address: wait an hour and try again.")]
    TooMany,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The enabled user a login names: a username, or an email address, in any
/// case.
async fn named_user(conn: &mut AsyncPgConnection, login: &str) -> QueryResult<Option<User>> {
    let login = login.trim();
    let user = if login.contains('@') {
        users_table::table
            .filter(lower(users_table::email).eq(login.to_lowercase()))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?
    } else {
        users::find_by_username(conn, login).await?
    };
    Ok(user.filter(|u| !u.disabled))
}

/// Counts a request from `address` for `login` and, when it may, makes a
/// link for the user it names (earlier links of theirs stop working).
pub async fn request(
    conn: &mut AsyncPgConnection,
    login: &str,
    address: &str,
    limits: RecoveryLimits,
) -> Result<Recovery, RecoveryError> {
    conn.transaction(async |conn| {
        let user = named_user(conn, login).await?;
        // A user's requests count against their email however they were
        // named, so a username and an address do not get twice the links.
        let email = match &user {
            Some(user) => user.email.to_lowercase(),
            None => login.trim().to_lowercase(),
        };
        // One count at a time per address and per email, on every instance.
        for key in [
            format!("recovery:address:{address}"),
            format!("recovery:email:{email}"),
        ] {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(key)
                .execute(conn)
                .await?;
        }
        let since = Utc::now() - limits.window;
        let from_address: i64 = password_recovery_requests::table
            .filter(password_recovery_requests::ip.eq(address))
            .filter(password_recovery_requests::at.gt(since))
            .count()
            .get_result(conn)
            .await?;
        let for_email: i64 = password_recovery_requests::table
            .filter(password_recovery_requests::email.eq(&email))
            .filter(password_recovery_requests::at.gt(since))
            .count()
            .get_result(conn)
            .await?;
        let verdict = verdict(from_address, for_email, &limits);
        if verdict == Verdict::Refuse {
            return Err(RecoveryError::TooMany);
        }
        diesel::insert_into(password_recovery_requests::table)
            .values((
                password_recovery_requests::ip.eq(address),
                password_recovery_requests::email.eq(&email),
            ))
            .execute(conn)
            .await?;
        match (verdict, user) {
            (Verdict::Send, Some(user)) => {
                let token = password_resets::create(
                    conn,
                    user.id(),
                    password_resets::RECOVERY_LIFETIME_HOURS,
                )
                .await?;
                Ok(Recovery::Link { user, token })
            }
            _ => Ok(Recovery::Nothing),
        }
    })
    .await
}

/// Deletes requests older than any window looks at.
pub async fn purge_old_requests(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(
        password_recovery_requests::table
            .filter(password_recovery_requests::at.lt(Utc::now() - Duration::days(1))),
    )
    .execute(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_gets_three_links_an_hour_and_an_address_asks_ten_times() {
        let limits = RecoveryLimits::default();
        assert_eq!(verdict(0, 0, &limits), Verdict::Send);
        assert_eq!(verdict(9, 2, &limits), Verdict::Send);
        assert_eq!(verdict(3, 3, &limits), Verdict::Quiet);
        assert_eq!(verdict(10, 0, &limits), Verdict::Refuse);
        assert_eq!(verdict(10, 3, &limits), Verdict::Refuse);
    }
}

//! A user's new email address takes effect only when the link sent to it
//! is followed: a random token in the link, its SHA-256 in the database,
//! good once and for a day, and only while the address it replaces is
//! still the user's (a link followed after the address changed again is
//! refused).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::{Email, UserId};
use crate::people::accounts::escape_like;
use crate::people::password_resets::{self, digest};
use crate::schema::{accounts, email_changes, users};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// How long a link works.
pub const LIFETIME_HOURS: i64 = 24;

/// An address change that was asked for and waits for its link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub new_email: String,
    pub expires_at: DateTime<Utc>,
}

/// Records that `user` (whose address is now `from`) asked to use `to`;
/// returns the token for the link sent to `to`. Earlier requests stay
/// live: whichever link is followed first wins, and the others are then
/// refused because the address changed.
pub async fn request(
    conn: &mut AsyncPgConnection,
    user: UserId,
    from: &str,
    to: &Email,
) -> QueryResult<String> {
    let token = crate::keys::random_token();
    diesel::insert_into(email_changes::table)
        .values((
            email_changes::token_hash.eq(digest(&token)),
            email_changes::user_id.eq(user.0),
            email_changes::from_email.eq(from),
            email_changes::new_email.eq(to.as_str()),
            email_changes::expires_at.eq(Utc::now() + Duration::hours(LIFETIME_HOURS)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The newest live request of `user`, if any.
pub async fn pending(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Option<Pending>> {
    email_changes::table
        .filter(email_changes::user_id.eq(user.0))
        .filter(email_changes::used_at.is_null())
        .filter(email_changes::expires_at.gt(Utc::now()))
        .order(email_changes::created_at.desc())
        .select((email_changes::new_email, email_changes::expires_at))
        .first::<(String, DateTime<Utc>)>(conn)
        .await
        .optional()
        .map(|found| {
            found.map(|(new_email, expires_at)| Pending {
                new_email,
                expires_at,
            })
        })
}

/// A change that took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub user: UserId,
    pub username: String,
    pub from: String,
    pub to: String,
}

/// Why a link did not change the address; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("This link has expired or was used already; ask for a new one from your profile.")]
    Expired,
    #[error("Your email address has changed since this link was sent; it no longer works.")]
    AddressChanged,
    #[error("This address now belongs to another user; choose another from your profile.")]
    Taken,
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// Follows a link: the user's address becomes the new one (and their
/// account's contact address too, when it was the same as theirs). Links
/// to set a password sent to the old address stop working.
pub async fn confirm(conn: &mut AsyncPgConnection, token: &str) -> Result<Changed, ConfirmError> {
    let result = conn
        .transaction(async |conn| {
            let (user, from, to): (i64, String, String) = diesel::update(
                email_changes::table
                    .filter(email_changes::token_hash.eq(digest(token.trim())))
                    .filter(email_changes::expires_at.gt(Utc::now()))
                    .filter(email_changes::used_at.is_null()),
            )
            .set(email_changes::used_at.eq(Utc::now()))
            .returning((
                email_changes::user_id,
                email_changes::from_email,
                email_changes::new_email,
            ))
            .get_result(conn)
            .await
            .optional()?
            .ok_or(ConfirmError::Expired)?;
            let (current, username, disabled, account): (String, String, bool, Option<i64>) =
                users::table
                    .find(user)
                    .select((
                        users::email,
                        users::username,
                        users::disabled,
                        users::account_id,
                    ))
                    .for_update()
                    .first(conn)
                    .await?;
            if disabled {
                return Err(ConfirmError::Expired);
            }
            if current.to_lowercase() != from.to_lowercase() {
                return Err(ConfirmError::AddressChanged);
            }
            diesel::update(users::table.find(user))
                .set(users::email.eq(&to))
                .execute(conn)
                .await?;
            if let Some(account) = account {
                diesel::update(
                    accounts::table
                        .find(account)
                        .filter(accounts::email.ilike(escape_like(&current))),
                )
                .set(accounts::email.eq(&to))
                .execute(conn)
                .await?;
            }
            password_resets::cancel_all(conn, UserId(user)).await?;
            Ok(Changed {
                user: UserId(user),
                username,
                from: current,
                to,
            })
        })
        .await;
    match result {
        Err(ConfirmError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Err(ConfirmError::Taken),
        other => other,
    }
}

/// Whether another user has this address (in any case).
pub async fn taken_by_another(
    conn: &mut AsyncPgConnection,
    user: UserId,
    email: &Email,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table
            .filter(lower(users::email).eq(email.as_str().to_lowercase()))
            .filter(users::id.ne(user.0)),
    ))
    .get_result(conn)
    .await
}

/// Deletes requests whose link no longer works; returns how many.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(email_changes::table.filter(email_changes::expires_at.le(Utc::now())))
        .execute(conn)
        .await
}

//! Links to set a new password: sent by an admin (good for a day) or asked
//! for by someone who forgot theirs (good for an hour). A random token in
//! the link, its SHA-256 in the database, good once.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use crate::domain::UserId;
use crate::people::users::{self, CreateUserError};
use crate::schema::{password_resets, users as users_table};

/// How long a link an admin sends works.
pub const LIFETIME_HOURS: i64 = 24;

/// How long a link asked for with "Forgot your password?" works.
pub const RECOVERY_LIFETIME_HOURS: i64 = 1;

pub(crate) fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new link's token for `user`, working for `hours`; earlier links of
/// theirs stop working.
pub async fn create(conn: &mut AsyncPgConnection, user: UserId, hours: i64) -> QueryResult<String> {
    let token = crate::keys::random_token();
    diesel::delete(password_resets::table.filter(password_resets::user_id.eq(user.0)))
        .execute(conn)
        .await?;
    diesel::insert_into(password_resets::table)
        .values((
            password_resets::token_hash.eq(digest(&token)),
            password_resets::user_id.eq(user.0),
            password_resets::expires_at.eq(Utc::now() + Duration::hours(hours)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The user a live link is for, with their username, without using it.
pub async fn find(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> QueryResult<Option<(UserId, String)>> {
    password_resets::table
        .inner_join(users_table::table)
        .filter(password_resets::token_hash.eq(digest(token)))
        .filter(password_resets::expires_at.gt(Utc::now()))
        .filter(password_resets::used_at.is_null())
        .filter(users_table::disabled.eq(false))
        .select((users_table::id, users_table::username))
        .first::<(i64, String)>(conn)
        .await
        .optional()
        .map(|found| found.map(|(id, name)| (UserId(id), name)))
}

/// Why a link did not set a password.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("This link has expired or was used already; ask for a new one.")]
    Expired,
    #[error("This link is for another user: open the link from your own email.")]
    OtherUser,
    #[error("The new password {0}.")]
    Weak(&'static str),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Ends every live link of `user` (their email address changed: links
/// sent to the old one must not work).
pub async fn cancel_all(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<usize> {
    diesel::delete(password_resets::table.filter(password_resets::user_id.eq(user.0)))
        .execute(conn)
        .await
}

/// Sets the password a live link is for, once; every session of the user
/// ends. With `username` (the link names its user, and the form sends it
/// back), a link for another user is refused and stays unused. Returns the
/// user.
pub async fn redeem(
    conn: &mut AsyncPgConnection,
    token: &str,
    username: Option<&str>,
    password: &str,
) -> Result<UserId, ResetError> {
    crate::people::passwords::check_strength(password).map_err(ResetError::Weak)?;
    conn.transaction(async |conn| {
        let user: i64 = diesel::update(
            password_resets::table
                .filter(password_resets::token_hash.eq(digest(token)))
                .filter(password_resets::expires_at.gt(Utc::now()))
                .filter(password_resets::used_at.is_null()),
        )
        .set(password_resets::used_at.eq(Utc::now()))
        .returning(password_resets::user_id)
        .get_result(conn)
        .await
        .optional()?
        .ok_or(ResetError::Expired)?;
        let (disabled, owner): (bool, String) = users_table::table
            .find(user)
            .select((users_table::disabled, users_table::username))
            .first(conn)
            .await?;
        if disabled {
            return Err(ResetError::Expired);
        }
        // Returning the error rolls the use of the link back.
        if username.is_some_and(|named| !named.trim().eq_ignore_ascii_case(&owner)) {
            return Err(ResetError::OtherUser);
        }
        users::set_password(conn, UserId(user), password, false)
            .await
            .map_err(|e| match e {
                CreateUserError::Invalid(why) => ResetError::Weak(why),
                CreateUserError::Database(e) => ResetError::Database(e),
                other => ResetError::Database(diesel::result::Error::QueryBuilderError(
                    other.to_string().into(),
                )),
            })?;
        crate::people::sessions::end_all_for_user(conn, UserId(user), None).await?;
        Ok(UserId(user))
    })
    .await
}

//! Users: who signs in.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::{AccountId, Email, Role, UserId, Username};
use crate::people::passwords;
use crate::schema::users;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// A user as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub account_id: Option<i64>,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn id(&self) -> UserId {
        UserId(self.id)
    }

    /// The stored role; an unknown one is treated as the weakest.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Client)
    }

    pub fn account(&self) -> Option<AccountId> {
        self.account_id.map(AccountId)
    }
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: String,
    pub role: Role,
    pub account: Option<AccountId>,
    pub must_change_password: bool,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    UsernameTaken,
    #[error("a user with this email exists")]
    EmailTaken,
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// Creates a user, hashing the password off the async threads.
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewUser,
) -> Result<UserId, CreateUserError> {
    passwords::check_strength(&new.password).map_err(CreateUserError::Invalid)?;
    if new.role.is_company() != new.account.is_none() {
        return Err(CreateUserError::Invalid(
            "clients and resellers belong to an account; staff and admins do not",
        ));
    }
    let hash = passwords::hash_blocking(new.password.clone()).await;
    let inserted = diesel::insert_into(users::table)
        .values((
            users::username.eq(new.username.as_str()),
            users::email.eq(new.email.as_str()),
            users::password_hash.eq(hash),
            users::role.eq(new.role.as_str()),
            users::account_id.eq(new.account.map(|a| a.0)),
            users::must_change_password.eq(new.must_change_password),
        ))
        .returning(users::id)
        .get_result(conn)
        .await;
    match inserted {
        Ok(id) => Ok(UserId(id)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            match info.constraint_name() {
                Some("users_email_key") => Err(CreateUserError::EmailTaken),
                _ => Err(CreateUserError::UsernameTaken),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Finds a user by username, in any case.
pub async fn find_by_username(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::username).eq(username.trim().to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// One user by id.
pub async fn get(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Option<User>> {
    users::table
        .find(id.0)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// The users of an account.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::account_id.eq(account.0))
        .order(users::id)
        .select(User::as_select())
        .load(conn)
        .await
}

/// Sets a new password; `must_change` asks for another at the next sign-in.
pub async fn set_password(
    conn: &mut AsyncPgConnection,
    id: UserId,
    password: &str,
    must_change: bool,
) -> Result<(), CreateUserError> {
    passwords::check_strength(password).map_err(CreateUserError::Invalid)?;
    let hash = passwords::hash_blocking(password.to_owned()).await;
    diesel::update(users::table.find(id.0))
        .set((
            users::password_hash.eq(hash),
            users::must_change_password.eq(must_change),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether anyone can sign in to the staff section yet.
pub async fn company_user_exists(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(
        users::role.eq_any([Role::Staff.as_str(), Role::Admin.as_str()]),
    )))
    .get_result(conn)
    .await
}

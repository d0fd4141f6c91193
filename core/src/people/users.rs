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
    /// Two-factor sign-in is on.
    pub totp_enabled: bool,
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

/// The company's people (staff and admins), by username.
pub async fn company(conn: &mut AsyncPgConnection) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::role.eq_any([Role::Staff.as_str(), Role::Admin.as_str()]))
        .order(lower(users::username))
        .select(User::as_select())
        .load(conn)
        .await
}

/// The staff member or admin with this email (in any case), enabled or not:
/// how an OpenID provider's verified email finds its user.
pub async fn company_user_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::email).eq(email.trim().to_lowercase()))
        .filter(users::role.eq_any([Role::Staff.as_str(), Role::Admin.as_str()]))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// Why a change to a staff member was refused.
#[derive(Debug, thiserror::Error)]
pub enum StaffChangeError {
    #[error("No staff member {0}.")]
    NotFound(i64),
    #[error("Admins cannot disable themselves or take away their own admin role.")]
    Oneself,
    #[error("At least one enabled admin must remain.")]
    LastAdmin,
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// Disables or re-enables a staff member or admin, or gives them another
/// company role; returns them as they were and as they are. Disabling ends
/// every session they have. An admin cannot do either to themselves, and
/// the last enabled admin stays one, so the company is never locked out.
pub async fn change_staff(
    conn: &mut AsyncPgConnection,
    by: UserId,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<(User, User), StaffChangeError> {
    use diesel_async::AsyncConnection;
    conn.transaction(async |conn| {
        // One change to the admins at a time: two admins demoting each
        // other at once must not both succeed.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('staff:admins'))")
            .execute(conn)
            .await?;
        let before = users::table
            .find(id)
            .filter(users::role.eq_any([Role::Staff.as_str(), Role::Admin.as_str()]))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(StaffChangeError::NotFound(id))?;
        let role = role.filter(|r| r.is_company()).unwrap_or(before.role());
        let disabled = disabled.unwrap_or(before.disabled);
        let stays_admin = role == Role::Admin && !disabled;
        if before.role() == Role::Admin && !before.disabled && !stays_admin {
            if UserId(id) == by {
                return Err(StaffChangeError::Oneself);
            }
            let admins: i64 = users::table
                .filter(users::role.eq(Role::Admin.as_str()))
                .filter(users::disabled.eq(false))
                .count()
                .get_result(conn)
                .await?;
            if admins <= 1 {
                return Err(StaffChangeError::LastAdmin);
            }
        }
        if disabled && UserId(id) == by {
            return Err(StaffChangeError::Oneself);
        }
        let after = diesel::update(users::table.find(id))
            .set((users::role.eq(role.as_str()), users::disabled.eq(disabled)))
            .returning(User::as_returning())
            .get_result(conn)
            .await?;
        if disabled {
            diesel::delete(
                crate::schema::sessions::table.filter(crate::schema::sessions::user_id.eq(id)),
            )
            .execute(conn)
            .await?;
        }
        Ok((before, after))
    })
    .await
}

/// Whether anyone can sign in to the staff section yet.
pub async fn company_user_exists(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(
        users::role.eq_any([Role::Staff.as_str(), Role::Admin.as_str()]),
    )))
    .get_result(conn)
    .await
}

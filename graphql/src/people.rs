//! People: editing accounts, staff users and their roles, portal passwords
//! set by an admin, revealing a PBX's GUI password, and two-factor sign-in.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Change};
use switchboard_core::domain::Email;
use switchboard_core::people::accounts::{self, AccountEdit, EditError};
use switchboard_core::people::sign_in::{self, Limits, Purpose, SignInError};
use switchboard_core::people::users::{self, CreateUserError, NewUser, StaffChangeError, User};
use switchboard_core::people::{password_resets, sessions, two_factor};
use switchboard_core::{commerce::pbxes, db, outbox, AccountId, Role, UserId, Username};

use crate::commerce::{commerce, field_errors};
use crate::guards::{self, Allow, AllowBeforeTwoFactor, ADMIN, SIGNED_IN, STAFF};
use crate::mutation::actor;
use crate::types::{parse_id, Account};
use crate::{internal, pool};

/// A user as staff see them: never a password.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserProfile {
    pub id: ID,
    pub username: String,
    pub email: String,
    pub role: crate::types::Role,
    pub disabled: bool,
    /// Must choose a new password at the next sign-in.
    pub must_change_password: bool,
    /// Signs in with a second factor.
    pub two_factor: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl From<User> for UserProfile {
    fn from(user: User) -> UserProfile {
        UserProfile {
            id: ID(user.id.to_string()),
            role: user.role().into(),
            username: user.username,
            email: user.email,
            disabled: user.disabled,
            must_change_password: user.must_change_password,
            two_factor: user.totp_enabled,
            created_at: user.created_at,
            last_sign_in_at: user.last_sign_in_at,
        }
    }
}

/// A company role.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffRole {
    Staff,
    Admin,
}

impl From<StaffRole> for Role {
    fn from(role: StaffRole) -> Role {
        match role {
            StaffRole::Staff => Role::Staff,
            StaffRole::Admin => Role::Admin,
        }
    }
}

/// An account's details as an admin sets them; every field is given.
#[derive(InputObject)]
pub struct AccountInput {
    pub name: String,
    pub kind: crate::types::AccountKind,
    pub contact_name: String,
    #[graphql(default)]
    pub company: String,
    pub email: String,
    #[graphql(default)]
    pub phone: String,
    #[graphql(default)]
    pub address: String,
    /// Decimal, in the account's currency: how far below zero it may go.
    pub credit_limit: String,
    /// Decimal, in the account's currency: below this the client is told.
    pub low_balance_threshold: String,
    /// The calling plan its PBXs' calls are billed with, over their plans';
    /// null bills with the plans'.
    pub calling_plan_id: Option<ID>,
}

/// A new staff member or admin.
#[derive(InputObject)]
pub struct StaffUserInput {
    pub username: String,
    pub email: String,
    pub role: StaffRole,
    /// A one-time password to hand over; without one, a link to set a
    /// password is emailed.
    pub one_time_password: Option<String>,
}

/// Whether the viewer signs in with a second factor.
#[derive(SimpleObject, Clone, Debug)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    /// A secret was made and waits for its first code.
    pub pending: bool,
    pub recovery_codes_left: i32,
    /// Admins must have it on (in production); they cannot turn it off.
    pub required: bool,
}

/// What an authenticator app needs to start showing codes.
#[derive(SimpleObject, Clone, Debug)]
pub struct TwoFactorSetup {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    /// The `otpauth://` address a QR code carries.
    pub otpauth_uri: String,
}

pub(crate) fn two_factor_required(ctx: &Context<'_>, role: Role) -> bool {
    role == Role::Admin
        && ctx
            .data_opt::<crate::Commerce>()
            .is_some_and(|c| c.settings.mode == switchboard_core::config::Mode::Production)
}

/// People's reads.
#[derive(Default)]
pub struct PeopleQuery;

#[Object]
impl PeopleQuery {
    /// The company's staff members and admins, by username, for admins.
    #[graphql(
        guard = "Allow(ADMIN)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn staff_users(&self, ctx: &Context<'_>) -> Result<Vec<UserProfile>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(users::company(&mut conn)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Whether the viewer signs in with a second factor.
    #[graphql(guard = "AllowBeforeTwoFactor(SIGNED_IN)")]
    async fn two_factor(&self, ctx: &Context<'_>) -> Result<TwoFactorStatus> {
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let status = two_factor::status(&mut conn, user.user_id)
            .await
            .map_err(internal)?;
        Ok(TwoFactorStatus {
            enabled: status.enabled,
            pending: status.pending,
            recovery_codes_left: status.recovery_codes_left as i32,
            required: two_factor_required(ctx, user.role),
        })
    }
}

/// People's changes.
#[derive(Default)]
pub struct PeopleMutation;

#[Object]
impl PeopleMutation {
    /// Changes an account's details, kind, limits and calling plan; the
    /// audit log keeps them as they were and as they became.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn update_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AccountInput,
    ) -> Result<Account> {
        let id = AccountId(parse_id(&id)?);
        let edit = AccountEdit {
            name: input.name,
            kind: match input.kind {
                crate::types::AccountKind::Retail => "retail",
                crate::types::AccountKind::Wholesale => "wholesale",
            }
            .into(),
            contact_name: input.contact_name,
            company: input.company,
            email: input.email,
            phone: input.phone,
            address: input.address,
            credit_limit: input.credit_limit,
            low_balance_threshold: input.low_balance_threshold,
            calling_plan_id: input.calling_plan_id.map(|i| i.0).unwrap_or_default(),
        };
        let checked = edit.check().map_err(|e| field_errors(&e))?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let (before, after) = accounts::update(conn, id, &checked).await?;
            audit::record_change(
                conn,
                &actor,
                "account.update",
                &format!("account:{id}"),
                "",
                &Change::from_to(before.for_audit(), after.for_audit()),
            )
            .await?;
            Ok::<_, EditError>(())
        })
        .await
        .map_err(|e| match e {
            EditError::Invalid(errors) => field_errors(&errors),
            EditError::NotFound(id) => format!("No account {id}.").into(),
            other => internal(other),
        })?;
        let (row, balance) = accounts::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No account {id}."))?;
        Ok(Account::new(row, balance))
    }

    /// Turns an account off, with a reason its users see: its PBXs stop
    /// calling and are powered off, recurring charges pause, and standing
    /// no longer moves its PBXs until an admin turns it on again.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn turn_account_off(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        reason: String,
    ) -> Result<Account> {
        switch_account(ctx, account_id, reason, true).await
    }

    /// Turns an account on again: its PBXs are powered on and calling
    /// resumed as its standing allows, and standing applies again.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn turn_account_on(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        reason: String,
    ) -> Result<Account> {
        switch_account(ctx, account_id, reason, false).await
    }

    /// Gives a user a one-time password, to be replaced at their next
    /// sign-in; their sessions end. The password is never shown again.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn set_one_time_password(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        password: String,
    ) -> Result<bool> {
        let id = UserId(parse_id(&user_id)?);
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        users::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No user {id}."))?;
        conn.transaction(async |conn| {
            users::set_password(conn, id, &password, true).await?;
            sessions::end_all_for_user(conn, id, None).await?;
            audit::record_change(
                conn,
                &actor,
                "user.set_one_time_password",
                &format!("user:{id}"),
                "",
                &Change::from_to(
                    serde_json::json!({ "must_change_password": false }),
                    serde_json::json!({ "must_change_password": true }),
                ),
            )
            .await?;
            Ok::<_, CreateUserError>(())
        })
        .await
        .map_err(|e| match e {
            CreateUserError::Invalid(why) => format!("The password {why}.").into(),
            other => internal(other),
        })?;
        Ok(true)
    }

    /// Emails a user a link to set a new password (good once, for a day);
    /// earlier links stop working.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn send_password_reset(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let id = UserId(parse_id(&user_id)?);
        let commerce = commerce(ctx)?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let user = users::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No user {id}."))?;
        if user.disabled {
            return Err("This user is disabled: enable them first.".into());
        }
        send_reset_link(&mut conn, commerce, &actor, &user).await?;
        Ok(true)
    }

    /// Sets a new password with the token of a link an admin sent or one
    /// asked for with requestPasswordRecovery; every session of the user
    /// ends. With `username` (the link names it), a link for another user
    /// is refused.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
        username: Option<String>,
    ) -> Result<bool> {
        let viewer = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let user = password_resets::redeem(
                conn,
                token.trim(),
                username.as_deref().filter(|u| !u.trim().is_empty()),
                &new_password,
            )
            .await?;
            // Anonymous, the link's owner acts; signed in, whoever is.
            let actor = match viewer.user_id {
                Some(_) => viewer.clone(),
                None => audit::Actor {
                    user_id: Some(user),
                    label: format!("user {user} by a reset link"),
                    ip: viewer.ip.clone(),
                },
            };
            audit::record(
                conn,
                &actor,
                "user.reset_password",
                &format!("user:{user}"),
                "",
            )
            .await?;
            Ok::<_, password_resets::ResetError>(())
        })
        .await
        .map_err(|e| match e {
            password_resets::ResetError::Database(e) => internal(e),
            refusal => refusal.to_string().into(),
        })?;
        Ok(true)
    }

    /// Shows a PBX's GUI administrator password to staff who type their own
    /// password again. Every reveal, and every refusal, is audited with
    /// who, when, which PBX and from where.
    #[graphql(guard = "Allow(STAFF)")]
    async fn reveal_pbx_password(
        &self,
        ctx: &Context<'_>,
        pbx_id: ID,
        password: String,
    ) -> Result<String> {
        let id = parse_id(&pbx_id)?;
        let user = guards::user(ctx)?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let pbx = pbxes::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No PBX {id}."))?;
        drop(conn);
        let checked = sign_in::sign_in(
            pool(ctx)?,
            &user.username,
            &password,
            &actor.ip,
            *ctx.data::<Limits>()?,
            Purpose::Reauthenticate,
        )
        .await;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let subject = format!("pbx:{id}");
        if let Err(refusal) = checked {
            let why = match &refusal {
                SignInError::Refused => "wrong password",
                SignInError::Throttled { .. } => "too many attempts",
                _ => return Err(internal(refusal)),
            };
            audit::record(
                &mut conn,
                &actor,
                "pbx.reveal_password_refused",
                &subject,
                why,
            )
            .await
            .map_err(internal)?;
            return Err(match refusal {
                SignInError::Refused => "Your password is wrong; nothing was revealed.".into(),
                other => other.to_string().into(),
            });
        }
        let revealed = commerce(ctx)?
            .key
            .decrypt(pbxes::GUI_PASSWORD, &pbx.gui_password_sealed)
            .map_err(internal)?;
        audit::record(&mut conn, &actor, "pbx.reveal_password", &subject, "")
            .await
            .map_err(internal)?;
        Ok(revealed)
    }

    /// Adds a staff member or admin. With a one-time password they sign in
    /// with it and choose their own; without one, they get an emailed link.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn create_staff_user(
        &self,
        ctx: &Context<'_>,
        input: StaffUserInput,
    ) -> Result<UserProfile> {
        let commerce = commerce(ctx)?;
        let actor = actor(ctx);
        let mut errors = switchboard_core::forms::FieldErrors::default();
        let username = Username::parse(&input.username);
        if let Err(why) = &username {
            errors.add("username", why);
        }
        let email = Email::parse(&input.email);
        if let Err(why) = &email {
            errors.add("email", why);
        }
        let one_time = input.one_time_password.filter(|p| !p.is_empty());
        if let Some(Err(why)) = one_time
            .as_deref()
            .map(switchboard_core::people::passwords::check_strength)
        {
            errors.add("one_time_password", why);
        }
        let (Ok(username), Ok(email)) = (username, email) else {
            return Err(field_errors(&errors));
        };
        if !errors.is_empty() {
            return Err(field_errors(&errors));
        }
        let role: Role = input.role.into();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let user = conn
            .transaction(async |conn| {
                let sends_link = one_time.is_none();
                let id = users::create(
                    conn,
                    &NewUser {
                        username,
                        email,
                        // Nobody knows this one: a link sets the real one.
                        password: one_time
                            .clone()
                            .unwrap_or_else(switchboard_core::people::passwords::generate),
                        role,
                        account: None,
                        must_change_password: !sends_link,
                    },
                )
                .await?;
                let user = users::get(conn, id)
                    .await?
                    .ok_or(CreateUserError::Invalid("vanished"))?;
                audit::record_change(
                    conn,
                    &actor,
                    "user.create_staff",
                    &format!("user:{id}"),
                    "",
                    &Change::created(serde_json::json!({
                        "username": user.username,
                        "email": user.email,
                        "role": user.role,
                    })),
                )
                .await?;
                Ok::<_, CreateUserError>((user, sends_link))
            })
            .await
            .map_err(|e| {
                let mut errors = switchboard_core::forms::FieldErrors::default();
                match e {
                    CreateUserError::UsernameTaken => errors.add("username", "is taken"),
                    CreateUserError::EmailTaken => errors.add("email", "belongs to another user"),
                    CreateUserError::Invalid(why) => errors.add("one_time_password", why),
                    other => return internal(other),
                }
                field_errors(&errors)
            })?;
        let (user, sends_link) = user;
        if sends_link {
            send_reset_link(&mut conn, commerce, &actor, &user).await?;
        }
        Ok(user.into())
    }

    /// Changes a staff member's role, or disables or re-enables them;
    /// disabling ends their sessions at once. Nobody disables or demotes
    /// themselves, and the last admin stays one.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn update_staff_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role: Option<StaffRole>,
        disabled: Option<bool>,
    ) -> Result<UserProfile> {
        let id = parse_id(&user_id)?;
        let by = guards::user(ctx)?.user_id;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let after = conn
            .transaction(async |conn| {
                let (before, after) =
                    users::change_staff(conn, by, id, role.map(Into::into), disabled).await?;
                let action = match (before.disabled, after.disabled) {
                    (false, true) => "user.disable",
                    (true, false) => "user.enable",
                    _ => "user.set_role",
                };
                let state =
                    |u: &User| serde_json::json!({ "role": u.role, "disabled": u.disabled });
                audit::record_change(
                    conn,
                    &actor,
                    action,
                    &format!("user:{id}"),
                    "",
                    &Change::from_to(state(&before), state(&after)),
                )
                .await?;
                Ok::<_, StaffChangeError>(after)
            })
            .await
            .map_err(|e| match e {
                StaffChangeError::Database(e) => internal(e),
                refusal => refusal.to_string().into(),
            })?;
        Ok(after.into())
    }

    /// Starts turning two-factor sign-in on for the viewer: a new secret for
    /// an authenticator app, which a first code confirms.
    #[graphql(guard = "AllowBeforeTwoFactor(SIGNED_IN)")]
    async fn start_two_factor(&self, ctx: &Context<'_>) -> Result<TwoFactorSetup> {
        let user = guards::user(ctx)?;
        let commerce = commerce(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let secret = conn
            .transaction(async |conn| {
                let secret = two_factor::start(conn, &commerce.key, user.user_id).await?;
                if secret.is_some() {
                    audit::record(
                        conn,
                        &actor(ctx),
                        "user.two_factor_start",
                        &format!("user:{}", user.user_id),
                        "",
                    )
                    .await?;
                }
                Ok::<_, diesel::result::Error>(secret)
            })
            .await
            .map_err(internal)?
            .ok_or("Two-factor sign-in is on already: turn it off first to use another phone.")?;
        Ok(TwoFactorSetup {
            secret: two_factor::base32(&secret),
            otpauth_uri: two_factor::otpauth_uri("Switchboard", &user.username, &secret),
        })
    }

    /// Turns two-factor sign-in on with a first code from the app; returns
    /// the recovery codes, shown this once.
    #[graphql(guard = "AllowBeforeTwoFactor(SIGNED_IN)")]
    async fn confirm_two_factor(&self, ctx: &Context<'_>, code: String) -> Result<Vec<String>> {
        let user = guards::user(ctx)?;
        let commerce = commerce(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let codes = two_factor::confirm(&mut conn, &commerce.key, user.user_id, &code, Utc::now())
            .await
            .map_err(|e| match e {
                two_factor::CodeError::Wrong => async_graphql::Error::new(
                    "That code is not right: type the one the app shows now.",
                ),
                two_factor::CodeError::NotStarted => {
                    "Start setting two-factor sign-in up first.".into()
                }
                other => internal(other),
            })?;
        audit::record(
            &mut conn,
            &actor(ctx),
            "user.two_factor_on",
            &format!("user:{}", user.user_id),
            "",
        )
        .await
        .map_err(internal)?;
        Ok(codes)
    }

    /// New recovery codes for the viewer (the old ones stop working), after
    /// their password.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn new_recovery_codes(&self, ctx: &Context<'_>, password: String) -> Result<Vec<String>> {
        let user = reauthenticate(ctx, &password).await?;
        if !user.totp_enabled {
            return Err("Two-factor sign-in is off: there are no recovery codes.".into());
        }
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let codes = two_factor::replace_recovery_codes(conn, user.id()).await?;
            audit::record(
                conn,
                &actor(ctx),
                "user.recovery_codes",
                &format!("user:{}", user.id),
                "",
            )
            .await?;
            Ok::<_, diesel::result::Error>(codes)
        })
        .await
        .map_err(internal)
    }

    /// Turns two-factor sign-in off for the viewer, after their password.
    /// Admins keep it on where it is required.
    #[graphql(guard = "AllowBeforeTwoFactor(SIGNED_IN)")]
    async fn turn_off_two_factor(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let viewer = guards::user(ctx)?;
        if two_factor_required(ctx, viewer.role) {
            return Err("Admins must sign in with two factors here; it stays on.".into());
        }
        let user = reauthenticate(ctx, &password).await?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            two_factor::turn_off(conn, user.id()).await?;
            audit::record(
                conn,
                &actor(ctx),
                "user.two_factor_off",
                &format!("user:{}", user.id),
                "",
            )
            .await
        })
        .await
        .map_err(internal)?;
        Ok(true)
    }
}

/// What [`reauthenticate`] says of a wrong password.
pub(crate) const WRONG_PASSWORD: &str = "Your password is wrong.";
/// Turns an account off (`off`) or on, audited with the reason in the same
/// transaction.
async fn switch_account(
    ctx: &Context<'_>,
    account_id: ID,
    reason: String,
    off: bool,
) -> Result<Account> {
    use switchboard_core::standing::switch::{self, SwitchError};
    let id = AccountId(parse_id(&account_id)?);
    let base_url = commerce(ctx)?.settings.base_url().to_owned();
    let actor = actor(ctx);
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    conn.transaction(async |conn| {
        let now = Utc::now();
        let (before, after) = if off {
            switch::turn_off(conn, id, &reason, &base_url, now).await?
        } else {
            switch::turn_on(conn, id, &reason, &base_url, now).await?
        };
        audit::record_change(
            conn,
            &actor,
            if off {
                "account.turn_off"
            } else {
                "account.turn_on"
            },
            &format!("account:{id}"),
            reason.trim(),
            &Change::from_to(switch::for_audit(&before), switch::for_audit(&after)),
        )
        .await?;
        Ok::<_, SwitchError>(())
    })
    .await
    .map_err(|e| match e {
        SwitchError::Database(e) => internal(e),
        refusal => refusal.to_string().into(),
    })?;
    let (row, balance) = accounts::get(&mut conn, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| format!("No account {id}."))?;
    Ok(Account::new(row, balance))
}

/// The viewer, after checking their password again against the sign-in limits.
pub(crate) async fn reauthenticate(ctx: &Context<'_>, password: &str) -> Result<User> {
    let user = guards::user(ctx)?;
    sign_in::sign_in(
        pool(ctx)?,
        &user.username,
        password,
        &actor(ctx).ip,
        *ctx.data::<Limits>()?,
        Purpose::Reauthenticate,
    )
    .await
    .map_err(|e| match e {
        SignInError::Refused => WRONG_PASSWORD.into(),
        throttled @ SignInError::Throttled { .. } => throttled.to_string().into(),
        other => internal(other),
    })
}

/// Queues a sealed email with a new link to set a password, and audits it.
async fn send_reset_link(
    conn: &mut diesel_async::AsyncPgConnection,
    commerce: &crate::Commerce,
    actor: &audit::Actor,
    user: &User,
) -> Result<()> {
    conn.transaction(async |conn| {
        let token =
            password_resets::create(conn, user.id(), password_resets::LIFETIME_HOURS).await?;
        let link = reset_link(commerce, &token, &user.username);
        let email = outbox::password_reset(
            &user.email,
            &user.username,
            &link,
            password_resets::LIFETIME_HOURS,
        );
        outbox::queue_sealed(conn, &commerce.key, &email, None).await?;
        audit::record(
            conn,
            actor,
            "user.send_password_reset",
            &format!("user:{}", user.id),
            &user.email,
        )
        .await
    })
    .await
    .map_err(internal)
}

/// The address of a link to set a password: the token, and the username
/// the form shows and sends back.
pub(crate) fn reset_link(commerce: &crate::Commerce, token: &str, username: &str) -> String {
    format!(
        "{}/password/reset?token={token}&user={username}",
        commerce.settings.base_url()
    )
}

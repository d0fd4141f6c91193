//! What clients change themselves: their account's profile, their email
//! address (through a link sent to the new one), and a forgotten password
//! (through a link sent to their address). Each acts on the viewer's own
//! user and account only; none takes an id.

use async_graphql::{Context, InputObject, Object, Result};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Change};
use switchboard_core::domain::Email;
use switchboard_core::forms::FieldErrors;
use switchboard_core::people::accounts::{self, ProfileEdit};
use switchboard_core::people::email_changes::{self, ConfirmError};
use switchboard_core::people::recovery::{self, Recovery, RecoveryError, RecoveryLimits};
use switchboard_core::people::{password_resets, users};
use switchboard_core::{db, outbox};

use crate::commerce::{commerce, field_errors};
use crate::guards::{self, Allow, CUSTOMERS};
use crate::mutation::actor;
use crate::types::Account;
use crate::{internal, pool};

/// The details a client keeps up themselves.
#[derive(InputObject)]
pub struct ProfileInput {
    /// The person to contact about the account.
    pub contact_name: String,
    #[graphql(default)]
    pub company: String,
    #[graphql(default)]
    pub phone: String,
    #[graphql(default)]
    pub address: String,
    /// An IANA time zone (`Europe/London`): reports and statements use it.
    pub time_zone: String,
}

/// Clients' own changes.
#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// Sets the contact name, company, phone, address and time zone of the
    /// viewer's own account. Every field is checked at once; nothing is
    /// saved while one is wrong.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn update_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> Result<Account> {
        let user = guards::user(ctx)?;
        let id = user.account_id.ok_or("Your user belongs to no account.")?;
        let profile = ProfileEdit {
            contact_name: input.contact_name,
            company: input.company,
            phone: input.phone,
            address: input.address,
            time_zone: input.time_zone,
        }
        .check()
        .map_err(|e| field_errors(&e))?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let updated = conn
            .transaction(async |conn| {
                let Some((before, after)) = accounts::update_profile(conn, id, &profile).await?
                else {
                    return Ok(false);
                };
                audit::record_change(
                    conn,
                    &actor,
                    "account.update_profile",
                    &format!("account:{id}"),
                    "",
                    &Change::from_to(before.for_audit(), after.for_audit()),
                )
                .await?;
                Ok::<_, diesel::result::Error>(true)
            })
            .await
            .map_err(internal)?;
        if !updated {
            return Err("Your user belongs to no account.".into());
        }
        let (row, balance) = accounts::get(&mut conn, id)
            .await
            .map_err(internal)?
            .ok_or("Your user belongs to no account.")?;
        Ok(Account::new(row, balance))
    }

    /// Sends a link to `newEmail`; the viewer's address changes only when
    /// it is followed (confirmEmailChange). Needs the current password,
    /// counted against the sign-in limits: an address is how a password is
    /// recovered.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn request_email_change(
        &self,
        ctx: &Context<'_>,
        new_email: String,
        current_password: String,
    ) -> Result<bool> {
        let viewer = guards::user(ctx)?;
        let new_email = Email::parse(&new_email).map_err(|why| one_field("new_email", why))?;
        let commerce = commerce(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let current = users::get(&mut conn, viewer.user_id)
            .await
            .map_err(internal)?
            .ok_or("Sign in first.")?;
        if current.email.to_lowercase() == new_email.as_str().to_lowercase() {
            return Err(one_field("new_email", "is your address already"));
        }
        drop(conn);
        crate::people::reauthenticate(ctx, &current_password)
            .await
            .map_err(|e| {
                if e.message == crate::people::WRONG_PASSWORD {
                    one_field("current_password", "is wrong")
                } else {
                    e
                }
            })?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            // The answer is the same either way: whether another user has
            // an address is for its owner to learn, by email.
            if email_changes::taken_by_another(conn, viewer.user_id, &new_email).await? {
                outbox::queue(
                    conn,
                    &outbox::email_change_to_taken_address(new_email.as_str()),
                    None,
                )
                .await?;
            } else {
                let token =
                    email_changes::request(conn, viewer.user_id, &current.email, &new_email)
                        .await?;
                let link = format!(
                    "{}/account/email/confirm?token={token}",
                    commerce.settings.base_url()
                );
                let email = outbox::email_change_link(
                    new_email.as_str(),
                    &current.username,
                    &link,
                    email_changes::LIFETIME_HOURS,
                );
                outbox::queue_sealed(conn, &commerce.key, &email, None).await?;
            }
            audit::record(
                conn,
                &actor,
                "user.request_email_change",
                &format!("user:{}", viewer.user_id),
                new_email.as_str(),
            )
            .await
        })
        .await
        .map_err(internal)?;
        Ok(true)
    }

    /// Follows the link sent to a new address: it becomes the user's (and
    /// their account's contact address, when that was theirs). Refused when
    /// the link is used, expired, or the address changed since it was sent.
    async fn confirm_email_change(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        let viewer = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let changed = email_changes::confirm(conn, &token).await?;
            // Anonymous, the link's owner acts; signed in, whoever is.
            let actor = match viewer.user_id {
                Some(_) => viewer.clone(),
                None => audit::Actor {
                    user_id: Some(changed.user),
                    label: format!("{} by an email link", changed.username),
                    ip: viewer.ip.clone(),
                },
            };
            audit::record_change(
                conn,
                &actor,
                "user.change_email",
                &format!("user:{}", changed.user),
                "",
                &Change::from_to(
                    serde_json::json!({ "email": changed.from }),
                    serde_json::json!({ "email": changed.to }),
                ),
            )
            .await?;
            outbox::queue(
                conn,
                &outbox::email_changed(&changed.from, &changed.username, &changed.to),
                None,
            )
            .await?;
            Ok::<_, ConfirmError>(())
        })
        .await
        .map_err(|e| match e {
            ConfirmError::Database(e) => internal(e),
            refusal => refusal.to_string().into(),
        })?;
        Ok(true)
    }

    /// "Forgot your password?": emails the user a username or address names
    /// a link to set a new password (good once, for an hour). The answer is
    /// the same whether it names anyone; only too many requests from one
    /// address are refused.
    async fn request_password_recovery(&self, ctx: &Context<'_>, login: String) -> Result<bool> {
        let login = login.trim();
        if login.is_empty() || login.chars().count() > 254 {
            return Err(one_field(
                "login",
                "must be your username or your email address",
            ));
        }
        let commerce = commerce(ctx)?;
        let actor = actor(ctx);
        let limits = ctx
            .data_opt::<RecoveryLimits>()
            .copied()
            .unwrap_or_default();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let recovery = recovery::request(conn, login, &actor.ip, limits).await?;
            let subject = match &recovery {
                Recovery::Link { user, token } => {
                    let link = crate::people::reset_link(commerce, token, &user.username);
                    let email = outbox::password_recovery(
                        &user.email,
                        &user.username,
                        &link,
                        password_resets::RECOVERY_LIFETIME_HOURS,
                    );
                    outbox::queue_sealed(conn, &commerce.key, &email, None).await?;
                    Some(format!("user:{}", user.id))
                }
                Recovery::Nothing => None,
            };
            // Who asked is recorded when it names someone or someone signed
            // in asked; anonymous guesses at names are not.
            if subject.is_some() || actor.user_id.is_some() {
                audit::record(
                    conn,
                    &actor,
                    "user.request_password_recovery",
                    subject.as_deref().unwrap_or(""),
                    "",
                )
                .await?;
            }
            Ok::<_, RecoveryError>(())
        })
        .await
        .map_err(|e| match e {
            RecoveryError::Database(e) => internal(e),
            refusal => refusal.to_string().into(),
        })?;
        Ok(true)
    }
}

fn one_field(field: &str, message: &str) -> async_graphql::Error {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    field_errors(&errors)
}

//! Changing.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use diesel_async::AsyncConnection;
use switchboard_core::audit::{self, Actor};
use switchboard_core::money::ledger::{self, LedgerError, Posted};
use switchboard_core::people::sign_in::{self, Limits, Purpose, SignInError};
use switchboard_core::people::users::{self, CreateUserError};
use switchboard_core::{db, outbox, people::accounts, people::sessions, AccountId, Money};

use crate::guards::{self, Allow, AllowBeforePasswordChange, Viewer, ADMIN, SIGNED_IN};
use crate::types::{parse_id, Account};
use crate::{internal, pool};

/// Accounts, balances and passwords.
#[derive(Default)]
pub struct Mutation;

/// A manual credit or debit.
#[derive(InputObject)]
pub struct AdjustBalanceInput {
    pub account_id: ID,
    /// A decimal amount in the account's currency: `25`, `-3.50`.
    pub amount: String,
    /// Why, for the statement and the audit log.
    pub memo: String,
    /// Any unique text; sending the same key again changes nothing.
    pub idempotency_key: String,
}

/// The result of an adjustment.
#[derive(SimpleObject)]
pub struct AdjustBalancePayload {
    pub account: Account,
    pub transaction_id: ID,
    /// True when this key had been used before and nothing changed now.
    pub replayed: bool,
}

#[Object]
impl Mutation {
    /// Credits (positive) or debits (negative) an account by hand.
    #[graphql(guard = "Allow(ADMIN)")]
    async fn adjust_balance(
        &self,
        ctx: &Context<'_>,
        input: AdjustBalanceInput,
    ) -> Result<AdjustBalancePayload> {
        let user = guards::user(ctx)?;
        let account_id = AccountId(parse_id(&input.account_id)?);
        let amount = Money::parse_decimal(&input.amount).map_err(|e| format!("The amount {e}."))?;
        if amount.micros() == 0 {
            return Err("The amount must not be zero.".into());
        }
        let memo = input.memo.trim();
        if memo.is_empty() {
            return Err("Say why in the memo.".into());
        }
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        if accounts::get(&mut conn, account_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(format!("No account {account_id}.").into());
        }
        let key = input.idempotency_key.trim();
        if key.is_empty() {
            return Err("Give an idempotency key: any text unique to this adjustment.".into());
        }
        let key = format!("adjustment:{key}");
        let actor = actor(ctx);
        // The money and its audit record commit together or not at all.
        let posted = conn
            .transaction(async |conn| {
                let before = ledger::balance(conn, account_id).await?;
                let posted =
                    ledger::adjust(conn, account_id, amount, memo, &key, Some(user.user_id))
                        .await?;
                if let Posted::New(_) = posted {
                    let after = ledger::balance(conn, account_id).await?;
                    audit::record_change(
                        conn,
                        &actor,
                        "account.adjust_balance",
                        &format!("account:{account_id}"),
                        &format!("{} {memo}", amount.micros()),
                        &audit::Change::from_to(
                            serde_json::json!({ "balance": before.micros() }),
                            serde_json::json!({ "balance": after.micros() }),
                        ),
                    )
                    .await?;
                }
                Ok::<_, LedgerError>(posted)
            })
            .await
            .map_err(|e| match e {
                LedgerError::IdempotencyConflict(_) => {
                    "This idempotency key was used for a different adjustment.".into()
                }
                other => internal(other),
            })?;
        let (row, balance) = accounts::get(&mut conn, account_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("No account {account_id}."))?;
        Ok(AdjustBalancePayload {
            account: Account::new(row, balance),
            transaction_id: ID(posted.id().0.to_string()),
            replayed: matches!(posted, Posted::Replayed(_)),
        })
    }

    /// Changes the viewer's own portal password; other sessions end.
    #[graphql(guard = "AllowBeforePasswordChange(SIGNED_IN)")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let user = guards::user(ctx)?;
        if new_password == current_password {
            return Err("The new password must differ from the current one.".into());
        }
        let actor = actor(ctx);
        // Proving the current password counts against the sign-in limits, so
        // a stolen session cannot be used to guess it.
        let stored = sign_in::sign_in(
            pool(ctx)?,
            &user.username,
            &current_password,
            &actor.ip,
            *ctx.data::<Limits>()?,
            Purpose::Reauthenticate,
        )
        .await
        .map_err(|e| match e {
            SignInError::Refused => "The current password is wrong.".into(),
            throttled @ SignInError::Throttled { .. } => throttled.to_string().into(),
            other => internal(other),
        })?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let keep = ctx.data_opt::<SessionToken>().map(|t| t.0.clone());
        let notice = outbox::password_changed(
            &stored.email,
            &stored.username,
            chrono::Utc::now(),
            &actor.ip,
        );
        conn.transaction(async |conn| {
            users::set_password(conn, user.user_id, &new_password, false).await?;
            sessions::end_all_for_user(conn, user.user_id, keep.as_deref()).await?;
            audit::record(
                conn,
                &actor,
                "user.change_password",
                &format!("user:{}", user.user_id),
                "",
            )
            .await?;
            outbox::queue(conn, &notice, None).await?;
            Ok::<_, CreateUserError>(())
        })
        .await
        .map_err(|e| match e {
            CreateUserError::Invalid(why) => format!("The new password {why}.").into(),
            other => internal(other),
        })?;
        Ok(true)
    }
}

/// The token of the session a request came with, so a password change can
/// keep that one session alive.
#[derive(Clone, Debug)]
pub struct SessionToken(pub String);

pub(crate) fn actor(ctx: &Context<'_>) -> Actor {
    let viewer = ctx.data_opt::<Viewer>();
    Actor {
        user_id: viewer.and_then(|v| v.user.as_ref()).map(|u| u.user_id),
        label: viewer
            .and_then(|v| v.user.as_ref())
            .map(|u| u.username.clone())
            .unwrap_or_else(|| "anonymous".into()),
        ip: viewer.map(|v| v.ip.clone()).unwrap_or_default(),
    }
}

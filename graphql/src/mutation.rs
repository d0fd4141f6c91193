//! Changing.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use switchboard_core::audit::{self, Actor};
use switchboard_core::ledger::{self, LedgerError, Posted};
use switchboard_core::users::{self, CreateUserError};
use switchboard_core::{accounts, db, passwords, sessions, AccountId, Money};

use crate::guards::{self, Allow, Viewer, ADMIN, SIGNED_IN};
use crate::types::{parse_id, Account};
use crate::{internal, pool};

/// The root of every change.
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
        let key = format!("adjustment:{}", input.idempotency_key.trim());
        let posted = ledger::adjust(
            &mut conn,
            account_id,
            amount,
            memo,
            &key,
            Some(user.user_id),
        )
        .await
        .map_err(|e| match e {
            LedgerError::IdempotencyConflict(_) => {
                "This idempotency key was used for a different adjustment.".into()
            }
            other => internal(other),
        })?;
        if let Posted::New(_) = posted {
            audit::record(
                &mut conn,
                &actor(ctx),
                "account.adjust_balance",
                &format!("account:{account_id}"),
                &format!("{} {memo}", amount.micros()),
            )
            .await
            .map_err(internal)?;
        }
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
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let user = guards::user(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let stored = users::get(&mut conn, user.user_id)
            .await
            .map_err(internal)?
            .ok_or("Sign in first.")?;
        if new_password == current_password {
            return Err("The new password must differ from the current one.".into());
        }
        if !passwords::verify_blocking(current_password, stored.password_hash).await {
            return Err("The current password is wrong.".into());
        }
        users::set_password(&mut conn, user.user_id, &new_password, false)
            .await
            .map_err(|e| match e {
                CreateUserError::Invalid(why) => format!("The new password {why}.").into(),
                other => internal(other),
            })?;
        let keep = ctx.data_opt::<SessionToken>().map(|t| t.0.as_str());
        sessions::end_all_for_user(&mut conn, user.user_id, keep)
            .await
            .map_err(internal)?;
        audit::record(
            &mut conn,
            &actor(ctx),
            "user.change_password",
            &format!("user:{}", user.user_id),
            "",
        )
        .await
        .map_err(internal)?;
        Ok(true)
    }
}

/// The token of the session a request came with, so a password change can
/// keep that one session alive.
#[derive(Clone, Debug)]
pub struct SessionToken(pub String);

fn actor(ctx: &Context<'_>) -> Actor {
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

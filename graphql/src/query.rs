//! Reading.

use async_graphql::connection::{Connection, Edge};
use async_graphql::parser::types::OperationType;
use async_graphql::{Context, Object, Result, ID};
use switchboard_core::people::accounts;
use switchboard_core::{db, outbox, AccountId};

use crate::guards::{self, may_see_account, Allow, AllowBeforePasswordChange, SIGNED_IN, STAFF};
use crate::types::{parse_id, Account, OutboxEmail, Standing, User, ViewerInfo};
use crate::{internal, pool};

/// Accounts and the viewer.
#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    /// Who is asking, and their account with its balance.
    #[graphql(guard = "AllowBeforePasswordChange(SIGNED_IN)")]
    async fn viewer(&self, ctx: &Context<'_>) -> Result<ViewerInfo> {
        let user = guards::user(ctx)?;
        let account = match (&user.account, user.account_id) {
            // Read with the session, for a page's read; an operation that
            // changes things reads it afresh.
            (Some((row, balance)), _)
                if ctx.query_env.operation.node.ty == OperationType::Query =>
            {
                Some(Account::new(row.clone(), *balance))
            }
            (_, Some(id)) => {
                let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
                accounts::get(&mut conn, id)
                    .await
                    .map_err(internal)?
                    .map(|(row, balance)| Account::new(row, balance))
            }
            (_, None) => None,
        }
        .map(|mut account| {
            account.lists = crate::overview::Lists::ahead(ctx.look_ahead().field("account"));
            account
        });
        Ok(ViewerInfo {
            user: User {
                id: ID(user.user_id.0.to_string()),
                username: user.username.clone(),
                role: user.role.into(),
                must_change_password: user.must_change_password,
                user_id: user.user_id,
            },
            account,
        })
    }

    /// One account by id: staff may read any, clients their own, resellers
    /// their own and their sub-accounts. Another's id reads as not found.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let user = guards::user(ctx)?;
        let id = parse_id(&id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        match accounts::get(&mut conn, AccountId(id))
            .await
            .map_err(internal)?
        {
            Some((row, balance)) if may_see_account(user, &row) => {
                let mut account = Account::new(row, balance);
                account.lists = crate::overview::Lists::ahead(ctx.look_ahead());
                Ok(account)
            }
            _ => Err(format!("No account {id}.").into()),
        }
    }

    /// Every account with its balance, in id order, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Part of the name, company or email.")] search: Option<String>,
        standing: Option<Standing>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Account>> {
        if !(1..=200).contains(&first) {
            return Err("first must be between 1 and 200.".into());
        }
        let after = match after {
            Some(cursor) => {
                Some(AccountId(cursor.parse().map_err(|_| {
                    format!("{cursor:?} is not a cursor from this list")
                })?))
            }
            None => None,
        };
        let filter = accounts::Filter {
            search,
            standing: standing.map(Into::into),
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let mut rows = accounts::list(&mut conn, &filter, after, i64::from(first) + 1)
            .await
            .map_err(internal)?;
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            rows.into_iter()
                .map(|(row, balance)| Edge::new(row.id.to_string(), Account::new(row, balance))),
        );
        Ok(connection)
    }

    /// One email of the outbox, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn email(&self, ctx: &Context<'_>, id: ID) -> Result<OutboxEmail> {
        let id = parse_id(&id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        outbox::get(&mut conn, id)
            .await
            .map_err(internal)?
            .map(OutboxEmail::from)
            .ok_or_else(|| format!("No email {id}.").into())
    }

    /// The outbox, newest first, for staff.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn emails(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, OutboxEmail>> {
        let (first, before) = crate::commerce::page(first, after)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = outbox::list(&mut conn, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(crate::commerce::connection(
            rows,
            first,
            before.is_some(),
            |e| e.id,
            OutboxEmail::from,
        ))
    }
}

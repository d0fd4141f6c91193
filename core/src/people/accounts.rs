//! Accounts: who pays.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::{AccountId, AccountKind, Standing};
use crate::money::ledger;
use crate::money::Money;
use crate::schema::{accounts, ledger_accounts};

/// An account as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<i64>,
    pub draws_on_parent: bool,
    pub currency: String,
    pub standing: String,
    pub turned_off: bool,
    pub low_balance_threshold: i64,
    pub credit_limit: i64,
    pub time_zone: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub created_at: DateTime<Utc>,
    /// When the current standing began.
    pub standing_since: DateTime<Utc>,
    /// How often the balance fell below the threshold.
    pub low_crossings: i32,
    /// When staff were told the account is due for termination.
    pub termination_notice_at: Option<DateTime<Utc>>,
    pub auto_replenish: bool,
    pub replenish_amount: i64,
    pub replenish_monthly_cap: i64,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i32>,
    pub card_exp_year: Option<i32>,
}

impl Account {
    pub fn id(&self) -> AccountId {
        AccountId(self.id)
    }

    pub fn kind(&self) -> AccountKind {
        self.kind.parse().unwrap_or(AccountKind::Retail)
    }

    pub fn standing(&self) -> Standing {
        self.standing.parse().unwrap_or(Standing::Good)
    }
}

/// An account to open.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub parent: Option<AccountId>,
    pub currency: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
}

/// Opens an account together with the ledger account that holds its balance.
pub async fn create(conn: &mut AsyncPgConnection, new: &NewAccount) -> QueryResult<AccountId> {
    conn.transaction(async |conn| {
        let id: i64 = diesel::insert_into(accounts::table)
            .values((
                accounts::name.eq(&new.name),
                accounts::kind.eq(new.kind.as_str()),
                accounts::parent_id.eq(new.parent.map(|p| p.0)),
                accounts::currency.eq(&new.currency),
                accounts::contact_name.eq(&new.contact_name),
                accounts::company.eq(&new.company),
                accounts::email.eq(&new.email),
                accounts::phone.eq(&new.phone),
                accounts::address.eq(&new.address),
            ))
            .returning(accounts::id)
            .get_result(conn)
            .await?;
        ledger::open_customer_account(conn, AccountId(id), &new.currency).await?;
        Ok(AccountId(id))
    })
    .await
}

/// One account with its balance, or `None`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: AccountId,
) -> QueryResult<Option<(Account, Money)>> {
    accounts::table
        .inner_join(ledger_accounts::table)
        .filter(accounts::id.eq(id.0))
        .select((Account::as_select(), ledger_accounts::balance))
        .first::<(Account, i64)>(conn)
        .await
        .optional()
        .map(|found| found.map(|(account, balance)| (account, Money(balance))))
}

/// Which accounts a staff list shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Part of the name, company or email, in any case.
    pub search: Option<String>,
    pub standing: Option<Standing>,
}

/// Accounts in id order after `after`, with their balances: one page of a
/// keyset-paginated list.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    after: Option<AccountId>,
    limit: i64,
) -> QueryResult<Vec<(Account, Money)>> {
    let mut query = accounts::table
        .inner_join(ledger_accounts::table)
        .select((Account::as_select(), ledger_accounts::balance))
        .order(accounts::id)
        .limit(limit)
        .into_boxed();
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = format!("%{}%", escape_like(search.trim()));
        query = query.filter(
            accounts::name
                .ilike(pattern.clone())
                .or(accounts::company.ilike(pattern.clone()))
                .or(accounts::email.ilike(pattern)),
        );
    }
    if let Some(standing) = filter.standing {
        query = query.filter(accounts::standing.eq(standing.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(accounts::id.gt(after.0));
    }
    let rows: Vec<(Account, i64)> = query.load(conn).await?;
    Ok(rows.into_iter().map(|(a, b)| (a, Money(b))).collect())
}

/// Escapes `%`, `_` and `\` so a search for them finds them literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_searched_literally() {
        assert_eq!(super::escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}

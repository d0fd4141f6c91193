//! The ledger: the only code that moves money.
//!
//! Double entry. A ledger account is either a customer account's balance or
//! one of the company's books. Entries are signed: a customer's balance is the
//! sum of its entries, so a payment is `+amount` on the customer and
//! `-amount` on the payments book, and a charge is `-amount` on the customer
//! and `+amount` on revenue. Every transaction sums to zero, is written once,
//! and carries an idempotency key: posting the same key again returns the
//! first transaction and changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::{AccountId, UserId};
use crate::money::Money;
use crate::schema::{journal_entries, journal_transactions, ledger_accounts};

/// A ledger account's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerAccountId(pub i64);

/// A journal transaction's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(pub i64);

/// The company's side of every movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Book {
    /// Money received from customers (card payments, transfers).
    Payments,
    /// Money earned: plan fees, calls, services.
    Revenue,
    /// Credits and debits staff make by hand.
    Adjustments,
    /// Money customers' banks took back through disputes, while at stake.
    Disputes,
}

impl Book {
    fn code(self, currency: &str) -> String {
        let name = match self {
            Book::Payments => "payments",
            Book::Revenue => "revenue",
            Book::Adjustments => "adjustments",
            Book::Disputes => "disputes",
        };
        format!("book:{name}:{currency}")
    }
}

/// A transaction to post.
#[derive(Clone, Debug)]
pub struct NewTransaction {
    /// Unique per movement of money: derived from what caused it (an order, a
    /// webhook event, a job run), never random, so a retry finds it.
    pub idempotency_key: String,
    /// What kind of movement: `payment`, `charge`, `adjustment`, …
    pub kind: String,
    pub memo: String,
    pub currency: String,
    pub posted_by: Option<UserId>,
    pub entries: Vec<(LedgerAccountId, Money)>,
}

/// What `post` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// The transaction was written now.
    New(TransactionId),
    /// A transaction with this key already existed; nothing changed.
    Replayed(TransactionId),
}

impl Posted {
    pub fn id(self) -> TransactionId {
        match self {
            Posted::New(id) | Posted::Replayed(id) => id,
        }
    }
}

/// Why a transaction was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("a transaction needs at least two entries")]
    TooFewEntries,
    #[error("an entry of zero moves nothing")]
    ZeroEntry,
    #[error("the entries sum to {0} micro-units, not zero")]
    Unbalanced(i128),
    #[error("an amount is too large")]
    Overflow,
    #[error("the idempotency key is empty")]
    NoIdempotencyKey,
    #[error("ledger account {0} does not exist")]
    UnknownLedgerAccount(i64),
    #[error("ledger account {0} is not in {1}")]
    CurrencyMismatch(i64, String),
    #[error("idempotency key {0:?} was already used for a different transaction")]
    IdempotencyConflict(String),
    #[error("the database refused the transaction: {0}")]
    Database(#[from] diesel::result::Error),
}

/// Checks a transaction before any I/O: the pure half of `post`.
pub fn check(tx: &NewTransaction) -> Result<(), LedgerError> {
    if tx.idempotency_key.trim().is_empty() {
        return Err(LedgerError::NoIdempotencyKey);
    }
    if tx.entries.len() < 2 {
        return Err(LedgerError::TooFewEntries);
    }
    if tx.entries.iter().any(|(_, amount)| amount.0 == 0) {
        return Err(LedgerError::ZeroEntry);
    }
    let sum: i128 = tx.entries.iter().map(|(_, m)| i128::from(m.0)).sum();
    if sum != 0 {
        return Err(LedgerError::Unbalanced(sum));
    }
    Ok(())
}

/// Posts a transaction inside the caller's database transaction (as a
/// savepoint) or in one of its own. Customers' ledger accounts are locked in
/// id order, so concurrent posts never deadlock, and their cached balances
/// move in the same database transaction as the entries. The company's books
/// are on the other side of nearly every posting: they are not locked and
/// keep no cached balance (their balance is the sum of their entries,
/// [`book_balance`]), so postings for different customers never wait for
/// each other.
pub async fn post(
    conn: &mut AsyncPgConnection,
    tx: &NewTransaction,
) -> Result<Posted, LedgerError> {
    check(tx)?;
    conn.transaction(async |conn| post_checked(conn, tx).await)
        .await
}

async fn post_checked(
    conn: &mut AsyncPgConnection,
    tx: &NewTransaction,
) -> Result<Posted, LedgerError> {
    let inserted: Option<i64> = diesel::insert_into(journal_transactions::table)
        .values((
            journal_transactions::idempotency_key.eq(&tx.idempotency_key),
            journal_transactions::kind.eq(&tx.kind),
            journal_transactions::memo.eq(&tx.memo),
            journal_transactions::currency.eq(&tx.currency),
            journal_transactions::posted_by.eq(tx.posted_by.map(|u| u.0)),
        ))
        .on_conflict(journal_transactions::idempotency_key)
        .do_nothing()
        .returning(journal_transactions::id)
        .get_result(conn)
        .await
        .optional()?;
    let Some(id) = inserted else {
        return replay(conn, tx).await;
    };

    let mut per_account: BTreeMap<i64, i128> = BTreeMap::new();
    for (account, amount) in &tx.entries {
        *per_account.entry(account.0).or_default() += i128::from(amount.0);
    }
    let ids: Vec<i64> = per_account.keys().copied().collect();
    // Which accounts exist, in which currency, and which are customers'. A
    // ledger account's currency and owner never change, so this needs no
    // lock; the customers' rows are locked below.
    let found: Vec<(i64, String, Option<i64>)> = ledger_accounts::table
        .filter(ledger_accounts::id.eq_any(&ids))
        .select((
            ledger_accounts::id,
            ledger_accounts::currency,
            ledger_accounts::account_id,
        ))
        .load(conn)
        .await?;
    let mut customers = Vec::new();
    for wanted in &ids {
        match found.iter().find(|(id, _, _)| id == wanted) {
            None => return Err(LedgerError::UnknownLedgerAccount(*wanted)),
            Some((_, currency, _)) if *currency != tx.currency => {
                return Err(LedgerError::CurrencyMismatch(*wanted, tx.currency.clone()))
            }
            Some((id, _, Some(_))) => customers.push(*id),
            Some(_) => {}
        }
    }
    if !customers.is_empty() {
        ledger_accounts::table
            .filter(ledger_accounts::id.eq_any(&customers))
            .order(ledger_accounts::id)
            .select(ledger_accounts::id)
            .for_update()
            .load::<i64>(conn)
            .await?;
    }

    let rows: Vec<_> = tx
        .entries
        .iter()
        .map(|(account, amount)| {
            (
                journal_entries::transaction_id.eq(id),
                journal_entries::ledger_account_id.eq(account.0),
                journal_entries::amount.eq(amount.0),
            )
        })
        .collect();
    diesel::insert_into(journal_entries::table)
        .values(&rows)
        .execute(conn)
        .await?;
    for (account, delta) in per_account {
        let delta = i64::try_from(delta).map_err(|_| LedgerError::Overflow)?;
        if delta != 0 && customers.contains(&account) {
            diesel::update(ledger_accounts::table.find(account))
                .set(ledger_accounts::balance.eq(ledger_accounts::balance + delta))
                .execute(conn)
                .await?;
        }
    }
    Ok(Posted::New(TransactionId(id)))
}

/// The key was used before: the same transaction is a replay, another one
/// is a mistake the caller must hear about.
async fn replay(conn: &mut AsyncPgConnection, tx: &NewTransaction) -> Result<Posted, LedgerError> {
    let (id, currency, kind, memo): (i64, String, String, String) = journal_transactions::table
        .filter(journal_transactions::idempotency_key.eq(&tx.idempotency_key))
        .select((
            journal_transactions::id,
            journal_transactions::currency,
            journal_transactions::kind,
            journal_transactions::memo,
        ))
        .first(conn)
        .await?;
    let mut stored: Vec<(i64, i64)> = journal_entries::table
        .filter(journal_entries::transaction_id.eq(id))
        .select((journal_entries::ledger_account_id, journal_entries::amount))
        .load(conn)
        .await?;
    let mut asked: Vec<(i64, i64)> = tx.entries.iter().map(|(a, m)| (a.0, m.0)).collect();
    stored.sort_unstable();
    asked.sort_unstable();
    if stored != asked || currency != tx.currency || kind != tx.kind || memo != tx.memo {
        return Err(LedgerError::IdempotencyConflict(tx.idempotency_key.clone()));
    }
    Ok(Posted::Replayed(TransactionId(id)))
}

/// Creates the ledger account that holds a customer account's balance.
pub async fn open_customer_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    currency: &str,
) -> QueryResult<LedgerAccountId> {
    diesel::insert_into(ledger_accounts::table)
        .values((
            ledger_accounts::code.eq(format!("customer:{}", account.0)),
            ledger_accounts::account_id.eq(account.0),
            ledger_accounts::currency.eq(currency),
        ))
        .returning(ledger_accounts::id)
        .get_result(conn)
        .await
        .map(LedgerAccountId)
}

/// The ledger account of a customer account.
pub async fn customer_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<LedgerAccountId> {
    ledger_accounts::table
        .filter(ledger_accounts::account_id.eq(account.0))
        .select(ledger_accounts::id)
        .first(conn)
        .await
        .map(LedgerAccountId)
}

/// The ledger account of one of the company's books, created on first use.
pub async fn book(
    conn: &mut AsyncPgConnection,
    book: Book,
    currency: &str,
) -> QueryResult<LedgerAccountId> {
    let code = book.code(currency);
    diesel::insert_into(ledger_accounts::table)
        .values((
            ledger_accounts::code.eq(&code),
            ledger_accounts::currency.eq(currency),
        ))
        .on_conflict(ledger_accounts::code)
        .do_nothing()
        .execute(conn)
        .await?;
    ledger_accounts::table
        .filter(ledger_accounts::code.eq(&code))
        .select(ledger_accounts::id)
        .first(conn)
        .await
        .map(LedgerAccountId)
}

/// A customer account's balance (the cached sum of its entries).
pub async fn balance(conn: &mut AsyncPgConnection, account: AccountId) -> QueryResult<Money> {
    ledger_accounts::table
        .filter(ledger_accounts::account_id.eq(account.0))
        .select(ledger_accounts::balance)
        .first(conn)
        .await
        .map(Money)
}

/// A customer account's balance with its ledger row locked until the
/// transaction ends, for a charge that must not take more than there is: no
/// other posting to the account slips in between the check and the charge.
pub async fn locked_balance(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Money> {
    ledger_accounts::table
        .filter(ledger_accounts::account_id.eq(account.0))
        .select(ledger_accounts::balance)
        .for_update()
        .first(conn)
        .await
        .map(Money)
}

/// Charges a customer's balance for a purchase (revenue's side), inside the
/// caller's transaction, once per key.
pub async fn charge(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    amount: Money,
    memo: &str,
    idempotency_key: &str,
    posted_by: Option<UserId>,
) -> Result<Posted, LedgerError> {
    let customer = customer_account(conn, account).await?;
    let currency: String = ledger_accounts::table
        .find(customer.0)
        .select(ledger_accounts::currency)
        .first(conn)
        .await?;
    let revenue = book(conn, Book::Revenue, &currency).await?;
    post(
        conn,
        &NewTransaction {
            idempotency_key: idempotency_key.to_owned(),
            kind: "charge".into(),
            memo: memo.to_owned(),
            currency,
            posted_by,
            entries: vec![(customer, -amount), (revenue, amount)],
        },
    )
    .await
}

/// One of the company's books' balance: the sum of its entries (books keep
/// no cached balance, so that postings never queue behind their rows).
pub async fn book_balance(
    conn: &mut AsyncPgConnection,
    book: Book,
    currency: &str,
) -> QueryResult<Money> {
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        micros: i64,
    }
    diesel::sql_query(
        "SELECT coalesce(sum(e.amount), 0)::bigint AS micros \
         FROM journal_entries e JOIN ledger_accounts a ON a.id = e.ledger_account_id \
         WHERE a.code = $1",
    )
    .bind::<diesel::sql_types::Text, _>(book.code(currency))
    .get_result::<Sum>(conn)
    .await
    .map(|s| Money(s.micros))
}

/// One line of an account's statement.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, serde::Deserialize)]
pub struct StatementLine {
    pub entry_id: i64,
    pub transaction_id: i64,
    pub posted_at: DateTime<Utc>,
    pub kind: String,
    pub memo: String,
    pub amount: i64,
}

/// The newest entries on a customer account, newest first.
pub async fn recent_entries(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    limit: i64,
) -> QueryResult<Vec<StatementLine>> {
    entries_page(conn, account, None, limit).await
}

/// One page of a customer account's statement, newest first: the entries
/// before the entry `before` (from the newest when none).
pub async fn entries_page(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<StatementLine>> {
    let mut query = journal_entries::table
        .inner_join(journal_transactions::table)
        .inner_join(ledger_accounts::table)
        .filter(ledger_accounts::account_id.eq(account.0))
        .order(journal_entries::id.desc())
        .limit(limit)
        .select((
            journal_entries::id,
            journal_entries::transaction_id,
            journal_transactions::posted_at,
            journal_transactions::kind,
            journal_transactions::memo,
            journal_entries::amount,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(journal_entries::id.lt(before));
    }
    query.load(conn).await
}

/// A staff member's manual credit (positive) or debit (negative) of an account,
/// against the adjustments book.
pub async fn adjust(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    amount: Money,
    memo: &str,
    idempotency_key: &str,
    posted_by: Option<UserId>,
) -> Result<Posted, LedgerError> {
    conn.transaction(async |conn| {
        let customer = customer_account(conn, account).await?;
        let currency: String = ledger_accounts::table
            .find(customer.0)
            .select(ledger_accounts::currency)
            .first(conn)
            .await?;
        let adjustments = book(conn, Book::Adjustments, &currency).await?;
        post(
            conn,
            &NewTransaction {
                idempotency_key: idempotency_key.to_owned(),
                kind: "adjustment".into(),
                memo: memo.to_owned(),
                currency,
                posted_by,
                entries: vec![(customer, amount), (adjustments, -amount)],
            },
        )
        .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(entries: &[(i64, i64)]) -> NewTransaction {
        NewTransaction {
            idempotency_key: "k".into(),
            kind: "test".into(),
            memo: String::new(),
            currency: "USD".into(),
            posted_by: None,
            entries: entries
                .iter()
                .map(|(a, m)| (LedgerAccountId(*a), Money(*m)))
                .collect(),
        }
    }

    #[test]
    fn only_balanced_transactions_of_real_entries_pass_the_check() {
        assert!(check(&tx(&[(1, 5), (2, -5)])).is_ok());
        assert!(check(&tx(&[(1, 5), (2, -3), (3, -2)])).is_ok());
        assert!(matches!(
            check(&tx(&[(1, 5), (2, -4)])),
            Err(LedgerError::Unbalanced(1))
        ));
        assert!(matches!(
            check(&tx(&[(1, 5)])),
            Err(LedgerError::TooFewEntries)
        ));
        assert!(matches!(
            check(&tx(&[(1, 0), (2, 0)])),
            Err(LedgerError::ZeroEntry)
        ));
        let overflow = tx(&[(1, i64::MAX), (2, i64::MAX), (3, 2)]);
        assert!(matches!(check(&overflow), Err(LedgerError::Unbalanced(_))));
        let mut keyless = tx(&[(1, 5), (2, -5)]);
        keyless.idempotency_key = " ".into();
        assert!(matches!(
            check(&keyless),
            Err(LedgerError::NoIdempotencyKey)
        ));
    }
}

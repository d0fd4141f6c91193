//! The ledger against a real PostgreSQL: balanced, idempotent, append-only,
//! and exact under concurrency.

use std::collections::HashMap;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::future::join_all;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use switchboard_core::db::{self, Pool};
use switchboard_core::money::ledger::{
    self, Book, LedgerAccountId, LedgerError, NewTransaction, Posted,
};
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::{AccountKind, Money};

use crate::harness::fresh_database;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn scalar(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect(sql)
        .n
}

/// The ledger's invariants, read straight from the tables.
pub async fn assert_books_balance(conn: &mut AsyncPgConnection) {
    let drifted = scalar(
        conn,
        "SELECT count(*) AS n FROM ledger_accounts la WHERE la.account_id IS NOT NULL AND la.balance <> \
         COALESCE((SELECT sum(amount) FROM journal_entries e WHERE e.ledger_account_id = la.id), 0)",
    )
    .await;
    assert_eq!(
        drifted, 0,
        "a customer's cached balance differs from the sum of its entries"
    );
    let cached_books = scalar(
        conn,
        "SELECT count(*) AS n FROM ledger_accounts WHERE account_id IS NULL AND balance <> 0",
    )
    .await;
    assert_eq!(cached_books, 0, "the books keep no cached balance");
    let total = scalar(
        conn,
        "SELECT COALESCE(sum(amount), 0)::bigint AS n FROM journal_entries",
    )
    .await;
    assert_eq!(total, 0, "the journal does not sum to zero");
    let unbalanced = scalar(
        conn,
        "SELECT count(*) AS n FROM (SELECT transaction_id FROM journal_entries GROUP BY 1 HAVING sum(amount) <> 0) t",
    )
    .await;
    assert_eq!(unbalanced, 0, "a transaction does not sum to zero");
}

/// A ledger account's balance: a customer's cached one, a book's summed
/// from its entries (books keep none).
async fn balance_of(conn: &mut AsyncPgConnection, id: LedgerAccountId) -> i64 {
    scalar(
        conn,
        &format!(
            "SELECT (CASE WHEN account_id IS NULL THEN \
               COALESCE((SELECT sum(amount) FROM journal_entries e WHERE e.ledger_account_id = la.id), 0) \
               ELSE balance END)::bigint AS n FROM ledger_accounts la WHERE id = {}",
            id.0
        ),
    )
    .await
}

fn transfer(key: &str, to: LedgerAccountId, from: LedgerAccountId, amount: i64) -> NewTransaction {
    NewTransaction {
        idempotency_key: key.into(),
        kind: "test".into(),
        memo: String::new(),
        currency: "USD".into(),
        posted_by: None,
        entries: vec![(to, Money(amount)), (from, Money(-amount))],
    }
}

/// A fresh database with `n` customer ledger accounts and the payments book.
async fn setup(n: usize) -> (String, Vec<LedgerAccountId>, LedgerAccountId) {
    let url = fresh_database().await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let mut customers = Vec::new();
    for i in 0..n {
        let id = accounts::create(
            &mut conn,
            &NewAccount {
                name: format!("Ledger {i}"),
                kind: AccountKind::Retail,
                parent: None,
                currency: "USD".into(),
                contact_name: String::new(),
                company: String::new(),
                email: String::new(),
                phone: String::new(),
                address: String::new(),
            },
        )
        .await
        .expect("account");
        customers.push(
            ledger::customer_account(&mut conn, id)
                .await
                .expect("ledger account"),
        );
    }
    let book = ledger::book(&mut conn, Book::Payments, "USD")
        .await
        .expect("book");
    (url, customers, book)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unbalanced_transaction_is_refused_and_changes_nothing() {
    let (url, customers, book) = setup(1).await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let mut tx = transfer("unbalanced", customers[0], book, 5_000_000);
    tx.entries[1].1 = Money(-4_000_000);
    assert!(matches!(
        ledger::post(&mut conn, &tx).await,
        Err(LedgerError::Unbalanced(1_000_000))
    ));
    let mut other_currency = transfer("eur", customers[0], book, 5_000_000);
    other_currency.currency = "EUR".into();
    assert!(matches!(
        ledger::post(&mut conn, &other_currency).await,
        Err(LedgerError::CurrencyMismatch(..))
    ));
    let unknown = transfer("ghost", customers[0], LedgerAccountId(999_999), 1);
    assert!(matches!(
        ledger::post(&mut conn, &unknown).await,
        Err(LedgerError::UnknownLedgerAccount(999_999))
    ));
    assert_eq!(
        scalar(&mut conn, "SELECT count(*) AS n FROM journal_transactions").await,
        0
    );
    assert_eq!(balance_of(&mut conn, customers[0]).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn posting_the_same_key_again_returns_the_first_transaction_and_changes_nothing() {
    let (url, customers, book) = setup(1).await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let tx = transfer("order:1:payment", customers[0], book, 30_000_000);
    let first = ledger::post(&mut conn, &tx).await.expect("posted");
    let second = ledger::post(&mut conn, &tx).await.expect("replayed");
    assert!(matches!(first, Posted::New(_)));
    assert_eq!(second, Posted::Replayed(first.id()));
    assert_eq!(balance_of(&mut conn, customers[0]).await, 30_000_000);
    let changed = transfer("order:1:payment", customers[0], book, 31_000_000);
    assert!(matches!(
        ledger::post(&mut conn, &changed).await,
        Err(LedgerError::IdempotencyConflict(_))
    ));
    assert_eq!(balance_of(&mut conn, customers[0]).await, 30_000_000);
    assert_books_balance(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_rolls_back_with_the_callers_transaction() {
    let (url, customers, book) = setup(1).await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let result: Result<(), LedgerError> = conn
        .transaction(async |conn| {
            ledger::post(
                conn,
                &transfer("rolled-back", customers[0], book, 1_000_000),
            )
            .await?;
            Err(LedgerError::TooFewEntries)
        })
        .await;
    assert!(result.is_err());
    assert_eq!(balance_of(&mut conn, customers[0]).await, 0);
    // The key was never used, so it can be posted now.
    let posted = ledger::post(
        &mut conn,
        &transfer("rolled-back", customers[0], book, 1_000_000),
    )
    .await;
    assert!(matches!(posted, Ok(Posted::New(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_itself_refuses_an_unbalanced_or_rewritten_journal() {
    let (url, customers, book) = setup(1).await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let raw = conn
        .transaction(async |conn| {
            diesel::sql_query("INSERT INTO journal_transactions (id, idempotency_key, kind, currency) VALUES (100, 'raw', 'raw', 'USD')")
                .execute(conn)
                .await?;
            diesel::sql_query(format!(
                "INSERT INTO journal_entries (transaction_id, ledger_account_id, amount) VALUES (100, {}, 5)",
                customers[0].0
            ))
            .execute(conn)
            .await
        })
        .await;
    let error = raw
        .expect_err("an unbalanced journal transaction cannot commit")
        .to_string();
    assert!(error.contains("does not sum to zero"), "{error}");

    ledger::post(&mut conn, &transfer("kept", customers[0], book, 7))
        .await
        .expect("posted");
    let rewrite = diesel::sql_query("UPDATE journal_entries SET amount = amount * 2")
        .execute(&mut conn)
        .await;
    assert!(rewrite
        .expect_err("append-only")
        .to_string()
        .contains("append-only"));
    let delete = diesel::sql_query("DELETE FROM journal_transactions")
        .execute(&mut conn)
        .await;
    assert!(delete.is_err());
    assert_books_balance(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_posts_on_one_account_keep_its_balance_exact() {
    let (url, customers, book) = setup(2).await;
    let pool = db::pool(&url, 12).expect("pool");
    let posts = (0..120).map(|i| {
        let pool = pool.clone();
        let customers = customers.clone();
        async move {
            let mut conn = db::conn(&pool).await.expect("conn");
            // Half move money in from the book, half between the two
            // customers in both directions: lock order matters here.
            let tx = match i % 3 {
                0 => transfer(&format!("c:{i}"), customers[0], book, 1_000),
                1 => transfer(&format!("c:{i}"), customers[0], customers[1], 10),
                _ => transfer(&format!("c:{i}"), customers[1], customers[0], 3),
            };
            ledger::post(&mut conn, &tx).await.expect("posted")
        }
    });
    let results = join_all(posts).await;
    assert!(results.iter().all(|p| matches!(p, Posted::New(_))));
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    assert_eq!(
        balance_of(&mut conn, customers[0]).await,
        40 * 1_000 + 40 * 10 - 40 * 3
    );
    assert_eq!(balance_of(&mut conn, customers[1]).await, -40 * 10 + 40 * 3);
    assert_books_balance(&mut conn).await;
}

#[derive(Clone, Debug)]
enum Op {
    /// A transfer under a key drawn from a small set, so keys repeat.
    Post {
        to: usize,
        from: usize,
        amount: i64,
        key: u8,
    },
    /// Entries that do not sum to zero.
    Unbalanced { to: usize, amount: i64 },
    /// Several posts at once on one account, one of them sent twice.
    Burst {
        to: usize,
        count: usize,
        amount: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5usize, 0..5usize, 1..1_000_000_000i64, 0..24u8)
            .prop_map(|(to, from, amount, key)| Op::Post { to, from, amount, key }),
        1 => (0..4usize, 1..1_000_000i64).prop_map(|(to, amount)| Op::Unbalanced { to, amount }),
        1 => (0..4usize, 2..8usize, 1..1_000_000i64).prop_map(|(to, count, amount)| Op::Burst { to, count, amount }),
    ]
}

/// What the ledger should hold, kept beside it.
#[derive(Default)]
struct Model {
    balances: HashMap<LedgerAccountId, i64>,
    posted: HashMap<String, (LedgerAccountId, LedgerAccountId, i64)>,
    bursts: usize,
}

impl Model {
    fn apply(&mut self, to: LedgerAccountId, from: LedgerAccountId, amount: i64) {
        *self.balances.entry(to).or_default() += amount;
        *self.balances.entry(from).or_default() -= amount;
    }
}

async fn step(pool: &Pool, model: &mut Model, ledgers: &[LedgerAccountId], op: &Op) {
    let mut conn = db::conn(pool).await.expect("conn");
    match *op {
        Op::Post {
            to,
            from,
            amount,
            key,
        } => {
            let (to, from) = (
                ledgers[to],
                ledgers[if from == to {
                    (from + 1) % ledgers.len()
                } else {
                    from
                }],
            );
            let key = format!("prop:{key}");
            let result = ledger::post(&mut conn, &transfer(&key, to, from, amount)).await;
            match model.posted.get(&key) {
                None => {
                    assert!(matches!(result, Ok(Posted::New(_))), "{result:?}");
                    model.posted.insert(key, (to, from, amount));
                    model.apply(to, from, amount);
                }
                Some(first) if *first == (to, from, amount) => {
                    assert!(matches!(result, Ok(Posted::Replayed(_))), "{result:?}");
                }
                Some(_) => assert!(
                    matches!(result, Err(LedgerError::IdempotencyConflict(_))),
                    "{result:?}"
                ),
            }
        }
        Op::Unbalanced { to, amount } => {
            let mut tx = transfer(
                &format!("unbalanced:{amount}"),
                ledgers[to],
                ledgers[4],
                amount,
            );
            tx.entries[1].1 = Money(-amount - 1);
            assert!(matches!(
                ledger::post(&mut conn, &tx).await,
                Err(LedgerError::Unbalanced(_))
            ));
        }
        Op::Burst { to, count, amount } => {
            model.bursts += 1;
            let burst = model.bursts;
            let mut keys: Vec<String> = (0..count).map(|i| format!("burst:{burst}:{i}")).collect();
            keys.push(keys[0].clone());
            let posts = keys.iter().map(|key| {
                let pool = pool.clone();
                let tx = transfer(key, ledgers[to], ledgers[4], amount);
                async move {
                    let mut conn = db::conn(&pool).await.expect("conn");
                    ledger::post(&mut conn, &tx).await.expect("posted")
                }
            });
            let results = join_all(posts).await;
            let new = results
                .iter()
                .filter(|p| matches!(p, Posted::New(_)))
                .count();
            assert_eq!(new, count, "the key sent twice was applied once");
            for _ in 0..count {
                model.apply(ledgers[to], ledgers[4], amount);
            }
        }
    }
    for ledger_account in ledgers {
        assert_eq!(
            balance_of(&mut conn, *ledger_account).await,
            model.balances.get(ledger_account).copied().unwrap_or(0),
            "after {op:?}"
        );
    }
    assert_books_balance(&mut conn).await;
}

#[test]
fn random_postings_keep_every_balance_equal_to_the_sum_of_its_entries() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (pool, ledgers) = runtime.block_on(async {
        let (url, customers, book) = setup(4).await;
        let mut ledgers = customers;
        ledgers.push(book);
        (db::pool(&url, 10).expect("pool"), ledgers)
    });
    let model = std::sync::Mutex::new(Model::default());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..25), |ops| {
            let mut model = model
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            runtime.block_on(async {
                for op in &ops {
                    step(&pool, &mut model, &ledgers, op).await;
                }
            });
            Ok(())
        })
        .expect("the ledger keeps its invariants");
}

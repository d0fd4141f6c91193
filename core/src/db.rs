//! Connections, the pool and the embedded migrations.

use anyhow::Context;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text};
use diesel::QueryResult;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations in `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// A pool of PostgreSQL connections.
pub type Pool = DeadPool<AsyncPgConnection>;
/// One connection taken from the pool.
pub type PooledConn = Object<AsyncPgConnection>;

/// Builds a pool; no connection is made until one is needed.
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    // Every connection times its statements for the request sending them
    // (`/metrics`, `bench --pages`).
    diesel::connection::set_default_instrumentation(|| {
        Some(Box::new(crate::metrics::StatementTimer::default()))
    })
    .context("timing statements")?;
    // A connection is handed out without a `SELECT 1` first: that was a
    // round trip on every checkout, half the statements of a panel page.
    // One whose socket closed (the server restarted or dropped it) is
    // marked broken by the driver and left behind all the same.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| Box::pin(connect(url.to_owned())));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// What every pooled connection is set to before its first use.
///
/// Calls and CDRs are kept in one table per month. PostgreSQL plans a
/// prepared statement afresh on each run while it guesses that planning
/// for the parameters at hand beats a plan made once, and with month tables
/// it always guesses so: the plan made for the parameters leaves out the
/// other months' tables, and the plan made once is priced as if it read
/// them all, though it leaves them out when it starts. On a database of 10M
/// CDRs in 27 month tables, a page's per-PBX usage took 1.47 ms to plan
/// for 0.77 ms of work; a plan made once takes 0.04 ms to check out and
/// reads the same one or two months.
///
/// Every statement on the connection is then planned once, for any values.
/// Such a plan cannot use a partial index whose condition is a bound value
/// (`WHERE state = $1` against an index `WHERE state = 'queued'`): a
/// statement that relies on a partial index writes the index's condition
/// into its text, as the unrated legs and the mailer's claim do. Bound, each
/// of those read its whole table at 10M CDRs.
pub const CONNECTION_SETTINGS: &str = "SET plan_cache_mode = force_generic_plan";

async fn connect(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute(CONNECTION_SETTINGS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Takes a connection, saying plainly when the database is out of reach.
pub async fn conn(pool: &Pool) -> anyhow::Result<PooledConn> {
    pool.get().await.context("the database is not answering")
}

/// A statement written out by hand (`diesel::sql_query`) kept prepared on
/// its connection, as diesel keeps its own queries: diesel re-plans a
/// hand-written statement on every run, and the plan of a page's report
/// query costs a few times its execution. Only for text that never changes
/// between runs (a constant with `$n` binds): the connection keeps one
/// prepared statement per distinct text, for as long as it lives.
pub trait KeepPrepared: Query + Sized {
    fn kept_prepared(self) -> KeptPrepared<Self> {
        KeptPrepared(self)
    }
}

impl<Q: Query> KeepPrepared for Q {}

/// See [`KeepPrepared`].
#[derive(Debug, Clone, Copy)]
pub struct KeptPrepared<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for KeptPrepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // The statement cache keys it by its text and its binds' types.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for KeptPrepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for KeptPrepared<Q> {
    type SqlType = Q::SqlType;
}

/// Any fixed number, so instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x5357_4954_4348;

/// Runs the migrations not yet applied; returns how many ran. Needs a
/// multi-threaded Tokio runtime (diesel's migration harness is synchronous).
/// Several instances starting at once take turns: an advisory lock, held on
/// a second connection, covers the whole run.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let mut lock = AsyncPgConnection::establish(url)
        .await
        .context("connecting to the database to migrate it")?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut lock)
        .await
        .context("waiting for another instance's migrations")?;
    let conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to the database to migrate it")?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = tokio::task::block_in_place(|| harness.run_pending_migrations(MIGRATIONS))
        .map(|applied| applied.len())
        .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
    drop(harness);
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut lock)
        .await?;
    applied
}

/// Creates `database` on the server behind `maintenance_url` unless it exists,
/// optionally as a copy of `template`.
pub async fn create_database(
    maintenance_url: &str,
    database: &str,
    template: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_identifier(database) && template.is_none_or(is_identifier),
        "database names may hold only lower-case letters, digits and '_'"
    );
    let mut conn = AsyncPgConnection::establish(maintenance_url)
        .await
        .context("connecting to the database server")?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(database)
            .get_result(&mut conn)
            .await?;
    if !found.exists {
        let sql = match template {
            Some(template) => format!("CREATE DATABASE {database} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {database}"),
        };
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating the database {database}"))?;
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Answers whether the database is reachable, for `/readyz`.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = conn(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

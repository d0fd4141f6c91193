//! Background jobs. Jobs are rows, not timers: the scheduler only enqueues
//! (a dedupe key makes enqueuing from several instances harmless), and the
//! runner claims one row at a time (`FOR UPDATE SKIP LOCKED`) for a lease,
//! committed before the job runs: no two instances run the same job at
//! once, no transaction is held while a job waits on the outside world, and
//! the row stays queued until the job is done, so a crash delays it by the
//! lease and loses nothing. A failed job is retried with exponential backoff
//! until its budget is spent, then given up with a notice; every job can
//! run twice without harm.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use switchboard_controller::Controller;
use switchboard_core::calls::months;
use switchboard_core::config::Settings;
use switchboard_core::db::{self, Pool};
use switchboard_core::keys::SecretKey;
use switchboard_core::metrics::JobOutcome;
use switchboard_core::people::{email_changes, recovery, sessions, sign_in};
use switchboard_core::queue;
use switchboard_core::schema::background_jobs;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

pub mod backups;
pub mod balance;
pub mod cdr_pull;
pub mod gui_passwords;
pub mod mailer;
mod numbers;
mod provisioning;

pub use mailer::{deliver_due, Delivery, Mailer};

/// What jobs need from the world outside the database.
#[derive(Clone)]
pub struct JobContext {
    pub key: SecretKey,
    pub controller: Controller,
    pub settings: Arc<Settings>,
    /// Calling plans' rate tables, for pricing pulled CDRs (the server's own,
    /// when jobs run in it).
    pub rate_tables: switchboard_core::calls::calling_plans::RateTables,
    /// The database, for `pg_dump` to back it up.
    pub database_url: String,
    /// Where `pg_dump` is.
    pub pg_bin_dir: std::path::PathBuf,
    /// The gateway automatic top-ups charge saved cards through.
    pub gateway: switchboard_payments::Gateway,
    /// The time billing periods, grace periods and retries are measured by.
    pub clock: switchboard_core::clock::Clock,
}

/// Every kind of job, by its stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Deletes expired sessions and sign-in attempts no limit looks at.
    PurgeExpiredSessions,
    /// Creates a paid order's PBX at the controller and sends the welcome email.
    ProvisionPbx,
    /// Reads new rows of a PBX's Asterisk CDR table. Data: the PBX id.
    PullCdrs,
    /// Takes a scheduled backup. Data: the slot's time (RFC 3339).
    TakeBackup,
    /// Sends commands about one PBX to the controller, in order.
    PbxCommand,
    /// Applies the standing rules to one account, or to all that need it.
    ReviewStanding,
    /// Charges a saved card for an automatic top-up. Data: the account id.
    Replenish,
    /// Charges every recurring period that is due.
    BillRecurring,
    /// Emails last month's statements. Data: the month, `YYYY-MM`.
    SendStatements,
    /// Sends a PBX's new GUI password to the controller. Data: the change's id.
    SetPbxPassword,
    /// Routes an ordered phone number to its PBX. Data: the number's id.
    AssignNumber,
    /// Takes a released phone number off its PBX. Data: `number:pbx`.
    UnassignNumber,
    /// Makes the tables of this month's and the coming months' CDRs and
    /// calls, before any call needs them, and vacuums this month's and last
    /// month's calls so that pages read them from the index alone.
    MakeCallMonths,
}

const ALL_JOBS: [Job; 13] = [
    Job::PurgeExpiredSessions,
    Job::ProvisionPbx,
    Job::PullCdrs,
    Job::TakeBackup,
    Job::PbxCommand,
    Job::ReviewStanding,
    Job::Replenish,
    Job::BillRecurring,
    Job::SendStatements,
    Job::SetPbxPassword,
    Job::AssignNumber,
    Job::UnassignNumber,
    Job::MakeCallMonths,
];

impl Job {
    /// The name stored in the row; never change one that has shipped.
    pub fn name(self) -> &'static str {
        match self {
            Job::PurgeExpiredSessions => queue::PURGE_EXPIRED_SESSIONS,
            Job::ProvisionPbx => queue::PROVISION_PBX,
            Job::PullCdrs => queue::PULL_CDRS,
            Job::TakeBackup => "take_backup",
            Job::PbxCommand => queue::PBX_COMMAND,
            Job::ReviewStanding => queue::REVIEW_STANDING,
            Job::Replenish => queue::REPLENISH,
            Job::BillRecurring => queue::BILL_RECURRING,
            Job::SendStatements => queue::SEND_STATEMENTS,
            Job::SetPbxPassword => queue::SET_PBX_PASSWORD,
            Job::AssignNumber => queue::ASSIGN_NUMBER,
            Job::UnassignNumber => queue::UNASSIGN_NUMBER,
            Job::MakeCallMonths => "make_call_months",
        }
    }

    fn from_name(name: &str) -> Option<Job> {
        ALL_JOBS.into_iter().find(|job| job.name() == name)
    }

    /// Whether the runner runs the job in one database transaction. A job
    /// that waits on an outside system opens its own short ones around the
    /// call instead, so no transaction is held while it waits.
    fn runs_in_one_transaction(self) -> bool {
        match self {
            Job::PurgeExpiredSessions => true,
            // A pull reads the PBX's database first, then stores what it
            // read in ingestion's own transaction; a backup runs pg_dump.
            // Making months is one statement, a transaction of its own
            // (it locks the tables CDRs refer to for a moment); the vacuum
            // after it cannot run in a transaction.
            Job::ProvisionPbx | Job::PullCdrs | Job::TakeBackup | Job::MakeCallMonths => false,
            // The controller and the gateway are called with no transaction
            // open; the others commit each account, period or statement on
            // its own, so a stop midway keeps what was done.
            Job::PbxCommand
            | Job::SetPbxPassword
            | Job::AssignNumber
            | Job::UnassignNumber
            | Job::Replenish
            | Job::ReviewStanding
            | Job::BillRecurring
            | Job::SendStatements => false,
        }
    }

    /// Attempts before the job is given up.
    pub fn max_attempts(self) -> i32 {
        match self {
            Job::PurgeExpiredSessions => 5,
            // 1 + 2 + … + 512 seconds: about seventeen minutes of trying.
            Job::ProvisionPbx => 10,
            // The schedule queues another pull in five minutes anyway.
            Job::PullCdrs => 3,
            // 1 + 2 + 4 + 8 seconds, then staff hear of it.
            Job::TakeBackup => 5,
            // Doubling from a second to an hour, then hourly: about a day
            // of trying before staff are asked to see to the PBX.
            // Doubling from a second to an hour, then hourly, as PBX
            // commands; staff hear of the first failure at once.
            Job::PbxCommand | Job::AssignNumber | Job::UnassignNumber => 32,
            // 1 + 2 + … + 64 seconds: the person who asked is waiting on a
            // page, so after two minutes the change is said to have failed
            // and the old password to be in force.
            Job::SetPbxPassword => 8,
            // About an hour; an attempt left without an answer is then
            // marked failed, and the next day's attempt is another charge.
            Job::Replenish => 12,
            // The schedule queues them again anyway.
            Job::ReviewStanding | Job::BillRecurring | Job::SendStatements => 5,
            // Months are made two ahead, and ingestion makes any it lacks:
            // the next day's run is soon enough.
            Job::MakeCallMonths => 5,
        }
    }

    async fn run(
        self,
        conn: &mut AsyncPgConnection,
        ctx: &JobContext,
        data: &str,
    ) -> anyhow::Result<()> {
        match self {
            Job::PurgeExpiredSessions => {
                let sessions = sessions::purge_expired(conn).await?;
                let attempts = sign_in::purge_old_attempts(conn).await?
                    + recovery::purge_old_requests(conn).await?;
                let links = email_changes::purge_expired(conn).await?;
                tracing::info!(sessions, attempts, links, "purged expired sessions");
                Ok(())
            }
            Job::ProvisionPbx => provisioning::provision(conn, ctx, data).await,
            Job::PullCdrs => {
                let pbx: i64 = data
                    .trim()
                    .parse()
                    .with_context(|| format!("{data:?} is not a PBX id"))?;
                let (ingested, full) = cdr_pull::pull(conn, ctx, pbx).await?;
                tracing::info!(
                    pbx,
                    accepted = ingested.accepted,
                    duplicates = ingested.duplicates,
                    "pulled CDRs"
                );
                if full {
                    queue::enqueue(conn, queue::PULL_CDRS, data, None).await?;
                }
                Ok(())
            }
            Job::TakeBackup => backups::take(ctx, data).await,
            Job::PbxCommand => balance::pbx_command(conn, ctx, data).await,
            Job::ReviewStanding => balance::review_standing(conn, ctx, data).await,
            Job::Replenish => balance::replenish(conn, ctx, data).await,
            Job::BillRecurring => balance::bill_recurring(conn, ctx).await,
            Job::SendStatements => balance::send_statements(conn, ctx, data).await,
            Job::SetPbxPassword => gui_passwords::send(conn, ctx, data).await,
            Job::AssignNumber => numbers::assign(conn, ctx, data).await,
            Job::UnassignNumber => numbers::unassign(conn, ctx, data).await,
            Job::MakeCallMonths => {
                let months = months::coming(ctx.clock.now());
                let made = months::make_ready(conn, &months).await?;
                let vacuumed = months::vacuum_read_months(conn, ctx.clock.now()).await?;
                tracing::info!(made, vacuumed, "call months ready");
                Ok(())
            }
        }
    }

    /// Records a failed attempt where people will see it.
    async fn note_failure(
        self,
        conn: &mut AsyncPgConnection,
        ctx: &JobContext,
        data: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        match self {
            Job::AssignNumber => numbers::assign_failed(conn, ctx, data, error).await,
            Job::UnassignNumber | Job::MakeCallMonths => Ok(()),
            Job::PurgeExpiredSessions
            | Job::PullCdrs
            | Job::TakeBackup
            | Job::PbxCommand
            | Job::ReviewStanding
            | Job::Replenish
            | Job::BillRecurring
            | Job::SendStatements => Ok(()),
            Job::ProvisionPbx => provisioning::note_failure(conn, data, error).await,
            Job::SetPbxPassword => gui_passwords::note_failure(conn, data, error).await,
        }
    }

    /// The retry budget is spent.
    async fn give_up(
        self,
        conn: &mut AsyncPgConnection,
        ctx: &JobContext,
        data: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        match self {
            Job::PurgeExpiredSessions
            | Job::PullCdrs
            | Job::ReviewStanding
            | Job::BillRecurring
            | Job::SendStatements
            | Job::MakeCallMonths => Ok(()),
            Job::ProvisionPbx => provisioning::give_up(conn, ctx, data, error).await,
            Job::TakeBackup => backups::give_up(conn, ctx, data, error).await,
            Job::PbxCommand => balance::pbx_command_given_up(conn, ctx, data, error).await,
            Job::Replenish => balance::replenish_given_up(conn, ctx, data, error).await,
            Job::SetPbxPassword => gui_passwords::give_up(conn, ctx, data, error).await,
            Job::AssignNumber => numbers::assign_given_up(conn, ctx, data, error).await,
            Job::UnassignNumber => numbers::unassign_given_up(conn, ctx, data, error).await,
        }
    }
}

/// Queues a job (see `queue::enqueue`).
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    job: Job,
    data: &str,
    dedupe_key: Option<&str>,
) -> QueryResult<bool> {
    queue::enqueue(conn, job.name(), data, dedupe_key).await
}

/// How long to wait before attempt `attempts + 1`: 2^attempts seconds, at most an hour.
pub fn backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 12)).min(chrono::Duration::hours(1))
}

/// What one pass of the runner did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub succeeded: usize,
    pub failed: usize,
    pub given_up: usize,
}

enum Outcome {
    Succeeded,
    Failed,
    GivenUp,
}

/// Runs every job that is due, one at a time; returns what happened.
pub async fn run_due(pool: &Pool, ctx: &JobContext) -> anyhow::Result<Pass> {
    run_due_in(pool, ctx, Lane::All).await
}

/// Which jobs a runner takes. Backups take minutes on a large database, so
/// they have a runner of their own and never hold up provisioning or CDR
/// pulls behind them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    All,
    Backups,
    AllButBackups,
}

/// Runs every job of `lane` that is due, one at a time.
pub async fn run_due_in(pool: &Pool, ctx: &JobContext, lane: Lane) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    loop {
        let mut conn = db::conn(pool).await?;
        let outcome = run_one(&mut conn, ctx, lane)
            .await
            .context("running a job")?;
        match outcome {
            None => return Ok(pass),
            Some(Outcome::Succeeded) => pass.succeeded += 1,
            Some(Outcome::Failed) => pass.failed += 1,
            Some(Outcome::GivenUp) => pass.given_up += 1,
        }
    }
}

/// How long a claimed job is left to its runner before another instance
/// takes it up, as it does after a crash: longer than any job runs (a
/// provisioning run is one controller command within its timeout; a backup
/// of a large database takes minutes, so its lane leases for hours).
fn lease(ctx: &JobContext, lane: Lane) -> chrono::Duration {
    if lane == Lane::Backups {
        return chrono::Duration::hours(6);
    }
    let controller = i64::try_from(ctx.settings.controller.timeout_seconds).unwrap_or(i64::MAX);
    chrono::Duration::seconds(controller.saturating_mul(3).max(600))
}

/// A job row claimed by this runner. `attempts` counts this attempt and
/// fences the claim: once the lease ran out and another runner claimed the
/// row, this one's bookkeeping matches nothing.
struct Claim {
    id: i64,
    job_type: String,
    data: String,
    attempts: i32,
    last_error: Option<String>,
}

/// Claims the oldest due job for a lease, in a transaction of its own that
/// ends before the job runs: a job waiting on the controller holds no
/// transaction and no lock, and the row stays queued until the job is done.
async fn claim(
    conn: &mut AsyncPgConnection,
    lease: chrono::Duration,
    lane: Lane,
) -> QueryResult<Option<Claim>> {
    let (any, backups) = match lane {
        Lane::All => (true, false),
        Lane::Backups => (false, true),
        Lane::AllButBackups => (false, false),
    };
    conn.transaction(async |conn| {
        let in_lane = any
            .into_sql::<diesel::sql_types::Bool>()
            .or(background_jobs::job_type
                .eq(Job::TakeBackup.name())
                .eq(backups));
        let due: Option<(i64, String, String, i32, Option<String>)> = background_jobs::table
            .filter(background_jobs::run_after.le(Utc::now()))
            .filter(in_lane)
            .order(background_jobs::id)
            .select((
                background_jobs::id,
                background_jobs::job_type,
                background_jobs::data,
                background_jobs::attempts,
                background_jobs::last_error,
            ))
            .for_update()
            .skip_locked()
            .first(conn)
            .await
            .optional()?;
        let Some((id, job_type, data, attempts, last_error)) = due else {
            return Ok(None);
        };
        diesel::update(background_jobs::table.find(id))
            .set((
                background_jobs::attempts.eq(attempts + 1),
                background_jobs::run_after.eq(Utc::now() + lease),
            ))
            .execute(conn)
            .await?;
        Ok(Some(Claim {
            id,
            job_type,
            data,
            attempts: attempts + 1,
            last_error,
        }))
    })
    .await
}

/// The claimed row, while this runner's claim holds.
fn claimed(
    claim: &Claim,
) -> diesel::dsl::Filter<
    diesel::dsl::Find<background_jobs::table, i64>,
    diesel::dsl::Eq<background_jobs::attempts, i32>,
> {
    background_jobs::table
        .find(claim.id)
        .filter(background_jobs::attempts.eq(claim.attempts))
}

/// Removes a finished job's row.
async fn finish(conn: &mut AsyncPgConnection, claim: &Claim) -> QueryResult<()> {
    if diesel::delete(claimed(claim)).execute(conn).await? == 0 {
        tracing::warn!(job = %claim.job_type, id = claim.id, "the job's lease ran out before it finished; another runner has it");
    }
    Ok(())
}

/// Tells people the job is given up, and removes it, all or nothing. If the
/// hook fails, the job is removed all the same.
async fn give_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    job: Job,
    claim: &Claim,
    error: &str,
) -> anyhow::Result<()> {
    tracing::error!(job = %claim.job_type, attempts = claim.attempts, "job given up");
    conn.transaction(async |conn| {
        if let Err(hook) = conn
            .transaction(async |conn| job.give_up(conn, ctx, &claim.data, error).await)
            .await
        {
            tracing::error!(job = %claim.job_type, error = %format!("{hook:#}"), "giving up failed");
        }
        finish(conn, claim).await
    })
    .await?;
    Ok(())
}

/// Claims and runs one due job; `None` when there is none.
async fn run_one(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    lane: Lane,
) -> anyhow::Result<Option<Outcome>> {
    let Some(claim) = claim(conn, lease(ctx, lane), lane).await? else {
        return Ok(None);
    };
    let outcome = run_claimed(conn, ctx, &claim).await?;
    switchboard_core::metrics::global().job(
        &claim.job_type,
        match outcome {
            Outcome::Succeeded => JobOutcome::Succeeded,
            Outcome::Failed => JobOutcome::Failed,
            Outcome::GivenUp => JobOutcome::GivenUp,
        },
    );
    Ok(Some(outcome))
}

/// Runs a claimed job, and retries or gives it up if it fails.
async fn run_claimed(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    claim: &Claim,
) -> anyhow::Result<Outcome> {
    let Some(job) = Job::from_name(&claim.job_type) else {
        // A job this version does not know (left by another version, say):
        // keeping it would retry it forever.
        tracing::error!(job = %claim.job_type, id = claim.id, "no job is called this; given up");
        finish(conn, claim).await?;
        return Ok(Outcome::GivenUp);
    };
    if claim.attempts > job.max_attempts() {
        // Every attempt allowed was claimed and none came back: the runner
        // stopped during each (a crash, a restart).
        let error = claim
            .last_error
            .clone()
            .unwrap_or_else(|| "the runner stopped during every attempt".into());
        give_up(conn, ctx, job, claim, &error).await?;
        return Ok(Outcome::GivenUp);
    }
    // A job that calls outside manages its own transactions around the
    // call; the others run in one, undone whole if they fail.
    let result = if job.runs_in_one_transaction() {
        conn.transaction(async |conn| job.run(conn, ctx, &claim.data).await)
            .await
    } else {
        job.run(conn, ctx, &claim.data).await
    };
    let Err(error) = result else {
        finish(conn, claim).await?;
        return Ok(Outcome::Succeeded);
    };
    let error = format!("{error:#}");
    tracing::warn!(job = %claim.job_type, attempts = claim.attempts, %error, "job failed");
    // The hook runs in a transaction of its own: if it fails, the attempt still counts.
    if let Err(hook) = conn
        .transaction(async |conn| job.note_failure(conn, ctx, &claim.data, &error).await)
        .await
    {
        tracing::error!(job = %claim.job_type, error = %format!("{hook:#}"), "recording a failure failed");
    }
    if claim.attempts >= job.max_attempts() {
        give_up(conn, ctx, job, claim, &error).await?;
        return Ok(Outcome::GivenUp);
    }
    diesel::update(claimed(claim))
        .set((
            background_jobs::last_error.eq(&error),
            background_jobs::run_after.eq(Utc::now() + backoff(claim.attempts - 1)),
        ))
        .execute(conn)
        .await?;
    Ok(Outcome::Failed)
}

/// Starts the schedule, the job runner and the outbox; `Workers::stop` ends
/// them.
pub async fn start(pool: Pool, ctx: JobContext, mailer: Mailer) -> anyhow::Result<Workers> {
    let scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let pull_pool = pool.clone();
    scheduler
        .add(
            CronJob::new_async("0 */5 * * * *", move |_, _| {
                let pool = pull_pool.clone();
                Box::pin(async move {
                    let queued = async {
                        let mut conn = db::conn(&pool).await?;
                        for pbx in
                            switchboard_core::commerce::pbxes::with_cdr_source(&mut conn).await?
                        {
                            let data = pbx.to_string();
                            let key = format!("{}:{pbx}", queue::PULL_CDRS);
                            enqueue(&mut conn, Job::PullCdrs, &data, Some(&key)).await?;
                        }
                        anyhow::Ok(())
                    };
                    if let Err(error) = queued.await {
                        tracing::warn!(error = %format!("{error:#}"), "could not queue CDR pulls");
                    }
                })
            })
            .context("scheduling CDR pulls")?,
        )
        .await?;
    schedule_fixed(&scheduler, &pool).await?;
    if ctx.settings.backups.folder.is_some() {
        let backup_pool = pool.clone();
        let schedule = ctx.settings.backups.schedule.clone();
        scheduler
            .add(
                CronJob::new_async(schedule.as_str(), move |_, _| {
                    let pool = backup_pool.clone();
                    Box::pin(async move {
                        let queued = async {
                            let mut conn = db::conn(&pool).await?;
                            backups::queue(&mut conn, backups::slot(Utc::now())).await
                        };
                        if let Err(error) = queued.await {
                            tracing::warn!(error = %format!("{error:#}"), "could not queue a backup");
                        }
                    })
                })
                .with_context(|| format!("backups.schedule {schedule:?} is not a cron schedule"))?,
            )
            .await?;
    }
    scheduler.start().await.context("starting the scheduler")?;
    let mut workers = spawn_workers(pool, ctx, mailer);
    workers.scheduler = Some(scheduler);
    Ok(workers)
}

/// Queues a job from the schedule; a failure is logged (the next tick tries again).
async fn queue_from_schedule(pool: &Pool, job: Job, data: &str, dedupe: &str) {
    let queued = async {
        let mut conn = db::conn(pool).await?;
        enqueue(&mut conn, job, data, Some(dedupe))
            .await
            .map_err(anyhow::Error::from)
    };
    if let Err(error) = queued.await {
        tracing::warn!(job = job.name(), error = %format!("{error:#}"), "could not queue a job");
    }
}

/// The jobs on a fixed schedule, each queued under its own name so that
/// every instance's scheduler queues it once:
/// - the session purge every hour;
/// - the standing review every minute;
/// - recurring charges every ten minutes, and at start, so periods missed
///   while no server ran are billed at once;
/// - call months every day, and at start (a server that was down for a while
///   catches up);
/// - statements on the first of the month, for the month before.
async fn schedule_fixed(scheduler: &JobScheduler, pool: &Pool) -> anyhow::Result<()> {
    let every = [
        ("0 17 * * * *", Job::PurgeExpiredSessions),
        ("30 * * * * *", Job::ReviewStanding),
        ("0 */10 * * * *", Job::BillRecurring),
        ("0 20 3 * * *", Job::MakeCallMonths),
    ];
    for (cron, job) in every {
        let pool = pool.clone();
        scheduler
            .add(
                CronJob::new_async(cron, move |_, _| {
                    let pool = pool.clone();
                    Box::pin(async move { queue_from_schedule(&pool, job, "", job.name()).await })
                })
                .with_context(|| format!("scheduling {}", job.name()))?,
            )
            .await?;
    }
    let statements_pool = pool.clone();
    scheduler
        .add(
            CronJob::new_async("0 0 6 1 * *", move |_, _| {
                let pool = statements_pool.clone();
                Box::pin(async move {
                    let month = (Utc::now() - chrono::Duration::days(1))
                        .format("%Y-%m")
                        .to_string();
                    let key = format!("{}:{month}", Job::SendStatements.name());
                    queue_from_schedule(&pool, Job::SendStatements, &month, &key).await
                })
            })
            .context("scheduling statements")?,
        )
        .await?;
    for job in [Job::BillRecurring, Job::MakeCallMonths] {
        queue_from_schedule(pool, job, "", job.name()).await;
    }
    Ok(())
}

/// The schedule, the job runner and the outbox while they run.
#[must_use = "dropping Workers leaves them running until the process ends"]
pub struct Workers {
    scheduler: Option<JobScheduler>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Stops the schedule and waits for the runner and the outbox to finish
    /// what they are doing: the database can then go away without them
    /// tripping over it.
    pub async fn stop(mut self) {
        if let Some(mut scheduler) = self.scheduler.take() {
            if let Err(error) = scheduler.shutdown().await {
                tracing::warn!(%error, "the scheduler did not stop cleanly");
            }
        }
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        tracing::info!("background work stopped");
    }
}

/// Waits `pause`, or less if `stop` is set; says whether to go on.
async fn pause_unless_stopped(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    pause: Duration,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        changed = stop.changed() => changed.is_err() && {
            // The sender is gone without a word: keep working, as before
            // there was a way to stop.
            tokio::time::sleep(pause).await;
            true
        },
    }
}

/// Runs due jobs and delivers the outbox every second, until stopped.
pub fn spawn_workers(pool: Pool, ctx: JobContext, mailer: Mailer) -> Workers {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let outbox_pool = pool.clone();
    let mut runners = Vec::new();
    for lane in [Lane::AllButBackups, Lane::Backups] {
        let (pool, ctx) = (pool.clone(), ctx.clone());
        let mut runner_stop = stopped.clone();
        runners.push(tokio::spawn(async move {
            loop {
                if let Err(error) = run_due_in(&pool, &ctx, lane).await {
                    tracing::warn!(error = %format!("{error:#}"), "the job runner could not run");
                }
                if !pause_unless_stopped(&mut runner_stop, Duration::from_secs(1)).await {
                    break;
                }
            }
        }));
    }
    let mut outbox_stop = stopped;
    let outbox = tokio::spawn(async move {
        loop {
            if let Err(error) = deliver_due(&outbox_pool, &mailer).await {
                tracing::warn!(error = %format!("{error:#}"), "the outbox could not be delivered");
            }
            if !pause_unless_stopped(&mut outbox_stop, Duration::from_secs(1)).await {
                break;
            }
        }
    });
    Workers {
        scheduler: None,
        stop,
        tasks: runners.into_iter().chain([outbox]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_an_hour() {
        assert_eq!(backoff(0), chrono::Duration::seconds(1));
        assert_eq!(backoff(3), chrono::Duration::seconds(8));
        assert_eq!(backoff(30), chrono::Duration::hours(1));
    }

    #[test]
    fn job_names_are_stable() {
        assert_eq!(
            Job::from_name("purge_expired_sessions"),
            Some(Job::PurgeExpiredSessions)
        );
        assert_eq!(Job::from_name("provision_pbx"), Some(Job::ProvisionPbx));
        assert_eq!(
            Job::from_name("make_call_months"),
            Some(Job::MakeCallMonths)
        );
        assert_eq!(Job::from_name("nothing"), None);
    }
}

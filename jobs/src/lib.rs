//! Background jobs. Jobs are rows, not timers: the scheduler only enqueues
//! (a dedupe key makes enqueuing from several instances harmless), and the
//! runner claims one row at a time with `FOR UPDATE SKIP LOCKED`, so no two
//! instances ever run the same job at once. A failed job is retried with
//! exponential backoff until its budget is spent, then given up with a
//! notice; every job can run twice without harm.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use switchboard_controller::Controller;
use switchboard_core::config::Settings;
use switchboard_core::db::{self, Pool};
use switchboard_core::keys::SecretKey;
use switchboard_core::schema::background_jobs;
use switchboard_core::{people::sessions, people::sign_in, queue};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

pub mod backups;
pub mod cdr_pull;
pub mod mailer;
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
}

impl Job {
    /// The name stored in the row; never change one that has shipped.
    pub fn name(self) -> &'static str {
        match self {
            Job::PurgeExpiredSessions => queue::PURGE_EXPIRED_SESSIONS,
            Job::ProvisionPbx => queue::PROVISION_PBX,
            Job::PullCdrs => queue::PULL_CDRS,
            Job::TakeBackup => "take_backup",
        }
    }

    fn from_name(name: &str) -> Option<Job> {
        [
            Job::PurgeExpiredSessions,
            Job::ProvisionPbx,
            Job::PullCdrs,
            Job::TakeBackup,
        ]
        .into_iter()
        .find(|job| job.name() == name)
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
                let attempts = sign_in::purge_old_attempts(conn).await?;
                tracing::info!(sessions, attempts, "purged expired sessions");
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
        }
    }

    /// Records a failed attempt where people will see it.
    async fn note_failure(
        self,
        conn: &mut AsyncPgConnection,
        data: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        match self {
            Job::PurgeExpiredSessions | Job::PullCdrs | Job::TakeBackup => Ok(()),
            Job::ProvisionPbx => provisioning::note_failure(conn, data, error).await,
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
            Job::PurgeExpiredSessions | Job::PullCdrs => Ok(()),
            Job::ProvisionPbx => provisioning::give_up(conn, ctx, data, error).await,
            Job::TakeBackup => backups::give_up(conn, ctx, data, error).await,
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
        let outcome = conn
            .transaction(async |conn| run_one(conn, ctx, lane).await)
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

/// Claims and runs one due job; `None` when there is none.
async fn run_one(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    lane: Lane,
) -> anyhow::Result<Option<Outcome>> {
    let (any, backups) = match lane {
        Lane::All => (true, false),
        Lane::Backups => (false, true),
        Lane::AllButBackups => (false, false),
    };
    let in_lane = any
        .into_sql::<diesel::sql_types::Bool>()
        .or(background_jobs::job_type
            .eq(Job::TakeBackup.name())
            .eq(backups));
    let claimed: Option<(i64, String, String, i32)> = background_jobs::table
        .filter(background_jobs::run_after.le(Utc::now()))
        .filter(in_lane)
        .order(background_jobs::id)
        .select((
            background_jobs::id,
            background_jobs::job_type,
            background_jobs::data,
            background_jobs::attempts,
        ))
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()?;
    let Some((id, job_type, data, attempts)) = claimed else {
        return Ok(None);
    };
    let Some(job) = Job::from_name(&job_type) else {
        // A job this version does not know (left by another version, say):
        // keeping it would retry it forever.
        tracing::error!(job = %job_type, id, "no job is called this; given up");
        diesel::delete(background_jobs::table.find(id))
            .execute(conn)
            .await?;
        return Ok(Some(Outcome::GivenUp));
    };
    // The job's own work runs in a savepoint: if it fails, its writes are
    // undone but the attempt is still recorded.
    let result = conn
        .transaction(async |conn| job.run(conn, ctx, &data).await)
        .await;
    let Err(error) = result else {
        diesel::delete(background_jobs::table.find(id))
            .execute(conn)
            .await?;
        return Ok(Some(Outcome::Succeeded));
    };
    let attempts = attempts + 1;
    let error = format!("{error:#}");
    tracing::warn!(job = %job_type, attempts, %error, "job failed");
    // The hooks run in savepoints too: if one fails, the attempt still counts.
    if let Err(hook) = conn
        .transaction(async |conn| job.note_failure(conn, &data, &error).await)
        .await
    {
        tracing::error!(job = %job_type, error = %format!("{hook:#}"), "recording a failure failed");
    }
    if attempts >= job.max_attempts() {
        tracing::error!(job = %job_type, attempts, "job given up");
        if let Err(hook) = conn
            .transaction(async |conn| job.give_up(conn, ctx, &data, &error).await)
            .await
        {
            tracing::error!(job = %job_type, error = %format!("{hook:#}"), "giving up failed");
        }
        diesel::delete(background_jobs::table.find(id))
            .execute(conn)
            .await?;
        return Ok(Some(Outcome::GivenUp));
    }
    diesel::update(background_jobs::table.find(id))
        .set((
            background_jobs::attempts.eq(attempts),
            background_jobs::last_error.eq(&error),
            background_jobs::run_after.eq(Utc::now() + backoff(attempts - 1)),
        ))
        .execute(conn)
        .await?;
    Ok(Some(Outcome::Failed))
}

/// Starts the schedule, the job runner and the outbox; they stop when the
/// process does.
pub async fn start(pool: Pool, ctx: JobContext, mailer: Mailer) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let schedule_pool = pool.clone();
    scheduler
        .add(
            CronJob::new_async("0 17 * * * *", move |_, _| {
                let pool = schedule_pool.clone();
                Box::pin(async move {
                    let queued = async {
                        let mut conn = db::conn(&pool).await?;
                        let name = Job::PurgeExpiredSessions.name();
                        enqueue(&mut conn, Job::PurgeExpiredSessions, "{}", Some(name))
                            .await
                            .map_err(anyhow::Error::from)
                    };
                    if let Err(error) = queued.await {
                        tracing::warn!(error = %format!("{error:#}"), "could not queue a job");
                    }
                })
            })
            .context("scheduling the session purge")?,
        )
        .await?;
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
    spawn_workers(pool, ctx, mailer);
    Ok(scheduler)
}

/// Runs due jobs and delivers the outbox every few seconds, until the
/// process ends.
pub fn spawn_workers(pool: Pool, ctx: JobContext, mailer: Mailer) {
    let outbox_pool = pool.clone();
    for lane in [Lane::AllButBackups, Lane::Backups] {
        let (pool, ctx) = (pool.clone(), ctx.clone());
        tokio::spawn(async move {
            loop {
                if let Err(error) = run_due_in(&pool, &ctx, lane).await {
                    tracing::warn!(error = %format!("{error:#}"), "the job runner could not run");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    tokio::spawn(async move {
        loop {
            if let Err(error) = deliver_due(&outbox_pool, &mailer).await {
                tracing::warn!(error = %format!("{error:#}"), "the outbox could not be delivered");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
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
        assert_eq!(Job::from_name("nothing"), None);
    }
}

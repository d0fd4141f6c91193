//! Background jobs. Jobs are rows, not timers: the scheduler only enqueues
//! (a dedupe key makes enqueuing from several instances harmless), and the
//! runner claims one row at a time with `FOR UPDATE SKIP LOCKED`, so no two
//! instances ever run the same job at once. A failed job is retried with
//! exponential backoff; every job can run twice without harm.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use switchboard_core::db::{self, Pool};
use switchboard_core::schema::background_jobs;
use switchboard_core::{sessions, sign_in};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

pub mod mailer;

pub use mailer::{deliver_due, Delivery, Mailer};

/// Every kind of job, by its stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Deletes expired sessions and sign-in attempts no limit looks at.
    PurgeExpiredSessions,
}

impl Job {
    /// The name stored in the row; never change one that has shipped.
    pub fn name(self) -> &'static str {
        match self {
            Job::PurgeExpiredSessions => "purge_expired_sessions",
        }
    }

    fn from_name(name: &str) -> Option<Job> {
        match name {
            "purge_expired_sessions" => Some(Job::PurgeExpiredSessions),
            _ => None,
        }
    }

    async fn run(self, conn: &mut AsyncPgConnection, _data: &str) -> anyhow::Result<()> {
        match self {
            Job::PurgeExpiredSessions => {
                let sessions = sessions::purge_expired(conn).await?;
                let attempts = sign_in::purge_old_attempts(conn).await?;
                tracing::info!(sessions, attempts, "purged expired sessions");
                Ok(())
            }
        }
    }
}

/// Queues a job. With a dedupe key, a job already queued under that key is
/// not queued again; returns whether a row was added.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    job: Job,
    data: &str,
    dedupe_key: Option<&str>,
) -> QueryResult<bool> {
    diesel::insert_into(background_jobs::table)
        .values((
            background_jobs::job_type.eq(job.name()),
            background_jobs::data.eq(data),
            background_jobs::dedupe_key.eq(dedupe_key),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|rows| rows == 1)
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
}

/// Runs every job that is due, one at a time; returns what happened.
pub async fn run_due(pool: &Pool) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    loop {
        let mut conn = db::conn(pool).await?;
        let outcome = conn
            .transaction(async |conn| run_one(conn).await)
            .await
            .context("running a job")?;
        match outcome {
            None => return Ok(pass),
            Some(true) => pass.succeeded += 1,
            Some(false) => pass.failed += 1,
        }
    }
}

/// Claims and runs one due job; `None` when there is none.
async fn run_one(conn: &mut AsyncPgConnection) -> anyhow::Result<Option<bool>> {
    let claimed: Option<(i64, String, String, i32)> = background_jobs::table
        .filter(background_jobs::run_after.le(Utc::now()))
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
    // The job's own work runs in a savepoint: if it fails, its writes are
    // undone but the attempt is still recorded.
    let result = match Job::from_name(&job_type) {
        Some(job) => {
            conn.transaction(async |conn| job.run(conn, &data).await)
                .await
        }
        None => Err(anyhow::anyhow!("no job is called {job_type:?}")),
    };
    match result {
        Ok(()) => {
            diesel::delete(background_jobs::table.find(id))
                .execute(conn)
                .await?;
            Ok(Some(true))
        }
        Err(error) => {
            tracing::warn!(job = %job_type, attempts = attempts + 1, error = %format!("{error:#}"), "job failed");
            diesel::update(background_jobs::table.find(id))
                .set((
                    background_jobs::attempts.eq(attempts + 1),
                    background_jobs::last_error.eq(format!("{error:#}")),
                    background_jobs::run_after.eq(Utc::now() + backoff(attempts)),
                ))
                .execute(conn)
                .await?;
            Ok(Some(false))
        }
    }
}

/// Starts the schedule, the job runner and the outbox; they stop when the
/// process does.
pub async fn start(pool: Pool, mailer: Mailer) -> anyhow::Result<JobScheduler> {
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
                        enqueue(
                            &mut conn,
                            Job::PurgeExpiredSessions,
                            "{}",
                            Some(Job::PurgeExpiredSessions.name()),
                        )
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
    scheduler.start().await.context("starting the scheduler")?;
    let outbox_pool = pool.clone();
    tokio::spawn(async move {
        loop {
            if let Err(error) = run_due(&pool).await {
                tracing::warn!(error = %format!("{error:#}"), "the job runner could not run");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(error) = deliver_due(&outbox_pool, &mailer).await {
                tracing::warn!(error = %format!("{error:#}"), "the outbox could not be delivered");
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });
    Ok(scheduler)
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
            Job::from_name(Job::PurgeExpiredSessions.name()),
            Some(Job::PurgeExpiredSessions)
        );
        assert_eq!(Job::from_name("nothing"), None);
    }
}

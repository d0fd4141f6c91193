//! Scheduled backups. Every instance's schedule queues the same job for the
//! same slot (its time, to the minute, is the job's data and dedupe key), so
//! one instance claims it and takes the backup; an archive already written
//! for the slot is not written again. The oldest scheduled archives past
//! `backups.keep` are deleted; a backup that still fails after its retries
//! is reported to staff by email.

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use diesel_async::AsyncPgConnection;
use switchboard_core::{backup, outbox};

use crate::{enqueue, Job, JobContext};

/// The slot a schedule firing at `now` stands for: the nearest minute, so
/// instances whose clocks differ by seconds name the same one.
pub fn slot(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_round(chrono::Duration::minutes(1))
        .unwrap_or(now)
}

/// Queues the backup of `slot`, once however many instances ask.
pub async fn queue(conn: &mut AsyncPgConnection, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    let data = slot.to_rfc3339();
    let key = format!("{}:{data}", Job::TakeBackup.name());
    Ok(enqueue(conn, Job::TakeBackup, &data, Some(&key)).await?)
}

fn slot_of(data: &str) -> anyhow::Result<DateTime<Utc>> {
    data.parse()
        .with_context(|| format!("{data:?} is not a backup's time"))
}

/// Takes the slot's backup into the folder and prunes the oldest.
pub async fn take(ctx: &JobContext, data: &str) -> anyhow::Result<()> {
    let slot = slot_of(data)?;
    let settings = &ctx.settings.backups;
    let Some(folder) = &settings.folder else {
        // Instances share the schedule's jobs: one without a folder must not
        // mark the slot done without a backup. The job fails loudly, another
        // instance may take it, and staff are told if none can.
        anyhow::bail!(
            "this instance has no backups.folder: give every instance the same backups settings"
        );
    };
    let to = folder.join(backup::scheduled_name(slot));
    if !to.exists() {
        let source = backup::Source {
            database_url: &ctx.database_url,
            bin_dir: &ctx.pg_bin_dir,
            data_dir: &ctx.settings.data_dir,
            key: &ctx.key,
            passphrase: settings.passphrase.as_ref().map(|p| p.expose()),
        };
        let manifest = backup::take(&source, &to)
            .await
            .with_context(|| format!("backing up to {}", to.display()))?;
        tracing::info!(
            archive = %to.display(),
            files = manifest.files.len(),
            key = manifest.has_key(),
            "scheduled backup taken"
        );
    }
    let pruned = backup::prune(folder, settings.keep)?;
    if !pruned.is_empty() {
        tracing::info!(deleted = pruned.len(), "old scheduled backups deleted");
    }
    Ok(())
}

/// Tells staff the slot's backup could not be taken.
pub async fn give_up(
    conn: &mut AsyncPgConnection,
    ctx: &JobContext,
    data: &str,
    error: &str,
) -> anyhow::Result<()> {
    let slot = slot_of(data)?;
    let folder = ctx
        .settings
        .backups
        .folder
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    let notice = outbox::backup_failed(
        &ctx.settings.email.staff_address,
        &slot.to_rfc3339(),
        &folder,
        error,
    );
    outbox::queue(conn, &notice, Some(&format!("backup-failed:{data}"))).await?;
    Ok(())
}

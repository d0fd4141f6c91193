//! Finding the database: the configured server, or the private cluster in the
//! data folder, which Switchboard owns, supervises and stops.

use std::time::Duration;

use anyhow::Context;
use switchboard_core::cluster::{Cluster, FolderLock};
use switchboard_core::config::Settings;
use switchboard_core::db;

/// The private cluster's application database.
pub const DATABASE: &str = "switchboard";

/// A database ready for use, and the cluster behind it when Switchboard runs
/// its own.
pub struct Database {
    pub url: String,
    pub cluster: Option<Cluster>,
    /// Whether this process owns the cluster: it stops it in `close` (and a
    /// server restarts it when it dies).
    pub owns_cluster: bool,
    lock: Option<FolderLock>,
}

/// Starts the private cluster when no `database_url` is configured, creates
/// the application database, and runs pending migrations. `command` names
/// who asks (`serve`, `migrate`, …): a server owns the cluster for its
/// whole life, adopting one an earlier, killed run left behind; a one-off
/// command leaves it as it found it.
pub async fn open(settings: &Settings, command: &str) -> anyhow::Result<Database> {
    let database = open_named(settings, DATABASE, command).await?;
    let applied = db::migrate(&database.url).await?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    Ok(database)
}

/// The same without migrating: the database as it is (a backup takes what
/// is there; a restore needs it empty). `name` is the private cluster's
/// database to use (the benchmark has its own).
pub async fn open_named(
    settings: &Settings,
    name: &str,
    command: &str,
) -> anyhow::Result<Database> {
    if let Some(url) = &settings.database_url {
        return Ok(Database {
            url: url.expose().to_owned(),
            cluster: None,
            owns_cluster: false,
            lock: None,
        });
    }
    let lock = take_folderlock(settings, command).await?;
    let cluster = Cluster::new(&settings.data_dir)?;
    let started = std::time::Instant::now();
    let for_start = cluster.clone();
    let started_cluster = tokio::task::spawn_blocking(move || for_start.start())
        .await
        .context("starting PostgreSQL")??;
    let owns_cluster = match (&lock, command) {
        (Some(_), "serve") => {
            if !started_cluster {
                tracing::warn!(
                    "adopting the private PostgreSQL an earlier run left running (that run \
                     was killed before it could stop it): it is stopped when this one ends"
                );
            }
            true
        }
        (Some(_), _) => started_cluster,
        (None, _) => false,
    };
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        ms = started.elapsed().as_millis() as u64,
        "private PostgreSQL is up"
    );
    db::create_database(&cluster.database_url("postgres"), name, None).await?;
    Ok(Database {
        url: cluster.database_url(name),
        cluster: Some(cluster),
        owns_cluster,
        lock,
    })
}

/// The data folder's lock for `command`. A server refuses to share the
/// folder with another server and waits for a one-off command to finish; a
/// one-off command runs beside a server as its guest (`None`).
async fn take_folderlock(settings: &Settings, command: &str) -> anyhow::Result<Option<FolderLock>> {
    let mut said = false;
    loop {
        match FolderLock::try_take(&settings.data_dir, command)? {
            Ok(lock) => return Ok(Some(lock)),
            Err(holder) if command != "serve" => {
                tracing::debug!(%holder, "the data folder is in use: working beside it");
                return Ok(None);
            }
            Err(holder) if holder.command == "serve" => anyhow::bail!(
                "another Switchboard is serving from {} already: {holder}",
                settings.data_dir.display()
            ),
            Err(holder) => {
                if !said {
                    tracing::info!(%holder, "waiting for it to finish with the data folder");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The longest wait between two attempts to restart the private cluster.
const MAX_RESTART_WAIT: Duration = Duration::from_secs(60);

impl Database {
    /// Whether this process holds the data folder's lock (no server runs
    /// from it beside this one).
    pub fn holds_folder(&self) -> bool {
        self.lock.is_some()
    }

    /// Stops the private cluster if this process owns it.
    pub fn close(&self) -> anyhow::Result<()> {
        match &self.cluster {
            Some(cluster) if self.owns_cluster => cluster.stop(),
            _ => Ok(()),
        }
    }

    /// Watches the private cluster this process owns and starts it again when
    /// it dies, waiting longer after each failed attempt (1 s, 2 s, 4 s, … a
    /// minute), with a log line each time. Abort the task before `close`.
    pub fn supervise(&self) -> Option<tokio::task::JoinHandle<()>> {
        let cluster = self.cluster.clone().filter(|_| self.owns_cluster)?;
        Some(tokio::spawn(async move {
            let mut attempts = 0u32;
            loop {
                let wait = if attempts == 0 {
                    Duration::from_secs(2)
                } else {
                    Duration::from_secs(1 << (attempts - 1).min(6)).min(MAX_RESTART_WAIT)
                };
                tokio::time::sleep(wait).await;
                let check = cluster.clone();
                let running = tokio::task::spawn_blocking(move || check.is_running()).await;
                if matches!(running, Ok(Ok(true))) {
                    if attempts > 0 {
                        tracing::info!(attempts, "the private PostgreSQL is up again");
                        attempts = 0;
                    }
                    continue;
                }
                attempts += 1;
                tracing::error!(
                    attempt = attempts,
                    "the private PostgreSQL is down; restarting it"
                );
                let start = cluster.clone();
                match tokio::task::spawn_blocking(move || start.start()).await {
                    Ok(Ok(_)) => {
                        tracing::info!(attempts, "the private PostgreSQL is up again");
                        attempts = 0;
                    }
                    Ok(Err(error)) => tracing::error!(
                        attempt = attempts,
                        error = %format!("{error:#}"),
                        "the private PostgreSQL did not start; trying again"
                    ),
                    Err(error) => tracing::error!(%error, "restarting PostgreSQL panicked"),
                }
            }
        }))
    }
}

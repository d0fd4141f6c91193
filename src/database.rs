//! Finding the database: the configured server, or the private cluster in the
//! data folder.

use anyhow::Context;
use switchboard_core::cluster::Cluster;
use switchboard_core::config::Settings;
use switchboard_core::db;

/// The private cluster's application database.
pub const DATABASE: &str = "switchboard";

/// A database ready for use, and the cluster behind it when Switchboard runs
/// its own.
pub struct Database {
    pub url: String,
    pub cluster: Option<Cluster>,
    /// Whether opening the database started the cluster (so a one-off command
    /// should stop it again).
    pub started_cluster: bool,
}

/// Starts the private cluster when no `database_url` is configured, creates
/// the application database, and runs pending migrations.
pub async fn open(settings: &Settings) -> anyhow::Result<Database> {
    open_named(settings, DATABASE).await
}

/// The same for a database of another name in the private cluster (the
/// benchmark's, which it may fill and empty at will).
pub async fn open_named(settings: &Settings, name: &str) -> anyhow::Result<Database> {
    let database = match &settings.database_url {
        Some(url) => Database {
            url: url.expose().to_owned(),
            cluster: None,
            started_cluster: false,
        },
        None => {
            let cluster = Cluster::new(&settings.data_dir)?;
            let started = std::time::Instant::now();
            let for_start = cluster.clone();
            let started_cluster = tokio::task::spawn_blocking(move || for_start.start())
                .await
                .context("starting PostgreSQL")??;
            tracing::info!(
                data_dir = %settings.data_dir.display(),
                ms = started.elapsed().as_millis() as u64,
                "private PostgreSQL is up"
            );
            db::create_database(&cluster.database_url("postgres"), name, None).await?;
            Database {
                url: cluster.database_url(name),
                cluster: Some(cluster),
                started_cluster,
            }
        }
    };
    let applied = db::migrate(&database.url).await?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    Ok(database)
}

impl Database {
    /// Stops the private cluster if `open` started it.
    pub fn close(&self) -> anyhow::Result<()> {
        match &self.cluster {
            Some(cluster) if self.started_cluster => cluster.stop(),
            _ => Ok(()),
        }
    }
}

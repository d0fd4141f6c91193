//! The command line.

use std::future::Future;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use anyhow::Context;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use switchboard_core::config::{Mode, Overrides, Settings};
use switchboard_core::domain::Email;
use switchboard_core::keys::{self, SecretKey};
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{audit, backup, cluster, db, people::passwords, sealed, Role, Username};
use switchboard_web::AppState;

use crate::{database, demo, server};

/// Switchboard: website, billing and control panel for hosted PBXs.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where Switchboard keeps its state (default ./switchboard-data).
    #[arg(long, global = true, value_name = "DIR", env = "SWITCHBOARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the web server (and the private database unless one is configured).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Creates demo users and accounts and prints how to sign in.
        #[arg(long)]
        demo: bool,
    },
    /// Applies pending database migrations and exits.
    Migrate,
    /// Creates an admin (or, with --staff, a staff member).
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Creates a staff member instead of an admin.
        #[arg(long)]
        staff: bool,
        /// Reads the password from standard input instead of generating a
        /// one-time password.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Prints the GraphQL schema (SDL).
    PrintSchema,
    /// Measures ingestion against COPY, and page latency at 1M and 10M CDRs,
    /// in a database of its own (it fills it with synthetic data).
    Bench {
        /// The large volume, in CDRs.
        #[arg(long, default_value_t = 10_000_000)]
        large: i64,
        /// Stop after the ingestion figures.
        #[arg(long)]
        ingest_only: bool,
        /// Instead, measure how `/healthz` answers while the server is sent
        /// a fragment bomb and a month's CSV under thousands of aliases.
        #[arg(long)]
        hostile: bool,
        /// Instead, measure the storefront's and the client panel's pages
        /// under many visitors at once, beside `/healthz`.
        #[arg(long)]
        pages: bool,
        /// With `--pages`: visitors at once, each on its own connection.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// With `--pages`: seconds each route is measured.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// With `--pages`: first fills the database to N CDRs with SQL
        /// (other customers' calls over `--fill-months`, two years unless
        /// told), timing the fill.
        #[arg(long, value_name = "N")]
        cdrs: Option<i64>,
        /// With `--cdrs`: how many months back the filled calls go. Fewer
        /// months make the months the pages read as full as a larger
        /// database's, without the disk for the older ones.
        #[arg(long, value_name = "MONTHS", default_value_t = 24,
              value_parser = clap::value_parser!(u32).range(1..=120))]
        fill_months: u32,
        /// Instead, measure a 100,000-row phone number inventory file:
        /// its preview, first import and re-import.
        #[arg(long)]
        numbers: bool,
    },
    /// Runs the PBX simulator: a hosting controller that speaks the
    /// reference contract, keeping its PBXs in a file when given one.
    SimulateController {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
        /// Keeps the simulated PBXs in this file across restarts.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Backs up the database, the secret key (sealed with backups.passphrase)
    /// and the file outbox into one archive, while Switchboard runs or not.
    Backup {
        /// The archive to write (default switchboard-<time>.tar here).
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Restores a backup into an empty data folder (or an empty database),
    /// migrating it forward when it is older.
    Restore {
        /// The archive `switchboard backup` wrote.
        file: PathBuf,
    },
    /// Re-seals every sealed secret under a new secret key, in one
    /// transaction, with every server stopped.
    RotateKey {
        /// Reads the new key (64 hex digits) from standard input instead of
        /// generating one: for a key configured as secret_key.
        #[arg(long)]
        new_key_stdin: bool,
    },
}

/// Runs the command line.
///
/// Boxed so that the binary, which only calls this, compiles none of it
/// again: an optimised build compiles an `async` body in every crate that
/// awaits it directly.
pub fn run(cli: Cli) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
    Box::pin(run_command(cli))
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintSchema => {
            print!("{}", switchboard_graphql::sdl());
            return Ok(());
        }
        Command::SimulateController { listen, state } => {
            init_logging("info");
            let (acceptor, address) = server::bind(listen).await?;
            println!("PBX simulator listening at http://{address}");
            let simulator = match state {
                Some(file) => switchboard_controller::simulator::Simulator::kept_in(&file)?,
                None => switchboard_controller::simulator::Simulator::new(),
            };
            tokio::select! {
                served = switchboard_controller::simulator::serve(acceptor, simulator) => served?,
                _ = server::shutdown_signal() => {}
            }
            return Ok(());
        }
        _ => {}
    }
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        listen,
        base_url: None,
    };
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    init_logging(&settings.log);
    match cli.command {
        Command::Serve { demo, .. } => serve(settings, demo).await,
        Command::Migrate => {
            let database = database::open(&settings, "migrate").await?;
            println!("The database is up to date.");
            database.close()
        }
        Command::Backup { to } => take_backup(&settings, to).await,
        Command::Restore { file } => restore(&settings, &file).await,
        Command::RotateKey { new_key_stdin } => rotate_key(&settings, new_key_stdin).await,
        Command::CreateAdmin {
            username,
            email,
            staff,
            password_stdin,
        } => {
            let role = if staff { Role::Staff } else { Role::Admin };
            create_admin(&settings, &username, &email, role, password_stdin).await
        }
        Command::PrintSchema | Command::SimulateController { .. } => Ok(()),
        Command::Bench {
            large,
            ingest_only,
            hostile,
            pages,
            connections,
            seconds,
            cdrs,
            fill_months,
            numbers,
        } => {
            let database = database::open_named(&settings, "switchboard_bench", "bench").await?;
            let result = async {
                db::migrate(&database.url).await?;
                if numbers {
                    crate::bench::numbers(&database.url).await
                } else if hostile {
                    crate::hostile::run(&database.url, settings.clone()).await
                } else if pages {
                    let shape = crate::page_load::Shape {
                        connections,
                        seconds,
                    };
                    crate::page_load::run(
                        &database.url,
                        settings.clone(),
                        shape,
                        cdrs.map(|n| (n, fill_months)),
                    )
                    .await
                } else {
                    crate::bench::run(&database.url, settings.clone(), large, ingest_only).await
                }
            }
            .await;
            database.close()?;
            result
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The secret key from the settings, or from (or into) the data folder.
pub fn secret_key(settings: &Settings) -> anyhow::Result<SecretKey> {
    match &settings.secret_key {
        Some(key) => SecretKey::from_hex(key.expose()),
        None => SecretKey::load_or_create(&settings.data_dir),
    }
}

/// The key file of the data folder: `secret.key`.
fn key_file(settings: &Settings) -> PathBuf {
    settings.data_dir.join(keys::FILE)
}

/// Where a key rotation writes the new key before it commits.
fn next_key_file(settings: &Settings) -> PathBuf {
    settings.data_dir.join("secret.key.next")
}

/// Where the key comes from, for messages.
fn key_source(settings: &Settings) -> String {
    match settings.secret_key {
        Some(_) => "secret_key (SWITCHBOARD_SECRET_KEY)".into(),
        None => key_file(settings).display().to_string(),
    }
}

/// The key, checked against what the database holds sealed: start-up
/// refuses a wrong or lost key at once rather than failing at the first
/// reveal. A rotation interrupted between its commit and its renaming of
/// the key file is finished here.
async fn checked_key(settings: &Settings, url: &str) -> anyhow::Result<SecretKey> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to the database to check the secret key")?;
    if settings.secret_key.is_none() && !key_file(settings).exists() {
        // A key made now would open nothing sealed before: say it is
        // missing rather than write one that only hides the loss.
        if let Err(wrong) = sealed::check_key(&mut conn, &SecretKey::generate()).await? {
            anyhow::bail!(
                "{} is missing, and the database holds secrets sealed with a key ({wrong}): \
                 put the key file back, or set secret_key. If it is lost, so are the sealed \
                 secrets: restore a backup that holds its key (see the README's Backups)",
                key_file(settings).display()
            );
        }
    }
    let key = secret_key(settings)?;
    let Err(wrong) = sealed::check_key(&mut conn, &key).await? else {
        return Ok(key);
    };
    let next = next_key_file(settings);
    if settings.secret_key.is_none() && next.exists() {
        let new = SecretKey::read(&next)?;
        if sealed::check_key(&mut conn, &new).await?.is_ok() {
            std::fs::rename(&next, key_file(settings))
                .with_context(|| format!("moving {} into place", next.display()))?;
            tracing::warn!("finished a key rotation that was interrupted: the new key is in place");
            return Ok(new);
        }
    }
    anyhow::bail!(
        "the secret key from {} does not open the secrets sealed in the database ({wrong}): it \
         is not the key they were sealed with. Start Switchboard with that key. If it is lost, \
         so are the sealed secrets (PBX passwords, CDR source addresses, queued credential \
         emails): restore a backup that holds its key (see the README's Backups)",
        key_source(settings)
    )
}

async fn serve(mut settings: Settings, demo: bool) -> anyhow::Result<()> {
    if settings.controller.base_url.is_none() {
        // The built-in simulator speaks the reference contract's number
        // commands, so numbers ordered in development become active.
        let (assign, unassign) =
            switchboard_core::config::ControllerCommands::reference_number_commands();
        let commands = &mut settings.controller.commands;
        commands.assign_number.get_or_insert(assign);
        commands.unassign_number.get_or_insert(unassign);
    }
    anyhow::ensure!(
        !(demo && settings.mode == Mode::Production),
        "--demo is refused in production mode"
    );
    let database = database::open(&settings, "serve").await?;
    let supervisor = database.supervise();
    let result = serve_on(&settings, &database, demo).await;
    if let Some(supervisor) = supervisor {
        supervisor.abort();
    }
    if database.owns_cluster {
        tracing::info!("stopping the private PostgreSQL");
    }
    database.close()?;
    result
}

async fn serve_on(
    settings: &Settings,
    database: &database::Database,
    demo: bool,
) -> anyhow::Result<()> {
    let pool = db::pool(&database.url, settings.pool_size)?;
    let key_lock = sealed::hold_key_lock(database.url.clone()).await?;
    let key = checked_key(settings, &database.url).await;
    let key = match key {
        Ok(key) => key,
        Err(error) => {
            key_lock.abort();
            return Err(error);
        }
    };
    let (acceptor, address) = server::bind(settings.listen).await?;
    let controller_url = match &settings.controller.base_url {
        Some(url) => url.clone(),
        None => {
            let (acceptor, address) = server::bind("127.0.0.1:0".parse()?).await?;
            // Kept in the data folder, so a restarted demo does not hand out
            // the same PBX ids and host names again.
            let simulator = switchboard_controller::simulator::Simulator::kept_in(
                &settings.data_dir.join("simulator.json"),
            )?;
            tokio::spawn(switchboard_controller::simulator::serve(
                acceptor, simulator,
            ));
            tracing::info!(%address, "no controller.base_url: using the built-in PBX simulator");
            format!("http://{address}")
        }
    };
    let mut state_settings = settings.clone();
    state_settings.controller.base_url = Some(controller_url.clone());
    let state = AppState::new(pool.clone(), key.clone(), state_settings.clone())?;
    let jobs = switchboard_jobs::JobContext {
        key: key.clone(),
        controller: switchboard_controller::Controller::new(&settings.controller, &controller_url)?,
        settings: std::sync::Arc::new(settings.clone()),
        rate_tables: state.rate_tables.clone(),
        database_url: database.url.clone(),
        pg_bin_dir: match &database.cluster {
            Some(cluster) => cluster.bin_dir().to_path_buf(),
            None => cluster::find_server_binaries()?,
        },
        gateway: switchboard_payments::Gateway::from_settings(settings)?,
        clock: switchboard_core::clock::Clock::system(),
    };
    if demo {
        let credentials = demo::seed(&pool, &key, &jobs.controller).await?;
        println!(
            "Demo data is ready. Sign in at {}/sign-in",
            settings.base_url()
        );
        println!(
            "  staff (admin): {} / {}",
            credentials.admin.0, credentials.admin.1
        );
        println!(
            "  client:        {} / {}",
            credentials.client.0, credentials.client.1
        );
    }
    let mut conn = db::conn(&pool).await?;
    if !users::company_user_exists(&mut conn).await? {
        tracing::warn!(
            "no staff user exists yet: create one with `switchboard create-admin --username NAME --email ADDRESS`"
        );
    }
    drop(conn);
    if let Some(listen) = settings.metrics.listen {
        let (acceptor, address) = server::bind(listen).await?;
        tracing::info!(%address, "serving /metrics");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(error) = server::serve_metrics(acceptor, state).await {
                tracing::error!(error = %format!("{error:#}"), "the metrics listener stopped");
            }
        });
    }
    let mailer = switchboard_jobs::Mailer::from_settings(settings, key.clone())?;
    let workers = switchboard_jobs::start(pool.clone(), jobs, mailer).await?;
    let catalogue = state.follow_catalogue_changes(&database.url);
    tracing::info!(%address, base_url = %state_settings.base_url(), gateway = state.gateway.name(), "Switchboard is listening");
    let served = server::serve(acceptor, state, server::shutdown_signal()).await;
    // Before the caller stops the database: work that finds it gone would
    // log failures that are no failures.
    workers.stop().await;
    catalogue.abort();
    key_lock.abort();
    served
}

async fn create_admin(
    settings: &Settings,
    username: &str,
    email: &str,
    role: Role,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let username =
        Username::parse(username).map_err(|why| anyhow::anyhow!("the username {why}"))?;
    let email = Email::parse(email).map_err(|why| anyhow::anyhow!("the email {why}"))?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (passwords::generate(), true)
    };
    let database = database::open(settings, "create-admin").await?;
    let result = async {
        let pool = db::pool(&database.url, 2)?;
        let mut conn = db::conn(&pool).await?;
        let id = users::create(
            &mut conn,
            &NewUser {
                username: username.clone(),
                email,
                password: password.clone(),
                role,
                account: None,
                must_change_password: generated,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create {username}: {e}"))?;
        audit::record(
            &mut conn,
            &audit::Actor::system("command line"),
            "user.create",
            &format!("user:{}", id.0),
            role.as_str(),
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    database.close()?;
    result?;
    if generated {
        println!("Created {role} {username}. One-time password: {password}");
        println!("They must choose a new password when they first sign in.");
    } else {
        println!("Created {role} {username}.");
    }
    Ok(())
}

/// `switchboard backup`: the database as it is (not migrated), the key
/// sealed with the passphrase, the file outbox.
async fn take_backup(settings: &Settings, to: Option<PathBuf>) -> anyhow::Result<()> {
    let to = to.unwrap_or_else(|| PathBuf::from(backup::scheduled_name(chrono::Utc::now())));
    anyhow::ensure!(
        !to.exists(),
        "{} exists already: a backup never overwrites a file",
        to.display()
    );
    anyhow::ensure!(
        settings.database_url.is_some() || settings.data_dir.join("postgres/PG_VERSION").exists(),
        "{} holds no Switchboard database: give the data folder with --data-dir, or \
         database_url",
        settings.data_dir.display()
    );
    let key = secret_key(settings)?;
    let database = database::open_named(settings, database::DATABASE, "backup").await?;
    let taken = async {
        let bin_dir = match &database.cluster {
            Some(cluster) => cluster.bin_dir().to_path_buf(),
            None => cluster::find_server_binaries()?,
        };
        let passphrase = settings.backups.passphrase.as_ref().map(|p| p.expose());
        let source = backup::Source {
            database_url: &database.url,
            bin_dir: &bin_dir,
            data_dir: &settings.data_dir,
            key: &key,
            passphrase,
        };
        backup::take(&source, &to).await
    }
    .await;
    database.close()?;
    let manifest = taken?;
    println!(
        "Backed up to {} (schema {}, {} files).",
        to.display(),
        manifest.schema_migration.as_deref().unwrap_or("empty"),
        manifest.files.len()
    );
    if manifest.has_key() {
        println!("The secret key is in it, sealed with backups.passphrase.");
    } else {
        println!(
            "The secret key is NOT in it (no backups.passphrase is set): keep {} safe apart; \
             without it the sealed secrets in this backup cannot be read.",
            key_source(settings)
        );
    }
    Ok(())
}

/// Whether a data folder is one a restore may fill: missing, or empty but
/// for a key file put there for a backup that holds none (and the lock file
/// a failed restore leaves).
fn is_empty_data_folder(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error).with_context(|| format!("reading {}", dir.display())),
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name();
                if name != keys::FILE && name != "switchboard.lock" {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// `switchboard restore FILE`: checks the archive whole, then fills an empty
/// data folder (or database), migrates it forward and checks the key opens
/// what it holds sealed.
async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let private = settings.database_url.is_none();
    anyhow::ensure!(
        !private || is_empty_data_folder(&settings.data_dir)?,
        "{} is not empty: a backup is restored only into an empty data folder (move this one \
         aside, or choose another with --data-dir); a live one is never overwritten",
        settings.data_dir.display()
    );
    let work_in = match std::path::absolute(&settings.data_dir)?.parent() {
        Some(parent) => parent.to_path_buf(),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&work_in).with_context(|| format!("creating {}", work_in.display()))?;
    let passphrase = settings
        .backups
        .passphrase
        .as_ref()
        .map(|p| p.expose().to_owned());
    let archive = file.to_path_buf();
    let verified = tokio::task::spawn_blocking(move || {
        backup::verify(&archive, passphrase.as_deref(), &work_in)
    })
    .await
    .context("reading the archive")??;
    let key = match (&verified.key, &settings.secret_key) {
        (Some(archived), Some(configured)) => {
            anyhow::ensure!(
                archived.to_hex() == SecretKey::from_hex(configured.expose())?.to_hex(),
                "secret_key is set, and is not the key this backup holds: unset it (the backup's \
                 key is then written to the data folder) or set it to that key"
            );
            archived.clone()
        }
        (Some(archived), None) => archived.clone(),
        (None, Some(configured)) => SecretKey::from_hex(configured.expose())?,
        (None, None) if key_file(settings).exists() => SecretKey::read(&key_file(settings))?,
        (None, None) => anyhow::bail!(
            "this backup holds no secret key: put the key it was taken with in {} (or set \
             secret_key) before restoring it",
            key_file(settings).display()
        ),
    };
    let database = database::open_named(settings, database::DATABASE, "restore").await?;
    let restored = async {
        let bin_dir = match &database.cluster {
            Some(cluster) => cluster.bin_dir().to_path_buf(),
            None => cluster::find_server_binaries()?,
        };
        verified.restore_database(&database.url, &bin_dir).await?;
        let applied = db::migrate(&database.url).await?;
        verified.restore_files(&settings.data_dir, settings.secret_key.is_none())?;
        let mut conn = AsyncPgConnection::establish(&database.url).await?;
        if let Err(wrong) = sealed::check_key(&mut conn, &key).await? {
            anyhow::bail!(
                "restored, but the key from {} does not open what the backup holds sealed \
                 ({wrong}): put the key the backup was taken with in its place before starting",
                key_source(settings)
            );
        }
        anyhow::Ok(applied)
    }
    .await;
    database.close()?;
    if restored.is_err() && private {
        // The folder was empty: leave it so, to try again.
        for made in ["postgres", "run"] {
            let _ = std::fs::remove_dir_all(settings.data_dir.join(made));
        }
    }
    let applied = restored?;
    let manifest = &verified.manifest;
    println!(
        "Restored {} (taken {} by Switchboard {}, schema {}); {applied} newer migrations applied.",
        file.display(),
        manifest.taken_at.to_rfc3339(),
        manifest.switchboard_version,
        manifest.schema_migration.as_deref().unwrap_or("empty"),
    );
    println!("Start Switchboard: it reads everything afresh from the restored database.");
    Ok(())
}

/// `switchboard rotate-key`: a new key, every sealed secret re-sealed under
/// it in one transaction, with no server running on the old key.
async fn rotate_key(settings: &Settings, new_key_stdin: bool) -> anyhow::Result<()> {
    let old = match &settings.secret_key {
        Some(key) => SecretKey::from_hex(key.expose())?,
        None => SecretKey::read(&key_file(settings))?,
    };
    let new = if new_key_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the new key from standard input")?;
        SecretKey::from_hex(&line)?
    } else {
        anyhow::ensure!(
            settings.secret_key.is_none(),
            "secret_key is set in the configuration, where rotate-key cannot write: generate a \
             key (openssl rand -hex 32), pass it with --new-key-stdin, then set secret_key to it"
        );
        SecretKey::generate()
    };
    anyhow::ensure!(
        new.to_hex() != old.to_hex(),
        "the new key is the current one"
    );
    let database = database::open(settings, "rotate-key").await?;
    let rotated = async {
        anyhow::ensure!(
            database.cluster.is_none() || database.holds_folder(),
            "Switchboard is serving from {}: stop it, then rotate the key",
            settings.data_dir.display()
        );
        let next = next_key_file(settings);
        if settings.secret_key.is_none() {
            anyhow::ensure!(
                !next.exists(),
                "{} is left from an interrupted rotation: start Switchboard once (it finishes \
                 that rotation) or remove it",
                next.display()
            );
            new.write_new(&next)?;
        }
        let mut conn = AsyncPgConnection::establish(&database.url).await?;
        let resealed = match sealed::reseal_all(&mut conn, &old, &new).await {
            Ok(count) => count,
            Err(error) => {
                let _ = std::fs::remove_file(&next);
                return Err(error);
            }
        };
        if settings.secret_key.is_none() {
            std::fs::rename(&next, key_file(settings))
                .with_context(|| format!("moving {} into place", next.display()))?;
        }
        anyhow::Ok(resealed)
    }
    .await;
    database.close()?;
    let resealed = rotated?;
    println!("Re-sealed {resealed} secrets under the new key.");
    match settings.secret_key {
        Some(_) => println!(
            "Set secret_key to the new key before Switchboard starts again: the old one no \
             longer opens them."
        ),
        None => println!("The new key is in {}.", key_file(settings).display()),
    }
    println!(
        "Backups taken before hold the old key (sealed with their passphrase) and restore as \
         they were."
    );
    Ok(())
}

//! The command line.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_core::config::{Mode, Overrides, Settings};
use switchboard_core::domain::Email;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{audit, db, people::passwords, Role, Username};
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
    },
    /// Runs the PBX simulator: a hosting controller that speaks the
    /// reference contract and keeps its PBXs in memory.
    SimulateController {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
    },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintSchema => {
            print!("{}", switchboard_graphql::sdl());
            return Ok(());
        }
        Command::SimulateController { listen } => {
            init_logging("info");
            let (acceptor, address) = server::bind(listen).await?;
            println!("PBX simulator listening at http://{address}");
            let simulator = switchboard_controller::simulator::Simulator::new();
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
            let database = database::open(&settings).await?;
            println!("The database is up to date.");
            database.close()
        }
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
        } => {
            let database = database::open_named(&settings, "switchboard_bench").await?;
            let result = if hostile {
                crate::hostile::run(&database.url, settings.clone()).await
            } else {
                crate::bench::run(&database.url, settings.clone(), large, ingest_only).await
            };
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

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(demo && settings.mode == Mode::Production),
        "--demo is refused in production mode"
    );
    let database = database::open(&settings).await?;
    let result = serve_on(&settings, &database, demo).await;
    if database.started_cluster {
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
    let key = secret_key(settings)?;
    let (acceptor, address) = server::bind(settings.listen).await?;
    let controller_url = match &settings.controller.base_url {
        Some(url) => url.clone(),
        None => {
            let (acceptor, address) = server::bind("127.0.0.1:0".parse()?).await?;
            let simulator = switchboard_controller::simulator::Simulator::new();
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
    let mailer = switchboard_jobs::Mailer::from_settings(settings, key.clone())?;
    let _jobs = switchboard_jobs::start(pool.clone(), jobs, mailer).await?;
    tracing::info!(%address, base_url = %state_settings.base_url(), gateway = state.gateway.name(), "Switchboard is listening");
    server::serve(acceptor, state, server::shutdown_signal()).await
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
    let database = database::open(settings).await?;
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

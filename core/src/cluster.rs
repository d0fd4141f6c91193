//! The private PostgreSQL cluster Switchboard runs when no `DATABASE_URL` is
//! given: created in the data folder the first time, listening only on a Unix
//! socket there, run as an unprivileged user when Switchboard runs as root.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};

use anyhow::{bail, Context};

/// The superuser `initdb` creates; only reachable through the private socket.
pub const SUPERUSER: &str = "switchboard";

/// A cluster in `<data folder>/postgres` with its socket in `<data folder>/run`.
#[derive(Clone, Debug)]
pub struct Cluster {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl Cluster {
    /// Finds the server binaries and decides who runs them; creates nothing.
    pub fn new(data_dir: &Path) -> anyhow::Result<Cluster> {
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        Ok(Cluster {
            bin_dir: find_server_binaries()?,
            pgdata: data_dir.join("postgres"),
            socket_dir: data_dir.join("run"),
            run_as: unprivileged_user()?,
        })
    }

    /// Creates the cluster if it does not exist, and starts it if it is not
    /// running. Safe to call when it is already up; returns whether this call
    /// started it.
    pub fn start(&self) -> anyhow::Result<bool> {
        if !self.pgdata.join("PG_VERSION").exists() {
            self.init()?;
        }
        self.prepare_dir(&self.socket_dir)?;
        if self.is_running()? {
            return Ok(false);
        }
        let socket = self.socket_dir.display().to_string();
        let options = format!(
            "-k '{}' -c listen_addresses='' -c unix_socket_permissions=0700",
            socket.replace('\'', "")
        );
        let log = self.pgdata.join("server.log");
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .output()
            .context("running pg_ctl start")?;
        if !output.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            bail!(
                "PostgreSQL did not start: {} {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(true)
    }

    /// Stops the cluster, letting connections finish what they were doing.
    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.is_running()? {
            return Ok(());
        }
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .context("running pg_ctl stop")?;
        anyhow::ensure!(status.success(), "pg_ctl stop failed");
        Ok(())
    }

    /// Stops the cluster when this process ends, however it ends: a small
    /// shell waits for the returned pipe to close. Keep the pipe for as long
    /// as the cluster is needed.
    pub fn stop_when_this_process_exits(&self) -> anyhow::Result<ChildStdin> {
        let mut child = self
            .command("sh")
            .arg("-c")
            .arg("read _; exec \"$0\" -D \"$1\" -m immediate stop")
            .arg(self.bin_dir.join("pg_ctl"))
            .arg(&self.pgdata)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the cluster's watchdog")?;
        child
            .stdin
            .take()
            .context("the watchdog has no standard input")
    }

    /// A connection string for one database of this cluster (tokio-postgres'
    /// key=value form, which takes a socket folder as the host).
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "host='{}' user={SUPERUSER} dbname={database}",
            self.socket_dir.display()
        )
    }

    fn is_running(&self) -> anyhow::Result<bool> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running pg_ctl status")?;
        Ok(status.success())
    }

    fn init(&self) -> anyhow::Result<()> {
        self.prepare_dir(&self.pgdata)?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .output()
            .context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Creates a folder the server user owns, mode 0700, checking that user
    /// can reach it at all.
    fn prepare_dir(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("setting the mode of {}", dir.display()))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
                for ancestor in dir.ancestors().skip(1) {
                    let mode = std::fs::metadata(ancestor)
                        .with_context(|| format!("reading {}", ancestor.display()))?
                        .permissions()
                        .mode();
                    if mode & 0o001 == 0 {
                        bail!(
                            "the postgres user cannot enter {} (mode {:o}): choose a data folder \
                             outside it with --data-dir",
                            ancestor.display(),
                            mode & 0o777
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = if program == "sh" {
            PathBuf::from("sh")
        } else {
            self.bin_dir.join(program)
        };
        let mut command = Command::new(path);
        command.current_dir(self.pgdata.parent().unwrap_or(Path::new("/")));
        command.env("LC_ALL", "C").env_remove("PGDATA");
        #[cfg(unix)]
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// Looks on `PATH`, then asks `pg_config`, then tries `/usr/lib/postgresql/*/bin`
/// (newest first).
fn find_server_binaries() -> anyhow::Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_server(dir)) {
            return Ok(dir);
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, dir)) => Ok(dir),
        None => bail!(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found: install the \
             `postgresql` package (apt-get install postgresql) or set SWITCHBOARD_DATABASE_URL"
        ),
    }
}

/// PostgreSQL refuses to run as root; as root, run it as `postgres`.
fn unprivileged_user() -> anyhow::Result<Option<(u32, u32)>> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres").context("looking up the postgres user")? {
        Some(user) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        None => bail!(
            "running as root, and PostgreSQL refuses to run as root: create a `postgres` \
             user (the postgresql package does) or run Switchboard as another user"
        ),
    }
}

//! The private PostgreSQL cluster Switchboard runs when no `DATABASE_URL` is
//! given: created in the data folder the first time, listening only on a Unix
//! socket there, run as an unprivileged user when Switchboard runs as root.
//!
//! A cluster in Switchboard's data folder is Switchboard's: whoever holds the
//! data folder's lock (see [`FolderLock`]) owns it, stops it on exit, and
//! adopts one an earlier run left running when it was killed.

use std::io::{Read, Seek, Write};
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
    /// A cluster made by another major version of PostgreSQL is run with
    /// that version's programs when they are installed, and refused with
    /// what to do when they are not: no version reads another's cluster.
    pub fn new(data_dir: &Path) -> anyhow::Result<Cluster> {
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let pgdata = data_dir.join("postgres");
        let bin_dir = match cluster_version(&pgdata)? {
            None => find_server_binaries()?,
            Some(made_by) => binaries_for(&pgdata, &made_by)?,
        };
        Ok(Cluster {
            bin_dir,
            pgdata,
            socket_dir: data_dir.join("run"),
            run_as: unprivileged_user()?,
        })
    }

    /// The folder of the server programs this cluster runs with (`pg_dump`
    /// and `pg_restore` sit beside them).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The data folder the cluster lives in.
    pub fn data_dir(&self) -> &Path {
        self.pgdata.parent().unwrap_or(Path::new("/"))
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

    /// Whether the cluster's server process is alive (`pg_ctl status`: a
    /// `postmaster.pid` left by a killed server does not count).
    pub fn is_running(&self) -> anyhow::Result<bool> {
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

/// The major version that made the cluster in `pgdata` (its `PG_VERSION`),
/// or `None` when there is no cluster yet.
fn cluster_version(pgdata: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(pgdata.join("PG_VERSION")) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => {
            Err(error).with_context(|| format!("reading {}", pgdata.join("PG_VERSION").display()))
        }
    }
}

/// The major version of the server programs in `bin_dir`, from
/// `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.14 (Debian …)" is "15"; 9.6.24
/// is "9.6", as majors were named before 10).
pub fn binaries_version(bin_dir: &Path) -> anyhow::Result<String> {
    let output = Command::new(bin_dir.join("pg_ctl"))
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin_dir.join("pg_ctl").display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    major_version(&text)
        .with_context(|| format!("{} printed no version: {text:?}", bin_dir.display()))
}

fn major_version(pg_ctl_version: &str) -> Option<String> {
    let number = pg_ctl_version
        .split(") ")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = number.split('.');
    let first = parts.next()?;
    let first_number: u32 = first.parse().ok()?;
    if first_number >= 10 {
        Some(first.to_owned())
    } else {
        Some(format!("{first}.{}", parts.next()?))
    }
}

/// The server programs of the version that made the cluster: the usual ones
/// when they match, else that version's own folder; refused with what to do
/// when neither is there.
fn binaries_for(pgdata: &Path, made_by: &str) -> anyhow::Result<PathBuf> {
    let usual = find_server_binaries();
    if let Ok(dir) = &usual {
        if binaries_version(dir).ok().as_deref() == Some(made_by) {
            return Ok(dir.clone());
        }
    }
    let own = PathBuf::from(format!("/usr/lib/postgresql/{made_by}/bin"));
    if own.join("pg_ctl").is_file() {
        if let Ok(dir) = &usual {
            tracing::warn!(
                cluster = made_by,
                newest = %dir.display(),
                "the private cluster was made by an older PostgreSQL than the newest installed; \
                 running it with its own version's programs (see the README's Upgrades)"
            );
        }
        return Ok(own);
    }
    let usual = usual?;
    let installed = binaries_version(&usual)?;
    let data = pgdata.parent().unwrap_or(Path::new("/")).display();
    bail!(
        "the private cluster in {pgdata} was made by PostgreSQL {made_by}, and this machine's \
         server programs are PostgreSQL {installed} ({usual}), which cannot read it. Switchboard \
         has not started it. Either install PostgreSQL {made_by}'s server programs again \
         (Debian: apt-get install postgresql-{made_by}) and Switchboard runs the cluster with them; \
         or move it to PostgreSQL {installed}: with postgresql-{made_by} installed beside it, run \
         `switchboard backup --to before-upgrade.tar`, move {data} aside, and run \
         `switchboard restore before-upgrade.tar` (see the README's Upgrades)",
        pgdata = pgdata.display(),
        usual = usual.display(),
    )
}

/// The machine's PostgreSQL programs: on `PATH`, else where `pg_config`
/// says, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_server_binaries() -> anyhow::Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_server(dir)) {
            // A link on PATH (/usr/local/bin/initdb, say) stands for the
            // folder holding the whole set, pg_dump and pg_restore included.
            let real = std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                .filter(|real| has_server(real));
            return Ok(real.unwrap_or(dir));
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

/// The data folder's lock, held by whoever runs the private cluster for the
/// time being: a server for its whole life, a one-off command (a backup, a
/// migration) while it works. The operating system releases it when the
/// process ends, however it ends, so a cluster found running while the lock
/// is free was left by a process that died: it is the new holder's.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

/// Who holds the data folder's lock, as written in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`switchboard {}` (pid {})", self.command, self.pid)
    }
}

impl FolderLock {
    /// Takes the lock of `data_dir` for `command` (a subcommand's name), or
    /// says who holds it.
    pub fn try_take(data_dir: &Path, command: &str) -> anyhow::Result<Result<FolderLock, Holder>> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join("switchboard.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                writeln!(file, "{} {command}", std::process::id())?;
                file.flush()?;
                Ok(Ok(FolderLock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                file.read_to_string(&mut text)?;
                let (pid, command) = text.trim().split_once(' ').unwrap_or(("0", "?"));
                Ok(Err(Holder {
                    pid: pid.parse().unwrap_or(0),
                    command: command.to_owned(),
                }))
            }
            Err(std::fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_are_read_as_postgresql_names_them() {
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 9.6.24\n").as_deref(),
            Some("9.6")
        );
        assert_eq!(major_version("nonsense"), None);
    }

    #[test]
    fn a_cluster_of_another_major_version_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("postgres")).expect("mkdir");
        std::fs::write(dir.path().join("postgres/PG_VERSION"), "9.4\n").expect("write");
        let refused = format!("{:#}", Cluster::new(dir.path()).expect_err("refused"));
        assert!(refused.contains("made by PostgreSQL 9.4"), "{refused}");
        assert!(
            refused.contains("apt-get install postgresql-9.4"),
            "{refused}"
        );
        assert!(refused.contains("switchboard restore"), "{refused}");
        assert!(
            dir.path().join("postgres/PG_VERSION").exists() && !dir.path().join("run").exists(),
            "nothing was touched"
        );
    }

    #[test]
    fn the_folder_lock_names_its_holder_and_is_free_again_when_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = FolderLock::try_take(dir.path(), "serve")
            .expect("lockable")
            .expect("free");
        let refused = FolderLock::try_take(dir.path(), "backup")
            .expect("lockable")
            .expect_err("held");
        assert_eq!(
            refused,
            Holder {
                pid: std::process::id(),
                command: "serve".into()
            }
        );
        drop(held);
        assert!(FolderLock::try_take(dir.path(), "backup")
            .expect("lockable")
            .is_ok());
    }
}

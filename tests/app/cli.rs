//! The binary itself: its commands, and serving with no setup at all.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::fresh_database;

pub const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

#[test]
fn print_schema_prints_the_schema_file() {
    let output = Command::new(BINARY)
        .arg("print-schema")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let stored = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&output.stdout), stored);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_admin_prints_a_one_time_password_that_signs_in_once_changed() {
    let url = fresh_database().await;
    let output = Command::new(BINARY)
        .args([
            "create-admin",
            "--username",
            "root-admin",
            "--email",
            "root@example.com",
        ])
        .env("SWITCHBOARD_DATABASE_URL", &url)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let password = stdout
        .split("One-time password: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the password is printed");
    assert!(password.len() >= 16);

    let again = Command::new(BINARY)
        .args([
            "create-admin",
            "--username",
            "ROOT-ADMIN",
            "--email",
            "other@example.com",
            "--password-stdin",
        ])
        .env("SWITCHBOARD_DATABASE_URL", &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"a-typed-password-1\n")?;
            child.wait_with_output()
        })
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("the username is taken"));

    let pool = switchboard_core::db::pool(&url, 2).expect("pool");
    let mut conn = switchboard_core::db::conn(&pool).await.expect("conn");
    let admin = switchboard_core::people::users::find_by_username(&mut conn, "root-admin")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(admin.role, "admin");
    assert!(admin.must_change_password);
    assert!(switchboard_core::people::passwords::verify(
        password,
        &admin.password_hash
    ));
}

/// A folder for a data folder of a zero-config run: the cluster may run as
/// another user, who must be able to enter it.
pub fn zero_config_folder() -> tempfile::TempDir {
    let parent = tempfile::Builder::new()
        .prefix("switchboard-zero-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(
        parent.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    parent
}

/// Stops a data folder's private cluster when dropped, whatever the test did.
pub struct StopsCluster(pub PathBuf);

impl Drop for StopsCluster {
    fn drop(&mut self) {
        if let Ok(cluster) = switchboard_core::cluster::Cluster::new(&self.0) {
            let _ = cluster.stop();
        }
    }
}

/// The pid of a data folder's PostgreSQL, if its server process is alive.
pub fn postgres_pid(data: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data.join("postgres/postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// A `switchboard serve` process, its log read as it comes.
pub struct Served {
    pub child: Child,
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Served {
    /// Runs `serve` on a free port with the data folder `data` and `envs`;
    /// returns once it listens, or its log if it ended first.
    pub fn start(data: &Path, envs: &[(&str, &str)]) -> Result<Served, (ExitStatus, Vec<String>)> {
        let mut command = Command::new(BINARY);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SWITCHBOARD_DATA_DIR", data)
            .env_remove("SWITCHBOARD_DATABASE_URL")
            .env_remove("SWITCHBOARD_SECRET_KEY")
            .env("SWITCHBOARD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starts");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        let lines = log.clone();
        // Keeps reading the log so the server never writes into a closed pipe.
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Switchboard is listening address=").nth(1) {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                lines.lock().expect("log").push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(address) = address.recv_timeout(Duration::from_millis(200)) {
                return Ok(Served {
                    child,
                    address,
                    log,
                    reader,
                });
            }
            if let Some(status) = child.try_wait().expect("waits") {
                let _ = reader.join();
                let log = log.lock().expect("log").clone();
                return Err((status, log));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no start within two minutes: {:?}",
                    log.lock().expect("log")
                );
            }
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Waits until a log line contains `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().iter().any(|line| line.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// `GET /readyz`'s answer, retried until it is "ready" or `timeout`.
    pub fn ready_within(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = reqwest::blocking_get(&format!("http://{}/readyz", self.address));
            if answer == "ready" || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("exits");
        let _ = self.reader.join();
        let log = self.log.lock().expect("log").clone();
        (status, log)
    }
}

/// Zero-config: no database URL, a data folder that does not exist yet.
#[test]
fn serve_starts_its_own_postgres_answers_readyz_and_stops_it_on_sigterm() {
    let parent = zero_config_folder();
    let data = parent.path().join("data");
    let _stops = StopsCluster(data.clone());
    let mut child = Command::new(BINARY)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_DATA_DIR", &data)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env("SWITCHBOARD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (found, address) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Switchboard is listening address=").nth(1) {
                let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            lines.push(line);
        }
        lines
    });
    let address = match address.recv_timeout(Duration::from_secs(120)) {
        Ok(address) => address,
        Err(_) => {
            let _ = child.kill();
            panic!("no start within two minutes: {:?}", log.join());
        }
    };
    let ready = reqwest::blocking_get(&format!("http://{address}/readyz"));
    assert_eq!(ready, "ready");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("exits");
    let log = log.join().expect("the log reader");
    assert!(status.success(), "a clean exit on SIGTERM: {log:?}");
    let after_signal: Vec<&String> = log
        .iter()
        .skip_while(|line| !line.contains("shutting down"))
        .collect();
    let position = |what: &str| after_signal.iter().position(|line| line.contains(what));
    assert!(
        position("background work stopped") < position("stopping the private PostgreSQL")
            && position("background work stopped").is_some(),
        "the jobs stop before the database: {after_signal:#?}"
    );
    assert!(
        !after_signal
            .iter()
            .any(|line| line.contains("WARN") || line.contains("ERROR")),
        "stopping on purpose is not a failure: {after_signal:#?}"
    );
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut { stdout }, &mut printed).expect("stdout");
    assert!(printed.contains("client:        demo / "), "{printed}");
    assert!(
        !data.join("postgres/postmaster.pid").exists(),
        "the cluster was stopped"
    );
    assert!(data.join("secret.key").exists());
    assert!(
        data.join("simulator.json").exists(),
        "the simulator keeps the demo's PBXs in the data folder"
    );
}

/// A server killed with -9 leaves its PostgreSQL running; the next server
/// in the same folder takes it over and stops it on SIGTERM.
#[test]
fn sigterm_after_a_crash_stops_the_private_postgresql() {
    let parent = zero_config_folder();
    let data = parent.path().join("data");
    let _stops = StopsCluster(data.clone());
    let mut first = Served::start(&data, &[]).expect("the first server starts");
    first.child.kill().expect("kill -9");
    first.child.wait().expect("killed");
    let orphan = postgres_pid(&data).expect("PostgreSQL outlives a server killed with -9");

    let second = Served::start(&data, &[]).expect("a second server starts");
    assert_eq!(second.ready_within(Duration::from_secs(10)), "ready");
    assert_eq!(
        postgres_pid(&data),
        Some(orphan),
        "the running cluster is used"
    );
    let (status, log) = second.terminate();
    assert!(status.success(), "a clean exit on SIGTERM: {log:?}");
    assert!(
        log.iter()
            .any(|line| line.contains("adopting the private PostgreSQL")),
        "{log:?}"
    );
    assert_eq!(
        postgres_pid(&data),
        None,
        "SIGTERM stopped the PostgreSQL the crashed run left: {log:?}"
    );
}

/// PostgreSQL killed under a running server is started again, with a log
/// line saying so, and the server is ready again.
#[test]
fn a_dead_private_postgresql_is_restarted() {
    let parent = zero_config_folder();
    let data = parent.path().join("data");
    let _stops = StopsCluster(data.clone());
    let served = Served::start(&data, &[]).expect("starts");
    let pid = postgres_pid(&data).expect("PostgreSQL runs");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(
        served.wait_for_log(
            "the private PostgreSQL is down; restarting it",
            Duration::from_secs(30)
        ),
        "{:?}",
        served.log()
    );
    assert!(
        served.wait_for_log(
            "the private PostgreSQL is up again",
            Duration::from_secs(120)
        ),
        "{:?}",
        served.log()
    );
    assert_ne!(postgres_pid(&data), Some(pid));
    assert_eq!(served.ready_within(Duration::from_secs(30)), "ready");
    let (status, log) = served.terminate();
    assert!(status.success(), "a clean exit on SIGTERM: {log:?}");
    assert_eq!(postgres_pid(&data), None, "stopped on exit");
}

/// A second server on the same data folder is refused, naming the first.
#[test]
fn a_second_server_on_one_data_folder_is_refused() {
    let parent = zero_config_folder();
    let data = parent.path().join("data");
    let _stops = StopsCluster(data.clone());
    let first = Served::start(&data, &[]).expect("starts");
    let Err((status, log)) = Served::start(&data, &[]) else {
        panic!("a second server started");
    };
    assert!(!status.success());
    assert!(
        log.iter()
            .any(|line| line.contains("another Switchboard is serving from")),
        "{log:?}"
    );
    assert_eq!(first.ready_within(Duration::from_secs(5)), "ready");
    let (status, _) = first.terminate();
    assert!(status.success());
}

pub mod reqwest {
    /// A GET from synchronous code.
    pub fn blocking_get(url: &str) -> String {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                match ::reqwest::get(url).await {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(error) => format!("no answer: {error}"),
                }
            })
    }
}

/// The simulator as its own process, driven through every command of the
/// reference contract by Switchboard's controller client.
#[tokio::test(flavor = "multi_thread")]
async fn simulate_controller_speaks_every_command_of_the_contract() {
    use switchboard_controller::{Controller, ControllerError, CreatePbx};
    let mut child = tokio::process::Command::new(BINARY)
        .args(["simulate-controller", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a first line in time")
        .expect("readable")
        .expect("a line");
    let url = line.rsplit(' ').next().expect("an address").to_owned();
    let settings = switchboard_core::config::ControllerSettings {
        timeout_seconds: 5,
        ..Default::default()
    };
    let controller = Controller::new(&settings, &url).expect("a client");
    let request = CreatePbx {
        request_id: "pbx-contract".into(),
        plan: "office".into(),
        extensions: 15,
        gui_password: "first-password-123".into(),
        account: "7".into(),
    };
    let created = controller.create(&request).await.expect("created");
    assert_eq!(
        controller.create(&request).await.expect("the same"),
        created,
        "a repeated request id is the same PBX"
    );
    assert_eq!(
        controller.status(&created.id).await.expect("status").state,
        "up"
    );
    controller
        .suspend_calling(&created.id)
        .await
        .expect("suspended");
    assert_eq!(
        controller
            .status(&created.id)
            .await
            .expect("status")
            .calling,
        "suspended"
    );
    controller
        .resume_calling(&created.id)
        .await
        .expect("resumed");
    controller.power_off(&created.id).await.expect("off");
    assert_eq!(
        controller.status(&created.id).await.expect("status").state,
        "down"
    );
    assert!(
        controller
            .live_calls(&created.id)
            .await
            .expect("calls")
            .is_empty(),
        "a PBX that is off has no calls"
    );
    controller.power_on(&created.id).await.expect("on");
    controller
        .set_gui_password(&created.id, "second-password-456")
        .await
        .expect("set");
    let missing = controller.status("sim-9999").await;
    assert!(
        matches!(missing, Err(ControllerError::Refused { status: 404, .. })),
        "{missing:?}"
    );
    child.kill().await.expect("stopped");
}

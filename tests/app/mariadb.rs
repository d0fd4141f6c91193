//! A real MariaDB for the CDR pull tests: one private server per test run,
//! started from the system's binaries in a folder of its own, stopped when
//! the run ends.

use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running server.
pub struct MariaDb {
    pub port: u16,
    _watchdog: Mutex<ChildStdin>,
}

fn find(program: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Starts the server on first use.
pub fn mariadb() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (Some(server), Some(install)) = (find("mariadbd"), find("mariadb-install-db")) else {
            panic!("the CDR pull tests need MariaDB: apt-get install mariadb-server");
        };
        let dir = std::env::temp_dir().join(format!("switchboard-mariadb-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("a folder for MariaDB");
        let root = nix::unistd::Uid::effective().is_root();
        if root {
            let user = nix::unistd::User::from_name("mysql")
                .expect("looking up the mysql user")
                .expect("the mysql user (the mariadb-server package makes it)");
            for path in [&dir, &data] {
                std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).expect("chown");
            }
        }
        let user_flag = if root { "--user=mysql" } else { "--no-defaults" };
        let status = Command::new(install)
            .args(["--no-defaults", user_flag, "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running mariadb-install-db");
        assert!(status.success(), "mariadb-install-db failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // The watchdog must outlive every test; it ends with the run.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("\"$0\" --no-defaults $1 --datadir=\"$2\" --socket=\"$3\" --pid-file=\"$4\" --log-error=\"$5\" --port=\"$6\" --bind-address=127.0.0.1 --skip-grant-tables >/dev/null 2>&1 & pid=$!; read _; kill $pid")
            .arg(server)
            .arg(if root { "--user=mysql" } else { "" })
            .arg(&data)
            .arg(dir.join("mysqld.sock"))
            .arg(dir.join("mysqld.pid"))
            .arg(dir.join("error.log"))
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mariadbd");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "MariaDB did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        MariaDb {
            port,
            _watchdog: Mutex::new(child.stdin.take().expect("the watchdog's stdin")),
        }
    })
}

/// FreePBX's `asteriskcdrdb.cdr`, which has no primary key.
pub const CDR_TABLE: &str = "CREATE TABLE cdr (
    calldate datetime NOT NULL,
    clid varchar(80) NOT NULL DEFAULT '',
    src varchar(80) NOT NULL DEFAULT '',
    dst varchar(80) NOT NULL DEFAULT '',
    dcontext varchar(80) NOT NULL DEFAULT '',
    channel varchar(80) NOT NULL DEFAULT '',
    dstchannel varchar(80) NOT NULL DEFAULT '',
    lastapp varchar(80) NOT NULL DEFAULT '',
    lastdata varchar(80) NOT NULL DEFAULT '',
    duration int(11) NOT NULL DEFAULT 0,
    billsec int(11) NOT NULL DEFAULT 0,
    disposition varchar(45) NOT NULL DEFAULT '',
    amaflags int(11) NOT NULL DEFAULT 0,
    accountcode varchar(20) NOT NULL DEFAULT '',
    uniqueid varchar(32) NOT NULL DEFAULT '',
    userfield varchar(255) NOT NULL DEFAULT '',
    did varchar(50) NOT NULL DEFAULT '',
    recordingfile varchar(255) NOT NULL DEFAULT '',
    cnum varchar(80) NOT NULL DEFAULT '',
    cnam varchar(80) NOT NULL DEFAULT '',
    outbound_cnum varchar(80) NOT NULL DEFAULT '',
    outbound_cnam varchar(80) NOT NULL DEFAULT '',
    dst_cnam varchar(80) NOT NULL DEFAULT '',
    linkedid varchar(32) NOT NULL DEFAULT '',
    peeraccount varchar(80) NOT NULL DEFAULT '',
    sequence int(11) NOT NULL DEFAULT 0,
    KEY calldate (calldate),
    KEY dst (dst)
)";

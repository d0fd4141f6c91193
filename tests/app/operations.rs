//! Operating Switchboard: backups taken while it works and restored whole or
//! not at all, the secret key checked at start and rotated, scheduled
//! backups as a job.

use std::path::Path;
use std::process::Output;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use switchboard_core::calls::calling_plans;
use switchboard_core::commerce::pbxes;
use switchboard_core::keys::SecretKey;
use switchboard_core::outbox::{self, Email};
use switchboard_core::schema::{background_jobs, cdrs, emails, plans};
use switchboard_core::{backup, sealed, AccountKind};

use crate::cli::{zero_config_folder, Served, StopsCluster, BINARY};
use crate::harness::{empty_database, TestApp};

const PASSPHRASE: &str = "correct horse battery staple";
const GUI_PASSWORD: &str = "gui-Password-123";
const CDR_SOURCE: &str = "mysql://reader:cdr-secret@10.0.0.5:3306/asteriskcdrdb";
const WELCOME_TEXT: &str = "Your PBX password is gui-Password-123";

/// A PBX billed by a calling plan with a US rate, for a client with $1,000;
/// its GUI password and CDR source sealed with the app's key, a welcome email
/// sealed too. Returns (PBX id, its CDR push token).
async fn busy_pbx(app: &TestApp) -> (i64, String) {
    let key = &app.jobs.key;
    let mut conn = app.conn().await;
    let calling_plan = calling_plans::create(&mut conn, "Standard", "USD", None)
        .await
        .expect("a calling plan");
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        10_000,
        chrono::Duration::days(30),
    )
    .await;
    let plan = crate::commerce::seed_plan(app).await;
    diesel::update(plans::table.find(plan))
        .set(plans::calling_plan_id.eq(calling_plan))
        .execute(&mut conn)
        .await
        .expect("plan billed by the calling plan");
    let account = app
        .account("Busy Co", AccountKind::Retail, None, 1_000_000_000)
        .await;
    use switchboard_core::schema::pbxes as table;
    let pbx: i64 = diesel::insert_into(table::table)
        .values((
            table::account_id.eq(account.0),
            table::plan_id.eq(plan),
            table::request_id.eq("pbx-busy"),
            table::gui_password_sealed.eq(key.encrypt(pbxes::GUI_PASSWORD, GUI_PASSWORD)),
            table::state.eq("active"),
            table::hostname.eq("busy.pbx.switchboard.test"),
        ))
        .returning(table::id)
        .get_result(&mut conn)
        .await
        .expect("a PBX");
    pbxes::set_cdr_source(&mut conn, key, pbx, CDR_SOURCE, "UTC")
        .await
        .expect("a CDR source");
    // A new GUI password still on its way to the controller.
    {
        use switchboard_core::schema::pbx_password_changes as changes;
        diesel::insert_into(changes::table)
            .values((
                changes::pbx_id.eq(pbx),
                changes::password_sealed
                    .eq(key.encrypt(pbxes::GUI_PASSWORD, "Next-Gui-Password-1")),
            ))
            .execute(&mut conn)
            .await
            .expect("a pending password change");
    }
    let welcome = Email {
        to: "busy@example.com".into(),
        subject: "Your PBX is ready".into(),
        text: WELCOME_TEXT.into(),
        html: format!("<p>{WELCOME_TEXT}</p>"),
    };
    outbox::queue_sealed(&mut conn, key, &welcome, Some("welcome:busy"))
        .await
        .expect("a sealed email");
    let token = pbxes::issue_cdr_token(&mut conn, pbx)
        .await
        .expect("query")
        .expect("a token");
    // An admin with two-factor sign-in: a sealed TOTP secret.
    let (admin, _) = app
        .user("busy-admin", switchboard_core::Role::Admin, None)
        .await;
    switchboard_core::people::two_factor::start(&mut conn, key, admin)
        .await
        .expect("query")
        .expect("a secret");
    (pbx, token)
}

/// The PBX `busy_pbx` made.
async fn busy_pbx_id(conn: &mut AsyncPgConnection) -> i64 {
    use switchboard_core::schema::pbxes as table;
    table::table
        .filter(table::request_id.eq("pbx-busy"))
        .select(table::id)
        .first(conn)
        .await
        .expect("the busy PBX")
}

/// Pushes a batch of ten answered US calls, unique to `batch`, to the
/// server at `base_url`.
async fn push(base_url: &str, token: &str, batch: usize) {
    let cdrs: Vec<serde_json::Value> = (0..10)
        .map(|n| {
            json!({ "calldate": "2026-11-21T08:00:00Z", "src": "201",
                "dst": format!("1555010{batch:04}"), "dcontext": "from-internal",
                "channel": "PJSIP/201-00000001", "dstchannel": "PJSIP/voipms-00000002",
                "duration": 70 + n, "billsec": 61 + n, "disposition": "ANSWERED",
                "uniqueid": format!("{batch}.{n}") })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{base_url}/cdrs/push"))
        .bearer_auth(token)
        .json(&json!({ "cdrs": cdrs }))
        .send()
        .await
        .expect("POST /cdrs/push");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect(sql)
        .n
}

/// The ledger balances, and every stored call's cost is billed exactly once:
/// each costed CDR points at a usage posting that took exactly the sum of
/// its CDRs' costs, and no usage posting lacks its CDRs.
async fn assert_every_call_billed_once(conn: &mut AsyncPgConnection) {
    crate::ledger::assert_books_balance(conn).await;
    let unbilled = count(
        conn,
        "SELECT count(*) AS n FROM cdrs WHERE cost > 0 AND ledger_transaction_id IS NULL",
    )
    .await;
    assert_eq!(unbilled, 0, "a costed call is not billed");
    let mismatched = count(
        conn,
        "SELECT count(*) AS n FROM (SELECT ledger_transaction_id AS t, sum(cost) AS s FROM cdrs \
         WHERE ledger_transaction_id IS NOT NULL GROUP BY 1) billed \
         WHERE billed.s <> (SELECT sum(amount) FROM journal_entries e \
                            WHERE e.transaction_id = billed.t AND e.amount > 0)",
    )
    .await;
    assert_eq!(
        mismatched, 0,
        "a usage posting differs from its calls' costs"
    );
    let orphans = count(
        conn,
        "SELECT count(*) AS n FROM journal_transactions t WHERE t.idempotency_key LIKE 'usage%' \
         AND NOT EXISTS (SELECT 1 FROM cdrs c WHERE c.ledger_transaction_id = t.id)",
    )
    .await;
    assert_eq!(orphans, 0, "a usage posting has no calls: billed twice?");
}

/// Runs the binary with `args` and `envs` (and no inherited configuration).
async fn switchboard(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(args)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_SECRET_KEY")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env("SWITCHBOARD_LOG", "warn");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().await.expect("runs")
}

/// `switchboard restore ARCHIVE` into the data folder `data` and, when
/// given, the database `url` (else the private cluster), with the passphrase.
async fn restore_into(archive: &Path, url: Option<&str>, data: &Path) -> Output {
    let mut envs = vec![
        ("SWITCHBOARD_DATA_DIR", dir_str(data)),
        ("SWITCHBOARD_BACKUPS__PASSPHRASE", PASSPHRASE),
    ];
    if let Some(url) = url {
        envs.push(("SWITCHBOARD_DATABASE_URL", url));
    }
    switchboard(&["restore", dir_str(archive)], &envs).await
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn dir_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_load_restores_with_the_ledger_balanced() {
    let app = TestApp::spawn().await;
    let (pbx, token) = busy_pbx(&app).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let data = folder.path().join("data");
    std::fs::create_dir_all(data.join("outbox")).expect("an outbox folder");
    std::fs::write(data.join("outbox/00000001.eml"), "Subject: hello\r\n\r\nhi").expect("a file");
    let key = app.jobs.key.to_hex();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (load_app, load_token, load_stop) = (app.base_url.clone(), token.clone(), stop.clone());
    let before = std::sync::Arc::new(tokio::sync::Notify::new());
    let started = before.clone();
    let load = tokio::spawn(async move {
        let mut batch = 0;
        while !std::sync::atomic::AtomicBool::load(&load_stop, std::sync::atomic::Ordering::SeqCst)
            || batch < 20
        {
            push(&load_app, &load_token, batch).await;
            batch += 1;
            if batch == 5 {
                started.notify_one();
            }
        }
        batch
    });
    before.notified().await;
    let archive = folder.path().join("under-load.tar");
    let taken = switchboard(
        &["backup", "--to", dir_str(&archive)],
        &[
            ("SWITCHBOARD_DATABASE_URL", &app.db_url),
            ("SWITCHBOARD_DATA_DIR", dir_str(&data)),
            ("SWITCHBOARD_SECRET_KEY", &key),
            ("SWITCHBOARD_BACKUPS__PASSPHRASE", PASSPHRASE),
        ],
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(taken.status.success(), "{}", said(&taken));
    assert!(
        said(&taken).contains("The secret key is in it"),
        "{}",
        said(&taken)
    );
    let batches = load.await.expect("the load ran");
    let mut conn = app.conn().await;
    let all = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .count()
        .get_result::<i64>(&mut conn)
        .await
        .expect("count");
    assert_eq!(all, batches as i64 * 10, "every push was stored");

    let restored_url = empty_database().await;
    let restored_data = folder.path().join("restored");
    let restore = restore_into(&archive, Some(&restored_url), &restored_data).await;
    assert!(restore.status.success(), "{}", said(&restore));

    let mut restored = AsyncPgConnection::establish(&restored_url)
        .await
        .expect("the restored database");
    let kept = cdrs::table
        .filter(cdrs::pbx_id.eq(pbx))
        .count()
        .get_result::<i64>(&mut restored)
        .await
        .expect("count");
    assert!(
        kept >= 50 && kept <= all && kept % 10 == 0,
        "a snapshot of whole batches taken during the pushes: {kept} of {all}"
    );
    assert_every_call_billed_once(&mut restored).await;
    let restored_key = SecretKey::read(&restored_data.join("secret.key")).expect("the key");
    assert_eq!(restored_key.to_hex(), key, "the archive's key was restored");
    let sealed_password = pbxes::get(&mut restored, pbx)
        .await
        .expect("query")
        .expect("the PBX")
        .gui_password_sealed;
    assert_eq!(
        restored_key
            .decrypt(pbxes::GUI_PASSWORD, &sealed_password)
            .expect("the GUI password opens"),
        GUI_PASSWORD
    );
    assert_eq!(
        std::fs::read_to_string(restored_data.join("outbox/00000001.eml")).expect("restored"),
        "Subject: hello\r\n\r\nhi"
    );

    // The restored Switchboard starts (its key check passes) and answers.
    serves_and_stops(restored_data, Some(restored_url)).await;
}

/// Starts `switchboard serve` on the data folder `data` (and the database
/// `url`, when given), checks it is ready and stops it cleanly; its log.
async fn serves_and_stops(data: std::path::PathBuf, url: Option<String>) -> Vec<String> {
    let (ready, status, log) = tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = url
            .iter()
            .map(|url| ("SWITCHBOARD_DATABASE_URL", url.as_str()))
            .collect();
        let served = Served::start(&data, &envs).expect("the restored Switchboard starts");
        let ready = served.ready_within(std::time::Duration::from_secs(10));
        let (status, log) = served.terminate();
        (ready, status, log)
    })
    .await
    .expect("served");
    assert_eq!(ready, "ready", "{log:?}");
    assert!(status.success(), "{log:?}");
    log
}

/// Backs up the app's database (and no outbox) into `archive`, its key
/// sealed with the passphrase.
async fn back_up(app: &TestApp, archive: &Path) {
    let no_outbox = tempfile::tempdir().expect("temp dir");
    let source = backup::Source {
        database_url: &app.db_url,
        bin_dir: &app.jobs.pg_bin_dir,
        data_dir: no_outbox.path(),
        key: &app.jobs.key,
        passphrase: Some(PASSPHRASE),
    };
    backup::take(&source, archive).await.expect("a backup");
}

/// Flips one byte inside the member `path` of a tar archive.
fn flip_byte_in(archive: &Path, path: &str) {
    let file = std::fs::File::open(archive).expect("the archive");
    let mut tar = tar::Archive::new(file);
    let offset = tar
        .entries()
        .expect("entries")
        .map(|entry| entry.expect("an entry"))
        .find(|entry| entry.path().expect("a path").to_str() == Some(path))
        .map(|entry| entry.raw_file_position() + entry.size() / 2)
        .expect("the member is there");
    let mut bytes = std::fs::read(archive).expect("read");
    bytes[offset as usize] ^= 0x20;
    std::fs::write(archive, bytes).expect("write");
}

/// Rewrites an archive with a different dump, and a manifest whose
/// checksums match it: only the sealed key can tell.
fn replace_dump_and_its_checksum(archive: &Path, to: &Path) {
    use sha2::Digest;
    let mut tar = tar::Archive::new(std::fs::File::open(archive).expect("the archive"));
    let mut members: Vec<(String, Vec<u8>)> = tar
        .entries()
        .expect("entries")
        .map(|entry| {
            let mut entry = entry.expect("an entry");
            let path = entry.path().expect("a path").to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
            (path, bytes)
        })
        .collect();
    let dump = members
        .iter_mut()
        .find(|(path, _)| path == backup::DUMP)
        .expect("a dump");
    dump.1.truncate(dump.1.len() - 1);
    let (size, sha256) = (
        dump.1.len() as u64,
        hex::encode(sha2::Sha256::digest(&dump.1)),
    );
    let manifest = members
        .iter_mut()
        .find(|(path, _)| path == backup::MANIFEST)
        .expect("a manifest");
    let mut parsed: backup::Manifest = serde_json::from_slice(&manifest.1).expect("JSON");
    let entry = parsed
        .files
        .iter_mut()
        .find(|f| f.path == backup::DUMP)
        .expect("listed");
    entry.size = size;
    entry.sha256 = sha256;
    manifest.1 = serde_json::to_vec(&parsed).expect("JSON");
    let mut out = tar::Builder::new(std::fs::File::create(to).expect("create"));
    for (path, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        out.append_data(&mut header, path, bytes.as_slice())
            .expect("append");
    }
    out.finish().expect("written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_backup_is_refused() {
    let app = TestApp::spawn().await;
    busy_pbx(&app).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let archive = folder.path().join("good.tar");
    back_up(&app, &archive).await;

    let copy = |name: &str| {
        let path = folder.path().join(name);
        std::fs::copy(&archive, &path).expect("copy");
        path
    };
    let flipped = copy("flipped.tar");
    flip_byte_in(&flipped, backup::DUMP);
    let truncated = copy("truncated.tar");
    let length = std::fs::metadata(&truncated).expect("size").len();
    std::fs::File::options()
        .write(true)
        .open(&truncated)
        .expect("open")
        .set_len(length / 2)
        .expect("truncate");
    let rewritten = folder.path().join("rewritten.tar");
    replace_dump_and_its_checksum(&archive, &rewritten);

    for (archive, expected) in [
        (&flipped, "does not match its checksum"),
        (&truncated, "truncated?"),
        (&rewritten, "manifest was altered"),
    ] {
        let url = empty_database().await;
        let data = folder.path().join("restore-target");
        let refused = restore_into(archive, Some(&url), &data).await;
        assert!(!refused.status.success(), "{archive:?} was restored");
        assert!(said(&refused).contains(expected), "{}", said(&refused));
        let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
        let tables = count(
            &mut conn,
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .await;
        assert_eq!(tables, 0, "nothing was restored from {archive:?}");
        assert!(!data.exists(), "nothing was written for {archive:?}");
    }

    // The good archive, but into a database in use or a folder in use.
    let refused = restore_into(&archive, Some(&app.db_url), &folder.path().join("other")).await;
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("restored only into an empty database"),
        "{}",
        said(&refused)
    );
    let parent = zero_config_folder();
    let live = parent.path().join("live");
    std::fs::create_dir_all(live.join("postgres")).expect("a folder in use");
    std::fs::write(live.join("postgres/PG_VERSION"), "15\n").expect("a cluster");
    let refused = restore_into(&archive, None, &live).await;
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("is not empty"),
        "{}",
        said(&refused)
    );
    assert_eq!(
        std::fs::read_dir(&live).expect("read").count(),
        1,
        "nothing was added to the folder in use"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_into_an_empty_private_data_folder_starts_and_an_older_backup_is_migrated() {
    let app = TestApp::spawn().await;
    busy_pbx(&app).await;
    // Make the backup an older version's: its newest migration undone.
    {
        use diesel_migrations::MigrationHarness;
        let conn = AsyncPgConnection::establish(&app.db_url)
            .await
            .expect("connect");
        let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
        tokio::task::block_in_place(|| {
            harness
                .revert_last_migration(switchboard_core::db::MIGRATIONS)
                .expect("reverted")
        });
    }
    let folder = zero_config_folder();
    let archive = folder.path().join("older.tar");
    back_up(&app, &archive).await;
    let data = folder.path().join("data");
    let _stops = StopsCluster(data.clone());
    let restore = restore_into(&archive, None, &data).await;
    assert!(restore.status.success(), "{}", said(&restore));
    assert!(
        said(&restore).contains("1 newer migrations applied"),
        "{}",
        said(&restore)
    );
    assert!(
        crate::cli::postgres_pid(&data).is_none(),
        "restore stops the cluster it started"
    );
    let log = serves_and_stops(data, None).await;
    assert!(
        !log.iter().any(|l| l.contains("database migrated")),
        "the restore migrated it already: {log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_key_is_refused_at_start() {
    let app = TestApp::spawn().await;
    busy_pbx(&app).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let wrong = SecretKey::generate().to_hex();
    let url = app.db_url.clone();
    let data = folder.path().to_path_buf();
    let started = tokio::task::spawn_blocking(move || {
        Served::start(
            &data,
            &[
                ("SWITCHBOARD_DATABASE_URL", url.as_str()),
                ("SWITCHBOARD_SECRET_KEY", wrong.as_str()),
            ],
        )
        .map(|served| served.terminate())
    })
    .await
    .expect("ran");
    let Err((status, log)) = started else {
        panic!("Switchboard started with a key that opens nothing");
    };
    assert!(!status.success());
    let log = log.join("\n");
    assert!(
        log.contains("does not open the secrets sealed in the database")
            && log.contains("pbxes.gui_password_sealed")
            && log.contains("SWITCHBOARD_SECRET_KEY"),
        "{log}"
    );

    // No key at all: refused too, and no new key is made to hide the loss.
    let url = app.db_url.clone();
    let data = folder.path().to_path_buf();
    let started = tokio::task::spawn_blocking(move || {
        Served::start(&data, &[("SWITCHBOARD_DATABASE_URL", url.as_str())])
            .map(|served| served.terminate())
    })
    .await
    .expect("ran");
    let Err((status, log)) = started else {
        panic!("Switchboard started without the key of its sealed secrets");
    };
    assert!(!status.success());
    assert!(log.join("\n").contains("secret.key is missing"), "{log:?}");
    assert!(!folder.path().join("secret.key").exists());
}

/// Every sealed column of the list, read straight from the database and
/// opened with `key`: (column, row) → plain text.
async fn open_every_sealed_value(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
) -> Vec<(String, i64, String)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        value: String,
    }
    let mut opened = Vec::new();
    for column in sealed::COLUMNS {
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT id, {} AS value FROM {} WHERE {} ORDER BY id",
            column.column, column.table, column.rows
        ))
        .load(conn)
        .await
        .expect("sealed values");
        assert!(
            !rows.is_empty(),
            "{} holds nothing in this test: give it a value in busy_pbx, so rotation is \
             shown to cover it",
            column.name()
        );
        for row in rows {
            let plain = key
                .decrypt(column.purpose, &row.value)
                .unwrap_or_else(|e| panic!("{} of row {}: {e:#}", column.name(), row.id));
            opened.push((column.name(), row.id, plain));
        }
    }
    opened
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_key_keeps_every_secret_readable() {
    let app = TestApp::spawn().await;
    busy_pbx(&app).await;
    let mut conn = app.conn().await;
    let before = open_every_sealed_value(&mut conn, &app.jobs.key).await;
    assert!(before.iter().any(|(_, _, plain)| plain == GUI_PASSWORD));
    assert!(before.iter().any(|(_, _, plain)| plain == CDR_SOURCE));
    assert!(before.iter().any(|(_, _, plain)| plain == WELCOME_TEXT));
    let folder = tempfile::tempdir().expect("temp dir");
    let key_file = folder.path().join("secret.key");
    app.jobs.key.write_new(&key_file).expect("the key file");
    let envs = [
        ("SWITCHBOARD_DATABASE_URL", app.db_url.as_str()),
        ("SWITCHBOARD_DATA_DIR", dir_str(folder.path())),
    ];

    // Refused while an instance serves with the old key.
    let serving = sealed::hold_key_lock(app.db_url.clone())
        .await
        .expect("the key lock");
    let refused = switchboard(&["rotate-key"], &envs).await;
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("stop every instance"),
        "{}",
        said(&refused)
    );
    assert_eq!(
        SecretKey::read(&key_file).expect("key").to_hex(),
        app.jobs.key.to_hex(),
        "the key is unchanged"
    );
    serving.abort();
    let _ = serving.await;

    let rotated = switchboard(&["rotate-key"], &envs).await;
    assert!(rotated.status.success(), "{}", said(&rotated));
    let new = SecretKey::read(&key_file).expect("the new key");
    assert_ne!(new.to_hex(), app.jobs.key.to_hex());
    assert!(!folder.path().join("secret.key.next").exists());
    let after = open_every_sealed_value(&mut conn, &new).await;
    assert_eq!(
        after, before,
        "every secret reads the same under the new key"
    );
    // And where Switchboard reads them, whatever the list says.
    let pbx = busy_pbx_id(&mut conn).await;
    let gui = pbxes::get(&mut conn, pbx)
        .await
        .expect("query")
        .expect("the PBX")
        .gui_password_sealed;
    assert_eq!(
        new.decrypt(pbxes::GUI_PASSWORD, &gui).expect("opens"),
        GUI_PASSWORD
    );
    let (source, _, _) = pbxes::cdr_source(&mut conn, pbx)
        .await
        .expect("query")
        .expect("a source");
    assert_eq!(
        new.decrypt(pbxes::CDR_SOURCE, &source).expect("opens"),
        CDR_SOURCE
    );
    let mut settings = (*app.jobs.settings).clone();
    settings.data_dir = folder.path().to_path_buf();
    let mailer = switchboard_jobs::Mailer::from_settings(&settings, new.clone()).expect("a mailer");
    let sent = switchboard_jobs::deliver_due(&app.pool, &mailer)
        .await
        .expect("delivered");
    assert_eq!(
        sent.sent, 1,
        "the sealed welcome email opens and leaves: {sent:?}"
    );
    let eml = std::fs::read_dir(folder.path().join("outbox"))
        .expect("the outbox")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect::<String>();
    assert!(eml.contains(&format!("<p>{WELCOME_TEXT}</p>")), "{eml}");
    assert!(
        sealed::check_key(&mut conn, &app.jobs.key)
            .await
            .expect("checked")
            .is_err(),
        "the old key opens nothing any more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sealed_column_of_the_schema_is_in_the_list() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }
    let sealed_columns: Vec<Found> = diesel::sql_query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND (column_name LIKE '%\\_sealed' \
         OR (column_name = 'sealed' AND data_type = 'boolean'))",
    )
    .load(&mut conn)
    .await
    .expect("the schema");
    assert!(sealed_columns.len() >= 3, "the query finds sealed columns");
    for found in sealed_columns {
        let listed = if found.column_name == "sealed" {
            sealed::COLUMNS.iter().any(|c| c.table == found.table_name)
        } else {
            sealed::COLUMNS
                .iter()
                .any(|c| c.table == found.table_name && c.column == found.column_name)
        };
        assert!(
            listed,
            "{}.{} holds sealed values but is not in sealed::COLUMNS: key rotation would \
             leave it unreadable",
            found.table_name, found.column_name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_backup_is_taken_once_and_the_oldest_are_deleted() {
    let folder = tempfile::tempdir().expect("temp dir");
    let backups = folder.path().join("backups");
    let for_settings = backups.clone();
    let app = TestApp::spawn_with(move |settings| {
        settings.backups.folder = Some(for_settings);
        settings.backups.keep = 2;
        settings.backups.passphrase = Some(switchboard_core::config::Secret::new(PASSPHRASE));
    })
    .await;
    busy_pbx(&app).await;
    std::fs::create_dir_all(&backups).expect("the folder");
    for old in [
        "switchboard-20261101T030000Z.tar",
        "switchboard-20261102T030000Z.tar",
    ] {
        std::fs::write(backups.join(old), b"an old backup").expect("write");
    }
    let slot = switchboard_jobs::backups::slot("2026-12-01T03:00:12Z".parse().expect("time"));
    let mut conn = app.conn().await;
    // Two instances' schedules fire for the same slot.
    assert!(switchboard_jobs::backups::queue(&mut conn, slot)
        .await
        .expect("queued"));
    assert!(!switchboard_jobs::backups::queue(&mut conn, slot)
        .await
        .expect("once"));
    // Backups run in a lane of their own: other jobs never wait behind one.
    switchboard_jobs::enqueue(
        &mut conn,
        switchboard_jobs::Job::PurgeExpiredSessions,
        "{}",
        None,
    )
    .await
    .expect("queued");
    let others =
        switchboard_jobs::run_due_in(&app.pool, &app.jobs, switchboard_jobs::Lane::AllButBackups)
            .await
            .expect("ran");
    assert_eq!(others.succeeded, 1);
    assert!(!backups.join("switchboard-20261201T030000Z.tar").exists());
    let pass = switchboard_jobs::run_due_in(&app.pool, &app.jobs, switchboard_jobs::Lane::Backups)
        .await
        .expect("ran");
    assert_eq!(pass.succeeded, 1);
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "switchboard-20261102T030000Z.tar",
            "switchboard-20261201T030000Z.tar"
        ]
    );
    let taken = backups.join("switchboard-20261201T030000Z.tar");
    let scratch = tempfile::tempdir().expect("temp dir");
    let verified =
        backup::verify(&taken, Some(PASSPHRASE), scratch.path()).expect("a whole backup");
    assert_eq!(
        verified.key.expect("the key").to_hex(),
        app.jobs.key.to_hex()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_backup_that_keeps_failing_is_reported_to_staff() {
    let folder = tempfile::tempdir().expect("temp dir");
    let not_a_folder = folder.path().join("a-file");
    std::fs::write(&not_a_folder, b"in the way").expect("write");
    let for_settings = not_a_folder.join("backups");
    let app = TestApp::spawn_with(move |settings| {
        settings.backups.folder = Some(for_settings);
    })
    .await;
    let mut conn = app.conn().await;
    let slot = switchboard_jobs::backups::slot(chrono::Utc::now());
    switchboard_jobs::backups::queue(&mut conn, slot)
        .await
        .expect("queued");
    for _ in 0..switchboard_jobs::Job::TakeBackup.max_attempts() {
        diesel::update(background_jobs::table)
            .set(background_jobs::run_after.eq(chrono::Utc::now()))
            .execute(&mut conn)
            .await
            .expect("due now");
        switchboard_jobs::run_due(&app.pool, &app.jobs)
            .await
            .expect("ran");
    }
    let notices: Vec<(String, String)> = emails::table
        .select((emails::to_address, emails::subject))
        .load(&mut conn)
        .await
        .expect("emails");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].0, app.jobs.settings.email.staff_address);
    assert!(
        notices[0].1.starts_with("Scheduled backup failed"),
        "{notices:?}"
    );
    let left: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0, "given up after its retries");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_without_a_backups_folder_leaves_the_slot_to_one_that_has_one() {
    let folder = tempfile::tempdir().expect("temp dir");
    let app = TestApp::spawn().await;
    busy_pbx(&app).await;
    let slot = switchboard_jobs::backups::slot("2026-12-01T03:00:12Z".parse().expect("time"));
    let mut conn = app.conn().await;
    assert!(switchboard_jobs::backups::queue(&mut conn, slot)
        .await
        .expect("queued"));
    // This instance has no folder: the slot is not marked done.
    let pass = switchboard_jobs::run_due_in(&app.pool, &app.jobs, switchboard_jobs::Lane::Backups)
        .await
        .expect("ran");
    assert_eq!((pass.succeeded, pass.failed), (0, 1));
    let left: Vec<Option<String>> = background_jobs::table
        .filter(background_jobs::job_type.eq("take_backup"))
        .select(background_jobs::last_error)
        .load(&mut conn)
        .await
        .expect("jobs");
    assert_eq!(left.len(), 1, "the slot is still to be taken");
    assert!(
        left[0]
            .as_deref()
            .is_some_and(|e| e.contains("backups.folder")),
        "{left:?}"
    );

    // An instance with a folder takes it.
    diesel::update(background_jobs::table)
        .set(background_jobs::run_after.eq(chrono::Utc::now()))
        .execute(&mut conn)
        .await
        .expect("due now");
    let mut settings = (*app.jobs.settings).clone();
    settings.backups.folder = Some(folder.path().to_owned());
    settings.backups.passphrase = Some(switchboard_core::config::Secret::new(PASSPHRASE));
    let with_folder = switchboard_jobs::JobContext {
        settings: std::sync::Arc::new(settings),
        ..app.jobs.clone()
    };
    let pass =
        switchboard_jobs::run_due_in(&app.pool, &with_folder, switchboard_jobs::Lane::Backups)
            .await
            .expect("ran");
    assert_eq!((pass.succeeded, pass.failed), (1, 0));
    assert!(folder
        .path()
        .join("switchboard-20261201T030000Z.tar")
        .exists());
}

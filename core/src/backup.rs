//! Backups: one tar archive holding a `pg_dump` of the database (custom
//! format, taken in one snapshot while the server goes on writing), the
//! secret key sealed with a passphrase, the file outbox, and a manifest
//! (version, schema migration, time, size and SHA-256 of every file). A
//! restore checks the whole archive against its manifest before it changes
//! anything; with a passphrase, the sealed key also vouches for the manifest
//! itself, so an archive altered and given new checksums is refused too.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::SecretKey;

/// The manifest's name, the archive's first member.
pub const MANIFEST: &str = "manifest.json";
/// The database, as `pg_dump --format=custom` wrote it.
pub const DUMP: &str = "database.dump";
/// The secret key, sealed with the backup passphrase.
pub const SEALED_KEY: &str = "secret.key.sealed";
/// Where the file outbox's messages go in the archive.
const OUTBOX: &str = "outbox";
/// The archive layout this version writes; it reads this one and older.
const FORMAT: u32 = 1;

/// What an archive says of itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub switchboard_version: String,
    /// The newest migration applied to the database when it was dumped.
    pub schema_migration: Option<String>,
    pub taken_at: DateTime<Utc>,
    /// Every other member of the archive.
    pub files: Vec<FileEntry>,
}

/// One member of the archive, as the manifest vouches for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// Whether the archive holds the secret key.
    pub fn has_key(&self) -> bool {
        self.files.iter().any(|f| f.path == SEALED_KEY)
    }

    /// What the sealed key is bound to: everything in the manifest but the
    /// key's own entry.
    fn binding(&self) -> Vec<u8> {
        let mut rest = self.clone();
        rest.files.retain(|f| f.path != SEALED_KEY);
        Sha256::digest(serde_json::to_vec(&rest).expect("a manifest serializes")).to_vec()
    }
}

/// What a backup reads.
pub struct Source<'a> {
    /// The database, as a libpq connection string.
    pub database_url: &'a str,
    /// The folder holding `pg_dump`.
    pub bin_dir: &'a Path,
    /// The data folder (its file outbox is taken along).
    pub data_dir: &'a Path,
    pub key: &'a SecretKey,
    /// Seals the key in the archive; without one the key is left out.
    pub passphrase: Option<&'a str>,
}

/// Takes a backup into `to`, written whole or not at all (it appears under
/// its name only once complete). `pg_dump` reads one consistent snapshot
/// and takes no lock that stops the server's reads and writes.
pub async fn take(source: &Source<'_>, to: &Path) -> anyhow::Result<Manifest> {
    let folder = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".switchboard-backup-")
        .tempdir_in(&folder)
        .with_context(|| format!("making a working folder in {}", folder.display()))?;
    let migration = newest_migration(source.database_url).await?;
    let taken_at = Utc::now();
    let dump = work.path().join(DUMP);
    let output = libpq_command(program(source.bin_dir, "pg_dump")?, source.database_url)
        .arg("--format=custom")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--file")
        .arg(&dump)
        .output()
        .await
        .context("running pg_dump")?;
    if !output.status.success() {
        bail!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let outbox = source.data_dir.join(OUTBOX);
    let key = source.key.clone();
    let passphrase = source.passphrase.map(str::to_owned);
    let to = to.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut members = vec![(DUMP.to_owned(), dump)];
        members.extend(outbox_files(&outbox)?);
        let mut files = Vec::with_capacity(members.len());
        for (path, on_disk) in &members {
            let (size, sha256) = digest_file(on_disk)?;
            files.push(FileEntry {
                path: path.clone(),
                size,
                sha256,
            });
        }
        let mut manifest = Manifest {
            format: FORMAT,
            switchboard_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_migration: migration,
            taken_at,
            files,
        };
        let sealed_key = passphrase.map(|passphrase| {
            let sealed = seal_key(&key, &passphrase, &manifest.binding());
            manifest.files.push(FileEntry {
                path: SEALED_KEY.into(),
                size: sealed.len() as u64,
                sha256: hex::encode(Sha256::digest(&sealed)),
            });
            sealed
        });
        write_archive(&to, &manifest, &members, sealed_key.as_deref())?;
        anyhow::Ok(manifest)
    })
    .await
    .context("writing the archive")?
}

fn write_archive(
    to: &Path,
    manifest: &Manifest,
    members: &[(String, PathBuf)],
    sealed_key: Option<&[u8]>,
) -> anyhow::Result<()> {
    let partial = to.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut tar = tar::Builder::new(file);
    let append = |tar: &mut tar::Builder<std::fs::File>, path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(manifest.taken_at.timestamp().max(0) as u64);
        tar.append_data(&mut header, path, bytes)
    };
    let written = (|| {
        append(
            &mut tar,
            MANIFEST,
            &serde_json::to_vec_pretty(manifest).context("writing the manifest")?,
        )?;
        for (path, on_disk) in members {
            tar.append_path_with_name(on_disk, path)?;
        }
        if let Some(sealed) = sealed_key {
            append(&mut tar, SEALED_KEY, sealed)?;
        }
        let file = tar.into_inner()?;
        file.sync_all()?;
        anyhow::Ok(())
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("writing {}", partial.display()));
    }
    std::fs::rename(&partial, to).with_context(|| format!("naming {}", to.display()))
}

/// A PostgreSQL client program connecting to `url`. The password of a
/// `postgres://` URL goes in the environment (`PGPASSWORD`), not on the
/// command line, where any user of the machine could read it.
fn libpq_command(program: PathBuf, url: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.env("LC_ALL", "C").env_remove("PGPASSWORD");
    let mut dbname = url.to_owned();
    if let Ok(mut parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password() {
            // Percent-decoded; a `+` stays a `+` (it is no space in a URL).
            let encoded = format!("p={}", password.replace('+', "%2B"));
            let password = url::form_urlencoded::parse(encoded.as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            command.env("PGPASSWORD", password);
            if parsed.set_password(None).is_ok() {
                dbname = parsed.to_string();
            }
        }
    }
    command.arg("--dbname").arg(dbname);
    command
}

/// One of PostgreSQL's programs in `bin_dir`, or a clear refusal.
fn program(bin_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{name} is not in {}: install PostgreSQL's client programs beside its server's",
        bin_dir.display()
    );
    Ok(path)
}

/// The outbox's messages, as (path in the archive, path on disk).
fn outbox_files(outbox: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(outbox) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", outbox.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && safe_name(&name) {
            files.push((format!("{OUTBOX}/{name}"), entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn digest_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

async fn newest_migration(url: &str) -> anyhow::Result<Option<String>> {
    #[derive(diesel::QueryableByName)]
    struct Newest {
        #[diesel(sql_type = Nullable<Text>)]
        version: Option<String>,
    }
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to the database to back it up")?;
    let newest: Newest =
        diesel::sql_query("SELECT max(version)::text AS version FROM __diesel_schema_migrations")
            .get_result(&mut conn)
            .await
            .context("reading the schema's version")?;
    Ok(newest.version)
}

/// Argon2id (19 MiB, two passes) turns the passphrase into the key that
/// seals the secret key; the archive's manifest is bound in.
fn passphrase_cipher(passphrase: &str, salt: &[u8]) -> ChaCha20Poly1305 {
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).expect("valid parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut derived = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut derived)
        .expect("a 16-byte salt and a 32-byte output are valid");
    ChaCha20Poly1305::new(&derived.into())
}

fn seal_key(key: &SecretKey, passphrase: &str, binding: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = passphrase_cipher(passphrase, &salt)
        .encrypt(
            &nonce.into(),
            Payload {
                msg: key.to_hex().as_bytes(),
                aad: binding,
            },
        )
        .expect("encryption in memory cannot fail");
    [&salt[..], &nonce[..], &sealed].concat()
}

fn open_key(sealed: &[u8], passphrase: &str, binding: &[u8]) -> anyhow::Result<SecretKey> {
    anyhow::ensure!(sealed.len() > 28, "the sealed secret key is too short");
    let (salt, rest) = sealed.split_at(16);
    let (nonce, body) = rest.split_at(12);
    let plain = passphrase_cipher(passphrase, salt)
        .decrypt(
            nonce.into(),
            Payload {
                msg: body,
                aad: binding,
            },
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "the secret key in the archive does not open: the passphrase is wrong, or the \
                 manifest was altered"
            )
        })?;
    SecretKey::from_hex(&String::from_utf8_lossy(&plain))
}

/// An archive checked against its manifest, unpacked into a working folder
/// that is removed when this is dropped.
pub struct Verified {
    pub manifest: Manifest,
    /// The secret key the archive holds, opened with the passphrase.
    pub key: Option<SecretKey>,
    dir: tempfile::TempDir,
}

/// Members larger than this are not a manifest.
const MAX_MANIFEST: u64 = 1 << 20;

/// Reads the whole archive, unpacking it into a folder made in `work_in`:
/// the manifest first, then every member it lists, each of the size and
/// SHA-256 it says, nothing else; then opens the key with the passphrase.
/// Any difference, a truncated file included, refuses it.
pub fn verify(
    archive: &Path,
    passphrase: Option<&str>,
    work_in: &Path,
) -> anyhow::Result<Verified> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(".switchboard-restore-")
        .tempdir_in(work_in)
        .with_context(|| format!("making a working folder in {}", work_in.display()))?;
    let refused = |why: String| anyhow::anyhow!("{} is refused: {why}", archive.display());
    let mut tar = tar::Archive::new(file);
    let mut entries = tar
        .entries()
        .map_err(|e| refused(format!("it is not a tar archive ({e})")))?;
    let manifest: Manifest = {
        let mut first = entries
            .next()
            .ok_or_else(|| refused("it is empty".into()))?
            .map_err(|e| refused(format!("it cannot be read ({e})")))?;
        let path = first.path()?.to_string_lossy().into_owned();
        if path != MANIFEST || first.size() > MAX_MANIFEST {
            return Err(refused(format!("it does not begin with {MANIFEST}")));
        }
        let mut text = Vec::new();
        first
            .read_to_end(&mut text)
            .map_err(|e| refused(format!("its manifest cannot be read ({e})")))?;
        serde_json::from_slice(&text)
            .map_err(|e| refused(format!("its manifest is not valid ({e})")))?
    };
    if manifest.format > FORMAT {
        return Err(refused(format!(
            "it was written by Switchboard {} in a newer layout ({}); upgrade Switchboard first",
            manifest.switchboard_version, manifest.format
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let mut entry =
            entry.map_err(|e| refused(format!("it cannot be read ({e}): truncated?")))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let listed = manifest
            .files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| refused(format!("{path} is not in its manifest")))?;
        if !seen.insert(path.clone()) {
            return Err(refused(format!("{path} appears twice")));
        }
        let on_disk = unpacked_path(dir.path(), &path)
            .ok_or_else(|| refused(format!("{path} is not a name a backup uses")))?;
        if let Some(parent) = on_disk.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&on_disk)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let read = entry
                .read(&mut buffer)
                .map_err(|e| refused(format!("{path} cannot be read ({e}): truncated?")))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read])?;
            size += read as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        if size < listed.size {
            return Err(refused(format!(
                "{path} holds {size} bytes of the {} its manifest lists: truncated?",
                listed.size
            )));
        }
        if size != listed.size || sha256 != listed.sha256 {
            return Err(refused(format!(
                "{path} does not match its checksum ({size} bytes, SHA-256 {sha256}; the \
                 manifest says {} bytes, {})",
                listed.size, listed.sha256
            )));
        }
    }
    if let Some(missing) = manifest.files.iter().find(|f| !seen.contains(&f.path)) {
        return Err(refused(format!("{} is missing: truncated?", missing.path)));
    }
    if !seen.contains(DUMP) {
        return Err(refused(format!("it holds no {DUMP}")));
    }
    let key = if manifest.has_key() {
        let Some(passphrase) = passphrase else {
            bail!(
                "{} holds the secret key sealed with a passphrase: give it as backups.passphrase \
                 (SWITCHBOARD_BACKUPS__PASSPHRASE)",
                archive.display()
            );
        };
        let sealed = std::fs::read(dir.path().join(SEALED_KEY))?;
        Some(
            open_key(&sealed, passphrase, &manifest.binding())
                .map_err(|e| refused(e.to_string()))?,
        )
    } else {
        None
    };
    Ok(Verified { manifest, key, dir })
}

/// Where a member is unpacked: only the names a backup writes.
fn unpacked_path(dir: &Path, path: &str) -> Option<PathBuf> {
    match path.split_once('/') {
        None if path == DUMP || path == SEALED_KEY => Some(dir.join(path)),
        Some((OUTBOX, name)) if safe_name(name) => Some(dir.join(OUTBOX).join(name)),
        _ => None,
    }
}

impl Verified {
    /// Loads the dump into the database behind `url`, which must be empty,
    /// in one transaction: a failure leaves it empty. Migrating it forward
    /// is the caller's next step.
    pub async fn restore_database(&self, url: &str, bin_dir: &Path) -> anyhow::Result<()> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .context("connecting to the database to restore into")?;
        let tables: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        )
        .get_result(&mut conn)
        .await?;
        anyhow::ensure!(
            tables.n == 0,
            "the database holds {} tables already: a backup is restored only into an empty \
             database, never over one in use",
            tables.n
        );
        drop(conn);
        let output = libpq_command(program(bin_dir, "pg_restore")?, url)
            .args([
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
            ])
            .arg(self.dir.path().join(DUMP))
            .output()
            .await
            .context("running pg_restore")?;
        if !output.status.success() {
            bail!(
                "pg_restore failed, and the database was left empty: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Puts the archive's files back into the data folder: the outbox's
    /// messages, and the secret key as `secret.key` unless `key_file` is
    /// false (the key is configured elsewhere).
    pub fn restore_files(&self, data_dir: &Path, key_file: bool) -> anyhow::Result<()> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        if let (Some(key), true) = (&self.key, key_file) {
            let path = data_dir.join(crate::keys::FILE);
            if path.exists() {
                let there = SecretKey::read(&path)?;
                anyhow::ensure!(
                    there.to_hex() == key.to_hex(),
                    "{} holds another key than the backup's",
                    path.display()
                );
            } else {
                key.write_new(&path)?;
            }
        }
        let outbox = self.dir.path().join(OUTBOX);
        if outbox.exists() {
            let target = data_dir.join(OUTBOX);
            std::fs::create_dir_all(&target)?;
            for entry in std::fs::read_dir(&outbox)? {
                let entry = entry?;
                std::fs::copy(entry.path(), target.join(entry.file_name())).with_context(|| {
                    format!("restoring {}", target.join(entry.file_name()).display())
                })?;
            }
        }
        Ok(())
    }
}

/// The name of a scheduled backup taken for `slot`; names sort by time.
pub fn scheduled_name(slot: DateTime<Utc>) -> String {
    format!("switchboard-{}.tar", slot.format("%Y%m%dT%H%M%SZ"))
}

/// Deletes the oldest scheduled backups in `folder` past the newest `keep`;
/// other files are left alone. Returns what was deleted.
pub fn prune(folder: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_prefix("switchboard-")?.strip_suffix(".tar"))
                .is_some_and(|stamp| {
                    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok()
                })
        })
        .collect();
    archives.sort();
    let excess = archives.len().saturating_sub(keep);
    let deleted: Vec<PathBuf> = archives.into_iter().take(excess).collect();
    for path in &deleted {
        std::fs::remove_file(path).with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealed_key_opens_only_with_its_passphrase_and_its_manifest() {
        let key = SecretKey::generate();
        let sealed = seal_key(&key, "correct horse", b"manifest");
        let opened = open_key(&sealed, "correct horse", b"manifest").expect("opens");
        assert_eq!(opened.to_hex(), key.to_hex());
        assert!(open_key(&sealed, "wrong horse", b"manifest").is_err());
        assert!(open_key(&sealed, "correct horse", b"altered").is_err());
    }

    #[test]
    fn pruning_keeps_the_newest_scheduled_backups_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let start: DateTime<Utc> = "2026-12-01T03:00:00Z".parse().expect("time");
        for day in 0..4 {
            let name = scheduled_name(start + chrono::Duration::days(day));
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        std::fs::write(dir.path().join("switchboard-by-hand.tar"), b"x").expect("write");
        let deleted = prune(dir.path(), 2).expect("pruned");
        assert_eq!(deleted.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "switchboard-20261203T030000Z.tar",
                "switchboard-20261204T030000Z.tar",
                "switchboard-by-hand.tar"
            ]
        );
    }

    #[test]
    fn a_urls_password_is_passed_in_the_environment_not_the_command_line() {
        let command = libpq_command(
            PathBuf::from("pg_dump"),
            "postgres://backup:s%40cr+t@db.example.com:5432/switchboard",
        );
        let std = command.as_std();
        let args: Vec<String> = std
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--dbname",
                "postgres://backup@db.example.com:5432/switchboard"
            ]
        );
        let password = std
            .get_envs()
            .find(|(name, _)| *name == "PGPASSWORD")
            .and_then(|(_, value)| value)
            .map(|v| v.to_string_lossy().into_owned());
        assert_eq!(password.as_deref(), Some("s@cr+t"));
    }

    #[test]
    fn only_the_names_a_backup_writes_are_unpacked() {
        let dir = Path::new("unpacked");
        assert!(unpacked_path(dir, DUMP).is_some());
        assert!(unpacked_path(dir, "outbox/00000001.eml").is_some());
        assert!(unpacked_path(dir, "outbox/../../etc/passwd").is_none());
        assert!(unpacked_path(dir, "/etc/passwd").is_none());
        assert!(unpacked_path(dir, "postgres/base/1").is_none());
    }
}

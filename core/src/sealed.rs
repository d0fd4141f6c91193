//! Every secret Switchboard stores sealed with the secret key, in one list:
//! the columns that hold them and the purpose each is sealed for. Start-up
//! checks the key against them and `switchboard rotate-key` re-seals exactly
//! these, so a new sealed column goes in [`COLUMNS`] or it would be left
//! unreadable by a rotation.
//!
//! The rules that keep the list whole, each checked by a test: a purpose
//! ([`Purpose`]) can be made only in this file, and each one made here must
//! be named by a column of the list; a column that holds sealed values is
//! named `…_sealed`, or its table has a boolean `sealed` column saying which
//! rows are sealed, and every such column or table is in the list.

use anyhow::Context;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::keys::SecretKey;

/// What a sealed value is for. Its name is bound into the sealed value, so a
/// value cannot be moved to another column; it never changes once shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purpose(&'static str);

impl Purpose {
    /// The name bound into every value sealed for this purpose.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// A PBX's GUI admin password (`pbxes.gui_password_sealed`).
pub const PBX_GUI_PASSWORD: Purpose = Purpose("pbx.gui_password");
/// A PBX's CDR database URL, with its credentials (`pbxes.cdr_source_sealed`).
pub const PBX_CDR_SOURCE: Purpose = Purpose("pbx.cdr_source");
/// The bodies of an email that carries a credential (`emails.*_body` where
/// `sealed`).
pub const EMAIL_BODY: Purpose = Purpose("email.body");

/// A user's TOTP secret for two-factor sign-in (`users.totp_secret_sealed`).
pub const USER_TOTP_SECRET: Purpose = Purpose("user.totp_secret");

/// A column holding sealed values.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub table: &'static str,
    pub column: &'static str,
    pub purpose: Purpose,
    /// An SQL condition picking the rows whose value is sealed.
    pub rows: &'static str,
}

impl Column {
    /// `table.column`, as messages name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

/// Every column that holds sealed values. Each table has a `BIGINT` `id`.
pub const COLUMNS: &[Column] = &[
    Column {
        table: "pbxes",
        column: "gui_password_sealed",
        purpose: PBX_GUI_PASSWORD,
        rows: "true",
    },
    // A new GUI password on its way: sealed for the same purpose as the
    // PBX's own, as it becomes the PBX's unchanged once the controller
    // confirmed it.
    Column {
        table: "pbx_password_changes",
        column: "password_sealed",
        purpose: PBX_GUI_PASSWORD,
        rows: "true",
    },
    Column {
        table: "pbxes",
        column: "cdr_source_sealed",
        purpose: PBX_CDR_SOURCE,
        rows: "cdr_source_sealed IS NOT NULL",
    },
    Column {
        table: "emails",
        column: "text_body",
        purpose: EMAIL_BODY,
        rows: "sealed",
    },
    Column {
        table: "emails",
        column: "html_body",
        purpose: EMAIL_BODY,
        rows: "sealed",
    },
    Column {
        table: "users",
        column: "totp_secret_sealed",
        purpose: USER_TOTP_SECRET,
        rows: "totp_secret_sealed IS NOT NULL",
    },
];

/// A sealed value the key cannot open.
#[derive(Debug, thiserror::Error)]
#[error("{column} of row {id} does not open with this key")]
pub struct WrongKey {
    pub column: String,
    pub id: i64,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    value: String,
}

fn select(column: &Column, tail: &str) -> String {
    format!(
        "SELECT id, {col} AS value FROM {table} WHERE {rows} {tail}",
        col = column.column,
        table = column.table,
        rows = column.rows,
    )
}

/// Checks that `key` opens what the database holds sealed: the oldest and
/// the newest value of every sealed column (all of them were sealed with
/// one key, since a rotation re-seals every one in one transaction).
pub async fn check_key(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
) -> anyhow::Result<Result<(), WrongKey>> {
    for column in COLUMNS {
        for order in ["ORDER BY id LIMIT 1", "ORDER BY id DESC LIMIT 1"] {
            let rows: Vec<Row> = diesel::sql_query(select(column, order))
                .load(conn)
                .await
                .with_context(|| format!("reading {}", column.name()))?;
            for row in rows {
                if key.decrypt(column.purpose, &row.value).is_err() {
                    return Ok(Err(WrongKey {
                        column: column.name(),
                        id: row.id,
                    }));
                }
            }
        }
    }
    Ok(Ok(()))
}

/// Any fixed number: every serving instance holds it shared, and a key
/// rotation needs it alone.
pub const KEY_LOCK: i64 = 0x5345_414c_4544;

/// Re-seals every sealed value under `new`, in one transaction: all or none.
/// Refused while an instance serves (it holds [`KEY_LOCK`] shared, and would
/// go on sealing with the old key). Returns how many values were re-sealed.
pub async fn reseal_all(
    conn: &mut AsyncPgConnection,
    old: &SecretKey,
    new: &SecretKey,
) -> anyhow::Result<usize> {
    conn.transaction(async |conn| {
        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let lock: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock({KEY_LOCK}) AS locked"
        ))
        .get_result(conn)
        .await?;
        anyhow::ensure!(
            lock.locked,
            "a Switchboard instance is serving from this database: stop every instance, \
             then rotate the key"
        );
        let mut total = 0;
        for column in COLUMNS {
            let rows: Vec<Row> = diesel::sql_query(select(column, "ORDER BY id FOR UPDATE"))
                .load(conn)
                .await
                .with_context(|| format!("reading {}", column.name()))?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut values = Vec::with_capacity(rows.len());
            for row in rows {
                let plain = old
                    .decrypt(column.purpose, &row.value)
                    .map_err(|_| WrongKey {
                        column: column.name(),
                        id: row.id,
                    })?;
                ids.push(row.id);
                values.push(new.encrypt(column.purpose, &plain));
            }
            total += ids.len();
            diesel::sql_query(format!(
                "UPDATE {table} SET {col} = v.value \
                 FROM unnest($1::bigint[], $2::text[]) AS v(id, value) WHERE {table}.id = v.id",
                table = column.table,
                col = column.column,
            ))
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Text>, _>(&values)
            .execute(conn)
            .await
            .with_context(|| format!("re-sealing {}", column.name()))?;
        }
        Ok(total)
    })
    .await
}

/// Takes [`KEY_LOCK`] shared on a connection of its own (waiting while a
/// rotation runs) and holds it for as long as the returned task runs, taking
/// it again whenever the connection is lost (a restarted database), so no
/// rotation runs under a serving instance.
pub async fn hold_key_lock(url: String) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    async fn lock_shared(url: &str) -> anyhow::Result<AsyncPgConnection> {
        let mut conn = AsyncPgConnection::establish(url).await?;
        diesel::sql_query(format!("SELECT pg_advisory_lock_shared({KEY_LOCK})"))
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }
    let mut conn = lock_shared(&url).await.context("taking the key lock")?;
    Ok(tokio::spawn(async move {
        loop {
            let lost: anyhow::Result<std::convert::Infallible> = async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
                }
            }
            .await;
            let Err(error) = lost;
            tracing::debug!(error = %format!("{error:#}"), "the key lock's connection was lost");
            conn = loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                if let Ok(conn) = lock_shared(&url).await {
                    break conn;
                }
            };
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_made_here_is_named_by_a_sealed_column() {
        let source = include_str!("sealed.rs");
        let made: Vec<&str> = source
            .split("= Purpose(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(made.len() >= 3, "found the purposes: {made:?}");
        for name in made {
            assert!(
                COLUMNS.iter().any(|c| c.purpose.name() == name),
                "the purpose {name} seals values, but no column of COLUMNS holds them: \
                 add its column, or key rotation leaves it unreadable"
            );
        }
    }

    #[test]
    fn a_column_is_listed_once() {
        for (i, column) in COLUMNS.iter().enumerate() {
            assert!(
                COLUMNS[i + 1..].iter().all(|c| c.name() != column.name()),
                "{} is listed twice",
                column.name()
            );
        }
    }
}

//! Queuing background jobs from inside a business transaction. The jobs
//! crate runs them; the names here are the ones it knows.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::background_jobs;

/// Creates a paid order's PBX at the hosting controller. Data: the PBX id.
pub const PROVISION_PBX: &str = "provision_pbx";
/// Reads new rows of a PBX's Asterisk CDR table. Data: the PBX id.
pub const PULL_CDRS: &str = "pull_cdrs";
/// Deletes expired sessions and old sign-in attempts.
pub const PURGE_EXPIRED_SESSIONS: &str = "purge_expired_sessions";

/// Queues a job. With a dedupe key, a job already queued under that key is
/// not queued again; returns whether a row was added.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    job_type: &str,
    data: &str,
    dedupe_key: Option<&str>,
) -> QueryResult<bool> {
    diesel::insert_into(background_jobs::table)
        .values((
            background_jobs::job_type.eq(job_type),
            background_jobs::data.eq(data),
            background_jobs::dedupe_key.eq(dedupe_key),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|rows| rows == 1)
}

/// Sends commands about one PBX to the controller. Data: a
/// `commerce::pbx_commands::CommandJob` as JSON.
pub const PBX_COMMAND: &str = "pbx_command";
/// Sends a PBX's new GUI password to the controller. Data: the id of the
/// `commerce::gui_passwords` change.
pub const SET_PBX_PASSWORD: &str = "set_pbx_password";
/// Looks at accounts' standing. Data: an account id, or empty for every
/// account that may need it.
pub const REVIEW_STANDING: &str = "review_standing";
/// Charges an account's saved card for an automatic top-up. Data: the account id.
pub const REPLENISH: &str = "replenish";
/// Routes an ordered phone number to its PBX at the controller.
pub const ASSIGN_NUMBER: &str = "assign_number";
/// Takes a released phone number off its PBX at the controller.
pub const UNASSIGN_NUMBER: &str = "unassign_number";
/// Charges every recurring item's periods that are due.
pub const BILL_RECURRING: &str = "bill_recurring";
/// Emails last month's statements. Data: the month, `YYYY-MM`.
pub const SEND_STATEMENTS: &str = "send_statements";

/// Queues a look at one account's standing soon (a payment arrived, say).
pub async fn review_standing(conn: &mut AsyncPgConnection, account: i64) -> QueryResult<bool> {
    enqueue(
        conn,
        REVIEW_STANDING,
        &account.to_string(),
        Some(&format!("{REVIEW_STANDING}:{account}")),
    )
    .await
}

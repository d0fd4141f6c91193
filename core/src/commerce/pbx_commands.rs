//! Durable commands to the hosting controller about one PBX: suspend and
//! resume calling, power off and on. Each is queued as a job in the
//! transaction that decided it, and the job sends its commands in order,
//! with none open, retrying with backoff until the controller answers; so
//! the decision stands at once even while the controller is down. Every
//! command is safe to send twice (the controller's answer to a PBX already
//! in that state is success), so a retry sends the whole list again.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::queue;
use crate::schema::pbxes;

/// One command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    SuspendCalling,
    ResumeCalling,
    PowerOff,
    PowerOn,
}

/// A job's data: the PBX, its commands in the order they are sent, and the
/// state the PBX was put in when they were decided. A job whose PBX has
/// moved to another state since is left undone: the later decision queued
/// commands of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJob {
    pub pbx: i64,
    pub commands: Vec<Command>,
    #[serde(default)]
    pub while_state: Option<String>,
}

impl CommandJob {
    /// Whether the job is still wanted for a PBX now in `state`.
    pub fn still_wanted(&self, state: &str) -> bool {
        self.while_state
            .as_deref()
            .is_none_or(|wanted| wanted == state)
    }
}

/// Queues a command job.
pub async fn queue(conn: &mut AsyncPgConnection, job: &CommandJob) -> QueryResult<()> {
    let data = serde_json::to_string(job)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    queue::enqueue(conn, queue::PBX_COMMAND, &data, None)
        .await
        .map(drop)
}

/// Moves an account's PBXs in `from` to `to` and queues `commands` for each
/// that the controller knows (one still provisioning has nothing to stop).
/// Returns how many PBXs moved.
pub async fn move_account_pbxes(
    conn: &mut AsyncPgConnection,
    account: i64,
    from: &[&str],
    to: &str,
    commands: &[Command],
) -> QueryResult<usize> {
    let moved: Vec<(i64, Option<String>)> = diesel::update(
        pbxes::table
            .filter(pbxes::account_id.eq(account))
            .filter(pbxes::state.eq_any(from)),
    )
    .set(pbxes::state.eq(to))
    .returning((pbxes::id, pbxes::controller_id))
    .get_results(conn)
    .await?;
    for (pbx, controller_id) in &moved {
        if controller_id.is_some() {
            queue(
                conn,
                &CommandJob {
                    pbx: *pbx,
                    commands: commands.to_vec(),
                    while_state: Some(to.to_owned()),
                },
            )
            .await?;
        }
    }
    Ok(moved.len())
}

/// A PBX that became active for an account an admin has turned off is
/// powered off at once, as its account's others were. Returns whether it was.
pub async fn hold_if_turned_off(conn: &mut AsyncPgConnection, pbx: i64) -> QueryResult<bool> {
    use crate::schema::accounts;
    let account: Option<i64> = pbxes::table
        .inner_join(accounts::table)
        .filter(pbxes::id.eq(pbx))
        .filter(accounts::turned_off)
        .select(accounts::id)
        .first(conn)
        .await
        .optional()?;
    match account {
        Some(account) => move_account_pbxes(
            conn,
            account,
            &["active"],
            "powered_off",
            &[Command::SuspendCalling, Command::PowerOff],
        )
        .await
        .map(|moved| moved > 0),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_job_reads_back_as_written_and_knows_when_it_is_stale() {
        let job = CommandJob {
            pbx: 7,
            commands: vec![Command::PowerOn, Command::ResumeCalling],
            while_state: Some("active".into()),
        };
        let text = serde_json::to_string(&job).expect("json");
        assert_eq!(
            text,
            r#"{"pbx":7,"commands":["power_on","resume_calling"],"while_state":"active"}"#
        );
        let read: CommandJob = serde_json::from_str(&text).expect("read");
        assert_eq!(read, job);
        assert!(job.still_wanted("active"));
        assert!(!job.still_wanted("powered_off"));
        let any: CommandJob =
            serde_json::from_str(r#"{"pbx":1,"commands":["power_off"]}"#).expect("read");
        assert!(any.still_wanted("whatever"));
    }
}

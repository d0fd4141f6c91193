//! The audit log: who did what, when, from where.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::UserId;
use crate::schema::audit_log;

/// Who acts: a signed-in user, or the system itself (a job, the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub label: String,
    pub ip: String,
}

impl Actor {
    /// The command line or a job, acting for nobody in particular.
    pub fn system(label: &str) -> Actor {
        Actor {
            user_id: None,
            label: label.to_owned(),
            ip: String::new(),
        }
    }
}

/// Records one action. `detail` must never hold a secret.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: &str,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_user_id.eq(actor.user_id.map(|u| u.0)),
            audit_log::actor.eq(&actor.label),
            audit_log::action.eq(action),
            audit_log::subject.eq(subject),
            audit_log::detail.eq(detail),
            audit_log::ip.eq(&actor.ip),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

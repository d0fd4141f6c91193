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

/// What an action changed: its subject as it was and as it became, each
/// where it applies (a creation has no before). Neither may hold a secret.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Change {
    /// Something that did not exist before.
    pub fn created(after: impl serde::Serialize) -> Change {
        Change {
            before: None,
            after: serde_json::to_value(after).ok(),
        }
    }

    /// Something as it was and as it is now.
    pub fn from_to(before: impl serde::Serialize, after: impl serde::Serialize) -> Change {
        Change {
            before: serde_json::to_value(before).ok(),
            after: serde_json::to_value(after).ok(),
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
    record_change(conn, actor, action, subject, detail, &Change::default()).await
}

/// Records one action with what it changed.
pub async fn record_change(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: &str,
    change: &Change,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_user_id.eq(actor.user_id.map(|u| u.0)),
            audit_log::actor.eq(&actor.label),
            audit_log::action.eq(action),
            audit_log::subject.eq(subject),
            audit_log::detail.eq(detail),
            audit_log::ip.eq(&actor.ip),
            audit_log::before.eq(change.before.as_ref().map(|v| v.to_string())),
            audit_log::after.eq(change.after.as_ref().map(|v| v.to_string())),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

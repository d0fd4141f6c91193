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

/// One record as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct Record {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub ip: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Which records a list shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Done by this user.
    pub actor: Option<UserId>,
    /// About this account: the account itself, its PBXs or its users.
    pub account: Option<crate::AccountId>,
    /// Of this kind (`pbx.reveal_password`), or of every kind starting
    /// with it and a dot (`pbx`).
    pub action: Option<String>,
}

/// Records newest first, before the record `before` when given.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Record>> {
    use crate::schema::{pbxes, users};
    let mut query = audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .select(Record::as_select())
        .into_boxed();
    if let Some(actor) = filter.actor {
        query = query.filter(audit_log::actor_user_id.eq(actor.0));
    }
    if let Some(account) = filter.account {
        // Subjects name what they are about; an account's are itself, its
        // PBXs and its users.
        let mut subjects = vec![format!("account:{account}")];
        let pbx_ids: Vec<i64> = pbxes::table
            .filter(pbxes::account_id.eq(account.0))
            .select(pbxes::id)
            .load(conn)
            .await?;
        let user_ids: Vec<i64> = users::table
            .filter(users::account_id.eq(account.0))
            .select(users::id)
            .load(conn)
            .await?;
        subjects.extend(pbx_ids.iter().map(|id| format!("pbx:{id}")));
        subjects.extend(user_ids.iter().map(|id| format!("user:{id}")));
        query = query.filter(audit_log::subject.eq_any(subjects));
    }
    if let Some(action) = filter.action.as_deref().filter(|a| !a.is_empty()) {
        let family = format!("{}.%", action.replace(['%', '_', '\\'], ""));
        query = query.filter(
            audit_log::action
                .eq(action)
                .or(audit_log::action.like(family)),
        );
    }
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    query.load(conn).await
}

/// Every kind of record written so far, by name.
pub async fn kinds(conn: &mut AsyncPgConnection) -> QueryResult<Vec<String>> {
    audit_log::table
        .select(audit_log::action)
        .distinct()
        .order(audit_log::action)
        .load(conn)
        .await
}

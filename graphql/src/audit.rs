//! The audit log, for admins: who did what, when, from where.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use switchboard_core::{audit, db, AccountId, UserId};

use crate::guards::{Allow, ADMIN};
use crate::types::parse_id;
use crate::{internal, pool};

/// One audited action.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditRecord {
    pub id: ID,
    pub at: DateTime<Utc>,
    /// The user who acted; none for the system (a job, the command line).
    pub actor_id: Option<ID>,
    /// The actor's username then, or what acted.
    pub actor: String,
    /// What kind of action: `pbx.reveal_password`, `account.update`, …
    pub action: String,
    /// What it was done to: `account:12`, `pbx:7`, `user:3`, …
    pub subject: String,
    pub detail: String,
    /// The address the request came from.
    pub ip: String,
    /// The subject before, as JSON, where that applies (never a secret).
    pub before: Option<String>,
    /// The subject after, as JSON, where that applies (never a secret).
    pub after: Option<String>,
}

impl From<audit::Record> for AuditRecord {
    fn from(r: audit::Record) -> AuditRecord {
        AuditRecord {
            id: ID(r.id.to_string()),
            at: r.at,
            actor_id: r.actor_user_id.map(|id| ID(id.to_string())),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            detail: r.detail,
            ip: r.ip,
            before: r.before,
            after: r.after,
        }
    }
}

/// The audit log's reads.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audited actions, newest first: optionally only one user's, only those
    /// about one account (the account, its PBXs and its users), only of one
    /// kind (`pbx.reveal_password`) or family (`pbx`).
    #[graphql(
        guard = "Allow(ADMIN)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        actor_id: Option<ID>,
        account_id: Option<ID>,
        kind: Option<String>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, AuditRecord>> {
        let (first, before) = crate::commerce::page(first, after)?;
        let filter = audit::Filter {
            actor: actor_id.as_ref().map(parse_id).transpose()?.map(UserId),
            account: account_id
                .as_ref()
                .map(parse_id)
                .transpose()?
                .map(AccountId),
            action: kind.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()),
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = audit::list(&mut conn, &filter, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(crate::commerce::connection(
            rows,
            first,
            before.is_some(),
            |r| r.id,
            AuditRecord::from,
        ))
    }

    /// Every kind of action the log holds, by name.
    #[graphql(
        guard = "Allow(ADMIN)",
        complexity = "crate::limits::cost::UNPAGED_LIST"
    )]
    async fn audit_kinds(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        audit::kinds(&mut conn).await.map_err(internal)
    }
}

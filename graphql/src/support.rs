//! Trouble tickets: a client opens one and replies on its thread; staff keep
//! the queue, answer, write internal notes the client never sees, assign
//! and close. A client reaches only their own account's tickets (a
//! reseller also its sub-accounts'); another's id reads as not found.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use switchboard_core::audit::{self, Change};
use switchboard_core::people::accounts;
use switchboard_core::support::tickets::{
    self, Assignee, Listed, Mail, NewTicket, Post, Queue, TicketError, Writer,
};
use switchboard_core::support::{Category, TicketState as CoreState};
use switchboard_core::{db, AccountId, UserId};

use crate::commerce::{commerce, connection, field_errors, page};
use crate::guards::{self, Allow, CUSTOMERS, SIGNED_IN, STAFF};
use crate::mutation::actor;
use crate::types::parse_id;
use crate::{internal, pool};

/// Where a ticket is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketState {
    /// Opened; staff have not answered yet.
    Open,
    /// The client wrote after staff answered, or reopened it.
    AwaitingStaff,
    /// Staff answered; the client's turn.
    AwaitingClient,
    /// Closed by staff; a client's reply reopens it.
    Closed,
}

impl From<CoreState> for TicketState {
    fn from(state: CoreState) -> TicketState {
        match state {
            CoreState::Open => TicketState::Open,
            CoreState::AwaitingStaff => TicketState::AwaitingStaff,
            CoreState::AwaitingClient => TicketState::AwaitingClient,
            CoreState::Closed => TicketState::Closed,
        }
    }
}

impl From<TicketState> for CoreState {
    fn from(state: TicketState) -> CoreState {
        match state {
            TicketState::Open => CoreState::Open,
            TicketState::AwaitingStaff => CoreState::AwaitingStaff,
            TicketState::AwaitingClient => CoreState::AwaitingClient,
            TicketState::Closed => CoreState::Closed,
        }
    }
}

/// What a ticket is about.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketCategory {
    Calls,
    Pbx,
    Numbers,
    Billing,
    Account,
    Other,
}

impl From<Category> for TicketCategory {
    fn from(category: Category) -> TicketCategory {
        match category {
            Category::Calls => TicketCategory::Calls,
            Category::Pbx => TicketCategory::Pbx,
            Category::Numbers => TicketCategory::Numbers,
            Category::Billing => TicketCategory::Billing,
            Category::Account => TicketCategory::Account,
            Category::Other => TicketCategory::Other,
        }
    }
}

impl From<TicketCategory> for Category {
    fn from(category: TicketCategory) -> Category {
        match category {
            TicketCategory::Calls => Category::Calls,
            TicketCategory::Pbx => Category::Pbx,
            TicketCategory::Numbers => Category::Numbers,
            TicketCategory::Billing => Category::Billing,
            TicketCategory::Account => Category::Account,
            TicketCategory::Other => Category::Other,
        }
    }
}

/// A trouble ticket.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Ticket {
    pub id: ID,
    pub subject: String,
    pub category: TicketCategory,
    pub state: TicketState,
    pub account_id: ID,
    /// The PBX it concerns, if the client named one.
    pub pbx_id: Option<ID>,
    /// The username of whoever opened it.
    pub opened_by: String,
    pub created_at: DateTime<Utc>,
    /// The last message or change of state a client can see.
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub row_id: i64,
    #[graphql(skip)]
    pub assignee_id: Option<i64>,
}

/// One message of a ticket's thread.
#[derive(SimpleObject, Clone, Debug)]
pub struct TicketMessage {
    pub id: ID,
    /// As typed; show it escaped, with its line breaks.
    pub body: String,
    /// The author's username.
    pub author: String,
    pub from_staff: bool,
    /// A note staff wrote for staff (only staff ever see one).
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

/// A member of staff a ticket can be assigned to.
#[derive(SimpleObject, Clone, Debug)]
pub struct TicketAssignee {
    pub id: ID,
    pub username: String,
}

#[ComplexObject]
impl Ticket {
    /// The thread, oldest first. Internal notes are in it for staff only.
    #[graphql(complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity")]
    async fn messages(&self, ctx: &Context<'_>) -> Result<Vec<TicketMessage>> {
        let staff = guards::user(ctx)?.role.is_company();
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let messages = tickets::messages(&mut conn, self.row_id, staff)
            .await
            .map_err(internal)?;
        Ok(messages
            .into_iter()
            // Read once more here: a note must never reach a client.
            .filter(|m| staff || !m.internal)
            .map(|m| TicketMessage {
                id: ID(m.id.to_string()),
                body: m.body,
                author: m.author,
                from_staff: m.from_staff,
                internal: m.internal,
                created_at: m.created_at,
            })
            .collect())
    }

    /// The member of staff handling it, for staff.
    #[graphql(guard = "Allow(STAFF)")]
    async fn assignee(&self, ctx: &Context<'_>) -> Result<Option<TicketAssignee>> {
        let Some(id) = self.assignee_id else {
            return Ok(None);
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(switchboard_core::people::users::get(&mut conn, UserId(id))
            .await
            .map_err(internal)?
            .map(|u| TicketAssignee {
                id: ID(u.id.to_string()),
                username: u.username,
            }))
    }

    /// The account it was opened on.
    async fn account(&self, ctx: &Context<'_>) -> Result<crate::types::Account> {
        let id = parse_id(&self.account_id)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        accounts::get(&mut conn, AccountId(id))
            .await
            .map_err(internal)?
            .map(|(row, balance)| crate::types::Account::new(row, balance))
            .ok_or_else(|| "The ticket's account is gone.".into())
    }
}

impl From<Listed> for Ticket {
    fn from(listed: Listed) -> Ticket {
        let ticket = listed.ticket;
        Ticket {
            id: ID(ticket.id.to_string()),
            category: ticket.category().into(),
            state: ticket.state().into(),
            account_id: ID(ticket.account_id.to_string()),
            pbx_id: ticket.pbx_id.map(|p| ID(p.to_string())),
            opened_by: listed.opened_by,
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            closed_at: ticket.closed_at,
            row_id: ticket.id,
            assignee_id: ticket.assignee_id,
            subject: ticket.subject,
        }
    }
}

/// An account's tickets, newest first, a page at a time (for
/// `Account.tickets`; the account is already known to be visible).
pub(crate) async fn of_account(
    ctx: &Context<'_>,
    account: i64,
    first: i32,
    after: Option<String>,
) -> Result<Connection<String, Ticket>> {
    let (first, before) = page(first, after)?;
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let queue = Queue {
        account: Some(AccountId(account)),
        ..Queue::default()
    };
    let rows = tickets::list(&mut conn, &queue, before, first + 1)
        .await
        .map_err(internal)?;
    Ok(connection(
        rows,
        first,
        before.is_some(),
        |t| t.ticket.id,
        Ticket::from,
    ))
}

/// The ticket, when the viewer may see it: staff any, a client their own
/// account's. Unknown and foreign ids read alike.
async fn visible(ctx: &Context<'_>, conn: &mut AsyncPgConnection, id: &ID) -> Result<Listed> {
    let user = guards::user(ctx)?;
    let id = parse_id(id)?;
    let not_found = || async_graphql::Error::new(format!("No ticket {id}."));
    let ticket = tickets::get(conn, id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if user.role.is_company() {
        return Ok(ticket);
    }
    match accounts::get(conn, AccountId(ticket.ticket.account_id))
        .await
        .map_err(internal)?
    {
        Some((account, _)) if guards::may_see_account(user, &account) => Ok(ticket),
        _ => Err(not_found()),
    }
}

fn writer(ctx: &Context<'_>) -> Result<Writer> {
    let user = guards::user(ctx)?;
    Ok(Writer {
        user_id: user.user_id,
        username: user.username.clone(),
        role: user.role,
    })
}

fn refused(error: TicketError, ticket: i64) -> async_graphql::Error {
    match error {
        TicketError::Invalid(errors) => field_errors(&errors),
        TicketError::NotFound => format!("No ticket {ticket}.").into(),
        TicketError::NotStaff => "You are not allowed to do this.".into(),
        TicketError::Database(error) => internal(error),
    }
}

async fn reload(conn: &mut AsyncPgConnection, id: i64) -> Result<Ticket> {
    tickets::get(conn, id)
        .await
        .map_err(internal)?
        .map(Ticket::from)
        .ok_or_else(|| format!("No ticket {id}.").into())
}

/// Reading tickets.
#[derive(Default)]
pub struct SupportQuery;

#[Object]
impl SupportQuery {
    /// One ticket: staff read any, a client their own account's.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> Result<Ticket> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        visible(ctx, &mut conn, &id).await.map(Ticket::from)
    }

    /// The staff's queue, newest first: by state, by who handles it (or
    /// nobody, with `unassigned`), by account.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "(first.clamp(1, 200) as usize) * child_complexity"
    )]
    // Each filter is an argument of the field, as the schema shows it.
    #[allow(clippy::too_many_arguments)]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        state: Option<TicketState>,
        assignee_id: Option<ID>,
        #[graphql(default)] unassigned: bool,
        account_id: Option<ID>,
        #[graphql(default = 50, desc = "At most 200.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Ticket>> {
        let (first, before) = page(first, after)?;
        let assignee = match (assignee_id, unassigned) {
            (Some(_), true) => return Err("Give assigneeId or unassigned, not both.".into()),
            (Some(id), false) => Some(Assignee::User(UserId(parse_id(&id)?))),
            (None, true) => Some(Assignee::Nobody),
            (None, false) => None,
        };
        let queue = Queue {
            state: state.map(Into::into),
            account: account_id
                .map(|id| parse_id(&id).map(AccountId))
                .transpose()?,
            assignee,
        };
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let rows = tickets::list(&mut conn, &queue, before, first + 1)
            .await
            .map_err(internal)?;
        Ok(connection(
            rows,
            first,
            before.is_some(),
            |t| t.ticket.id,
            Ticket::from,
        ))
    }

    /// Who a ticket can be assigned to: staff and admins who may sign in.
    #[graphql(
        guard = "Allow(STAFF)",
        complexity = "crate::limits::cost::UNPAGED_LIST * child_complexity"
    )]
    async fn ticket_assignees(&self, ctx: &Context<'_>) -> Result<Vec<TicketAssignee>> {
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        Ok(switchboard_core::people::users::company(&mut conn)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|u| !u.disabled)
            .map(|u| TicketAssignee {
                id: ID(u.id.to_string()),
                username: u.username,
            })
            .collect())
    }
}

/// A new ticket.
#[derive(InputObject)]
pub struct OpenTicketInput {
    pub subject: String,
    pub category: TicketCategory,
    /// One of the account's PBXs, when it concerns one.
    pub pbx_id: Option<ID>,
    pub message: String,
    /// A random value from the form: opening again with the same one returns
    /// the first ticket instead of another.
    pub request_key: Option<String>,
}

/// Changing tickets.
#[derive(Default)]
pub struct SupportMutation;

#[Object]
impl SupportMutation {
    /// Opens a ticket on the viewer's account; staff are emailed.
    #[graphql(guard = "Allow(CUSTOMERS)")]
    async fn open_ticket(&self, ctx: &Context<'_>, input: OpenTicketInput) -> Result<Ticket> {
        let user = guards::user(ctx)?;
        let account = user.account_id.ok_or("Your user belongs to no account.")?;
        let settings = &commerce(ctx)?.settings;
        let mail = Mail {
            base_url: settings.base_url(),
            staff_address: &settings.email.staff_address,
        };
        let new = NewTicket {
            subject: input.subject,
            category: Category::from(input.category).as_str().to_owned(),
            // An id that is not a number names none of the account's PBXs.
            pbx_id: input.pbx_id.map(|id| id.parse::<i64>().unwrap_or(-1)),
            message: input.message,
        };
        let writer = writer(ctx)?;
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        let request_key = input.request_key;
        let posted = conn
            .transaction(async |conn| {
                tickets::open(conn, mail, &writer, account, &new, request_key.as_deref()).await
            })
            .await
            .map_err(|e| refused(e, 0))?;
        reload(&mut conn, posted.ticket).await
    }

    /// Replies on a ticket: a client's reply waits for staff (and reopens a
    /// closed ticket), staff's waits for the client; the other side is
    /// emailed.
    #[graphql(guard = "Allow(SIGNED_IN)")]
    async fn reply_to_ticket(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        message: String,
        #[graphql(desc = "A random value from the form: the same one again posts nothing more.")]
        request_key: Option<String>,
    ) -> Result<Ticket> {
        post(ctx, ticket_id, Post::Reply, message, request_key).await
    }

    /// Adds a note for staff only: the client never sees it, nobody is
    /// emailed and the state stays.
    #[graphql(guard = "Allow(STAFF)")]
    async fn add_ticket_note(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        note: String,
        #[graphql(desc = "A random value from the form: the same one again posts nothing more.")]
        request_key: Option<String>,
    ) -> Result<Ticket> {
        post(ctx, ticket_id, Post::InternalNote, note, request_key).await
    }

    /// Hands a ticket to a member of staff, or to nobody.
    #[graphql(guard = "Allow(STAFF)")]
    async fn assign_ticket(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        assignee_id: Option<ID>,
    ) -> Result<Ticket> {
        let id = parse_id(&ticket_id)?;
        let assignee = assignee_id.map(|a| parse_id(&a).map(UserId)).transpose()?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let (before, after) = tickets::assign(conn, id, assignee).await?;
            audit::record_change(
                conn,
                &actor,
                "ticket.assign",
                &format!("ticket:{id}"),
                "",
                &Change::from_to(
                    serde_json::json!({ "assignee": before }),
                    serde_json::json!({ "assignee": after }),
                ),
            )
            .await?;
            Ok::<_, TicketError>(())
        })
        .await
        .map_err(|e| refused(e, id))?;
        reload(&mut conn, id).await
    }

    /// Closes a ticket; the client may still reply, which reopens it.
    #[graphql(guard = "Allow(STAFF)")]
    async fn close_ticket(&self, ctx: &Context<'_>, ticket_id: ID) -> Result<Ticket> {
        let id = parse_id(&ticket_id)?;
        let actor = actor(ctx);
        let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
        conn.transaction(async |conn| {
            let before = tickets::close(conn, id).await?;
            audit::record_change(
                conn,
                &actor,
                "ticket.close",
                &format!("ticket:{id}"),
                "",
                &Change::from_to(
                    serde_json::json!({ "state": before.as_str() }),
                    serde_json::json!({ "state": CoreState::Closed.as_str() }),
                ),
            )
            .await?;
            Ok::<_, TicketError>(())
        })
        .await
        .map_err(|e| refused(e, id))?;
        reload(&mut conn, id).await
    }
}

/// A reply or a note on a ticket the viewer may see; staff's are audited
/// in the same transaction.
async fn post(
    ctx: &Context<'_>,
    ticket_id: ID,
    kind: Post,
    text: String,
    request_key: Option<String>,
) -> Result<Ticket> {
    let mut conn = db::conn(pool(ctx)?).await.map_err(internal)?;
    let id = visible(ctx, &mut conn, &ticket_id).await?.ticket.id;
    let settings = &commerce(ctx)?.settings;
    let mail = Mail {
        base_url: settings.base_url(),
        staff_address: &settings.email.staff_address,
    };
    let writer = writer(ctx)?;
    let actor = actor(ctx);
    let action = match kind {
        Post::Reply => "ticket.reply",
        Post::InternalNote => "ticket.note",
    };
    conn.transaction(async |conn| {
        let posted =
            tickets::post(conn, mail, &writer, id, kind, &text, request_key.as_deref()).await?;
        if writer.role.is_company() && !posted.replayed {
            audit::record_change(
                conn,
                &actor,
                action,
                &format!("ticket:{id}"),
                &format!("message {}", posted.message),
                &Change::from_to(
                    serde_json::json!({ "state": posted.before.as_str() }),
                    serde_json::json!({ "state": posted.after.as_str() }),
                ),
            )
            .await?;
        }
        Ok::<_, TicketError>(())
    })
    .await
    .map_err(|e| refused(e, id))?;
    reload(&mut conn, id).await
}

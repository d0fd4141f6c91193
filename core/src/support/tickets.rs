//! Tickets and their threads in the database. Who may see or write on a
//! ticket is the schema's to decide; these functions take a decided writer.
//! The changing ones lock the ticket and must run inside a transaction, so
//! the message, the new state, the email to the other side (and, above
//! them, the audit record) commit together or not at all.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::notices::{self, NewMessage};
use super::states::{self, Category, Event, TicketState};
use crate::domain::{AccountId, Role, UserId};
use crate::forms::FieldErrors;
use crate::outbox;
use crate::schema::{accounts, pbxes, ticket_messages, tickets, users};

/// The longest subject, in characters.
pub const SUBJECT_MAX: usize = 200;
/// The longest message, in characters.
pub const MESSAGE_MAX: usize = 20_000;

/// A ticket as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = tickets, check_for_backend(diesel::pg::Pg))]
pub struct Ticket {
    pub id: i64,
    pub account_id: i64,
    pub opened_by: i64,
    pub pbx_id: Option<i64>,
    pub subject: String,
    pub category: String,
    pub state: String,
    pub assignee_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The last change the client may see; internal notes leave it alone.
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Ticket {
    pub fn state(&self) -> TicketState {
        self.state.parse().unwrap_or(TicketState::Open)
    }

    pub fn category(&self) -> Category {
        self.category.parse().unwrap_or(Category::Other)
    }
}

/// A ticket with the username of whoever opened it, as lists show it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub ticket: Ticket,
    pub opened_by: String,
}

/// One message of a thread.
#[derive(Clone, Debug, Queryable)]
pub struct Message {
    pub id: i64,
    pub author: String,
    pub from_staff: bool,
    /// Written by staff for staff; the client never sees it.
    pub internal: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The opening form, as typed.
#[derive(Clone, Debug, Default)]
pub struct NewTicket {
    pub subject: String,
    pub category: String,
    pub pbx_id: Option<i64>,
    pub message: String,
}

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Post {
    /// For the other side to read.
    Reply,
    /// Staff only: the client never sees it.
    InternalNote,
}

/// Who writes, as the schema decided.
#[derive(Clone, Debug)]
pub struct Writer {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
}

/// Where notices go and what their links start with.
#[derive(Clone, Copy, Debug)]
pub struct Mail<'a> {
    pub base_url: &'a str,
    pub staff_address: &'a str,
}

/// Why a ticket was not changed.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("no such ticket")]
    NotFound,
    #[error("only staff write internal notes")]
    NotStaff,
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// A message after it was posted (or found posted by an earlier submission
/// of the same form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posted {
    pub ticket: i64,
    pub message: i64,
    pub before: TicketState,
    pub after: TicketState,
    /// The same form was submitted before; nothing changed now.
    pub replayed: bool,
}

/// The message as it will be kept: trimmed, within bounds.
fn message_text(field: &str, text: &str, errors: &mut FieldErrors) -> String {
    // Browsers send a text box's line breaks as CRLF.
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        errors.add(field, "is empty: write what you need");
    } else if text.chars().count() > MESSAGE_MAX {
        errors.add(field, "is too long: at most 20,000 characters");
    }
    text.to_owned()
}

/// Checks the opening form; the PBX is checked against the account apart.
fn parse_new(new: &NewTicket) -> Result<(String, Category, String), FieldErrors> {
    let mut errors = FieldErrors::default();
    let subject = new.subject.trim();
    if subject.is_empty() {
        errors.add("subject", "is empty: say in a few words what is wrong");
    } else if subject.chars().count() > SUBJECT_MAX {
        errors.add("subject", "is too long: at most 200 characters");
    } else if subject.chars().any(char::is_control) {
        errors.add("subject", "must be one line");
    }
    let category = new.category.parse::<Category>();
    if category.is_err() {
        errors.add("category", "is not one of the choices");
    }
    let message = message_text("message", &new.message, &mut errors);
    match category {
        Ok(category) if errors.is_empty() => Ok((subject.to_owned(), category, message)),
        _ => Err(errors),
    }
}

fn key(request_key: Option<&str>) -> Option<&str> {
    request_key.map(str::trim).filter(|k| !k.is_empty())
}

/// Opens a ticket on `account` with its first message and tells staff.
/// With a request key, opening again with the same key returns the first
/// ticket and changes nothing. Returns the ticket's id.
pub async fn open(
    conn: &mut AsyncPgConnection,
    mail: Mail<'_>,
    writer: &Writer,
    account: AccountId,
    new: &NewTicket,
    request_key: Option<&str>,
) -> Result<Posted, TicketError> {
    let request_key = key(request_key);
    let (subject, category, message) = parse_new(new).map_err(TicketError::Invalid)?;
    if let Some(pbx) = new.pbx_id {
        let owned: i64 = pbxes::table
            .filter(pbxes::id.eq(pbx))
            .filter(pbxes::account_id.eq(account.0))
            .count()
            .get_result(conn)
            .await?;
        if owned == 0 {
            let mut errors = FieldErrors::default();
            errors.add("pbx_id", "is not one of the account's PBXs");
            return Err(TicketError::Invalid(errors));
        }
    }
    let inserted: Option<i64> = diesel::insert_into(tickets::table)
        .values((
            tickets::account_id.eq(account.0),
            tickets::opened_by.eq(writer.user_id.0),
            tickets::pbx_id.eq(new.pbx_id),
            tickets::subject.eq(&subject),
            tickets::category.eq(category.as_str()),
            tickets::request_key.eq(request_key),
        ))
        .on_conflict((tickets::opened_by, tickets::request_key))
        .do_nothing()
        .returning(tickets::id)
        .get_result(conn)
        .await
        .optional()?;
    let Some(ticket) = inserted else {
        // The same form again: the first submission's ticket.
        let ticket: i64 = tickets::table
            .filter(tickets::opened_by.eq(writer.user_id.0))
            .filter(tickets::request_key.eq(request_key))
            .select(tickets::id)
            .first(conn)
            .await?;
        let first: i64 = ticket_messages::table
            .filter(ticket_messages::ticket_id.eq(ticket))
            .select(ticket_messages::id)
            .order(ticket_messages::id)
            .first(conn)
            .await?;
        let state = state_of(conn, ticket).await?;
        return Ok(Posted {
            ticket,
            message: first,
            before: state,
            after: state,
            replayed: true,
        });
    };
    let message_id = insert_message(conn, ticket, writer, false, &message, None).await?;
    let account_name: String = accounts::table
        .find(account.0)
        .select(accounts::name)
        .first(conn)
        .await?;
    let link = format!("{}/admin/tickets/{ticket}", mail.base_url);
    let email = notices::to_staff(
        &NewMessage {
            to: mail.staff_address,
            ticket,
            subject: &subject,
            author: &writer.username,
            body: &message,
            link: &link,
        },
        &account_name,
        true,
    );
    outbox::queue(conn, &email, Some(&dedupe_key(message_id))).await?;
    Ok(Posted {
        ticket,
        message: message_id,
        before: TicketState::Open,
        after: TicketState::Open,
        replayed: false,
    })
}

/// Each message emails the other side at most once.
fn dedupe_key(message: i64) -> String {
    format!("ticket-message:{message}")
}

async fn state_of(conn: &mut AsyncPgConnection, ticket: i64) -> QueryResult<TicketState> {
    let state: String = tickets::table
        .find(ticket)
        .select(tickets::state)
        .first(conn)
        .await?;
    Ok(state.parse().unwrap_or(TicketState::Open))
}

async fn insert_message(
    conn: &mut AsyncPgConnection,
    ticket: i64,
    writer: &Writer,
    internal: bool,
    body: &str,
    request_key: Option<&str>,
) -> QueryResult<i64> {
    diesel::insert_into(ticket_messages::table)
        .values((
            ticket_messages::ticket_id.eq(ticket),
            ticket_messages::author_id.eq(writer.user_id.0),
            ticket_messages::from_staff.eq(writer.role.is_company()),
            ticket_messages::internal.eq(internal),
            ticket_messages::body.eq(body),
            ticket_messages::request_key.eq(request_key),
        ))
        .returning(ticket_messages::id)
        .get_result(conn)
        .await
}

/// The ticket, locked until the transaction ends.
async fn lock(conn: &mut AsyncPgConnection, ticket: i64) -> Result<Ticket, TicketError> {
    tickets::table
        .find(ticket)
        .select(Ticket::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(TicketError::NotFound)
}

/// Writes on a ticket: a reply (the client's, or staff's) moves its state
/// and emails the other side; an internal note does neither. With a
/// request key, posting the same form again changes nothing.
pub async fn post(
    conn: &mut AsyncPgConnection,
    mail: Mail<'_>,
    writer: &Writer,
    ticket: i64,
    kind: Post,
    text: &str,
    request_key: Option<&str>,
) -> Result<Posted, TicketError> {
    let staff = writer.role.is_company();
    if kind == Post::InternalNote && !staff {
        return Err(TicketError::NotStaff);
    }
    let field = match kind {
        Post::Reply => "message",
        Post::InternalNote => "note",
    };
    let mut errors = FieldErrors::default();
    let body = message_text(field, text, &mut errors);
    if !errors.is_empty() {
        return Err(TicketError::Invalid(errors));
    }
    let row = lock(conn, ticket).await?;
    let before = row.state();
    let request_key = key(request_key);
    if let Some(request_key) = request_key {
        let earlier: Option<i64> = ticket_messages::table
            .filter(ticket_messages::ticket_id.eq(ticket))
            .filter(ticket_messages::request_key.eq(request_key))
            .select(ticket_messages::id)
            .first(conn)
            .await
            .optional()?;
        if let Some(message) = earlier {
            return Ok(Posted {
                ticket,
                message,
                before,
                after: before,
                replayed: true,
            });
        }
    }
    let event = match (kind, staff) {
        (Post::InternalNote, _) => Event::StaffNoted,
        (Post::Reply, true) => Event::StaffReplied,
        (Post::Reply, false) => Event::ClientWrote,
    };
    let after = states::after(before, event);
    let internal = kind == Post::InternalNote;
    let message = insert_message(conn, ticket, writer, internal, &body, request_key).await?;
    if !internal {
        diesel::update(tickets::table.find(ticket))
            .set((
                tickets::state.eq(after.as_str()),
                tickets::updated_at.eq(Utc::now()),
                tickets::closed_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)
            .await?;
        let email = match event {
            Event::StaffReplied => {
                let to: String = users::table
                    .find(row.opened_by)
                    .select(users::email)
                    .first(conn)
                    .await?;
                let link = format!("{}/portal/tickets/{ticket}", mail.base_url);
                notices::to_client(&NewMessage {
                    to: &to,
                    ticket,
                    subject: &row.subject,
                    author: &writer.username,
                    body: &body,
                    link: &link,
                })
            }
            _ => {
                let to = staff_recipient(conn, &row, mail).await?;
                let account_name: String = accounts::table
                    .find(row.account_id)
                    .select(accounts::name)
                    .first(conn)
                    .await?;
                let link = format!("{}/admin/tickets/{ticket}", mail.base_url);
                notices::to_staff(
                    &NewMessage {
                        to: &to,
                        ticket,
                        subject: &row.subject,
                        author: &writer.username,
                        body: &body,
                        link: &link,
                    },
                    &account_name,
                    false,
                )
            }
        };
        outbox::queue(conn, &email, Some(&dedupe_key(message))).await?;
    }
    Ok(Posted {
        ticket,
        message,
        before,
        after,
        replayed: false,
    })
}

/// The staff member the ticket is assigned to (while they may sign in),
/// else the staff's address.
async fn staff_recipient(
    conn: &mut AsyncPgConnection,
    ticket: &Ticket,
    mail: Mail<'_>,
) -> QueryResult<String> {
    let Some(assignee) = ticket.assignee_id else {
        return Ok(mail.staff_address.to_owned());
    };
    let email: Option<String> = users::table
        .find(assignee)
        .filter(users::disabled.eq(false))
        .select(users::email)
        .first(conn)
        .await
        .optional()?;
    Ok(email.unwrap_or_else(|| mail.staff_address.to_owned()))
}

/// Assigns a ticket to a staff member or admin who may sign in, or to
/// nobody. Returns the assignee before and after.
pub async fn assign(
    conn: &mut AsyncPgConnection,
    ticket: i64,
    assignee: Option<UserId>,
) -> Result<(Option<i64>, Option<i64>), TicketError> {
    let row = lock(conn, ticket).await?;
    if let Some(assignee) = assignee {
        let user = crate::people::users::get(conn, assignee).await?;
        if !user.is_some_and(|u| u.role().is_company() && !u.disabled) {
            let mut errors = FieldErrors::default();
            errors.add("assignee", "is not a member of staff who may sign in");
            return Err(TicketError::Invalid(errors));
        }
    }
    let after = assignee.map(|a| a.0);
    diesel::update(tickets::table.find(ticket))
        .set(tickets::assignee_id.eq(after))
        .execute(conn)
        .await?;
    Ok((row.assignee_id, after))
}

/// Closes a ticket; closing a closed one changes nothing. Returns the state
/// it was in.
pub async fn close(conn: &mut AsyncPgConnection, ticket: i64) -> Result<TicketState, TicketError> {
    let row = lock(conn, ticket).await?;
    let before = row.state();
    if before != TicketState::Closed {
        diesel::update(tickets::table.find(ticket))
            .set((
                tickets::state.eq(states::after(before, Event::StaffClosed).as_str()),
                tickets::updated_at.eq(Utc::now()),
                tickets::closed_at.eq(Some(Utc::now())),
            ))
            .execute(conn)
            .await?;
    }
    Ok(before)
}

/// One ticket.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Listed>> {
    tickets::table
        .inner_join(users::table.on(users::id.eq(tickets::opened_by)))
        .filter(tickets::id.eq(id))
        .select((Ticket::as_select(), users::username))
        .first::<(Ticket, String)>(conn)
        .await
        .optional()
        .map(|row| row.map(|(ticket, opened_by)| Listed { ticket, opened_by }))
}

/// A ticket's thread, oldest first; internal notes only when asked for.
pub async fn messages(
    conn: &mut AsyncPgConnection,
    ticket: i64,
    with_internal_notes: bool,
) -> QueryResult<Vec<Message>> {
    let mut query = ticket_messages::table
        .inner_join(users::table)
        .filter(ticket_messages::ticket_id.eq(ticket))
        .order(ticket_messages::id)
        .select((
            ticket_messages::id,
            users::username,
            ticket_messages::from_staff,
            ticket_messages::internal,
            ticket_messages::body,
            ticket_messages::created_at,
        ))
        .into_boxed();
    if !with_internal_notes {
        query = query.filter(ticket_messages::internal.eq(false));
    }
    query.load(conn).await
}

/// Which tickets the staff's queue shows.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    pub state: Option<TicketState>,
    /// Only those of one account.
    pub account: Option<AccountId>,
    pub assignee: Option<Assignee>,
}

/// Whose tickets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignee {
    Nobody,
    User(UserId),
}

/// Tickets newest first, before `before` when paging.
pub async fn list(
    conn: &mut AsyncPgConnection,
    queue: &Queue,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Listed>> {
    let mut query = tickets::table
        .inner_join(users::table.on(users::id.eq(tickets::opened_by)))
        .select((Ticket::as_select(), users::username))
        .order(tickets::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(state) = queue.state {
        query = query.filter(tickets::state.eq(state.as_str()));
    }
    if let Some(account) = queue.account {
        query = query.filter(tickets::account_id.eq(account.0));
    }
    match queue.assignee {
        Some(Assignee::Nobody) => query = query.filter(tickets::assignee_id.is_null()),
        Some(Assignee::User(user)) => query = query.filter(tickets::assignee_id.eq(user.0)),
        None => {}
    }
    if let Some(before) = before {
        query = query.filter(tickets::id.lt(before));
    }
    let rows: Vec<(Ticket, String)> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(ticket, opened_by)| Listed { ticket, opened_by })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_form_names_each_wrong_field() {
        let errors = parse_new(&NewTicket {
            subject: "  ".into(),
            category: "gossip".into(),
            pbx_id: None,
            message: "\n \n".into(),
        })
        .expect_err("refused");
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            ["subject", "category", "message"]
        );
        let long = parse_new(&NewTicket {
            subject: "x".repeat(SUBJECT_MAX + 1),
            category: "calls".into(),
            pbx_id: None,
            message: "y".repeat(MESSAGE_MAX + 1),
        })
        .expect_err("refused");
        assert_eq!(long.fields().collect::<Vec<_>>(), ["subject", "message"]);
        let (subject, category, message) = parse_new(&NewTicket {
            subject: " No dial tone ".into(),
            category: "calls".into(),
            pbx_id: None,
            message: "  Since this morning.\nOn every phone.  ".into(),
        })
        .expect("accepted");
        assert_eq!(subject, "No dial tone");
        assert_eq!(category, Category::Calls);
        assert_eq!(message, "Since this morning.\nOn every phone.");
    }
}

//! Support: the staff's ticket queue and one ticket's page — replies to the
//! client, internal notes the client never sees, assigning and closing.
//! Each change is audited by the schema in the same transaction.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::support::{
    category_label, message_box, state_badge, state_for_staff, thread, ThreadMessage, STATES,
};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

use crate::Connection;

const TICKETS: &str = include_str!("../operations/tickets.graphql");
const TICKET: &str = include_str!("../operations/ticket.graphql");
const REPLY: &str = include_str!("../operations/reply_to_ticket.graphql");
const NOTE: &str = include_str!("../operations/add_ticket_note.graphql");
const ASSIGN: &str = include_str!("../operations/assign_ticket.graphql");
const CLOSE: &str = include_str!("../operations/close_ticket.graphql");

fn staff(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Staff, Role::Admin])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueData {
    tickets: Connection<Listed>,
    ticket_assignees: Vec<Assignee>,
}

#[derive(Deserialize, Clone)]
struct Assignee {
    id: String,
    username: String,
}

#[derive(Deserialize)]
struct AssigneeName {
    username: String,
}

#[derive(Deserialize)]
struct AccountName {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    subject: String,
    category: String,
    state: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    opened_by: String,
    account: AccountName,
    assignee: Option<AssigneeName>,
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    state: Option<String>,
    /// `me`, `nobody`, or a user's id.
    assignee: Option<String>,
    after: Option<String>,
}

/// `GET /admin/tickets[?state=…&assignee=me|nobody|ID]`: the queue.
#[handler]
pub async fn queue(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<QueueQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let chosen_state = query.state.filter(|s| STATES.contains(&s.as_str()));
    let me = ctx.user().map(|u| u.user_id.0.to_string());
    let assignee_filter = query.assignee.filter(|a| !a.is_empty());
    let (assignee, unassigned) = match assignee_filter.as_deref() {
        Some("nobody") => (None, true),
        Some("me") => (me.clone(), false),
        Some(id) => (Some(id.to_owned()), false),
        None => (None, false),
    };
    let variables = serde_json::json!({
        "state": chosen_state,
        "assignee": assignee,
        "unassigned": unassigned,
        "after": query.after,
    });
    let data: QueueData = match operations::run(state, &ctx, TICKETS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    let next_page = data.tickets.next().map(|cursor| {
        let mut pairs = vec![("after", cursor.to_owned())];
        if let Some(s) = &chosen_state {
            pairs.push(("state", s.clone()));
        }
        if let Some(a) = &assignee_filter {
            pairs.push(("assignee", a.clone()));
        }
        format!(
            "/admin/tickets?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    let chosen_assignee = assignee_filter.as_deref().unwrap_or("");
    Page {
        title: "Tickets",
        nav: Nav::StaffTickets,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Tickets" }
        form.inline method="get" action="/admin/tickets" role="search" {
            div {
                label.muted for="state" { "State" }
                select #state name="state" {
                    option value="" { "Any" }
                    @for value in STATES {
                        option value=(value) selected[chosen_state.as_deref() == Some(*value)] { (state_for_staff(value)) }
                    }
                }
            }
            div {
                label.muted for="assignee" { "Handled by" }
                select #assignee name="assignee" {
                    option value="" selected[chosen_assignee.is_empty()] { "Anyone or nobody" }
                    option value="me" selected[chosen_assignee == "me"] { "Me" }
                    option value="nobody" selected[chosen_assignee == "nobody"] { "Nobody yet" }
                    @for person in &data.ticket_assignees {
                        option value=(person.id) selected[chosen_assignee == person.id] { (person.username) }
                    }
                }
            }
            button.primary type="submit" { "Filter" }
        }
        div.table-wrap {
            table #tickets .stackable {
                thead { tr { th scope="col" { "#" } th scope="col" { "Subject" } th scope="col" { "Account" } th scope="col" { "About" } th scope="col" { "Handled by" } th scope="col" { "State" } th scope="col" { "Last change (UTC)" } } }
                tbody {
                    @for edge in &data.tickets.edges {
                        @let ticket = &edge.node;
                        tr {
                            td.muted data-label="#" { (ticket.id) }
                            td data-label="Subject" { a href={ "/admin/tickets/" (ticket.id) } { strong { (ticket.subject) } } br; span.muted { "by " (ticket.opened_by) } }
                            td data-label="Account" { a href={ "/admin/accounts/" (ticket.account.id) } { (ticket.account.name) } }
                            td data-label="About" { (category_label(&ticket.category)) }
                            td data-label="Handled by" { @if let Some(a) = &ticket.assignee { (a.username) } @else { span.muted { "nobody" } } }
                            td data-label="State" { span class={ "badge " (state_badge(&ticket.state)) } { (state_for_staff(&ticket.state)) } }
                            td data-label="Last change (UTC)" { (ticket.updated_at.format("%Y-%m-%d %H:%M")) }
                        }
                    }
                    @if data.tickets.edges.is_empty() {
                        tr { td.empty colspan="7" { "No tickets match." } }
                    }
                }
            }
        }
        @if let Some(next) = next_page {
            div.pager { span {} a.button href=(next) { "Older" } }
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TicketData {
    ticket: Ticket,
    ticket_assignees: Vec<Assignee>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticket {
    id: String,
    subject: String,
    category: String,
    state: String,
    pbx_id: Option<String>,
    opened_by: String,
    created_at: chrono::DateTime<chrono::Utc>,
    closed_at: Option<chrono::DateTime<chrono::Utc>>,
    account: AccountName,
    assignee: Option<Assignee>,
    messages: Vec<ThreadMessage>,
}

#[derive(Deserialize, Default)]
pub struct TicketQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// The reply and note forms, as typed.
#[derive(Deserialize, Default)]
pub struct WriteForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    request_key: String,
}

async fn ticket_page(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    typed: &WriteForm,
    errors: &[(String, String)],
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let data: TicketData =
        match operations::run(state, ctx, TICKET, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error @ OperationError::Refused(_)) => {
                return error_page(ctx, StatusCode::NOT_FOUND, &error.message())
            }
            Err(error) => return error_page(ctx, error.status(), &error.message()),
        };
    let ticket = data.ticket;
    let closed = ticket.state == "CLOSED";
    let assigned = ticket.assignee.as_ref().map(|a| a.id.as_str());
    let title = format!("#{} {}", ticket.id, ticket.subject);
    let action = |what: &str| format!("/admin/tickets/{}/{what}", ticket.id);
    let key = |kind: &str| {
        if typed.request_key.is_empty() || !errors.iter().any(|(f, _)| f == kind) {
            random_token()
        } else {
            typed.request_key.clone()
        }
    };
    let page = Page {
        title: &title,
        nav: Nav::StaffTickets,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/admin/tickets" { "Tickets" } " › #" (ticket.id) }
            h1 { (ticket.subject) }
            @match message {
                Some((text, true)) => div #notice .alert.ok role="status" { (text) },
                Some((text, false)) => div.alert.error role="alert" { (text) },
                None => {}
            }
            div.card {
                table.summary #ticket {
                    tr { th scope="row" { "Account" } td { a href={ "/admin/accounts/" (ticket.account.id) } { (ticket.account.name) } " · opened by " (ticket.opened_by) } }
                    tr { th scope="row" { "State" } td { span class={ "badge " (state_badge(&ticket.state)) } data-testid="ticket-state" { (state_for_staff(&ticket.state)) } } }
                    tr { th scope="row" { "About" } td { (category_label(&ticket.category)) } }
                    @if let Some(pbx) = &ticket.pbx_id { tr { th scope="row" { "PBX" } td { a href={ "/admin/pbxes/" (pbx) } { "#" (pbx) } } } }
                    tr { th scope="row" { "Handled by" } td { @if let Some(a) = &ticket.assignee { (a.username) } @else { span.muted { "nobody yet" } } } }
                    tr { th scope="row" { "Opened (UTC)" } td { (ticket.created_at.format("%Y-%m-%d %H:%M")) } }
                    @if let Some(at) = ticket.closed_at { tr { th scope="row" { "Closed (UTC)" } td { (at.format("%Y-%m-%d %H:%M")) } } }
                }
                form.inline method="post" action=(action("assign")) {
                    (csrf_field(ctx))
                    div {
                        label.muted for="assignee" { "Hand it to" }
                        select #assignee name="assignee" {
                            option value="" selected[assigned.is_none()] { "Nobody" }
                            @for person in &data.ticket_assignees {
                                option value=(person.id) selected[assigned == Some(person.id.as_str())] { (person.username) }
                            }
                        }
                    }
                    button type="submit" { "Assign" }
                }
                @if !closed {
                    form.inline method="post" action=(action("close")) {
                        (csrf_field(ctx))
                        button type="submit" { "Close the ticket" }
                    }
                }
            }
            (thread(&ticket.messages, true))
            h2 { "Reply to the client" }
            form #reply .stack.card method="post" action=(action("reply")) {
                (csrf_field(ctx))
                input type="hidden" name="request_key" value=(key("message"));
                (message_box("message", "Reply", &typed.message, errors, 6))
                p.hint { "The client reads it here and gets it by email." }
                button.primary type="submit" { "Send the reply" }
            }
            h2 { "Internal note" }
            form #add-note .stack.card method="post" action=(action("note")) {
                (csrf_field(ctx))
                input type="hidden" name="request_key" value=(key("note"));
                (message_box("note", "Note", &typed.note, errors, 4))
                p.hint { "For staff only: the client never sees it, and nobody is emailed." }
                button.primary type="submit" { "Add the note" }
            }
        }),
    )
}

/// `GET /admin/tickets/:id`: one ticket with its thread and internal notes.
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let done = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    ticket_page(
        state,
        &ctx,
        &id,
        &WriteForm::default(),
        &[],
        done.map(|d| (d, true)),
        StatusCode::OK,
    )
    .await
}

/// Runs one change and goes back to the ticket with `done`, or shows the
/// page again with what went wrong.
async fn change(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    operation: &str,
    variables: serde_json::Value,
    typed: &WriteForm,
    done: &str,
) -> Response {
    match operations::run::<serde_json::Value>(state, ctx, operation, variables).await {
        Ok(_) => {
            let query = notice::query(&state.key, "done", done);
            Redirect::see_other(format!("/admin/tickets/{id}?{query}")).into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            ticket_page(
                state,
                ctx,
                id,
                typed,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            ticket_page(
                state,
                ctx,
                id,
                typed,
                &[],
                Some((&error.message(), false)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(ctx, error.status(), &error.message()),
    }
}

/// `POST /admin/tickets/:id/reply`: answers the client through `replyToTicket`.
#[handler]
pub async fn reply(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<WriteForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "ticket": id, "message": form.message, "requestKey": form.request_key });
    change(
        state,
        &ctx,
        &id,
        REPLY,
        variables,
        &form,
        "Reply sent: the client has been emailed.",
    )
    .await
}

/// `POST /admin/tickets/:id/note`: an internal note through `addTicketNote`.
#[handler]
pub async fn note(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<WriteForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables =
        serde_json::json!({ "ticket": id, "note": form.note, "requestKey": form.request_key });
    change(
        state,
        &ctx,
        &id,
        NOTE,
        variables,
        &form,
        "Note added; the client does not see it.",
    )
    .await
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    assignee: String,
}

/// `POST /admin/tickets/:id/assign`: through `assignTicket`.
#[handler]
pub async fn assign(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let assignee = Some(form.assignee.trim()).filter(|a| !a.is_empty());
    let variables = serde_json::json!({ "ticket": id, "assignee": assignee });
    let done = if assignee.is_some() {
        "Assigned."
    } else {
        "Assigned to nobody."
    };
    change(
        state,
        &ctx,
        &id,
        ASSIGN,
        variables,
        &WriteForm::default(),
        done,
    )
    .await
}

/// `POST /admin/tickets/:id/close`: through `closeTicket`.
#[handler]
pub async fn close(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "ticket": id });
    change(
        state,
        &ctx,
        &id,
        CLOSE,
        variables,
        &WriteForm::default(),
        "Closed. A reply from the client opens it again.",
    )
    .await
}

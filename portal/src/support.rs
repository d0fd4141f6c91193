//! Support: the client's trouble tickets — the list, opening one, its
//! thread and replying. Each page runs its GraphQL operation as the viewer.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::support::{
    category_label, message_box, state_badge, state_for_client, thread, ThreadMessage, CATEGORIES,
};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const TICKETS: &str = include_str!("../operations/tickets.graphql");
const NEW_TICKET: &str = include_str!("../operations/new_ticket.graphql");
const OPEN_TICKET: &str = include_str!("../operations/open_ticket.graphql");
const TICKET: &str = include_str!("../operations/ticket.graphql");
const REPLY: &str = include_str!("../operations/reply_to_ticket.graphql");

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

#[derive(Deserialize)]
struct Viewer<T> {
    viewer: ViewerAccount<T>,
}

#[derive(Deserialize)]
struct ViewerAccount<T> {
    account: Option<T>,
}

#[derive(Deserialize)]
struct TicketList {
    tickets: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    edges: Vec<Edge>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct Edge {
    node: Listed,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    subject: String,
    category: String,
    state: String,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<String>,
}

/// `GET /portal/tickets`: the account's tickets, newest first.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<ListQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "after": query.after });
    let data: Viewer<TicketList> = match operations::run(state, &ctx, TICKETS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let Some(account) = data.viewer.account else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let tickets = account.tickets;
    let next = tickets
        .page_info
        .end_cursor
        .as_deref()
        .filter(|_| tickets.page_info.has_next_page)
        // Cursors are ticket ids: digits, safe in an address as they are.
        .map(|cursor| format!("/portal/tickets?after={cursor}"));
    Page {
        title: "Support",
        nav: Nav::ClientSupport,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Support" }
        p { "Something not working, or a question about your account? Open a ticket: support answers here and by email." }
        p { a.button.primary href="/portal/tickets/new" { "Open a ticket" } }
        div.table-wrap {
            table #tickets .stackable {
                thead { tr { th scope="col" { "Ticket" } th scope="col" { "About" } th scope="col" { "State" } th scope="col" { "Last change (UTC)" } } }
                tbody {
                    @for edge in &tickets.edges {
                        @let ticket = &edge.node;
                        tr {
                            td data-label="Ticket" { a href={ "/portal/tickets/" (ticket.id) } { "#" (ticket.id) " " (ticket.subject) } }
                            td data-label="About" { (category_label(&ticket.category)) }
                            td data-label="State" { span class={ "badge " (state_badge(&ticket.state)) } { (state_for_client(&ticket.state)) } }
                            td data-label="Last change (UTC)" { (ticket.updated_at.format("%Y-%m-%d %H:%M")) }
                        }
                    }
                    @if tickets.edges.is_empty() {
                        tr { td.empty colspan="4" { "No tickets yet." } }
                    }
                }
            }
        }
        @if let Some(next) = next {
            div.pager { span {} a.button href=(next) { "Older tickets" } }
        }
    })
}

#[derive(Deserialize)]
struct PbxList {
    pbxes: Vec<PbxChoice>,
}

#[derive(Deserialize)]
struct PbxChoice {
    id: String,
    hostname: Option<String>,
}

/// The opening form, as typed.
#[derive(Deserialize, Default)]
pub struct NewTicketForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    pbx_id: String,
    #[serde(default)]
    message: String,
    /// The form's one-time value: a double press opens one ticket.
    #[serde(default)]
    request_key: String,
}

async fn new_form(
    state: &AppState,
    ctx: &PageContext,
    typed: &NewTicketForm,
    errors: &[(String, String)],
    refusal: Option<&str>,
    status: StatusCode,
) -> Response {
    let data: Viewer<PbxList> =
        match operations::run(state, ctx, NEW_TICKET, serde_json::json!({})).await {
            Ok(data) => data,
            Err(error) => return error_page(ctx, error.status(), &error.message()),
        };
    let pbxes = data.viewer.account.map(|a| a.pbxes).unwrap_or_default();
    let request_key = if typed.request_key.is_empty() {
        random_token()
    } else {
        typed.request_key.clone()
    };
    let category_error = errors.iter().find(|(f, _)| f == "category");
    let pbx_error = errors.iter().find(|(f, _)| f == "pbx_id");
    let page = Page {
        title: "Open a ticket",
        nav: Nav::ClientSupport,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/portal/tickets" { "Support" } " › new ticket" }
            div.card.narrow.wide {
                h1 { "Open a ticket" }
                @if let Some(refusal) = refusal { div.alert.error role="alert" { (refusal) } }
                form #new-ticket .stack method="post" action="/portal/tickets" {
                    (csrf_field(ctx))
                    input type="hidden" name="request_key" value=(request_key);
                    (Field { name: "subject", label: "Subject", kind: "text", value: &typed.subject, autocomplete: "off", hint: Some("(in a few words)") }.render(errors))
                    label for="category" { "About" }
                    select #category name="category" aria-invalid=[category_error.map(|_| "true")] aria-describedby=[category_error.map(|_| "category-error")] {
                        @for (value, label) in CATEGORIES {
                            option value=(value) selected[typed.category == *value] { (label) }
                        }
                    }
                    @if let Some((_, message)) = category_error { div.field-error #category-error { "About " (message) "." } }
                    label for="pbx_id" { "PBX" span.hint { " (if it concerns one)" } }
                    select #pbx_id name="pbx_id" aria-invalid=[pbx_error.map(|_| "true")] aria-describedby=[pbx_error.map(|_| "pbx_id-error")] {
                        option value="" { "None in particular" }
                        @for pbx in &pbxes {
                            option value=(pbx.id) selected[typed.pbx_id == pbx.id] {
                                "#" (pbx.id) @if let Some(host) = &pbx.hostname { " · " (host) }
                            }
                        }
                    }
                    @if let Some((_, message)) = pbx_error { div.field-error #pbx_id-error { "PBX " (message) "." } }
                    (message_box("message", "What happened", &typed.message, errors, 8))
                    button.primary type="submit" { "Open the ticket" }
                }
            }
        }),
    )
}

/// `GET /portal/tickets/new`: the form that opens a ticket.
#[handler]
pub async fn new(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    new_form(
        state,
        &ctx,
        &NewTicketForm::default(),
        &[],
        None,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opened {
    open_ticket: Id,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

/// `POST /portal/tickets`: opens a ticket through `openTicket`.
#[handler]
pub async fn open(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<NewTicketForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if !CATEGORIES.iter().any(|(value, _)| *value == form.category) {
        let errors = [(
            "category".to_owned(),
            "is not one of the choices".to_owned(),
        )];
        return new_form(
            state,
            &ctx,
            &form,
            &errors,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let input = serde_json::json!({
        "subject": form.subject,
        "category": form.category,
        "pbxId": Some(form.pbx_id.as_str()).filter(|p| !p.is_empty()),
        "message": form.message,
        "requestKey": form.request_key,
    });
    match operations::run::<Opened>(
        state,
        &ctx,
        OPEN_TICKET,
        serde_json::json!({ "input": input }),
    )
    .await
    {
        Ok(opened) => {
            let done = notice::query(
                &state.key,
                "done",
                "Your ticket is open: support has been told and will answer here and by email.",
            );
            Redirect::see_other(format!("/portal/tickets/{}?{done}", opened.open_ticket.id))
                .into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            new_form(
                state,
                &ctx,
                &form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            new_form(
                state,
                &ctx,
                &form,
                &[],
                Some(&error.message()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
struct TicketData {
    ticket: Ticket,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ticket {
    id: String,
    subject: String,
    category: String,
    state: String,
    pbx_id: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    messages: Vec<ThreadMessage>,
}

#[derive(Deserialize, Default)]
pub struct TicketQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// The reply form, as typed.
#[derive(Deserialize, Default)]
pub struct ReplyForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_key: String,
}

async fn ticket_page(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    typed: &ReplyForm,
    errors: &[(String, String)],
    done: Option<&str>,
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
    let title = format!("#{} {}", ticket.id, ticket.subject);
    let page = Page {
        title: &title,
        nav: Nav::ClientSupport,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/portal/tickets" { "Support" } " › ticket #" (ticket.id) }
            h1 { (ticket.subject) }
            @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
            table.summary #ticket {
                tr { th scope="row" { "State" } td { span class={ "badge " (state_badge(&ticket.state)) } data-testid="ticket-state" { (state_for_client(&ticket.state)) } } }
                tr { th scope="row" { "About" } td { (category_label(&ticket.category)) } }
                @if let Some(pbx) = &ticket.pbx_id { tr { th scope="row" { "PBX" } td { "#" (pbx) } } }
                tr { th scope="row" { "Opened (UTC)" } td { (ticket.created_at.format("%Y-%m-%d %H:%M")) } }
            }
            (thread(&ticket.messages, false))
            h2 { "Reply" }
            @if closed {
                p.muted { "This ticket is closed. Write again if the problem is back: your reply opens it again." }
            }
            form #reply .stack.card method="post" action={ "/portal/tickets/" (ticket.id) "/reply" } {
                (csrf_field(ctx))
                input type="hidden" name="request_key" value=(if typed.request_key.is_empty() { random_token() } else { typed.request_key.clone() });
                (message_box("message", "Your message", &typed.message, errors, 6))
                button.primary type="submit" { @if closed { "Reply and reopen" } @else { "Send" } }
            }
        }),
    )
}

/// `GET /portal/tickets/:id`: one ticket's thread, with the reply form.
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
) -> Response {
    let ctx = match client(req) {
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
        &ReplyForm::default(),
        &[],
        done,
        StatusCode::OK,
    )
    .await
}

/// `POST /portal/tickets/:id/reply`: replies through `replyToTicket`.
#[handler]
pub async fn reply(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<ReplyForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({
        "ticket": id,
        "message": form.message,
        "requestKey": form.request_key,
    });
    match operations::run::<serde_json::Value>(state, &ctx, REPLY, variables).await {
        Ok(_) => {
            let done = notice::query(&state.key, "done", "Sent: support has been told.");
            Redirect::see_other(format!("/portal/tickets/{id}?{done}#latest")).into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            ticket_page(
                state,
                &ctx,
                &id,
                &form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            error_page(&ctx, StatusCode::NOT_FOUND, &error.message())
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

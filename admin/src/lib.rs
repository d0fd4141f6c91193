//! The staff section: what the company's people see after signing in.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod call_records;
pub mod calling;
pub mod catalogue;
pub mod numbers;
pub mod rates;
pub mod routes;
pub mod services;
pub mod staff;
pub mod support;

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::error_page;
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

const STAFF_ACCOUNTS: &str = include_str!("../operations/staff_accounts.graphql");
const STAFF_OUTBOX: &str = include_str!("../operations/outbox.graphql");

/// The standings a list can be filtered by, as the schema names them.
const STANDINGS: &[(&str, &str)] = &[
    ("GOOD", "Good"),
    ("LOW", "Low balance"),
    ("CALLING_SUSPENDED", "Calling suspended"),
    ("POWERED_OFF", "Powered off"),
];

#[derive(Deserialize, Default)]
pub struct AccountsQuery {
    search: Option<String>,
    standing: Option<String>,
    after: Option<String>,
}

/// One page of a list, as the schema's connections return it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection<T> {
    pub(crate) edges: Vec<Edge<T>>,
    page_info: PageInfo,
}

impl<T> Connection<T> {
    /// The cursor of the next page, when there is one.
    pub(crate) fn next(&self) -> Option<&str> {
        self.page_info
            .end_cursor
            .as_deref()
            .filter(|_| self.page_info.has_next_page)
    }
}

#[derive(Deserialize)]
pub(crate) struct Edge<T> {
    pub(crate) node: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// An amount as people read it.
#[derive(Deserialize)]
pub(crate) struct Formatted {
    formatted: String,
}

#[derive(Deserialize)]
struct StaffAccounts {
    accounts: Connection<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    id: String,
    name: String,
    kind: String,
    standing: String,
    turned_off: bool,
    balance: Money,
    contact: Contact,
}

#[derive(Deserialize)]
pub(crate) struct Money {
    micros: String,
    formatted: String,
}

#[derive(Deserialize)]
struct Contact {
    name: String,
    email: String,
}

/// `GET /admin`: the staff home — every account with its balance.
#[handler]
pub async fn home(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<AccountsQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let search = query.search.unwrap_or_default();
    let standing = query
        .standing
        .filter(|s| STANDINGS.iter().any(|(value, _)| value == s));
    let variables = serde_json::json!({
        "search": (!search.trim().is_empty()).then_some(search.trim()),
        "standing": standing,
        "after": query.after,
    });
    let data: StaffAccounts = match operations::run(state, &ctx, STAFF_ACCOUNTS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    let next_page = data.accounts.next().map(|cursor| {
        let mut pairs = vec![("after", cursor.to_owned())];
        if !search.trim().is_empty() {
            pairs.push(("search", search.trim().to_owned()));
        }
        if let Some(standing) = &standing {
            pairs.push(("standing", standing.clone()));
        }
        format!(
            "/admin?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    Page {
        title: "Accounts",
        nav: Nav::StaffAccounts,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Accounts" }
        form.inline method="get" action="/admin" role="search" {
            div {
                label.muted for="search" { "Name, company or email" }
                input #search type="search" name="search" value=(search);
            }
            div {
                label.muted for="standing" { "Standing" }
                select #standing name="standing" {
                    option value="" { "Any" }
                    @for (value, label) in STANDINGS {
                        option value=(value) selected[standing.as_deref() == Some(*value)] { (label) }
                    }
                }
            }
            button.primary type="submit" { "Filter" }
        }
        div.table-wrap {
            table #accounts {
                thead { tr { th { "#" } th { "Account" } th { "Contact" } th { "Kind" } th { "Standing" } th.num { "Balance" } } }
                tbody {
                    @for edge in &data.accounts.edges {
                        @let account = &edge.node;
                        tr {
                            td.muted { (account.id) }
                            td { a href={ "/admin/accounts/" (account.id) } { strong { (account.name) } } }
                            td { (account.contact.name) br; span.muted { (account.contact.email) } }
                            td { (account.kind.to_lowercase()) }
                            td {
                                span class={ "badge " (account.standing.to_lowercase()) } { (account.standing.to_lowercase().replace('_', " ")) }
                                @if account.turned_off { " " span.badge.off title="Turned off by an admin: this overrides the standing." { "turned off" } }
                            }
                            td.num class=[account.balance.micros.starts_with('-').then_some("negative")] { (account.balance.formatted) }
                        }
                    }
                    @if data.accounts.edges.is_empty() {
                        tr { td.empty colspan="6" { "No accounts match." } }
                    }
                }
            }
        }
        @if let Some(next) = next_page {
            div.pager { span {} a.button href=(next) { "Next page" } }
        }
    })
}

#[derive(Deserialize, Default)]
pub struct OutboxQuery {
    after: Option<String>,
}

#[derive(Deserialize)]
struct StaffOutbox {
    emails: Connection<Email>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Email {
    id: String,
    to: String,
    subject: String,
    state: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /admin/outbox`: every email Switchboard queued, and whether it left.
#[handler]
pub async fn outbox(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<OutboxQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "after": query.after });
    let data: StaffOutbox = match operations::run(state, &ctx, STAFF_OUTBOX, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    let next_page = data.emails.next().map(|cursor| {
        format!(
            "/admin/outbox?{}",
            serde_urlencoded::to_string([("after", cursor)]).unwrap_or_default()
        )
    });
    let files = state.settings.email.smtp.is_none();
    Page {
        title: "Outbox",
        nav: Nav::StaffOutbox,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Outbox" }
        @if files {
            div.alert.info role="status" {
                "No SMTP server is configured: messages are written as .eml files to "
                code { (state.settings.data_dir.join("outbox").display()) } " instead of being sent."
            }
        }
        div.table-wrap {
            table #outbox {
                thead { tr { th { "Queued (UTC)" } th { "To" } th { "Subject" } th { "State" } th.num { "Attempts" } th { "Sent / last error" } } }
                tbody {
                    @for edge in &data.emails.edges {
                        @let email = &edge.node;
                        tr {
                            td { (email.created_at.format("%Y-%m-%d %H:%M")) }
                            td { (email.to) }
                            td { a href={ "/admin/outbox/" (email.id) } { (email.subject) } }
                            td { span class={ "badge " (email_badge(&email.state)) } { (email.state.to_lowercase()) } }
                            td.num { (email.attempts) }
                            td {
                                @if let Some(sent) = email.sent_at { (sent.format("%Y-%m-%d %H:%M")) }
                                @else if let Some(error) = &email.last_error { span.negative { (error) } }
                            }
                        }
                    }
                    @if data.emails.edges.is_empty() {
                        tr { td.empty colspan="6" { "Nothing has been queued yet." } }
                    }
                }
            }
        }
        @if let Some(next) = next_page {
            div.pager { span {} a.button href=(next) { "Older" } }
        }
    })
}

const STAFF_EMAIL: &str = include_str!("../operations/email.graphql");

#[derive(Deserialize)]
struct EmailData {
    email: Message,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: String,
    to: String,
    subject: String,
    state: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    sealed: bool,
    text: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct MessageQuery {
    open: Option<String>,
}

/// `GET /admin/outbox/:id[?open=sealed]`: one message with its text
/// version. A sealed message (it carries a PBX password) stays closed
/// unless an admin asks to open it, which the audit log records.
#[handler]
pub async fn message(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    Query(query): Query<MessageQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let is_admin = ctx.role() == Some(Role::Admin);
    let open = is_admin && query.open.as_deref() == Some("sealed");
    let variables = serde_json::json!({ "id": id, "openSealed": open });
    let data: EmailData = match operations::run(state, &ctx, STAFF_EMAIL, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::NOT_FOUND, &error.message()),
    };
    let email = data.email;
    Page {
        title: &email.subject,
        nav: Nav::StaffOutbox,
        ctx: &ctx,
    }
    .respond(html! {
        p.muted { a href="/admin/outbox" { "Outbox" } " › message #" (email.id) }
        h1 { (email.subject) }
        div.card {
            table.summary #message {
                tr { th scope="row" { "To" } td { (email.to) } }
                tr { th scope="row" { "Queued (UTC)" } td { (email.created_at.format("%Y-%m-%d %H:%M:%S")) } }
                tr { th scope="row" { "State" } td { span class={ "badge " (email_badge(&email.state)) } { (email.state.to_lowercase()) } " after " (email.attempts) " " (if email.attempts == 1 { "attempt" } else { "attempts" }) } }
                @if let Some(sent) = email.sent_at { tr { th scope="row" { "Sent (UTC)" } td { (sent.format("%Y-%m-%d %H:%M:%S")) } } }
                @if let Some(error) = &email.last_error { tr { th scope="row" { "Last error" } td.negative { (error) } } }
            }
        }
        h2 { "Text" }
        @match (&email.text, email.sealed) {
            (Some(text), _) => {
                @if email.sealed { div.alert.info role="status" { "Sealed message opened; this opening is in the audit log." } }
                pre.message data-testid="message-text" { (text) }
            }
            (None, true) => div.card data-testid="sealed" {
                p { "This message carries a PBX password, so it is stored sealed." }
                @if is_admin {
                    p { a.button href={ "/admin/outbox/" (email.id) "?open=sealed" } { "Open the sealed message" } }
                    p.muted { "Opening it is recorded in the audit log." }
                } @else {
                    p.muted { "Only admins can open it." }
                }
            },
            (None, false) => p.muted { "This message has no text version." },
        }
    })
}

fn email_badge(state: &str) -> &'static str {
    match state {
        "SENT" => "good",
        "FAILED" => "off",
        _ => "low",
    }
}

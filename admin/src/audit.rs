//! The audit log page, for admins: every sensitive action, newest first,
//! filtered by who did it, which account it touched and what kind it was.

use maud::html;
use poem::web::{Data, Query};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::error_page;
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

use crate::Connection;

const LOG: &str = "query Log($actor: ID, $account: ID, $kind: String, $after: String) { \
    auditLog(actorId: $actor, accountId: $account, kind: $kind, first: 50, after: $after) { \
      edges { node { id at actor actorId action subject detail ip before after } } \
      pageInfo { hasNextPage endCursor } } \
    auditKinds staffUsers { id username } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogData {
    audit_log: Connection<Record>,
    audit_kinds: Vec<String>,
    staff_users: Vec<Person>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    at: chrono::DateTime<chrono::Utc>,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    ip: String,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct Person {
    id: String,
    username: String,
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    actor: Option<String>,
    account: Option<String>,
    kind: Option<String>,
    after: Option<String>,
}

/// A subject as a link to what it names, where there is a page for it.
fn subject_link(subject: &str) -> maud::Markup {
    let href = match subject.split_once(':') {
        Some(("account", id)) => Some(format!("/admin/accounts/{id}")),
        Some(("pbx", id)) => Some(format!("/admin/pbxes/{id}")),
        Some(("calling_plan", id)) => Some(format!("/admin/calling-plans/{id}")),
        Some(("email", id)) => Some(format!("/admin/outbox/{id}")),
        _ => None,
    };
    html! { @if let Some(href) = href { a href=(href) { (subject) } } @else { (subject) } }
}

/// `GET /admin/audit`
#[handler]
pub async fn log(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<LogQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let (actor, account, kind) = (
        nonempty(&query.actor),
        nonempty(&query.account),
        nonempty(&query.kind),
    );
    let variables = serde_json::json!({ "actor": actor, "account": account, "kind": kind, "after": query.after });
    let data: LogData = match operations::run(state, &ctx, LOG, variables).await {
        Ok(data) => data,
        Err(error) => {
            return error_page(&ctx, poem::http::StatusCode::BAD_REQUEST, &error.message())
        }
    };
    let next = data.audit_log.next().map(|cursor| {
        let mut pairs = vec![("after", cursor.to_owned())];
        for (name, value) in [("actor", &actor), ("account", &account), ("kind", &kind)] {
            if let Some(value) = value {
                pairs.push((name, value.clone()));
            }
        }
        format!(
            "/admin/audit?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    Page { title: "Audit log", nav: Nav::StaffAudit, ctx: &ctx }.respond(html! {
        h1 { "Audit log" }
        form.inline method="get" action="/admin/audit" role="search" {
            div {
                label.muted for="actor" { "Who" }
                select #actor name="actor" {
                    option value="" { "Anyone" }
                    @for p in &data.staff_users {
                        option value=(p.id) selected[actor.as_deref() == Some(p.id.as_str())] { (p.username) }
                    }
                }
            }
            div {
                label.muted for="account" { "Account number" }
                input #account type="text" inputmode="numeric" name="account" value=(account.clone().unwrap_or_default()) size="8";
            }
            div {
                label.muted for="kind" { "Kind" }
                select #kind name="kind" {
                    option value="" { "Any" }
                    @for k in &data.audit_kinds {
                        option value=(k) selected[kind.as_deref() == Some(k.as_str())] { (k) }
                    }
                }
            }
            button.primary type="submit" { "Filter" }
        }
        div.table-wrap {
            table #audit-log {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "From" } th scope="col" { "What" } th scope="col" { "On" } th scope="col" { "Detail" } } }
                tbody {
                    @for edge in &data.audit_log.edges {
                        @let r = &edge.node;
                        tr {
                            td { (r.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (r.actor) }
                            td { code { (r.ip) } }
                            td { code { (r.action) } }
                            td { (subject_link(&r.subject)) }
                            td {
                                (r.detail)
                                @if r.before.is_some() || r.after.is_some() {
                                    details {
                                        summary { "Before and after" }
                                        @if let Some(before) = &r.before { p { "Before: " code { (before) } } }
                                        @if let Some(after) = &r.after { p { "After: " code { (after) } } }
                                    }
                                }
                            }
                        }
                    }
                    @if data.audit_log.edges.is_empty() { tr { td.empty colspan="6" { "Nothing matches." } } }
                }
            }
        }
        @if let Some(next) = next { div.pager { span {} a.button href=(next) { "Older" } } }
    })
}

//! Calling status: every PBX the controller runs, whether it may call and
//! is powered, its account's standing, and its calls right now. A script
//! brings the page up to date every thirty seconds (and can be paused);
//! without it, a link refreshes it by hand.

use maud::html;
use poem::web::{Data, Query};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{error_page, html_response};
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

use crate::accounts::badge;
use crate::Connection;

const STATUS: &str = "query Calling($trouble: Boolean!, $after: String) { \
    callingStatus(trouble: $trouble, first: 25, after: $after) { \
      edges { node { id label state hostname account { id name standing turnedOff } \
        health { state calling } liveCalls { from to direction startedAt } } } \
      pageInfo { hasNextPage endCursor } } }";

/// Seconds between refreshes.
const REFRESH_SECONDS: u32 = 30;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusData {
    calling_status: Connection<Pbx>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pbx {
    id: String,
    state: String,
    label: String,
    hostname: Option<String>,
    account: Account,
    health: Health,
    live_calls: Option<Vec<LiveCall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    id: String,
    name: String,
    standing: String,
    turned_off: bool,
}

#[derive(Deserialize)]
struct Health {
    state: String,
    calling: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveCall {
    from: String,
    to: String,
    direction: String,
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    trouble: Option<String>,
    after: Option<String>,
}

/// `GET /admin/calling[?trouble=1]`
#[handler]
pub async fn status(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<StatusQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let trouble = query.trouble.is_some_and(|t| !t.is_empty());
    let variables = serde_json::json!({ "trouble": trouble, "after": query.after });
    let data: StatusData = match operations::run(state, &ctx, STATUS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let here = if trouble {
        "/admin/calling?trouble=1"
    } else {
        "/admin/calling"
    };
    let next = data.calling_status.next().map(|cursor| {
        let mut pairs = vec![("after", cursor.to_owned())];
        if trouble {
            pairs.push(("trouble", "1".into()));
        }
        format!(
            "/admin/calling?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    let live: usize = data
        .calling_status
        .edges
        .iter()
        .filter_map(|e| e.node.live_calls.as_ref().map(Vec::len))
        .sum();
    let page = Page {
        title: "Calling status",
        nav: Nav::StaffCalling,
        ctx: &ctx,
    };
    let head = html! { script src="/static/calling-status.js" defer {} };
    html_response(poem::http::StatusCode::OK, page.render_app_like(head, html! {
        h1 { "Calling status" }
        p {
            span hidden { label.checkbox for="auto-refresh" { input #auto-refresh type="checkbox" checked; " Update by itself every " (REFRESH_SECONDS) " seconds" } " · " }
            a href=(here) { "Refresh now" }
        }
        nav.tabs aria-label="Which PBXs" {
            @if trouble { a href="/admin/calling" { "Every PBX" } a href="/admin/calling?trouble=1" aria-current="page" { "Accounts in trouble" } }
            @else { a href="/admin/calling" aria-current="page" { "Every PBX" } a href="/admin/calling?trouble=1" { "Accounts in trouble" } }
        }
        div #calling-board data-refresh-every=(REFRESH_SECONDS) {
        p.muted { strong #live-total { (live) } " calls in progress on this page's PBXs." }
        div.table-wrap {
            table #calling-status {
                thead { tr { th scope="col" { "PBX" } th scope="col" { "Account" } th scope="col" { "Standing" } th scope="col" { "State" } th scope="col" { "Calling" } th scope="col" { "Power" } th scope="col" { "Calls now" } } }
                tbody {
                    @for edge in &data.calling_status.edges {
                        @let p = &edge.node;
                        tr {
                            td { a href={ "/admin/pbxes/" (p.id) } { "#" (p.id) } @if !p.label.is_empty() { " " (p.label) } br; span.muted { (p.hostname.as_deref().unwrap_or("")) } }
                            td { a href={ "/admin/accounts/" (p.account.id) } { (p.account.name) } }
                            td { (badge(&p.account.standing)) @if p.account.turned_off { " " span.badge.off { "turned off" } } }
                            td { (badge(&p.state)) }
                            td { (match p.health.calling.as_deref() { Some("suspended") => "suspended", Some("enabled") => "allowed", _ => "unknown" }) }
                            td { (match p.health.state.as_str() { "up" => "on", "down" => "off", _ => "unknown" }) }
                            td {
                                @match &p.live_calls {
                                    None => span.muted { "no answer" },
                                    Some(calls) if calls.is_empty() => span.muted { "none" },
                                    Some(calls) => {
                                        strong { (calls.len()) }
                                        ul.plain { @for c in calls { li { (c.direction) ": " (c.from) " → " (c.to) } } }
                                    }
                                }
                            }
                        }
                    }
                    @if data.calling_status.edges.is_empty() { tr { td.empty colspan="7" { "No PBX here." } } }
                }
            }
        }
        }
        @if let Some(next) = next { div.pager { span {} a.button href=(next) { "Next page" } } }
    }))
}

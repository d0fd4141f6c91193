//! The client's control panel: what a client or reseller sees after signing in.
#![forbid(unsafe_code)]

use maud::html;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::error_page;
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

const CLIENT_HOME: &str = include_str!("../operations/client_home.graphql");

#[derive(Deserialize)]
struct ClientHome {
    viewer: Viewer,
}

#[derive(Deserialize)]
struct Viewer {
    account: Option<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    name: String,
    standing: String,
    turned_off: bool,
    balance: Money,
    low_balance_threshold: Money,
    recent_entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Money {
    micros: Option<String>,
    formatted: String,
}

impl Money {
    fn is_negative(&self) -> bool {
        self.micros.as_deref().is_some_and(|m| m.starts_with('-'))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    posted_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    memo: String,
    amount: Money,
}

/// How a standing reads to a client.
fn standing_label(standing: &str) -> &'static str {
    match standing {
        "GOOD" => "Good",
        "LOW" => "Low balance",
        "CALLING_SUSPENDED" => "Calling suspended",
        "POWERED_OFF" => "Powered off",
        _ => "Unknown",
    }
}

/// `GET /portal`: the client home — account, balance and latest movements.
#[handler]
pub async fn home(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: ClientHome = match operations::run(state, &ctx, CLIENT_HOME, serde_json::json!({}))
        .await
    {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &error.message()),
    };
    let Some(account) = data.viewer.account else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let standing_class = account.standing.to_lowercase();
    Page {
        title: "Home",
        nav: Nav::ClientHome,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { (account.name) }
        @if account.turned_off {
            div.alert.error role="alert" { "This account has been turned off. Contact support." }
        }
        div.cards {
            div.card.figure {
                div.label { "Balance" }
                div.value.balance class=[account.balance.is_negative().then_some("negative")] data-testid="balance" {
                    (account.balance.formatted)
                }
                div.muted { "Low-balance notice below " (account.low_balance_threshold.formatted) }
            }
            div.card.figure {
                div.label { "Standing" }
                div.value { span class={ "badge " (standing_class) } { (standing_label(&account.standing)) } }
            }
        }
        h2 { "Latest movements" }
        div.table-wrap {
            table {
                thead { tr { th { "When (UTC)" } th { "What" } th { "Memo" } th.num { "Amount" } } }
                tbody {
                    @for entry in &account.recent_entries {
                        tr {
                            td { (entry.posted_at.format("%Y-%m-%d %H:%M")) }
                            td { (entry.kind) }
                            td { (entry.memo) }
                            td.num class=[entry.amount.is_negative().then_some("negative")] { (entry.amount.formatted) }
                        }
                    }
                    @if account.recent_entries.is_empty() {
                        tr { td.empty colspan="4" { "No payments or charges yet." } }
                    }
                }
            }
        }
    })
}

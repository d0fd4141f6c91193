//! One account as staff see it: contact, balance, PBXs, orders, the latest
//! movements of its ledger and its last calls.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::error_page;
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

use crate::{Formatted, Money};

const ACCOUNT: &str = include_str!("../operations/account.graphql");

#[derive(Deserialize)]
struct AccountData {
    account: Account,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    id: String,
    name: String,
    kind: String,
    currency: String,
    standing: String,
    turned_off: bool,
    time_zone: String,
    created_at: chrono::DateTime<chrono::Utc>,
    parent_id: Option<String>,
    balance: Money,
    low_balance_threshold: Formatted,
    credit_limit: Formatted,
    contact: Contact,
    pbxes: Vec<Pbx>,
    orders: Vec<Order>,
    recent_entries: Vec<Entry>,
    recent_calls: Vec<Call>,
    standing_since: chrono::DateTime<chrono::Utc>,
    standing_history: Vec<StandingChange>,
    auto_replenish: AutoReplenish,
    saved_card: Option<SavedCard>,
    replenishments: Vec<Replenishment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StandingChange {
    at: chrono::DateTime<chrono::Utc>,
    from: String,
    to: String,
    cause: String,
    balance: Formatted,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoReplenish {
    enabled: bool,
    amount: Formatted,
    monthly_cap: Formatted,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedCard {
    brand: String,
    last4: String,
    exp_month: i32,
    exp_year: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Replenishment {
    at: chrono::DateTime<chrono::Utc>,
    amount: Formatted,
    state: String,
    detail: String,
}

#[derive(Deserialize)]
struct Contact {
    name: String,
    company: String,
    email: String,
    phone: String,
    address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pbx {
    id: String,
    state: String,
    hostname: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    state: String,
    total: Formatted,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    posted_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    memo: String,
    amount: Money,
}

#[derive(Deserialize)]
struct Call {
    start: chrono::DateTime<chrono::Utc>,
    from: String,
    to: String,
    direction: String,
    status: String,
    rating: String,
    cost: Formatted,
}

/// A state or standing as a badge: `CALLING_SUSPENDED` reads "calling suspended".
pub(crate) fn badge(value: &str) -> maud::Markup {
    let class = match value {
        "ACTIVE" | "GOOD" | "SENT" | "PAID" | "FULFILLED" => "good",
        "PROVISIONING" | "LOW" | "QUEUED" | "AWAITING_PAYMENT" | "FULFILLING" => "low",
        _ => "off",
    };
    html! { span class={ "badge " (class) } { (value.to_lowercase().replace('_', " ")) } }
}

/// `GET /admin/accounts/:id`: everything staff need about one account.
#[handler]
pub async fn show(req: &Request, Data(state): Data<&AppState>, Path(id): Path<String>) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: AccountData =
        match operations::run(state, &ctx, ACCOUNT, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error) => return error_page(&ctx, StatusCode::NOT_FOUND, &error.message()),
        };
    let a = data.account;
    let title = format!("Account {}", a.name);
    Page {
        title: &title,
        nav: Nav::StaffAccounts,
        ctx: &ctx,
    }
    .respond(html! {
        p.muted { a href="/admin" { "Accounts" } " › #" (a.id) }
        h1 { (a.name) }
        @if a.turned_off {
            div.alert.error role="alert" { "This account is turned off." }
        }
        div.cards {
            div.card.figure {
                div.label { "Balance" }
                div.value class=[a.balance.micros.starts_with('-').then_some("negative")] data-testid="balance" { (a.balance.formatted) }
                div.muted { "Notice below " (a.low_balance_threshold.formatted) " · credit limit " (a.credit_limit.formatted) }
            }
            div.card.figure {
                div.label { "Standing" }
                div.value { (badge(&a.standing)) }
                div.muted { (a.kind.to_lowercase()) " · " (a.currency) " · " (a.time_zone) }
            }
        }
        h2 { "Standing history" }
        p.muted { "In this standing since " (a.standing_since.format("%Y-%m-%d %H:%M UTC")) ". "
            "Automatic top-ups: "
            @if a.auto_replenish.enabled { (a.auto_replenish.amount.formatted) " at a time, at most " (a.auto_replenish.monthly_cap.formatted) " a month" } @else { "off" }
            "; card: "
            @if let Some(card) = &a.saved_card { (card.brand) " ending " (card.last4) " (" (card.exp_month) "/" (card.exp_year) ")" } @else { "none saved" }
            "." }
        div.table-wrap {
            table #standing-history {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Cause" } th.num scope="col" { "Balance" } } }
                tbody {
                    @for change in &a.standing_history {
                        tr {
                            td { (change.at.format("%Y-%m-%d %H:%M")) }
                            td { (badge(&change.from)) }
                            td { (badge(&change.to)) }
                            td { (change.cause) }
                            td.num { (change.balance.formatted) }
                        }
                    }
                    @if a.standing_history.is_empty() { tr { td.empty colspan="5" { "The standing has not changed." } } }
                }
            }
        }
        @if !a.replenishments.is_empty() {
            h3 { "Automatic top-ups" }
            div.table-wrap {
                table #account-replenishments {
                    thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Result" } th scope="col" { "Detail" } th.num scope="col" { "Amount" } } }
                    tbody {
                        @for r in &a.replenishments {
                            tr {
                                td { (r.at.format("%Y-%m-%d %H:%M")) }
                                td { (r.state.replace('_', " ")) }
                                td { (r.detail) }
                                td.num { (r.amount.formatted) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Contact" }
        div.card {
            table.summary #contact {
                tr { th scope="row" { "Name" } td { (a.contact.name) } }
                tr { th scope="row" { "Company" } td { (a.contact.company) } }
                tr { th scope="row" { "Email" } td { a href={ "mailto:" (a.contact.email) } { (a.contact.email) } } }
                tr { th scope="row" { "Phone" } td { (a.contact.phone) } }
                tr { th scope="row" { "Address" } td { (a.contact.address) } }
                tr { th scope="row" { "Customer since" } td { (a.created_at.format("%Y-%m-%d")) } }
                @if let Some(parent) = &a.parent_id {
                    tr { th scope="row" { "Sub-account of" } td { a href={ "/admin/accounts/" (parent) } { "#" (parent) } } }
                }
            }
        }
        h2 { "PBXs" }
        div.table-wrap {
            table #account-pbxes {
                thead { tr { th scope="col" { "PBX" } th scope="col" { "Address" } th scope="col" { "State" } th scope="col" { "Created (UTC)" } } }
                tbody {
                    @for pbx in &a.pbxes {
                        tr {
                            td { a href={ "/admin/pbxes/" (pbx.id) } { "PBX #" (pbx.id) } }
                            td { (pbx.hostname.as_deref().unwrap_or("—")) }
                            td { (badge(&pbx.state)) }
                            td { (pbx.created_at.format("%Y-%m-%d %H:%M")) }
                        }
                    }
                    @if a.pbxes.is_empty() { tr { td.empty colspan="4" { "No PBX." } } }
                }
            }
        }
        h2 { "Orders" }
        div.table-wrap {
            table #account-orders {
                thead { tr { th scope="col" { "Placed (UTC)" } th scope="col" { "Order" } th scope="col" { "State" } th.num scope="col" { "Total" } } }
                tbody {
                    @for order in &a.orders {
                        tr {
                            td { (order.created_at.format("%Y-%m-%d %H:%M")) }
                            td { code { (order.id.get(..8).unwrap_or(&order.id)) } }
                            td { (badge(&order.state)) }
                            td.num { (order.total.formatted) }
                        }
                    }
                    @if a.orders.is_empty() { tr { td.empty colspan="4" { "No orders." } } }
                }
            }
        }
        h2 { "Latest movements" }
        div.table-wrap {
            table #account-movements {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Memo" } th.num scope="col" { "Amount" } } }
                tbody {
                    @for entry in &a.recent_entries {
                        tr {
                            td { (entry.posted_at.format("%Y-%m-%d %H:%M")) }
                            td { (entry.kind) }
                            td { (entry.memo) }
                            td.num class=[entry.amount.micros.starts_with('-').then_some("negative")] { (entry.amount.formatted) }
                        }
                    }
                    @if a.recent_entries.is_empty() { tr { td.empty colspan="4" { "No payments or charges yet." } } }
                }
            }
        }
        h2 { "Last calls" }
        div.table-wrap {
            table #account-calls {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Direction" } th scope="col" { "Status" } th.num scope="col" { "Cost" } } }
                tbody {
                    @for call in &a.recent_calls {
                        tr {
                            td { (call.start.format("%Y-%m-%d %H:%M")) }
                            td { (call.from) }
                            td { (call.to) }
                            td { (call.direction) }
                            td { (call.status.replace('_', " ")) }
                            td.num { @if call.rating == "unrated" { span.muted { "unrated" } } @else { (call.cost.formatted) } }
                        }
                    }
                    @if a.recent_calls.is_empty() { tr { td.empty colspan="6" { "No calls yet." } } }
                }
            }
        }
    })
}

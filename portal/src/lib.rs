//! The client's control panel: what a client or reseller sees after signing in.
#![forbid(unsafe_code)]

pub mod funds;
pub mod gui_password;
pub mod numbers;
pub mod pbxes;
pub mod profile;
pub mod reports;
pub mod routes;
pub mod services;
pub mod support;

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

pub const CLIENT_HOME: &str = concat!(
    include_str!("../operations/client_home.graphql"),
    include_str!("../operations/pbx_usage.graphql")
);

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
    turned_off_reason: Option<String>,
    turned_off_at: Option<chrono::DateTime<chrono::Utc>>,
    balance: Money,
    low_balance_threshold: Money,
    pbxes: Vec<Pbx>,
    this_month: pbxes::UsageMonth,
    last_month: pbxes::UsageMonth,
    orders: Vec<Order>,
    recent_calls: Vec<CallLine>,
    recent_entries: Vec<Entry>,
    replenishments: Vec<Replenishment>,
}

#[derive(Deserialize)]
struct Replenishment {
    state: String,
    amount: Money,
}

#[derive(Deserialize)]
struct CallLine {
    start: chrono::DateTime<chrono::Utc>,
    from: String,
    to: String,
    direction: String,
    status: String,
    duration: i32,
    rating: String,
    cost: ExactCost,
}

/// A call's cost with every digit it has (a short call may cost less than
/// a cent, and is still charged).
#[derive(Deserialize)]
struct ExactCost {
    exact: String,
}

/// Seconds as people read a call's length: `2:05`, `1:02:03`.
fn call_length(seconds: i32) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[derive(Deserialize)]
struct Pbx {
    id: String,
    #[serde(default)]
    label: String,
    state: String,
    hostname: Option<String>,
    #[serde(default)]
    health: Option<Health>,
}

#[derive(Deserialize)]
struct Health {
    state: String,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Order {
    id: String,
    state: String,
    total: Money,
}

/// How a PBX's state reads to its owner.
fn pbx_state_label(state: &str) -> &'static str {
    match state {
        "PROVISIONING" => "Being set up",
        "ACTIVE" => "Active",
        "CALLING_SUSPENDED" => "Calling suspended",
        "POWERED_OFF" => "Powered off",
        "FAILED" => "Setup failed — support has been told",
        "CANCELLED" => "Cancelled",
        _ => "Unknown",
    }
}

fn pbx_badge(state: &str) -> &'static str {
    match state {
        "ACTIVE" => "good",
        "PROVISIONING" => "low",
        _ => "off",
    }
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
            div.alert.error role="alert" data-testid="turned-off-notice" {
                strong { "This account is turned off" }
                @if let Some(at) = account.turned_off_at { " since " (at.format("%Y-%m-%d %H:%M UTC")) }
                ". "
                @if let Some(reason) = &account.turned_off_reason { "Reason: " (reason) ". " }
                "Your PBXs are powered off and no monthly charges are billed while it is off; nothing has been deleted. Contact support to have it turned on again."
            }
        }
        @match account.standing.as_str() {
            _ if account.turned_off => {},
            "CALLING_SUSPENDED" => div.alert.error role="alert" data-testid="standing-notice" { "Outbound calling is suspended on your PBXs: the balance is below what the account may owe. " a href="/portal/funds" { "Add funds" } " to resume calling at once." },
            "POWERED_OFF" => div.alert.error role="alert" data-testid="standing-notice" { "Your PBXs are powered off for an unpaid balance. Nothing has been deleted. " a href="/portal/funds" { "Add funds" } " to power them on again." },
            _ => {},
        }
        @if let Some(last) = account.replenishments.first().filter(|r| account.standing != "GOOD" && matches!(r.state.as_str(), "declined" | "needs_authentication" | "failed")) {
            div.alert.error role="alert" data-testid="replenish-notice" {
                @if last.state == "needs_authentication" {
                    "Your bank asks you to confirm the automatic top-up of " (last.amount.formatted) ". "
                } @else {
                    "Your automatic top-up of " (last.amount.formatted) " was declined. "
                }
                a href="/portal/funds" { "Add funds or replace the card" } "."
            }
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
                div.value {
                    span class={ "badge " (standing_class) } { (standing_label(&account.standing)) }
                    @if account.turned_off { " " span.badge.off data-testid="turned-off" { "turned off by us" } }
                }
            }
        }
        @for order in account.orders.iter().filter(|o| o.state == "AWAITING_PAYMENT") {
            div.alert.info role="status" {
                "Your order of " (order.total.formatted) " is waiting for payment. "
                a href={ "/orders/" (order.id) } { "Pay now" }
            }
        }
        h2 { "Your PBXs" }
        div.table-wrap {
            table #pbxes .stackable {
                thead { tr { th scope="col" { "PBX" } th scope="col" { "Address" } th scope="col" { "State" } th scope="col" { "Running" } th scope="col" { "GUI password" } } }
                tbody {
                    @for pbx in &account.pbxes {
                        tr {
                            td data-label="PBX" data-testid="pbx-name" { (pbxes::pbx_name(&pbx.id, &pbx.label)) }
                            td data-label="Address" { @if let Some(host) = &pbx.hostname { a href={ "https://" (host) "/" } { (host) } } @else { span.muted { "not yet" } } }
                            td data-label="State" { span class={ "badge " (pbx_badge(&pbx.state)) } data-testid="pbx-state" { (pbx_state_label(&pbx.state)) } }
                            td data-label="Running" data-testid="pbx-health" {
                                @match pbx.health.as_ref().map(|h| h.state.as_str()) {
                                    Some("up") => { span.badge.good { "up" } " " span.muted { (pbx.health.as_ref().and_then(|h| h.version.clone()).unwrap_or_default()) } }
                                    Some("down") => span.badge.off { "down" },
                                    _ => span.muted title="The hosting controller did not answer just now." { "unknown" },
                                }
                            }
                            td data-label="GUI password" {
                                @if matches!(pbx.state.as_str(), "ACTIVE" | "CALLING_SUSPENDED" | "POWERED_OFF") { a href={ "/portal/pbxes/" (pbx.id) "/password" } { "Change" } }
                                @else { span.muted { "once it runs" } }
                            }
                        }
                    }
                    @if account.pbxes.is_empty() {
                        tr { td.empty colspan="5" { "No PBX yet. " a href="/plans" { "Choose a plan" } } }
                    }
                }
            }
        }
        p { a href="/portal/pbxes/new" { "Order another PBX" } " · " a href="/portal/pbxes" { "Name your PBXs" } }
        h2 { "Usage per PBX" }
        (pbxes::usage_table("usage-per-pbx", &[&account.this_month, &account.last_month]))
        h2 { "Last calls" }
        div.table-wrap {
            table #calls .stackable {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Direction" } th.num scope="col" { "Length" } th scope="col" { "Status" } th.num scope="col" { "Cost" } } }
                tbody {
                    @for call in &account.recent_calls {
                        tr {
                            td data-label="When (UTC)" { (call.start.format("%Y-%m-%d %H:%M")) }
                            td data-label="From" { (call.from) }
                            td data-label="To" { (call.to) }
                            td data-label="Direction" { (call.direction) }
                            td.num data-label="Length" { (call_length(call.duration)) }
                            td data-label="Status" { span class={ "badge " (if call.status == "answered" { "good" } else { "" }) } { (call.status.replace('_', " ")) } }
                            td.num data-label="Cost" {
                                @if call.rating == "unrated" { span.muted title="No rate matched this number yet; staff are looking into it." { "pending" } }
                                @else { (call.cost.exact) }
                            }
                        }
                    }
                    @if account.recent_calls.is_empty() {
                        tr { td.empty colspan="7" { "No calls yet." } }
                    }
                }
            }
        }
        h2 { "Latest movements" }
        div.table-wrap {
            table #movements .stackable {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Memo" } th.num scope="col" { "Amount" } } }
                tbody {
                    @for entry in &account.recent_entries {
                        tr {
                            td data-label="When (UTC)" { (entry.posted_at.format("%Y-%m-%d %H:%M")) }
                            td data-label="What" { (entry.kind) }
                            td data-label="Memo" { (entry.memo) }
                            td.num data-label="Amount" class=[entry.amount.is_negative().then_some("negative")] { (entry.amount.formatted) }
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

const ORDER_PROGRESS: &str = include_str!("../operations/order_progress.graphql");
const PAY_ORDER: &str = include_str!("../operations/pay_order.graphql");

#[derive(Deserialize)]
struct OrderProgress {
    order: ProgressOrder,
}

#[derive(Deserialize)]
struct ProgressOrder {
    id: String,
    kind: String,
    state: String,
    total: Money,
    pbx: Option<Pbx>,
}

#[derive(Deserialize)]
pub struct OrderQuery {
    from: Option<String>,
}

/// One step of the order's progress: done, current or to come.
fn step(label: &str, done: bool, current: bool) -> maud::Markup {
    let class = if done {
        "step done"
    } else if current {
        "step current"
    } else {
        "step"
    };
    html! { li class=(class) aria-current=[current.then_some("step")] { (label) } }
}

/// `GET /orders/:id`: an order moving through paid → provisioning → active.
/// While it waits, a script brings the news into a polite live region;
/// without JavaScript a link refreshes it. No timed reload: a page that
/// reloads itself under a screen reader's cursor is lost to its reader.
#[handler]
pub async fn order_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<OrderQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: OrderProgress =
        match operations::run(state, &ctx, ORDER_PROGRESS, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error) => return error_page(&ctx, StatusCode::NOT_FOUND, &error.message()),
        };
    let order = data.order;
    if order.kind == "TOP_UP" && order.state == "FULFILLED" {
        let page = Page {
            title: "Funds added",
            nav: Nav::ClientFunds,
            ctx: &ctx,
        };
        return page.respond(html! {
            div #order .card.narrow.wide {
                h1 { "Funds added" }
                p { "Thank you: " (order.total.formatted) " was added to your balance. A receipt is on its way by email." }
                p { a.button href="/portal/funds" { "Back to Funds" } }
            }
        });
    }
    let paid = order.state != "AWAITING_PAYMENT";
    let pbx_state = order.pbx.as_ref().map(|p| p.state.as_str()).unwrap_or("");
    let active = pbx_state == "ACTIVE";
    let failed = order.state == "FAILED" || pbx_state == "FAILED";
    // Back from Stripe before its webhook: the money may be on its way, so
    // say so and look again rather than offer to pay twice.
    let confirming = !paid && query.from.as_deref() == Some("stripe");
    let waiting = (paid && !active && !failed) || confirming;
    let title = if confirming {
        "Confirming your payment"
    } else if active {
        "Your PBX is ready"
    } else if failed {
        "Setting up your PBX failed"
    } else if paid {
        "Setting up your PBX"
    } else {
        "Waiting for payment"
    };
    let page = Page {
        title,
        nav: Nav::ClientHome,
        ctx: &ctx,
    };
    let head = if waiting {
        html! { script src="/static/order-progress.js" defer {} }
    } else {
        html! {}
    };
    let content = html! {
        div #order .card.narrow.wide aria-live="polite" data-refresh-every=[waiting.then_some("3")] {
            h1 { (title) }
            ol.progress data-testid="order-progress" {
                (step("Paid", paid, !paid))
                (step("Provisioning", active, paid && !active))
                (step("Active", active, false))
            }
            @if confirming {
                p { "Stripe is confirming your payment of " (order.total.formatted) ". This usually takes a few seconds." }
                (refresh(&format!("/orders/{}?from=stripe", order.id)))
                p.muted { "Nothing arrives after a few minutes? " a href={ "/orders/" (order.id) } { "See the order" } "." }
            } @else if !paid {
                p { "Nothing has been charged yet for this order of " (order.total.formatted) "." }
                form method="post" action={ "/orders/" (order.id) "/pay" } {
                    (csrf_field(&ctx))
                    button.primary type="submit" { "Pay " (order.total.formatted) }
                }
            } @else if active {
                @if let Some(pbx) = &order.pbx {
                    p { "Your PBX answers at " strong data-testid="pbx-hostname" { (pbx.hostname.as_deref().unwrap_or("")) } ". "
                        "Its administrator password is in the welcome email we just sent you." }
                }
                p { a.button href="/portal" { "Go to your control panel" } }
            } @else if failed {
                p { "The hosting controller did not create your PBX. Support has been told and will get back to you; you have not been charged twice." }
            } @else {
                p { "Payment received. Your PBX is being created; this usually takes under a minute." }
                (refresh(&format!("/orders/{}", order.id)))
            }
        }
    };
    html_response(StatusCode::OK, page.render_app_like(head, content))
}

/// The way to see news by hand; with JavaScript the page also looks for itself.
fn refresh(this_page: &str) -> maud::Markup {
    html! {
        p.muted data-testid="refresh" {
            "This page shows news as it arrives. Nothing new for a while? "
            a href=(this_page) { "Refresh" } "."
        }
    }
}

/// `POST /orders/:id/pay`: sends the client to pay again through `payOrder`.
#[handler]
pub async fn pay_again(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Paid {
        pay_order: String,
    }
    match operations::run::<Paid>(state, &ctx, PAY_ORDER, serde_json::json!({ "id": id })).await {
        Ok(paid) => Redirect::see_other(paid.pay_order).into_response(),
        Err(error) => error_page(&ctx, StatusCode::CONFLICT, &error.message()),
    }
}

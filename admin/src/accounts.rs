//! One account as staff see it: contact, balance, PBXs, orders, the latest
//! movements of its ledger and its last calls.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

use crate::{Connection, Formatted, Money};

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
    turned_off_reason: Option<String>,
    turned_off_at: Option<chrono::DateTime<chrono::Utc>>,
    time_zone: String,
    created_at: chrono::DateTime<chrono::Utc>,
    parent_id: Option<String>,
    calling_plan_id: Option<String>,
    balance: Money,
    low_balance_threshold: Formatted,
    credit_limit: Formatted,
    contact: Contact,
    users: Vec<User>,
    pbxes: Vec<Pbx>,
    orders: Vec<Order>,
    ledger_entries: Connection<Entry>,
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
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    username: String,
    email: String,
    role: String,
    disabled: bool,
    must_change_password: bool,
    two_factor: bool,
    last_sign_in_at: Option<chrono::DateTime<chrono::Utc>>,
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
    label: String,
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
    /// With every digit it has: a call may cost less than a cent.
    cost: ExactCost,
}

#[derive(Deserialize)]
struct ExactCost {
    exact: String,
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

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    /// The statement's page: entries older than this cursor.
    after: Option<String>,
    done: Option<String>,
    done_sig: Option<String>,
}

/// What the money-by-hand form holds, and a refusal to show beside it.
#[derive(Deserialize, Default, Clone)]
pub struct AdjustForm {
    #[serde(default)]
    direction: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    /// One per form shown: a second submission of the same form (a double
    /// click, a reload) moves the money once.
    #[serde(default)]
    key: String,
}

/// What an account page shows besides the account.
#[derive(Default)]
struct Shown {
    adjust: AdjustForm,
    adjust_error: Option<String>,
    user_error: Option<(String, String)>,
    switch_error: Option<String>,
    notice: Option<String>,
}

/// `GET /admin/accounts/:id`: everything staff need about one account.
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<AccountQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let notice = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    let shown = Shown {
        notice: notice.map(str::to_owned),
        ..Shown::default()
    };
    account_page(
        state,
        &ctx,
        &id,
        query.after.as_deref(),
        shown,
        StatusCode::OK,
    )
    .await
}

async fn account_page(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    after: Option<&str>,
    shown: Shown,
    status: StatusCode,
) -> Response {
    let variables = serde_json::json!({ "id": id, "after": after });
    let data: AccountData = match operations::run(state, ctx, ACCOUNT, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
    };
    let a = data.account;
    let is_admin = ctx.role() == Some(Role::Admin);
    let title = format!("Account {}", a.name);
    let older = a.ledger_entries.next().map(|cursor| {
        format!(
            "/admin/accounts/{}?{}#statement",
            a.id,
            serde_urlencoded::to_string([("after", cursor)]).unwrap_or_default()
        )
    });
    let typed = &shown.adjust;
    // A fresh key for a fresh form; a form sent back with an error keeps
    // its own, so correcting it still moves the money once.
    let key = if typed.key.is_empty() {
        switchboard_core::keys::random_token()
    } else {
        typed.key.clone()
    };
    let page = Page {
        title: &title,
        nav: Nav::StaffAccounts,
        ctx,
    };
    html_response(status, page.render(html! {
        p.muted { a href="/admin" { "Accounts" } " › #" (a.id) }
        h1 { (a.name) }
        @if let Some(notice) = &shown.notice { div #notice .alert.ok role="status" { (notice) } }
        @if a.turned_off {
            div.alert.error role="alert" data-testid="turned-off-notice" {
                strong { "Turned off by an admin" }
                @if let Some(at) = a.turned_off_at { " since " (at.format("%Y-%m-%d %H:%M UTC")) }
                @if let Some(reason) = &a.turned_off_reason { ": " (reason) }
                ". This overrides the standing: its PBXs stay powered off and recurring charges pause until an admin turns it on."
            }
        }
        @if is_admin {
            form #turn-switch .card.inline method="post" action={ "/admin/accounts/" (a.id) "/switch" } {
                (csrf_field(ctx))
                input type="hidden" name="action" value=(if a.turned_off { "on" } else { "off" });
                div {
                    label.muted for="switch-reason" { @if a.turned_off { "Why turn it on" } @else { "Why turn it off (its users see this)" } }
                    input #switch-reason type="text" name="reason" required maxlength="500"
                        aria-invalid=[shown.switch_error.as_ref().map(|_| "true")] aria-describedby=[shown.switch_error.as_ref().map(|_| "switch-error")];
                }
                @if a.turned_off {
                    button.primary #turn-on type="submit" { "Turn the account on" }
                } @else {
                    button.primary #turn-off type="submit" { "Turn the account off" }
                }
                @if let Some(error) = &shown.switch_error {
                    div #switch-error .field-error role="alert" { (error) }
                }
            }
        }
        @if is_admin {
            p { a.button href={ "/admin/accounts/" (a.id) "/edit" } { "Edit the account" } " " a.button href={ "/admin/audit?account=" (a.id) } { "Its audit log" } }
        }
        div.cards {
            div.card.figure {
                div.label { "Balance" }
                div.value class=[a.balance.micros.starts_with('-').then_some("negative")] data-testid="balance" { (a.balance.formatted) }
                div.muted { "Notice below " (a.low_balance_threshold.formatted) " · credit limit " (a.credit_limit.formatted) }
            }
            div.card.figure {
                div.label { "Standing" }
                div.value { (badge(&a.standing)) @if a.turned_off { " " span.badge.off { "turned off" } } }
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
                tr { th scope="row" { "Calls billed with" } td #calling-plan {
                    @match &a.calling_plan_id {
                        Some(plan) => { a href={ "/admin/calling-plans/" (plan) } { "calling plan #" (plan) } " (the account's own)" }
                        None => "each PBX's plan's calling plan",
                    }
                } }
                @if let Some(parent) = &a.parent_id {
                    tr { th scope="row" { "Sub-account of" } td { a href={ "/admin/accounts/" (parent) } { "#" (parent) } } }
                }
            }
        }
        h2 #users { "Users" }
        @if let Some((user, error)) = &shown.user_error {
            div.alert.error role="alert" { (user) ": " (error) }
        }
        div.table-wrap {
            table #account-users {
                thead { tr { th scope="col" { "Username" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Sign-in" } th scope="col" { "Last signed in (UTC)" } @if is_admin { th scope="col" { "Password" } } } }
                tbody {
                    @for user in &a.users {
                        tr {
                            td { (user.username) }
                            td { (user.email) }
                            td { (user.role.to_lowercase()) }
                            td {
                                @if user.disabled { span.badge.off { "disabled" } " " }
                                @if user.must_change_password { span.badge.low { "one-time password" } " " }
                                @if user.two_factor { span.badge.good { "two-factor" } }
                            }
                            td { (user.last_sign_in_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into())) }
                            @if is_admin {
                                td {
                                    form.inline method="post" action={ "/admin/accounts/" (a.id) "/users/" (user.id) } {
                                        (csrf_field(ctx))
                                        input type="hidden" name="action" value="one_time";
                                        label.visually-hidden for={ "otp-" (user.id) } { "One-time password for " (user.username) }
                                        input id={ "otp-" (user.id) } type="text" name="password" autocomplete="off" minlength="10" placeholder="One-time password" required;
                                        button type="submit" { "Set" }
                                    }
                                    form method="post" action={ "/admin/accounts/" (a.id) "/users/" (user.id) } {
                                        (csrf_field(ctx))
                                        input type="hidden" name="action" value="reset_link";
                                        button type="submit" { "Email a reset link" }
                                    }
                                }
                            }
                        }
                    }
                    @if a.users.is_empty() { tr { td.empty colspan="6" { "Nobody signs in for this account." } } }
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
                            td { a href={ "/admin/pbxes/" (pbx.id) } { "PBX #" (pbx.id) } @if !pbx.label.is_empty() { " " (pbx.label) } }
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
        h2 #statement { "Statement" }
        @if is_admin {
            form #money-by-hand .card.inline method="post" action={ "/admin/accounts/" (a.id) "/adjust" } {
                (csrf_field(ctx))
                input type="hidden" name="key" value=(key);
                div {
                    label.muted for="direction" { "Money by hand" }
                    select #direction name="direction" {
                        option value="credit" selected[typed.direction != "debit"] { "Credit" }
                        option value="debit" selected[typed.direction == "debit"] { "Debit" }
                    }
                }
                div {
                    label.muted for="amount" { "Amount (" (a.currency) ")" }
                    input #amount type="text" name="amount" inputmode="decimal" value=(typed.amount) required
                        aria-invalid=[shown.adjust_error.as_ref().map(|_| "true")] aria-describedby=[shown.adjust_error.as_ref().map(|_| "adjust-error")];
                }
                div {
                    label.muted for="reason" { "Reason" }
                    input #reason type="text" name="reason" value=(typed.reason) required maxlength="200";
                }
                button.primary type="submit" { "Post" }
                @if let Some(error) = &shown.adjust_error {
                    div #adjust-error .field-error role="alert" { (error) }
                }
            }
        }
        div.table-wrap {
            table #account-movements {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Memo" } th.num scope="col" { "Amount" } } }
                tbody {
                    @for edge in &a.ledger_entries.edges {
                        @let entry = &edge.node;
                        tr {
                            td { (entry.posted_at.format("%Y-%m-%d %H:%M")) }
                            td { (entry.kind) }
                            td { (entry.memo) }
                            td.num class=[entry.amount.micros.starts_with('-').then_some("negative")] { (entry.amount.formatted) }
                        }
                    }
                    @if a.ledger_entries.edges.is_empty() { tr { td.empty colspan="4" { "No payments or charges yet." } } }
                }
            }
        }
        div.pager {
            @if after.is_some() { a.button href={ "/admin/accounts/" (a.id) "#statement" } { "Newest" } } @else { span {} }
            @if let Some(older) = &older { a.button href=(older) { "Older" } }
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
                            td.num { @if call.rating == "unrated" { span.muted { "unrated" } } @else { (call.cost.exact) } }
                        }
                    }
                    @if a.recent_calls.is_empty() { tr { td.empty colspan="6" { "No calls yet." } } }
                }
            }
        }
    }))
}

const ADJUST: &str = include_str!("../operations/adjust_balance.graphql");

/// `POST /admin/accounts/:id/adjust`: an admin's credit or debit with a
/// reason, through `adjustBalance` under the form's own idempotency key.
#[handler]
pub async fn adjust(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<AdjustForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let amount = form.amount.trim().trim_start_matches(['+', '-']).to_owned();
    let signed = if form.direction == "debit" {
        format!("-{amount}")
    } else {
        amount.clone()
    };
    let refused = |form: AdjustForm, why: String| Shown {
        adjust: form,
        adjust_error: Some(why),
        ..Shown::default()
    };
    if form.key.trim().is_empty() {
        let why = "This form is incomplete: reload the page and try again.".to_owned();
        return account_page(
            state,
            &ctx,
            &id,
            None,
            refused(form, why),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let input = serde_json::json!({
        "accountId": id,
        "amount": signed,
        "memo": form.reason,
        "idempotencyKey": format!("form:{}", form.key.trim()),
    });
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        ADJUST,
        serde_json::json!({ "input": input }),
    )
    .await
    {
        Ok(_) => {
            let what = if form.direction == "debit" {
                "Debited"
            } else {
                "Credited"
            };
            let query = notice::query(
                &state.key,
                "done",
                &format!("{what} {amount} {}.", form.reason.trim()),
            );
            Redirect::see_other(format!("/admin/accounts/{id}?{query}#statement")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            let message = error.message();
            let why = if message.contains("idempotency key was used") {
                "This form was sent before with other figures; nothing more was posted. Reload the page for a fresh form.".to_owned()
            } else {
                message
            };
            account_page(
                state,
                &ctx,
                &id,
                None,
                refused(form, why),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    action: String,
    #[serde(default)]
    reason: String,
}

const TURN_OFF: &str = "mutation TurnOff($account: ID!, $reason: String!) { \
                        turnAccountOff(accountId: $account, reason: $reason) { turnedOff } }";
const TURN_ON: &str = "mutation TurnOn($account: ID!, $reason: String!) { \
                       turnAccountOn(accountId: $account, reason: $reason) { turnedOff } }";

/// `POST /admin/accounts/:id/switch`: an admin turns the account off or on
/// with a reason, through `turnAccountOff` or `turnAccountOn`.
#[handler]
pub async fn switch(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<SwitchForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let (operation, done) = match form.action.as_str() {
        "off" => (
            TURN_OFF,
            "Turned off: its PBXs are being stopped and powered off, and recurring charges pause.",
        ),
        "on" => (
            TURN_ON,
            "Turned on: its PBXs are being powered on and calling resumed as its standing allows.",
        ),
        _ => {
            return error_page(
                &ctx,
                StatusCode::BAD_REQUEST,
                "That is not something this page does.",
            )
        }
    };
    let variables = serde_json::json!({ "account": id, "reason": form.reason });
    match operations::run::<serde_json::Value>(state, &ctx, operation, variables).await {
        Ok(_) => {
            let query = notice::query(&state.key, "done", done);
            Redirect::see_other(format!("/admin/accounts/{id}?{query}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            let shown = Shown {
                switch_error: Some(error.message()),
                ..Shown::default()
            };
            account_page(
                state,
                &ctx,
                &id,
                None,
                shown,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
pub struct UserPasswordForm {
    action: String,
    #[serde(default)]
    password: String,
}

const ONE_TIME: &str = "mutation OneTime($user: ID!, $password: String!) { \
                        setOneTimePassword(userId: $user, password: $password) }";
const RESET_LINK: &str = "mutation ResetLink($user: ID!) { sendPasswordReset(userId: $user) }";

/// `POST /admin/accounts/:id/users/:user`: gives one of the account's users
/// a one-time password, or emails them a link to set one.
#[handler]
pub async fn user_password(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((id, user)): Path<(String, String)>,
    Form(form): Form<UserPasswordForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let (operation, variables, done) = match form.action.as_str() {
        "one_time" => (
            ONE_TIME,
            serde_json::json!({ "user": user, "password": form.password }),
            "One-time password set: the user chooses their own at the next sign-in.",
        ),
        "reset_link" => (
            RESET_LINK,
            serde_json::json!({ "user": user }),
            "A link to set a new password is on its way to the user.",
        ),
        _ => {
            return error_page(
                &ctx,
                StatusCode::BAD_REQUEST,
                "That is not something this page does.",
            )
        }
    };
    match operations::run::<serde_json::Value>(state, &ctx, operation, variables).await {
        Ok(_) => {
            let query = notice::query(&state.key, "done", done);
            Redirect::see_other(format!("/admin/accounts/{id}?{query}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            let shown = Shown {
                user_error: Some((format!("User #{user}"), error.message())),
                ..Shown::default()
            };
            account_page(
                state,
                &ctx,
                &id,
                None,
                shown,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

const EDIT: &str = include_str!("../operations/edit_account.graphql");
const UPDATE: &str = include_str!("../operations/update_account.graphql");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditData {
    account: EditAccount,
    calling_plans: Vec<CallingPlanChoice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditAccount {
    id: String,
    name: String,
    kind: String,
    currency: String,
    calling_plan_id: Option<String>,
    low_balance_threshold: Micros,
    credit_limit: Micros,
    contact: Contact,
}

#[derive(Deserialize)]
struct Micros {
    micros: String,
}

#[derive(Deserialize)]
struct CallingPlanChoice {
    id: String,
    name: String,
    currency: String,
}

/// The account form as typed.
#[derive(Deserialize, Default)]
pub struct EditForm {
    name: String,
    kind: String,
    contact_name: String,
    #[serde(default)]
    company: String,
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    credit_limit: String,
    low_balance_threshold: String,
    #[serde(default)]
    calling_plan_id: String,
}

/// An amount in micro-units as a plain decimal, every digit kept: `1.5`.
fn decimal(micros: &str) -> String {
    let Ok(value) = micros.parse::<i64>() else {
        return micros.to_owned();
    };
    let sign = if value < 0 { "-" } else { "" };
    let (units, fraction) = (
        value.unsigned_abs() / 1_000_000,
        value.unsigned_abs() % 1_000_000,
    );
    if fraction == 0 {
        format!("{sign}{units}")
    } else {
        let fraction = format!("{fraction:06}");
        format!("{sign}{units}.{}", fraction.trim_end_matches('0'))
    }
}

async fn edit_page(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    typed: Option<&EditForm>,
    errors: &[(String, String)],
    status: StatusCode,
) -> Response {
    let data: EditData =
        match operations::run(state, ctx, EDIT, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
        };
    let a = &data.account;
    let current = EditForm {
        name: a.name.clone(),
        kind: a.kind.to_lowercase(),
        contact_name: a.contact.name.clone(),
        company: a.contact.company.clone(),
        email: a.contact.email.clone(),
        phone: a.contact.phone.clone(),
        address: a.contact.address.clone(),
        credit_limit: decimal(&a.credit_limit.micros),
        low_balance_threshold: decimal(&a.low_balance_threshold.micros),
        calling_plan_id: a.calling_plan_id.clone().unwrap_or_default(),
    };
    let form = typed.unwrap_or(&current);
    let title = format!("Edit {}", a.name);
    let field =
        |name: &'static str, label: &'static str, value: &str, hint: Option<&'static str>| {
            Field {
                name,
                label,
                kind: if name == "address" {
                    "textarea"
                } else {
                    "text"
                },
                value,
                autocomplete: "off",
                hint,
            }
            .render(errors)
        };
    let error_of = |name: &str| {
        errors
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.clone())
    };
    html_response(status, Page { title: &title, nav: Nav::StaffAccounts, ctx }.render(html! {
        p.muted { a href="/admin" { "Accounts" } " › " a href={ "/admin/accounts/" (a.id) } { "#" (a.id) } " › edit" }
        h1 { (title) }
        @if !errors.is_empty() { div.alert.error role="alert" { "Some fields need correcting." } }
        form #edit-account .stack.card method="post" action={ "/admin/accounts/" (a.id) "/edit" } {
            (csrf_field(ctx))
            (field("name", "Account name", &form.name, None))
            label for="kind" { "Kind" }
            select #kind name="kind" {
                option value="retail" selected[form.kind == "retail"] { "Retail: an end customer" }
                option value="wholesale" selected[form.kind == "wholesale"] { "Wholesale: resells to sub-accounts" }
            }
            @if let Some(error) = error_of("kind") { div.field-error { "Kind " (error) "." } }
            (field("contact_name", "Contact name", &form.contact_name, None))
            (field("company", "Company", &form.company, None))
            (field("email", "Email", &form.email, None))
            (field("phone", "Phone", &form.phone, None))
            (field("address", "Address", &form.address, None))
            (field("credit_limit", "Credit limit", &form.credit_limit, Some("(how far below zero calls go on)")))
            (field("low_balance_threshold", "Low-balance notice below", &form.low_balance_threshold, None))
            label for="calling_plan_id" { "Calls billed with" }
            select #calling_plan_id name="calling_plan_id" {
                option value="" selected[form.calling_plan_id.is_empty()] { "Each PBX's plan's calling plan" }
                @for plan in data.calling_plans.iter().filter(|p| p.currency == a.currency) {
                    option value=(plan.id) selected[form.calling_plan_id == plan.id] { (plan.name) }
                }
            }
            @if let Some(error) = error_of("calling_plan_id") { div.field-error { "Calling plan " (error) "." } }
            p.muted { "Every change is kept in the audit log, with the account as it was and as it became." }
            button.primary type="submit" { "Save" }
        }
    }))
}

/// `GET /admin/accounts/:id/edit`
#[handler]
pub async fn edit(req: &Request, Data(state): Data<&AppState>, Path(id): Path<String>) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    edit_page(state, &ctx, &id, None, &[], StatusCode::OK).await
}

/// `POST /admin/accounts/:id/edit`: runs `updateAccount`.
#[handler]
pub async fn update(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let input = serde_json::json!({
        "name": form.name,
        "kind": form.kind.to_uppercase(),
        "contactName": form.contact_name,
        "company": form.company,
        "email": form.email,
        "phone": form.phone,
        "address": form.address,
        "creditLimit": form.credit_limit,
        "lowBalanceThreshold": form.low_balance_threshold,
        "callingPlanId": Some(form.calling_plan_id.trim()).filter(|c| !c.is_empty()),
    });
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        UPDATE,
        serde_json::json!({ "id": id, "input": input }),
    )
    .await
    {
        Ok(_) => {
            let query = notice::query(&state.key, "done", "The account is saved.");
            Redirect::see_other(format!("/admin/accounts/{id}?{query}")).into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            edit_page(
                state,
                &ctx,
                &id,
                Some(&form),
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            let errors = vec![("kind".to_owned(), error.message())];
            edit_page(
                state,
                &ctx,
                &id,
                Some(&form),
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

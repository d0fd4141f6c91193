//! Settings → Funds: the balance, adding funds, the saved card and automatic
//! top-ups, past top-ups; and the monthly statements. Each page runs its
//! GraphQL operation as the viewer and works without JavaScript.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const FUNDS: &str = include_str!("../operations/funds.graphql");
const ADD_FUNDS: &str = include_str!("../operations/add_funds.graphql");
const SET_AUTO_REPLENISH: &str = include_str!("../operations/set_auto_replenish.graphql");
const REMOVE_SAVED_CARD: &str = include_str!("../operations/remove_saved_card.graphql");
const SAVE_TEST_CARD: &str = include_str!("../operations/save_test_card.graphql");
const REPLACE_CARD: &str = include_str!("../operations/replace_card.graphql");
const STATEMENT: &str = include_str!("../operations/statement.graphql");

#[derive(Deserialize)]
struct FundsData {
    viewer: Viewer<FundsAccount>,
}

#[derive(Deserialize)]
pub(crate) struct Viewer<A> {
    pub(crate) account: Option<A>,
}

#[derive(Deserialize)]
pub(crate) struct Formatted {
    pub(crate) formatted: String,
}

#[derive(Deserialize)]
pub(crate) struct Amount {
    pub(crate) micros: String,
    pub(crate) formatted: String,
}

impl Amount {
    /// The amount as typed into a form: `25.00`.
    fn typed(&self) -> String {
        let micros: i64 = self.micros.parse().unwrap_or_default();
        format!(
            "{}.{:02}",
            micros / 1_000_000,
            (micros % 1_000_000).abs() / 10_000
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FundsAccount {
    balance: Amount,
    top_up_limits: Limits,
    saved_card: Option<Card>,
    auto_replenish: AutoReplenish,
    replenishments: Vec<Replenishment>,
    orders: Vec<Order>,
}

#[derive(Deserialize)]
struct Limits {
    min: Formatted,
    max: Formatted,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Card {
    brand: String,
    last4: String,
    exp_month: i32,
    exp_year: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoReplenish {
    enabled: bool,
    threshold: Amount,
    amount: Amount,
    monthly_cap: Amount,
}

#[derive(Deserialize)]
struct Replenishment {
    at: chrono::DateTime<chrono::Utc>,
    amount: Formatted,
    state: String,
    detail: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    kind: String,
    state: String,
    created_at: chrono::DateTime<chrono::Utc>,
    total: Formatted,
}

#[derive(Deserialize, Default)]
pub struct FundsQuery {
    amount: Option<String>,
    saved: Option<String>,
    saved_sig: Option<String>,
}

/// What a form sent, to show again with its errors.
#[derive(Default)]
struct Typed {
    amount: Option<String>,
    replenish: Option<AutoReplenishForm>,
    error: Option<String>,
    fields: Vec<(String, String)>,
}

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

/// `GET /portal/funds`: the balance, adding funds, the card, top-ups.
#[handler]
pub async fn funds(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<FundsQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let saved = notice::read(
        &state.key,
        "saved",
        query.saved.as_deref(),
        query.saved_sig.as_deref(),
    );
    let typed = Typed {
        amount: query.amount.clone(),
        error: saved.map(str::to_owned),
        ..Typed::default()
    };
    funds_page(state, &ctx, typed, StatusCode::OK, saved.is_some()).await
}

async fn funds_page(
    state: &AppState,
    ctx: &PageContext,
    typed: Typed,
    status: StatusCode,
    good_news: bool,
) -> Response {
    let data: FundsData = match operations::run(state, ctx, FUNDS, serde_json::json!({})).await {
        Ok(data) => data,
        Err(error) => return error_page(ctx, error.status(), &error.message()),
    };
    let Some(a) = data.viewer.account else {
        return error_page(
            ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let field_error = |name: &str| {
        typed
            .fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.clone())
    };
    let r = &a.auto_replenish;
    let form = typed.replenish.as_ref();
    let value =
        |typed: Option<&String>, stored: &Amount| typed.cloned().unwrap_or_else(|| stored.typed());
    let top_ups: Vec<&Order> = a.orders.iter().filter(|o| o.kind == "TOP_UP").collect();
    let page = Page {
        title: "Funds",
        nav: Nav::ClientFunds,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            h1 { "Funds" }
            @if let Some(message) = &typed.error {
                @if good_news {
                    div.alert.info role="status" { (message) }
                } @else {
                    div.alert.error role="alert" { (message) }
                }
            }
            div.cards {
                div.card.figure {
                    div.label { "Balance" }
                    div.value.balance class=[a.balance.micros.starts_with('-').then_some("negative")] data-testid="balance" { (a.balance.formatted) }
                }
                div.card.figure {
                    div.label { "Card on file" }
                    div.value data-testid="saved-card" {
                        @if let Some(card) = &a.saved_card {
                            (card.brand.to_uppercase()) " ending " (card.last4)
                        } @else { "None" }
                    }
                    @if let Some(card) = &a.saved_card {
                        div.muted { "Expires " (format!("{:02}/{}", card.exp_month, card.exp_year)) }
                    }
                }
            }
            h2 #add { "Add funds" }
            form.stack method="post" action="/portal/funds" {
                (csrf_field(ctx))
                label for="amount" { "Amount to add" }
                input #amount type="text" name="amount" inputmode="decimal" required
                    value=(typed.amount.clone().unwrap_or_else(|| "25".into()))
                    aria-describedby="amount-help";
                p.muted #amount-help { "From " (a.top_up_limits.min.formatted) " to " (a.top_up_limits.max.formatted) ". You pay by card; the card is kept for automatic top-ups." }
                button.primary type="submit" { "Add funds" }
            }
            h2 #card { "Saved card" }
            @if a.saved_card.is_some() {
                form.inline method="post" action="/portal/funds/card/remove" {
                    (csrf_field(ctx))
                    button type="submit" { "Remove the card" }
                }
            }
            p { a href="/portal/funds/card" { @if a.saved_card.is_some() { "Replace the card" } @else { "Save a card" } } }
            h2 #auto { "Automatic top-ups" }
            form.stack method="post" action="/portal/funds/auto-replenish" {
                (csrf_field(ctx))
                div {
                    input #enabled type="checkbox" name="enabled" value="yes" checked[form.map(|f| f.enabled.is_some()).unwrap_or(r.enabled)];
                    " "
                    label for="enabled" { "Top up my balance automatically from the saved card" }
                    @if let Some(e) = field_error("enabled") { p.error { (e) } }
                }
                label for="threshold" { "When the balance falls below" }
                input #threshold type="text" name="threshold" inputmode="decimal" value=(value(form.map(|f| &f.threshold), &r.threshold));
                @if let Some(e) = field_error("threshold") { p.error { "The threshold " (e) "." } }
                label for="replenish_amount" { "Add" }
                input #replenish_amount type="text" name="amount" inputmode="decimal" value=(value(form.map(|f| &f.amount), &r.amount));
                @if let Some(e) = field_error("amount") { p.error { "The amount " (e) "." } }
                label for="monthly_cap" { "But charge at most, each calendar month" }
                input #monthly_cap type="text" name="monthly_cap" inputmode="decimal" value=(value(form.map(|f| &f.monthly_cap), &r.monthly_cap));
                @if let Some(e) = field_error("monthly_cap") { p.error { "The cap " (e) "." } }
                p.muted { "We also email you and our staff when the balance falls below the threshold, once each time." }
                button.primary type="submit" { "Save the settings" }
            }
            @if !a.replenishments.is_empty() {
                h3 { "Recent automatic top-ups" }
                div.table-wrap {
                    table #replenishments .stackable {
                        thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Result" } th scope="col" { "Detail" } th.num scope="col" { "Amount" } } }
                        tbody {
                            @for t in &a.replenishments {
                                tr {
                                    td data-label="When (UTC)" { (t.at.format("%Y-%m-%d %H:%M")) }
                                    td data-label="Result" { (t.state.replace('_', " ")) }
                                    td data-label="Detail" { (t.detail) }
                                    td.num data-label="Amount" { (t.amount.formatted) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Past top-ups" }
            div.table-wrap {
                table #top-ups .stackable {
                    thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Order" } th scope="col" { "State" } th.num scope="col" { "Amount" } } }
                    tbody {
                        @for o in &top_ups {
                            tr {
                                td data-label="When (UTC)" { (o.created_at.format("%Y-%m-%d %H:%M")) }
                                td data-label="Order" { a href={ "/orders/" (o.id) } { code { (o.id.get(..8).unwrap_or(&o.id)) } } }
                                td data-label="State" { (if o.state == "FULFILLED" { "paid" } else { "waiting for payment" }) }
                                td.num data-label="Amount" { (o.total.formatted) }
                            }
                        }
                        @if top_ups.is_empty() { tr { td.empty colspan="4" { "No funds added yet." } } }
                    }
                }
            }
        }),
    )
}

#[derive(Deserialize)]
pub struct AddFundsForm {
    #[serde(default)]
    amount: String,
}

/// `POST /portal/funds`: opens an order for the amount and sends the client to pay it.
#[handler]
pub async fn add(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<AddFundsForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Added {
        add_funds: Payment,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payment {
        payment_url: String,
    }
    let variables = serde_json::json!({ "amount": form.amount });
    match operations::run::<Added>(state, &ctx, ADD_FUNDS, variables).await {
        Ok(added) => Redirect::see_other(added.add_funds.payment_url).into_response(),
        Err(error) => {
            let typed = Typed {
                amount: Some(form.amount),
                error: Some(error.message()),
                ..Typed::default()
            };
            funds_page(state, &ctx, typed, StatusCode::UNPROCESSABLE_ENTITY, false).await
        }
    }
}

#[derive(Deserialize, Clone)]
pub struct AutoReplenishForm {
    enabled: Option<String>,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    monthly_cap: String,
}

/// `POST /portal/funds/auto-replenish`: saves the automatic top-up settings.
#[handler]
pub async fn set_auto_replenish(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<AutoReplenishForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "input": {
        "enabled": form.enabled.is_some(),
        "threshold": form.threshold,
        "amount": form.amount,
        "monthlyCap": form.monthly_cap,
    }});
    match operations::run::<serde_json::Value>(state, &ctx, SET_AUTO_REPLENISH, variables).await {
        Ok(_) => saved(state, "Your automatic top-up settings are saved."),
        Err(error) => {
            let fields = match &error {
                OperationError::Invalid(fields) => fields.clone(),
                _ => Vec::new(),
            };
            let typed = Typed {
                replenish: Some(form),
                error: Some(error.message()),
                fields,
                ..Typed::default()
            };
            funds_page(state, &ctx, typed, StatusCode::UNPROCESSABLE_ENTITY, false).await
        }
    }
}

fn saved(state: &AppState, message: &str) -> Response {
    Redirect::see_other(format!(
        "/portal/funds?{}",
        notice::query(&state.key, "saved", message)
    ))
    .into_response()
}

/// `POST /portal/funds/card/remove`: forgets the saved card.
#[handler]
pub async fn remove_card(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        REMOVE_SAVED_CARD,
        serde_json::json!({}),
    )
    .await
    {
        Ok(_) => saved(state, "The card is removed; automatic top-ups are off."),
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
pub struct CardQuery {
    /// `stripe` when Stripe sends the client back with a new card.
    from: Option<String>,
}

/// `GET /portal/funds/card`: how to save or replace the card.
#[handler]
pub async fn card_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<CardQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let returned = query.from.as_deref() == Some("stripe");
    card_form(state, &ctx, "", None, StatusCode::OK, returned)
}

fn card_form(
    state: &AppState,
    ctx: &PageContext,
    card: &str,
    error: Option<&str>,
    status: StatusCode,
    returned: bool,
) -> Response {
    let test = state.settings.payments.gateway == "test";
    let page = Page {
        title: "Saved card",
        nav: Nav::ClientFunds,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            div.card.narrow.wide {
                h1 { "Saved card" }
                @if let Some(error) = error { div.alert.error role="alert" { (error) } }
                @if test {
                    p.test-banner { "Test gateway — no money moves. Use Stripe's test cards." }
                    form.stack method="post" action="/portal/funds/card" {
                        (csrf_field(ctx))
                        label for="card_number" { "Card number" }
                        input #card_number type="text" name="card_number" value=(card) inputmode="numeric" autocomplete="cc-number";
                        button.primary type="submit" { "Save the card" }
                    }
                } @else {
                    @if returned {
                        div.alert.info role="status" {
                            "Stripe has your new card. It replaces the one on file as soon as Stripe confirms it, usually within a minute: see "
                            a href="/portal/funds" { "Funds" } "."
                        }
                    }
                    p { "The card on file pays automatic top-ups. Give a new one at Stripe's secure page; nothing is charged now." }
                    form.stack method="post" action="/portal/funds/card/replace" {
                        (csrf_field(ctx))
                        input type="hidden" name="request_key" value=(random_token());
                        button.primary type="submit" { "Give a new card" }
                    }
                    p.hint { "Adding funds with a new card also keeps it." }
                }
                p { a href="/portal/funds" { "Back to Funds" } }
            }
        }),
    )
}

#[derive(Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
}

/// `POST /portal/funds/card`: keeps a test card (the test gateway only).
#[handler]
pub async fn save_card(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<CardForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "card": form.card_number });
    match operations::run::<serde_json::Value>(state, &ctx, SAVE_TEST_CARD, variables).await {
        Ok(_) => saved(state, "The card is saved."),
        Err(error) => card_form(
            state,
            &ctx,
            &form.card_number,
            Some(&error.message()),
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplaceCardData {
    replace_card: CardSetup,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CardSetup {
    setup_url: String,
}

#[derive(Deserialize)]
pub struct ReplaceCardForm {
    /// The form's one-time value: a double press opens one Stripe page.
    #[serde(default)]
    request_key: String,
}

/// `POST /portal/funds/card/replace`: sends the client to Stripe for a new card.
#[handler]
pub async fn replace_card(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ReplaceCardForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "requestKey": form.request_key });
    match operations::run::<ReplaceCardData>(state, &ctx, REPLACE_CARD, variables).await {
        Ok(data) => Redirect::see_other(data.replace_card.setup_url).into_response(),
        Err(error) => {
            // The operation refuses only when Stripe does not answer.
            let status = match error {
                OperationError::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
                ref other => other.status(),
            };
            card_form(state, &ctx, "", Some(&error.message()), status, false)
        }
    }
}

#[derive(Deserialize)]
struct StatementData {
    viewer: Viewer<StatementAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatementAccount {
    name: String,
    statement: Statement,
    recurring_charges: Vec<Recurring>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    month: String,
    opening_balance: Formatted,
    payments: Formatted,
    charges: Formatted,
    usage: Formatted,
    other: Formatted,
    closing_balance: Amount,
    lines: Vec<Line>,
    per_pbx: Vec<crate::pbxes::UsageLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    posted_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    memo: String,
    amount: Amount,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recurring {
    description: String,
    amount: Formatted,
    next_charge_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
pub struct StatementQuery {
    #[serde(default)]
    back: i32,
}

/// `GET /portal/statements[?back=N]`: this month's statement, or one before.
#[handler]
pub async fn statements(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<StatementQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let back = query.back.clamp(0, 24);
    let data: StatementData = match operations::run(
        state,
        &ctx,
        STATEMENT,
        serde_json::json!({ "monthsBack": back }),
    )
    .await
    {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let Some(a) = data.viewer.account else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let s = a.statement;
    let title = format!("Statement for {}", s.month);
    Page {
        title: &title,
        nav: Nav::ClientStatements,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { (title) }
        p.muted { (a.name) " · "
            @if back < 24 { a href={ "/portal/statements?back=" (back + 1) } { "Month before" } }
            @if back > 0 { " · " a href={ "/portal/statements?back=" (back - 1) } { "Month after" } }
        }
        div.card {
            table.summary #statement-summary {
                tr { th scope="row" { "Opening balance" } td.num { (s.opening_balance.formatted) } }
                tr { th scope="row" { "Payments" } td.num { (s.payments.formatted) } }
                tr { th scope="row" { "Plans and other charges" } td.num { (s.charges.formatted) } }
                tr { th scope="row" { "Calls" } td.num { (s.usage.formatted) } }
                tr { th scope="row" { "Other (adjustments, refunds)" } td.num { (s.other.formatted) } }
                tr.total { th scope="row" { "Closing balance" } td.num data-testid="closing-balance" { (s.closing_balance.formatted) } }
            }
        }
        h2 { "Per PBX" }
        (crate::pbxes::statement_table(&s.per_pbx))
        h2 { "Every movement" }
        div.table-wrap {
            table #statement-lines .stackable {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Memo" } th.num scope="col" { "Amount" } } }
                tbody {
                    @for l in &s.lines {
                        tr {
                            td data-label="When (UTC)" { (l.posted_at.format("%Y-%m-%d %H:%M")) }
                            td data-label="What" { (l.kind) }
                            td data-label="Memo" { (l.memo) }
                            td.num data-label="Amount" class=[l.amount.micros.starts_with('-').then_some("negative")] { (l.amount.formatted) }
                        }
                    }
                    @if s.lines.is_empty() { tr { td.empty colspan="4" { "Nothing moved this month." } } }
                }
            }
        }
        h2 { "Every month" }
        div.table-wrap {
            table #recurring .stackable {
                thead { tr { th scope="col" { "What" } th scope="col" { "Next charge (UTC)" } th.num scope="col" { "Amount" } } }
                tbody {
                    @for r in &a.recurring_charges {
                        tr { td data-label="What" { (r.description) } td data-label="Next charge (UTC)" { (r.next_charge_at.format("%Y-%m-%d")) } td.num data-label="Amount" { (r.amount.formatted) } }
                    }
                    @if a.recurring_charges.is_empty() { tr { td.empty colspan="3" { "Nothing is billed monthly." } } }
                }
            }
        }
    })
}

//! Your PBXs: naming each, what each cost this month and last, and ordering
//! another one paid from the balance. Each page runs its GraphQL operation
//! as the viewer and works without JavaScript.

use maud::{html, Markup};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::commerce::pbx_orders;
use switchboard_core::keys::random_token;
use switchboard_core::money::Money as CoreMoney;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations;
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

use crate::funds::{Amount, Formatted, Viewer};

const PBXES: &str = concat!(
    include_str!("../operations/pbxes.graphql"),
    include_str!("../operations/pbx_usage.graphql")
);
const NEW_PBX: &str = include_str!("../operations/new_pbx.graphql");
const ORDER_PBX: &str = include_str!("../operations/order_pbx.graphql");
const SET_PBX_LABEL: &str = include_str!("../operations/set_pbx_label.graphql");

/// An amount the API gave, as money to reckon with.
fn money(amount: &Amount) -> CoreMoney {
    CoreMoney(amount.micros.parse().unwrap_or_default())
}

#[derive(Deserialize)]
struct PbxesData {
    viewer: Viewer<PbxesAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbxesAccount {
    pbxes: Vec<Pbx>,
    this_month: UsageMonth,
    last_month: UsageMonth,
}

#[derive(Deserialize)]
struct Pbx {
    id: String,
    label: String,
    state: String,
    hostname: Option<String>,
    plan: PlanName,
}

#[derive(Deserialize)]
struct PlanName {
    name: String,
}

/// A month of the account, PBX by PBX, as `pbxUsage` gives it.
#[derive(Deserialize)]
pub(crate) struct UsageMonth {
    month: String,
    pbxes: Vec<UsageLine>,
    total: UsageLine,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageLine {
    pbx_id: Option<String>,
    label: String,
    calls: i64,
    calls_cost: Formatted,
    charges: Formatted,
    total: Formatted,
}

/// How a PBX is named on a page: `#12 Main office`, or `#12`.
pub(crate) fn pbx_name(id: &str, label: &str) -> String {
    if label.is_empty() {
        format!("#{id}")
    } else {
        format!("#{id} {label}")
    }
}

/// The months' usage side by side, one row per PBX and the account's total.
pub(crate) fn usage_table(id: &str, months: &[&UsageMonth]) -> Markup {
    let Some(first) = months.first() else {
        return html! {};
    };
    let cell = |line: Option<&UsageLine>| {
        html! {
            @if let Some(line) = line {
                span { (line.total.formatted) }
                br;
                span.muted { (line.calls) " calls " (line.calls_cost.formatted) " · charges " (line.charges.formatted) }
            } @else { span.muted { "—" } }
        }
    };
    html! {
        div.table-wrap {
            table id=(id) .stackable {
                thead { tr {
                    th scope="col" { "PBX" }
                    @for m in months { th.num scope="col" { (m.month) } }
                } }
                tbody {
                    @for line in &first.pbxes {
                        @let name = match &line.pbx_id { Some(pbx) => pbx_name(pbx, &line.label), None => "Not tied to a PBX".to_owned() };
                        tr data-testid="pbx-usage" {
                            th scope="row" data-label="PBX" { (name) }
                            @for m in months {
                                td.num data-label=(m.month) { (cell(m.pbxes.iter().find(|l| l.pbx_id == line.pbx_id))) }
                            }
                        }
                    }
                    tr.total {
                        th scope="row" data-label="PBX" { "Account total" }
                        @for m in months {
                            td.num data-label=(m.month) data-testid="usage-total" { (cell(Some(&m.total))) }
                        }
                    }
                }
            }
        }
    }
}

/// A statement's split: each PBX's calls and charges in the month.
pub(crate) fn statement_table(lines: &[UsageLine]) -> Markup {
    html! {
        div.table-wrap {
            table #per-pbx .stackable {
                thead { tr {
                    th scope="col" { "PBX" } th.num scope="col" { "Calls" } th.num scope="col" { "Calls' cost" }
                    th.num scope="col" { "Plan and other charges" } th.num scope="col" { "Total" }
                } }
                tbody {
                    @for l in lines {
                        tr {
                            th scope="row" data-label="PBX" { @match &l.pbx_id { Some(id) => (pbx_name(id, &l.label)), None => "Not tied to a PBX" } }
                            td.num data-label="Calls" { (l.calls) }
                            td.num data-label="Calls' cost" { (l.calls_cost.formatted) }
                            td.num data-label="Plan and other charges" { (l.charges.formatted) }
                            td.num data-label="Total" { (l.total.formatted) }
                        }
                    }
                    @if lines.is_empty() { tr { td.empty colspan="5" { "No PBX yet." } } }
                }
            }
        }
    }
}

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

#[derive(Deserialize, Default)]
pub struct PbxesQuery {
    saved: Option<String>,
    saved_sig: Option<String>,
}

/// `GET /portal/pbxes`: every PBX with its label, and what each cost this
/// month and last.
#[handler]
pub async fn pbxes(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<PbxesQuery>,
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
    pbxes_page(
        state,
        &ctx,
        saved.map(|s| (true, s.to_owned())),
        None,
        StatusCode::OK,
    )
    .await
}

/// The list page, with good news or an error (and the label typed, by PBX).
async fn pbxes_page(
    state: &AppState,
    ctx: &PageContext,
    message: Option<(bool, String)>,
    typed: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let data: PbxesData = match operations::run(state, ctx, PBXES, serde_json::json!({})).await {
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
    let page = Page {
        title: "Your PBXs",
        nav: Nav::ClientHome,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            h1 { "Your PBXs" }
            @match &message {
                Some((true, text)) => div.alert.info role="status" { (text) },
                Some((false, text)) => div.alert.error role="alert" { (text) },
                None => {},
            }
            p { a.button.primary href="/portal/pbxes/new" { "Order another PBX" } }
            h2 { "Names" }
            p.muted { "A name tells your PBXs apart here, on your reports and on your statements." }
            div.table-wrap {
                table #pbx-labels .stackable {
                    thead { tr { th scope="col" { "PBX" } th scope="col" { "Plan" } th scope="col" { "Address" } th scope="col" { "Name" } } }
                    tbody {
                        @for pbx in &a.pbxes {
                            @let field = format!("label-{}", pbx.id);
                            @let value = typed.filter(|(id, _)| *id == pbx.id).map(|(_, l)| l).unwrap_or(&pbx.label);
                            tr {
                                td data-label="PBX" { "#" (pbx.id) " " span.muted { (crate::pbx_state_label(&pbx.state)) } }
                                td data-label="Plan" { (pbx.plan.name) }
                                td data-label="Address" { @if let Some(host) = &pbx.hostname { (host) } @else { span.muted { "not yet" } } }
                                td data-label="Name" {
                                    form.inline method="post" action={ "/portal/pbxes/" (pbx.id) "/label" } {
                                        (csrf_field(ctx))
                                        label.visually-hidden for=(field) { "Name of PBX #" (pbx.id) }
                                        input id=(field) type="text" name="label" maxlength="60" value=(value);
                                        " "
                                        button type="submit" { "Save" span.visually-hidden { " the name of PBX #" (pbx.id) } }
                                    }
                                }
                            }
                        }
                        @if a.pbxes.is_empty() {
                            tr { td.empty colspan="4" { "No PBX yet." } }
                        }
                    }
                }
            }
            h2 { "Usage per PBX" }
            p.muted { "Calls' cost and plan charges of each PBX, by calendar month." }
            (usage_table("usage-per-pbx", &[&a.this_month, &a.last_month]))
        }),
    )
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    label: String,
}

/// `POST /portal/pbxes/:id/label`: names a PBX through `setPbxLabel`.
#[handler]
pub async fn set_label(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<LabelForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "pbxId": id, "label": form.label });
    match operations::run::<serde_json::Value>(state, &ctx, SET_PBX_LABEL, variables).await {
        Ok(_) => Redirect::see_other(format!(
            "/portal/pbxes?{}",
            notice::query(&state.key, "saved", &format!("PBX #{id}'s name is saved."))
        ))
        .into_response(),
        Err(error) => {
            pbxes_page(
                state,
                &ctx,
                Some((false, error.message())),
                Some((&id, &form.label)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct NewPbxData {
    plans: Vec<Plan>,
    viewer: Viewer<NewPbxAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    slug: String,
    name: String,
    description: String,
    included_extensions: i32,
    setup_fee: Formatted,
    monthly_fee: Formatted,
    first_payment: Amount,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPbxAccount {
    currency: String,
    balance: Amount,
    top_up_limits: TopUpLimits,
}

#[derive(Deserialize)]
struct TopUpLimits {
    min: Micros,
}

#[derive(Deserialize)]
struct Micros {
    micros: String,
}

/// What the order form sent.
#[derive(Deserialize, Default)]
pub struct OrderForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    request_key: String,
}

/// `GET /portal/pbxes/new`: the plans with their prices, and the balance
/// that pays for them.
#[handler]
pub async fn new(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    new_page(state, &ctx, &OrderForm::default(), None, StatusCode::OK).await
}

async fn new_page(
    state: &AppState,
    ctx: &PageContext,
    form: &OrderForm,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let data: NewPbxData = match operations::run(state, ctx, NEW_PBX, serde_json::json!({})).await {
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
    let balance = money(&a.balance);
    let smallest = CoreMoney(a.top_up_limits.min.micros.parse().unwrap_or_default());
    let chosen = data
        .plans
        .iter()
        .find(|p| p.slug == form.plan)
        .or(data.plans.first());
    // What the plan sent lacks, and the top-up that covers it.
    let short = chosen.filter(|_| !form.plan.is_empty()).and_then(|plan| {
        pbx_orders::shortfall(balance, money(&plan.first_payment))
            .map(|missing| (plan, missing, pbx_orders::top_up_for(missing, smallest)))
    });
    // A new key for each form shown; a form sent back with an error keeps
    // its own, so sending it again is still the same order.
    let request_key = if form.request_key.is_empty() {
        random_token()
    } else {
        form.request_key.clone()
    };
    let page = Page {
        title: "Order another PBX",
        nav: Nav::ClientHome,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            div.card.narrow.wide {
                h1 { "Order another PBX" }
                @if let Some(error) = &error { div.alert.error role="alert" data-testid="order-error" { (error) } }
                p { "Your balance: " strong data-testid="balance" { (a.balance.formatted) } ". "
                    "The setup fee and the first month are paid from it at once; the PBX is then billed monthly from the balance, with your other PBXs." }
                form.stack method="post" action="/portal/pbxes/new" {
                    (csrf_field(ctx))
                    input type="hidden" name="request_key" value=(request_key);
                    fieldset.choices {
                        legend { "Plan" }
                        @for plan in &data.plans {
                            @let id = format!("plan_{}", plan.slug);
                            @let covered = pbx_orders::shortfall(balance, money(&plan.first_payment)).is_none();
                            label.checkbox for=(id) {
                                input id=(id) type="radio" name="plan" value=(plan.slug)
                                    checked[chosen.is_some_and(|c| c.slug == plan.slug)];
                                " " strong { (plan.name) }
                                " — " (plan.setup_fee.formatted) " setup, " (plan.monthly_fee.formatted) " a month, "
                                (plan.included_extensions) " extensions. "
                                span.muted { (plan.first_payment.formatted) " due now"
                                    @if !covered { " (more than your balance)" } }
                                @if !plan.description.is_empty() { br; span.muted { (plan.description) } }
                            }
                        }
                        @if data.plans.is_empty() { p { "No plan is on sale just now." } }
                    }
                    button.primary type="submit" { "Order and pay from the balance" }
                }
                @if let Some((plan, missing, top_up)) = short {
                    div.alert.info role="status" data-testid="shortfall" {
                        p { "Your balance does not cover " (plan.name) ": " strong { (missing.format(&a.currency)) } " is missing. "
                            "Add funds, then order again." }
                        form.inline method="post" action="/portal/funds" {
                            (csrf_field(ctx))
                            input type="hidden" name="amount" value=(typed_amount(top_up));
                            button type="submit" { "Add " (top_up.format(&a.currency)) " by card" }
                        }
                    }
                }
                p { a href="/portal/pbxes" { "Back to your PBXs" } }
            }
        }),
    )
}

/// An amount as the add-funds form takes it: `25.01`.
fn typed_amount(amount: CoreMoney) -> String {
    let cents = amount.cents_up();
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// `POST /portal/pbxes/new`: orders the PBX through `orderPbx`, then shows
/// the order's progress; a balance that falls short is said, with the
/// top-up that covers it.
#[handler]
pub async fn order(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<OrderForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ordered {
        order_pbx: Placed,
    }
    #[derive(Deserialize)]
    struct Placed {
        order: OrderId,
    }
    #[derive(Deserialize)]
    struct OrderId {
        id: String,
    }
    let variables = serde_json::json!({ "plan": form.plan, "requestKey": form.request_key });
    match operations::run::<Ordered>(state, &ctx, ORDER_PBX, variables).await {
        Ok(ordered) => {
            Redirect::see_other(format!("/orders/{}", ordered.order_pbx.order.id)).into_response()
        }
        Err(error) => {
            new_page(
                state,
                &ctx,
                &form,
                Some(error.message()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

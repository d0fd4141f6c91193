//! Services: the add-ons a client has and can order — the list with the
//! catalogue, ordering one (paid from the balance), one service's page and
//! cancelling it. Each page runs its GraphQL operation as the viewer.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const SERVICES: &str = include_str!("../operations/services.graphql");
const ORDER_FORM: &str = include_str!("../operations/order_service_form.graphql");
const ORDER: &str = include_str!("../operations/order_service.graphql");
const SERVICE_ORDER: &str = include_str!("../operations/service_order.graphql");
const CANCEL: &str = include_str!("../operations/cancel_service.graphql");

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

#[derive(Deserialize)]
struct Viewer<T> {
    viewer: ViewerAccount<T>,
    services: Vec<Offer>,
}

#[derive(Deserialize)]
struct ViewerAccount<T> {
    account: Option<T>,
}

#[derive(Deserialize)]
struct Amount {
    #[serde(default)]
    micros: String,
    formatted: String,
    #[serde(default)]
    currency: String,
}

impl Amount {
    fn is_zero(&self) -> bool {
        self.micros == "0"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Offer {
    id: String,
    name: String,
    description: String,
    attaches_to: String,
    needs_staff: bool,
    one_time_fee: Amount,
    monthly_fee: Amount,
    first_payment: Amount,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAccount {
    currency: String,
    balance: Amount,
    service_orders: Vec<Listed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    name: String,
    pbx_id: Option<String>,
    state: String,
    monthly_fee: Amount,
    ends_at: Option<DateTime<Utc>>,
    next_charge_at: Option<DateTime<Utc>>,
}

/// How an ordered service's state reads to its owner.
fn state_label(state: &str, ends_at: Option<DateTime<Utc>>) -> String {
    let base = match state {
        "AWAITING_STAFF" => "Paid, waiting for staff to set it up",
        "ACTIVE" => "Active",
        "ENDED" => "Ended",
        _ => "Unknown",
    };
    match ends_at {
        Some(ends) if state != "ENDED" => format!("{base}, ends on {}", ends.format("%Y-%m-%d")),
        _ => base.to_owned(),
    }
}

fn state_badge(state: &str, ends_at: Option<DateTime<Utc>>) -> &'static str {
    match state {
        "ACTIVE" if ends_at.is_none() => "good",
        "ENDED" => "off",
        _ => "low",
    }
}

fn attached(pbx: Option<&str>) -> Markup {
    html! {
        @match pbx {
            Some(pbx) => { "PBX #" (pbx) }
            None => { "The account" }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// `GET /portal/services`: the account's services and the catalogue.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: Viewer<ListAccount> =
        match operations::run(state, &ctx, SERVICES, serde_json::json!({})).await {
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
    let done = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    let offers: Vec<&Offer> = data
        .services
        .iter()
        .filter(|s| s.one_time_fee.currency == account.currency)
        .collect();
    Page {
        title: "Services",
        nav: Nav::ClientServices,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Services" }
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        p { "Add-ons for your PBXs and your account, paid from your balance (now "
            strong data-testid="balance" { (account.balance.formatted) } "): the one-time fee and the first month when you order, then monthly. "
            a href="/portal/funds" { "Add funds" } }
        h2 { "Your services" }
        div.table-wrap {
            table #your-services .stackable {
                thead { tr { th scope="col" { "Service" } th scope="col" { "For" } th scope="col" { "State" } th scope="col" { "Next charge (UTC)" } th.num scope="col" { "Monthly" } } }
                tbody {
                    @for order in &account.service_orders {
                        tr {
                            td data-label="Service" { a href={ "/portal/services/" (order.id) } { (order.name) } }
                            td data-label="For" { (attached(order.pbx_id.as_deref())) }
                            td data-label="State" { span class={ "badge " (state_badge(&order.state, order.ends_at)) } { (state_label(&order.state, order.ends_at)) } }
                            td data-label="Next charge (UTC)" {
                                @match order.next_charge_at { Some(at) => { (at.format("%Y-%m-%d")) } None => { "—" } }
                            }
                            td.num data-label="Monthly" { (order.monthly_fee.formatted) }
                        }
                    }
                    @if account.service_orders.is_empty() {
                        tr { td.empty colspan="5" { "No services yet: order one below." } }
                    }
                }
            }
        }
        h2 { "Add a service" }
        @if offers.is_empty() {
            p.muted { "Nothing to add just now." }
        }
        div.cards.plans #catalogue {
            @for offer in &offers {
                div.card.plan {
                    h3 { (offer.name) }
                    @if !offer.description.is_empty() { p { (offer.description) } }
                    p.price {
                        span.amount { (offer.monthly_fee.formatted) } " a month"
                        @if !offer.one_time_fee.is_zero() { br; span.muted { "plus " (offer.one_time_fee.formatted) " once" } }
                    }
                    p.muted {
                        @if offer.attaches_to == "PBX" { "For one of your PBXs." } @else { "For your account." }
                        @if offer.needs_staff { " Our staff set it up after you order." }
                    }
                    a.button.primary href={ "/portal/services/order/" (offer.id) } aria-label={ "Order " (offer.name) } { "Order" }
                }
            }
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FormAccount {
    currency: String,
    balance: Amount,
    pbxes: Vec<PbxChoice>,
}

#[derive(Deserialize)]
struct PbxChoice {
    id: String,
    hostname: Option<String>,
    state: String,
}

/// The order form, as typed.
#[derive(Deserialize, Default)]
pub struct OrderForm {
    #[serde(default)]
    pbx_id: String,
    /// The form's one-time value: a double press orders once.
    #[serde(default)]
    request_key: String,
}

async fn order_form(
    state: &AppState,
    ctx: &PageContext,
    service: &str,
    typed: &OrderForm,
    errors: &[(String, String)],
    refusal: Option<&str>,
    status: StatusCode,
) -> Response {
    let data: Viewer<FormAccount> =
        match operations::run(state, ctx, ORDER_FORM, serde_json::json!({})).await {
            Ok(data) => data,
            Err(error) => return error_page(ctx, error.status(), &error.message()),
        };
    let Some(account) = data.viewer.account else {
        return error_page(
            ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let Some(offer) = data
        .services
        .iter()
        .find(|s| s.id == service && s.one_time_fee.currency == account.currency)
    else {
        return error_page(
            ctx,
            StatusCode::NOT_FOUND,
            "This service is not offered (any more).",
        );
    };
    let pbxes: Vec<&PbxChoice> = account
        .pbxes
        .iter()
        .filter(|p| p.state != "CANCELLED" && p.state != "FAILED")
        .collect();
    let request_key = if typed.request_key.is_empty() {
        random_token()
    } else {
        typed.request_key.clone()
    };
    let short: bool = match (
        account.balance.micros.parse::<i64>(),
        offer.first_payment.micros.parse::<i64>(),
    ) {
        (Ok(balance), Ok(needed)) => balance < needed,
        _ => false,
    };
    let pbx_error = errors.iter().find(|(f, _)| f == "pbx_id");
    let other_errors: Vec<&(String, String)> =
        errors.iter().filter(|(f, _)| f != "pbx_id").collect();
    let title = format!("Order {}", offer.name);
    let page = Page {
        title: &title,
        nav: Nav::ClientServices,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/portal/services" { "Services" } " › order" }
            div.card.narrow.wide {
                h1 { (title) }
                @if !offer.description.is_empty() { p { (offer.description) } }
                @if let Some(refusal) = refusal {
                    div.alert.error role="alert" { (refusal) " " a href="/portal/funds" { "Add funds" } }
                }
                @for (field, message) in &other_errors {
                    div.alert.error role="alert" { (field.replace('_', " ")) " " (message) "." }
                }
                table.summary #price {
                    tr { th scope="row" { "One-time fee" } td.num { (offer.one_time_fee.formatted) } }
                    tr { th scope="row" { "Monthly fee" } td.num { (offer.monthly_fee.formatted) } }
                    tr.total { th scope="row" { "Paid now from your balance" } td.num data-testid="first-payment" { (offer.first_payment.formatted) } }
                    tr { th scope="row" { "Your balance" } td.num { (account.balance.formatted) } }
                }
                p.muted { "Then " (offer.monthly_fee.formatted) " a month from your balance, until you cancel. "
                    @if offer.needs_staff { "Our staff set it up after you order; the service's page shows when it is done." } }
                @if short && refusal.is_none() {
                    div.alert.warn role="status" { "Your balance does not cover the first payment. " a href="/portal/funds" { "Add funds" } " first." }
                }
                form #order-service .stack method="post" action={ "/portal/services/order/" (offer.id) } {
                    (csrf_field(ctx))
                    input type="hidden" name="request_key" value=(request_key);
                    @if offer.attaches_to == "PBX" {
                        label for="pbx_id" { "PBX" span.hint { " (the one it is for)" } }
                        select #pbx_id name="pbx_id" required aria-invalid=[pbx_error.map(|_| "true")] aria-describedby=[pbx_error.map(|_| "pbx_id-error")] {
                            @for pbx in &pbxes {
                                option value=(pbx.id) selected[typed.pbx_id == pbx.id] {
                                    "#" (pbx.id) @if let Some(host) = &pbx.hostname { " · " (host) }
                                }
                            }
                        }
                        @if let Some((_, message)) = pbx_error { div.field-error #pbx_id-error { "PBX " (message) "." } }
                        @if pbxes.is_empty() { p.muted { "You have no working PBX to add it to." } }
                    }
                    button.primary type="submit" { "Order and pay " (offer.first_payment.formatted) }
                }
            }
        }),
    )
}

/// `GET /portal/services/order/:service`: what ordering it costs, and the
/// form that orders it.
#[handler]
pub async fn order_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(service): Path<String>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    order_form(
        state,
        &ctx,
        &service,
        &OrderForm::default(),
        &[],
        None,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderedData {
    order_service: Ordered,
}

#[derive(Deserialize)]
struct Ordered {
    id: String,
    state: String,
}

/// `POST /portal/services/order/:service`: orders it through `orderService`.
#[handler]
pub async fn place_order(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(service): Path<String>,
    Form(form): Form<OrderForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let input = serde_json::json!({
        "serviceId": service,
        "pbxId": Some(form.pbx_id.as_str()).filter(|p| !p.is_empty()),
        "requestKey": form.request_key,
    });
    match operations::run::<OrderedData>(state, &ctx, ORDER, serde_json::json!({ "input": input }))
        .await
    {
        Ok(data) => {
            let text = if data.order_service.state == "AWAITING_STAFF" {
                "Ordered and paid: our staff have been told and will set it up."
            } else {
                "Ordered and paid: it works now."
            };
            let done = notice::query(&state.key, "done", text);
            Redirect::see_other(format!("/portal/services/{}?{done}", data.order_service.id))
                .into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            order_form(
                state,
                &ctx,
                &service,
                &form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            // A new one-time value: the refused order was never placed, and
            // the next press (after adding funds, say) must be able to be.
            let again = OrderForm {
                pbx_id: form.pbx_id.clone(),
                request_key: String::new(),
            };
            order_form(
                state,
                &ctx,
                &service,
                &again,
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
#[serde(rename_all = "camelCase")]
struct OrderData {
    service_order: ServiceOrder,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceOrder {
    id: String,
    name: String,
    pbx_id: Option<String>,
    state: String,
    one_time_fee: Amount,
    monthly_fee: Amount,
    ordered_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    next_charge_at: Option<DateTime<Utc>>,
}

/// `GET /portal/services/:id`: one ordered service, with the form that
/// cancels it.
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: OrderData =
        match operations::run(state, &ctx, SERVICE_ORDER, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error @ OperationError::Refused(_)) => {
                return error_page(&ctx, StatusCode::NOT_FOUND, &error.message())
            }
            Err(error) => return error_page(&ctx, error.status(), &error.message()),
        };
    let done = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    let order = data.service_order;
    let page = Page {
        title: &order.name,
        nav: Nav::ClientServices,
        ctx: &ctx,
    };
    page.respond(html! {
        p.muted { a href="/portal/services" { "Services" } " › #" (order.id) }
        h1 { (order.name) }
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        table.summary #service-order {
            tr { th scope="row" { "State" } td { span class={ "badge " (state_badge(&order.state, order.ends_at)) } data-testid="service-state" { (state_label(&order.state, order.ends_at)) } } }
            tr { th scope="row" { "For" } td { (attached(order.pbx_id.as_deref())) } }
            tr { th scope="row" { "Ordered (UTC)" } td { (order.ordered_at.format("%Y-%m-%d %H:%M")) } }
            @if let Some(at) = order.completed_at { tr { th scope="row" { "Working since (UTC)" } td { (at.format("%Y-%m-%d %H:%M")) } } }
            tr { th scope="row" { "One-time fee" } td { (order.one_time_fee.formatted) } }
            tr { th scope="row" { "Monthly fee" } td { (order.monthly_fee.formatted) } }
            @if let Some(at) = order.next_charge_at { tr { th scope="row" { "Next charge (UTC)" } td { (at.format("%Y-%m-%d")) } } }
            @if let Some(at) = order.cancelled_at { tr { th scope="row" { "Cancelled (UTC)" } td { (at.format("%Y-%m-%d %H:%M")) } } }
            @if let Some(at) = order.ends_at { tr { th scope="row" { @if order.state == "ENDED" { "Ended (UTC)" } @else { "Ends on (UTC)" } } td data-testid="service-ends" { (at.format("%Y-%m-%d")) } } }
        }
        @if order.cancelled_at.is_none() {
            h2 { "Cancel" }
            form #cancel-service .stack.card method="post" action={ "/portal/services/" (order.id) "/cancel" } {
                (csrf_field(&ctx))
                p { "The service keeps working until the end of the month already paid"
                    @if let Some(at) = order.next_charge_at { " (" (at.format("%Y-%m-%d")) ")" }
                    " and is not charged again. That month is not refunded." }
                button type="submit" { "Cancel " (order.name) }
            }
        }
    })
}

/// `POST /portal/services/:id/cancel`: cancels through `cancelService`.
#[handler]
pub async fn cancel(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Cancelled {
        cancel_service: Ends,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ends {
        ends_at: Option<DateTime<Utc>>,
    }
    match operations::run::<Cancelled>(state, &ctx, CANCEL, serde_json::json!({ "id": id })).await {
        Ok(data) => {
            let text = match data.cancel_service.ends_at {
                Some(at) => format!(
                    "Cancelled: it ends on {}, when the month paid is over.",
                    at.format("%Y-%m-%d")
                ),
                None => "Cancelled.".to_owned(),
            };
            let done = notice::query(&state.key, "done", &text);
            Redirect::see_other(format!("/portal/services/{id}?{done}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            error_page(&ctx, StatusCode::NOT_FOUND, &error.message())
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

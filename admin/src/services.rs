//! Services in the staff section: the catalogue of add-ons (add, change,
//! withdraw), the ordered services waiting for staff, and marking one done.

use chrono::{DateTime, Utc};
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

use crate::catalogue::decimal;

const SERVICES: &str = include_str!("../operations/services.graphql");
const CREATE: &str = include_str!("../operations/create_service.graphql");
const UPDATE: &str = include_str!("../operations/update_service.graphql");
const ORDERS: &str = include_str!("../operations/service_orders.graphql");
const ORDER: &str = include_str!("../operations/service_order.graphql");
const COMPLETE: &str = include_str!("../operations/complete_service_order.graphql");

fn staff(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Staff, Role::Admin])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicesData {
    all_services: Vec<Service>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    id: String,
    name: String,
    description: String,
    attaches_to: String,
    needs_staff: bool,
    offered: bool,
    one_time_fee: Amount,
    monthly_fee: Amount,
}

#[derive(Deserialize)]
struct Amount {
    #[serde(default)]
    micros: String,
    formatted: String,
    #[serde(default)]
    currency: String,
}

/// The service form's fields.
#[derive(Deserialize, Default)]
pub struct ServiceForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    one_time_fee: String,
    #[serde(default)]
    monthly_fee: String,
    #[serde(default)]
    attaches_to: String,
    needs_staff: Option<String>,
    offered: Option<String>,
}

fn catalogue_page(
    ctx: &PageContext,
    services: &[Service],
    form: &ServiceForm,
    errors: &[(String, String)],
    notice: Option<&str>,
) -> maud::Markup {
    let field = |name, label, value, hint| {
        Field {
            name,
            label,
            kind: "text",
            value,
            autocomplete: "off",
            hint,
        }
        .render(errors)
    };
    let attaches_error = errors.iter().find(|(f, _)| f == "attaches_to");
    Page {
        title: "Services",
        nav: Nav::StaffServices,
        ctx,
    }
    .render(html! {
        h1 { "Services" }
        p { "Add-ons clients order from their panel, paid from their balance. "
            a href="/admin/service-orders" { "Orders waiting for staff" } }
        @if let Some(notice) = notice { div #notice .alert.ok role="status" { (notice) } }
        div.table-wrap {
            table #services .stackable {
                thead { tr { th scope="col" { "Service" } th scope="col" { "For" } th scope="col" { "Staff act" } th scope="col" { "Offered" } th.num scope="col" { "One-time" } th.num scope="col" { "Monthly" } th scope="col" { span.visually-hidden { "Change" } } } }
                tbody {
                    @for service in services {
                        tr {
                            td data-label="Service" { strong { (service.name) } @if !service.description.is_empty() { br; span.muted { (service.description) } } }
                            td data-label="For" { @if service.attaches_to == "PBX" { "a PBX" } @else { "the account" } }
                            td data-label="Staff act" { @if service.needs_staff { "yes" } @else { "no" } }
                            td data-label="Offered" { @if service.offered { span.badge.good { "yes" } } @else { span.badge { "withdrawn" } } }
                            td.num data-label="One-time" { (service.one_time_fee.formatted) }
                            td.num data-label="Monthly" { (service.monthly_fee.formatted) }
                            td data-label="Change" { a href={ "/admin/services?edit=" (service.id) "#service-form" } aria-label={ "Edit " (service.name) } { "Edit" } }
                        }
                    }
                    @if services.is_empty() { tr { td.empty colspan="7" { "No services yet." } } }
                }
            }
        }
        h2 #service-form { @if form.id.is_empty() { "Add a service" } @else { "Edit " (form.name) } }
        form.stack.card method="post" action="/admin/services" {
            (csrf_field(ctx))
            input type="hidden" name="id" value=(form.id);
            @if !errors.is_empty() { div.alert.error role="alert" { "Please correct the fields marked below." } }
            (field("name", "Name", form.name.as_str(), None))
            (Field { name: "description", label: "Description", kind: "textarea", value: &form.description, autocomplete: "off", hint: Some("(what the client reads)") }.render(errors))
            (field("currency", "Currency", form.currency.as_str(), None))
            (field("one_time_fee", "One-time fee", form.one_time_fee.as_str(), Some("(paid when ordered)")))
            (field("monthly_fee", "Monthly fee", form.monthly_fee.as_str(), Some("(the first month is paid when ordered)")))
            label for="attaches_to" { "For" }
            select #attaches_to name="attaches_to" aria-invalid=[attaches_error.map(|_| "true")] aria-describedby=[attaches_error.map(|_| "attaches_to-error")] {
                option value="PBX" selected[form.attaches_to == "PBX"] { "One of the account's PBXs (the client chooses)" }
                option value="ACCOUNT" selected[form.attaches_to == "ACCOUNT"] { "The account" }
            }
            @if let Some((_, message)) = attaches_error { div.field-error #attaches_to-error { "For " (message) "." } }
            label.checkbox for="needs_staff" {
                input #needs_staff type="checkbox" name="needs_staff" value="yes" checked[form.needs_staff.is_some()];
                " Staff must set it up (orders wait for them)"
            }
            label.checkbox for="offered" {
                input #offered type="checkbox" name="offered" value="yes" checked[form.offered.is_some()];
                " Offered to clients"
            }
            button.primary type="submit" { @if form.id.is_empty() { "Add service" } @else { "Save service" } }
        }
    })
}

#[derive(Deserialize)]
pub struct CatalogueQuery {
    edit: Option<String>,
    saved: Option<String>,
}

async fn load(state: &AppState, ctx: &PageContext) -> Result<Vec<Service>, Response> {
    operations::run::<ServicesData>(state, ctx, SERVICES, serde_json::json!({}))
        .await
        .map(|d| d.all_services)
        .map_err(|e| error_page(ctx, e.status(), &e.message()))
}

/// `GET /admin/services`: the catalogue, with a form to add or edit a service.
#[handler]
pub async fn catalogue(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<CatalogueQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let services = match load(state, &ctx).await {
        Ok(services) => services,
        Err(response) => return response,
    };
    let form = match services.iter().find(|s| Some(&s.id) == query.edit.as_ref()) {
        Some(service) => ServiceForm {
            id: service.id.clone(),
            name: service.name.clone(),
            description: service.description.clone(),
            currency: service.one_time_fee.currency.clone(),
            one_time_fee: decimal(&service.one_time_fee.micros),
            monthly_fee: decimal(&service.monthly_fee.micros),
            attaches_to: service.attaches_to.clone(),
            needs_staff: service.needs_staff.then(|| "yes".into()),
            offered: service.offered.then(|| "yes".into()),
        },
        None => ServiceForm {
            currency: "USD".into(),
            one_time_fee: "0".into(),
            attaches_to: "PBX".into(),
            offered: Some("yes".into()),
            ..ServiceForm::default()
        },
    };
    let notice = query.saved.map(|_| "The service was saved.");
    html_response(
        StatusCode::OK,
        catalogue_page(&ctx, &services, &form, &[], notice),
    )
}

/// `POST /admin/services`: `createService` or `updateService`.
#[handler]
pub async fn save(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ServiceForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if form.attaches_to != "PBX" && form.attaches_to != "ACCOUNT" {
        let services = match load(state, &ctx).await {
            Ok(services) => services,
            Err(response) => return response,
        };
        let errors = [(
            "attaches_to".to_owned(),
            "is not one of the choices".to_owned(),
        )];
        return html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            catalogue_page(&ctx, &services, &form, &errors, None),
        );
    }
    let input = serde_json::json!({
        "name": form.name,
        "description": form.description,
        "currency": form.currency,
        "oneTimeFee": form.one_time_fee,
        "monthlyFee": form.monthly_fee,
        "attachesTo": form.attaches_to,
        "needsStaff": form.needs_staff.is_some(),
        "offered": form.offered.is_some(),
    });
    let result = if form.id.is_empty() {
        operations::run::<serde_json::Value>(
            state,
            &ctx,
            CREATE,
            serde_json::json!({ "input": input }),
        )
        .await
    } else {
        operations::run::<serde_json::Value>(
            state,
            &ctx,
            UPDATE,
            serde_json::json!({ "id": form.id, "input": input }),
        )
        .await
    };
    match result {
        Ok(_) => Redirect::see_other("/admin/services?saved=1").into_response(),
        Err(OperationError::Invalid(errors)) => {
            let services = match load(state, &ctx).await {
                Ok(services) => services,
                Err(response) => return response,
            };
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                catalogue_page(&ctx, &services, &form, &errors, None),
            )
        }
        Err(error) => error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersData {
    service_orders: crate::Connection<Listed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    name: String,
    pbx_id: Option<String>,
    state: String,
    ordered_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    account: AccountName,
}

#[derive(Deserialize)]
struct AccountName {
    id: String,
    name: String,
}

/// How an ordered service's state reads to staff.
fn state_label(state: &str, ends_at: Option<DateTime<Utc>>) -> String {
    let base = match state {
        "AWAITING_STAFF" => "Awaiting staff",
        "ACTIVE" => "Active",
        "ENDED" => "Ended",
        _ => "Unknown",
    };
    match ends_at {
        Some(ends) if state != "ENDED" => format!("{base}, ends on {}", ends.format("%Y-%m-%d")),
        _ => base.to_owned(),
    }
}

fn state_badge(state: &str) -> &'static str {
    match state {
        "AWAITING_STAFF" => "low",
        "ACTIVE" => "good",
        _ => "off",
    }
}

#[derive(Deserialize, Default)]
pub struct OrdersQuery {
    /// `all` shows every order; otherwise only those waiting for staff.
    show: Option<String>,
    after: Option<String>,
}

/// `GET /admin/service-orders`: ordered services, those waiting for staff
/// first of all.
#[handler]
pub async fn orders(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<OrdersQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let all = query.show.as_deref() == Some("all");
    let variables = serde_json::json!({ "awaitingStaff": !all, "after": query.after });
    let data: OrdersData = match operations::run(state, &ctx, ORDERS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    // Cursors are order ids: digits, safe in an address as they are.
    let next = data.service_orders.next().map(|cursor| {
        format!(
            "/admin/service-orders?after={cursor}{}",
            if all { "&show=all" } else { "" }
        )
    });
    Page {
        title: "Service orders",
        nav: Nav::StaffServiceOrders,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Service orders" }
        p {
            @if all { a href="/admin/service-orders" { "Only those waiting for staff" } }
            @else { "Waiting for staff to set them up. " a href="/admin/service-orders?show=all" { "Every order" } }
        }
        div.table-wrap {
            table #service-orders .stackable {
                thead { tr { th scope="col" { "Order" } th scope="col" { "Account" } th scope="col" { "For" } th scope="col" { "Ordered (UTC)" } th scope="col" { "State" } } }
                tbody {
                    @for edge in &data.service_orders.edges {
                        @let order = &edge.node;
                        tr {
                            td data-label="Order" { a href={ "/admin/service-orders/" (order.id) } { "#" (order.id) " " (order.name) } }
                            td data-label="Account" { a href={ "/admin/accounts/" (order.account.id) } { (order.account.name) } }
                            td data-label="For" { @match &order.pbx_id { Some(pbx) => { a href={ "/admin/pbxes/" (pbx) } { "PBX #" (pbx) } } None => { "the account" } } }
                            td data-label="Ordered (UTC)" { (order.ordered_at.format("%Y-%m-%d %H:%M")) }
                            td data-label="State" { span class={ "badge " (state_badge(&order.state)) } { (state_label(&order.state, order.ends_at)) } }
                        }
                    }
                    @if data.service_orders.edges.is_empty() {
                        tr { td.empty colspan="5" { @if all { "No services ordered yet." } @else { "Nothing waits for staff." } } }
                    }
                }
            }
        }
        @if let Some(next) = next {
            div.pager { span {} a.button href=(next) { "Older orders" } }
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderData {
    service_order: Order,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    name: String,
    pbx_id: Option<String>,
    state: String,
    one_time_fee: Formatted,
    monthly_fee: Formatted,
    ordered_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    next_charge_at: Option<DateTime<Utc>>,
    account: AccountName,
}

#[derive(Deserialize)]
struct Formatted {
    formatted: String,
}

#[derive(Deserialize, Default)]
pub struct OrderQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// `GET /admin/service-orders/:id`: one ordered service; staff mark it done.
#[handler]
pub async fn order_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<OrderQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: OrderData =
        match operations::run(state, &ctx, ORDER, serde_json::json!({ "id": id })).await {
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
    let title = format!("#{} {}", order.id, order.name);
    Page {
        title: &title,
        nav: Nav::StaffServiceOrders,
        ctx: &ctx,
    }
    .respond(html! {
        p.muted { a href="/admin/service-orders" { "Service orders" } " › #" (order.id) }
        h1 { (order.name) }
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        table.summary #service-order {
            tr { th scope="row" { "State" } td { span class={ "badge " (state_badge(&order.state)) } data-testid="service-state" { (state_label(&order.state, order.ends_at)) } } }
            tr { th scope="row" { "Account" } td { a href={ "/admin/accounts/" (order.account.id) } { (order.account.name) } } }
            tr { th scope="row" { "For" } td { @match &order.pbx_id { Some(pbx) => { a href={ "/admin/pbxes/" (pbx) } { "PBX #" (pbx) } } None => { "the account" } } } }
            tr { th scope="row" { "Ordered (UTC)" } td { (order.ordered_at.format("%Y-%m-%d %H:%M")) } }
            @if let Some(at) = order.completed_at { tr { th scope="row" { "Working since (UTC)" } td { (at.format("%Y-%m-%d %H:%M")) } } }
            tr { th scope="row" { "One-time fee" } td { (order.one_time_fee.formatted) } }
            tr { th scope="row" { "Monthly fee" } td { (order.monthly_fee.formatted) } }
            @if let Some(at) = order.next_charge_at { tr { th scope="row" { "Next charge (UTC)" } td { (at.format("%Y-%m-%d")) } } }
            @if let Some(at) = order.cancelled_at { tr { th scope="row" { "Cancelled (UTC)" } td { (at.format("%Y-%m-%d %H:%M")) } } }
            @if let Some(at) = order.ends_at { tr { th scope="row" { "Ends on (UTC)" } td { (at.format("%Y-%m-%d")) } } }
        }
        @if order.state == "AWAITING_STAFF" {
            form #complete-order .stack.card method="post" action={ "/admin/service-orders/" (order.id) "/done" } {
                (csrf_field(&ctx))
                p { "Once it is set up for the client, mark it done: the client's panel then shows it as active." }
                button.primary type="submit" { "Mark done" }
            }
        }
    })
}

/// `POST /admin/service-orders/:id/done`: `completeServiceOrder`.
#[handler]
pub async fn complete(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        COMPLETE,
        serde_json::json!({ "id": id }),
    )
    .await
    {
        Ok(_) => {
            let done = notice::query(&state.key, "done", "Marked done: the service is active.");
            Redirect::see_other(format!("/admin/service-orders/{id}?{done}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            error_page(&ctx, StatusCode::NOT_FOUND, &error.message())
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

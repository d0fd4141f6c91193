//! Phone numbers for staff: the inventory with its filters and the
//! upload of a rate-center file (previewed row by row, then imported all
//! or nothing), the ordered numbers waiting to be configured, and each
//! number's page with its history and the button that marks it active.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const INVENTORY: &str = include_str!("../operations/numbers.graphql");
const PREVIEW: &str = include_str!("../operations/number_import_preview.graphql");
const IMPORT: &str = include_str!("../operations/import_numbers.graphql");
const AWAITING: &str = include_str!("../operations/numbers_awaiting.graphql");
const NUMBER: &str = include_str!("../operations/number.graphql");
const ACTIVATE: &str = include_str!("../operations/activate_number.graphql");

fn staff(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Staff, Role::Admin])
}

const STATUSES: [(&str, &str); 4] = [
    ("AVAILABLE", "Available"),
    ("ORDERED", "Ordered, to configure"),
    ("ACTIVE", "Active"),
    ("QUARANTINED", "Quarantined"),
];

fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(value, _)| *value == status)
        .map_or("Unknown", |(_, label)| label)
}

#[derive(Deserialize)]
struct Formatted {
    formatted: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    e164: String,
    rate_center: String,
    state: String,
    status: String,
    account_id: Option<String>,
    pbx_id: Option<String>,
    monthly_fee: Formatted,
}

#[derive(Deserialize)]
struct Edge {
    node: Listed,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    edges: Vec<Edge>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct StateCount {
    state: String,
    available: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inventory {
    numbers: Connection,
    number_states: Vec<StateCount>,
}

#[derive(Deserialize, Default)]
pub struct Filters {
    status: Option<String>,
    state: Option<String>,
    rate_center: Option<String>,
    digits: Option<String>,
    after: Option<String>,
    done: Option<String>,
    done_sig: Option<String>,
}

fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn sub_nav() -> maud::Markup {
    html! {
        nav.subnav aria-label="Numbers" {
            a href="/admin/numbers" { "Inventory" }
            " · "
            a href="/admin/numbers/awaiting" { "Awaiting configuration" }
        }
    }
}

/// `GET /admin/numbers`: the inventory by status, state, rate center and
/// digits, and the upload form.
#[handler]
pub async fn inventory(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(filters): Query<Filters>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let status = given(&filters.status).filter(|s| STATUSES.iter().any(|(v, _)| v == s));
    let variables = serde_json::json!({
        "status": status,
        "state": given(&filters.state),
        "rateCenter": given(&filters.rate_center),
        "digits": given(&filters.digits),
        "after": given(&filters.after),
    });
    let data: Inventory = match operations::run(state, &ctx, INVENTORY, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let done = notice::read(
        &state.key,
        "done",
        filters.done.as_deref(),
        filters.done_sig.as_deref(),
    );
    let next = data
        .numbers
        .page_info
        .end_cursor
        .as_deref()
        .filter(|_| data.numbers.page_info.has_next_page)
        .map(|cursor| {
            let pairs: Vec<(&str, &str)> = [
                ("status", status),
                ("state", given(&filters.state)),
                ("rate_center", given(&filters.rate_center)),
                ("digits", given(&filters.digits)),
                ("after", Some(cursor)),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect();
            format!(
                "/admin/numbers?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        });
    Page {
        title: "Numbers",
        nav: Nav::StaffNumbers,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Numbers" }
        (sub_nav())
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        form #number-filters .inline method="get" action="/admin/numbers" {
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "Available" }
                @for (value, label) in STATUSES {
                    option value=(value) selected[status == Some(value)] { (label) }
                }
            }
            label for="state" { "State" }
            select #state name="state" {
                option value="" { "Any" }
                @for s in &data.number_states {
                    option value=(s.state) selected[given(&filters.state) == Some(s.state.as_str())] { (s.state) " (" (s.available) " available)" }
                }
            }
            label for="rate_center" { "Rate center" }
            input #rate_center name="rate_center" type="text" value=(given(&filters.rate_center).unwrap_or(""));
            label for="digits" { "Digits" }
            input #digits name="digits" type="text" inputmode="numeric" value=(given(&filters.digits).unwrap_or(""));
            button type="submit" { "Filter" }
        }
        div.table-wrap {
            table #inventory .stackable {
                thead { tr {
                    th scope="col" { "Number" } th scope="col" { "Rate center" } th scope="col" { "Status" }
                    th scope="col" { "Account" } th scope="col" { "PBX" } th scope="col" { "Monthly" }
                } }
                tbody {
                    @for edge in &data.numbers.edges {
                        @let n = &edge.node;
                        tr {
                            td data-label="Number" { a href={ "/admin/numbers/" (n.id) } { (n.e164) } }
                            td data-label="Rate center" { (n.rate_center) ", " (n.state) }
                            td data-label="Status" { (status_label(&n.status)) }
                            td data-label="Account" { @if let Some(a) = &n.account_id { a href={ "/admin/accounts/" (a) } { "#" (a) } } }
                            td data-label="PBX" { @if let Some(p) = &n.pbx_id { "#" (p) } }
                            td data-label="Monthly" { (n.monthly_fee.formatted) }
                        }
                    }
                    @if data.numbers.edges.is_empty() {
                        tr { td.empty colspan="6" { "No number matches." } }
                    }
                }
            }
        }
        @if let Some(next) = next {
            div.pager { span {} a.button href=(next) { "More" } }
        }
        section.card #upload {
            h2 { "Upload inventory" }
            p { "Paste a carrier's rate-center file (CSV, with " code { "," } " or " code { ";" } "). Its header names the columns: the number, rate center and state, and the setup and monthly fees or a tier. You see every bad row before anything changes." }
            form #upload-inventory .stack method="post" action="/admin/numbers/preview" {
                (csrf_field(&ctx))
                label for="csv" { "The file's text" }
                textarea #csv name="csv" rows="8" required {}
                label for="currency" { "Prices are in" }
                input #currency name="currency" type="text" value="USD" maxlength="3";
                button.primary type="submit" { "Preview" }
            }
        }
    })
}

#[derive(Deserialize)]
pub struct UploadForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    currency: String,
}

#[derive(Deserialize)]
struct RowError {
    line: i64,
    column: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preview {
    rows: i64,
    new: i64,
    updated: i64,
    held: Vec<String>,
    errors: Vec<RowError>,
    columns: Vec<String>,
    unknown_columns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Previewed {
    number_import_preview: Preview,
}

fn currency_of(form: &UploadForm) -> String {
    let currency = form.currency.trim();
    if currency.is_empty() {
        "USD".into()
    } else {
        currency.to_owned()
    }
}

/// `POST /admin/numbers/preview`: what the file would do, every bad row
/// named; the import button only for a file without one.
#[handler]
pub async fn preview(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<UploadForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let currency = currency_of(&form);
    let variables = serde_json::json!({ "csv": form.csv, "currency": currency });
    let page = Page {
        title: "Inventory preview",
        nav: Nav::StaffNumbers,
        ctx: &ctx,
    };
    let previewed =
        match operations::run::<Previewed>(state, &ctx, PREVIEW, variables).await {
            Ok(previewed) => previewed.number_import_preview,
            Err(error @ OperationError::Refused(_)) => return html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                page.render(html! {
                    h1 { "Inventory preview" }
                    div.alert.error role="alert" { "The file cannot be read: " (error.message()) }
                    p { a href="/admin/numbers#upload" { "Back to the upload" } }
                }),
            ),
            Err(error) => return error_page(&ctx, error.status(), &error.message()),
        };
    let status = if previewed.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/admin/numbers" { "Numbers" } " › preview" }
            h1 { "Inventory preview" }
            ul #preview-summary {
                li { (previewed.rows) " good rows: " (previewed.new) " new numbers, " (previewed.updated) " available numbers updated." }
                @if !previewed.held.is_empty() {
                    li { (previewed.held.len()) " numbers are ordered, active or quarantined and stay as they are: " (previewed.held.join(", ")) }
                }
                li { "Columns read: " (previewed.columns.join("; ")) }
                @if !previewed.unknown_columns.is_empty() {
                    li { "Columns not read: " (previewed.unknown_columns.join(", ")) }
                }
            }
            @if previewed.errors.is_empty() {
                form #import-inventory method="post" action="/admin/numbers/import" {
                    (csrf_field(&ctx))
                    input type="hidden" name="csv" value=(form.csv);
                    input type="hidden" name="currency" value=(currency);
                    button.primary type="submit" { "Import " (previewed.rows) " numbers" }
                }
            } @else {
                div.alert.error role="alert" { (previewed.errors.len()) " rows are bad. Nothing will be imported until the file is corrected." }
                div.table-wrap {
                    table #bad-rows .stackable {
                        thead { tr { th scope="col" { "Line" } th scope="col" { "Column" } th scope="col" { "What is wrong" } } }
                        tbody {
                            @for error in &previewed.errors {
                                tr {
                                    td data-label="Line" { (error.line) }
                                    td data-label="Column" { (error.column) }
                                    td data-label="What is wrong" { (error.reason) }
                                }
                            }
                        }
                    }
                }
                p { a href="/admin/numbers#upload" { "Upload a corrected file" } }
            }
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Imported {
    import_numbers: ImportCounts,
}

#[derive(Deserialize)]
struct ImportCounts {
    new: i64,
    updated: i64,
    held: Vec<String>,
}

/// `POST /admin/numbers/import`: imports the previewed file through `importNumbers`.
#[handler]
pub async fn import(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<UploadForm>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "csv": form.csv, "currency": currency_of(&form) });
    match operations::run::<Imported>(state, &ctx, IMPORT, variables).await {
        Ok(imported) => {
            let counts = imported.import_numbers;
            let done = notice::query(
                &state.key,
                "done",
                &format!(
                    "Imported: {} new numbers, {} updated, {} left as they are.",
                    counts.new,
                    counts.updated,
                    counts.held.len()
                ),
            );
            Redirect::see_other(format!("/admin/numbers?{done}")).into_response()
        }
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Waiting {
    id: String,
    e164: String,
    rate_center: String,
    state: String,
    account_id: Option<String>,
    pbx_id: Option<String>,
    ordered_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AwaitingList {
    numbers_awaiting_configuration: Vec<Waiting>,
}

/// `GET /admin/numbers/awaiting`: ordered numbers to configure, oldest first.
#[handler]
pub async fn awaiting(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: AwaitingList =
        match operations::run(state, &ctx, AWAITING, serde_json::json!({})).await {
            Ok(data) => data,
            Err(error) => return error_page(&ctx, error.status(), &error.message()),
        };
    Page {
        title: "Numbers awaiting configuration",
        nav: Nav::StaffNumbers,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Numbers awaiting configuration" }
        (sub_nav())
        p { "Route each number to its PBX, then mark it active. Where the controller assigns numbers, it does so itself; a number here with an error is one it refused." }
        div.table-wrap {
            table #awaiting .stackable {
                thead { tr {
                    th scope="col" { "Number" } th scope="col" { "Rate center" } th scope="col" { "Account" }
                    th scope="col" { "PBX" } th scope="col" { "Ordered (UTC)" } th scope="col" { "Controller" }
                    th scope="col" { span.visually-hidden { "Mark active" } }
                } }
                tbody {
                    @for n in &data.numbers_awaiting_configuration {
                        tr {
                            td data-label="Number" { a href={ "/admin/numbers/" (n.id) } { (n.e164) } }
                            td data-label="Rate center" { (n.rate_center) ", " (n.state) }
                            td data-label="Account" { @if let Some(a) = &n.account_id { a href={ "/admin/accounts/" (a) } { "#" (a) } } }
                            td data-label="PBX" { @if let Some(p) = &n.pbx_id { "#" (p) } }
                            td data-label="Ordered (UTC)" { @if let Some(at) = n.ordered_at { (at.format("%Y-%m-%d %H:%M")) } }
                            td data-label="Controller" { (n.last_error.as_deref().unwrap_or("—")) }
                            td {
                                form method="post" action={ "/admin/numbers/" (n.id) "/activate" } {
                                    (csrf_field(&ctx))
                                    button type="submit" aria-label={ "Mark active " (n.e164) } { "Mark active" }
                                }
                            }
                        }
                    }
                    @if data.numbers_awaiting_configuration.is_empty() {
                        tr { td.empty colspan="7" { "Nothing waits to be configured." } }
                    }
                }
            }
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    at: chrono::DateTime<chrono::Utc>,
    kind: String,
    actor: String,
    detail: String,
    account_id: Option<String>,
    pbx_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    id: String,
    e164: String,
    npa: String,
    nxx: String,
    rate_center: String,
    state: String,
    city: Option<String>,
    lata: Option<String>,
    carrier: Option<String>,
    tier: Option<String>,
    status: String,
    account_id: Option<String>,
    pbx_id: Option<String>,
    setup_fee: Formatted,
    monthly_fee: Formatted,
    quarantined_until: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
    history: Vec<Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OneNumber {
    phone_number: Detail,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// `GET /admin/numbers/:id`: one number, its history, and marking it active.
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let ctx = match staff(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: OneNumber =
        match operations::run(state, &ctx, NUMBER, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error @ OperationError::Refused(_)) => {
                return error_page(&ctx, StatusCode::NOT_FOUND, &error.message())
            }
            Err(error) => return error_page(&ctx, error.status(), &error.message()),
        };
    let n = data.phone_number;
    let done = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    Page {
        title: &n.e164,
        nav: Nav::StaffNumbers,
        ctx: &ctx,
    }
    .respond(html! {
        p.muted { a href="/admin/numbers" { "Numbers" } " › " (n.e164) }
        h1 { (n.e164) }
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        dl.facts {
            dt { "Status" } dd #number-status { (status_label(&n.status)) }
            dt { "Rate center" } dd { (n.rate_center) ", " (n.state) @if let Some(city) = &n.city { " · " (city) } }
            dt { "NPA-NXX" } dd { (n.npa) "-" (n.nxx) }
            @if let Some(lata) = &n.lata { dt { "LATA" } dd { (lata) } }
            @if let Some(carrier) = &n.carrier { dt { "Carrier" } dd { (carrier) } }
            @if let Some(tier) = &n.tier { dt { "Tier" } dd { (tier) } }
            dt { "Setup, monthly" } dd { (n.setup_fee.formatted) ", " (n.monthly_fee.formatted) }
            @if let Some(a) = &n.account_id { dt { "Account" } dd { a href={ "/admin/accounts/" (a) } { "#" (a) } } }
            @if let Some(p) = &n.pbx_id { dt { "PBX" } dd { "#" (p) } }
            @if let Some(until) = n.quarantined_until { dt { "For sale again" } dd { (until.format("%Y-%m-%d %H:%M UTC")) } }
            @if let Some(error) = &n.last_error { dt { "Controller said" } dd { (error) } }
        }
        @if n.status == "ORDERED" {
            form #activate method="post" action={ "/admin/numbers/" (n.id) "/activate" } {
                (csrf_field(&ctx))
                button.primary type="submit" { "Configured on the PBX: mark active" }
            }
        }
        h2 { "History" }
        div.table-wrap {
            table #history .stackable {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Who" } th scope="col" { "Account, PBX" } th scope="col" { "Detail" } } }
                tbody {
                    @for e in &n.history {
                        tr {
                            td data-label="When (UTC)" { (e.at.format("%Y-%m-%d %H:%M")) }
                            td data-label="What" { (e.kind.replace('_', " ")) }
                            td data-label="Who" { (e.actor) }
                            td data-label="Account, PBX" {
                                @if let Some(a) = &e.account_id { "#" (a) }
                                @if let Some(p) = &e.pbx_id { ", PBX #" (p) }
                            }
                            td data-label="Detail" { (e.detail) }
                        }
                    }
                }
            }
        }
    })
}

/// `POST /admin/numbers/:id/activate`: marks a number active through `activateNumber`.
#[handler]
pub async fn activate(
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
        ACTIVATE,
        serde_json::json!({ "numberId": id }),
    )
    .await
    {
        Ok(_) => {
            let done = notice::query(&state.key, "done", "Marked active.");
            Redirect::see_other(format!("/admin/numbers/{id}?{done}")).into_response()
        }
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

//! Phone numbers: the client's numbers with the calls that reached each
//! this month, finding one by state and rate center or by area code and
//! digits, ordering some for a PBX and releasing one. Each page runs its
//! GraphQL operation as the viewer; plain forms and links, no script.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const NUMBERS: &str = include_str!("../operations/numbers.graphql");
const FIND: &str = include_str!("../operations/find_numbers.graphql");
const ORDER: &str = include_str!("../operations/order_numbers.graphql");
const RELEASE: &str = include_str!("../operations/release_number.graphql");

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

#[derive(Deserialize)]
struct Viewer<T> {
    viewer: ViewerAccount<T>,
}

#[derive(Deserialize)]
struct ViewerAccount<T> {
    account: Option<T>,
}

#[derive(Deserialize)]
struct Formatted {
    formatted: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    id: String,
    e164: String,
    rate_center: String,
    state: String,
    status: String,
    pbx_id: Option<String>,
    monthly_fee: Formatted,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inbound {
    number_id: String,
    calls: i64,
    seconds: i64,
    cost: Formatted,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeldNumbers {
    numbers: Vec<Held>,
    inbound_calls_by_number: Vec<Inbound>,
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

fn status_label(status: &str) -> &'static str {
    match status {
        "ORDERED" => "Being set up",
        "ACTIVE" => "Active",
        "QUARANTINED" => "Released",
        _ => "Available",
    }
}

/// `GET /portal/numbers`: the account's numbers and their inbound calls this month.
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
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let data: Viewer<HeldNumbers> =
        match operations::run(state, &ctx, NUMBERS, serde_json::json!({ "month": month })).await {
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
    Page {
        title: "Phone numbers",
        nav: Nav::ClientNumbers,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Phone numbers" }
        @if let Some(done) = done { div #notice .alert.ok role="status" { (done) } }
        p { a.button.primary href="/portal/numbers/find" { "Find a number" } }
        div.table-wrap {
            table #numbers .stackable {
                caption { "Your numbers, and the calls that reached each this month (UTC)" }
                thead { tr {
                    th scope="col" { "Number" } th scope="col" { "Rate center" } th scope="col" { "PBX" }
                    th scope="col" { "State" } th scope="col" { "Monthly" } th scope="col" { "Inbound calls" }
                    th scope="col" { "Minutes" } th scope="col" { "Cost" } th scope="col" { span.visually-hidden { "Release" } }
                } }
                tbody {
                    @for number in &account.numbers {
                        @let inbound = account.inbound_calls_by_number.iter().find(|i| i.number_id == number.id);
                        tr {
                            td data-label="Number" { (number.e164) }
                            td data-label="Rate center" { (number.rate_center) ", " (number.state) }
                            td data-label="PBX" { @if let Some(pbx) = &number.pbx_id { "#" (pbx) } }
                            td data-label="State" { (status_label(&number.status)) }
                            td data-label="Monthly" { (number.monthly_fee.formatted) }
                            td data-label="Inbound calls" { (inbound.map_or(0, |i| i.calls)) }
                            td data-label="Minutes" { (inbound.map_or(0, |i| (i.seconds + 59) / 60)) }
                            td data-label="Cost" { (inbound.map_or("—", |i| i.cost.formatted.as_str())) }
                            td {
                                form method="post" action={ "/portal/numbers/" (number.id) "/release" } {
                                    (csrf_field(&ctx))
                                    button type="submit" aria-label={ "Release " (number.e164) } { "Release" }
                                }
                            }
                        }
                    }
                    @if account.numbers.is_empty() {
                        tr { td.empty colspan="9" { "No numbers yet." } }
                    }
                }
            }
        }
        p.muted { "A released number's monthly fee stops at the end of the month already paid; the number is then held back for a while before anyone else can have it." }
    })
}

#[derive(Deserialize, Default)]
pub struct FindQuery {
    state: Option<String>,
    rate_center: Option<String>,
    area_code: Option<String>,
    digits: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct StateCount {
    state: String,
    available: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateCenterRow {
    rate_center: String,
    available: i64,
    from_monthly: Option<Formatted>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForSale {
    id: String,
    e164: String,
    rate_center: String,
    state: String,
    city: Option<String>,
    setup_fee: Formatted,
    monthly_fee: Formatted,
}

#[derive(Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumberPage {
    edges: Vec<Edge<ForSale>>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct PbxChoice {
    id: String,
    hostname: Option<String>,
    state: String,
}

#[derive(Deserialize)]
struct Pbxes {
    pbxes: Vec<PbxChoice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Found {
    number_states: Vec<StateCount>,
    number_rate_centers: Option<Vec<RateCenterRow>>,
    available_numbers: Option<NumberPage>,
    viewer: ViewerAccount<Pbxes>,
}

fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The find page's address with these parameters (empty ones left out).
fn find_url(pairs: &[(&str, Option<&str>)]) -> String {
    let given: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(name, value)| value.map(|v| (*name, v)))
        .collect();
    let query = serde_urlencoded::to_string(given).unwrap_or_default();
    format!("/portal/numbers/find?{query}")
}

async fn find_page(
    state: &AppState,
    ctx: &PageContext,
    query: &FindQuery,
    refusal: Option<&str>,
    status: StatusCode,
) -> Response {
    let chosen_state = given(&query.state);
    let rate_center = given(&query.rate_center);
    let area_code = given(&query.area_code);
    let digits = given(&query.digits);
    let searching = rate_center.is_some() || area_code.is_some() || digits.is_some();
    let variables = serde_json::json!({
        "state": chosen_state,
        "rateCenter": rate_center,
        "areaCode": area_code,
        "digits": digits,
        "after": given(&query.after),
        "rateCenterState": chosen_state.unwrap_or(""),
        "withRateCenters": chosen_state.is_some(),
        "withNumbers": searching,
    });
    let (found, search_error): (Option<Found>, Option<String>) =
        match operations::run::<Found>(state, ctx, FIND, variables).await {
            Ok(found) => (Some(found), None),
            Err(error @ OperationError::Refused(_)) => (None, Some(error.message())),
            Err(error) => return error_page(ctx, error.status(), &error.message()),
        };
    let pbxes: Vec<PbxChoice> = found
        .as_ref()
        .and_then(|f| f.viewer.account.as_ref())
        .map(|a| {
            a.pbxes
                .iter()
                .filter(|p| !matches!(p.state.as_str(), "CANCELLED" | "FAILED"))
                .map(|p| PbxChoice {
                    id: p.id.clone(),
                    hostname: p.hostname.clone(),
                    state: p.state.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let here = |after: &str| {
        find_url(&[
            ("state", chosen_state),
            ("rate_center", rate_center),
            ("area_code", area_code),
            ("digits", digits),
            ("after", Some(after)),
        ])
    };
    let page = Page {
        title: "Find a number",
        nav: Nav::ClientNumbers,
        ctx,
    };
    switchboard_web::layout::html_response(
        status,
        page.render(html! {
            p.muted { a href="/portal/numbers" { "Phone numbers" } " › find a number" }
            h1 { "Find a number" }
            @if let Some(refusal) = refusal { div.alert.error role="alert" { (refusal) } }
            @if let Some(error) = &search_error { div.alert.error role="alert" { (error) } }
            form #number-search .inline method="get" action="/portal/numbers/find" {
                label for="area_code" { "Area code" }
                input #area_code name="area_code" type="text" inputmode="numeric" maxlength="3" value=(area_code.unwrap_or(""));
                label for="digits" { "Digits it contains" }
                input #digits name="digits" type="text" inputmode="numeric" maxlength="15" value=(digits.unwrap_or(""));
                button type="submit" { "Search" }
            }
            @if let Some(found) = &found {
                h2 { "By state and rate center" }
                nav aria-label="States" {
                    ul.choices {
                        @for s in &found.number_states {
                            li { a href=(find_url(&[("state", Some(&s.state))])) aria-current=[(chosen_state == Some(s.state.as_str())).then_some("true")] { (s.state) " (" (s.available) ")" } }
                        }
                        @if found.number_states.is_empty() { li { "No numbers are for sale at the moment." } }
                    }
                }
                @if let (Some(chosen), Some(centers)) = (chosen_state, &found.number_rate_centers) {
                    div.table-wrap {
                        table #rate-centers .stackable {
                            caption { "Rate centers in " (chosen) }
                            thead { tr { th scope="col" { "Rate center" } th scope="col" { "Numbers" } th scope="col" { "From, monthly" } } }
                            tbody {
                                @for rc in centers {
                                    tr {
                                        td data-label="Rate center" { a href=(find_url(&[("state", Some(chosen)), ("rate_center", Some(&rc.rate_center))])) { (rc.rate_center) } }
                                        td data-label="Numbers" { (rc.available) }
                                        td data-label="From, monthly" { (rc.from_monthly.as_ref().map_or("—", |m| m.formatted.as_str())) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(numbers) = &found.available_numbers {
                    h2 { "Numbers for sale" }
                    @if numbers.edges.is_empty() {
                        p { "No number matches. Try another rate center or fewer digits." }
                    } @else if pbxes.is_empty() {
                        p { "Numbers are ordered for one of your PBXs; you have none that can take one yet." }
                    } @else {
                        form #order-numbers method="post" action="/portal/numbers/order" {
                            (csrf_field(ctx))
                            input type="hidden" name="request_key" value=(random_token());
                            div.table-wrap {
                                table #for-sale .stackable {
                                    thead { tr { th scope="col" { span.visually-hidden { "Choose" } } th scope="col" { "Number" } th scope="col" { "Rate center" } th scope="col" { "Setup" } th scope="col" { "Monthly" } } }
                                    tbody {
                                        @for edge in &numbers.edges {
                                            @let n = &edge.node;
                                            tr {
                                                td { input type="checkbox" name="number" value=(n.id) id={ "number-" (n.id) }; }
                                                td data-label="Number" { label for={ "number-" (n.id) } { (n.e164) } }
                                                td data-label="Rate center" { (n.rate_center) ", " (n.state) @if let Some(city) = &n.city { " · " (city) } }
                                                td data-label="Setup" { (n.setup_fee.formatted) }
                                                td data-label="Monthly" { (n.monthly_fee.formatted) }
                                            }
                                        }
                                    }
                                }
                            }
                            label for="pbx_id" { "For PBX" }
                            select #pbx_id name="pbx_id" {
                                @for pbx in &pbxes {
                                    option value=(pbx.id) { "#" (pbx.id) @if let Some(host) = &pbx.hostname { " · " (host) } }
                                }
                            }
                            p.muted { "The setup fees and the first month are paid from your balance now; then the monthly fee each month." }
                            button.primary type="submit" { "Order the chosen numbers" }
                        }
                        @if let Some(cursor) = numbers.page_info.end_cursor.as_deref().filter(|_| numbers.page_info.has_next_page) {
                            div.pager { span {} a.button href=(here(cursor)) { "More numbers" } }
                        }
                    }
                }
            }
        }),
    )
}

/// `GET /portal/numbers/find`: states, a state's rate centers, numbers for sale.
#[handler]
pub async fn find(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<FindQuery>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    find_page(state, &ctx, &query, None, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ordered {
    order_numbers: OrderAnswer,
}

#[derive(Deserialize)]
struct OrderAnswer {
    total: Formatted,
    numbers: Vec<E164Only>,
}

#[derive(Deserialize)]
struct E164Only {
    e164: String,
}

/// `POST /portal/numbers/order`: orders the chosen numbers through `orderNumbers`.
#[handler]
pub async fn order(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let numbers: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "number")
        .map(|(_, v)| v.as_str())
        .collect();
    let variables = serde_json::json!({
        "pbxId": field("pbx_id"),
        "numberIds": numbers,
        "requestKey": field("request_key"),
    });
    match operations::run::<Ordered>(state, &ctx, ORDER, variables).await {
        Ok(ordered) => {
            let listed: Vec<&str> = ordered
                .order_numbers
                .numbers
                .iter()
                .map(|n| n.e164.as_str())
                .collect();
            let done = notice::query(
                &state.key,
                "done",
                &format!(
                    "Ordered {} for {}. It is being set up on your PBX.",
                    listed.join(", "),
                    ordered.order_numbers.total.formatted
                ),
            );
            Redirect::see_other(format!("/portal/numbers?{done}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            find_page(
                state,
                &ctx,
                &FindQuery::default(),
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
struct ReleasedAnswer {
    release_number: ReleasedNumber,
}

#[derive(Deserialize)]
struct ReleasedNumber {
    e164: String,
}

/// `POST /portal/numbers/:id/release`: releases a number through `releaseNumber`.
#[handler]
pub async fn release(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match operations::run::<ReleasedAnswer>(
        state,
        &ctx,
        RELEASE,
        serde_json::json!({ "numberId": id }),
    )
    .await
    {
        Ok(released) => {
            let done = notice::query(
                &state.key,
                "done",
                &format!(
                    "Released {}. Its monthly fee stops at the end of the month already paid.",
                    released.release_number.e164
                ),
            );
            Redirect::see_other(format!("/portal/numbers?{done}")).into_response()
        }
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

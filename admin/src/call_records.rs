//! `/admin/calls`: the call records that need a person — calls that should
//! cost money and matched no rate, and records that could not be read.

use chrono::{DateTime, Utc};
use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page};
use switchboard_web::{notice, operations};
use switchboard_web::{AppState, Nav, Page};

use crate::{Connection, Formatted};

const CALL_RECORDS: &str = include_str!("../operations/call_records.graphql");
const PRICE_UNRATED: &str = include_str!("../operations/price_unrated.graphql");

/// How much of a set-aside record the list shows.
const RAW_SHOWN: usize = 160;

#[derive(Deserialize, Default)]
pub struct CallRecordsQuery {
    unrated_after: Option<String>,
    rejects_after: Option<String>,
    /// What the last pricing did, to show once, and the server's tag on it.
    priced: Option<String>,
    priced_sig: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Records {
    unrated_calls: Connection<Unrated>,
    cdr_rejects: Connection<Rejected>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Unrated {
    id: String,
    pbx_id: String,
    account_id: String,
    start: DateTime<Utc>,
    from: String,
    to: String,
    direction: String,
    billsec: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rejected {
    id: String,
    pbx_id: String,
    account_id: String,
    source: String,
    raw: String,
    reason: String,
    received_at: DateTime<Utc>,
}

fn shortened(raw: &str) -> String {
    match raw.char_indices().nth(RAW_SHOWN) {
        Some((at, _)) => format!("{}…", &raw[..at]),
        None => raw.to_owned(),
    }
}

/// `GET /admin/calls`: unrated calls and set-aside records, newest first.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<CallRecordsQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({
        "unratedAfter": query.unrated_after,
        "rejectsAfter": query.rejects_after,
    });
    let data: Records = match operations::run(state, &ctx, CALL_RECORDS, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    let mut pbxes: Vec<&str> = data
        .unrated_calls
        .edges
        .iter()
        .map(|e| e.node.pbx_id.as_str())
        .collect();
    pbxes.sort_by_key(|p| p.parse::<i64>().unwrap_or(0));
    pbxes.dedup();
    Page {
        title: "Call records",
        nav: Nav::StaffCallRecords,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "Call records to look at" }
        @if let Some(priced) = notice::read(&state.key, "priced", query.priced.as_deref(), query.priced_sig.as_deref()) {
            div #notice .alert.ok role="status" { (priced) }
        }
        h2 { "Unrated calls" }
        p.muted { "Answered calls that should cost money and matched no rate of their PBX's calling plan when they started. The client sees them as pending; nothing has been charged for them." }
        @if ctx.role() == Some(Role::Admin) && !pbxes.is_empty() {
            p.muted { "Once the calling plan has a rate for these destinations, price them with today's rates; calls that still match none stay here." }
            @for pbx in &pbxes {
                form.inline method="post" action="/admin/calls/price" {
                    (csrf_field(&ctx))
                    input type="hidden" name="pbx_id" value=(pbx);
                    button.primary type="submit" { "Price PBX #" (pbx) "'s calls at today's rates" }
                }
            }
        }
        div.table-wrap {
            table #unrated {
                thead { tr { th { "#" } th { "Started (UTC)" } th { "Account" } th { "PBX" } th { "From" } th { "To" } th { "Direction" } th.num { "Seconds" } } }
                tbody {
                    @for edge in &data.unrated_calls.edges {
                        @let call = &edge.node;
                        tr {
                            td.muted { (call.id) }
                            td { (call.start.format("%Y-%m-%d %H:%M:%S")) }
                            td { (call.account_id) }
                            td { (call.pbx_id) }
                            td { (call.from) }
                            td { code { (call.to) } }
                            td { (call.direction) }
                            td.num { (call.billsec) }
                        }
                    }
                    @if data.unrated_calls.edges.is_empty() { tr { td.empty colspan="8" { "Every call that should cost money found its rate." } } }
                }
            }
        }
        @if let Some(next) = data.unrated_calls.next() {
            div.pager { span {} a.button href={ "/admin/calls?unrated_after=" (next) } { "Older unrated calls" } }
        }
        h2 { "Records set aside" }
        p.muted { "Lines and records that could not be read as CDRs, kept as they arrived with the reason; the rest of their batch was stored." }
        div.table-wrap {
            table #rejects {
                thead { tr { th { "#" } th { "Received (UTC)" } th { "Account" } th { "PBX" } th { "Source" } th { "Reason" } th { "As received" } } }
                tbody {
                    @for edge in &data.cdr_rejects.edges {
                        @let reject = &edge.node;
                        tr {
                            td.muted { (reject.id) }
                            td { (reject.received_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (reject.account_id) }
                            td { (reject.pbx_id) }
                            td { (reject.source) }
                            td.negative { (reject.reason) }
                            td { code title=(reject.raw) { (shortened(&reject.raw)) } }
                        }
                    }
                    @if data.cdr_rejects.edges.is_empty() { tr { td.empty colspan="7" { "No records set aside." } } }
                }
            }
        }
        @if let Some(next) = data.cdr_rejects.next() {
            div.pager { span {} a.button href={ "/admin/calls?rejects_after=" (next) } { "Older records" } }
        }
    })
}

#[derive(Deserialize)]
pub struct PriceForm {
    pbx_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PricedData {
    price_unrated_calls: Priced,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Priced {
    priced: i32,
    still_unrated: i32,
    billed: Formatted,
}

/// `POST /admin/calls/price`: `priceUnratedCalls` for one PBX.
#[handler]
pub async fn price(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<PriceForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "pbxId": form.pbx_id });
    match operations::run::<PricedData>(state, &ctx, PRICE_UNRATED, variables).await {
        Ok(data) => {
            let done = data.price_unrated_calls;
            let said = format!(
                "PBX #{}: {} calls priced, {} billed; {} still match no rate.",
                form.pbx_id, done.priced, done.billed.formatted, done.still_unrated
            );
            let query = notice::query(&state.key, "priced", &said);
            Redirect::see_other(format!("/admin/calls?{query}")).into_response()
        }
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

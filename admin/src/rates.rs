//! The staff's calling plans: rates in force, and importing a price list
//! with a preview before anything changes.

use maud::{html, Markup};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response};
use switchboard_web::notice;
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{AppState, Nav, Page, PageContext};

use crate::Formatted;

const PLANS: &str = include_str!("../operations/calling_plans.graphql");
const PLAN: &str = include_str!("../operations/calling_plan.graphql");
const PREVIEW: &str = include_str!("../operations/preview_rates.graphql");
const IMPORT: &str = include_str!("../operations/import_rates.graphql");
const CREATE: &str = include_str!("../operations/create_calling_plan.graphql");
const HISTORY: &str = include_str!("../operations/rate_history.graphql");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlansData {
    calling_plans: Vec<PlanSummary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanSummary {
    id: String,
    name: String,
    currency: String,
    rate_count: i32,
    inbound_per_minute: Option<Formatted>,
}

/// `GET /admin/calling-plans`
#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let data: PlansData = match operations::run(state, &ctx, PLANS, serde_json::json!({})).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &error.message()),
    };
    Page { title: "Calling plans", nav: Nav::StaffRates, ctx: &ctx }.respond(html! {
        h1 { "Calling plans" }
        div.table-wrap {
            table #calling-plans {
                thead { tr { th { "Name" } th { "Currency" } th.num { "Rates in force" } th.num { "Inbound a minute" } } }
                tbody {
                    @for plan in &data.calling_plans {
                        tr {
                            td { a href={ "/admin/calling-plans/" (plan.id) } { (plan.name) } }
                            td { (plan.currency) }
                            td.num { (plan.rate_count) }
                            td.num { (plan.inbound_per_minute.as_ref().map(|m| m.formatted.as_str()).unwrap_or("free")) }
                        }
                    }
                    @if data.calling_plans.is_empty() { tr { td.empty colspan="4" { "No calling plans yet." } } }
                }
            }
        }
        @if ctx.role() == Some(Role::Admin) {
            h2 { "Add a calling plan" }
            form.inline method="post" action="/admin/calling-plans" {
                (csrf_field(&ctx))
                div { label.muted for="name" { "Name" } input #name type="text" name="name" required; }
                div { label.muted for="currency" { "Currency" } input #currency type="text" name="currency" value="USD"; }
                button.primary type="submit" { "Add" }
            }
        }
    })
}

#[derive(Deserialize)]
pub struct NewPlanForm {
    name: String,
    currency: String,
}

/// `POST /admin/calling-plans`
#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<NewPlanForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        create_calling_plan: Id,
    }
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let variables = serde_json::json!({ "name": form.name, "currency": form.currency });
    match operations::run::<Created>(state, &ctx, CREATE, variables).await {
        Ok(created) => Redirect::see_other(format!(
            "/admin/calling-plans/{}",
            created.create_calling_plan.id
        ))
        .into_response(),
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanData {
    calling_plan: Plan,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    id: String,
    name: String,
    currency: String,
    rate_count: i32,
    rates: Vec<Rate>,
    plans: Vec<UsedByPlan>,
    accounts: Vec<UsedByAccount>,
}

#[derive(Deserialize)]
struct UsedByPlan {
    name: String,
}

#[derive(Deserialize)]
struct UsedByAccount {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rate {
    prefix: String,
    description: String,
    per_minute: Exact,
    connection_fee: Exact,
    initial_increment: i32,
    subsequent_increment: i32,
    minimum_duration: i32,
    effective_from: chrono::DateTime<chrono::Utc>,
    /// Only in a history: this version took the prefix out.
    #[serde(default)]
    removed: bool,
}

/// An amount for people, and where asked for, exactly.
#[derive(Deserialize)]
struct Exact {
    formatted: String,
    /// A per-minute price's exact decimal.
    #[serde(default)]
    amount: Option<String>,
    /// Money's exact micro-units.
    #[serde(default)]
    micros: Option<String>,
}

#[derive(Deserialize)]
struct HistoryData {
    #[serde(rename = "callingPlan")]
    calling_plan: HistoryOf,
}

#[derive(Deserialize)]
struct HistoryOf {
    history: Vec<Rate>,
}

#[derive(Deserialize, Default)]
pub struct PlanQuery {
    prefix: Option<String>,
    /// A prefix whose every version to show.
    history: Option<String>,
    imported: Option<String>,
    imported_sig: Option<String>,
    /// A prefix whose rate to change in place.
    edit: Option<String>,
}

/// What the import form holds.
#[derive(Deserialize, Default)]
pub struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    replace: Option<String>,
    #[serde(default)]
    effective_at: String,
    /// Present once the staff member has seen the preview and confirms.
    #[serde(default)]
    confirm: Option<String>,
    /// What the preview was of (a digest of the text and the choices): a
    /// form changed after its preview is previewed again, never imported.
    #[serde(default)]
    previewed: String,
}

impl ImportForm {
    /// A digest of what an import of this form would do.
    fn digest(&self) -> String {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for part in [
            self.csv.as_str(),
            if self.replace.is_some() {
                "replace"
            } else {
                "keep"
            },
            self.effective_at.trim(),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(hash.finalize())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviewData {
    preview_rate_import: Preview,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preview {
    summary: Summary,
    format: String,
    columns: Vec<ColumnRead>,
    not_in_file: Vec<String>,
    unknown_columns: Vec<String>,
    added: Vec<AddedRate>,
    changed: Vec<ChangedRate>,
    removed: Vec<RemovedRate>,
    error_count: i32,
    errors: Vec<RowError>,
}

#[derive(Deserialize)]
struct ColumnRead {
    header: String,
    meaning: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddedRate {
    line: i32,
    prefix: String,
    description: String,
    per_minute: Formatted,
    connection_fee: Formatted,
    initial_increment: i32,
    subsequent_increment: i32,
    minimum_duration: i32,
}

#[derive(Deserialize)]
struct ChangedRate {
    line: i32,
    prefix: String,
    changes: Vec<FieldChange>,
}

#[derive(Deserialize)]
struct FieldChange {
    field: String,
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct RemovedRate {
    prefix: String,
    description: String,
}

#[derive(Deserialize)]
struct Summary {
    added: i32,
    changed: i32,
    removed: i32,
    unchanged: i32,
}

#[derive(Deserialize)]
struct RowError {
    line: i32,
    column: String,
    reason: String,
}

#[allow(clippy::too_many_arguments)]
async fn plan_page(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    shown: &PlanQuery,
    form: &ImportForm,
    preview: Option<&Preview>,
    notice: Option<&str>,
    rate_error: Option<&str>,
) -> Response {
    let prefix = shown.prefix.clone();
    let variables = serde_json::json!({ "id": id, "prefix": prefix });
    let data: PlanData = match operations::run(state, ctx, PLAN, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
    };
    let plan = data.calling_plan;
    let is_admin = ctx.role() == Some(Role::Admin);
    let editing = shown.edit.clone().filter(|p| !p.trim().is_empty());
    let history = match shown.history.clone().filter(|p| !p.trim().is_empty()) {
        Some(of) => {
            let variables = serde_json::json!({ "id": id, "prefix": of.trim() });
            match operations::run::<HistoryData>(state, ctx, HISTORY, variables).await {
                Ok(data) => Some((of, data.calling_plan.history)),
                Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
            }
        }
        None => None,
    };
    let page = Page {
        title: &plan.name,
        nav: Nav::StaffRates,
        ctx,
    };
    let head = html! { script src="/static/rate-import.js" defer {} };
    html_response(StatusCode::OK, page.render_app_like(head, html! {
        h1 { (plan.name) }
        @if let Some(notice) = notice { div #notice .alert.ok role="status" { (notice) } }
        p.muted { (plan.rate_count) " rates in force." }
        form.inline method="get" action={ "/admin/calling-plans/" (plan.id) } {
            div { label.muted for="prefix" { "Prefix starts with" } input #prefix type="search" name="prefix" value=(prefix.clone().unwrap_or_default()); }
            button.primary type="submit" { "Show" }
        }
        div.table-wrap {
            table #rates {
                thead { tr { th { "Prefix" } th { "Destination" } th.num { "A minute" } th.num { "Connection" } th.num { "Increments" } th.num { "Minimum" } th { "Since (UTC)" } } }
                tbody {
                    @for rate in &plan.rates {
                        @if is_admin && editing.as_deref() == Some(rate.prefix.as_str()) {
                            tr #edit-rate {
                                td colspan="7" { (rate_form(ctx, &plan.id, &plan.currency, rate, rate_error)) }
                            }
                        } @else {
                            tr {
                                td { a href={ "/admin/calling-plans/" (plan.id) "?" (history_query(&rate.prefix)) "#history" } title="Every version of this rate" { code { (rate.prefix) } } }
                                td { (rate.description) }
                                td.num { (rate.per_minute.formatted) }
                                td.num { (rate.connection_fee.formatted) }
                                td.num { (rate.initial_increment) "/" (rate.subsequent_increment) }
                                td.num { (rate.minimum_duration) " s" }
                                td {
                                    (rate.effective_from.format("%Y-%m-%d %H:%M"))
                                    @if is_admin { " " a.edit href={ "/admin/calling-plans/" (plan.id) "?" (edit_query(&rate.prefix)) "#edit-rate" } aria-label={ "Change the rate of " (rate.prefix) } { "Change" } }
                                }
                            }
                        }
                    }
                    @if plan.rates.is_empty() { tr { td.empty colspan="7" { "No rates." } } }
                }
            }
        }
        h2 #used-by { "Used by" }
        p #used-by-plans {
            @if plan.plans.is_empty() { "No plan on sale bills with it." } @else {
                "Plans: "
                @for (n, p) in plan.plans.iter().enumerate() { @if n > 0 { ", " } (p.name) }
                "."
            }
        }
        p #used-by-accounts {
            @if plan.accounts.is_empty() { "No account's calls are priced with it." } @else {
                "Accounts whose calls it prices: "
                @for (n, a) in plan.accounts.iter().enumerate() { @if n > 0 { ", " } a href={ "/admin/accounts/" (a.id) } { (a.name) } }
                @if plan.accounts.len() == 50 { " and perhaps more" }
                "."
            }
        }
        @if let Some((of, versions)) = &history {
            h2 #history { "Every version of " code { (of) } }
            p.muted { "Each version applies to calls that started from its time until the next one; a call keeps the version it was rated with." }
            div.table-wrap {
                table #rate-history {
                    thead { tr { th { "From (UTC)" } th { "Destination" } th.num { "A minute" } th.num { "Connection" } th.num { "Increments" } th.num { "Minimum" } } }
                    tbody {
                        @for rate in versions {
                            tr {
                                td { (rate.effective_from.format("%Y-%m-%d %H:%M")) }
                                @if rate.removed {
                                    td colspan="5" { span.badge.off { "removed" } " calls to this prefix match a shorter one, or none" }
                                } @else {
                                    td { (rate.description) }
                                    td.num { (rate.per_minute.formatted) }
                                    td.num { (rate.connection_fee.formatted) }
                                    td.num { (rate.initial_increment) "/" (rate.subsequent_increment) }
                                    td.num { (rate.minimum_duration) " s" }
                                }
                            }
                        }
                        @if versions.is_empty() { tr { td.empty colspan="6" { "This prefix has never had a rate here." } } }
                    }
                }
            }
        }
        @if ctx.role() == Some(Role::Admin) {
            h2 { "Import a price list" }
            p.muted { "Our export, A2Billing's (dialprefix, rateinitial, initblock, billingblock, connectcharge) or ASTPP's (Code, Cost/Min, Increment …) columns, separated by commas or semicolons. Nothing changes until you confirm the preview." }
            @if let Some(preview) = preview {
                (preview_card(preview))
            }
            form #rate-import .stack.card method="post" action={ "/admin/calling-plans/" (plan.id) "/import" } {
                (csrf_field(ctx))
                label for="csv-file" hidden { "A price list file" }
                input #csv-file type="file" accept=".csv,.txt,text/csv,text/plain" hidden;
                label for="csv" { "The file's text" }
                textarea #csv name="csv" rows="10" spellcheck="false" { (form.csv) }
                label for="effective_at" { "Takes effect " span.hint { "(UTC, e.g. 2026-12-01T00:00:00Z; empty: now)" } }
                input #effective_at type="text" name="effective_at" value=(form.effective_at);
                label.checkbox for="replace" {
                    input #replace type="checkbox" name="replace" value="yes" checked[form.replace.is_some()];
                    " The file is the whole price list: remove the prefixes it does not name"
                }
                progress #import-progress hidden {}
                p #import-status .muted role="status" aria-live="polite" {}
                @if preview.is_some_and(|p| p.error_count == 0) {
                    input type="hidden" name="confirm" value="yes";
                    input type="hidden" name="previewed" value=(form.digest());
                    p.muted { "Change anything above and you will see a new preview first." }
                    button.primary type="submit" { "Import these rates" }
                } @else {
                    button.primary type="submit" { "Preview" }
                }
            }
        }
    }))
}

/// `GET /admin/calling-plans/:id`
#[handler]
pub async fn show(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(query): Query<PlanQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let notice = notice::read(
        &state.key,
        "imported",
        query.imported.as_deref(),
        query.imported_sig.as_deref(),
    )
    .map(|summary| format!("Imported: {summary}."));
    plan_page(
        state,
        &ctx,
        &id,
        &query,
        &ImportForm::default(),
        None,
        notice.as_deref(),
        None,
    )
    .await
}

/// `POST /admin/calling-plans/:id/import`: previews, then on confirmation imports.
#[handler]
pub async fn import(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<ImportForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let effective_at = Some(form.effective_at.trim()).filter(|t| !t.is_empty());
    let input = serde_json::json!({
        "callingPlanId": id,
        "csv": form.csv,
        "replace": form.replace.is_some(),
        "effectiveAt": effective_at,
    });
    // Only what was previewed is imported: a form changed since its preview
    // (another file, removal ticked) is previewed again.
    if form.confirm.is_some() && form.previewed == form.digest() {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Imported {
            import_rates: Summary,
        }
        return match operations::run::<Imported>(
            state,
            &ctx,
            IMPORT,
            serde_json::json!({ "input": input }),
        )
        .await
        {
            Ok(done) => {
                let s = done.import_rates;
                let summary = format!(
                    "{} added, {} changed, {} removed",
                    s.added, s.changed, s.removed
                );
                let query = notice::query(&state.key, "imported", &summary);
                Redirect::see_other(format!("/admin/calling-plans/{id}?{query}")).into_response()
            }
            Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
        };
    }
    match operations::run::<PreviewData>(
        state,
        &ctx,
        PREVIEW,
        serde_json::json!({ "input": input }),
    )
    .await
    {
        Ok(data) => {
            plan_page(
                state,
                &ctx,
                &id,
                &PlanQuery::default(),
                &form,
                Some(&data.preview_rate_import),
                None,
                None,
            )
            .await
        }
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

/// What an import would do: how many prefixes are added, changed and
/// (loudly) removed, which columns were read and which not, every field
/// that changes, and every bad row.
fn preview_card(preview: &Preview) -> Markup {
    let s = &preview.summary;
    html! {
        div #preview .card {
            h2 { "Preview" }
            p #preview-summary { (s.added) " added, " (s.changed) " changed, " (s.removed) " removed, " (s.unchanged) " unchanged." }
            @if s.removed > 0 {
                div #removal-warning .alert.error role="alert" {
                    strong { (s.removed) " prefixes will be removed" }
                    " from this calling plan: calls to them will be priced by a shorter prefix, or stay unrated. Untick “remove the prefixes it does not name” unless the file is the whole price list."
                }
            }
            @if preview.error_count > 0 {
                div.alert.error role="alert" { (preview.error_count) " rows cannot be imported; fix them and preview again. Nothing was changed." }
                div.table-wrap {
                    table #import-errors {
                        thead { tr { th.num { "Line" } th { "Column" } th { "Reason" } } }
                        tbody { @for e in &preview.errors { tr { td.num { (e.line) } td { (e.column) } td { (e.reason) } } } }
                    }
                }
            }
            p.muted {
                "Read as "
                (match preview.format.as_str() { "a2billing" => "A2Billing's", "astpp" => "ASTPP's", _ => "our own" })
                " columns: "
                @for (n, c) in preview.columns.iter().enumerate() {
                    @if n > 0 { ", " }
                    code { (c.header) } " (" (c.meaning) ")"
                }
                "."
            }
            @if !preview.not_in_file.is_empty() {
                p #not-in-file {
                    "Not in the file: " (preview.not_in_file.join(", "))
                    ". Prefixes already here keep their current value; new prefixes get the default (no connection fee, 60/60 seconds, no minimum)."
                }
            }
            @if !preview.unknown_columns.is_empty() {
                div #unknown-columns .alert.warn role="status" {
                    "These columns are not read: "
                    @for (n, c) in preview.unknown_columns.iter().enumerate() {
                        @if n > 0 { ", " }
                        code { (c) }
                    }
                    "."
                }
            }
            @if !preview.changed.is_empty() {
                h3 { "Changed" @if s.changed > 50 { " (the first 50)" } }
                div.table-wrap {
                    table #changed-rates {
                        thead { tr { th.num { "Line" } th { "Prefix" } th { "What changes" } } }
                        tbody {
                            @for c in &preview.changed {
                                tr {
                                    td.num { (c.line) }
                                    td { code { (c.prefix) } }
                                    td { @for (n, f) in c.changes.iter().enumerate() {
                                        @if n > 0 { br; }
                                        (f.field) ": " (f.from) " → " strong { (f.to) }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            @if !preview.added.is_empty() {
                h3 { "Added" @if s.added > 50 { " (the first 50)" } }
                div.table-wrap {
                    table #added-rates {
                        thead { tr { th.num { "Line" } th { "Prefix" } th { "Destination" } th.num { "A minute" } th.num { "Connection" } th.num { "Increments" } th.num { "Minimum" } } }
                        tbody {
                            @for a in &preview.added {
                                tr {
                                    td.num { (a.line) }
                                    td { code { (a.prefix) } }
                                    td { (a.description) }
                                    td.num { (a.per_minute.formatted) }
                                    td.num { (a.connection_fee.formatted) }
                                    td.num { (a.initial_increment) "/" (a.subsequent_increment) }
                                    td.num { (a.minimum_duration) " s" }
                                }
                            }
                        }
                    }
                }
            }
            @if !preview.removed.is_empty() {
                h3 { "Removed" @if s.removed > 50 { " (the first 50)" } }
                ul #removed-rates { @for r in &preview.removed { li { code { (r.prefix) } " " (r.description) } } }
            }
        }
    }
}

fn history_query(prefix: &str) -> String {
    serde_urlencoded::to_string([("history", prefix)]).unwrap_or_default()
}

fn edit_query(prefix: &str) -> String {
    serde_urlencoded::to_string([("edit", prefix)]).unwrap_or_default()
}

/// The form that changes one rate, in its row.
fn rate_form(
    ctx: &PageContext,
    plan: &str,
    currency: &str,
    rate: &Rate,
    error: Option<&str>,
) -> Markup {
    let per_minute = rate.per_minute.amount.clone().unwrap_or_default();
    let connection_fee = rate
        .connection_fee
        .micros
        .as_deref()
        .and_then(|m| m.parse::<i64>().ok())
        .map(|m| format!("{}.{:06}", m / 1_000_000, m % 1_000_000))
        .unwrap_or_default();
    html! {
        form #rate-form .inline method="post" action={ "/admin/calling-plans/" (plan) "/rates" } {
            (csrf_field(ctx))
            input type="hidden" name="prefix" value=(rate.prefix);
            div { span.muted { "Prefix" } br; code { (rate.prefix) } }
            div { label.muted for="rate-description" { "Destination" } input #rate-description type="text" name="description" value=(rate.description); }
            div { label.muted for="rate-per-minute" { "A minute (" (currency) ")" } input #rate-per-minute type="text" inputmode="decimal" name="per_minute" value=(per_minute) required size="10"; }
            div { label.muted for="rate-connection" { "Connection" } input #rate-connection type="text" inputmode="decimal" name="connection_fee" value=(connection_fee) size="6"; }
            div { label.muted for="rate-initial" { "First block (s)" } input #rate-initial type="number" min="1" max="3600" name="initial_increment" value=(rate.initial_increment) size="4"; }
            div { label.muted for="rate-subsequent" { "Next blocks (s)" } input #rate-subsequent type="number" min="1" max="3600" name="subsequent_increment" value=(rate.subsequent_increment) size="4"; }
            div { label.muted for="rate-minimum" { "Minimum (s)" } input #rate-minimum type="number" min="0" max="3600" name="minimum_duration" value=(rate.minimum_duration) size="4"; }
            div { label.muted for="rate-effective" { "Takes effect (UTC; empty: now)" } input #rate-effective type="text" name="effective_at" placeholder="2026-12-01T00:00:00Z" size="20"; }
            button.primary type="submit" { "Save as a new version" }
            a href={ "/admin/calling-plans/" (plan) } { "Cancel" }
            @if let Some(error) = error { div.field-error role="alert" { (error) } }
        }
    }
}

/// One rate as the inline form sends it.
#[derive(Deserialize)]
pub struct RateForm {
    prefix: String,
    #[serde(default)]
    description: String,
    per_minute: String,
    #[serde(default)]
    connection_fee: String,
    #[serde(default)]
    initial_increment: String,
    #[serde(default)]
    subsequent_increment: String,
    #[serde(default)]
    minimum_duration: String,
    #[serde(default)]
    effective_at: String,
}

const SET_RATE: &str =
    "mutation SetRate($input: RateInput!) { setRate(input: $input) { prefix effectiveFrom } }";

/// `POST /admin/calling-plans/:id/rates`: a new version of one rate.
#[handler]
pub async fn set_rate(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<RateForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let seconds = |text: &str| text.trim().parse::<i32>().ok();
    let effective_at = Some(form.effective_at.trim()).filter(|t| !t.is_empty());
    let input = serde_json::json!({
        "callingPlanId": id,
        "prefix": form.prefix,
        "description": form.description,
        "perMinute": form.per_minute,
        "connectionFee": Some(form.connection_fee.trim()).filter(|t| !t.is_empty()),
        "initialIncrement": seconds(&form.initial_increment),
        "subsequentIncrement": seconds(&form.subsequent_increment),
        "minimumDuration": seconds(&form.minimum_duration),
        "effectiveAt": effective_at,
    });
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        SET_RATE,
        serde_json::json!({ "input": input }),
    )
    .await
    {
        Ok(_) => {
            let summary = format!("1 added or changed ({})", form.prefix.trim());
            let query = notice::query(&state.key, "imported", &summary);
            Redirect::see_other(format!("/admin/calling-plans/{id}?{query}")).into_response()
        }
        Err(error @ (OperationError::Refused(_) | OperationError::Invalid(_))) => {
            let shown = PlanQuery {
                edit: Some(form.prefix.clone()),
                ..PlanQuery::default()
            };
            let mut page = plan_page(
                state,
                &ctx,
                &id,
                &shown,
                &ImportForm::default(),
                None,
                None,
                Some(&error.message()),
            )
            .await;
            if page.status().is_success() {
                page.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            }
            page
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

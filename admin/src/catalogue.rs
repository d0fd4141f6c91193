//! The staff's plan catalogue and PBX list.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{AppState, Nav, Page, PageContext};

const PLANS: &str = include_str!("../operations/plans.graphql");
const CREATE_PLAN: &str = include_str!("../operations/save_plan.graphql");
const UPDATE_PLAN: &str = include_str!("../operations/update_plan.graphql");
const PBXES: &str = include_str!("../operations/pbxes.graphql");
const RETRY: &str = include_str!("../operations/retry_provisioning.graphql");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlansData {
    all_plans: Vec<Plan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    id: String,
    slug: String,
    name: String,
    description: String,
    included_extensions: i32,
    active: bool,
    position: i32,
    setup_fee: Amount,
    monthly_fee: Amount,
}

#[derive(Deserialize)]
struct Amount {
    micros: String,
    formatted: String,
    #[serde(default)]
    currency: String,
}

/// Micro-units as the decimal a person would type.
pub(crate) fn decimal(micros: &str) -> String {
    let value: i64 = micros.parse().unwrap_or_default();
    let text = format!("{}.{:06}", value / 1_000_000, (value % 1_000_000).abs());
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The plan form's fields.
#[derive(Deserialize, Default)]
pub struct PlanForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    setup_fee: String,
    #[serde(default)]
    monthly_fee: String,
    #[serde(default)]
    included_extensions: String,
    #[serde(default)]
    position: String,
    active: Option<String>,
}

fn catalogue_page(
    ctx: &PageContext,
    plans: &[Plan],
    form: &PlanForm,
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
    Page {
        title: "Plans",
        nav: Nav::StaffPlans,
        ctx,
    }
    .render(html! {
        h1 { "Plans" }
        @if let Some(notice) = notice { div.alert.ok role="status" { (notice) } }
        div.table-wrap {
            table #plans {
                thead { tr { th { "Plan" } th { "Slug" } th.num { "Extensions" } th.num { "Setup" } th.num { "Monthly" } th { "On sale" } th {} } }
                tbody {
                    @for plan in plans {
                        tr {
                            td { strong { (plan.name) } br; span.muted { (plan.description) } }
                            td { code { (plan.slug) } }
                            td.num { (plan.included_extensions) }
                            td.num { (plan.setup_fee.formatted) }
                            td.num { (plan.monthly_fee.formatted) }
                            td { @if plan.active { span.badge.good { "yes" } } @else { span.badge { "hidden" } } }
                            td { @if ctx.role() == Some(Role::Admin) { a href={ "/admin/plans?edit=" (plan.id) } { "Edit" } } }
                        }
                    }
                    @if plans.is_empty() { tr { td.empty colspan="7" { "No plans yet." } } }
                }
            }
        }
        @if ctx.role() != Some(Role::Admin) {
            p.muted { "Admins add and change plans." }
        } @else {
        h2 { @if form.id.is_empty() { "Add a plan" } @else { "Edit " (form.name) } }
        form.stack.card method="post" action="/admin/plans" {
            (csrf_field(ctx))
            input type="hidden" name="id" value=(form.id);
            @if !errors.is_empty() { div.alert.error role="alert" { "Please correct the fields marked below." } }
            (field("name", "Name", form.name.as_str(), None))
            (field("slug", "Slug", form.slug.as_str(), Some("(the plan's address: lower-case letters, digits, -)")))
            (field("description", "Description", form.description.as_str(), None))
            (field("currency", "Currency", form.currency.as_str(), None))
            (field("setup_fee", "Setup fee", form.setup_fee.as_str(), None))
            (field("monthly_fee", "Monthly fee", form.monthly_fee.as_str(), None))
            (field("included_extensions", "Extensions included", form.included_extensions.as_str(), None))
            (field("position", "Position", form.position.as_str(), Some("(lower comes first)")))
            label.checkbox for="active" {
                input #active type="checkbox" name="active" value="yes" checked[form.active.is_some()];
                " On sale"
            }
            button.primary type="submit" { @if form.id.is_empty() { "Add plan" } @else { "Save plan" } }
        }
        }
    })
}

#[derive(Deserialize)]
pub struct PlansQuery {
    edit: Option<String>,
    saved: Option<String>,
}

async fn load_plans(state: &AppState, ctx: &PageContext) -> Result<Vec<Plan>, Response> {
    operations::run::<PlansData>(state, ctx, PLANS, serde_json::json!({}))
        .await
        .map(|d| d.all_plans)
        .map_err(|e| error_page(ctx, StatusCode::INTERNAL_SERVER_ERROR, &e.message()))
}

/// `GET /admin/plans`: the catalogue, with a form to add or edit a plan.
#[handler]
pub async fn plans_list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<PlansQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let plans = match load_plans(state, &ctx).await {
        Ok(plans) => plans,
        Err(response) => return response,
    };
    let form = match plans.iter().find(|p| Some(&p.id) == query.edit.as_ref()) {
        Some(plan) => PlanForm {
            id: plan.id.clone(),
            slug: plan.slug.clone(),
            name: plan.name.clone(),
            description: plan.description.clone(),
            currency: plan.setup_fee.currency.clone(),
            setup_fee: decimal(&plan.setup_fee.micros),
            monthly_fee: decimal(&plan.monthly_fee.micros),
            included_extensions: plan.included_extensions.to_string(),
            position: plan.position.to_string(),
            active: plan.active.then(|| "yes".into()),
        },
        None => PlanForm {
            currency: "USD".into(),
            included_extensions: "5".into(),
            position: "0".into(),
            active: Some("yes".into()),
            ..PlanForm::default()
        },
    };
    let notice = query.saved.map(|_| "The plan was saved.");
    html_response(
        StatusCode::OK,
        catalogue_page(&ctx, &plans, &form, &[], notice),
    )
}

/// `POST /admin/plans`: `createPlan` or `updatePlan`.
#[handler]
pub async fn save_plan(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<PlanForm>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let input = serde_json::json!({
        "slug": form.slug,
        "name": form.name,
        "description": form.description,
        "currency": form.currency,
        "setupFee": form.setup_fee,
        "monthlyFee": form.monthly_fee,
        "includedExtensions": form.included_extensions.trim().parse::<i32>().unwrap_or(0),
        "active": form.active.is_some(),
        "position": form.position.trim().parse::<i32>().unwrap_or(0),
    });
    let result = if form.id.is_empty() {
        operations::run::<serde_json::Value>(
            state,
            &ctx,
            CREATE_PLAN,
            serde_json::json!({ "input": input }),
        )
        .await
    } else {
        operations::run::<serde_json::Value>(
            state,
            &ctx,
            UPDATE_PLAN,
            serde_json::json!({ "id": form.id, "input": input }),
        )
        .await
    };
    match result {
        Ok(_) => Redirect::see_other("/admin/plans?saved=1").into_response(),
        Err(OperationError::Invalid(errors)) => {
            let plans = match load_plans(state, &ctx).await {
                Ok(plans) => plans,
                Err(response) => return response,
            };
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                catalogue_page(&ctx, &plans, &form, &errors, None),
            )
        }
        Err(error) => error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbxesData {
    pbxes: crate::Connection<Pbx>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pbx {
    id: String,
    label: String,
    account: PbxAccount,
    state: String,
    hostname: Option<String>,
    last_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
struct PbxAccount {
    id: String,
    name: String,
}

#[derive(Deserialize)]
pub struct PbxesQuery {
    state: Option<String>,
    after: Option<String>,
}

const PBX_STATES: &[&str] = &[
    "PROVISIONING",
    "ACTIVE",
    "CALLING_SUSPENDED",
    "POWERED_OFF",
    "FAILED",
    "CANCELLED",
];

/// `GET /admin/pbxes`: every PBX; failed ones can be retried.
#[handler]
pub async fn pbxes_list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<PbxesQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let filter = query.state.filter(|s| PBX_STATES.contains(&s.as_str()));
    let variables = serde_json::json!({ "state": filter, "after": query.after });
    let data: PbxesData = match operations::run(state, &ctx, PBXES, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::BAD_REQUEST, &error.message()),
    };
    let next = data.pbxes.next();
    Page {
        title: "PBXs",
        nav: Nav::StaffPbxes,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { "PBXs" }
        form.inline method="get" action="/admin/pbxes" {
            div {
                label.muted for="state" { "State" }
                select #state name="state" {
                    option value="" { "Any" }
                    @for s in PBX_STATES {
                        option value=(s) selected[filter.as_deref() == Some(*s)] { (s.to_lowercase().replace('_', " ")) }
                    }
                }
            }
            button.primary type="submit" { "Filter" }
        }
        div.table-wrap {
            table #pbxes {
                thead { tr { th { "PBX" } th { "Account" } th { "Address" } th { "State" } th { "Created (UTC)" } th {} } }
                tbody {
                    @for edge in &data.pbxes.edges {
                        @let pbx = &edge.node;
                        tr {
                            td { a href={ "/admin/pbxes/" (pbx.id) } { "PBX #" (pbx.id) } @if !pbx.label.is_empty() { br; (pbx.label) } }
                            td { a href={ "/admin/accounts/" (pbx.account.id) } { (pbx.account.name) } }
                            td { (pbx.hostname.as_deref().unwrap_or("—")) }
                            td {
                                span class={ "badge " (if pbx.state == "ACTIVE" { "good" } else if pbx.state == "PROVISIONING" { "low" } else { "off" }) } { (pbx.state.to_lowercase().replace('_', " ")) }
                                @if let Some(error) = &pbx.last_error { br; span.negative { (error) } }
                            }
                            td { (pbx.created_at.format("%Y-%m-%d %H:%M")) }
                            td {
                                @if pbx.state == "FAILED" {
                                    form method="post" action="/admin/pbxes/retry" {
                                        (csrf_field(&ctx))
                                        input type="hidden" name="id" value=(pbx.id);
                                        button type="submit" { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                    @if data.pbxes.edges.is_empty() { tr { td.empty colspan="6" { "No PBXs." } } }
                }
            }
        }
        @if let Some(next) = next {
            div.pager { span {} a.button href={ "/admin/pbxes?after=" (next) } { "Older" } }
        }
    })
}

#[derive(Deserialize)]
pub struct RetryForm {
    id: String,
}

/// `POST /admin/pbxes/retry`: `retryProvisioning`.
#[handler]
pub async fn retry(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<RetryForm>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        RETRY,
        serde_json::json!({ "id": form.id }),
    )
    .await
    {
        Ok(_) => Redirect::see_other("/admin/pbxes").into_response(),
        Err(error) => error_page(&ctx, StatusCode::CONFLICT, &error.message()),
    }
}

const PBX: &str = include_str!("../operations/pbx.graphql");

#[derive(Deserialize)]
struct PbxData {
    pbx: PbxDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbxDetail {
    id: String,
    label: String,
    state: String,
    hostname: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    activated_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
    password_change: Option<switchboard_web::gui_password::PasswordChange>,
    account: PbxAccount,
    plan: PbxPlan,
    health: PbxHealth,
}

#[derive(Deserialize)]
struct PbxPlan {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PbxHealth {
    state: String,
    version: Option<String>,
    uptime_seconds: Option<i64>,
    calling: Option<String>,
}

/// `GET /admin/pbxes/:id`: one PBX, its account and plan, and what the
/// controller says of it now.
#[handler]
pub async fn pbx_page(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    show_pbx(state, &ctx, &id, PbxShown::default()).await
}

/// What the PBX page shows besides the PBX: the outcome of a reveal, or of
/// setting a new password.
#[derive(Default)]
struct PbxShown {
    revealed: Option<Result<String, String>>,
    new_password: Option<String>,
    typed: switchboard_web::gui_password::ChangeForm,
    change_error: Option<String>,
}

/// `POST /admin/pbxes/:id/password`: an admin sets a new GUI password
/// through `changePbxPassword` (sent to the controller as a job, audited)
/// and sees it once.
#[handler]
pub async fn set_gui_password(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    Form(form): Form<switchboard_web::gui_password::ChangeForm>,
) -> Response {
    use switchboard_web::gui_password;
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = form.variables(&id);
    let shown =
        match operations::run::<serde_json::Value>(state, &ctx, gui_password::CHANGE, variables)
            .await
        {
            Ok(answer) => PbxShown {
                new_password: gui_password::started_password(answer),
                ..PbxShown::default()
            },
            Err(error @ OperationError::Refused(_)) => PbxShown {
                change_error: Some(error.message()),
                typed: gui_password::ChangeForm {
                    choice: form.choice,
                    password: String::new(),
                },
                ..PbxShown::default()
            },
            Err(error) => return error_page(&ctx, error.status(), &error.message()),
        };
    show_pbx(state, &ctx, &id, shown).await
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    label: String,
}

const SET_PBX_LABEL: &str = "mutation SetPbxLabel($pbx: ID!, $label: String!) { \
                             setPbxLabel(pbxId: $pbx, label: $label) { id } }";

/// `POST /admin/pbxes/:id/label`: names a PBX through `setPbxLabel`
/// (audited).
#[handler]
pub async fn set_label(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    Form(form): Form<LabelForm>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "pbx": id, "label": form.label });
    match operations::run::<serde_json::Value>(state, &ctx, SET_PBX_LABEL, variables).await {
        Ok(_) => Redirect::see_other(format!("/admin/pbxes/{id}")).into_response(),
        Err(error) => error_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &error.message()),
    }
}

#[derive(Deserialize)]
pub struct RevealForm {
    password: String,
}

const REVEAL: &str = "mutation Reveal($pbx: ID!, $password: String!) { \
                      revealPbxPassword(pbxId: $pbx, password: $password) }";

/// `POST /admin/pbxes/:id/reveal`: shows the PBX's GUI password to staff
/// who typed their own password again; the reveal (or its refusal) is in
/// the audit log.
#[handler]
pub async fn reveal(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    Form(form): Form<RevealForm>,
) -> Response {
    let ctx = match require(req, &[Role::Staff, Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Revealed {
        reveal_pbx_password: String,
    }
    let variables = serde_json::json!({ "pbx": id, "password": form.password });
    let revealed = operations::run::<Revealed>(state, &ctx, REVEAL, variables)
        .await
        .map(|r| r.reveal_pbx_password)
        .map_err(|e| e.message());
    let shown = PbxShown {
        revealed: Some(revealed),
        ..PbxShown::default()
    };
    show_pbx(state, &ctx, &id, shown).await
}

/// The PBX page, with the outcome of a reveal when there was one.
async fn show_pbx(state: &AppState, ctx: &PageContext, id: &str, shown: PbxShown) -> Response {
    let revealed = shown.revealed;
    let data: PbxData =
        match operations::run(state, ctx, PBX, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
        };
    let pbx = data.pbx;
    let title = format!("PBX #{}", pbx.id);
    let uptime = pbx.health.uptime_seconds.map(|s| {
        let (days, hours) = (s / 86_400, s % 86_400 / 3_600);
        format!("{days} d {hours} h")
    });
    Page {
        title: &title,
        nav: Nav::StaffPbxes,
        ctx,
    }
    .respond(html! {
        p.muted { a href="/admin/pbxes" { "PBXs" } " › #" (pbx.id) }
        h1 { (title) " " (crate::accounts::badge(&pbx.state)) }
        div.card {
            table.summary #pbx {
                tr { th scope="row" { "Account" } td { a href={ "/admin/accounts/" (pbx.account.id) } { (pbx.account.name) } } }
                tr { th scope="row" { "Plan" } td { (pbx.plan.name) } }
                tr { th scope="row" { label for="pbx-label" { "Name" } } td {
                    form.inline method="post" action={ "/admin/pbxes/" (pbx.id) "/label" } {
                        (csrf_field(ctx))
                        input #pbx-label type="text" name="label" maxlength="60" value=(pbx.label);
                        " "
                        button type="submit" { "Save the name" }
                    }
                    p.muted { "What the client calls it; they see it too. Recorded in the audit log." }
                } }
                tr { th scope="row" { "Address" } td { @if let Some(host) = &pbx.hostname { a href={ "https://" (host) "/" } { (host) } } @else { "not yet" } } }
                tr { th scope="row" { "Created (UTC)" } td { (pbx.created_at.format("%Y-%m-%d %H:%M")) } }
                tr { th scope="row" { "Active since (UTC)" } td { (pbx.activated_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "—".into())) } }
                tr { th scope="row" { "Running" } td data-testid="pbx-health" {
                    (pbx.health.state)
                    @if let Some(version) = &pbx.health.version { " · " (version) }
                    @if let Some(uptime) = &uptime { " · up " (uptime) }
                    @if let Some(calling) = &pbx.health.calling { " · calling " (calling) }
                } }
                @if let Some(error) = &pbx.last_error { tr { th scope="row" { "Last error" } td.negative { (error) } } }
            }
            @if pbx.state == "FAILED" {
                form method="post" action="/admin/pbxes/retry" {
                    (csrf_field(ctx))
                    input type="hidden" name="id" value=(pbx.id);
                    button.primary type="submit" { "Retry provisioning" }
                }
            }
        }
        h2 #gui-password { "GUI administrator password" }
        div.card {
            @match &revealed {
                Some(Ok(password)) => {
                    p { "The password of the PBX's web interface (user " code { "admin" } "):" }
                    p { code #revealed-password { (password) } }
                    p.muted { "This reveal is in the audit log: who, when, which PBX and from where." }
                }
                Some(Err(why)) => div.alert.error role="alert" { (why) " This attempt is in the audit log." },
                None => {}
            }
            @if !matches!(revealed, Some(Ok(_))) {
                form.inline method="post" action={ "/admin/pbxes/" (pbx.id) "/reveal#gui-password" } {
                    (csrf_field(ctx))
                    div {
                        label.muted for="reveal-password" { "Your own password" }
                        input #reveal-password type="password" name="password" autocomplete="current-password" required;
                    }
                    button.primary type="submit" { "Reveal" }
                }
                p.muted { "Each reveal is recorded in the audit log." }
            }
        }
        @if ctx.role() == Some(Role::Admin) {
            h3 #set-gui-password { "Set a new GUI password" }
            p.muted { "Sent to the PBX through the hosting controller; the stored password changes only once the controller confirms it. Recorded in the audit log." }
            @if let Some(password) = &shown.new_password { (switchboard_web::gui_password::shown_once(password)) }
            (switchboard_web::gui_password::status(pbx.password_change.as_ref()))
            (switchboard_web::gui_password::form(ctx, &format!("/admin/pbxes/{}/password#set-gui-password", pbx.id), &shown.typed, shown.change_error.as_deref()))
        }
    })
}

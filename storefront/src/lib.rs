//! The public site: what a visitor reads, the cart, the checkout and the
//! test gateway's payment page.
#![forbid(unsafe_code)]

pub mod documents;
pub mod routes;

use maud::{html, Markup};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::keys::random_token;
use switchboard_core::UserId;
use switchboard_web::auth::{self, to_sign_in};
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{AppState, Nav, Page, PageContext};

const PLANS: &str = include_str!("../operations/plans.graphql");
const PLAN: &str = include_str!("../operations/plan.graphql");
const SIGN_UP: &str = include_str!("../operations/sign_up.graphql");
const ORDER: &str = include_str!("../operations/order.graphql");
const PAY_WITH_TEST_CARD: &str = include_str!("../operations/pay_with_test_card.graphql");

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Plan {
    slug: String,
    name: String,
    description: String,
    included_extensions: i32,
    setup_fee: Formatted,
    monthly_fee: Formatted,
    first_payment: Formatted,
    /// Only the cart asks for them.
    #[serde(default)]
    starting_credit_choices: Vec<CreditChoice>,
}

#[derive(Deserialize, Clone)]
struct Formatted {
    formatted: String,
}

/// An amount of call credit the cart offers with its plan.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct CreditChoice {
    amount: Amount,
    due_today: Formatted,
    suggested: bool,
}

#[derive(Deserialize, Clone)]
struct Amount {
    micros: String,
    formatted: String,
}

impl CreditChoice {
    /// The amount for people; "None" for none.
    fn label(&self) -> String {
        if self.amount.micros == "0" {
            "None".to_owned()
        } else {
            self.amount.formatted.clone()
        }
    }

    /// What the form sends for it: the amount as a decimal.
    fn value(&self) -> String {
        let micros: i64 = self.amount.micros.parse().unwrap_or(0);
        let (units, fraction) = (micros / 1_000_000, micros % 1_000_000);
        if fraction == 0 {
            units.to_string()
        } else {
            format!("{units}.{fraction:06}")
        }
    }
}

#[derive(Deserialize)]
struct PlansData {
    plans: Vec<Plan>,
}

#[derive(Deserialize)]
struct PlanData {
    plan: Option<Plan>,
}

async fn load_plans(state: &AppState, ctx: &PageContext) -> Result<Vec<Plan>, Response> {
    operations::run::<PlansData>(state, ctx, PLANS, serde_json::json!({}))
        .await
        .map(|d| d.plans)
        .map_err(|e| error_page(ctx, e.status(), &e.message()))
}

fn plan_cards(plans: &[Plan]) -> Markup {
    html! {
        div.cards.plans {
            @for plan in plans {
                div.card.plan {
                    h2 { (plan.name) }
                    p.price { span.amount { (plan.monthly_fee.formatted) } span.muted { " a month" } }
                    p.muted { (plan.included_extensions) " extensions · setup " (plan.setup_fee.formatted) }
                    p { (plan.description) }
                    a.button href={ "/plans/" (plan.slug) } { "Choose " (plan.name) }
                }
            }
            @if plans.is_empty() {
                div.card { p.muted { "No plans are on sale at the moment." } }
            }
        }
    }
}

/// `GET /`: what Switchboard's hosted PBX service is, and its plans.
#[handler]
pub async fn home(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = PageContext::of(req);
    let anonymous = ctx.user().is_none();
    if let Some(page) = kept(state, anonymous, "home") {
        return page;
    }
    let generation = state.catalogue.generation();
    let plans = match load_plans(state, &ctx).await {
        Ok(plans) => plans,
        Err(response) => return response,
    };
    let page = Page {
        title: "Hosted PBX",
        nav: Nav::Storefront,
        ctx: &ctx,
    }
    .render(html! {
        section.hero {
            h1 { "Your own phone system, hosted and looked after." }
            p {
                "A complete Asterisk PBX for your business — extensions, voicemail, "
                "ring groups and phone numbers — running in our data centre. "
                "Prepaid calling, a control panel for your balance and your calls, "
                "and people who answer when you open a ticket."
            }
            p { a.button href="/plans" { "See the plans" } }
        }
        div.cards {
            div.card {
                h2 { "Ready in minutes" }
                p.muted { "Pick a plan and pay; your PBX is provisioned and its credentials are emailed to you." }
            }
            div.card {
                h2 { "Pay for what you use" }
                p.muted { "One prepaid balance for all your PBXs, with automatic top-ups and low-balance warnings." }
            }
            div.card {
                h2 { "See every call" }
                p.muted { "The last calls on your home page, and reports by extension for this month and the last." }
            }
        }
        h2 { "Plans" }
        (plan_cards(&plans))
    });
    keep(state, anonymous, "home", generation, page)
}

/// A page made from the catalogue alone, as kept for visitors who are not
/// signed in (`Catalogue::page`): a signed-in visitor's bar shows who they
/// are, so theirs is made each time.
fn kept(state: &AppState, anonymous: bool, name: &str) -> Option<Response> {
    let page = state.catalogue.page(name).filter(|_| anonymous)?;
    Some(
        poem::web::Html(page.to_string())
            .with_status(StatusCode::OK)
            .into_response(),
    )
}

/// Answers with `page` and, for a visitor not signed in, keeps it with the
/// catalogue it was made from (as of `generation`).
fn keep(
    state: &AppState,
    anonymous: bool,
    name: &'static str,
    generation: u64,
    page: Markup,
) -> Response {
    let page = page.into_string();
    if anonymous {
        state
            .catalogue
            .keep_page(name, generation, std::sync::Arc::from(page.as_str()));
    }
    html_response(StatusCode::OK, maud::PreEscaped(page))
}

/// `GET /plans`
#[handler]
pub async fn plans_page(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = PageContext::of(req);
    let anonymous = ctx.user().is_none();
    if let Some(page) = kept(state, anonymous, "plans") {
        return page;
    }
    let generation = state.catalogue.generation();
    let plans = match load_plans(state, &ctx).await {
        Ok(plans) => plans,
        Err(response) => return response,
    };
    let page = Page {
        title: "Plans",
        nav: Nav::Storefront,
        ctx: &ctx,
    }
    .render(html! {
        h1 { "Plans" }
        p.muted { "Every plan is a PBX of your own. You pay the setup fee and the first month when you sign up; calls are billed from your prepaid balance." }
        (plan_cards(&plans))
    });
    keep(state, anonymous, "plans", generation, page)
}

async fn find_plan(state: &AppState, ctx: &PageContext, slug: &str) -> Result<Plan, Response> {
    lookup_plan(state, ctx, slug)
        .await
        .map_err(|(status, message)| error_page(ctx, status, &message))
}

/// The plan on sale by `slug`, or the status and message to refuse with.
async fn lookup_plan(
    state: &AppState,
    ctx: &PageContext,
    slug: &str,
) -> Result<Plan, (StatusCode, String)> {
    match operations::run::<PlanData>(state, ctx, PLAN, serde_json::json!({ "slug": slug })).await {
        Ok(PlanData { plan: Some(plan) }) => Ok(plan),
        Ok(PlanData { plan: None }) => {
            Err((StatusCode::NOT_FOUND, "That plan is not on sale.".into()))
        }
        Err(e) => Err((e.status(), e.message())),
    }
}

/// `GET /plans/:slug`
#[handler]
pub async fn plan_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(slug): Path<String>,
) -> Response {
    let ctx = PageContext::of(req);
    let plan = match find_plan(state, &ctx, &slug).await {
        Ok(plan) => plan,
        Err(response) => return response,
    };
    Page {
        title: &plan.name,
        nav: Nav::Storefront,
        ctx: &ctx,
    }
    .respond(html! {
        div.card.narrow.wide {
            h1 { (plan.name) }
            p { (plan.description) }
            table.summary {
                tr { th { "Extensions included" } td.num { (plan.included_extensions) } }
                tr { th { "Setup fee" } td.num { (plan.setup_fee.formatted) } }
                tr { th { "Monthly fee" } td.num { (plan.monthly_fee.formatted) } }
                tr { th { "Calls" } td.num { "from your prepaid balance" } }
            }
            p { a.button href={ "/cart?plan=" (plan.slug) } { "Sign up for " (plan.name) } }
        }
    })
}

#[derive(Deserialize)]
pub struct CartQuery {
    plan: Option<String>,
}

/// What the checkout form holds, typed or not yet.
#[derive(Deserialize, Default, Clone)]
pub struct CheckoutForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
    #[serde(default)]
    contact_name: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    accept_terms: Option<String>,
    #[serde(default)]
    checkout_token: String,
    #[serde(default)]
    starting_credit: String,
}

fn cart_page(
    ctx: &PageContext,
    plan: Option<&Plan>,
    form: &CheckoutForm,
    errors: &[(String, String)],
    notice: Option<&str>,
) -> Markup {
    let field = |name, label, kind, value, autocomplete, hint| {
        Field {
            name,
            label,
            kind,
            value,
            autocomplete,
            hint,
        }
        .render(errors)
    };
    Page {
        title: "Your cart",
        nav: Nav::Storefront,
        ctx,
    }
    .render_app_like(html! { script src="/static/cart.js" defer {} }, html! {
        h1 { "Your cart" }
        div.checkout {
            div.card.summary {
                @if let Some(plan) = plan {
                    @let chosen = plan.starting_credit_choices.iter().find(|c| c.value() == form.starting_credit);
                    h2 { (plan.name) }
                    table.summary {
                        tr { th { "Setup fee" } td.num { (plan.setup_fee.formatted) } }
                        tr { th { "First month" } td.num { (plan.monthly_fee.formatted) } }
                        @if let Some(choice) = chosen {
                            tr { th { "Call credit" } td.num data-testid="cart-credit" { (choice.label()) } }
                            tr.total { th { "Due today" } td.num data-testid="cart-total" { (choice.due_today.formatted) } }
                        } @else {
                            tr.total { th { "Due today" } td.num data-testid="cart-total" { (plan.first_payment.formatted) } }
                        }
                    }
                    p.muted { "Then " (plan.monthly_fee.formatted) " a month. " a href="/plans" { "Choose another plan" } }
                } @else {
                    h2 { "Your plan" }
                    p.muted { "Its prices cannot be shown right now; they are shown again before you pay." }
                }
            }
            form.stack.card method="post" action="/checkout" novalidate {
                (csrf_field(ctx))
                input type="hidden" name="plan" value=(form.plan);
                input type="hidden" name="checkout_token" value=(form.checkout_token);
                @if !errors.is_empty() {
                    div.alert.error role="alert" {
                        "Please correct the " (errors.len()) " " (if errors.len() == 1 { "field" } else { "fields" }) " marked below."
                        @for (field, message) in errors.iter().filter(|(f, _)| f == "plan" || f == "checkout_token") {
                            br; (field.replace('_', " ")) " " (message) "."
                        }
                    }
                }
                @if let Some(notice) = notice { div.alert.error role="alert" { (notice) } }
                h2 { "Your login" }
                (field("username", "Username", "text", form.username.as_str(), "username", Some("(letters, digits, . _ -)")))
                (field("password", "Password", "password", "", "new-password", Some("(at least 10 characters)")))
                (field("password_confirmation", "Password again", "password", "", "new-password", None))
                h2 { "Contact" }
                (field("contact_name", "Your name", "text", form.contact_name.as_str(), "name", None))
                (field("company", "Company", "text", form.company.as_str(), "organization", Some("(optional)")))
                (field("email", "Email", "email", form.email.as_str(), "email", None))
                (field("phone", "Phone", "tel", form.phone.as_str(), "tel", None))
                (field("address", "Postal address", "textarea", form.address.as_str(), "street-address", None))
                @if let Some(plan) = plan.filter(|p| !p.starting_credit_choices.is_empty()) {
                    fieldset.choices aria-describedby="starting_credit-hint" {
                        legend { "Call credit to start with" }
                        p.hint #starting_credit-hint { "Calls are paid from your balance; this credit is paid with your first payment. You can add funds at any time." }
                        @for choice in &plan.starting_credit_choices {
                            @let id = format!("starting_credit_{}", choice.value());
                            label.checkbox for=(id) {
                                input id=(id) type="radio" name="starting_credit" value=(choice.value())
                                    data-credit=(choice.label()) data-due=(choice.due_today.formatted)
                                    checked[choice.value() == form.starting_credit];
                                " " (choice.label())
                                span.muted { " — " (choice.due_today.formatted) " due today" }
                            }
                        }
                        @if let Some((_, message)) = errors.iter().find(|(f, _)| f == "starting_credit") {
                            div.field-error { "The call credit " (message) "." }
                        }
                    }
                }
                label.checkbox for="accept_terms" {
                    input #accept_terms type="checkbox" name="accept_terms" value="yes" checked[form.accept_terms.is_some()]
                        aria-invalid=[errors.iter().any(|(f, _)| f == "accept_terms").then_some("true")];
                    " I accept the "
                    a href="/terms" target="_blank" rel="noopener" { "terms of service" span.visually-hidden { " (opens in a new tab)" } }
                }
                p.hint { "How we keep your details: " a href="/privacy" target="_blank" rel="noopener" { "privacy notice" span.visually-hidden { " (opens in a new tab)" } } "." }
                @if let Some((_, message)) = errors.iter().find(|(f, _)| f == "accept_terms") {
                    div.field-error { "The terms " (message) "." }
                }
                button.primary type="submit" { "Continue to payment" }
            }
        }
    })
}

/// `GET /cart?plan=…`: the chosen plan, what is due today, and the checkout form.
#[handler]
pub async fn cart(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<CartQuery>,
) -> Response {
    let ctx = PageContext::of(req);
    let Some(slug) = query.plan.filter(|s| !s.is_empty()) else {
        return Redirect::see_other("/plans").into_response();
    };
    let plan = match find_plan(state, &ctx, &slug).await {
        Ok(plan) => plan,
        Err(response) => return response,
    };
    let form = CheckoutForm {
        plan: plan.slug.clone(),
        checkout_token: random_token(),
        starting_credit: plan
            .starting_credit_choices
            .iter()
            .find(|choice| choice.suggested)
            .map(CreditChoice::value)
            .unwrap_or_default(),
        ..CheckoutForm::default()
    };
    html_response(
        StatusCode::OK,
        cart_page(&ctx, Some(&plan), &form, &[], None),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignUpData {
    sign_up: SignUpResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignUpResult {
    payment_url: String,
    user_id: String,
}

/// `POST /checkout`: runs the `signUp` mutation, signs the new client in and
/// sends them to pay. Every invalid field comes back at once, with what was
/// typed (but the passwords) kept.
#[handler]
pub async fn checkout(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<CheckoutForm>,
) -> Response {
    let ctx = PageContext::of(req);
    // While the database is down, the form comes back with what was typed.
    let plan = match lookup_plan(state, &ctx, &form.plan).await {
        Ok(plan) => plan,
        Err((StatusCode::SERVICE_UNAVAILABLE, message)) => {
            return html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                cart_page(&ctx, None, &form, &[], Some(&message)),
            )
        }
        Err((status, message)) => return error_page(&ctx, status, &message),
    };
    let input = serde_json::json!({
        "plan": form.plan,
        "username": form.username,
        "password": form.password,
        "passwordConfirmation": form.password_confirmation,
        "contactName": form.contact_name,
        "company": form.company,
        "email": form.email,
        "phone": form.phone,
        "address": form.address,
        "acceptTerms": form.accept_terms.is_some(),
        "checkoutToken": form.checkout_token,
        "startingCredit": form.starting_credit,
    });
    let result =
        operations::run::<SignUpData>(state, &ctx, SIGN_UP, serde_json::json!({ "input": input }))
            .await;
    let signup = match result {
        Ok(data) => data.sign_up,
        Err(OperationError::Invalid(errors)) => {
            return html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                cart_page(&ctx, Some(&plan), &form, &errors, None),
            )
        }
        Err(error) => {
            let message = error.message();
            // The sign-up and sign-in limits both begin so.
            let status = if message.starts_with("Too many") {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return html_response(
                status,
                cart_page(&ctx, Some(&plan), &form, &[], Some(&message)),
            );
        }
    };
    let Ok(user_id) = signup.user_id.parse::<i64>() else {
        return error_page(
            &ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The signup returned no user.",
        );
    };
    // The visitor chose this password a moment ago: sign them in, with a
    // fresh session whatever the browser had.
    match auth::new_session(state, req, &ctx, UserId(user_id)).await {
        Ok(token) => auth::signed_in_redirect(state, &signup.payment_url, &token),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "signed up but not signed in");
            Redirect::see_other(signup.payment_url).into_response()
        }
    }
}

#[derive(Deserialize)]
struct OrderData {
    order: PayableOrder,
}

#[derive(Deserialize)]
struct PayableOrder {
    id: String,
    state: String,
    total: Formatted,
    lines: Vec<Line>,
}

#[derive(Deserialize)]
struct Line {
    description: String,
    amount: Formatted,
}

fn payment_page(
    ctx: &PageContext,
    order: &PayableOrder,
    card: &str,
    error: Option<&str>,
    authenticate: bool,
) -> Markup {
    Page {
        title: "Payment",
        nav: Nav::Storefront,
        ctx,
    }
    .render(html! {
        div.card.narrow.wide {
            p.test-banner { "Test gateway — no money moves. Use Stripe's test cards." }
            h1 { "Pay " (order.total.formatted) }
            table.summary {
                @for line in &order.lines {
                    tr { th { (line.description) } td.num { (line.amount.formatted) } }
                }
                tr.total { th { "Total" } td.num { (order.total.formatted) } }
            }
            @if let Some(error) = error { div.alert.error role="alert" { (error) } }
            @if authenticate {
                div.alert.info role="status" { "Your bank asks you to confirm this payment." }
                form.inline method="post" action={ "/pay/test/" (order.id) } {
                    (csrf_field(ctx))
                    input type="hidden" name="card_number" value=(card);
                    button.primary type="submit" name="authenticated" value="yes" { "Complete authentication" }
                    button type="submit" name="authenticated" value="no" { "Fail authentication" }
                }
            } @else {
                form.stack method="post" action={ "/pay/test/" (order.id) } {
                    (csrf_field(ctx))
                    label for="card_number" { "Card number" }
                    input #card_number type="text" name="card_number" value=(card) inputmode="numeric" autocomplete="cc-number";
                    div.two {
                        div { label for="expiry" { "Expiry" } input #expiry type="text" name="expiry" value="12/34" autocomplete="cc-exp"; }
                        div { label for="cvc" { "CVC" } input #cvc type="text" name="cvc" value="123" autocomplete="cc-csc"; }
                    }
                    button.primary type="submit" { "Pay " (order.total.formatted) }
                }
                details {
                    summary { "Test cards" }
                    ul {
                        li { code { "4242 4242 4242 4242" } " succeeds" }
                        li { code { "4000 0000 0000 0002" } " is declined" }
                        li { code { "4000 0025 0000 3155" } " asks for authentication" }
                    }
                }
            }
        }
    })
}

async fn payable_order(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
) -> Result<PayableOrder, Response> {
    match operations::run::<OrderData>(state, ctx, ORDER, serde_json::json!({ "id": id })).await {
        Ok(data) => Ok(data.order),
        Err(e) => Err(error_page(ctx, StatusCode::NOT_FOUND, &e.message())),
    }
}

/// `GET /pay/test/:order`: the test gateway's card form.
#[handler]
pub async fn test_payment(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = PageContext::of(req);
    if ctx.user().is_none() {
        return to_sign_in(&ctx);
    }
    let order = match payable_order(state, &ctx, &id).await {
        Ok(order) => order,
        Err(response) => return response,
    };
    if order.state != "AWAITING_PAYMENT" {
        return Redirect::see_other(format!("/orders/{}", order.id)).into_response();
    }
    html_response(StatusCode::OK, payment_page(&ctx, &order, "", None, false))
}

#[derive(Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
    authenticated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayData {
    pay_with_test_card: PayResult,
}

#[derive(Deserialize)]
struct PayResult {
    outcome: String,
}

/// `POST /pay/test/:order`: charges a test card through the `payWithTestCard`
/// mutation, which fulfils the order exactly as a Stripe webhook would.
#[handler]
pub async fn test_pay(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let ctx = PageContext::of(req);
    if ctx.user().is_none() {
        return to_sign_in(&ctx);
    }
    let order = match payable_order(state, &ctx, &id).await {
        Ok(order) => order,
        Err(response) => return response,
    };
    let authenticated = form.authenticated.as_deref().map(|a| a == "yes");
    let variables = serde_json::json!({ "order": id, "card": form.card_number, "authenticated": authenticated });
    match operations::run::<PayData>(state, &ctx, PAY_WITH_TEST_CARD, variables).await {
        Ok(data) => match data.pay_with_test_card.outcome.as_str() {
            "PAID" => Redirect::see_other(format!("/orders/{id}")).into_response(),
            "NEEDS_AUTHENTICATION" => html_response(
                StatusCode::OK,
                payment_page(&ctx, &order, &form.card_number, None, true),
            ),
            "AUTHENTICATION_FAILED" => html_response(
                StatusCode::PAYMENT_REQUIRED,
                payment_page(
                    &ctx,
                    &order,
                    "",
                    Some("Your bank could not confirm that it was you: authentication failed. Nothing was charged; try again, or use another card."),
                    false,
                ),
            ),
            _ => html_response(
                StatusCode::PAYMENT_REQUIRED,
                payment_page(
                    &ctx,
                    &order,
                    "",
                    Some("Your card was declined. Nothing was charged; try another card."),
                    false,
                ),
            ),
        },
        Err(error) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            payment_page(
                &ctx,
                &order,
                &form.card_number,
                Some(&error.message()),
                false,
            ),
        ),
    }
}

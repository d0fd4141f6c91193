//! Settings → Profile: the account's contact details and time zone, the
//! user's email address (changed through a link sent to the new one), and
//! the way to the password page. Each form runs its GraphQL operation as
//! the viewer and works without JavaScript.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const PROFILE: &str = include_str!("../operations/profile.graphql");
const UPDATE_PROFILE: &str = include_str!("../operations/update_profile.graphql");
const REQUEST_EMAIL_CHANGE: &str = include_str!("../operations/request_email_change.graphql");
const CONFIRM_EMAIL_CHANGE: &str = include_str!("../operations/confirm_email_change.graphql");

#[derive(Deserialize)]
struct ProfileData {
    viewer: Viewer,
}

#[derive(Deserialize)]
struct Viewer {
    user: User,
    account: Option<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    email: String,
    pending_email: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    time_zone: String,
    contact: Contact,
}

#[derive(Deserialize)]
struct Contact {
    name: String,
    company: String,
    phone: String,
    address: String,
}

/// The contact form as sent.
#[derive(Deserialize, Clone, Default)]
pub struct ProfileForm {
    #[serde(default)]
    contact_name: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    time_zone: String,
}

/// The email form as sent.
#[derive(Deserialize, Clone, Default)]
pub struct EmailForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
}

#[derive(Deserialize, Default)]
pub struct ProfileQuery {
    saved: Option<String>,
    saved_sig: Option<String>,
}

/// A message for the whole page: whether it is good news, and its text.
type PageMessage = (bool, String);

/// What a form sent, to show again with what was wrong.
#[derive(Default)]
struct Typed {
    profile: Option<ProfileForm>,
    new_email: Option<String>,
    message: Option<PageMessage>,
    fields: Vec<(String, String)>,
}

fn client(req: &Request) -> Result<PageContext, Response> {
    require(req, &[Role::Client, Role::Reseller])
}

/// `GET /portal/profile`
#[handler]
pub async fn profile(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<ProfileQuery>,
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
        message: saved.map(|m| (true, m.to_owned())),
        ..Typed::default()
    };
    profile_page(state, &ctx, typed, StatusCode::OK).await
}

async fn profile_page(
    state: &AppState,
    ctx: &PageContext,
    typed: Typed,
    status: StatusCode,
) -> Response {
    let data: ProfileData = match operations::run(state, ctx, PROFILE, serde_json::json!({})).await
    {
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
    let user = data.viewer.user;
    let form = typed.profile.clone().unwrap_or_else(|| ProfileForm {
        contact_name: account.contact.name.clone(),
        company: account.contact.company.clone(),
        phone: account.contact.phone.clone(),
        address: account.contact.address.clone(),
        time_zone: account.time_zone.clone(),
    });
    let errors = &typed.fields;
    let zone_error = errors
        .iter()
        .find(|(f, _)| f == "time_zone")
        .map(|(_, m)| m.as_str());
    let page = Page {
        title: "Profile",
        nav: Nav::ClientProfile,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            h1 { "Profile" }
            @if let Some((good, message)) = &typed.message {
                @if *good {
                    div.alert.ok role="status" { (message) }
                } @else {
                    div.alert.error role="alert" { (message) }
                }
            }
            section.card aria-labelledby="contact-heading" {
                h2 #contact-heading { "Contact details" }
                form.stack method="post" action="/portal/profile" novalidate {
                    (csrf_field(ctx))
                    (Field { name: "contact_name", label: "Your name", kind: "text", value: &form.contact_name, autocomplete: "name", hint: None }.render(errors))
                    (Field { name: "company", label: "Company", kind: "text", value: &form.company, autocomplete: "organization", hint: Some("(optional)") }.render(errors))
                    (Field { name: "phone", label: "Phone", kind: "tel", value: &form.phone, autocomplete: "tel", hint: Some("(optional)") }.render(errors))
                    (Field { name: "address", label: "Address", kind: "textarea", value: &form.address, autocomplete: "street-address", hint: Some("(optional)") }.render(errors))
                    label for="time_zone" { "Time zone " span.hint { "(reports and statements use it)" } }
                    select #time_zone name="time_zone"
                        aria-invalid=[zone_error.map(|_| "true")]
                        aria-describedby=[zone_error.map(|_| "time_zone-error")] {
                        @if zone_error.is_some() { option value=(form.time_zone) selected { (form.time_zone) } }
                        @for zone in chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()) {
                            option value=(zone) selected[zone == form.time_zone] { (zone) }
                        }
                    }
                    @if let Some(error) = zone_error {
                        div.field-error #time_zone-error { "Time zone " (error) "." }
                    }
                    button.primary type="submit" { "Save the contact details" }
                }
            }
            section.card aria-labelledby="email-heading" {
                h2 #email-heading { "Email address" }
                p { "Email about your account, and links to set a new password, go to " strong data-testid="email" { (user.email) } "." }
                @if let Some(pending) = &user.pending_email {
                    p.muted data-testid="pending-email" { "We sent a link to " strong { (pending) } "; the new address takes effect when it is followed." }
                }
                form.stack method="post" action="/portal/profile/email" novalidate {
                    (csrf_field(ctx))
                    (Field { name: "new_email", label: "New email address", kind: "email", value: typed.new_email.as_deref().unwrap_or(""), autocomplete: "email", hint: None }.render(errors))
                    (Field { name: "current_password", label: "Your current password", kind: "password", value: "", autocomplete: "current-password", hint: None }.render(errors))
                    button.primary type="submit" { "Send a link to the new address" }
                }
            }
            section.card aria-labelledby="password-heading" {
                h2 #password-heading { "Password" }
                p { "Changing it needs the current one, and signs out every other session of yours." }
                p { a href="/account/password" { "Change your password" } " · " a href="/account/two-factor" { "Two-factor sign-in" } }
            }
        }),
    )
}

fn saved(state: &AppState, message: &str) -> Response {
    Redirect::see_other(format!(
        "/portal/profile?{}",
        notice::query(&state.key, "saved", message)
    ))
    .into_response()
}

/// The fields an operation said were wrong, or its one message.
fn refusal(error: &OperationError) -> (Vec<(String, String)>, Option<PageMessage>) {
    match error {
        OperationError::Invalid(fields) => (
            fields.clone(),
            Some((false, "Some fields need correcting.".into())),
        ),
        other => (Vec::new(), Some((false, other.message()))),
    }
}

/// `POST /portal/profile`: runs the `updateProfile` mutation.
#[handler]
pub async fn update(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({ "input": {
        "contactName": form.contact_name,
        "company": form.company,
        "phone": form.phone,
        "address": form.address,
        "timeZone": form.time_zone,
    }});
    match operations::run::<serde_json::Value>(state, &ctx, UPDATE_PROFILE, variables).await {
        Ok(_) => saved(state, "Your contact details are saved."),
        Err(error) => {
            let (fields, message) = refusal(&error);
            let typed = Typed {
                profile: Some(form),
                message,
                fields,
                ..Typed::default()
            };
            profile_page(state, &ctx, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// `POST /portal/profile/email`: runs the `requestEmailChange` mutation.
#[handler]
pub async fn change_email(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<EmailForm>,
) -> Response {
    let ctx = match client(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = serde_json::json!({
        "newEmail": form.new_email,
        "currentPassword": form.current_password,
    });
    match operations::run::<serde_json::Value>(state, &ctx, REQUEST_EMAIL_CHANGE, variables).await {
        Ok(_) => saved(
            state,
            &format!(
                "We sent a link to {}: your address changes when you follow it.",
                form.new_email.trim()
            ),
        ),
        Err(error) => {
            let (fields, message) = refusal(&error);
            let typed = Typed {
                new_email: Some(form.new_email),
                message,
                fields,
                ..Typed::default()
            };
            profile_page(state, &ctx, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    token: String,
}

fn confirm_form(ctx: &PageContext, token: &str, outcome: Result<bool, &str>) -> maud::Markup {
    Page {
        title: "Confirm your new email address",
        nav: Nav::None,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Confirm your new email address" }
            @match outcome {
                Ok(true) => {
                    div.alert.ok role="status" data-testid="email-changed" { "Your email address is changed: email about your account goes there from now on." }
                    p { a href="/portal/profile" { "Back to your profile" } }
                }
                Ok(false) => {
                    p { "Use the address this link was sent to for your Switchboard user from now on?" }
                    form.stack method="post" action="/account/email/confirm" {
                        (csrf_field(ctx))
                        input type="hidden" name="token" value=(token);
                        button.primary type="submit" { "Use this address" }
                    }
                }
                Err(message) => {
                    div.alert.error role="alert" { (message) }
                    p { a href="/portal/profile" { "Back to your profile" } }
                }
            }
        }
    })
}

/// `GET /account/email/confirm?token=…`: what the link sent to a new
/// address opens. It changes nothing until its button is pressed, so a
/// mail scanner that follows links changes nothing either.
#[handler]
pub fn confirm_page(req: &Request, Query(query): Query<ConfirmQuery>) -> Response {
    let ctx = PageContext::of(req);
    html_response(StatusCode::OK, confirm_form(&ctx, &query.token, Ok(false)))
}

/// `POST /account/email/confirm`: runs the `confirmEmailChange` mutation.
#[handler]
pub async fn confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let ctx = PageContext::of(req);
    let variables = serde_json::json!({ "token": form.token });
    match operations::run::<serde_json::Value>(state, &ctx, CONFIRM_EMAIL_CHANGE, variables).await {
        Ok(_) => html_response(StatusCode::OK, confirm_form(&ctx, "", Ok(true))),
        Err(error @ OperationError::Refused(_)) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            confirm_form(&ctx, "", Err(&error.message())),
        ),
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

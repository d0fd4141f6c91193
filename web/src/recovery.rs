//! "Forgot your password?": asking for a link to set a new one.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{handler, Request, Response};
use serde::Deserialize;

use crate::layout::{csrf_field, error_page, html_response, Field, Nav, Page};
use crate::operations::{self, OperationError};
use crate::{AppState, PageContext};

/// What the page says after every request that was not refused, whoever it
/// named: it must not tell who has an account.
pub const SENT: &str = "If that username or address belongs to a user, we have emailed them a \
                        link to set a new password. It works once, for one hour.";

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    login: String,
}

/// What the page shows besides the form.
#[derive(Clone, Copy)]
enum Outcome<'a> {
    Asking,
    Sent,
    Refused(&'a str),
    Invalid(&'a [(String, String)]),
}

fn forgot_form(ctx: &PageContext, login: &str, outcome: Outcome<'_>) -> maud::Markup {
    let errors: &[(String, String)] = match outcome {
        Outcome::Invalid(errors) => errors,
        _ => &[],
    };
    Page {
        title: "Forgot your password?",
        nav: Nav::SignIn,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Forgot your password?" }
            @match outcome {
                Outcome::Sent => {
                    div.alert.ok role="status" data-testid="recovery-sent" { (SENT) }
                    p { "Nothing arrived? Look in your spam folder, or ask again in a few minutes. We send at most three links an hour to one address." }
                    p { a href="/sign-in" { "Back to sign in" } }
                }
                _ => {
                    @if let Outcome::Refused(message) = outcome {
                        div.alert.error role="alert" { (message) }
                    }
                    @if !errors.is_empty() {
                        div.alert.error role="alert" { "Some fields need correcting." }
                    }
                    p { "Type your username or the email address of your user. We email a link to set a new password; we never send passwords by email." }
                    form.stack method="post" action="/password/forgot" novalidate {
                        (csrf_field(ctx))
                        (Field {
                            name: "login",
                            label: "Username or email address",
                            kind: "text",
                            value: login,
                            autocomplete: "username",
                            hint: None,
                        }.render(errors))
                        button.primary type="submit" { "Email me a link" }
                    }
                    p { a href="/sign-in" { "Back to sign in" } }
                }
            }
        }
    })
}

/// `GET /password/forgot`
#[handler]
pub fn forgot_page(req: &Request) -> Response {
    let ctx = PageContext::of(req);
    html_response(StatusCode::OK, forgot_form(&ctx, "", Outcome::Asking))
}

const REQUEST_RECOVERY: &str = "mutation RequestPasswordRecovery($login: String!) { \
                                requestPasswordRecovery(login: $login) }";

/// `POST /password/forgot`: runs the `requestPasswordRecovery` mutation.
#[handler]
pub async fn forgot(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ForgotForm>,
) -> Response {
    let ctx = PageContext::of(req);
    let variables = serde_json::json!({ "login": form.login });
    match operations::run::<serde_json::Value>(state, &ctx, REQUEST_RECOVERY, variables).await {
        Ok(_) => html_response(StatusCode::OK, forgot_form(&ctx, "", Outcome::Sent)),
        Err(OperationError::Invalid(fields)) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            forgot_form(&ctx, &form.login, Outcome::Invalid(&fields)),
        ),
        Err(error @ OperationError::Refused(_)) => html_response(
            StatusCode::TOO_MANY_REQUESTS,
            forgot_form(&ctx, &form.login, Outcome::Refused(&error.message())),
        ),
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

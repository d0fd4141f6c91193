//! Two-factor sign-in as people see it: the code asked for after the
//! password, and the page where anyone turns it on (with an authenticator
//! app and recovery codes) or off.

use maud::{html, PreEscaped};
use poem::http::StatusCode;
use poem::web::{Data, Form, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::db;
use switchboard_core::people::sign_in::{self, SignInError};
use switchboard_core::people::two_factor::{self, Factor};
use switchboard_core::people::users::{self, User};

use crate::auth::{finish_sign_in, to_sign_in};
use crate::layout::{csrf_field, error_page, html_response, Nav, Page};
use crate::operations::{self, OperationError};
use crate::pipeline::{append_cookie, challenge_cookie, client_address, cookie, set_cookie};
use crate::{AppState, PageContext};

/// Remembers that `user` passed the first factor and asks for the code.
pub async fn ask_for_code(
    state: &AppState,
    ctx: &PageContext,
    user: &User,
    next: Option<&str>,
) -> Response {
    let opened = match db::conn(&state.pool).await {
        Ok(mut conn) => two_factor::open_challenge(&mut conn, user.id(), next)
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    let token = match opened {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "could not ask for a second factor");
            return error_page(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is not possible right now; try again in a moment.",
            );
        }
    };
    let https = state.settings.https();
    let mut response = Redirect::see_other("/sign-in/code").into_response();
    append_cookie(
        &mut response,
        &set_cookie(
            &challenge_cookie(https),
            &token,
            https,
            Some(two_factor::CHALLENGE_MINUTES * 60),
        ),
    );
    response
}

fn code_form(ctx: &PageContext, error: Option<&str>) -> maud::Markup {
    Page {
        title: "Your code",
        nav: Nav::SignIn,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Your code" }
            p { "Type the six digits your authenticator app shows for Switchboard, or one of your recovery codes." }
            @if let Some(error) = error { div.alert.error role="alert" { (error) } }
            form.stack method="post" action="/sign-in/code" {
                (csrf_field(ctx))
                label for="code" { "Code" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
                button.primary type="submit" { "Sign in" }
            }
            p.muted { a href="/sign-in" { "Start again" } }
        }
    })
}

/// `GET /sign-in/code`
#[handler]
pub async fn code_page(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = PageContext::of(req);
    let live = match cookie(req, &challenge_cookie(state.settings.https())) {
        Some(token) => match db::conn(&state.pool).await {
            Ok(mut conn) => two_factor::challenge_is_live(&mut conn, &token)
                .await
                .unwrap_or(false),
            Err(_) => false,
        },
        None => false,
    };
    if !live {
        return Redirect::see_other("/sign-in").into_response();
    }
    html_response(StatusCode::OK, code_form(&ctx, None))
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /sign-in/code`: checks the second factor against the same limits
/// as the password, then starts the session.
#[handler]
pub async fn check_code(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<CodeForm>,
) -> Response {
    let ctx = PageContext::of(req);
    let https = state.settings.https();
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "second factor failed");
        error_page(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now; try again in a moment.",
        )
    };
    let Some(token) = cookie(req, &challenge_cookie(https)) else {
        return Redirect::see_other("/sign-in").into_response();
    };
    let mut conn = match db::conn(&state.pool).await {
        Ok(conn) => conn,
        Err(error) => return unavailable(&error),
    };
    let (user, next) = match two_factor::try_challenge(&mut conn, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return Redirect::see_other("/sign-in").into_response(),
        Err(error) => return unavailable(&error),
    };
    let user = match users::get(&mut conn, user).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::see_other("/sign-in").into_response(),
        Err(error) => return unavailable(&error),
    };
    drop(conn);
    let ip = client_address(req, &state.settings.trusted_proxies);
    let checked = sign_in::second_factor(
        &state.pool,
        &state.key,
        &user,
        &form.code,
        &ip,
        state.sign_in_limits,
    )
    .await;
    let how = match checked {
        Ok(Factor::Code) => "password and code",
        Ok(Factor::RecoveryCode) => "password and recovery code",
        Err(refusal @ (SignInError::WrongCode | SignInError::Throttled { .. })) => {
            let status = match refusal {
                SignInError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            return html_response(status, code_form(&ctx, Some(&refusal.to_string())));
        }
        Err(error) => return unavailable(&error),
    };
    if let Ok(mut conn) = db::conn(&state.pool).await {
        if let Err(error) = two_factor::close_challenge(&mut conn, &token).await {
            tracing::warn!(%error, "a met challenge stays until it expires");
        }
    }
    let mut response = finish_sign_in(state, req, &ctx, &user, next.as_deref(), how).await;
    append_cookie(
        &mut response,
        &set_cookie(&challenge_cookie(https), "", https, Some(0)),
    );
    response
}

const STATUS: &str = "{ twoFactor { enabled pending recoveryCodesLeft required } }";
const START: &str = "mutation { startTwoFactor { secret otpauthUri } }";
const CONFIRM: &str = "mutation Confirm($code: String!) { confirmTwoFactor(code: $code) }";
const NEW_CODES: &str =
    "mutation Codes($password: String!) { newRecoveryCodes(password: $password) }";
const TURN_OFF: &str = "mutation Off($password: String!) { turnOffTwoFactor(password: $password) }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusData {
    two_factor: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    enabled: bool,
    pending: bool,
    recovery_codes_left: i32,
    required: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Setup {
    secret: String,
    otpauth_uri: String,
}

/// What the page shows besides the status.
enum Shown<'a> {
    Nothing,
    /// A new secret to scan, waiting for its first code.
    Setup(&'a Setup),
    /// Recovery codes, this once.
    Codes(&'a [String]),
}

fn settings_page(
    ctx: &PageContext,
    status: &Status,
    shown: Shown<'_>,
    error: Option<&str>,
    done: Option<&str>,
) -> maud::Markup {
    Page {
        title: "Two-factor sign-in",
        nav: Nav::TwoFactor,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Two-factor sign-in" }
            @if let Some(done) = done { div.alert.ok role="status" { (done) } }
            @if let Some(error) = error { div.alert.error role="alert" { (error) } }
            @if status.required && !status.enabled {
                div.alert.info role="status" { "Admins sign in with a code from an authenticator app here: turn it on before you go on." }
            }
            @match shown {
                Shown::Setup(setup) => {
                    p { "Scan this with an authenticator app (any that does TOTP), or type the key in by hand, then type the code it shows." }
                    div.qr role="img" aria-label="QR code of the key for your authenticator app" {
                        (PreEscaped(qr_svg(&setup.otpauth_uri)))
                    }
                    p { "Key: " code #totp-secret { (setup.secret) } }
                    form.stack method="post" action="/account/two-factor" {
                        (csrf_field(ctx))
                        input type="hidden" name="action" value="confirm";
                        // Shown above already: kept so a mistyped code can be tried again.
                        input type="hidden" name="secret" value=(setup.secret);
                        input type="hidden" name="otpauth_uri" value=(setup.otpauth_uri);
                        label for="code" { "Code from the app" }
                        input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                        button.primary type="submit" { "Turn on" }
                    }
                }
                Shown::Codes(codes) => {
                    p { strong { "Your recovery codes." } " Each signs you in once if you lose your phone. Keep them somewhere safe: they are not shown again." }
                    ul #recovery-codes .codes { @for code in codes { li { code { (code) } } } }
                }
                Shown::Nothing => {}
            }
            @if status.enabled {
                p #two-factor-status { "Two-factor sign-in is on. " (status.recovery_codes_left) " recovery codes are left." }
                form.stack method="post" action="/account/two-factor" {
                    (csrf_field(ctx))
                    input type="hidden" name="action" value="codes";
                    label for="codes-password" { "Your password" }
                    input #codes-password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Make new recovery codes" }
                }
                @if !status.required {
                    form.stack method="post" action="/account/two-factor" {
                        (csrf_field(ctx))
                        input type="hidden" name="action" value="off";
                        label for="off-password" { "Your password" }
                        input #off-password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { "Turn two-factor sign-in off" }
                    }
                }
            } @else if !matches!(shown, Shown::Setup(_)) {
                p #two-factor-status { "Two-factor sign-in is off: your password alone signs you in." }
                form method="post" action="/account/two-factor" {
                    (csrf_field(ctx))
                    input type="hidden" name="action" value="start";
                    button.primary type="submit" { "Set up two-factor sign-in" }
                }
            }
        }
    })
}

/// The QR code of an `otpauth://` address, as SVG.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build();
            // Inside HTML the XML declaration is noise.
            match svg.find("<svg") {
                Some(start) => svg[start..].to_owned(),
                None => svg,
            }
        }
        Err(_) => String::new(),
    }
}

async fn status(state: &AppState, ctx: &PageContext) -> Result<Status, OperationError> {
    operations::run::<StatusData>(state, ctx, STATUS, serde_json::json!({}))
        .await
        .map(|d| d.two_factor)
}

fn signed_in(req: &Request) -> Result<PageContext, Response> {
    let ctx = PageContext::of(req);
    match ctx.user() {
        None => Err(to_sign_in(&ctx)),
        Some(user) if user.must_change_password => {
            Err(Redirect::see_other("/account/password").into_response())
        }
        Some(_) => Ok(ctx),
    }
}

/// `GET /account/two-factor`
#[handler]
pub async fn settings(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = match signed_in(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match status(state, &ctx).await {
        Ok(status) => html_response(
            StatusCode::OK,
            settings_page(&ctx, &status, Shown::Nothing, None, None),
        ),
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
pub struct SettingsForm {
    action: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    otpauth_uri: String,
}

/// `POST /account/two-factor`: starts, confirms, renews the recovery codes
/// of, or turns off two-factor sign-in, each through its mutation.
#[handler]
pub async fn change(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let ctx = match signed_in(req) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let (operation, variables) = match form.action.as_str() {
        "start" => (START, serde_json::json!({})),
        "confirm" => (CONFIRM, serde_json::json!({ "code": form.code })),
        "codes" => (NEW_CODES, serde_json::json!({ "password": form.password })),
        "off" => (TURN_OFF, serde_json::json!({ "password": form.password })),
        _ => {
            return error_page(
                &ctx,
                StatusCode::BAD_REQUEST,
                "That is not something this page does.",
            )
        }
    };
    let result = operations::run::<serde_json::Value>(state, &ctx, operation, variables).await;
    let current = match status(state, &ctx).await {
        Ok(status) => status,
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let data = match result {
        Ok(data) => data,
        Err(error @ OperationError::Refused(_)) => {
            let again = Setup {
                secret: form.secret.clone(),
                otpauth_uri: form.otpauth_uri.clone(),
            };
            let shown = if form.action == "confirm" && current.pending && !again.secret.is_empty() {
                Shown::Setup(&again)
            } else {
                Shown::Nothing
            };
            return html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                settings_page(&ctx, &current, shown, Some(&error.message()), None),
            );
        }
        Err(error) => return error_page(&ctx, error.status(), &error.message()),
    };
    let page = match form.action.as_str() {
        "start" => {
            let setup: Option<Setup> = serde_json::from_value(data["startTwoFactor"].clone()).ok();
            match setup {
                Some(setup) => settings_page(&ctx, &current, Shown::Setup(&setup), None, None),
                None => settings_page(&ctx, &current, Shown::Nothing, None, None),
            }
        }
        "confirm" | "codes" => {
            let field = if form.action == "confirm" {
                "confirmTwoFactor"
            } else {
                "newRecoveryCodes"
            };
            let codes: Vec<String> =
                serde_json::from_value(data[field].clone()).unwrap_or_default();
            let done = if form.action == "confirm" {
                "Two-factor sign-in is on: from now on you sign in with your password and a code."
            } else {
                "New recovery codes: the old ones no longer work."
            };
            settings_page(&ctx, &current, Shown::Codes(&codes), None, Some(done))
        }
        _ => settings_page(
            &ctx,
            &current,
            Shown::Nothing,
            None,
            Some("Two-factor sign-in is off."),
        ),
    };
    html_response(StatusCode::OK, page)
}

//! Signing in and out, and changing one's own password.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::audit::{self, Actor};
use switchboard_core::keys::random_token;
use switchboard_core::people::sign_in::{self as credentials, Purpose, SignInError};
use switchboard_core::people::users::User;
use switchboard_core::{db, people::sessions, Role, UserId};

use crate::layout::{csrf_field, error_page, html_response, Nav, Page};
use crate::operations::{self, OperationError};
use crate::pipeline::{append_cookie, client_address, csrf_cookie, session_cookie, set_cookie};
use crate::{AppState, PageContext};

/// Where `next` may send someone after signing in: only a path on this site.
/// Browsers drop tabs and newlines from URLs and read `\\` as `/`, so anything
/// but plain path characters is refused rather than cleaned.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'/' | b'-' | b'_' | b'.' | b'~' | b'?' | b'=' | b'&' | b'%'
                    )
            })
    })
}

/// The home page of a role.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Client | Role::Reseller => "/portal",
        Role::Staff | Role::Admin => "/admin",
    }
}

/// Sends an anonymous visitor to sign in, coming back here afterwards.
pub fn to_sign_in(ctx: &PageContext) -> Response {
    let next: String = ctx
        .path
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Redirect::see_other(format!("/sign-in?next={next}")).into_response()
}

/// The context of a signed-in viewer with one of `roles`, or the response
/// that turns everybody else away.
pub fn require(req: &Request, roles: &[Role]) -> Result<PageContext, Response> {
    let ctx = PageContext::of(req);
    match ctx.user() {
        None => Err(to_sign_in(&ctx)),
        Some(user) if user.must_change_password => {
            Err(Redirect::see_other("/account/password").into_response())
        }
        Some(user) if user.role == Role::Admin && !user.two_factor && two_factor_required(req) => {
            Err(Redirect::see_other("/account/two-factor").into_response())
        }
        Some(user) if roles.contains(&user.role) => Ok(ctx),
        Some(_) => Err(error_page(
            &ctx,
            StatusCode::FORBIDDEN,
            "This part of Switchboard is not open to your account.",
        )),
    }
}

/// Whether admins must sign in with two factors here: in production.
pub fn two_factor_required(req: &Request) -> bool {
    req.data::<AppState>()
        .is_some_and(|state| state.settings.mode == switchboard_core::config::Mode::Production)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    next: Option<String>,
}

fn sign_in_form(
    sso: Option<&crate::sso::Provider>,
    ctx: &PageContext,
    username: &str,
    next: Option<&str>,
    error: Option<&str>,
    notice: Option<&str>,
) -> maud::Markup {
    Page {
        title: "Sign in",
        nav: Nav::SignIn,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Sign in" }
            @if let Some(notice) = notice { div.alert.info role="status" { (notice) } }
            @if let Some(error) = error { div.alert.error role="alert" { (error) } }
            form.stack method="post" action="/sign-in" {
                (csrf_field(ctx))
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button.primary type="submit" { "Sign in" }
            }
            p { a href="/password/forgot" { "Forgot your password?" } }
            @if let Some(sso) = sso {
                p.or { "or" }
                @let href = match next {
                    Some(next) => format!("/sign-in/sso?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default()),
                    None => "/sign-in/sso".to_owned(),
                };
                a.button #sso href=(href) { (sso.label()) }
            }
        }
    })
}

/// `GET /sign-in`
#[handler]
pub fn sign_in_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let ctx = PageContext::of(req);
    if let Some(user) = ctx.user() {
        return Redirect::see_other(home_of(user.role)).into_response();
    }
    let notice = query.signed_out.as_ref().map(|_| "You have signed out.");
    html_response(
        StatusCode::OK,
        sign_in_form(
            state.sso.as_ref(),
            &ctx,
            "",
            safe_next(query.next.as_deref()),
            None,
            notice,
        ),
    )
}

/// `POST /sign-in`: checks the credentials, starts a fresh session (a new
/// token whatever the browser had before) and a fresh CSRF binding.
#[handler]
pub async fn sign_in(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<SignInForm>,
) -> Response {
    let ctx = PageContext::of(req);
    let ip = client_address(req, &state.settings.trusted_proxies);
    let next = safe_next(form.next.as_deref());
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "sign-in failed");
        error_page(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now; try again in a moment.",
        )
    };
    let result = credentials::sign_in(
        &state.pool,
        &form.username,
        &form.password,
        &ip,
        state.sign_in_limits,
        Purpose::SignIn,
    )
    .await;
    let user = match result {
        Ok(user) => user,
        Err(SignInError::Database(error)) => return unavailable(&error),
        Err(SignInError::Unavailable(error)) => return unavailable(&error),
        Err(refusal) => {
            let status = match refusal {
                SignInError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let message = refusal.to_string();
            return html_response(
                status,
                sign_in_form(
                    state.sso.as_ref(),
                    &ctx,
                    form.username.trim(),
                    next,
                    Some(&message),
                    None,
                ),
            );
        }
    };
    after_first_factor(state, req, &ctx, &user, next, "password").await
}

/// After a password (or the OpenID provider) proved who someone is: a
/// session, or for a user with two-factor sign-in first the code.
pub async fn after_first_factor(
    state: &AppState,
    req: &Request,
    ctx: &PageContext,
    user: &User,
    next: Option<&str>,
    how: &str,
) -> Response {
    if user.totp_enabled {
        crate::two_factor::ask_for_code(state, ctx, user, next).await
    } else {
        finish_sign_in(state, req, ctx, user, next, how).await
    }
}

/// Starts the session of a user who has proved who they are, records the
/// sign-in, and sends them on (to choose a password first if they must).
pub async fn finish_sign_in(
    state: &AppState,
    req: &Request,
    ctx: &PageContext,
    user: &User,
    next: Option<&str>,
    how: &str,
) -> Response {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "sign-in failed");
        error_page(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now; try again in a moment.",
        )
    };
    let mut conn = match db::conn(&state.pool).await {
        Ok(conn) => conn,
        Err(error) => return unavailable(&error),
    };
    let token = match new_session(state, req, ctx, user.id()).await {
        Ok(token) => token,
        Err(error) => return unavailable(&error),
    };
    let actor = Actor {
        user_id: Some(user.id()),
        label: user.username.clone(),
        ip: client_address(req, &state.settings.trusted_proxies),
    };
    if let Err(error) = audit::record(
        &mut conn,
        &actor,
        "user.sign_in",
        &format!("user:{}", user.id),
        how,
    )
    .await
    {
        tracing::warn!(%error, "could not audit a sign-in");
    }
    let target = if user.must_change_password {
        "/account/password".to_owned()
    } else {
        next.map(str::to_owned)
            .unwrap_or_else(|| home_of(user.role()).to_owned())
    };
    signed_in_redirect(state, &target, &token)
}

/// Starts a session for `user` with a token of its own, ending the one the
/// browser had: a session id is never carried over a sign-in.
pub async fn new_session(
    state: &AppState,
    req: &Request,
    ctx: &PageContext,
    user: UserId,
) -> anyhow::Result<String> {
    let mut conn = db::conn(&state.pool).await?;
    if let Some(old) = &ctx.session_token {
        sessions::end(&mut conn, old).await?;
    }
    let user_agent = req
        .headers()
        .get(poem::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ip = client_address(req, &state.settings.trusted_proxies);
    Ok(sessions::create(&mut conn, user, state.session_lifetime(), &ip, user_agent).await?)
}

/// A redirect to `target` that sets the new session's cookie (for the
/// browser's session: the server decides when it expires) and a fresh CSRF
/// binding.
pub fn signed_in_redirect(state: &AppState, target: &str, token: &str) -> Response {
    let https = state.settings.https();
    let mut response = Redirect::see_other(target).into_response();
    append_cookie(
        &mut response,
        &set_cookie(&session_cookie(https), token, https, None),
    );
    append_cookie(
        &mut response,
        &set_cookie(&csrf_cookie(https), &random_token(), https, None),
    );
    response
}

/// `POST /sign-out`
#[handler]
pub async fn sign_out(req: &Request, Data(state): Data<&AppState>) -> Response {
    let ctx = PageContext::of(req);
    if let Some(token) = &ctx.session_token {
        match db::conn(&state.pool).await {
            Ok(mut conn) => {
                if let Err(error) = sessions::end(&mut conn, token).await {
                    tracing::error!(%error, "ending a session failed");
                }
            }
            Err(error) => tracing::error!(%error, "signing out without a database"),
        }
    }
    let https = state.settings.https();
    let mut response = Redirect::see_other("/sign-in?signed_out=1").into_response();
    append_cookie(
        &mut response,
        &set_cookie(&session_cookie(https), "", https, Some(0)),
    );
    append_cookie(
        &mut response,
        &set_cookie(&csrf_cookie(https), &random_token(), https, None),
    );
    response
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

fn password_form(ctx: &PageContext, error: Option<&str>, done: bool) -> maud::Markup {
    let must_change = ctx.user().is_some_and(|u| u.must_change_password);
    Page {
        title: "Change your password",
        nav: Nav::Password,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Change your password" }
            @if must_change && !done {
                div.alert.info role="status" { "Choose your own password before you go on." }
            }
            @if done { div.alert.ok role="status" { "Your password has been changed. Other sessions have been signed out." } }
            @if let Some(error) = error { div.alert.error role="alert" { (error) } }
            form.stack method="post" action="/account/password" {
                (csrf_field(ctx))
                label for="current_password" { "Current password" }
                input #current_password type="password" name="current_password" autocomplete="current-password" required;
                label for="new_password" { "New password " span.hint { "(at least 10 characters)" } }
                input #new_password type="password" name="new_password" autocomplete="new-password" required minlength="10";
                label for="confirm_password" { "New password again" }
                input #confirm_password type="password" name="confirm_password" autocomplete="new-password" required minlength="10";
                button.primary type="submit" { "Change password" }
            }
        }
    })
}

/// `GET /account/password`
#[handler]
pub fn password_page(req: &Request) -> Response {
    let ctx = PageContext::of(req);
    if ctx.user().is_none() {
        return to_sign_in(&ctx);
    }
    html_response(StatusCode::OK, password_form(&ctx, None, false))
}

const CHANGE_PASSWORD: &str = "mutation ChangePassword($current: String!, $new: String!) { \
                               changePassword(currentPassword: $current, newPassword: $new) }";

/// `POST /account/password`: runs the `changePassword` mutation.
#[handler]
pub async fn change_password(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let ctx = PageContext::of(req);
    if ctx.user().is_none() {
        return to_sign_in(&ctx);
    }
    if form.new_password != form.confirm_password {
        return html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_form(&ctx, Some("The two new passwords differ."), false),
        );
    }
    let variables =
        serde_json::json!({ "current": form.current_password, "new": form.new_password });
    match operations::run::<serde_json::Value>(state, &ctx, CHANGE_PASSWORD, variables).await {
        Ok(_) => {
            let mut ctx = ctx;
            if let Some(user) = ctx.viewer.user.as_mut() {
                user.must_change_password = false;
            }
            html_response(StatusCode::OK, password_form(&ctx, None, true))
        }
        Err(error @ OperationError::Refused(_)) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_form(&ctx, Some(&error.message()), false),
        ),
        Err(error) => error_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &error.message()),
    }
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
    /// The user the link names, shown and sent back with the new password.
    user: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    #[serde(default)]
    username: String,
    new_password: String,
    confirm_password: String,
}

fn reset_form(
    ctx: &PageContext,
    token: &str,
    username: &str,
    error: Option<&str>,
    done: bool,
) -> maud::Markup {
    Page {
        title: "Set your password",
        nav: Nav::SignIn,
        ctx,
    }
    .render(html! {
        div.card.narrow {
            h1 { "Set your password" }
            @if done {
                div.alert.ok role="status" { "Your password is set. Every other session of yours has ended." }
                p { a.button.primary href="/sign-in" { "Sign in" } }
            } @else {
                @if let Some(error) = error { div.alert.error role="alert" { (error) } }
                form.stack method="post" action="/password/reset" {
                    (csrf_field(ctx))
                    input type="hidden" name="token" value=(token);
                    @if !username.is_empty() {
                        // Shown, and read by password managers to file the new password.
                        label for="username" { "Username" }
                        input #username type="text" name="username" value=(username) autocomplete="username" readonly;
                    }
                    label for="new_password" { "New password " span.hint { "(at least 10 characters)" } }
                    input #new_password type="password" name="new_password" autocomplete="new-password" required minlength="10";
                    label for="confirm_password" { "New password again" }
                    input #confirm_password type="password" name="confirm_password" autocomplete="new-password" required minlength="10";
                    button.primary type="submit" { "Set password" }
                }
            }
        }
    })
}

/// `GET /password/reset?token=…`: the form a reset link opens. The token
/// travels in the query, which the request log leaves out.
#[handler]
pub fn reset_page(req: &Request, Query(query): Query<ResetQuery>) -> Response {
    let ctx = PageContext::of(req);
    let token = query.token.unwrap_or_default();
    let username = query.user.unwrap_or_default();
    html_response(
        StatusCode::OK,
        reset_form(&ctx, &token, &username, None, false),
    )
}

const RESET_PASSWORD: &str = "mutation Reset($token: String!, $new: String!, $user: String) { \
                              resetPassword(token: $token, newPassword: $new, username: $user) }";

/// `POST /password/reset`: runs the `resetPassword` mutation.
#[handler]
pub async fn reset_password(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ResetForm>,
) -> Response {
    let ctx = PageContext::of(req);
    if form.new_password != form.confirm_password {
        return html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            reset_form(
                &ctx,
                &form.token,
                &form.username,
                Some("The two new passwords differ."),
                false,
            ),
        );
    }
    let variables = serde_json::json!({
        "token": form.token,
        "new": form.new_password,
        "user": Some(form.username.trim()).filter(|u| !u.is_empty()),
    });
    match operations::run::<serde_json::Value>(state, &ctx, RESET_PASSWORD, variables).await {
        Ok(_) => html_response(StatusCode::OK, reset_form(&ctx, "", "", None, true)),
        Err(error @ OperationError::Refused(_)) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            reset_form(
                &ctx,
                &form.token,
                &form.username,
                Some(&error.message()),
                false,
            ),
        ),
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

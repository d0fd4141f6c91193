//! Settings → a PBX's GUI password: the client sets a new one (typed and
//! strength-checked, or generated), sees it once, and sees when it took
//! effect. The page runs `pbx` and `changePbxPassword` as the viewer and
//! works without JavaScript.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::gui_password::{self, ChangeForm, PasswordChange};
use switchboard_web::layout::{error_page, html_response};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{AppState, Nav, Page, PageContext};

#[derive(Deserialize)]
struct PbxData {
    pbx: Pbx,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pbx {
    id: String,
    hostname: Option<String>,
    password_change: Option<PasswordChange>,
}

/// What the page shows besides the PBX: the password just set, or why the
/// form was refused.
#[derive(Default)]
struct Shown {
    password: Option<String>,
    typed: ChangeForm,
    error: Option<String>,
}

/// `GET /portal/pbxes/:id/password`: the form and the latest change.
#[handler]
pub async fn password_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    render(state, &ctx, &id, Shown::default(), StatusCode::OK).await
}

/// `POST /portal/pbxes/:id/password`: asks for the new password through
/// `changePbxPassword` and shows it once.
#[handler]
pub async fn change_password(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let variables = form.variables(&id);
    match operations::run::<serde_json::Value>(state, &ctx, gui_password::CHANGE, variables).await {
        Ok(answer) => {
            let shown = Shown {
                password: gui_password::started_password(answer),
                ..Shown::default()
            };
            render(state, &ctx, &id, shown, StatusCode::OK).await
        }
        Err(error @ OperationError::Refused(_)) => {
            let shown = Shown {
                error: Some(error.message()),
                typed: ChangeForm {
                    choice: form.choice,
                    password: String::new(),
                },
                ..Shown::default()
            };
            render(state, &ctx, &id, shown, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

async fn render(
    state: &AppState,
    ctx: &PageContext,
    id: &str,
    shown: Shown,
    status: StatusCode,
) -> Response {
    let query = format!(
        "query PbxPassword($id: ID!) {{ pbx(id: $id) {{ id hostname passwordChange {{ {} }} }} }}",
        gui_password::CHANGE_FIELDS
    );
    let data: PbxData =
        match operations::run(state, ctx, &query, serde_json::json!({ "id": id })).await {
            Ok(data) => data,
            Err(error) => return error_page(ctx, StatusCode::NOT_FOUND, &error.message()),
        };
    let pbx = data.pbx;
    let title = format!("GUI password of PBX #{}", pbx.id);
    let this_page = format!("/portal/pbxes/{}/password", pbx.id);
    let change = pbx.password_change.as_ref();
    let page = Page {
        title: &title,
        nav: Nav::ClientHome,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            p.muted { a href="/portal" { "Home" } " › PBX #" (pbx.id) }
            h1 { (title) }
            p { "The password of the PBX's web administration"
                @if let Some(host) = &pbx.hostname { " at " a href={ "https://" (host) "/" } { (host) } }
                " (user " code { "admin" } ")." }
            @if let Some(password) = &shown.password { (gui_password::shown_once(password)) }
            (gui_password::status(change))
            @if gui_password::pending(change) {
                p.muted { a href=(this_page) { "Check whether it took effect" } }
            }
            (gui_password::form(ctx, &this_page, &shown.typed, shown.error.as_deref()))
        }),
    )
}

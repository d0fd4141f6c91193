//! The company's people, for admins: who may sign in to the staff
//! section, with which role; adding, disabling and re-enabling them.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::{csrf_field, error_page, html_response, Field};
use switchboard_web::operations::{self, OperationError};
use switchboard_web::{notice, AppState, Nav, Page, PageContext};

const STAFF: &str = "{ staffUsers { id username email role disabled mustChangePassword twoFactor lastSignInAt } viewer { user { id } } }";
const CREATE: &str =
    "mutation Create($input: StaffUserInput!) { createStaffUser(input: $input) { id } }";
const CHANGE: &str = "mutation Change($user: ID!, $role: StaffRole, $disabled: Boolean) { \
                      updateStaffUser(userId: $user, role: $role, disabled: $disabled) { id } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StaffData {
    staff_users: Vec<Member>,
    viewer: Viewer,
}

#[derive(Deserialize)]
struct Viewer {
    user: Me,
}

#[derive(Deserialize)]
struct Me {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: String,
    username: String,
    email: String,
    role: String,
    disabled: bool,
    must_change_password: bool,
    two_factor: bool,
    last_sign_in_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    done: Option<String>,
    done_sig: Option<String>,
}

/// The form that adds someone, as typed.
#[derive(Deserialize, Default)]
pub struct NewMember {
    username: String,
    email: String,
    role: String,
    #[serde(default)]
    one_time_password: String,
}

async fn page(
    state: &AppState,
    ctx: &PageContext,
    typed: &NewMember,
    errors: &[(String, String)],
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let data: StaffData = match operations::run(state, ctx, STAFF, serde_json::json!({})).await {
        Ok(data) => data,
        Err(error) => return error_page(ctx, error.status(), &error.message()),
    };
    let me = &data.viewer.user.id;
    html_response(status, Page { title: "Staff", nav: Nav::StaffTeam, ctx }.render(html! {
        h1 { "Staff" }
        @match message {
            Some((text, true)) => div #notice .alert.ok role="status" { (text) },
            Some((text, false)) => div.alert.error role="alert" { (text) },
            None => {}
        }
        div.table-wrap {
            table #staff {
                thead { tr { th scope="col" { "Username" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Sign-in" } th scope="col" { "Last signed in (UTC)" } th scope="col" { "Change" } } }
                tbody {
                    @for m in &data.staff_users {
                        tr {
                            td { a href={ "/admin/audit?actor=" (m.id) } title="What they did" { (m.username) } }
                            td { (m.email) }
                            td { (m.role.to_lowercase()) }
                            td {
                                @if m.disabled { span.badge.off { "disabled" } } @else { span.badge.good { "enabled" } }
                                @if m.must_change_password { " " span.badge.low { "one-time password" } }
                                @if m.two_factor { " " span.badge.good { "two-factor" } }
                            }
                            td { (m.last_sign_in_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into())) }
                            td {
                                @if &m.id == me {
                                    span.muted { "you" }
                                } @else {
                                    form.inline method="post" action={ "/admin/staff/" (m.id) } {
                                        (csrf_field(ctx))
                                        @if m.role == "ADMIN" {
                                            input type="hidden" name="role" value="STAFF";
                                            button type="submit" { "Make staff" }
                                        } @else {
                                            input type="hidden" name="role" value="ADMIN";
                                            button type="submit" { "Make admin" }
                                        }
                                    }
                                    form.inline method="post" action={ "/admin/staff/" (m.id) } {
                                        (csrf_field(ctx))
                                        @if m.disabled {
                                            input type="hidden" name="disabled" value="false";
                                            button type="submit" { "Enable" }
                                        } @else {
                                            input type="hidden" name="disabled" value="true";
                                            button type="submit" { "Disable" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Disabling someone ends their sessions at once; they can no longer sign in, with a password or through single sign-on." }
        h2 { "Add someone" }
        form #new-staff .stack.card method="post" action="/admin/staff" {
            (csrf_field(ctx))
            (Field { name: "username", label: "Username", kind: "text", value: &typed.username, autocomplete: "off", hint: None }.render(errors))
            (Field { name: "email", label: "Email", kind: "email", value: &typed.email, autocomplete: "off", hint: Some("(also how single sign-on finds them)") }.render(errors))
            label for="role" { "Role" }
            select #role name="role" {
                option value="STAFF" selected[typed.role != "ADMIN"] { "Staff: reads everything, runs support" }
                option value="ADMIN" selected[typed.role == "ADMIN"] { "Admin: also money, rates, accounts and staff" }
            }
            (Field { name: "one_time_password", label: "One-time password", kind: "text", value: &typed.one_time_password, autocomplete: "off", hint: Some("(empty: we email them a link to set their own)") }.render(errors))
            button.primary type="submit" { "Add" }
        }
    }))
}

/// `GET /admin/staff`
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<ListQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let done = notice::read(
        &state.key,
        "done",
        query.done.as_deref(),
        query.done_sig.as_deref(),
    );
    page(
        state,
        &ctx,
        &NewMember::default(),
        &[],
        done.map(|d| (d, true)),
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/staff`: runs `createStaffUser`.
#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<NewMember>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let input = serde_json::json!({
        "username": form.username,
        "email": form.email,
        "role": if form.role == "ADMIN" { "ADMIN" } else { "STAFF" },
        "oneTimePassword": Some(form.one_time_password.as_str()).filter(|p| !p.is_empty()),
    });
    match operations::run::<serde_json::Value>(
        state,
        &ctx,
        CREATE,
        serde_json::json!({ "input": input }),
    )
    .await
    {
        Ok(_) => {
            let done = if form.one_time_password.is_empty() {
                format!(
                    "{} is added; a link to set their password is on its way.",
                    form.username.trim()
                )
            } else {
                format!(
                    "{} is added; they choose their own password at their first sign-in.",
                    form.username.trim()
                )
            };
            let query = notice::query(&state.key, "done", &done);
            Redirect::see_other(format!("/admin/staff?{query}")).into_response()
        }
        Err(OperationError::Invalid(errors)) => {
            page(
                state,
                &ctx,
                &form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error @ OperationError::Refused(_)) => {
            page(
                state,
                &ctx,
                &form,
                &[],
                Some((&error.message(), false)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    role: Option<String>,
    disabled: Option<String>,
}

/// `POST /admin/staff/:id`: a new role, or disabled / enabled.
#[handler]
pub async fn change(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let ctx = match require(req, &[Role::Admin]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let role = form.role.filter(|r| r == "ADMIN" || r == "STAFF");
    let disabled = form.disabled.map(|d| d == "true");
    let variables = serde_json::json!({ "user": id, "role": role, "disabled": disabled });
    match operations::run::<serde_json::Value>(state, &ctx, CHANGE, variables).await {
        Ok(_) => {
            let done = match (role.as_deref(), disabled) {
                (_, Some(true)) => "Disabled: their sessions have ended.",
                (_, Some(false)) => "Enabled again.",
                (Some("ADMIN"), _) => "Now an admin.",
                _ => "Now staff.",
            };
            let query = notice::query(&state.key, "done", done);
            Redirect::see_other(format!("/admin/staff?{query}")).into_response()
        }
        Err(error @ OperationError::Refused(_)) => {
            page(
                state,
                &ctx,
                &NewMember::default(),
                &[],
                Some((&error.message(), false)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&ctx, error.status(), &error.message()),
    }
}

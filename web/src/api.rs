//! The GraphQL endpoint, and a query console that works without JavaScript.

use async_graphql::Variables;
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use maud::html;
use poem::http::{header, StatusCode};
use poem::web::{Data, Form};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_graphql::SessionToken;

use crate::layout::{csrf_field, html_response, Nav, Page};
use crate::{AppState, PageContext};

/// `POST /graphql`: the API. Signed-in browsers must send `X-CSRF-Token`.
#[handler]
pub async fn graphql(
    req: &Request,
    Data(state): Data<&AppState>,
    GraphQLRequest(request): GraphQLRequest,
) -> GraphQLResponse {
    let started = std::time::Instant::now();
    let response =
        switchboard_graphql::execute(&state.schema, with_viewer(request, &PageContext::of(req)))
            .await;
    switchboard_core::metrics::graphql_ran(started.elapsed());
    response.into()
}

fn with_viewer(mut request: async_graphql::Request, ctx: &PageContext) -> async_graphql::Request {
    request = request.data(ctx.viewer.clone());
    if let Some(token) = &ctx.session_token {
        request = request.data(SessionToken(token.clone()));
    }
    request
}

/// `GET /graphql/schema`: the schema in SDL.
#[handler]
pub fn schema_sdl() -> Response {
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .body(switchboard_graphql::sdl())
}

const EXAMPLE: &str = "query {\n  viewer {\n    user { username role }\n    account { name balance { formatted } }\n  }\n}\n";

#[derive(Deserialize)]
pub struct ConsoleForm {
    query: String,
    #[serde(default)]
    variables: String,
}

fn console(ctx: &PageContext, query: &str, variables: &str, result: Option<&str>) -> maud::Markup {
    Page {
        title: "API console",
        nav: Nav::Api,
        ctx,
    }
    .render(html! {
        h1 { "API console" }
        p.muted {
            "Every page of Switchboard runs an operation of this GraphQL schema as you; "
            "here you can run your own. Scripts send the same operations to "
            code { "POST /graphql" } " as JSON. "
            a href="/graphql" { "GraphiQL" } " does the same with completion and documentation; "
            a href="/graphql/schema" { "the schema" } " is plain text."
        }
        form.stack.card method="post" action="/graphql/console" {
            (csrf_field(ctx))
            label for="query" { "Operation" }
            textarea #query name="query" rows="12" spellcheck="false" { (query) }
            label for="variables" { "Variables " span.hint { "(JSON, optional)" } }
            textarea #variables name="variables" rows="3" spellcheck="false" { (variables) }
            button.primary type="submit" { "Run" }
        }
        @if let Some(result) = result {
            h2 { "Result" }
            pre.result { (result) }
        }
    })
}

/// GraphiQL injects its own styles, so its page alone allows inline styles.
const GRAPHIQL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                            img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                            form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// `GET /graphql`: GraphiQL, running operations as the signed-in viewer.
#[handler]
pub fn graphiql(req: &Request) -> Response {
    let ctx = PageContext::of(req);
    let page = Page {
        title: "API",
        nav: Nav::Api,
        ctx: &ctx,
    };
    let head = html! {
        meta name="csrf-token" content=(ctx.csrf_token);
        link rel="stylesheet" href="/static/graphiql/graphiql.min.css";
    };
    let content = html! {
        div #graphiql {
            noscript {
                div.card.narrow {
                    p { "GraphiQL needs JavaScript. The " a href="/graphql/console" { "API console" } " works without it." }
                }
            }
        }
    };
    let scripts = html! {
        script src="/static/graphiql/react.production.min.js" {}
        script src="/static/graphiql/react-dom.production.min.js" {}
        script src="/static/graphiql/graphiql.min.js" {}
        script src="/static/graphiql/graphiql-start.js" {}
    };
    html_response(StatusCode::OK, page.render_app(head, content, scripts))
        .with_header(header::CONTENT_SECURITY_POLICY, GRAPHIQL_CSP)
        .into_response()
}

/// `GET /graphql/console`: a console that works without JavaScript.
#[handler]
pub fn console_page(req: &Request) -> Response {
    html_response(
        StatusCode::OK,
        console(&PageContext::of(req), EXAMPLE, "", None),
    )
}

/// `POST /graphql/console`: runs what was typed, as the viewer.
#[handler]
pub async fn console_run(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ConsoleForm>,
) -> Response {
    let ctx = PageContext::of(req);
    let variables = if form.variables.trim().is_empty() {
        Ok(Variables::default())
    } else {
        serde_json::from_str::<serde_json::Value>(&form.variables).map(Variables::from_json)
    };
    let result = match variables {
        Err(error) => format!("The variables are not JSON: {error}"),
        Ok(variables) => {
            let request = async_graphql::Request::new(form.query.clone()).variables(variables);
            let response =
                switchboard_graphql::execute(&state.schema, with_viewer(request, &ctx)).await;
            serde_json::to_string_pretty(&response).unwrap_or_else(|e| e.to_string())
        }
    };
    html_response(
        StatusCode::OK,
        console(&ctx, &form.query, &form.variables, Some(&result)),
    )
}

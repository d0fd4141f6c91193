//! The routes of what every part shares: sign-in, password and two-factor
//! pages, the API, webhooks, health, metrics and static files.

use poem::{get, post, Route};

/// Adds these routes to `routes`.
///
/// The routes are made here rather than where all of them are put together:
/// a route boxes its handler, and an optimised build compiles a handler's
/// `async` body in the crate that boxes it. Made here, each handler is
/// compiled once, in its own crate.
pub fn mount(routes: Route) -> Route {
    routes
        .at("/webhooks/stripe", post(crate::webhooks::stripe))
        .at("/cdrs/push", post(crate::webhooks::cdr_push))
        .at("/static/switchboard.css", get(crate::assets::stylesheet))
        .at("/favicon.ico", get(crate::assets::favicon))
        .at("/healthz", get(crate::health::healthz))
        .at("/readyz", get(crate::health::readyz))
        .at("/metrics", get(crate::metrics::public))
        .at(
            "/sign-in",
            get(crate::auth::sign_in_page).post(crate::auth::sign_in),
        )
        .at(
            "/sign-in/code",
            get(crate::two_factor::code_page).post(crate::two_factor::check_code),
        )
        .at("/sign-in/sso", get(crate::sso::start))
        .at("/sign-in/sso/callback", get(crate::sso::callback))
        .at("/sign-out", post(crate::auth::sign_out))
        .at(
            "/password/reset",
            get(crate::auth::reset_page).post(crate::auth::reset_password),
        )
        .at(
            "/password/forgot",
            get(crate::recovery::forgot_page).post(crate::recovery::forgot),
        )
        .at(
            "/account/two-factor",
            get(crate::two_factor::settings).post(crate::two_factor::change),
        )
        .at(
            "/account/password",
            get(crate::auth::password_page).post(crate::auth::change_password),
        )
        .at("/static/graphiql/:file", get(crate::assets::graphiql_file))
        .at(
            "/static/rate-import.js",
            get(crate::assets::rate_import_script),
        )
        .at("/static/cart.js", get(crate::assets::cart_script))
        .at(
            "/static/order-progress.js",
            get(crate::assets::order_progress_script),
        )
        .at(
            "/static/calling-status.js",
            get(crate::assets::calling_status_script),
        )
        .at(
            "/graphql",
            get(crate::api::graphiql).post(crate::api::graphql),
        )
        .at(
            "/graphql/console",
            get(crate::api::console_page).post(crate::api::console_run),
        )
        .at("/graphql/schema", get(crate::api::schema_sdl))
}

//! The routes of the storefront's pages: the plans, the cart, checkout and the
//! documents.

use poem::{get, post, Route};

/// Adds these routes to `routes`.
///
/// The routes are made here rather than where all of them are put together:
/// a route boxes its handler, and an optimised build compiles a handler's
/// `async` body in the crate that boxes it. Made here, each handler is
/// compiled once, in its own crate.
pub fn mount(routes: Route) -> Route {
    routes
        .at("/", get(crate::home))
        .at("/plans", get(crate::plans_page))
        .at("/plans/:slug", get(crate::plan_page))
        .at("/cart", get(crate::cart))
        .at("/terms", get(crate::documents::terms))
        .at("/privacy", get(crate::documents::privacy))
        .at("/checkout", post(crate::checkout))
        .at(
            "/pay/test/:order",
            get(crate::test_payment).post(crate::test_pay),
        )
}

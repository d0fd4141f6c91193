//! The routes of the staff's pages under `/admin`.

use poem::{get, post, Route};

/// Adds these routes to `routes`.
///
/// The routes are made here rather than where all of them are put together:
/// a route boxes its handler, and an optimised build compiles a handler's
/// `async` body in the crate that boxes it. Made here, each handler is
/// compiled once, in its own crate.
pub fn mount(routes: Route) -> Route {
    routes
        .at("/admin/numbers", get(crate::numbers::inventory))
        .at("/admin/numbers/awaiting", get(crate::numbers::awaiting))
        .at("/admin/numbers/preview", post(crate::numbers::preview))
        .at("/admin/numbers/import", post(crate::numbers::import))
        .at("/admin/numbers/:id", get(crate::numbers::show))
        .at(
            "/admin/numbers/:id/activate",
            post(crate::numbers::activate),
        )
        .at("/admin", get(crate::home))
        .at("/admin/tickets", get(crate::support::queue))
        .at("/admin/tickets/:id", get(crate::support::show))
        .at("/admin/tickets/:id/reply", post(crate::support::reply))
        .at("/admin/tickets/:id/note", post(crate::support::note))
        .at("/admin/tickets/:id/assign", post(crate::support::assign))
        .at("/admin/tickets/:id/close", post(crate::support::close))
        .at(
            "/admin/services",
            get(crate::services::catalogue).post(crate::services::save),
        )
        .at("/admin/service-orders", get(crate::services::orders))
        .at(
            "/admin/service-orders/:id",
            get(crate::services::order_page),
        )
        .at(
            "/admin/service-orders/:id/done",
            post(crate::services::complete),
        )
        .at("/admin/outbox", get(crate::outbox))
        .at("/admin/outbox/:id", get(crate::message))
        .at("/admin/accounts/:id", get(crate::accounts::show))
        .at(
            "/admin/accounts/:id/edit",
            get(crate::accounts::edit).post(crate::accounts::update),
        )
        .at("/admin/accounts/:id/switch", post(crate::accounts::switch))
        .at("/admin/accounts/:id/adjust", post(crate::accounts::adjust))
        .at(
            "/admin/accounts/:id/users/:user",
            post(crate::accounts::user_password),
        )
        .at("/admin/calling", get(crate::calling::status))
        .at(
            "/admin/staff",
            get(crate::staff::list).post(crate::staff::create),
        )
        .at("/admin/staff/:id", post(crate::staff::change))
        .at("/admin/audit", get(crate::audit::log))
        .at(
            "/admin/calling-plans/:id/rates",
            post(crate::rates::set_rate),
        )
        .at(
            "/admin/plans",
            get(crate::catalogue::plans_list).post(crate::catalogue::save_plan),
        )
        .at("/admin/pbxes", get(crate::catalogue::pbxes_list))
        .at("/admin/pbxes/:id", get(crate::catalogue::pbx_page))
        .at("/admin/pbxes/:id/reveal", post(crate::catalogue::reveal))
        .at("/admin/pbxes/:id/label", post(crate::catalogue::set_label))
        .at(
            "/admin/pbxes/:id/password",
            post(crate::catalogue::set_gui_password),
        )
        .at("/admin/calls", get(crate::call_records::list))
        .at("/admin/calls/price", post(crate::call_records::price))
        .at(
            "/admin/calling-plans",
            get(crate::rates::list).post(crate::rates::create),
        )
        .at("/admin/calling-plans/:id", get(crate::rates::show))
        .at(
            "/admin/calling-plans/:id/import",
            post(crate::rates::import),
        )
        .at("/admin/pbxes/retry", post(crate::catalogue::retry))
}

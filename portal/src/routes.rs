//! The routes of the client's pages: the panel under `/portal`, an order's page
//! and the email confirmation.

use poem::{get, post, Route};

/// Adds these routes to `routes`.
///
/// The routes are made here rather than where all of them are put together:
/// a route boxes its handler, and an optimised build compiles a handler's
/// `async` body in the crate that boxes it. Made here, each handler is
/// compiled once, in its own crate.
pub fn mount(routes: Route) -> Route {
    routes
        .at("/orders/:id", get(crate::order_page))
        .at("/orders/:id/pay", post(crate::pay_again))
        .at(
            "/account/email/confirm",
            get(crate::profile::confirm_page).post(crate::profile::confirm),
        )
        .at("/portal", get(crate::home))
        .at("/portal/reports", get(crate::reports::reports))
        .at("/portal/pbxes", get(crate::pbxes::pbxes))
        .at(
            "/portal/pbxes/new",
            get(crate::pbxes::new).post(crate::pbxes::order),
        )
        .at("/portal/pbxes/:id/label", post(crate::pbxes::set_label))
        .at(
            "/portal/pbxes/:id/password",
            get(crate::gui_password::password_page).post(crate::gui_password::change_password),
        )
        .at(
            "/portal/funds",
            get(crate::funds::funds).post(crate::funds::add),
        )
        .at(
            "/portal/funds/auto-replenish",
            post(crate::funds::set_auto_replenish),
        )
        .at(
            "/portal/funds/card",
            get(crate::funds::card_page).post(crate::funds::save_card),
        )
        .at("/portal/funds/card/remove", post(crate::funds::remove_card))
        .at(
            "/portal/funds/card/replace",
            post(crate::funds::replace_card),
        )
        .at(
            "/portal/profile",
            get(crate::profile::profile).post(crate::profile::update),
        )
        .at("/portal/profile/email", post(crate::profile::change_email))
        .at("/portal/statements", get(crate::funds::statements))
        .at("/portal/reports/calls.csv", get(crate::reports::calls_csv))
        .at(
            "/portal/tickets",
            get(crate::support::list).post(crate::support::open),
        )
        .at("/portal/tickets/new", get(crate::support::new))
        .at("/portal/tickets/:id", get(crate::support::show))
        .at("/portal/tickets/:id/reply", post(crate::support::reply))
        .at("/portal/services", get(crate::services::list))
        .at(
            "/portal/services/order/:service",
            get(crate::services::order_page).post(crate::services::place_order),
        )
        .at("/portal/services/:id", get(crate::services::show))
        .at("/portal/services/:id/cancel", post(crate::services::cancel))
        .at("/portal/numbers", get(crate::numbers::list))
        .at("/portal/numbers/find", get(crate::numbers::find))
        .at("/portal/numbers/order", post(crate::numbers::order))
        .at("/portal/numbers/:id/release", post(crate::numbers::release))
}

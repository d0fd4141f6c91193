//! The routes, and serving them.

use std::time::Duration;

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{get, post, Endpoint, EndpointExt, Route, Server};
use switchboard_admin::catalogue;
use switchboard_web::layout::message_page;
use switchboard_web::{
    api, assets, auth, health, metrics, pipeline, recovery, sso, two_factor, webhooks, AppState,
};

/// Every route of Switchboard, inside the request pipeline.
pub fn routes(state: AppState) -> impl Endpoint {
    let routes = Route::new()
        .at("/", get(switchboard_storefront::home))
        .at("/plans", get(switchboard_storefront::plans_page))
        .at("/plans/:slug", get(switchboard_storefront::plan_page))
        .at("/cart", get(switchboard_storefront::cart))
        .at("/terms", get(switchboard_storefront::documents::terms))
        .at("/privacy", get(switchboard_storefront::documents::privacy))
        .at("/checkout", post(switchboard_storefront::checkout))
        .at(
            "/pay/test/:order",
            get(switchboard_storefront::test_payment).post(switchboard_storefront::test_pay),
        )
        .at("/orders/:id", get(switchboard_portal::order_page))
        .at("/orders/:id/pay", post(switchboard_portal::pay_again))
        .at("/webhooks/stripe", post(webhooks::stripe))
        .at("/cdrs/push", post(webhooks::cdr_push))
        .at("/static/switchboard.css", get(assets::stylesheet))
        .at("/favicon.ico", get(assets::favicon))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(metrics::public))
        .at("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .at(
            "/sign-in/code",
            get(two_factor::code_page).post(two_factor::check_code),
        )
        .at("/sign-in/sso", get(sso::start))
        .at("/sign-in/sso/callback", get(sso::callback))
        .at("/sign-out", post(auth::sign_out))
        .at(
            "/password/reset",
            get(auth::reset_page).post(auth::reset_password),
        )
        .at(
            "/password/forgot",
            get(recovery::forgot_page).post(recovery::forgot),
        )
        .at(
            "/account/email/confirm",
            get(switchboard_portal::profile::confirm_page)
                .post(switchboard_portal::profile::confirm),
        )
        .at(
            "/account/two-factor",
            get(two_factor::settings).post(two_factor::change),
        )
        .at(
            "/account/password",
            get(auth::password_page).post(auth::change_password),
        )
        .at("/static/graphiql/:file", get(assets::graphiql_file))
        .at("/static/rate-import.js", get(assets::rate_import_script))
        .at("/static/cart.js", get(assets::cart_script))
        .at(
            "/static/order-progress.js",
            get(assets::order_progress_script),
        )
        .at(
            "/static/calling-status.js",
            get(assets::calling_status_script),
        )
        .at("/graphql", get(api::graphiql).post(api::graphql))
        .at(
            "/graphql/console",
            get(api::console_page).post(api::console_run),
        )
        .at("/graphql/schema", get(api::schema_sdl))
        .at("/portal", get(switchboard_portal::home))
        .at("/portal/reports", get(switchboard_portal::reports::reports))
        .at("/portal/pbxes", get(switchboard_portal::pbxes::pbxes))
        .at(
            "/portal/pbxes/new",
            get(switchboard_portal::pbxes::new).post(switchboard_portal::pbxes::order),
        )
        .at(
            "/portal/pbxes/:id/label",
            post(switchboard_portal::pbxes::set_label),
        )
        .at(
            "/portal/pbxes/:id/password",
            get(switchboard_portal::gui_password::password_page)
                .post(switchboard_portal::gui_password::change_password),
        )
        .at(
            "/portal/funds",
            get(switchboard_portal::funds::funds).post(switchboard_portal::funds::add),
        )
        .at(
            "/portal/funds/auto-replenish",
            post(switchboard_portal::funds::set_auto_replenish),
        )
        .at(
            "/portal/funds/card",
            get(switchboard_portal::funds::card_page).post(switchboard_portal::funds::save_card),
        )
        .at(
            "/portal/funds/card/remove",
            post(switchboard_portal::funds::remove_card),
        )
        .at(
            "/portal/funds/card/replace",
            post(switchboard_portal::funds::replace_card),
        )
        .at(
            "/portal/profile",
            get(switchboard_portal::profile::profile).post(switchboard_portal::profile::update),
        )
        .at(
            "/portal/profile/email",
            post(switchboard_portal::profile::change_email),
        )
        .at(
            "/portal/statements",
            get(switchboard_portal::funds::statements),
        )
        .at(
            "/portal/reports/calls.csv",
            get(switchboard_portal::reports::calls_csv),
        )
        .at(
            "/portal/tickets",
            get(switchboard_portal::support::list).post(switchboard_portal::support::open),
        )
        .at("/portal/tickets/new", get(switchboard_portal::support::new))
        .at(
            "/portal/tickets/:id",
            get(switchboard_portal::support::show),
        )
        .at(
            "/portal/tickets/:id/reply",
            post(switchboard_portal::support::reply),
        )
        .at("/portal/services", get(switchboard_portal::services::list))
        .at(
            "/portal/services/order/:service",
            get(switchboard_portal::services::order_page)
                .post(switchboard_portal::services::place_order),
        )
        .at(
            "/portal/services/:id",
            get(switchboard_portal::services::show),
        )
        .at(
            "/portal/services/:id/cancel",
            post(switchboard_portal::services::cancel),
        )
        .at("/portal/numbers", get(switchboard_portal::numbers::list))
        .at(
            "/portal/numbers/find",
            get(switchboard_portal::numbers::find),
        )
        .at(
            "/portal/numbers/order",
            post(switchboard_portal::numbers::order),
        )
        .at(
            "/portal/numbers/:id/release",
            post(switchboard_portal::numbers::release),
        )
        .at("/admin/numbers", get(switchboard_admin::numbers::inventory))
        .at(
            "/admin/numbers/awaiting",
            get(switchboard_admin::numbers::awaiting),
        )
        .at(
            "/admin/numbers/preview",
            post(switchboard_admin::numbers::preview),
        )
        .at(
            "/admin/numbers/import",
            post(switchboard_admin::numbers::import),
        )
        .at("/admin/numbers/:id", get(switchboard_admin::numbers::show))
        .at(
            "/admin/numbers/:id/activate",
            post(switchboard_admin::numbers::activate),
        )
        .at("/admin", get(switchboard_admin::home))
        .at("/admin/tickets", get(switchboard_admin::support::queue))
        .at("/admin/tickets/:id", get(switchboard_admin::support::show))
        .at(
            "/admin/tickets/:id/reply",
            post(switchboard_admin::support::reply),
        )
        .at(
            "/admin/tickets/:id/note",
            post(switchboard_admin::support::note),
        )
        .at(
            "/admin/tickets/:id/assign",
            post(switchboard_admin::support::assign),
        )
        .at(
            "/admin/tickets/:id/close",
            post(switchboard_admin::support::close),
        )
        .at(
            "/admin/services",
            get(switchboard_admin::services::catalogue).post(switchboard_admin::services::save),
        )
        .at(
            "/admin/service-orders",
            get(switchboard_admin::services::orders),
        )
        .at(
            "/admin/service-orders/:id",
            get(switchboard_admin::services::order_page),
        )
        .at(
            "/admin/service-orders/:id/done",
            post(switchboard_admin::services::complete),
        )
        .at("/admin/outbox", get(switchboard_admin::outbox))
        .at("/admin/outbox/:id", get(switchboard_admin::message))
        .at(
            "/admin/accounts/:id",
            get(switchboard_admin::accounts::show),
        )
        .at(
            "/admin/accounts/:id/edit",
            get(switchboard_admin::accounts::edit).post(switchboard_admin::accounts::update),
        )
        .at(
            "/admin/accounts/:id/switch",
            post(switchboard_admin::accounts::switch),
        )
        .at(
            "/admin/accounts/:id/adjust",
            post(switchboard_admin::accounts::adjust),
        )
        .at(
            "/admin/accounts/:id/users/:user",
            post(switchboard_admin::accounts::user_password),
        )
        .at("/admin/calling", get(switchboard_admin::calling::status))
        .at(
            "/admin/staff",
            get(switchboard_admin::staff::list).post(switchboard_admin::staff::create),
        )
        .at("/admin/staff/:id", post(switchboard_admin::staff::change))
        .at("/admin/audit", get(switchboard_admin::audit::log))
        .at(
            "/admin/calling-plans/:id/rates",
            post(switchboard_admin::rates::set_rate),
        )
        .at(
            "/admin/plans",
            get(catalogue::plans_list).post(catalogue::save_plan),
        )
        .at("/admin/pbxes", get(catalogue::pbxes_list))
        .at("/admin/pbxes/:id", get(catalogue::pbx_page))
        .at("/admin/pbxes/:id/reveal", post(catalogue::reveal))
        .at("/admin/pbxes/:id/label", post(catalogue::set_label))
        .at(
            "/admin/pbxes/:id/password",
            post(catalogue::set_gui_password),
        )
        .at("/admin/calls", get(switchboard_admin::call_records::list))
        .at(
            "/admin/calls/price",
            post(switchboard_admin::call_records::price),
        )
        .at(
            "/admin/calling-plans",
            get(switchboard_admin::rates::list).post(switchboard_admin::rates::create),
        )
        .at(
            "/admin/calling-plans/:id",
            get(switchboard_admin::rates::show),
        )
        .at(
            "/admin/calling-plans/:id/import",
            post(switchboard_admin::rates::import),
        )
        .at("/admin/pbxes/retry", post(catalogue::retry))
        .catch_error(|_: NotFoundError| async {
            message_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no page at this address.",
            )
        })
        .catch_error(|_: MethodNotAllowedError| async {
            message_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "This address does not take that kind of request.",
            )
        });
    pipeline::wrap(routes, state)
}

/// Serves `metrics.listen`: `/metrics` alone, without a token, until the
/// process ends.
pub async fn serve_metrics(
    acceptor: impl Acceptor + 'static,
    state: AppState,
) -> anyhow::Result<()> {
    let routes = Route::new()
        .at("/metrics", get(metrics::private))
        .data(state);
    Server::new_with_acceptor(acceptor)
        .run(routes)
        .await
        .map_err(Into::into)
}

/// A bound listener and the address it got (port 0 picks a free port).
pub async fn bind(
    address: std::net::SocketAddr,
) -> anyhow::Result<(impl Acceptor, std::net::SocketAddr)> {
    let acceptor = TcpListener::bind(address.to_string())
        .into_acceptor()
        .await
        .map_err(|e| anyhow::anyhow!("listening on {address}: {e}"))?;
    let local = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| anyhow::anyhow!("the listener has no address"))?;
    Ok((acceptor, local))
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    acceptor: impl Acceptor + 'static,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(routes(state), shutdown, Some(Duration::from_secs(10)))
        .await
        .map_err(Into::into)
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives while
/// the server is still starting up then stops it cleanly instead of killing
/// the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        tokio::select! {
            _ = received(interrupt) => {},
            _ = received(terminate) => {},
        }
        tracing::info!("shutting down");
    }
}

/// A server on a free loopback port, in a thread and runtime of its own
/// with one worker per core as `serve` has, so that a benchmark's visitors
/// in the caller's runtime do not share the server's workers.
pub struct InThread {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl InThread {
    /// Starts serving `state`.
    pub async fn start(state: AppState) -> anyhow::Result<InThread> {
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let (acceptor, address) = bind("127.0.0.1:0".parse().expect("an address")).await?;
                let _ = address_tx.send(address);
                serve(acceptor, state, async {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        let address = address_rx
            .await
            .map_err(|_| anyhow::anyhow!("the server thread stopped before listening"))?;
        Ok(InThread {
            base_url: format!("http://{address}"),
            stop,
            thread,
        })
    }

    /// Stops the server and waits for its thread.
    pub fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the server thread panicked"))?
    }
}

//! The routes, and serving them.

use std::time::Duration;

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{get, Endpoint, EndpointExt, Route, Server};
use switchboard_web::layout::message_page;
use switchboard_web::{metrics, pipeline, AppState};

/// Every route of Switchboard, inside the request pipeline.
pub fn routes(state: AppState) -> impl Endpoint {
    let routes = switchboard_web::routes::mount(Route::new());
    let routes = switchboard_storefront::routes::mount(routes);
    let routes = switchboard_portal::routes::mount(routes);
    let routes = switchboard_admin::routes::mount(routes)
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

//! `GET /metrics`: this instance's figures in Prometheus' text format —
//! requests and their latency by route, jobs run, CDRs received (counted by
//! this process), and jobs queued, the outbox and the database pool (read
//! when scraped). On the public listener only for a scraper holding
//! `metrics.token`; on `metrics.listen`, for anyone who can reach it.

use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use switchboard_core::{db, keys, metrics};

use crate::layout::message_page;
use crate::AppState;

/// `GET /metrics` on the public listener: there only with a token set, and
/// answered only with it.
#[handler]
pub async fn public(req: &Request, Data(state): Data<&AppState>) -> Response {
    let Some(token) = &state.settings.metrics.token else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.",
        );
    };
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !keys::same_token(sent, token.expose()) {
        return "Send Authorization: Bearer and the metrics token."
            .with_status(StatusCode::UNAUTHORIZED)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
            .into_response();
    }
    render(state).await
}

/// `GET /metrics` on the listener of its own (`metrics.listen`).
#[handler]
pub async fn private(Data(state): Data<&AppState>) -> Response {
    render(state).await
}

async fn render(state: &AppState) -> Response {
    let gauges = async {
        let mut conn = db::conn(&state.pool).await?;
        anyhow::Ok(metrics::database_gauges(&mut conn).await?)
    }
    .await;
    let mut gauges = match gauges {
        Ok(gauges) => gauges,
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "metrics: the database is not answering");
            return "The database is not answering."
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response();
        }
    };
    let pool = state.pool.status();
    gauges.pool_max = pool.max_size;
    gauges.pool_open = pool.size;
    gauges.pool_idle = pool.available;
    gauges.pool_waiting = pool.waiting;
    metrics::global()
        .render(&gauges)
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}

//! Health checks for load balancers and supervisors.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse, Response};
use switchboard_core::db;

use crate::AppState;

/// `GET /healthz`: the process answers.
#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers too.
#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    match db::ping(&state.pool).await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            "the database is not answering"
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}

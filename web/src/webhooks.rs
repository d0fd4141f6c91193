//! Webhooks from payment gateways: outside the GraphQL schema because the
//! caller is Stripe, not a viewer, and the signature is the authentication.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, Body, IntoResponse, Request, Response};
use switchboard_payments::webhook::{Webhook, WebhookError};
use switchboard_payments::Gateway;

use crate::AppState;

/// `POST /webhooks/stripe`: verified over the raw body, handled once per event.
#[handler]
pub async fn stripe(req: &Request, Data(state): Data<&AppState>, body: Body) -> Response {
    let Gateway::Stripe(stripe) = &state.gateway else {
        return (StatusCode::NOT_FOUND, "Stripe is not configured").into_response();
    };
    let Ok(payload) = body.into_bytes().await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let webhook = Webhook {
        pool: &state.pool,
        key: &state.key,
        staff_address: &state.settings.email.staff_address,
        stripe,
    };
    match webhook
        .handle(&payload, signature, chrono::Utc::now().timestamp())
        .await
    {
        Ok(outcome) => {
            tracing::info!(?outcome, "Stripe webhook");
            (StatusCode::OK, "ok").into_response()
        }
        Err(error @ (WebhookError::Signature(_) | WebhookError::Malformed(_))) => {
            tracing::warn!(%error, "Stripe webhook refused");
            (StatusCode::BAD_REQUEST, error.to_string()).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "Stripe webhook failed; Stripe will retry");
            (StatusCode::INTERNAL_SERVER_ERROR, "not handled").into_response()
        }
    }
}

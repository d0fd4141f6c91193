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
        base_url: state.settings.base_url(),
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

/// `POST /cdrs/push`: a PBX pushes a JSON batch of its CDRs, authenticated
/// by its own bearer token (`issueCdrToken`). Each record is Asterisk's
/// columns with `calldate` in RFC 3339; a malformed record is kept aside
/// with its reason and does not stop the rest.
#[handler]
pub async fn cdr_push(req: &Request, Data(state): Data<&AppState>, body: Body) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return (StatusCode::UNAUTHORIZED, "a bearer token is needed").into_response();
    };
    let mut conn = match switchboard_core::db::conn(&state.pool).await {
        Ok(conn) => conn,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response(),
    };
    let Ok(Some((pbx, _zone))) =
        switchboard_core::commerce::pbxes::by_cdr_token(&mut conn, token).await
    else {
        return (StatusCode::UNAUTHORIZED, "unknown token").into_response();
    };
    let Ok(payload) = body.into_bytes().await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let batch: serde_json::Value = match serde_json::from_slice(&payload) {
        Ok(batch) => batch,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("not JSON: {error}")).into_response()
        }
    };
    let Some(items) = batch.get("cdrs").and_then(|v| v.as_array()) else {
        return (StatusCode::BAD_REQUEST, "expected {\"cdrs\": [...]}").into_response();
    };
    let mut records = Vec::new();
    let mut rejects = Vec::new();
    for (index, item) in items.iter().enumerate() {
        // Records that read but make no sense (no call date, billsec past
        // the duration …) are set aside by ingestion, as from every source.
        match serde_json::from_value::<switchboard_core::calls::cdr::RawCdr>(item.clone()) {
            Ok(record) => records.push(record),
            Err(error) => rejects.push((item.to_string(), format!("record {index}: {error}"))),
        }
    }
    match switchboard_core::calls::ingest(
        &mut conn,
        &state.rate_tables,
        pbx,
        "push",
        &records,
        &rejects,
    )
    .await
    {
        Ok(result) => poem::web::Json(serde_json::json!({
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "unrated": result.unrated,
        }))
        .into_response(),
        Err(error) => {
            tracing::error!(%error, pbx, "storing pushed CDRs failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "not stored; send the batch again",
            )
                .into_response()
        }
    }
}

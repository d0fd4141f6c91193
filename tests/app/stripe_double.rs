//! A stand-in for Stripe's API on loopback: it speaks the two endpoints
//! Switchboard calls (form-encoded requests, bearer-key authentication,
//! Stripe's JSON and error shapes), records what it was sent, and can be
//! told to fail. Webhooks are signed as Stripe signs them.

use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{get, handler, post, EndpointExt, IntoResponse, Request, Response, Route};
use switchboard_payments::webhook::sign;

pub const SECRET_KEY: &str = "sk_test_switchboard";
pub const WEBHOOK_SECRET: &str = "whsec_switchboard_test";

#[derive(Default)]
struct State {
    sessions: Vec<Vec<(String, String)>>,
    fail_next: u32,
}

/// The stand-in and what it saw.
#[derive(Clone, Default)]
pub struct FakeStripe {
    state: Arc<Mutex<State>>,
    pub url: String,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let mut fake = FakeStripe::default();
        let (acceptor, address) =
            switchboard::server::bind("127.0.0.1:0".parse().expect("address"))
                .await
                .expect("a port");
        fake.url = format!("http://{address}/");
        let routes = Route::new()
            .at("/v1/checkout/sessions", post(create_session))
            .at("/v1/payment_intents/:id", get(payment_intent))
            .data(fake.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
        fake
    }

    /// The form fields of every Checkout Session created.
    pub fn sessions(&self) -> Vec<Vec<(String, String)>> {
        self.state.lock().expect("state").sessions.clone()
    }

    /// The next `n` session requests answer 500.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().expect("state").fail_next = n;
    }
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    Json(serde_json::json!({ "error": { "type": kind, "message": message } }))
        .with_status(status)
        .into_response()
}

fn authorised(req: &Request) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SECRET_KEY}"))
}

#[handler]
async fn create_session(req: &Request, Data(fake): Data<&FakeStripe>, body: String) -> Response {
    if !authorised(req) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    for required in [
        "mode",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][price_data][currency]",
        "line_items[0][quantity]",
    ] {
        if field(required).is_none() {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("Missing required param: {required}."),
            );
        }
    }
    let mut state = fake.state.lock().expect("state");
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Something went wrong on Stripe's end.",
        );
    }
    state.sessions.push(form.clone());
    let id = format!("cs_test_{}", state.sessions.len());
    Json(serde_json::json!({
        "id": id,
        "object": "checkout.session",
        "mode": field("mode"),
        "url": format!("https://checkout.stripe.test/c/pay/{id}"),
        "client_reference_id": field("client_reference_id"),
        "amount_total": field("line_items[0][price_data][unit_amount]").and_then(|v| v.parse::<i64>().ok()),
        "currency": field("line_items[0][price_data][currency]"),
        "payment_status": "unpaid",
        "status": "open",
    }))
    .into_response()
}

#[handler]
fn payment_intent(req: &Request, Path(id): Path<String>) -> Response {
    if !authorised(req) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    Json(serde_json::json!({
        "id": id,
        "object": "payment_intent",
        "status": "succeeded",
        "payment_method": "pm_card_visa",
        "setup_future_usage": "off_session",
    }))
    .into_response()
}

/// A Checkout Session event as Stripe sends it.
pub fn session_event(
    event_id: &str,
    kind: &str,
    order: &str,
    cents: i64,
    payment_status: &str,
) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": {
            "id": "cs_test_1",
            "object": "checkout.session",
            "client_reference_id": order,
            "amount_total": cents,
            "currency": "usd",
            "customer": "cus_test_1",
            "payment_intent": "pi_test_1",
            "payment_status": payment_status,
            "metadata": { "order": order },
        }},
    })
    .to_string()
}

/// Posts a webhook to Switchboard with the given signature header.
pub async fn deliver(
    base_url: &str,
    payload: &str,
    signature: Option<String>,
) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request
        .send()
        .await
        .expect("POST /webhooks/stripe")
        .status()
}

/// Stripe's signature for a payload, made now.
pub fn signed(payload: &str) -> Option<String> {
    Some(sign(
        payload.as_bytes(),
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
    ))
}

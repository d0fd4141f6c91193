//! A stand-in for Stripe's API on loopback: it speaks the endpoints
//! Switchboard calls (form-encoded requests, bearer-key authentication,
//! Stripe's JSON and error shapes), keeps its Checkout Sessions with their
//! status, records what it was sent, and can be told to fail. Idempotency
//! keys work as Stripe's do: every key is recorded, a repeated key with the
//! same request gets the first answer again (an error included), and a
//! repeated key with another request is refused. Webhooks are signed as
//! Stripe signs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{get, handler, post, EndpointExt, IntoResponse, Request, Response, Route};
use switchboard_payments::webhook::sign;

pub const SECRET_KEY: &str = "sk_test_switchboard";
pub const WEBHOOK_SECRET: &str = "whsec_switchboard_test";

/// One Checkout Session as the stand-in keeps it.
#[derive(Clone, Debug)]
pub struct StoredSession {
    pub id: String,
    pub form: Vec<(String, String)>,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `unpaid` or `paid`.
    pub payment_status: String,
    pub expires_at: i64,
    /// Set when the session completes, as Stripe does.
    pub payment_intent: Option<String>,
    /// Set when a `mode=setup` session completes.
    pub setup_intent: Option<String>,
}

impl StoredSession {
    fn field(&self, name: &str) -> Option<String> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "object": "checkout.session",
            "mode": self.field("mode"),
            "url": (self.status == "open").then(|| format!("https://checkout.stripe.test/c/pay/{}", self.id)),
            "client_reference_id": self.field("client_reference_id"),
            "amount_total": self.field("line_items[0][price_data][unit_amount]").and_then(|v| v.parse::<i64>().ok()),
            "currency": self.field("line_items[0][price_data][currency]"),
            "customer": self.field("customer").unwrap_or_else(|| "cus_test_1".into()),
            "payment_intent": self.payment_intent,
            "setup_intent": self.setup_intent,
            "payment_status": self.payment_status,
            "status": self.status,
            "expires_at": self.expires_at,
            "metadata": match self.field("metadata[account]") {
                Some(account) => serde_json::json!({ "account": account }),
                None => serde_json::json!({ "order": self.field("metadata[order]") }),
            },
        })
    }
}

/// A POST as the stand-in received it: its path and its `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub path: String,
    pub idempotency_key: Option<String>,
}

/// The first answer given under an idempotency key, and what it answered.
struct Saved {
    path: String,
    body: String,
    status: StatusCode,
    answer: serde_json::Value,
}

#[derive(Default)]
struct State {
    sessions: Vec<StoredSession>,
    /// Customers made through the API: id and the form that made it.
    customers: Vec<(String, Vec<(String, String)>)>,
    /// SetupIntents of completed setup sessions: id, customer, card.
    setup_intents: Vec<(String, String, String)>,
    /// Off-session PaymentIntents: id and the form that made it.
    intents: Vec<(String, Vec<(String, String)>)>,
    posts: Vec<Post>,
    saved: HashMap<String, Saved>,
    fail_next: u32,
    lose_next: u32,
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
            .at("/v1/checkout/sessions/:id", get(retrieve_session))
            .at("/v1/checkout/sessions/:id/expire", post(expire_session))
            .at("/v1/payment_intents/:id", get(payment_intent))
            .at("/v1/payment_intents", post(create_payment_intent))
            .at("/v1/payment_methods/:id", get(payment_method))
            .at("/v1/customers", post(create_customer))
            .at("/v1/setup_intents/:id", get(setup_intent))
            .data(fake.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
        fake
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    /// The form fields of every Checkout Session created.
    pub fn sessions(&self) -> Vec<Vec<(String, String)>> {
        self.state()
            .sessions
            .iter()
            .map(|s| s.form.clone())
            .collect()
    }

    /// One session as it stands now.
    pub fn session(&self, id: &str) -> StoredSession {
        self.state()
            .sessions
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no session {id}"))
    }

    /// The ids of the sessions a customer could still pay.
    pub fn open_sessions(&self) -> Vec<String> {
        self.state()
            .sessions
            .iter()
            .filter(|s| s.status == "open")
            .map(|s| s.id.clone())
            .collect()
    }

    /// The forms of every off-session PaymentIntent made.
    pub fn intents(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.state().intents.clone()
    }

    /// A `payment_intent.*` event about an off-session PaymentIntent.
    pub fn intent_event(&self, event_id: &str, kind: &str, intent: &str) -> String {
        let form = self
            .state()
            .intents
            .iter()
            .find(|(id, _)| id == intent)
            .map(|(_, form)| form.clone())
            .unwrap_or_else(|| panic!("no intent {intent}"));
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        event_json(
            event_id,
            kind,
            serde_json::json!({
                "id": intent,
                "object": "payment_intent",
                "amount": field("amount").and_then(|a| a.parse::<i64>().ok()),
                "currency": field("currency"),
                "status": if kind == "payment_intent.succeeded" { "succeeded" } else { "requires_payment_method" },
                "metadata": {
                    "replenishment": field("metadata[replenishment]"),
                    "account": field("metadata[account]"),
                },
            }),
        )
    }

    /// Every POST received, in order.
    pub fn posts(&self) -> Vec<Post> {
        self.state().posts.clone()
    }

    /// The next `n` requests to create a session answer 500.
    pub fn fail_next(&self, n: u32) {
        self.state().fail_next = n;
    }

    /// The next `n` POSTs are carried out, then their connection drops
    /// before the answer leaves: the caller cannot tell what happened.
    pub fn lose_next_answers(&self, n: u32) {
        self.state().lose_next = n;
    }

    /// Moves a session's expiry, as if it had been opened earlier.
    pub fn set_expires_at(&self, id: &str, expires_at: i64) {
        self.edit(id, |s| s.expires_at = expires_at);
    }

    /// Stripe expires a session whose time ran out.
    pub fn time_out(&self, id: &str) {
        self.edit(id, |s| s.status = "expired".into());
    }

    /// The customer finishes paying a session: it completes, `paid` now or
    /// (a bank debit, say) `unpaid` until the money arrives. Returns the
    /// `checkout.session.completed` event Stripe would send.
    pub fn complete(&self, id: &str, paid: bool, event_id: &str) -> String {
        let number = id.rsplit('_').next().unwrap_or("0").to_owned();
        self.edit(id, |s| {
            s.status = "complete".into();
            s.payment_status = if paid { "paid" } else { "unpaid" }.into();
            s.payment_intent = Some(format!("pi_test_{number}"));
        });
        self.event(id, event_id, "checkout.session.completed")
    }

    /// The client gives `method` (a test card: `pm_card_visa`,
    /// `pm_card_mastercard`) on a `mode=setup` session: it completes with a
    /// SetupIntent for the session's customer. Returns the
    /// `checkout.session.completed` event Stripe would send.
    pub fn complete_setup(&self, id: &str, method: &str, event_id: &str) -> String {
        let number = id.rsplit('_').next().unwrap_or("0").to_owned();
        let intent = format!("seti_test_{number}");
        let customer = self
            .session(id)
            .field("customer")
            .expect("a setup session's customer");
        self.edit(id, |s| {
            s.status = "complete".into();
            s.payment_status = "no_payment_required".into();
            s.setup_intent = Some(intent.clone());
        });
        self.state()
            .setup_intents
            .push((intent, customer, method.to_owned()));
        self.event(id, event_id, "checkout.session.completed")
    }

    /// Customers made through the API, with the forms that made them.
    pub fn customers(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.state().customers.clone()
    }

    /// An event about one session as it stands now.
    pub fn event(&self, id: &str, event_id: &str, kind: &str) -> String {
        event_json(event_id, kind, self.session(id).json())
    }

    fn edit(&self, id: &str, change: impl FnOnce(&mut StoredSession)) {
        let mut state = self.state();
        let session = state
            .sessions
            .iter_mut()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no session {id}"));
        change(session);
    }

    /// Answers a POST as Stripe's idempotency layer does: a key seen before
    /// with the same request gets the saved answer, with another request an
    /// `idempotency_error`; a new key saves the answer `endpoint` gives.
    fn idempotent(
        &self,
        req: &Request,
        body: &str,
        endpoint: impl FnOnce(&mut State) -> (StatusCode, serde_json::Value),
    ) -> Response {
        let path = req.uri().path().to_owned();
        let key = req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut state = self.state();
        state.posts.push(Post {
            path: path.clone(),
            idempotency_key: key.clone(),
        });
        if let Some(saved) = key.as_ref().and_then(|k| state.saved.get(k)) {
            if saved.path != path || saved.body != body {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                );
            }
            return Json(saved.answer.clone())
                .with_status(saved.status)
                .into_response();
        }
        let (status, answer) = endpoint(&mut state);
        if let Some(key) = key {
            state.saved.insert(
                key,
                Saved {
                    path,
                    body: body.to_owned(),
                    status,
                    answer: answer.clone(),
                },
            );
        }
        if state.lose_next > 0 {
            state.lose_next -= 1;
            drop(state);
            // Unwinding ends the connection's task, so the socket closes with
            // no answer (and without a panic message in the test's output).
            std::panic::resume_unwind(Box::new("the answer is lost"));
        }
        Json(answer).with_status(status).into_response()
    }
}

fn error_json(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "type": kind, "message": message } })
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    Json(error_json(kind, message))
        .with_status(status)
        .into_response()
}

fn authorised(req: &Request) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SECRET_KEY}"))
}

fn unauthorised() -> Response {
    stripe_error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "Invalid API Key provided",
    )
}

#[handler]
async fn create_session(req: &Request, Data(fake): Data<&FakeStripe>, body: String) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let setup = form.iter().any(|(k, v)| k == "mode" && v == "setup");
    if setup && form.iter().any(|(k, _)| k.starts_with("line_items")) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "You can not pass `line_items` in `setup` mode.",
        );
    }
    let required: &[&str] = if setup {
        // Without `payment_method_types`, Stripe also wants `currency`.
        &["mode", "success_url", "cancel_url", "customer", "currency"]
    } else {
        &[
            "mode",
            "success_url",
            "cancel_url",
            "client_reference_id",
            "line_items[0][price_data][unit_amount]",
            "line_items[0][price_data][currency]",
            "line_items[0][quantity]",
        ]
    };
    for required in required {
        if !form.iter().any(|(k, _)| k == required) {
            // Refused before the endpoint runs: Stripe saves no answer.
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("Missing required param: {required}."),
            );
        }
    }
    fake.idempotent(req, &body, |state| {
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                error_json("api_error", "Something went wrong on Stripe's end."),
            );
        }
        let session = StoredSession {
            id: format!("cs_test_{}", state.sessions.len() + 1),
            form,
            status: "open".into(),
            payment_status: "unpaid".into(),
            expires_at: chrono::Utc::now().timestamp() + 24 * 3600,
            payment_intent: None,
            setup_intent: None,
        };
        let answer = session.json();
        state.sessions.push(session);
        (StatusCode::OK, answer)
    })
}

#[handler]
fn retrieve_session(
    req: &Request,
    Data(fake): Data<&FakeStripe>,
    Path(id): Path<String>,
) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    match fake.state().sessions.iter().find(|s| s.id == id) {
        Some(session) => Json(session.json()).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such checkout.session: '{id}'"),
        ),
    }
}

#[handler]
fn expire_session(
    req: &Request,
    Data(fake): Data<&FakeStripe>,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    fake.idempotent(req, &body, |state| {
        let Some(session) = state.sessions.iter_mut().find(|s| s.id == id) else {
            return (
                StatusCode::NOT_FOUND,
                error_json(
                    "invalid_request_error",
                    &format!("No such checkout.session: '{id}'"),
                ),
            );
        };
        if session.status != "open" {
            return (
                StatusCode::BAD_REQUEST,
                error_json(
                    "invalid_request_error",
                    &format!(
                        "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                        session.status
                    ),
                ),
            );
        }
        session.status = "expired".into();
        (StatusCode::OK, session.json())
    })
}

/// Creates and confirms a PaymentIntent off-session, answering as Stripe's
/// test payment methods do: `pm_card_visa` succeeds,
/// `pm_card_chargeDeclined` is declined, `pm_card_authenticationRequired`
/// needs its holder to authenticate.
#[handler]
async fn create_payment_intent(
    req: &Request,
    Data(fake): Data<&FakeStripe>,
    body: String,
) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    for required in ["amount", "currency", "payment_method"] {
        if field(required).is_none() {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("Missing required param: {required}."),
            );
        }
    }
    if field("off_session").as_deref() != Some("true")
        || field("confirm").as_deref() != Some("true")
    {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This test stand-in only confirms off-session PaymentIntents.",
        );
    }
    fake.idempotent(req, &body, |state| {
        let id = format!("pi_off_{}", state.intents.len() + 1);
        state.intents.push((id.clone(), form.clone()));
        let method = field("payment_method").unwrap_or_default();
        let declined = |code: &str| {
            (
                StatusCode::PAYMENT_REQUIRED,
                serde_json::json!({ "error": {
                    "type": "card_error",
                    "code": code,
                    "decline_code": (code == "card_declined").then_some("generic_decline"),
                    "message": "Your card was declined.",
                    "payment_intent": { "id": id, "object": "payment_intent", "status": "requires_payment_method" },
                }}),
            )
        };
        match method.as_str() {
            "pm_card_chargeDeclined" => declined("card_declined"),
            "pm_card_authenticationRequired" => declined("authentication_required"),
            _ => (
                StatusCode::OK,
                serde_json::json!({
                    "id": id,
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": field("amount").and_then(|a| a.parse::<i64>().ok()),
                    "currency": field("currency"),
                    "payment_method": method,
                }),
            ),
        }
    })
}

/// A saved card's description.
#[handler]
fn payment_method(req: &Request, Path(id): Path<String>) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let card = match id.as_str() {
        "pm_card_mastercard" => {
            serde_json::json!({ "brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2031 })
        }
        _ => {
            serde_json::json!({ "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034 })
        }
    };
    Json(serde_json::json!({
        "id": id,
        "object": "payment_method",
        "type": "card",
        "card": card,
    }))
    .into_response()
}

#[handler]
async fn create_customer(req: &Request, Data(fake): Data<&FakeStripe>, body: String) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    fake.idempotent(req, &body, |state| {
        let id = format!("cus_made_{}", state.customers.len() + 1);
        let email = form
            .iter()
            .find(|(k, _)| k == "email")
            .map(|(_, v)| v.clone());
        state.customers.push((id.clone(), form));
        (
            StatusCode::OK,
            serde_json::json!({ "id": id, "object": "customer", "email": email }),
        )
    })
}

#[handler]
fn setup_intent(req: &Request, Data(fake): Data<&FakeStripe>, Path(id): Path<String>) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let found = fake
        .state()
        .setup_intents
        .iter()
        .find(|(intent, _, _)| *intent == id)
        .cloned();
    match found {
        Some((id, customer, method)) => Json(serde_json::json!({
            "id": id,
            "object": "setup_intent",
            "status": "succeeded",
            "usage": "off_session",
            "customer": customer,
            "payment_method": method,
        }))
        .into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such setupintent: '{id}'"),
        ),
    }
}

/// A payment intent: the one a completed session made carries the session's
/// order in its metadata, as Checkout's `payment_intent_data` asks; any
/// other is a payment of something else.
#[handler]
fn payment_intent(
    req: &Request,
    Data(fake): Data<&FakeStripe>,
    Path(id): Path<String>,
) -> Response {
    if !authorised(req) {
        return unauthorised();
    }
    let order = fake
        .state()
        .sessions
        .iter()
        .find(|s| s.payment_intent.as_deref() == Some(id.as_str()))
        .and_then(|s| s.field("payment_intent_data[metadata][order]"));
    Json(serde_json::json!({
        "id": id,
        "object": "payment_intent",
        "status": "succeeded",
        "payment_method": "pm_card_visa",
        "latest_charge": id.replace("pi_", "ch_"),
        "setup_future_usage": "off_session",
        "metadata": order.map(|o| serde_json::json!({ "order": o })).unwrap_or(serde_json::json!({})),
    }))
    .into_response()
}

fn event_json(event_id: &str, kind: &str, object: serde_json::Value) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": object },
    })
    .to_string()
}

/// A Checkout Session event as Stripe sends it.
pub fn session_event(
    event_id: &str,
    kind: &str,
    order: &str,
    cents: i64,
    payment_status: &str,
) -> String {
    event_json(
        event_id,
        kind,
        serde_json::json!({
            "id": "cs_test_1",
            "object": "checkout.session",
            "client_reference_id": order,
            "amount_total": cents,
            "currency": "usd",
            "customer": "cus_test_1",
            "payment_intent": "pi_test_1",
            "payment_status": payment_status,
            "status": "complete",
            "metadata": { "order": order },
        }),
    )
}

/// A `charge.refunded` event: `refunded` is the charge's `amount_refunded`,
/// everything refunded so far, in cents.
pub fn refund_event(event_id: &str, intent: &str, cents: i64, refunded: i64) -> String {
    let charge = intent.replace("pi_", "ch_");
    event_json(
        event_id,
        "charge.refunded",
        serde_json::json!({
            "id": charge,
            "object": "charge",
            "amount": cents,
            "amount_captured": cents,
            "amount_refunded": refunded,
            "currency": "usd",
            "paid": true,
            "payment_intent": intent,
            "refunded": refunded == cents,
            "metadata": {},
        }),
    )
}

/// A `charge.dispute.created` event for `cents` of a payment.
pub fn dispute_event(event_id: &str, dispute: &str, intent: &str, cents: i64) -> String {
    event_json(
        event_id,
        "charge.dispute.created",
        serde_json::json!({
            "id": dispute,
            "object": "dispute",
            "amount": cents,
            "charge": intent.replace("pi_", "ch_"),
            "currency": "usd",
            "payment_intent": intent,
            "reason": "fraudulent",
            "status": "needs_response",
        }),
    )
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

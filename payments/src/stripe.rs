//! Stripe through async-stripe: at most one payable Checkout Session per
//! order, with the card saved for later top-ups. Every POST carries an
//! idempotency key made from what caused it, so a retried or doubled request
//! is answered with the first one's result instead of doing the work twice.

use diesel_async::AsyncPgConnection;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use stripe::{
    CheckoutSessionCustomerCreation, CheckoutSessionMode, Client, CreateCheckoutSession,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionLineItemsPriceDataProductData, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataSetupFutureUsage,
    CreateCheckoutSessionPaymentMethodTypes, CreateCheckoutSessionSetupIntentData, CreateCustomer,
    Currency, Customer, CustomerId, RequestStrategy, StripeError,
};
use switchboard_core::commerce::orders::{self, Order};
use switchboard_core::config::StripeSettings;
use switchboard_core::money::Money;

use crate::checkout::{self, Session, Step};
use crate::off_session::{read_answer, OffSessionCharge};
use switchboard_core::billing::replenish::Outcome;
use switchboard_core::commerce::orders::CardOnFile;

/// How long a call to Stripe may take.
const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a POST is sent again while Stripe answers that another request
/// with its key is still running (a double submit), and how long apart.
const CONFLICT_RETRIES: u32 = 5;
const CONFLICT_PAUSE: std::time::Duration = std::time::Duration::from_millis(400);

/// A Stripe account.
#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
    pub(crate) webhook_secret: String,
    /// For the calls async-stripe cannot read the answers of (the card
    /// errors of an off-session charge).
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
}

#[derive(Deserialize)]
struct PaymentIntent {
    payment_method: Option<serde_json::Value>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

/// Why a call to Stripe came to nothing.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// Stripe answered, with an error. It keeps that answer under the
    /// request's idempotency key, so sending the key again would only repeat it.
    #[error("Stripe refused: {0}")]
    Refused(StripeError),
    /// No answer (a timeout, a broken connection): the work may have been
    /// done, and only the same key finds out without doing it twice.
    #[error("no answer from Stripe: {0}")]
    NoAnswer(String),
}

impl StripeGateway {
    pub fn new(settings: &StripeSettings) -> anyhow::Result<StripeGateway> {
        let secret = settings
            .secret_key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("payments.stripe.secret_key is not set"))?;
        let webhook_secret = settings
            .webhook_secret
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("payments.stripe.webhook_secret is not set"))?;
        Ok(StripeGateway {
            client: Client::from_url(settings.api_base.as_str(), secret.expose()),
            webhook_secret: webhook_secret.expose().to_owned(),
            http: reqwest::Client::builder().timeout(STRIPE_TIMEOUT).build()?,
            api_base: settings.api_base.trim_end_matches('/').to_owned(),
            secret_key: secret.expose().to_owned(),
        })
    }

    /// Where the customer pays for an order: its open session when it still
    /// fits, the order's page when a payment is already under way, or a new
    /// session once no other can be paid.
    pub fn checkout<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        base_url: &'a str,
        order: &'a Order,
        item: &'a str,
        email: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let progress = format!("{base_url}/orders/{}?from=stripe", order.public_id);
            if let Some(current) = &order.gateway_session_id {
                let session = self.retrieve_checkout(current).await?;
                let declined = match &session.payment_intent {
                    Some(intent) => orders::payment_declined(conn, "stripe", intent).await?,
                    None => false,
                };
                let now = chrono::Utc::now().timestamp();
                let cents = Money(order.total).to_cents();
                match checkout::next_step(&session, cents, &order.currency, now, declined) {
                    Step::Reuse(url) => return Ok(url),
                    Step::Wait => return Ok(progress),
                    Step::Open => {}
                    Step::ExpireThenOpen => {
                        if let Err(refused) = self.expire_checkout(current).await {
                            // Paid, or run out, since we looked: look again.
                            let again = self.retrieve_checkout(current).await?;
                            match again.status.as_deref() {
                                Some("expired") => {}
                                Some("complete") => return Ok(progress),
                                _ => return Err(refused),
                            }
                        }
                    }
                }
            }
            let attempt = order.checkout_attempt;
            let key = format!("checkout:{}:{attempt}", order.public_id);
            match self
                .create_checkout(base_url, order, item, email, &key)
                .await
            {
                Ok(session) => {
                    orders::opened_checkout(conn, order.id, attempt, &session.id).await?;
                    session
                        .url
                        .ok_or_else(|| anyhow::anyhow!("Stripe returned a session without a URL"))
                }
                Err(CallError::Refused(error)) => {
                    // The next try must not send this key, or it gets this answer again.
                    orders::checkout_refused(conn, order.id, attempt).await?;
                    Err(anyhow::anyhow!(
                        "opening a Checkout Session: Stripe refused: {error}"
                    ))
                }
                Err(error @ CallError::NoAnswer(_)) => {
                    Err(anyhow::anyhow!("opening a Checkout Session: {error}"))
                }
            }
        })
    }

    /// Opens a Checkout Session for an order: one line for what it buys
    /// (the setup fee and first month, call credit), the card kept for
    /// off-session top-ups.
    async fn create_checkout(
        &self,
        base_url: &str,
        order: &Order,
        item: &str,
        email: &str,
        idempotency_key: &str,
    ) -> Result<Session, CallError> {
        let currency: Currency = order.currency.to_lowercase().parse().map_err(|_| {
            CallError::Refused(StripeError::ClientError(format!(
                "Stripe does not take {}",
                order.currency
            )))
        })?;
        let success = format!("{base_url}/orders/{}?from=stripe", order.public_id);
        let cancel = format!("{base_url}/orders/{}?cancelled=1", order.public_id);
        let mut params = CreateCheckoutSession::new();
        params.mode = Some(CheckoutSessionMode::Payment);
        params.success_url = Some(&success);
        params.cancel_url = Some(&cancel);
        params.client_reference_id = Some(&order.public_id);
        params.customer_email = Some(email);
        params.customer_creation = Some(CheckoutSessionCustomerCreation::Always);
        params.metadata = Some([("order".to_owned(), order.public_id.clone())].into());
        params.payment_intent_data = Some(CreateCheckoutSessionPaymentIntentData {
            setup_future_usage: Some(
                CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession,
            ),
            metadata: Some([("order".to_owned(), order.public_id.clone())].into()),
            ..Default::default()
        });
        params.line_items = Some(vec![CreateCheckoutSessionLineItems {
            quantity: Some(1),
            price_data: Some(CreateCheckoutSessionLineItemsPriceData {
                currency,
                unit_amount: Some(Money(order.total).to_cents()),
                product_data: Some(CreateCheckoutSessionLineItemsPriceDataProductData {
                    name: item.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        self.post("/checkout/sessions", &params, idempotency_key)
            .await
    }

    /// Reads a Checkout Session as it stands at Stripe.
    async fn retrieve_checkout(&self, id: &str) -> anyhow::Result<Session> {
        call(self.client.get(&format!("/checkout/sessions/{id}")))
            .await
            .map_err(|e| anyhow::anyhow!("reading Checkout Session {id}: {e}"))
    }

    /// Closes an open Checkout Session so it can no longer be paid.
    async fn expire_checkout(&self, id: &str) -> anyhow::Result<Session> {
        let key = format!("checkout-expire:{id}");
        let no_params = std::collections::BTreeMap::<String, String>::new();
        self.post(&format!("/checkout/sessions/{id}/expire"), &no_params, &key)
            .await
            .map_err(|e| anyhow::anyhow!("expiring Checkout Session {id}: {e}"))
    }

    /// POSTs a form with an idempotency key. While Stripe answers 409 (a
    /// request with the same key is still running: the other half of a
    /// double submit), waits and asks again, to get that request's answer.
    async fn post<T, F>(&self, path: &str, form: &F, key: &str) -> Result<T, CallError>
    where
        T: DeserializeOwned + Send + 'static,
        F: serde::Serialize,
    {
        let client = self
            .client
            .clone()
            .with_strategy(RequestStrategy::Idempotent(key.to_owned()));
        let mut conflicts = 0;
        loop {
            match call(client.post_form(path, form)).await {
                Err(CallError::Refused(StripeError::Stripe(error)))
                    if error.http_status == 409 && conflicts < CONFLICT_RETRIES =>
                {
                    conflicts += 1;
                    tokio::time::sleep(CONFLICT_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// Where a client gives a new card to keep: a Checkout Session in
    /// `mode=setup` for the account's Stripe customer (made first when the
    /// account has none). Nothing is saved here: the signed webhook of the
    /// completed session saves the card ([`StripeGateway::setup_card`]).
    /// The same `request` (the form's one-time value) gets the same session,
    /// so a double press opens one; a new request, after a failure say,
    /// opens another (Stripe keeps a failed answer under its key).
    pub fn card_setup<'a>(
        &'a self,
        base_url: &'a str,
        account: &'a CardHolder<'_>,
        request: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let customer = match account.customer {
                Some(customer) => customer.to_owned(),
                None => {
                    let mut params = CreateCustomer::new();
                    params.email = Some(account.email);
                    params.metadata = Some([("account".to_owned(), account.id.to_string())].into());
                    let customer: Customer = self
                        .post("/customers", &params, &format!("customer:{}", account.id))
                        .await
                        .map_err(|e| anyhow::anyhow!("making the Stripe customer: {e}"))?;
                    customer.id.to_string()
                }
            };
            let customer: CustomerId = customer
                .parse()
                .map_err(|_| anyhow::anyhow!("{customer:?} is not a Stripe customer id"))?;
            let currency: Currency = account
                .currency
                .to_lowercase()
                .parse()
                .map_err(|_| anyhow::anyhow!("Stripe does not take {}", account.currency))?;
            let success = format!("{base_url}/portal/funds/card?from=stripe");
            let cancel = format!("{base_url}/portal/funds/card");
            let metadata: stripe::Metadata =
                [("account".to_owned(), account.id.to_string())].into();
            let mut params = CreateCheckoutSession::new();
            params.mode = Some(CheckoutSessionMode::Setup);
            params.success_url = Some(&success);
            params.cancel_url = Some(&cancel);
            params.customer = Some(customer);
            params.currency = Some(currency);
            params.payment_method_types = Some(vec![CreateCheckoutSessionPaymentMethodTypes::Card]);
            params.metadata = Some(metadata.clone());
            params.setup_intent_data = Some(CreateCheckoutSessionSetupIntentData {
                metadata: Some(metadata),
                ..Default::default()
            });
            let key = format!("card-setup:{}:{request}", account.id);
            let session: Session = self
                .post("/checkout/sessions", &params, &key)
                .await
                .map_err(|e| anyhow::anyhow!("opening a Checkout Session for a card: {e}"))?;
            session
                .url
                .ok_or_else(|| anyhow::anyhow!("Stripe returned a session without a URL"))
        })
    }

    /// The card a completed `mode=setup` session kept, with its customer:
    /// read from the session's SetupIntent.
    pub fn setup_card<'a>(
        &'a self,
        setup_intent: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<Option<KeptCard>>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct SetupIntent {
                status: String,
                payment_method: Option<serde_json::Value>,
                customer: Option<serde_json::Value>,
            }
            let intent: SetupIntent =
                call(self.client.get(&format!("/setup_intents/{setup_intent}")))
                    .await
                    .map_err(|e| anyhow::anyhow!("reading SetupIntent {setup_intent}: {e}"))?;
            if intent.status != "succeeded" {
                return Ok(None);
            }
            let (Some(method), customer) = (
                intent.payment_method.as_ref().and_then(object_id),
                intent.customer.as_ref().and_then(object_id),
            ) else {
                return Ok(None);
            };
            Ok(self.card_of(&method).await?.map(|card| (customer, card)))
        })
    }

    /// Charges a saved card off-session (see `off_session`); `None` while
    /// the payment is still processing.
    pub fn charge_saved_card<'a>(
        &'a self,
        charge: &'a OffSessionCharge<'_>,
    ) -> crate::Boxed<'a, anyhow::Result<Option<Outcome>>> {
        Box::pin(async move {
            let mut form = vec![
                ("amount", charge.cents.to_string()),
                ("currency", charge.currency.to_lowercase()),
                ("payment_method", charge.payment_method.to_owned()),
                ("off_session", "true".into()),
                ("confirm", "true".into()),
                ("description", "Automatic top-up".into()),
                ("metadata[replenishment]", charge.replenishment.to_string()),
                ("metadata[account]", charge.account.to_string()),
            ];
            if let Some(customer) = charge.customer {
                form.push(("customer", customer.to_owned()));
            }
            let response = self
                .http
                .post(format!("{}/v1/payment_intents", self.api_base))
                .bearer_auth(&self.secret_key)
                .header("Idempotency-Key", charge.idempotency_key)
                .form(&form)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("no answer from Stripe: {}", e.without_url()))?;
            let status = response.status().as_u16();
            let body = response
                .text()
                .await
                .map_err(|e| anyhow::anyhow!("no answer from Stripe: {}", e.without_url()))?;
            read_answer(status, &body)
        })
    }

    /// The brand, last four digits and expiry of a saved card.
    pub fn card_of<'a>(
        &'a self,
        payment_method: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<Option<CardOnFile>>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct Method {
                card: Option<Card>,
            }
            #[derive(Deserialize)]
            struct Card {
                brand: String,
                last4: String,
                exp_month: i32,
                exp_year: i32,
            }
            let method: Method = call(
                self.client
                    .get(&format!("/payment_methods/{payment_method}")),
            )
            .await
            .map_err(|e| anyhow::anyhow!("reading payment method {payment_method}: {e}"))?;
            Ok(method.card.map(|card| CardOnFile {
                payment_method: payment_method.to_owned(),
                brand: card.brand,
                last4: card.last4,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
            }))
        })
    }

    async fn payment_intent(&self, id: &str) -> anyhow::Result<PaymentIntent> {
        Ok(call(self.client.get(&format!("/payment_intents/{id}"))).await?)
    }

    /// The order a payment was made for, as Checkout wrote it on the
    /// payment intent; `None` for a payment of something else.
    pub fn order_of<'a>(
        &'a self,
        payment_intent: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let mut intent = self.payment_intent(payment_intent).await?;
            Ok(intent.metadata.remove("order"))
        })
    }

    /// The card a payment was made with, to charge it later.
    pub fn payment_method_of<'a>(
        &'a self,
        payment_intent: &'a str,
    ) -> crate::Boxed<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let intent = self.payment_intent(payment_intent).await?;
            Ok(intent.payment_method.as_ref().and_then(object_id))
        })
    }
}

/// A card a setup session kept, with the Stripe customer it was kept for.
pub type KeptCard = (Option<String>, CardOnFile);

/// Who a card is kept for: the account, its currency and email, and its
/// Stripe customer if it has one.
pub struct CardHolder<'a> {
    pub id: i64,
    pub currency: &'a str,
    pub email: &'a str,
    pub customer: Option<&'a str>,
}

/// The id of a field Stripe gives either as an id or, expanded, as the object.
fn object_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Object(object) => {
            object.get("id").and_then(|v| v.as_str()).map(str::to_owned)
        }
        _ => None,
    }
}

/// One call to Stripe, within `STRIPE_TIMEOUT`.
async fn call<T>(
    request: impl std::future::Future<Output = Result<T, StripeError>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(STRIPE_TIMEOUT, request).await {
        Err(_) => Err(CallError::NoAnswer(format!(
            "Stripe did not answer within {} seconds",
            STRIPE_TIMEOUT.as_secs()
        ))),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error @ (StripeError::ClientError(_) | StripeError::Timeout))) => {
            Err(CallError::NoAnswer(error.to_string()))
        }
        // An error answer, or one that could not be read (an error code this
        // library does not know is read as such).
        Ok(Err(error)) => Err(CallError::Refused(error)),
    }
}

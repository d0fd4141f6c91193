//! Stripe through async-stripe: a Checkout Session per order, with the card
//! saved for later top-ups.

use serde::Deserialize;
use stripe::{
    CheckoutSessionCustomerCreation, CheckoutSessionMode, Client, CreateCheckoutSession,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionLineItemsPriceDataProductData, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataSetupFutureUsage, Currency,
};
use switchboard_core::commerce::orders::Order;
use switchboard_core::commerce::plans::Plan;
use switchboard_core::config::StripeSettings;
use switchboard_core::money::Money;

/// How long a call to Stripe may take.
const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A Stripe account.
#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
    pub(crate) webhook_secret: String,
}

/// The parts of a Checkout Session Switchboard reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    pub id: String,
    pub url: Option<String>,
}

#[derive(Deserialize)]
struct PaymentIntent {
    payment_method: Option<serde_json::Value>,
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
        })
    }

    /// Opens a Checkout Session for an order: one line for the setup fee and
    /// first month, the card kept for off-session top-ups.
    pub async fn create_checkout(
        &self,
        base_url: &str,
        order: &Order,
        plan: &Plan,
        email: &str,
    ) -> anyhow::Result<Session> {
        let currency: Currency = order
            .currency
            .to_lowercase()
            .parse()
            .map_err(|_| anyhow::anyhow!("Stripe does not take {}", order.currency))?;
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
                    name: format!("{}: setup and first month", plan.name),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let session: Session = tokio::time::timeout(
            STRIPE_TIMEOUT,
            self.client.post_form("/checkout/sessions", params),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "Stripe did not answer within {} seconds",
                STRIPE_TIMEOUT.as_secs()
            )
        })??;
        Ok(session)
    }

    /// The card a payment was made with, to charge it later.
    pub async fn payment_method_of(&self, payment_intent: &str) -> anyhow::Result<Option<String>> {
        let intent: PaymentIntent = tokio::time::timeout(
            STRIPE_TIMEOUT,
            self.client
                .get(&format!("/payment_intents/{payment_intent}")),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "Stripe did not answer within {} seconds",
                STRIPE_TIMEOUT.as_secs()
            )
        })??;
        Ok(match intent.payment_method {
            Some(serde_json::Value::String(id)) => Some(id),
            Some(serde_json::Value::Object(object)) => {
                object.get("id").and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        })
    }
}

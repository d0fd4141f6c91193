//! Taking payments: one gateway interface, two gateways. Stripe (Checkout,
//! then a signed webhook drives fulfilment) and a built-in test gateway for
//! demos and development (refused in production). Both end in
//! `orders::record_payment`, the one fulfilment path.
#![forbid(unsafe_code)]

pub mod checkout;
pub mod off_session;
pub mod stripe;
pub mod test_gateway;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;

use diesel_async::AsyncPgConnection;
use switchboard_core::commerce::orders::Order;
use switchboard_core::config::Settings;

pub use stripe::StripeGateway;

/// A future made, and compiled, in this crate. What a gateway awaits
/// (Stripe's client, its answers' types) is the largest code of the build;
/// an optimised build compiles an `async fn` again in every crate that
/// awaits it, so the gateway's entry points hand out this box instead.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The gateway customers pay through.
#[derive(Clone)]
pub enum Gateway {
    Test,
    Stripe(Box<StripeGateway>),
}

impl Gateway {
    /// The gateway the settings choose.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Gateway> {
        match settings.payments.gateway.as_str() {
            "stripe" => Ok(Gateway::Stripe(Box::new(StripeGateway::new(
                &settings.payments.stripe,
            )?))),
            _ => Ok(Gateway::Test),
        }
    }

    /// The name stored on orders.
    pub fn name(&self) -> &'static str {
        match self {
            Gateway::Test => "test",
            Gateway::Stripe(_) => "stripe",
        }
    }

    /// Charges an account's saved card off-session; `None` while the payment
    /// is still processing. The test gateway answers as the saved test card
    /// would: 4242 succeeds, 0002 is declined, 3155 asks for authentication.
    pub fn charge_saved_card<'a>(
        &'a self,
        charge: &'a off_session::OffSessionCharge<'_>,
    ) -> Boxed<'a, anyhow::Result<Option<switchboard_core::billing::replenish::Outcome>>> {
        Box::pin(async move {
            match self {
                Gateway::Test => Ok(Some(off_session::test_card_outcome(
                    charge.payment_method,
                    charge.idempotency_key,
                ))),
                Gateway::Stripe(stripe) => stripe.charge_saved_card(charge).await,
            }
        })
    }

    /// Where to send the customer to pay for an order (see `StripeGateway::checkout`).
    pub fn start_checkout<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        base_url: &'a str,
        order: &'a Order,
        item: &'a str,
        email: &'a str,
    ) -> Boxed<'a, anyhow::Result<String>> {
        Box::pin(async move {
            match self {
                Gateway::Test => Ok(format!("{base_url}/pay/test/{}", order.public_id)),
                Gateway::Stripe(stripe) => {
                    stripe.checkout(conn, base_url, order, item, email).await
                }
            }
        })
    }
}

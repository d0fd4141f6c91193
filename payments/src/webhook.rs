//! Stripe's webhooks: the signature checked over the raw body, each event
//! handled once by its id; paid Checkout Sessions fulfilled through
//! `orders::record_payment`, refunds and disputes taken from the balance
//! through `reversals`.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_core::billing::replenish;
use switchboard_core::commerce::orders::{self, Outcome, PaymentError, PaymentReport};
use switchboard_core::commerce::reversals::{self, PaymentRef, ReversalError};
use switchboard_core::db::{self, Pool};
use switchboard_core::keys::SecretKey;
use switchboard_core::money::Money;
use switchboard_core::schema::webhook_events;

use crate::StripeGateway;

/// How old a signed timestamp may be, in seconds (Stripe's default).
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches")]
    NoMatch,
}

/// Checks `Stripe-Signature` (`t=…,v1=…[,v1=…]`) over the raw body: any `v1`
/// may match, compared in constant time, and the timestamp must be within
/// `tolerance` seconds of `now`.
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let expected = mac.finalize().into_bytes();
    let mut matched = subtle::Choice::from(0);
    for signature in &signatures {
        matched |= signature.as_slice().ct_eq(expected.as_slice());
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// Signs a payload as Stripe does; for tests and for the Stripe stand-in.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// What handling a webhook did.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The event changed something (or was of a kind that needs nothing).
    Handled(String),
    /// This event id had been handled before.
    Duplicate,
}

/// Why a webhook was not handled.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Answered 400: Stripe should not retry a forgery.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// Answered 400.
    #[error("the event is malformed: {0}")]
    Malformed(String),
    /// Answered 500, so Stripe retries later.
    #[error("the event could not be handled: {0:#}")]
    Internal(anyhow::Error),
}

impl From<diesel::result::Error> for WebhookError {
    fn from(error: diesel::result::Error) -> WebhookError {
        WebhookError::Internal(error.into())
    }
}

/// What an event asks of Switchboard.
enum Action {
    Payment((String, PaymentReport)),
    /// An automatic top-up's PaymentIntent ended: (attempt, how).
    TopUp(i64, replenish::Outcome),
    Refund(Refund),
    Dispute(Dispute),
    /// A `mode=setup` session kept a new card for an account.
    SaveCard {
        account: i64,
        customer: Option<String>,
        card: orders::CardOnFile,
    },
}

/// The parts of a refunded charge (`charge.refunded`) Switchboard reads.
#[derive(Deserialize)]
struct Refund {
    #[serde(rename = "id")]
    charge: String,
    payment_intent: Option<String>,
    /// Everything refunded of the charge so far, in cents.
    amount_refunded: i64,
    currency: String,
}

/// The parts of a dispute (`charge.dispute.created`) Switchboard reads.
#[derive(Deserialize)]
struct Dispute {
    id: String,
    payment_intent: Option<String>,
    /// The disputed amount, in cents.
    amount: i64,
    currency: String,
    #[serde(default)]
    reason: String,
}

impl Refund {
    fn read(object: &serde_json::Value) -> Result<Refund, WebhookError> {
        Refund::deserialize(object).map_err(|e| WebhookError::Malformed(format!("a charge: {e}")))
    }
}

impl Dispute {
    fn read(object: &serde_json::Value) -> Result<Dispute, WebhookError> {
        Dispute::deserialize(object).map_err(|e| WebhookError::Malformed(format!("a dispute: {e}")))
    }
}

fn reversal_failure(error: ReversalError) -> WebhookError {
    match error {
        // Stripe refunds and disputes in the charge's currency: another one
        // is not an event that waiting will mend.
        error @ ReversalError::CurrencyMismatch(..) => WebhookError::Malformed(error.to_string()),
        other => WebhookError::Internal(other.into()),
    }
}

/// What an event says of its session's payment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Read `payment_status`: only `paid` is a payment.
    FromSession,
    Paid,
    Failed,
}

/// What one webhook delivery needs.
pub struct Webhook<'a> {
    pub pool: &'a Pool,
    pub key: &'a SecretKey,
    pub staff_address: &'a str,
    /// The portal's address, for links in the emails an event causes.
    pub base_url: &'a str,
    pub stripe: &'a StripeGateway,
}

impl Webhook<'_> {
    /// Verifies and handles one delivery.
    pub fn handle<'a>(
        &'a self,
        payload: &'a [u8],
        signature: Option<&'a str>,
        now: i64,
    ) -> crate::Boxed<'a, Result<WebhookOutcome, WebhookError>> {
        Box::pin(async move {
            verify_signature(
                payload,
                signature,
                &self.stripe.webhook_secret,
                now,
                TOLERANCE_SECONDS,
            )?;
            let event: Event = serde_json::from_slice(payload)
                .map_err(|e| WebhookError::Malformed(e.to_string()))?;
            let object = &event.data.object;
            // Stripe is asked (for the card of a payment) before the transaction,
            // so no transaction waits on it.
            let action = match event.kind.as_str() {
                "checkout.session.completed"
                    if object.get("mode").and_then(|m| m.as_str()) == Some("setup") =>
                {
                    self.card_kept(object).await?
                }
                "checkout.session.completed" => self
                    .report(object, Status::FromSession)
                    .await?
                    .map(Action::Payment),
                "checkout.session.async_payment_succeeded" => self
                    .report(object, Status::Paid)
                    .await?
                    .map(Action::Payment),
                "checkout.session.async_payment_failed" => self
                    .report(object, Status::Failed)
                    .await?
                    .map(Action::Payment),
                "payment_intent.succeeded" | "payment_intent.payment_failed" => {
                    top_up(object, &event.kind)?
                }
                "charge.refunded" => Some(Action::Refund(Refund::read(object)?)),
                "charge.dispute.created" => Some(Action::Dispute(Dispute::read(object)?)),
                _ => None,
            };
            let mut conn = db::conn(self.pool).await.map_err(WebhookError::Internal)?;
            let taken_back = match &action {
                Some(Action::Refund(refund)) => refund.payment_intent.as_deref(),
                Some(Action::Dispute(dispute)) => dispute.payment_intent.as_deref(),
                _ => None,
            };
            if let Some(intent) = taken_back {
                self.refuse_before_its_payment(&mut conn, intent).await?;
            }
            conn.transaction(async |conn| {
                let first = diesel::insert_into(webhook_events::table)
                    .values((
                        webhook_events::gateway.eq("stripe"),
                        webhook_events::event_id.eq(&event.id),
                        webhook_events::event_type.eq(&event.kind),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await
                    .map_err(|e| WebhookError::Internal(e.into()))?;
                if first == 0 {
                    return Ok(WebhookOutcome::Duplicate);
                }
                let done = match action {
                    None => "nothing to do".to_owned(),
                    Some(Action::Payment((order, report))) => {
                        self.payment(conn, &order, &report).await?
                    }
                    Some(Action::TopUp(id, outcome)) => {
                        let notify = replenish::Notify {
                            staff_address: self.staff_address,
                            base_url: self.base_url,
                        };
                        let settled =
                            replenish::settle(conn, id, &outcome, &notify, chrono::Utc::now())
                                .await
                                .map_err(|e| WebhookError::Internal(e.into()))?;
                        format!("{settled:?}")
                    }
                    Some(Action::Refund(refund)) => self.refund(conn, &refund).await?,
                    Some(Action::Dispute(dispute)) => self.dispute(conn, &dispute).await?,
                    Some(Action::SaveCard {
                        account,
                        customer,
                        card,
                    }) => {
                        orders::save_card(conn, account, customer.as_deref(), &card)
                            .await
                            .map_err(|e| WebhookError::Internal(e.into()))?;
                        format!("card ending {} kept for account {account}", card.last4)
                    }
                };
                Ok(WebhookOutcome::Handled(format!("{}: {done}", event.kind)))
            })
            .await
        })
    }

    /// The card a completed `mode=setup` session kept, for the account its
    /// metadata names (Switchboard wrote it; the event is signed). Stripe
    /// is asked for the card; when it cannot answer the delivery fails and
    /// Stripe sends it again.
    async fn card_kept(&self, session: &serde_json::Value) -> Result<Option<Action>, WebhookError> {
        let Some(account) = session
            .pointer("/metadata/account")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<i64>().ok())
        else {
            tracing::info!("a setup session that names no account: not Switchboard's");
            return Ok(None);
        };
        let Some(intent) = session.get("setup_intent").and_then(|v| match v {
            serde_json::Value::String(id) => Some(id.clone()),
            other => other
                .get("id")
                .and_then(|id| id.as_str())
                .map(str::to_owned),
        }) else {
            return Err(WebhookError::Malformed(
                "a completed setup session without its SetupIntent".into(),
            ));
        };
        let kept = self
            .stripe
            .setup_card(&intent)
            .await
            .map_err(WebhookError::Internal)?;
        Ok(kept.map(|(customer, card)| Action::SaveCard {
            account,
            customer,
            card,
        }))
    }

    /// Records a Checkout Session's payment for its order.
    async fn payment(
        &self,
        conn: &mut AsyncPgConnection,
        order: &str,
        report: &PaymentReport,
    ) -> Result<String, WebhookError> {
        match orders::record_payment(conn, self.key, self.staff_address, order, report).await {
            Ok(result) => Ok(format!("{result:?}")),
            Err(PaymentError::UnknownOrder(order)) => {
                tracing::warn!(%order, "a Stripe event names an order Switchboard does not have");
                Ok("unknown order".into())
            }
            Err(e) => Err(WebhookError::Internal(e.into())),
        }
    }

    /// Takes what a charge's refunds grew by from the customer's balance.
    async fn refund(
        &self,
        conn: &mut AsyncPgConnection,
        refund: &Refund,
    ) -> Result<String, WebhookError> {
        let Some(intent) = &refund.payment_intent else {
            return Ok("a charge not made through Checkout".into());
        };
        let recorded = reversals::record_refund(
            conn,
            self.staff_address,
            PaymentRef {
                gateway: "stripe",
                reference: intent,
            },
            &refund.charge,
            Money::from_cents(refund.amount_refunded),
            &refund.currency,
        )
        .await
        .map_err(reversal_failure)?;
        Ok(format!("{recorded:?}"))
    }

    /// A refund or dispute of one of our orders' payments that is not
    /// recorded yet (its event is still to come, or to be retried) is
    /// refused, so Stripe sends it again later rather than it being lost.
    /// Stripe is asked which order the payment was for only then, before
    /// any transaction opens.
    async fn refuse_before_its_payment(
        &self,
        conn: &mut AsyncPgConnection,
        payment_intent: &str,
    ) -> Result<(), WebhookError> {
        if orders::payment_succeeded(conn, "stripe", payment_intent).await? {
            return Ok(());
        }
        let order = self
            .stripe
            .order_of(payment_intent)
            .await
            .map_err(WebhookError::Internal)?;
        match order {
            Some(order) if orders::by_public_id(conn, &order).await?.is_some() => {
                Err(WebhookError::Internal(anyhow::anyhow!(
                    "money taken back from order {order}, whose payment is not recorded yet"
                )))
            }
            // Not a payment of Switchboard's.
            _ => Ok(()),
        }
    }

    /// Takes a disputed amount from the customer's balance.
    async fn dispute(
        &self,
        conn: &mut AsyncPgConnection,
        dispute: &Dispute,
    ) -> Result<String, WebhookError> {
        let Some(intent) = &dispute.payment_intent else {
            return Ok("a charge not made through Checkout".into());
        };
        let recorded = reversals::record_dispute(
            conn,
            self.staff_address,
            PaymentRef {
                gateway: "stripe",
                reference: intent,
            },
            &dispute.id,
            &dispute.reason,
            Money::from_cents(dispute.amount),
            &dispute.currency,
        )
        .await
        .map_err(reversal_failure)?;
        Ok(format!("{recorded:?}"))
    }

    /// The payment a Checkout Session reports: `None` when there is nothing
    /// to record yet (an unpaid session whose money may still come) or the
    /// session is not one of ours.
    async fn report(
        &self,
        session: &serde_json::Value,
        status: Status,
    ) -> Result<Option<(String, PaymentReport)>, WebhookError> {
        let text = |name: &str| {
            session
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let Some(order) = text("client_reference_id").or_else(|| {
            session
                .pointer("/metadata/order")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }) else {
            tracing::info!("a Checkout Session that names no order: not Switchboard's");
            return Ok(None);
        };
        let outcome = match status {
            Status::Paid => Outcome::Succeeded,
            Status::Failed => Outcome::Declined,
            Status::FromSession if text("payment_status").as_deref() == Some("paid") => {
                Outcome::Succeeded
            }
            Status::FromSession => return Ok(None),
        };
        let cents = session
            .get("amount_total")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| WebhookError::Malformed("the session has no amount_total".into()))?;
        let currency = text("currency").unwrap_or_default().to_uppercase();
        let intent = text("payment_intent");
        let payment_method = match &intent {
            Some(intent) if outcome == Outcome::Succeeded => {
                match self.stripe.payment_method_of(intent).await {
                    Ok(method) => method,
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "could not read the payment's card; top-ups will need a new one");
                        None
                    }
                }
            }
            _ => None,
        };
        let card = match &payment_method {
            Some(method) => match self.stripe.card_of(method).await {
                Ok(card) => card,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "could not read the payment's card; top-ups will need a new one");
                    None
                }
            },
            None => None,
        };
        let reference = intent.or_else(|| text("id")).unwrap_or_default();
        Ok(Some((
            order,
            PaymentReport {
                gateway: "stripe".into(),
                reference,
                amount: Money::from_cents(cents),
                currency,
                outcome,
                detail: String::new(),
                stripe_customer: text("customer"),
                stripe_payment_method: payment_method,
                card,
            },
        )))
    }
}

/// An automatic top-up's PaymentIntent event: the attempt it names in its
/// metadata and how it ended. A PaymentIntent of anything else (Checkout
/// makes one per session, credited through the session's event) is `None`.
fn top_up(intent: &serde_json::Value, kind: &str) -> Result<Option<Action>, WebhookError> {
    let Some(id) = intent
        .pointer("/metadata/replenishment")
        .and_then(|v| v.as_str())
    else {
        return Ok(None);
    };
    let id: i64 = id
        .parse()
        .map_err(|_| WebhookError::Malformed(format!("replenishment {id:?} is not an id")))?;
    let reference = intent
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| WebhookError::Malformed("a PaymentIntent without an id".into()))?
        .to_owned();
    let outcome = if kind == "payment_intent.succeeded" {
        replenish::Outcome::Succeeded { reference }
    } else {
        let error = intent.get("last_payment_error");
        let code = error
            .and_then(|e| e.get("decline_code").or_else(|| e.get("code")))
            .and_then(|v| v.as_str())
            .unwrap_or("declined");
        if code == "authentication_required" {
            replenish::Outcome::NeedsAuthentication {
                reference: Some(reference),
            }
        } else {
            replenish::Outcome::Declined {
                reference: Some(reference),
                detail: code.replace('_', " "),
            }
        }
    };
    Ok(Some(Action::TopUp(id, outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_made_with_the_secret_verifies_and_anything_else_does_not() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, SECRET, 1_000);
        assert_eq!(
            verify_signature(body, Some(&header), SECRET, 1_100, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(body, Some(&header), "whsec_other", 1_100, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_signature(br#"{"id":"evt_2"}"#, Some(&header), SECRET, 1_100, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_signature(body, Some(&header), SECRET, 1_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(body, Some(&header), SECRET, 699, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(body, None, SECRET, 1_000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(body, Some("t=1000"), SECRET, 1_000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(body, Some("v1=abcd"), SECRET, 1_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn any_v1_signature_may_match() {
        let body = b"payload";
        let good = sign(body, SECRET, 5_000);
        let good_v1 = good.split("v1=").nth(1).expect("v1");
        let header = format!("t=5000,v1={},v1={good_v1},v0=ignored", "00".repeat(32));
        assert_eq!(
            verify_signature(body, Some(&header), SECRET, 5_000, 300),
            Ok(())
        );
    }
}

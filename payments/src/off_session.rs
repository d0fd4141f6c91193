//! Charging a saved card while its holder is away (automatic top-ups): a
//! PaymentIntent created with `off_session=true, confirm=true` and an
//! idempotency key derived from the account and the crossing, so a retry or
//! a second worker gets the first charge's answer instead of a second
//! charge. Stripe answers a decline and a bank's demand for authentication
//! with a card error (`card_declined`, `authentication_required`); no answer
//! at all is an error the job retries with the same key.

use serde::Deserialize;
use switchboard_core::billing::replenish::Outcome;

use crate::test_gateway;

/// A charge to make.
#[derive(Clone, Debug)]
pub struct OffSessionCharge<'a> {
    pub idempotency_key: &'a str,
    pub cents: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub payment_method: &'a str,
    /// The attempt's row, carried in the PaymentIntent's metadata so its
    /// webhook finds it.
    pub replenishment: i64,
    pub account: i64,
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: CardError,
}

#[derive(Deserialize)]
struct CardError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    payment_intent: Option<Intent>,
}

/// What Stripe's answer to the PaymentIntent means: `None` while the
/// payment is still processing (its webhook will tell).
pub fn read_answer(status: u16, body: &str) -> anyhow::Result<Option<Outcome>> {
    if (200..300).contains(&status) {
        let intent: Intent = serde_json::from_str(body)
            .map_err(|e| anyhow::anyhow!("Stripe's PaymentIntent could not be read: {e}"))?;
        return Ok(match intent.status.as_str() {
            "succeeded" => Some(Outcome::Succeeded {
                reference: intent.id,
            }),
            "requires_action" | "requires_confirmation" => Some(Outcome::NeedsAuthentication {
                reference: Some(intent.id),
            }),
            "requires_payment_method" | "canceled" => Some(Outcome::Declined {
                reference: Some(intent.id),
                detail: "the card was not charged".into(),
            }),
            _ => None,
        });
    }
    let error: CardError = serde_json::from_str::<ErrorBody>(body)
        .map(|b| b.error)
        .map_err(|_| anyhow::anyhow!("Stripe answered {status} with no error we can read"))?;
    let reference = error.payment_intent.map(|i| i.id);
    if error.kind != "card_error" {
        if status >= 500 || status == 429 || status == 409 {
            // Worth asking again with the same key.
            anyhow::bail!(
                "Stripe answered {status}: {}",
                error.message.unwrap_or_default()
            );
        }
        return Ok(Some(Outcome::Failed {
            detail: format!(
                "Stripe refused the charge: {}",
                error.message.unwrap_or_else(|| error.kind.clone())
            ),
        }));
    }
    Ok(Some(match error.code.as_deref() {
        Some("authentication_required") => Outcome::NeedsAuthentication { reference },
        _ => Outcome::Declined {
            reference,
            detail: error
                .decline_code
                .or(error.code)
                .unwrap_or_else(|| "declined".into())
                .replace('_', " "),
        },
    }))
}

/// The test gateway's saved card: which of Stripe's test cards it was.
pub fn test_card_outcome(payment_method: &str, key: &str) -> Outcome {
    let reference = format!("test-{key}");
    let last4 = payment_method.rsplit('_').next().unwrap_or_default();
    match test_gateway::CARDS.iter().find(|c| c.ends_with(last4)) {
        Some(&test_gateway::CARD_SUCCEEDS) => Outcome::Succeeded { reference },
        Some(&test_gateway::CARD_AUTHENTICATES) => Outcome::NeedsAuthentication {
            reference: Some(reference),
        },
        _ => Outcome::Declined {
            reference: Some(reference),
            detail: "card declined".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_answers_read_as_outcomes() {
        assert_eq!(
            read_answer(200, r#"{"id":"pi_1","status":"succeeded"}"#).expect("read"),
            Some(Outcome::Succeeded {
                reference: "pi_1".into()
            })
        );
        assert_eq!(
            read_answer(200, r#"{"id":"pi_1","status":"processing"}"#).expect("read"),
            None
        );
        let declined = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","payment_intent":{"id":"pi_2","status":"requires_payment_method"}}}"#;
        assert_eq!(
            read_answer(402, declined).expect("read"),
            Some(Outcome::Declined {
                reference: Some("pi_2".into()),
                detail: "insufficient funds".into()
            })
        );
        let auth = r#"{"error":{"type":"card_error","code":"authentication_required","payment_intent":{"id":"pi_3","status":"requires_payment_method"}}}"#;
        assert_eq!(
            read_answer(402, auth).expect("read"),
            Some(Outcome::NeedsAuthentication {
                reference: Some("pi_3".into())
            })
        );
        assert!(read_answer(500, r#"{"error":{"type":"api_error"}}"#).is_err());
        assert!(read_answer(502, "<html>").is_err());
        assert!(matches!(
            read_answer(
                400,
                r#"{"error":{"type":"invalid_request_error","message":"No such PaymentMethod"}}"#
            ),
            Ok(Some(Outcome::Failed { .. }))
        ));
    }

    #[test]
    fn the_test_gateway_answers_by_card_number() {
        assert!(matches!(
            test_card_outcome("test_pm_4242", "k"),
            Outcome::Succeeded { .. }
        ));
        assert!(matches!(
            test_card_outcome("test_pm_0002", "k"),
            Outcome::Declined { .. }
        ));
        assert!(matches!(
            test_card_outcome("test_pm_3155", "k"),
            Outcome::NeedsAuthentication { .. }
        ));
    }
}

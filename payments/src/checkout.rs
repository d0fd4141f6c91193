//! Which Checkout Session a customer paying for an order is sent to. An
//! order never has two sessions a customer could pay: the open one is reused
//! while it asks for the order's amount and has time left; one about to run
//! out, or asking for something else, is expired at Stripe before another is
//! opened; one that ran out or whose payment was declined is replaced; one
//! already paid (or whose bank debit is under way) is waited for, since its
//! webhook will tell how it ended.

use serde::Deserialize;

/// Time a customer needs on a reused session to type a card and pass an
/// authentication step; a session with less left is replaced.
pub const MIN_TIME_LEFT_SECONDS: i64 = 15 * 60;

/// The parts of a Checkout Session Switchboard reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Session {
    pub id: String,
    /// Where to pay; Stripe gives it only while the session is open.
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Set once the customer has paid or started paying.
    #[serde(default)]
    pub payment_intent: Option<String>,
}

/// What to do with an order's current session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the customer back to this open session.
    Reuse(String),
    /// A payment through the session is done or under way: show the order's
    /// progress rather than take a second one.
    Wait,
    /// The session can no longer be paid: open another.
    Open,
    /// Close this open session at Stripe, then open another.
    ExpireThenOpen,
}

/// The step for an order of `cents` in `currency` whose current session is
/// `session`, at `now` (Unix seconds). `declined` tells whether the
/// session's payment was reported declined (a failed bank debit).
pub fn next_step(session: &Session, cents: i64, currency: &str, now: i64, declined: bool) -> Step {
    match session.status.as_deref() {
        Some("open") => {
            let matches = session.amount_total == Some(cents)
                && session
                    .currency
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(currency));
            let time_left = session
                .expires_at
                .is_some_and(|at| at - now >= MIN_TIME_LEFT_SECONDS);
            match &session.url {
                Some(url) if matches && time_left => Step::Reuse(url.clone()),
                _ => Step::ExpireThenOpen,
            }
        }
        Some("expired") => Step::Open,
        Some("complete") if declined => Step::Open,
        // Paid, or an unpaid bank debit that may still succeed.
        Some("complete") => Step::Wait,
        // A status this version does not know: closing it is the only way to
        // be sure it cannot be paid beside a new one.
        _ => Step::ExpireThenOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn open() -> Session {
        Session {
            id: "cs_1".into(),
            url: Some("https://checkout.stripe.test/cs_1".into()),
            status: Some("open".into()),
            payment_status: Some("unpaid".into()),
            amount_total: Some(17_800),
            currency: Some("usd".into()),
            expires_at: Some(NOW + 24 * 3600),
            payment_intent: None,
        }
    }

    #[test]
    fn an_open_session_for_the_order_with_time_left_is_reused() {
        assert_eq!(
            next_step(&open(), 17_800, "USD", NOW, false),
            Step::Reuse("https://checkout.stripe.test/cs_1".into())
        );
    }

    #[test]
    fn an_open_session_that_is_about_to_run_out_or_asks_for_something_else_is_expired_first() {
        let mut short = open();
        short.expires_at = Some(NOW + MIN_TIME_LEFT_SECONDS - 1);
        assert_eq!(
            next_step(&short, 17_800, "USD", NOW, false),
            Step::ExpireThenOpen
        );
        assert_eq!(
            next_step(&open(), 17_900, "USD", NOW, false),
            Step::ExpireThenOpen
        );
        assert_eq!(
            next_step(&open(), 17_800, "EUR", NOW, false),
            Step::ExpireThenOpen
        );
        let mut no_url = open();
        no_url.url = None;
        assert_eq!(
            next_step(&no_url, 17_800, "USD", NOW, false),
            Step::ExpireThenOpen
        );
    }

    #[test]
    fn a_session_that_ran_out_or_was_declined_is_replaced_and_a_paid_one_is_waited_for() {
        let mut session = open();
        session.status = Some("expired".into());
        assert_eq!(next_step(&session, 17_800, "USD", NOW, false), Step::Open);
        session.status = Some("complete".into());
        session.payment_status = Some("paid".into());
        assert_eq!(next_step(&session, 17_800, "USD", NOW, false), Step::Wait);
        session.payment_status = Some("unpaid".into());
        assert_eq!(next_step(&session, 17_800, "USD", NOW, false), Step::Wait);
        assert_eq!(next_step(&session, 17_800, "USD", NOW, true), Step::Open);
        session.status = Some("something_new".into());
        assert_eq!(
            next_step(&session, 17_800, "USD", NOW, false),
            Step::ExpireThenOpen
        );
    }
}

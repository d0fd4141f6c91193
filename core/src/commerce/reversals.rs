//! Refunds and disputes: money of a payment that goes back, to the
//! customer's card (a refund made in Stripe's dashboard) or to their bank (a
//! dispute). Either way it leaves the customer's balance in one ledger
//! transaction whose idempotency key comes from the gateway's own ids and
//! amounts, so an event delivered twice, late or out of order moves nothing
//! twice, and staff are told once.
//!
//! A refund leaves through the payments book (it undoes part of a payment);
//! a dispute goes to the disputes book, where it stays while it is at stake.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::AccountId;
use crate::money::ledger::{self, Book, LedgerError, NewTransaction, Posted};
use crate::money::Money;
use crate::outbox::{self, TakenBack};
use crate::schema::{accounts, orders, payments};

/// A payment as a gateway names it.
#[derive(Clone, Copy, Debug)]
pub struct PaymentRef<'a> {
    pub gateway: &'a str,
    /// The gateway's id for the payment (Stripe's payment intent), as
    /// `payments.reference` keeps it.
    pub reference: &'a str,
}

/// What recording a refund or a dispute did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// This much was taken back now.
    Taken(Money),
    /// Taken into account before: a replay, or an older event arriving late.
    AlreadyRecorded,
    /// Switchboard has no successful payment by that reference.
    UnknownPayment,
}

/// Why a refund or a dispute could not be recorded; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ReversalError {
    #[error("the {0} is in {1}, its payment in {2}")]
    CurrencyMismatch(&'static str, String, String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// How much more a refund report takes back: how far the refunded total
/// grew past what was taken before. `None` for a report already included in
/// what was taken (a replay, an older partial refund arriving late).
pub fn refund_growth(taken_before: Money, refunded_in_all: Money) -> Option<Money> {
    let growth = refunded_in_all
        .micros()
        .checked_sub(taken_before.micros())?;
    (growth > 0).then_some(Money(growth))
}

/// A successful payment, locked for the rest of the transaction, with what
/// the notices name.
struct Payment {
    id: i64,
    amount: Money,
    currency: String,
    refunded: Money,
    order: String,
    order_currency: String,
    account: AccountId,
    account_name: String,
}

impl Payment {
    /// Payments in another currency than the order were never credited
    /// (`orders::record_payment`), so nothing of them can leave the balance.
    fn on_balance(&self) -> bool {
        self.currency == self.order_currency
    }

    fn taken_back<'a>(&'a self, staff: &'a str, amount: Money) -> TakenBack<'a> {
        TakenBack {
            staff,
            account: &self.account_name,
            order: &self.order,
            paid: self.amount,
            amount,
            currency: &self.currency,
            from_balance: self.on_balance(),
        }
    }

    /// Moves `amount` from the customer's balance to `book`.
    async fn take(
        &self,
        conn: &mut AsyncPgConnection,
        book: Book,
        amount: Money,
        key: String,
        kind: &str,
        memo: String,
    ) -> Result<Posted, ReversalError> {
        let customer = ledger::customer_account(conn, self.account).await?;
        let book = ledger::book(conn, book, &self.currency).await?;
        Ok(ledger::post(
            conn,
            &NewTransaction {
                idempotency_key: key,
                kind: kind.to_owned(),
                memo,
                currency: self.currency.clone(),
                posted_by: None,
                entries: vec![(customer, -amount), (book, amount)],
            },
        )
        .await?)
    }
}

/// The successful payment `payment` names, locked, once the currency a
/// `what` (refund, dispute) is reported in is checked against it.
async fn payment(
    conn: &mut AsyncPgConnection,
    payment: PaymentRef<'_>,
    currency: &str,
    what: &'static str,
) -> Result<Option<Payment>, ReversalError> {
    let Some((id, order_id, amount, payment_currency, refunded)) = payments::table
        .filter(payments::gateway.eq(payment.gateway))
        .filter(payments::reference.eq(payment.reference))
        .filter(payments::outcome.eq("succeeded"))
        .select((
            payments::id,
            payments::order_id,
            payments::amount,
            payments::currency,
            payments::refunded,
        ))
        .for_update()
        .first::<(i64, i64, i64, String, i64)>(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    if !currency.eq_ignore_ascii_case(&payment_currency) {
        return Err(ReversalError::CurrencyMismatch(
            what,
            currency.to_owned(),
            payment_currency,
        ));
    }
    let (order, order_currency, account, account_name) = orders::table
        .inner_join(accounts::table)
        .filter(orders::id.eq(order_id))
        .select((
            orders::public_id,
            orders::currency,
            accounts::id,
            accounts::name,
        ))
        .first::<(String, String, i64, String)>(conn)
        .await?;
    Ok(Some(Payment {
        id,
        amount: Money(amount),
        refunded: Money(refunded),
        currency: payment_currency,
        order,
        order_currency,
        account: AccountId(account),
        account_name,
    }))
}

/// Records that `refunded_in_all` of a payment has been refunded so far (a
/// gateway reports the growing total with each partial refund). What it
/// grew by since the last report taken into account leaves the balance:
/// one ledger transaction keyed by the charge and the new total.
pub async fn record_refund(
    conn: &mut AsyncPgConnection,
    staff_address: &str,
    paid: PaymentRef<'_>,
    charge: &str,
    refunded_in_all: Money,
    currency: &str,
) -> Result<Recorded, ReversalError> {
    conn.transaction(async |conn| {
        let Some(payment) = payment(conn, paid, currency, "refund").await? else {
            return Ok(Recorded::UnknownPayment);
        };
        let Some(growth) = refund_growth(payment.refunded, refunded_in_all) else {
            return Ok(Recorded::AlreadyRecorded);
        };
        let key = format!(
            "refund:{}:{charge}:{}",
            paid.gateway,
            refunded_in_all.micros()
        );
        if payment.on_balance() {
            let memo = format!("Refund to the card (order {})", &payment.order[..8]);
            payment
                .take(conn, Book::Payments, growth, key.clone(), "refund", memo)
                .await?;
        }
        diesel::update(payments::table.find(payment.id))
            .set(payments::refunded.eq(refunded_in_all.micros()))
            .execute(conn)
            .await?;
        let notice =
            outbox::refund_recorded(&payment.taken_back(staff_address, growth), refunded_in_all);
        outbox::queue(conn, &notice, Some(&key)).await?;
        Ok(Recorded::Taken(growth))
    })
    .await
}

/// Records a dispute of `amount` of a payment: the amount leaves the
/// balance for the disputes book, once per dispute id.
pub async fn record_dispute(
    conn: &mut AsyncPgConnection,
    staff_address: &str,
    paid: PaymentRef<'_>,
    dispute: &str,
    reason: &str,
    amount: Money,
    currency: &str,
) -> Result<Recorded, ReversalError> {
    conn.transaction(async |conn| {
        let Some(payment) = payment(conn, paid, currency, "dispute").await? else {
            return Ok(Recorded::UnknownPayment);
        };
        if amount.micros() <= 0 {
            return Ok(Recorded::AlreadyRecorded);
        }
        let key = format!("dispute:{}:{dispute}", paid.gateway);
        if payment.on_balance() {
            let memo = format!("Disputed by the bank (order {})", &payment.order[..8]);
            let posted = payment
                .take(conn, Book::Disputes, amount, key.clone(), "dispute", memo)
                .await?;
            if matches!(posted, Posted::Replayed(_)) {
                return Ok(Recorded::AlreadyRecorded);
            }
        }
        let notice =
            outbox::dispute_opened(&payment.taken_back(staff_address, amount), dispute, reason);
        // Keyed like the posting: for a payment never credited, the notice's
        // key alone makes a second delivery a no-op.
        if outbox::queue(conn, &notice, Some(&key)).await? {
            Ok(Recorded::Taken(amount))
        } else {
            Ok(Recorded::AlreadyRecorded)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_report_takes_only_what_the_refunded_total_grew_by() {
        assert_eq!(refund_growth(Money(0), Money(20)), Some(Money(20)));
        assert_eq!(refund_growth(Money(20), Money(50)), Some(Money(30)));
        assert_eq!(refund_growth(Money(50), Money(50)), None, "a replay");
        assert_eq!(refund_growth(Money(50), Money(20)), None, "an older report");
    }
}

//! Another PBX for an account that has one: ordered from the panel and paid
//! from the balance (setup fee and first month), then provisioned exactly as
//! a signup's PBX is. The order form carries a one-time key: submitting it
//! twice finds the first order and charges nothing more. A balance that does
//! not cover the price charges nothing and creates nothing; the client adds
//! the missing amount first.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::audit::{self, Actor};
use crate::commerce::orders::Order;
use crate::commerce::pbxes;
use crate::commerce::plans::{self, Plan};
use crate::domain::AccountId;
use crate::keys::{random_token, SecretKey};
use crate::money::ledger::{self, LedgerError};
use crate::money::Money;
use crate::schema::{accounts, order_lines, orders};

/// What the client asked for.
#[derive(Clone, Debug)]
pub struct PbxOrderRequest<'a> {
    pub account: AccountId,
    /// The plan's slug.
    pub plan: &'a str,
    /// The order form's one-time key: the same key is the same order.
    pub request_key: &'a str,
}

/// An order placed (or found again).
#[derive(Clone, Debug)]
pub struct PlacedOrder {
    pub order: Order,
    pub pbx_id: i64,
    /// False when this form had been submitted before: nothing was charged now.
    pub new: bool,
}

/// Why an order was refused; nothing changed in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum PbxOrderError {
    #[error("requestKey must be 16 to 64 letters, digits, '-' or '_', made anew for each form")]
    BadRequestKey,
    #[error("That plan is not on sale; choose another.")]
    NoSuchPlan,
    #[error("That plan is sold in {plan}, and the balance is kept in {account}.")]
    OtherCurrency { plan: String, account: String },
    #[error("This account is turned off, so nothing can be ordered for it. Contact support.")]
    TurnedOff,
    /// The balance does not cover the setup fee and the first month.
    #[error("The balance of {} does not cover {} (setup and first month): {} is missing. Add funds, then order again.", balance.format(currency), due.format(currency), missing.format(currency))]
    ShortOf {
        balance: Money,
        due: Money,
        missing: Money,
        currency: String,
    },
    #[error("the ledger refused the charge: {0}")]
    Ledger(LedgerError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl From<LedgerError> for PbxOrderError {
    fn from(error: LedgerError) -> PbxOrderError {
        match error {
            LedgerError::Database(e) => PbxOrderError::Database(e),
            other => PbxOrderError::Ledger(other),
        }
    }
}

/// Whether a form's one-time key is well formed.
pub fn well_formed_key(key: &str) -> bool {
    (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is missing from `balance` to pay `due`; `None` when it covers it.
pub fn shortfall(balance: Money, due: Money) -> Option<Money> {
    due.checked_sub(balance).filter(|m| m.micros() > 0)
}

/// What to add to cover `missing`: whole cents, rounded up (a card is
/// charged in cents), and at least the smallest top-up.
pub fn top_up_for(missing: Money, smallest: Money) -> Money {
    let rounded = Money::from_cents(missing.cents_up());
    if rounded < smallest {
        smallest
    } else {
        rounded
    }
}

/// Places the order: under a lock of the account's balance, finds an order
/// with the same key (and returns it), or checks the plan and the balance,
/// writes the order (paid, from the balance), charges its setup fee and
/// first month, creates the PBX and queues its provisioning — all in one
/// database transaction.
pub async fn order_pbx(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    actor: &Actor,
    request: &PbxOrderRequest<'_>,
) -> Result<PlacedOrder, PbxOrderError> {
    if !well_formed_key(request.request_key) {
        return Err(PbxOrderError::BadRequestKey);
    }
    conn.transaction(async |conn| {
        // The balance's row, locked: the same form twice, or two forms at
        // once, are served one after the other.
        let balance = ledger::locked_balance(conn, request.account).await?;
        if let Some(order) = orders::table
            .filter(orders::account_id.eq(request.account.0))
            .filter(orders::request_key.eq(request.request_key))
            .select(Order::as_select())
            .first(conn)
            .await
            .optional()?
        {
            let pbx = pbxes::of_order(conn, order.id)
                .await?
                .ok_or(diesel::result::Error::NotFound)?;
            return Ok(PlacedOrder {
                order,
                pbx_id: pbx.id,
                new: false,
            });
        }
        let (currency, turned_off): (String, bool) = accounts::table
            .find(request.account.0)
            .select((accounts::currency, accounts::turned_off))
            .first(conn)
            .await?;
        if turned_off {
            return Err(PbxOrderError::TurnedOff);
        }
        let plan = match plans::by_slug(conn, request.plan.trim()).await? {
            Some(plan) if plan.active => plan,
            _ => return Err(PbxOrderError::NoSuchPlan),
        };
        if plan.currency != currency {
            return Err(PbxOrderError::OtherCurrency {
                plan: plan.currency,
                account: currency,
            });
        }
        let due = plan.first_payment();
        if let Some(missing) = shortfall(balance, due) {
            return Err(PbxOrderError::ShortOf {
                balance,
                due,
                missing,
                currency,
            });
        }
        let order = write_order(conn, request, &plan, due).await?;
        if due.micros() > 0 {
            ledger::charge(
                conn,
                request.account,
                due,
                &format!(
                    "Setup and first month of {} (order {})",
                    plan.name,
                    &order.public_id[..8]
                ),
                &format!("order:{}:charges", order.id),
                actor.user_id,
            )
            .await?;
        }
        let pbx_id = pbxes::create_for_order(conn, key, &order, plan.id).await?;
        audit::record_change(
            conn,
            actor,
            "order.create",
            &format!("order:{}", order.id),
            &format!(
                "account:{} plan:{} pbx:{pbx_id}",
                request.account.0, plan.slug
            ),
            &audit::Change::created(serde_json::json!({
                "kind": "pbx",
                "plan": plan.slug,
                "total": due.micros(),
                "pbx": pbx_id,
            })),
        )
        .await?;
        Ok(PlacedOrder {
            order,
            pbx_id,
            new: true,
        })
    })
    .await
}

async fn write_order(
    conn: &mut AsyncPgConnection,
    request: &PbxOrderRequest<'_>,
    plan: &Plan,
    due: Money,
) -> QueryResult<Order> {
    let order: Order = diesel::insert_into(orders::table)
        .values((
            orders::public_id.eq(&random_token()[..32]),
            orders::account_id.eq(request.account.0),
            orders::kind.eq("pbx"),
            orders::plan_id.eq(plan.id),
            orders::state.eq("paid"),
            orders::currency.eq(&plan.currency),
            orders::total.eq(due.micros()),
            orders::gateway.eq("balance"),
            orders::request_key.eq(request.request_key),
            orders::paid_at.eq(Utc::now()),
        ))
        .returning(Order::as_select())
        .get_result(conn)
        .await?;
    for (kind, description, amount) in [
        (
            "setup_fee",
            format!("Setup of {}", plan.name),
            plan.setup_fee,
        ),
        (
            "first_month",
            format!("First month of {}", plan.name),
            plan.monthly_fee,
        ),
    ] {
        diesel::insert_into(order_lines::table)
            .values((
                order_lines::order_id.eq(order.id),
                order_lines::kind.eq(kind),
                order_lines::description.eq(description),
                order_lines::amount.eq(amount),
            ))
            .execute(conn)
            .await?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balance_that_covers_the_price_misses_nothing() {
        assert_eq!(shortfall(Money(30_000_000), Money(30_000_000)), None);
        assert_eq!(shortfall(Money(31_000_000), Money(30_000_000)), None);
        assert_eq!(
            shortfall(Money(5_000_000), Money(30_000_000)),
            Some(Money(25_000_000))
        );
        assert_eq!(
            shortfall(Money(-2_000_000), Money(30_000_000)),
            Some(Money(32_000_000))
        );
    }

    #[test]
    fn the_top_up_offered_is_the_missing_amount_in_whole_cents_and_at_least_the_smallest() {
        let smallest = Money(5_000_000);
        assert_eq!(top_up_for(Money(25_000_000), smallest), Money(25_000_000));
        assert_eq!(top_up_for(Money(25_000_001), smallest), Money(25_010_000));
        assert_eq!(top_up_for(Money(1_000_000), smallest), smallest);
    }

    #[test]
    fn a_request_key_is_long_random_looking_text() {
        assert!(well_formed_key("abcdefghijklmnop"));
        assert!(well_formed_key("a-b_c-0123456789xyz"));
        assert!(!well_formed_key("short"));
        assert!(!well_formed_key("has spaces in it, too"));
        assert!(!well_formed_key(&"x".repeat(65)));
    }
}

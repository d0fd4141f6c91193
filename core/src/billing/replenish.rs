//! Automatic top-ups: when the balance falls below the threshold, one charge
//! of the saved card, off-session. The attempt is a row written before the
//! card is charged, keyed by (account, crossing, attempt): every worker and
//! every retry finds the same row and sends the gateway the same idempotency
//! key, so one crossing makes one charge. Its money is credited once
//! whichever reports it first, the gateway's answer or its webhook: both
//! post under the payment's key. A declined card is tried again at most once
//! a day; the monthly cap is never exceeded.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::domain::AccountId;
use crate::money::ledger::{self, Book, LedgerError, NewTransaction};
use crate::money::Money;
use crate::people::accounts::{self, Account};
use crate::schema::{accounts as accounts_table, replenishments};
use crate::{outbox, queue};

/// How long a declined or unauthenticated attempt waits before the next.
pub fn retry_after() -> Duration {
    Duration::days(1)
}

/// Stripe's smallest charge in most currencies; a top-up the cap would cut
/// below it is not made.
pub const SMALLEST_CHARGE_CENTS: i64 = 50;

/// An attempt as stored.
#[derive(Clone, Debug, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = replenishments)]
pub struct Replenishment {
    pub id: i64,
    pub account_id: i64,
    pub crossing: i32,
    pub attempt: i32,
    pub amount: i64,
    pub currency: String,
    pub gateway: String,
    pub reference: Option<String>,
    pub state: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl Replenishment {
    /// The idempotency key of its charge at the gateway.
    pub fn charge_key(&self) -> String {
        format!(
            "replenish:{}:{}:{}",
            self.account_id, self.crossing, self.attempt
        )
    }
}

/// The last attempt of an account, as the decision reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastAttempt {
    pub crossing: i32,
    pub attempt: i32,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// What an account's settings and balance call for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Charge { attempt: i32, amount: Money },
    Nothing(&'static str),
}

/// The pure rule: a charge for this crossing when auto-replenish is on, a
/// card is saved, the balance is under the threshold, no attempt for this
/// crossing is under way or went through, a failed one is a day old, and
/// the cap leaves room; the charge is the amount to add, cut to what the
/// cap leaves, in whole cents.
pub fn decide(
    account: &Account,
    has_card: bool,
    balance: Money,
    last: Option<&LastAttempt>,
    charged_this_month: Money,
    now: DateTime<Utc>,
) -> Decision {
    if !account.auto_replenish {
        return Decision::Nothing("auto-replenish is off");
    }
    if !has_card {
        return Decision::Nothing("no card is saved");
    }
    if balance.micros() >= account.low_balance_threshold {
        return Decision::Nothing("the balance is not below the threshold");
    }
    let attempt = match last {
        Some(last) if last.crossing == account.low_crossings => match last.state.as_str() {
            "pending" => return Decision::Nothing("an attempt is under way"),
            "succeeded" => return Decision::Nothing("this crossing was topped up"),
            _ if now < last.created_at + retry_after() => {
                return Decision::Nothing("the last attempt failed less than a day ago")
            }
            _ => last.attempt + 1,
        },
        _ => 1,
    };
    let room = account
        .replenish_monthly_cap
        .saturating_sub(charged_this_month.micros())
        .max(0);
    let wanted = account.replenish_amount.min(room);
    // Cents, rounded down: what leaves is whole cents and never above the cap.
    let cents = wanted / 10_000;
    if cents < SMALLEST_CHARGE_CENTS {
        return Decision::Nothing("the monthly cap is reached");
    }
    Decision::Charge {
        attempt,
        amount: Money::from_cents(cents),
    }
}

/// The first moment of `now`'s calendar month (UTC): the cap counts from it.
pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// What automatic top-ups charged (or are charging) since `now`'s month began.
pub async fn charged_this_month(
    conn: &mut AsyncPgConnection,
    account: i64,
    now: DateTime<Utc>,
) -> QueryResult<Money> {
    let amounts: Vec<i64> = replenishments::table
        .filter(replenishments::account_id.eq(account))
        .filter(replenishments::state.eq_any(["pending", "succeeded"]))
        .filter(replenishments::created_at.ge(month_start(now)))
        .select(replenishments::amount)
        .load(conn)
        .await?;
    Ok(Money(
        amounts.iter().fold(0i64, |a, b| a.saturating_add(*b)),
    ))
}

/// An account's last attempt.
pub async fn last_attempt(
    conn: &mut AsyncPgConnection,
    account: i64,
) -> QueryResult<Option<LastAttempt>> {
    replenishments::table
        .filter(replenishments::account_id.eq(account))
        .order((
            replenishments::crossing.desc(),
            replenishments::attempt.desc(),
        ))
        .select((
            replenishments::crossing,
            replenishments::attempt,
            replenishments::state,
            replenishments::created_at,
        ))
        .first::<(i32, i32, String, DateTime<Utc>)>(conn)
        .await
        .optional()
        .map(|row| {
            row.map(|(crossing, attempt, state, created_at)| LastAttempt {
                crossing,
                attempt,
                state,
                created_at,
            })
        })
}

/// What the rule says for an account now, read from the database.
pub async fn decision(
    conn: &mut AsyncPgConnection,
    account: &Account,
    has_card: bool,
    balance: Money,
    now: DateTime<Utc>,
) -> QueryResult<Decision> {
    let last = last_attempt(conn, account.id).await?;
    let charged = charged_this_month(conn, account.id, now).await?;
    Ok(decide(
        account,
        has_card,
        balance,
        last.as_ref(),
        charged,
        now,
    ))
}

/// The attempt to charge now: one under way (its answer was lost) or a new
/// one the rule calls for, written before the card is charged. `None` when
/// there is nothing to charge.
pub async fn begin(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    gateway: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<Replenishment>> {
    conn.transaction(async |conn| {
        accounts_table::table
            .find(account.0)
            .select(accounts_table::id)
            .for_update()
            .first::<i64>(conn)
            .await?;
        if let Some(pending) = replenishments::table
            .filter(replenishments::account_id.eq(account.0))
            .filter(replenishments::state.eq("pending"))
            .select(Replenishment::as_select())
            .first(conn)
            .await
            .optional()?
        {
            return Ok(Some(pending));
        }
        let Some((row, balance)) = accounts::get(conn, account).await? else {
            return Ok(None);
        };
        let has_card = has_saved_card(conn, account).await?;
        let Decision::Charge { attempt, amount } =
            decision(conn, &row, has_card, balance, now).await?
        else {
            return Ok(None);
        };
        diesel::insert_into(replenishments::table)
            .values((
                replenishments::account_id.eq(account.0),
                replenishments::crossing.eq(row.low_crossings),
                replenishments::attempt.eq(attempt),
                replenishments::amount.eq(amount.micros()),
                replenishments::currency.eq(&row.currency),
                replenishments::gateway.eq(gateway),
                replenishments::created_at.eq(now),
            ))
            .returning(Replenishment::as_select())
            .get_result(conn)
            .await
            .map(Some)
    })
    .await
}

/// Whether a card is on file for off-session charges.
pub async fn has_saved_card(conn: &mut AsyncPgConnection, account: AccountId) -> QueryResult<bool> {
    accounts_table::table
        .find(account.0)
        .select(accounts_table::stripe_payment_method_id.is_not_null())
        .first(conn)
        .await
}

/// The saved card's customer and payment method at the gateway.
pub async fn saved_card(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<(Option<String>, Option<String>)> {
    accounts_table::table
        .find(account.0)
        .select((
            accounts_table::stripe_customer_id,
            accounts_table::stripe_payment_method_id,
        ))
        .first(conn)
        .await
}

/// How a charge ended, as the gateway answered or its webhook said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        reference: String,
    },
    Declined {
        reference: Option<String>,
        detail: String,
    },
    NeedsAuthentication {
        reference: Option<String>,
    },
    /// The gateway refused for another reason (a bad request, a card gone).
    Failed {
        detail: String,
    },
}

/// What settling did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The money was credited now.
    Credited,
    /// The attempt was settled before: nothing changed.
    Already,
    /// Recorded as not charged; the client is told.
    NotCharged,
    /// No such attempt.
    Unknown,
}

/// Where settling tells people.
pub struct Notify<'a> {
    pub staff_address: &'a str,
    pub base_url: &'a str,
}

/// Records how an attempt ended, once: a success credits the balance under
/// the payment's key (the answer and the webhook may both report it), a
/// failure tells the client.
pub async fn settle(
    conn: &mut AsyncPgConnection,
    id: i64,
    outcome: &Outcome,
    notify: &Notify<'_>,
    now: DateTime<Utc>,
) -> Result<Settled, LedgerError> {
    conn.transaction(async |conn| {
        let Some(row) = replenishments::table
            .find(id)
            .select(Replenishment::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
        else {
            return Ok(Settled::Unknown);
        };
        if row.state == "succeeded" {
            return Ok(Settled::Already);
        }
        let (state, reference, detail) = match outcome {
            Outcome::Succeeded { reference } => ("succeeded", Some(reference.clone()), String::new()),
            Outcome::Declined { reference, detail } => ("declined", reference.clone(), detail.clone()),
            Outcome::NeedsAuthentication { reference } => (
                "needs_authentication",
                reference.clone(),
                "the bank asks the cardholder to confirm".into(),
            ),
            Outcome::Failed { detail } => ("failed", None, detail.clone()),
        };
        // A failure reported after another answer (a late webhook) changes
        // nothing: the first word on a failed attempt stands.
        if row.state != "pending" && state != "succeeded" {
            return Ok(Settled::Already);
        }
        diesel::update(replenishments::table.find(id))
            .set((
                replenishments::state.eq(state),
                replenishments::reference.eq(reference.or(row.reference.clone())),
                replenishments::detail.eq(&detail),
                replenishments::settled_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let (account, _) = accounts::get(conn, AccountId(row.account_id))
            .await?
            .ok_or(diesel::result::Error::NotFound)?;
        let amount = Money(row.amount);
        let funds = format!("{}/portal/funds", notify.base_url);
        match outcome {
            Outcome::Succeeded { reference } => {
                let customer = ledger::customer_account(conn, AccountId(row.account_id)).await?;
                let payments = ledger::book(conn, Book::Payments, &row.currency).await?;
                ledger::post(
                    conn,
                    &NewTransaction {
                        idempotency_key: format!("payment:{}:{reference}", row.gateway),
                        kind: "payment".into(),
                        memo: "Automatic top-up".into(),
                        currency: row.currency.clone(),
                        posted_by: None,
                        entries: vec![(customer, amount), (payments, -amount)],
                    },
                )
                .await?;
                queue::review_standing(conn, row.account_id).await?;
                let receipt = outbox::client_notice(
                    &account.email,
                    &format!("Receipt: {} added to your balance", amount.format(&row.currency)),
                    &[format!(
                        "Your balance ran low, so we charged your saved card {} and added it to your balance, as your automatic top-up settings ask.",
                        amount.format(&row.currency)
                    )],
                    Some(("Your funds and settings", &funds)),
                );
                outbox::queue(conn, &receipt, Some(&format!("replenish-receipt:{id}"))).await?;
                Ok(Settled::Credited)
            }
            Outcome::NeedsAuthentication { .. } => {
                let pay = format!("{funds}?amount={}", amount.decimal());
                let email = outbox::client_notice(
                    &account.email,
                    "Your bank asks you to confirm a top-up",
                    &[format!(
                        "Your balance is low and we tried to add {} from your saved card, but your bank asks you to confirm the payment yourself. Nothing was charged. Add the funds while you are signed in, where your bank can ask you.",
                        amount.format(&row.currency)
                    )],
                    Some(("Add funds now", &pay)),
                );
                outbox::queue(conn, &email, Some(&format!("replenish-failed:{id}"))).await?;
                Ok(Settled::NotCharged)
            }
            Outcome::Declined { .. } | Outcome::Failed { .. } => {
                let email = outbox::client_notice(
                    &account.email,
                    "Your automatic top-up was declined",
                    &[format!(
                        "Your balance is low and we tried to add {} from your saved card, but the charge did not go through ({detail}). Nothing was charged. We will try again in a day; to keep your PBXs calling, add funds or replace the card now.",
                        amount.format(&row.currency)
                    )],
                    Some(("Add funds or replace the card", &funds)),
                );
                outbox::queue(conn, &email, Some(&format!("replenish-failed:{id}"))).await?;
                Ok(Settled::NotCharged)
            }
        }
    })
    .await
}

/// An account's attempts, newest first.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    limit: i64,
) -> QueryResult<Vec<Replenishment>> {
    replenishments::table
        .filter(replenishments::account_id.eq(account.0))
        .order(replenishments::id.desc())
        .limit(limit)
        .select(Replenishment::as_select())
        .load(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        let epoch = DateTime::from_timestamp(0, 0).expect("epoch");
        Account {
            id: 1,
            name: "A".into(),
            kind: "retail".into(),
            parent_id: None,
            draws_on_parent: false,
            currency: "USD".into(),
            standing: "low".into(),
            turned_off: false,
            low_balance_threshold: 10_000_000,
            credit_limit: 0,
            time_zone: "UTC".into(),
            contact_name: String::new(),
            company: String::new(),
            email: String::new(),
            phone: String::new(),
            address: String::new(),
            created_at: epoch,
            calling_plan_id: None,
            standing_since: epoch,
            low_crossings: 3,
            termination_notice_at: None,
            auto_replenish: true,
            replenish_amount: 25_000_000,
            replenish_monthly_cap: 60_000_000,
            card_brand: None,
            card_last4: None,
            card_exp_month: None,
            card_exp_year: None,
            turned_off_reason: None,
            turned_off_at: None,
        }
    }

    fn last(crossing: i32, state: &str, hours_ago: i64) -> LastAttempt {
        LastAttempt {
            crossing,
            attempt: 1,
            state: state.into(),
            created_at: now() - Duration::hours(hours_ago),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    #[test]
    fn a_low_balance_with_a_card_calls_for_one_charge_per_crossing() {
        let low = Money(9_999_999);
        let charge = Decision::Charge {
            attempt: 1,
            amount: Money(25_000_000),
        };
        assert_eq!(
            decide(&account(), true, low, None, Money::ZERO, now()),
            charge
        );
        assert_eq!(
            decide(
                &account(),
                true,
                low,
                Some(&last(2, "succeeded", 1)),
                Money::ZERO,
                now()
            ),
            charge
        );
        assert!(matches!(
            decide(
                &account(),
                true,
                low,
                Some(&last(3, "succeeded", 1)),
                Money::ZERO,
                now()
            ),
            Decision::Nothing(_)
        ));
        assert!(matches!(
            decide(
                &account(),
                true,
                low,
                Some(&last(3, "pending", 1)),
                Money::ZERO,
                now()
            ),
            Decision::Nothing(_)
        ));
        assert!(matches!(
            decide(&account(), false, low, None, Money::ZERO, now()),
            Decision::Nothing(_)
        ));
        assert!(matches!(
            decide(
                &account(),
                true,
                Money(10_000_000),
                None,
                Money::ZERO,
                now()
            ),
            Decision::Nothing(_)
        ));
        let off = Account {
            auto_replenish: false,
            ..account()
        };
        assert!(matches!(
            decide(&off, true, low, None, Money::ZERO, now()),
            Decision::Nothing(_)
        ));
    }

    #[test]
    fn a_declined_card_is_tried_again_at_most_once_a_day() {
        let low = Money(0);
        for state in ["declined", "needs_authentication", "failed"] {
            assert!(matches!(
                decide(
                    &account(),
                    true,
                    low,
                    Some(&last(3, state, 23)),
                    Money::ZERO,
                    now()
                ),
                Decision::Nothing(_)
            ));
            assert_eq!(
                decide(
                    &account(),
                    true,
                    low,
                    Some(&last(3, state, 24)),
                    Money::ZERO,
                    now()
                ),
                Decision::Charge {
                    attempt: 2,
                    amount: Money(25_000_000)
                }
            );
        }
    }

    #[test]
    fn the_monthly_cap_is_never_exceeded() {
        let low = Money(0);
        assert_eq!(
            decide(&account(), true, low, None, Money(50_000_000), now()),
            Decision::Charge {
                attempt: 1,
                amount: Money(10_000_000)
            }
        );
        // What the cap leaves is cut to whole cents, downwards.
        assert_eq!(
            decide(&account(), true, low, None, Money(49_999_999), now()),
            Decision::Charge {
                attempt: 1,
                amount: Money(10_000_000)
            }
        );
        assert_eq!(
            decide(&account(), true, low, None, Money(50_000_001), now()),
            Decision::Charge {
                attempt: 1,
                amount: Money(9_990_000)
            }
        );
        assert!(matches!(
            decide(&account(), true, low, None, Money(59_600_000), now()),
            Decision::Nothing("the monthly cap is reached")
        ));
    }

    #[test]
    fn the_cap_counts_from_the_first_of_the_month() {
        let at = DateTime::parse_from_rfc3339("2027-03-17T15:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            month_start(at),
            DateTime::parse_from_rfc3339("2027-03-01T00:00:00Z")
                .expect("time")
                .with_timezone(&Utc)
        );
    }
}

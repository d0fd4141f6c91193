//! Ordering and releasing numbers, in one place: a client orders one or
//! several available numbers for one of their PBXs, paid from the balance
//! (setup fees and the first month, one ledger transaction per order); the
//! monthly fee becomes a recurring item; staff are told what to configure
//! where, and the controller's assign command (when configured) runs as a
//! durable job. A release stops the fee at the end of the paid period,
//! takes the number off the PBX and quarantines it.
//!
//! Every change to a number locks its row first, and an order locks the
//! account's balance before its numbers, so two orders of one number sell
//! it once and two orders of one account never spend the same money.

use crate::db::KeepPrepared;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::billing::recurring::{self, NewItem};
use crate::commerce::pbxes;
use crate::money::ledger::{self, LedgerError};
use crate::money::Money;
use crate::numbers::inventory::{self, available_at, Number};
use crate::numbers::{Status, E164};
use crate::schema::{number_orders, numbers};
use crate::{outbox, queue, AccountId, UserId};

/// The most numbers one order may hold.
pub const MAX_PER_ORDER: usize = 50;

/// What staff notices need.
#[derive(Clone, Copy, Debug)]
pub struct Notices<'a> {
    pub staff_address: &'a str,
    pub base_url: &'a str,
    /// Whether the controller assigns and unassigns numbers (else staff do).
    pub controller_assigns: bool,
    pub controller_unassigns: bool,
}

/// An order to place.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub account: AccountId,
    pub pbx: i64,
    pub numbers: Vec<i64>,
    /// The form's one-time value: the same one again is the same order.
    pub request_key: String,
    pub ordered_by: Option<UserId>,
    /// Who, for the numbers' history.
    pub actor: String,
}

/// A placed order.
#[derive(Clone, Debug)]
pub struct Placed {
    pub order: i64,
    pub numbers: Vec<Number>,
    pub total: Money,
    pub currency: String,
    /// The same request was placed before; nothing changed now.
    pub replayed: bool,
}

/// Why an order or a release changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Invalid(String),
    #[error("No PBX {0} on your account.")]
    NoSuchPbx(i64),
    #[error("No number {0}.")]
    NoSuchNumber(i64),
    #[error("{} was just taken by someone else; nothing was ordered or charged.", .0.join(", "))]
    Taken(Vec<String>),
    #[error("The numbers cost {needed} (setup and first month) and your balance is {balance}: add funds first. Nothing was ordered or charged.")]
    InsufficientBalance { needed: String, balance: String },
    #[error("the ledger refused the charge: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Places an order, all or nothing.
pub async fn order(
    conn: &mut AsyncPgConnection,
    new: &NewOrder,
    notices: Notices<'_>,
    now: DateTime<Utc>,
) -> Result<Placed, OrderError> {
    let mut wanted = new.numbers.clone();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Err(OrderError::Invalid("Choose at least one number.".into()));
    }
    if wanted.len() > MAX_PER_ORDER {
        return Err(OrderError::Invalid(format!(
            "Order at most {MAX_PER_ORDER} numbers at once."
        )));
    }
    let key = new.request_key.trim();
    if key.is_empty() || key.len() > 100 {
        return Err(OrderError::Invalid(
            "The order form is stale; reload it.".into(),
        ));
    }
    conn.transaction(async |conn| {
        if let Some(placed) = replay(conn, new.account, key).await? {
            return Ok(placed);
        }
        let pbx = pbxes::get(conn, new.pbx)
            .await?
            .filter(|p| p.account_id == new.account.0)
            .ok_or(OrderError::NoSuchPbx(new.pbx))?;
        if matches!(pbx.state.as_str(), "cancelled" | "failed") {
            return Err(OrderError::Invalid(format!(
                "PBX #{} is {}: numbers cannot be added to it.",
                pbx.id, pbx.state
            )));
        }
        // The balance first, then the numbers in id order: see the module.
        let balance = ledger::locked_balance(conn, new.account).await?;
        let currency = crate::people::accounts::get(conn, new.account)
            .await?
            .map(|(account, _)| account.currency)
            .ok_or(OrderError::Invalid("The account is gone.".into()))?;
        let locked: Vec<Number> = numbers::table
            .filter(numbers::id.eq_any(&wanted))
            .order(numbers::id)
            .select(Number::as_select())
            .for_update()
            .load(conn)
            .await?;
        if let Some(missing) = wanted.iter().find(|id| !locked.iter().any(|n| n.id == **id)) {
            return Err(OrderError::NoSuchNumber(*missing));
        }
        let taken: Vec<String> = locked
            .iter()
            .filter(|n| n.status_at(now) != Status::Available)
            .map(|n| n.e164.clone())
            .collect();
        if !taken.is_empty() {
            return Err(OrderError::Taken(taken));
        }
        if let Some(other) = locked.iter().find(|n| n.currency != currency) {
            return Err(OrderError::Invalid(format!(
                "{} is priced in {}, your account pays in {currency}.",
                other.e164, other.currency
            )));
        }
        let mut total = Money::ZERO;
        for number in &locked {
            total = total
                .checked_add(Money(number.setup_fee))
                .and_then(|t| t.checked_add(Money(number.monthly_fee)))
                .ok_or(OrderError::Invalid("The total is too large.".into()))?;
        }
        if balance.micros() < total.micros() {
            return Err(OrderError::InsufficientBalance {
                needed: total.format(&currency),
                balance: balance.format(&currency),
            });
        }
        let order: i64 = diesel::insert_into(number_orders::table)
            .values((
                number_orders::account_id.eq(new.account.0),
                number_orders::pbx_id.eq(pbx.id),
                number_orders::ordered_by.eq(new.ordered_by.map(|u| u.0)),
                number_orders::request_key.eq(key),
                number_orders::total.eq(total.micros()),
                number_orders::currency.eq(&currency),
            ))
            .returning(number_orders::id)
            .get_result(conn)
            .await?;
        let listed: Vec<&str> = locked.iter().map(|n| n.e164.as_str()).collect();
        if total.micros() > 0 {
            ledger::charge(
                conn,
                new.account,
                total,
                &format!(
                    "Phone numbers {} on PBX #{}: setup and first month",
                    listed.join(", "),
                    pbx.id
                ),
                &format!("number-order:{order}"),
                new.ordered_by,
            )
            .await?;
        }
        for number in &locked {
            let event = inventory::record(
                conn,
                number.id,
                "ordered",
                Some(new.account.0),
                Some(pbx.id),
                &new.actor,
                &format!(
                    "order #{order}: setup {}, monthly {}",
                    Money(number.setup_fee).format(&currency),
                    Money(number.monthly_fee).format(&currency)
                ),
            )
            .await?;
            // The first month is paid with the order: billing starts with
            // the second period.
            let item = recurring::start_returning_id(
                conn,
                &NewItem {
                    account: new.account,
                    kind: recurring::NUMBER,
                    subject_id: event,
                    description: format!("Phone number {}", number.e164),
                    amount: Money(number.monthly_fee),
                    currency: &currency,
                    anchor: now,
                    first_period: 1,
                },
            )
            .await?;
            diesel::update(numbers::table.find(number.id))
                .set((
                    numbers::status.eq(Status::Ordered.as_str()),
                    numbers::account_id.eq(new.account.0),
                    numbers::pbx_id.eq(pbx.id),
                    numbers::order_id.eq(order),
                    numbers::recurring_item_id.eq(item),
                    numbers::ordered_at.eq(now),
                    numbers::activated_at.eq(None::<DateTime<Utc>>),
                    numbers::quarantined_until.eq(None::<DateTime<Utc>>),
                    numbers::last_error.eq(None::<String>),
                    numbers::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if notices.controller_assigns {
                let data = number.id.to_string();
                let dedupe = format!("{}:{}:{order}", queue::ASSIGN_NUMBER, number.id);
                queue::enqueue(conn, queue::ASSIGN_NUMBER, &data, Some(&dedupe)).await?;
            }
        }
        let account = new.account.0.to_string();
        let pbx_name = pbx_label(&pbx);
        let how = if notices.controller_assigns {
            "The controller is being asked to route them to the PBX; each becomes active when it answers. If it fails you will hear of it: then configure them by hand and mark them active."
        } else {
            "Route them to the PBX (inbound route and trunk), then mark each one active on its page in the admin section."
        };
        let link = format!("{}/admin/numbers/awaiting", notices.base_url);
        let email = outbox::staff_notice(
            notices.staff_address,
            &format!("Configure {} on {pbx_name}", listed.join(", ")),
            &format!("Account #{account} ordered phone numbers for one of its PBXs. {how}"),
            &[
                ("Numbers", &listed.join(", ")),
                ("PBX", &pbx_name),
                ("Account", &account),
                ("Order", &format!("#{order}")),
                ("Awaiting configuration", &link),
            ],
        );
        outbox::queue(conn, &email, Some(&format!("number-order:{order}"))).await?;
        let numbers = reload(conn, &wanted).await?;
        Ok(Placed {
            order,
            numbers,
            total,
            currency,
            replayed: false,
        })
    })
    .await
}

fn pbx_label(pbx: &pbxes::Pbx) -> String {
    match &pbx.hostname {
        Some(host) => format!("PBX #{} ({host})", pbx.id),
        None => format!("PBX #{}", pbx.id),
    }
}

async fn reload(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<Number>> {
    numbers::table
        .filter(numbers::id.eq_any(ids))
        .order(numbers::id)
        .select(Number::as_select())
        .load(conn)
        .await
}

/// The order placed before with the same key, if any.
async fn replay(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    key: &str,
) -> Result<Option<Placed>, OrderError> {
    let found: Option<(i64, i64, String)> = number_orders::table
        .filter(number_orders::account_id.eq(account.0))
        .filter(number_orders::request_key.eq(key))
        .select((
            number_orders::id,
            number_orders::total,
            number_orders::currency,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((order, total, currency)) = found else {
        return Ok(None);
    };
    let ids: Vec<i64> = crate::schema::number_events::table
        .filter(crate::schema::number_events::kind.eq("ordered"))
        .filter(crate::schema::number_events::detail.like(format!("order #{order}:%")))
        .select(crate::schema::number_events::number_id)
        .load(conn)
        .await?;
    Ok(Some(Placed {
        order,
        numbers: reload(conn, &ids).await?,
        total: Money(total),
        currency,
        replayed: true,
    }))
}

/// A released number.
#[derive(Clone, Debug)]
pub struct Released {
    pub number: Number,
    /// The monthly fee is not billed for periods from then on.
    pub paid_until: Option<DateTime<Utc>>,
}

/// Releases an ordered or active number: its fee stops at the end of the
/// paid period, it leaves the PBX (by the controller's unassign command, or
/// staff are told) and rests in quarantine for `quarantine_days`. `owner`
/// is the account releasing it (`None`: staff, for any account).
pub async fn release(
    conn: &mut AsyncPgConnection,
    owner: Option<AccountId>,
    number_id: i64,
    actor: &str,
    quarantine_days: u32,
    notices: Notices<'_>,
    now: DateTime<Utc>,
) -> Result<Released, OrderError> {
    conn.transaction(async |conn| {
        let number = lock(conn, number_id).await?;
        let (Some(account), Some(pbx)) = (number.account_id, number.pbx_id) else {
            return Err(OrderError::Invalid(format!(
                "{} is not ordered by anyone.",
                number.e164
            )));
        };
        if owner.is_some_and(|owner| owner.0 != account) {
            return Err(OrderError::NoSuchNumber(number_id));
        }
        let paid_until = match number.recurring_item_id {
            Some(item) => Some(recurring::end_after_paid_period(conn, item, now).await?),
            None => None,
        };
        let until = now + chrono::Duration::days(i64::from(quarantine_days));
        diesel::update(numbers::table.find(number.id))
            .set((
                numbers::status.eq(Status::Quarantined.as_str()),
                numbers::account_id.eq(None::<i64>),
                numbers::pbx_id.eq(None::<i64>),
                numbers::order_id.eq(None::<i64>),
                numbers::recurring_item_id.eq(None::<i64>),
                numbers::quarantined_until.eq(until),
                numbers::last_error.eq(None::<String>),
                numbers::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let paid = paid_until
            .map(|t| format!("fee billed until {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_else(|| "no fee".into());
        inventory::record(
            conn,
            number.id,
            "released",
            Some(account),
            Some(pbx),
            actor,
            &format!(
                "{paid}; quarantined until {}",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        )
        .await?;
        if notices.controller_unassigns {
            let data = format!("{}:{pbx}", number.id);
            let dedupe = format!("{}:{data}:{}", queue::UNASSIGN_NUMBER, now.timestamp());
            queue::enqueue(conn, queue::UNASSIGN_NUMBER, &data, Some(&dedupe)).await?;
        } else {
            let email = outbox::staff_notice(
                notices.staff_address,
                &format!("Take {} off PBX #{pbx}", number.e164),
                "A client released a phone number. Remove its inbound route from the PBX; it is out of the inventory until its quarantine ends.",
                &[
                    ("Number", &number.e164),
                    ("PBX", &format!("#{pbx}")),
                    ("Account", &format!("#{account}")),
                ],
            );
            outbox::queue(conn, &email, None).await?;
        }
        let number = inventory::get(conn, number.id)
            .await?
            .ok_or(OrderError::NoSuchNumber(number_id))?;
        Ok(Released { number, paid_until })
    })
    .await
}

async fn lock(conn: &mut AsyncPgConnection, id: i64) -> Result<Number, OrderError> {
    numbers::table
        .find(id)
        .select(Number::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(OrderError::NoSuchNumber(id))
}

/// Staff configured an ordered number by hand: it is active. Returns the
/// status before.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    number_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Status, OrderError> {
    let number = lock(conn, number_id).await?;
    let before = number.status_at(now);
    if before != Status::Ordered {
        return Err(OrderError::Invalid(format!(
            "{} is {}, not waiting to be configured.",
            number.e164,
            before.as_str()
        )));
    }
    make_active(conn, &number, actor, "configured by staff", now).await?;
    Ok(before)
}

async fn make_active(
    conn: &mut AsyncPgConnection,
    number: &Number,
    actor: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(numbers::table.find(number.id))
        .set((
            numbers::status.eq(Status::Active.as_str()),
            numbers::activated_at.eq(now),
            numbers::last_error.eq(None::<String>),
            numbers::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    inventory::record(
        conn,
        number.id,
        "activated",
        number.account_id,
        number.pbx_id,
        actor,
        detail,
    )
    .await?;
    Ok(())
}

/// What the assign job sends: the number and its PBX's id at the
/// controller, while the number is still ordered.
pub async fn to_assign(
    conn: &mut AsyncPgConnection,
    number_id: i64,
) -> QueryResult<Option<(E164, i64, Option<String>)>> {
    let Some(number) = inventory::get(conn, number_id).await? else {
        return Ok(None);
    };
    let (Some(pbx), "ordered") = (number.pbx_id, number.status.as_str()) else {
        return Ok(None);
    };
    let Ok(e164) = E164::parse(&number.e164) else {
        return Ok(None);
    };
    let controller_id = pbxes::get(conn, pbx).await?.and_then(|p| p.controller_id);
    Ok(Some((e164, pbx, controller_id)))
}

/// The controller routed the number to `pbx`: active, if it is still
/// ordered for that PBX (a release in between leaves it released).
pub async fn assigned(
    conn: &mut AsyncPgConnection,
    number_id: i64,
    pbx: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    conn.transaction(async |conn| {
        let number: Option<Number> = numbers::table
            .find(number_id)
            .select(Number::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        match number {
            Some(number) if number.status == "ordered" && number.pbx_id == Some(pbx) => {
                make_active(
                    conn,
                    &number,
                    "controller",
                    "assigned by the controller",
                    now,
                )
                .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    })
    .await
}

/// The controller did not assign the number: it stays ordered, the error
/// is kept for staff's page and its history, and staff are emailed the
/// first time (and again when Switchboard gives up).
pub async fn assign_failed(
    conn: &mut AsyncPgConnection,
    number_id: i64,
    error: &str,
    given_up: bool,
    notices: Notices<'_>,
) -> QueryResult<()> {
    let Some(number) = inventory::get(conn, number_id).await? else {
        return Ok(());
    };
    if number.status != "ordered" {
        return Ok(());
    }
    let first = number.last_error.is_none();
    diesel::update(numbers::table.find(number_id))
        .set(numbers::last_error.eq(error))
        .execute(conn)
        .await?;
    let kind = if given_up {
        "assign_given_up"
    } else {
        "assign_failed"
    };
    inventory::record(
        conn,
        number_id,
        kind,
        number.account_id,
        number.pbx_id,
        "controller",
        error,
    )
    .await?;
    if first || given_up {
        let pbx = number.pbx_id.map(|p| format!("#{p}")).unwrap_or_default();
        let intro = if given_up {
            "Switchboard gave up asking the controller to route this number. It stays ordered: configure it on the PBX by hand and mark it active."
        } else {
            "The controller refused to route this number to its PBX. Switchboard keeps trying; the number stays ordered until it works, or until you configure it by hand and mark it active."
        };
        let email = outbox::staff_notice(
            notices.staff_address,
            &format!("The controller did not assign {} to PBX {pbx}", number.e164),
            intro,
            &[
                ("Number", &number.e164),
                ("PBX", &pbx),
                ("Error", error),
                (
                    "Number's page",
                    &format!("{}/admin/numbers/{}", notices.base_url, number.id),
                ),
            ],
        );
        outbox::queue(conn, &email, None).await?;
    }
    Ok(())
}

/// The numbers an account holds (ordered or active), for recognizing the
/// calls that reach them.
pub async fn held_by(conn: &mut AsyncPgConnection, account: i64) -> QueryResult<Vec<(i64, E164)>> {
    let rows: Vec<(i64, String)> = numbers::table
        .filter(numbers::account_id.eq(account))
        .select((numbers::id, numbers::e164))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, e164)| E164::parse(&e164).ok().map(|n| (id, n)))
        .collect())
}

/// Which of `held` a call reached: its `did` (what FreePBX records for an
/// inbound route), else its destination. Pure.
pub fn reached(held: &[(i64, E164)], did: Option<&str>, dst: &str) -> Option<i64> {
    let find = |written: &str| {
        let written = E164::parse(written).ok()?;
        held.iter().find(|(_, n)| *n == written).map(|(id, _)| *id)
    };
    did.filter(|d| !d.trim().is_empty())
        .and_then(find)
        .or_else(|| find(dst))
}

/// Numbers ordered and waiting to be configured, oldest order first.
pub async fn awaiting_configuration(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Number>> {
    numbers::table
        .filter(numbers::status.eq("ordered"))
        .order((numbers::ordered_at, numbers::id))
        .select(Number::as_select())
        .load(conn)
        .await
}

/// Whether a number may be sold at `now` (used by tests and pages).
pub async fn is_available(
    conn: &mut AsyncPgConnection,
    number_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    numbers::table
        .find(number_id)
        .filter(available_at(now))
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|n| n == 1)
}

/// Inbound calls per number of an account from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, diesel::QueryableByName)]
pub struct Inbound {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub number_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub e164: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub calls: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub seconds: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub cost: i64,
}

/// The calls that reached each of an account's numbers in a time range.
pub async fn inbound_calls(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<Inbound>> {
    use diesel::sql_types::Timestamptz;
    diesel::sql_query(
        "SELECT n.id AS number_id, n.e164, count(DISTINCT c.call_key)::bigint AS calls, \
           coalesce(sum(c.billsec) FILTER (WHERE c.status = 'answered'), 0)::bigint AS seconds, \
           coalesce(sum(c.cost), 0)::bigint AS cost \
         FROM cdrs c JOIN pbxes p ON p.id = c.pbx_id JOIN numbers n ON n.id = c.number_id \
         WHERE p.account_id = $1 AND c.number_id IS NOT NULL AND NOT c.helper_leg \
           AND c.calldate >= $2 AND c.calldate < $3 \
         GROUP BY n.id, n.e164 ORDER BY n.e164",
    )
    .bind::<diesel::sql_types::BigInt, _>(account.0)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .kept_prepared()
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_recognized_by_its_did_before_its_destination() {
        let held = vec![
            (1, E164::parse("+13125550142").expect("a number")),
            (2, E164::parse("+13125550143").expect("a number")),
        ];
        assert_eq!(reached(&held, Some("13125550142"), "201"), Some(1));
        assert_eq!(reached(&held, None, "3125550143"), Some(2));
        assert_eq!(reached(&held, Some(""), "+1 312 555 0143"), Some(2));
        assert_eq!(reached(&held, Some("13125550199"), "201"), None);
        assert_eq!(reached(&held, None, "s"), None);
    }
}

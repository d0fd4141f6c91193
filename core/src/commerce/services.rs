//! Additional services: the catalogue of add-ons staff keep (extra
//! extensions, call recording storage, fax to email …) and the services
//! accounts order from it.
//!
//! Ordering one pays its one-time fee and its first month from the balance,
//! in the same database transaction as the order, the recurring item that
//! bills the months after, and the email that tells staff: all of it or
//! none. The order form's one-time value makes a second submission return
//! the first order. A service staff must act on waits for them until they
//! mark it done; a cancelled one runs to the end of the period already paid
//! and is billed no more (nothing is refunded).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::billing::periods::period_start;
use crate::billing::recurring::{self, NewItem};
use crate::domain::{AccountId, UserId};
use crate::forms::FieldErrors;
use crate::money::ledger::{self, LedgerError};
use crate::money::{Money, MICROS_PER_UNIT};
use crate::outbox;
use crate::schema::{accounts, pbxes, recurring_items, service_orders, services};
use crate::support::tickets::Mail;

/// The longest name, in characters.
pub const NAME_MAX: usize = 80;
/// The longest description, in characters.
pub const DESCRIPTION_MAX: usize = 1000;
/// The largest one-time or monthly fee (the services table checks it too).
const MOST_A_FEE: Money = Money(1_000_000 * MICROS_PER_UNIT);

/// What an order of a service names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// One of the account's PBXs (call recording storage for that PBX).
    Pbx,
    /// The account as a whole (a toll-free number).
    Account,
}

impl Attachment {
    pub fn as_str(self) -> &'static str {
        match self {
            Attachment::Pbx => "pbx",
            Attachment::Account => "account",
        }
    }

    pub fn parse(text: &str) -> Option<Attachment> {
        match text {
            "pbx" => Some(Attachment::Pbx),
            "account" => Some(Attachment::Account),
            _ => None,
        }
    }
}

/// A service of the catalogue, as stored.
#[derive(Clone, Debug, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = services, check_for_backend(diesel::pg::Pg))]
pub struct Service {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub currency: String,
    pub one_time_fee: i64,
    pub monthly_fee: i64,
    pub attaches_to: String,
    pub needs_staff: bool,
    pub offered: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Service {
    pub fn attachment(&self) -> Attachment {
        Attachment::parse(&self.attaches_to).unwrap_or(Attachment::Account)
    }

    /// What ordering it takes from the balance: the one-time fee and the
    /// first month.
    pub fn first_payment(&self) -> Money {
        first_payment(Money(self.one_time_fee), Money(self.monthly_fee))
    }
}

fn first_payment(one_time: Money, monthly: Money) -> Money {
    one_time
        .checked_add(monthly)
        .expect("fees are bounded by the services table's checks")
}

/// A service as staff type it.
#[derive(Clone, Debug, Default)]
pub struct ServiceInput {
    pub name: String,
    pub description: String,
    pub currency: String,
    pub one_time_fee: String,
    pub monthly_fee: String,
    /// `pbx` or `account`.
    pub attaches_to: String,
    pub needs_staff: bool,
    pub offered: bool,
}

#[derive(Clone, Debug)]
struct ValidService {
    name: String,
    description: String,
    currency: String,
    one_time_fee: Money,
    monthly_fee: Money,
    attaches_to: Attachment,
    needs_staff: bool,
    offered: bool,
}

fn validate(input: &ServiceInput) -> Result<ValidService, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        errors.add("name", "must be 1 to 80 characters");
    } else if name.chars().any(char::is_control) {
        errors.add("name", "must be one line");
    }
    let description = input.description.replace("\r\n", "\n").trim().to_owned();
    if description.chars().count() > DESCRIPTION_MAX {
        errors.add("description", "is too long: at most 1,000 characters");
    }
    let currency = crate::domain::parse_currency(&input.currency)
        .map_err(|why| errors.add("currency", why))
        .unwrap_or_default();
    if !currency.is_empty() && crate::money::minor_digits(&currency) != 2 {
        errors.add("currency", "must be one with cents (USD, EUR, GBP, CAD …)");
    }
    let mut fee = |field: &str, text: &str| match Money::parse_decimal(text) {
        Ok(m) if m.micros() < 0 => {
            errors.add(field, "must not be negative");
            Money::ZERO
        }
        Ok(m) if m.micros() % 10_000 != 0 => {
            errors.add(field, "must be whole cents, such as 4.99");
            Money::ZERO
        }
        Ok(m) if m > MOST_A_FEE => {
            errors.add(field, "must be at most 1,000,000");
            Money::ZERO
        }
        Ok(m) => m,
        Err(why) => {
            errors.add(field, &why.to_string());
            Money::ZERO
        }
    };
    let one_time_fee = fee("one_time_fee", &input.one_time_fee);
    let monthly_fee = fee("monthly_fee", &input.monthly_fee);
    let attaches_to = Attachment::parse(input.attaches_to.trim());
    if attaches_to.is_none() {
        errors.add("attaches_to", "must be a PBX or the account");
    }
    errors.into_result(ValidService {
        name,
        description,
        currency,
        one_time_fee,
        monthly_fee,
        attaches_to: attaches_to.unwrap_or(Attachment::Account),
        needs_staff: input.needs_staff,
        offered: input.offered,
    })
}

/// Why a service or an order of one was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("no such service")]
    NoService,
    #[error("no such service order")]
    NoOrder,
    #[error("the service is no longer offered")]
    NotOffered,
    #[error("the service is not sold in the account's currency")]
    WrongCurrency,
    #[error("the account is turned off")]
    TurnedOff,
    #[error("the balance {balance:?} does not cover {needed:?}")]
    TooLittleBalance {
        balance: Money,
        needed: Money,
        currency: String,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Database(#[from] DieselError),
}

fn name_taken(error: DieselError) -> ServiceError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
            if info.constraint_name() == Some("services_name_key") =>
        {
            let mut errors = FieldErrors::default();
            errors.add("name", "is taken by another service in this currency");
            ServiceError::Invalid(errors)
        }
        other => ServiceError::Database(other),
    }
}

/// Adds a service to the catalogue; returns its id.
pub async fn create(
    conn: &mut AsyncPgConnection,
    input: &ServiceInput,
) -> Result<i64, ServiceError> {
    let valid = validate(input).map_err(ServiceError::Invalid)?;
    diesel::insert_into(services::table)
        .values((
            services::name.eq(&valid.name),
            services::description.eq(&valid.description),
            services::currency.eq(&valid.currency),
            services::one_time_fee.eq(valid.one_time_fee.micros()),
            services::monthly_fee.eq(valid.monthly_fee.micros()),
            services::attaches_to.eq(valid.attaches_to.as_str()),
            services::needs_staff.eq(valid.needs_staff),
            services::offered.eq(valid.offered),
        ))
        .returning(services::id)
        .get_result(conn)
        .await
        .map_err(name_taken)
}

/// Changes a service of the catalogue; services already ordered keep what
/// they were bought for.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    input: &ServiceInput,
) -> Result<(), ServiceError> {
    let valid = validate(input).map_err(ServiceError::Invalid)?;
    let changed = diesel::update(services::table.find(id))
        .set((
            services::name.eq(&valid.name),
            services::description.eq(&valid.description),
            services::currency.eq(&valid.currency),
            services::one_time_fee.eq(valid.one_time_fee.micros()),
            services::monthly_fee.eq(valid.monthly_fee.micros()),
            services::attaches_to.eq(valid.attaches_to.as_str()),
            services::needs_staff.eq(valid.needs_staff),
            services::offered.eq(valid.offered),
            services::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map_err(name_taken)?;
    if changed == 0 {
        return Err(ServiceError::NoService);
    }
    Ok(())
}

/// One service of the catalogue.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Service>> {
    services::table
        .find(id)
        .select(Service::as_select())
        .first(conn)
        .await
        .optional()
}

/// The catalogue by name: only what is offered, or everything.
pub async fn catalogue(
    conn: &mut AsyncPgConnection,
    offered_only: bool,
) -> QueryResult<Vec<Service>> {
    let mut query = services::table
        .order((services::name, services::id))
        .select(Service::as_select())
        .into_boxed();
    if offered_only {
        query = query.filter(services::offered.eq(true));
    }
    query.load(conn).await
}

/// Where an ordered service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Paid; staff must act on it before it works.
    AwaitingStaff,
    /// Working (and, when cancelled, until it ends).
    Active,
    /// Cancelled, and its last paid period is over.
    Ended,
}

/// A service an account ordered, as stored: name and fees as bought.
#[derive(Clone, Debug, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = service_orders, check_for_backend(diesel::pg::Pg))]
pub struct ServiceOrder {
    pub id: i64,
    pub account_id: i64,
    pub service_id: i64,
    pub pbx_id: Option<i64>,
    pub ordered_by: i64,
    pub name: String,
    pub currency: String,
    pub one_time_fee: i64,
    pub monthly_fee: i64,
    pub state: String,
    pub ordered_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<i64>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl ServiceOrder {
    /// Where it is at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        status(&self.state, self.ends_at, now)
    }

    /// When the next month is charged: the next period start after `now`,
    /// unless the service ends first or costs nothing a month.
    pub fn next_charge_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.monthly_fee == 0 {
            return None;
        }
        let next = paid_until(self.ordered_at, now)?;
        match self.ends_at {
            Some(ends) if next >= ends => None,
            _ => Some(next),
        }
    }
}

/// Where an order in `state`, ending at `ends_at`, is at `now`.
pub fn status(state: &str, ends_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Status {
    if ends_at.is_some_and(|ends| ends <= now) {
        Status::Ended
    } else if state == "awaiting_staff" {
        Status::AwaitingStaff
    } else {
        Status::Active
    }
}

/// The end of the period under way at `now` of a service ordered at
/// `ordered_at`: periods follow the order's monthly anniversary, and each
/// is paid when it starts, so this is how long what was paid lasts.
pub fn paid_until(ordered_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut n = 1;
    loop {
        let start = period_start(ordered_at, n)?;
        if start > now {
            return Some(start);
        }
        n += 1;
    }
}

/// Who orders, as the schema decided.
#[derive(Clone, Debug)]
pub struct Orderer {
    pub user_id: UserId,
    pub username: String,
}

/// An order as the form sends it.
#[derive(Clone, Debug)]
pub struct NewOrder<'a> {
    pub service: i64,
    /// The PBX it is for, when the service attaches to one.
    pub pbx: Option<i64>,
    /// The form's one-time value: the same one again returns the first order.
    pub request_key: &'a str,
}

/// An order after it was placed, or found placed by an earlier submission
/// of the same form.
#[derive(Clone, Debug)]
pub struct Ordered {
    pub order: ServiceOrder,
    /// The same form was submitted before; nothing changed now.
    pub replayed: bool,
}

/// The idempotency key of an order's first payment.
pub fn payment_key(order: i64) -> String {
    format!("service-order:{order}")
}

/// Orders a service for `account`: the first payment from the balance,
/// the months after as a recurring item, staff told, all in one database
/// transaction. Refused, with nothing changed, when the balance does not
/// cover the first payment.
pub async fn order(
    conn: &mut AsyncPgConnection,
    mail: Mail<'_>,
    orderer: &Orderer,
    account: AccountId,
    new: &NewOrder<'_>,
    now: DateTime<Utc>,
) -> Result<Ordered, ServiceError> {
    conn.transaction(async |conn| order_in(conn, mail, orderer, account, new, now).await)
        .await
}

async fn earlier(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    request_key: &str,
) -> QueryResult<Option<ServiceOrder>> {
    service_orders::table
        .filter(service_orders::account_id.eq(account.0))
        .filter(service_orders::request_key.eq(request_key))
        .select(ServiceOrder::as_select())
        .first(conn)
        .await
        .optional()
}

fn invalid(field: &str, message: &str) -> ServiceError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    ServiceError::Invalid(errors)
}

async fn order_in(
    conn: &mut AsyncPgConnection,
    mail: Mail<'_>,
    orderer: &Orderer,
    account: AccountId,
    new: &NewOrder<'_>,
    now: DateTime<Utc>,
) -> Result<Ordered, ServiceError> {
    let request_key = new.request_key.trim();
    if request_key.is_empty() || request_key.len() > 200 {
        return Err(invalid(
            "request_key",
            "is missing: reload the form and order again",
        ));
    }
    if let Some(order) = earlier(conn, account, request_key).await? {
        return Ok(Ordered {
            order,
            replayed: true,
        });
    }
    let service = get(conn, new.service)
        .await?
        .ok_or(ServiceError::NoService)?;
    if !service.offered {
        return Err(ServiceError::NotOffered);
    }
    let (account_name, currency, turned_off): (String, String, bool) = accounts::table
        .find(account.0)
        .select((accounts::name, accounts::currency, accounts::turned_off))
        .first(conn)
        .await?;
    if turned_off {
        return Err(ServiceError::TurnedOff);
    }
    if currency != service.currency {
        return Err(ServiceError::WrongCurrency);
    }
    let pbx = match service.attachment() {
        Attachment::Account => None,
        Attachment::Pbx => {
            let Some(pbx) = new.pbx else {
                return Err(invalid("pbx_id", "is missing: choose the PBX it is for"));
            };
            let owned: i64 = pbxes::table
                .filter(pbxes::id.eq(pbx))
                .filter(pbxes::account_id.eq(account.0))
                .filter(pbxes::state.ne_all(["cancelled", "failed"]))
                .count()
                .get_result(conn)
                .await?;
            if owned == 0 {
                return Err(invalid("pbx_id", "is not one of your working PBXs"));
            }
            Some(pbx)
        }
    };
    let (state, completed_at) = if service.needs_staff {
        ("awaiting_staff", None)
    } else {
        ("active", Some(now))
    };
    let inserted: Option<ServiceOrder> = diesel::insert_into(service_orders::table)
        .values((
            service_orders::account_id.eq(account.0),
            service_orders::service_id.eq(service.id),
            service_orders::pbx_id.eq(pbx),
            service_orders::ordered_by.eq(orderer.user_id.0),
            service_orders::request_key.eq(request_key),
            service_orders::name.eq(&service.name),
            service_orders::currency.eq(&service.currency),
            service_orders::one_time_fee.eq(service.one_time_fee),
            service_orders::monthly_fee.eq(service.monthly_fee),
            service_orders::state.eq(state),
            service_orders::ordered_at.eq(now),
            service_orders::completed_at.eq(completed_at),
        ))
        .on_conflict((service_orders::account_id, service_orders::request_key))
        .do_nothing()
        .returning(ServiceOrder::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    let Some(order) = inserted else {
        // The same form, submitted at the same moment: the first one won.
        let order = earlier(conn, account, request_key)
            .await?
            .ok_or(ServiceError::NoOrder)?;
        return Ok(Ordered {
            order,
            replayed: true,
        });
    };
    let what = describe(&order);
    let needed = service.first_payment();
    if needed != Money::ZERO {
        // Locked until the order commits: no other charge slips in between
        // the check and the posting.
        let balance = ledger::locked_balance(conn, account).await?;
        if balance < needed {
            return Err(ServiceError::TooLittleBalance {
                balance,
                needed,
                currency: service.currency.clone(),
            });
        }
        ledger::charge(
            conn,
            account,
            needed,
            &format!("{what}: ordered, with its first month"),
            &payment_key(order.id),
            Some(orderer.user_id),
        )
        .await?;
    }
    if service.monthly_fee > 0 {
        recurring::start(
            conn,
            &NewItem {
                account,
                kind: recurring::SERVICE,
                subject_id: order.id,
                description: what.clone(),
                amount: Money(service.monthly_fee),
                currency: &service.currency,
                anchor: now,
                first_period: 1,
            },
        )
        .await?;
    }
    let email = ordered_notice(mail, &order, &account_name, &orderer.username, needed);
    outbox::queue(conn, &email, Some(&format!("service-order:{}", order.id))).await?;
    Ok(Ordered {
        order,
        replayed: false,
    })
}

/// How a statement and staff name an ordered service.
fn describe(order: &ServiceOrder) -> String {
    match order.pbx_id {
        Some(pbx) => format!("{} (PBX #{pbx})", order.name),
        None => order.name.clone(),
    }
}

fn ordered_notice(
    mail: Mail<'_>,
    order: &ServiceOrder,
    account: &str,
    username: &str,
    paid: Money,
) -> outbox::Email {
    let waits = order.state == "awaiting_staff";
    let subject = if waits {
        format!("Service to set up: {} for {account}", order.name)
    } else {
        format!("Service ordered: {} for {account}", order.name)
    };
    let intro = if waits {
        format!(
            "{username} of {account} ordered {}. It waits for staff: set it up, then mark the order done.",
            describe(order)
        )
    } else {
        format!(
            "{username} of {account} ordered {}. It works at once; nothing to do.",
            describe(order)
        )
    };
    let link = format!("{}/admin/service-orders/{}", mail.base_url, order.id);
    let paid = paid.format(&order.currency);
    let monthly = Money(order.monthly_fee).format(&order.currency);
    outbox::staff_notice(
        mail.staff_address,
        &subject,
        &intro,
        &[
            ("Account", account),
            ("Service", &describe(order)),
            ("Paid now", &paid),
            ("Monthly", &monthly),
            ("Order", &link),
        ],
    )
}

/// An ordered service, locked until the transaction ends.
async fn lock(conn: &mut AsyncPgConnection, id: i64) -> Result<ServiceOrder, ServiceError> {
    service_orders::table
        .find(id)
        .select(ServiceOrder::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(ServiceError::NoOrder)
}

/// Cancels an ordered service at the end of the period paid: billing stops
/// there and nothing is refunded. Cancelling again changes nothing. Must
/// run inside a transaction. Returns the order as it is now.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    mail: Mail<'_>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<ServiceOrder, ServiceError> {
    let order = lock(conn, id).await?;
    if order.cancelled_at.is_some() {
        return Ok(order);
    }
    let ends_at = paid_until(order.ordered_at, now).ok_or(ServiceError::NoOrder)?;
    let order: ServiceOrder = diesel::update(service_orders::table.find(id))
        .set((
            service_orders::cancelled_at.eq(now),
            service_orders::ends_at.eq(ends_at),
        ))
        .returning(ServiceOrder::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(
        recurring_items::table
            .filter(recurring_items::kind.eq(recurring::SERVICE))
            .filter(recurring_items::subject_id.eq(id)),
    )
    .set(recurring_items::ends_at.eq(ends_at))
    .execute(conn)
    .await?;
    let account: String = accounts::table
        .find(order.account_id)
        .select(accounts::name)
        .first(conn)
        .await?;
    let link = format!("{}/admin/service-orders/{id}", mail.base_url);
    let ends = ends_at.format("%Y-%m-%d").to_string();
    let email = outbox::staff_notice(
        mail.staff_address,
        &format!("Service cancelled: {} for {account}", order.name),
        &format!(
            "{account} cancelled {}. It ends on {ends}, when its paid period is over; undo what was set up for it then.",
            describe(&order)
        ),
        &[
            ("Account", &account),
            ("Service", &describe(&order)),
            ("Ends on", &ends),
            ("Order", &link),
        ],
    );
    outbox::queue(conn, &email, Some(&format!("service-cancelled:{id}"))).await?;
    Ok(order)
}

/// Marks an order staff had to act on as done. Returns the order before
/// and after, or `None` when it was done already (nothing changed). Must
/// run inside a transaction.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    id: i64,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<Option<(ServiceOrder, ServiceOrder)>, ServiceError> {
    let before = lock(conn, id).await?;
    if before.state != "awaiting_staff" {
        return Ok(None);
    }
    let after = diesel::update(service_orders::table.find(id))
        .set((
            service_orders::state.eq("active"),
            service_orders::completed_at.eq(now),
            service_orders::completed_by.eq(by.0),
        ))
        .returning(ServiceOrder::as_returning())
        .get_result(conn)
        .await?;
    Ok(Some((before, after)))
}

/// One ordered service.
pub async fn get_order(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<ServiceOrder>> {
    service_orders::table
        .find(id)
        .select(ServiceOrder::as_select())
        .first(conn)
        .await
        .optional()
}

/// An account's ordered services, newest first.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Vec<ServiceOrder>> {
    service_orders::table
        .filter(service_orders::account_id.eq(account.0))
        .order(service_orders::id.desc())
        .select(ServiceOrder::as_select())
        .load(conn)
        .await
}

/// Every account's ordered services, newest first, those waiting for staff
/// alone when `awaiting_staff`; before the order `before` when paging.
pub async fn queue(
    conn: &mut AsyncPgConnection,
    awaiting_staff: bool,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ServiceOrder>> {
    let mut query = service_orders::table
        .order(service_orders::id.desc())
        .limit(limit)
        .select(ServiceOrder::as_select())
        .into_boxed();
    if awaiting_staff {
        query = query.filter(service_orders::state.eq("awaiting_staff"));
    }
    if let Some(before) = before {
        query = query.filter(service_orders::id.lt(before));
    }
    query.load(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn what_was_paid_lasts_to_the_next_monthly_anniversary_of_the_order() {
        let ordered = at("2027-01-31T10:00:00Z");
        assert_eq!(
            paid_until(ordered, ordered),
            Some(at("2027-02-28T10:00:00Z"))
        );
        assert_eq!(
            paid_until(ordered, at("2027-02-28T09:59:59Z")),
            Some(at("2027-02-28T10:00:00Z"))
        );
        assert_eq!(
            paid_until(ordered, at("2027-02-28T10:00:00Z")),
            Some(at("2027-03-31T10:00:00Z"))
        );
        assert_eq!(
            paid_until(ordered, at("2027-07-04T00:00:00Z")),
            Some(at("2027-07-31T10:00:00Z"))
        );
    }

    #[test]
    fn a_cancelled_service_ends_when_its_paid_period_is_over() {
        let ends = at("2027-03-01T00:00:00Z");
        let before = at("2027-02-28T23:59:59Z");
        assert_eq!(status("active", Some(ends), before), Status::Active);
        assert_eq!(
            status("awaiting_staff", Some(ends), before),
            Status::AwaitingStaff
        );
        assert_eq!(status("active", Some(ends), ends), Status::Ended);
        assert_eq!(status("active", None, ends), Status::Active);
    }

    #[test]
    fn a_service_is_checked_field_by_field() {
        let errors = validate(&ServiceInput {
            name: " ".into(),
            currency: "usd".into(),
            one_time_fee: "1.001".into(),
            monthly_fee: "-2".into(),
            attaches_to: "phone".into(),
            ..ServiceInput::default()
        })
        .expect_err("wrong");
        let fields: Vec<&str> = errors.fields().collect();
        assert_eq!(
            fields,
            [
                "name",
                "currency",
                "one_time_fee",
                "monthly_fee",
                "attaches_to"
            ]
        );
        let valid = validate(&ServiceInput {
            name: "Fax to email".into(),
            currency: "USD".into(),
            one_time_fee: "0".into(),
            monthly_fee: "4.99".into(),
            attaches_to: "pbx".into(),
            ..ServiceInput::default()
        })
        .expect("right");
        assert_eq!(valid.monthly_fee, Money(4_990_000));
        assert_eq!(valid.attaches_to, Attachment::Pbx);
    }
}

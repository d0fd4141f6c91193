//! Orders: a signup from the storefront, paid through a gateway, fulfilled by
//! provisioning a PBX. This is the path that earns money, so every step is
//! idempotent: a checkout submitted twice is one order, a payment reported
//! twice is one credit, a paid order gets one PBX.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::audit::{self, Actor};
use crate::commerce::plans::{self, Plan};
use crate::domain::{AccountId, AccountKind, Email, Role, UserId, Username};
use crate::forms::FieldErrors;
use crate::keys::{random_token, SecretKey};
use crate::money::ledger::{self, Book, NewTransaction};
use crate::money::Money;
use crate::people::accounts::{self, NewAccount};
use crate::people::users::{self as users_mod, CreateUserError, NewUser};
use crate::schema::{accounts as accounts_table, order_lines, orders, payments, users};
use crate::{commerce::pbxes as pbxes_mod, outbox, people::passwords, queue};

/// An order as stored.
#[derive(Clone, Debug, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i64,
    pub public_id: String,
    pub account_id: i64,
    pub kind: String,
    pub plan_id: Option<i64>,
    pub state: String,
    pub currency: String,
    pub total: i64,
    pub gateway: String,
    pub gateway_session_id: Option<String>,
    pub checkout_token: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Checkout Sessions asked for so far; the next one's idempotency key.
    pub checkout_attempt: i32,
}

/// One line of an order.
#[derive(Clone, Debug, Queryable)]
pub struct OrderLine {
    pub kind: String,
    pub description: String,
    pub amount: i64,
}

/// What a visitor typed into the checkout form.
#[derive(Clone, Debug, Default)]
pub struct SignupForm {
    pub plan: String,
    pub username: String,
    pub password: String,
    pub password_confirmation: String,
    pub contact_name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub accept_terms: bool,
    /// The form's one-time token: the same token is the same signup.
    pub checkout_token: String,
    /// Call credit bought with the signup, a decimal in the plan's currency
    /// as typed (one of the amounts offered; empty or 0 for none).
    pub starting_credit: String,
}

/// What a signup's card is charged: the plan's first payment in whole
/// cents (what leaves the system is whole cents, money.rs) and the starting
/// call credit; `None` when it does not fit.
pub fn signup_total(plan: &Plan, credit: Money) -> Option<Money> {
    Money::from_cents(plan.first_payment().to_cents()).checked_add(credit)
}

/// The starting call credit a signup asks for: one of `offered` (whole
/// units of the plan's currency), read from what the form sent. Empty is
/// none.
pub fn starting_credit(typed: &str, offered: &[u32]) -> Result<Money, &'static str> {
    const NOT_OFFERED: &str = "must be one of the amounts offered";
    if typed.trim().is_empty() {
        return Ok(Money::ZERO);
    }
    let amount = Money::parse_decimal(typed).map_err(|_| NOT_OFFERED)?;
    offered
        .iter()
        .map(|units| Money(i64::from(*units) * crate::money::MICROS_PER_UNIT))
        .find(|choice| *choice == amount)
        .ok_or(NOT_OFFERED)
}

/// The result of a signup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signup {
    pub order_public_id: String,
    pub account_id: AccountId,
    pub user_id: UserId,
    /// False when this form had been submitted before.
    pub new: bool,
}

/// What the checkout form says of an email address that already has an
/// account: no more than it says of any other, so that the form does not
/// tell strangers who has an account (the owner hears the rest by email).
pub const EMAIL_TAKEN: &str = "needs checking: look in its inbox for our message";

/// Why a signup was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The form had been submitted before: the first signup is handed back
    /// only to whoever proves its user's password, counted against the
    /// sign-in limits like any other password check.
    #[error("this checkout was submitted before")]
    Resubmitted { signup: Signup, username: String },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Checks every field of the form at once, without I/O; `offered` is the
/// starting call credit the cart offers.
pub fn validate_signup(form: &SignupForm, offered: &[u32]) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if form.plan.trim().is_empty() {
        errors.add("plan", "must be chosen");
    }
    if let Err(why) = Username::parse(&form.username) {
        errors.add("username", why);
    }
    if let Err(why) = passwords::check_strength(&form.password) {
        errors.add("password", why);
    } else if form.password != form.password_confirmation {
        errors.add("password_confirmation", "does not match the password");
    }
    let name = form.contact_name.trim();
    if name.is_empty() || name.len() > 100 {
        errors.add("contact_name", "must be 1 to 100 characters");
    }
    if form.company.trim().len() > 100 {
        errors.add("company", "must be at most 100 characters");
    }
    if let Err(why) = Email::parse(&form.email) {
        errors.add("email", why);
    }
    let phone = form.phone.trim();
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits)
        || !phone
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b' ' | b'-' | b'(' | b')' | b'.'))
    {
        errors.add(
            "phone",
            "must be a phone number of 7 to 15 digits, such as +1 555 010 0199",
        );
    }
    let address = form.address.trim();
    if address.len() < 5 || address.len() > 300 {
        errors.add("address", "must be a postal address");
    }
    if !form.accept_terms {
        errors.add("accept_terms", "must be accepted to sign up");
    }
    if let Err(why) = starting_credit(&form.starting_credit, offered) {
        errors.add("starting_credit", why);
    }
    if form.checkout_token.trim().len() < 16 {
        errors.add(
            "checkout_token",
            "is missing: reload the page and try again",
        );
    }
    errors
}

/// Creates the account, its first user and an order awaiting payment (the
/// setup fee, the first month and any starting call credit from `offered`),
/// all or nothing. Submitting the same form again returns the first signup.
pub async fn sign_up(
    conn: &mut AsyncPgConnection,
    form: &SignupForm,
    offered: &[u32],
    gateway: &str,
) -> Result<Signup, SignupError> {
    // Refusals commit too: the notice to a taken address's owner is sent.
    let signup = conn
        .transaction(async |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('checkout:' || $1))")
                .bind::<Text, _>(&form.checkout_token)
                .execute(conn)
                .await?;
            if let Some(existing) = orders::table
                .filter(orders::checkout_token.eq(&form.checkout_token))
                .select(Order::as_select())
                .first(conn)
                .await
                .optional()?
            {
                // The same form again (a double click, the back button): the
                // first signup, but only while it waits for payment, and only to
                // whoever knows its password (the caller checks).
                let (user_id, username): (i64, String) = users::table
                    .filter(users::account_id.eq(existing.account_id))
                    .order(users::id)
                    .select((users::id, users::username))
                    .first(conn)
                    .await?;
                if existing.state != "awaiting_payment" {
                    return Ok(Err(checkout_used()));
                }
                return Err(SignupError::Resubmitted {
                    signup: Signup {
                        order_public_id: existing.public_id,
                        account_id: AccountId(existing.account_id),
                        user_id: UserId(user_id),
                        new: false,
                    },
                    username,
                });
            }

            let mut errors = validate_signup(form, offered);
            let plan = match plans::by_slug(conn, form.plan.trim()).await? {
                Some(plan) if plan.active => Some(plan),
                _ => {
                    if errors.get("plan").is_none() {
                        errors.add("plan", "is not on sale; choose another");
                    }
                    None
                }
            };
            if Username::parse(&form.username).is_ok()
                && users_mod::find_by_username(conn, &form.username)
                    .await?
                    .is_some()
            {
                errors.add(
                    "username",
                    "is taken: choose another, or sign in if it is yours",
                );
            }
            if Email::parse(&form.email).is_ok() && email_in_use(conn, &form.email).await? {
                errors.add("email", EMAIL_TAKEN);
                if errors.iter().count() == 1 {
                    // Only a form that would otherwise go through reaches the
                    // owner, at most once an hour.
                    let to = form.email.trim().to_lowercase();
                    let hour = Utc::now().format("%Y-%m-%dT%H");
                    outbox::queue(
                        conn,
                        &outbox::sign_up_with_taken_address(&to),
                        Some(&format!("sign-up-taken:{to}:{hour}")),
                    )
                    .await?;
                }
            }
            let (Some(plan), true) = (plan, errors.is_empty()) else {
                return Ok(Err(errors));
            };
            create_signup(conn, form, offered, &plan, gateway)
                .await
                .map(Ok)
        })
        .await?;
    signup.map_err(SignupError::Invalid)
}

/// The answer to a checkout token used already, whatever the reason.
pub fn checkout_used() -> FieldErrors {
    let mut errors = FieldErrors::default();
    errors.add(
        "checkout_token",
        "was used already: sign in to see your order",
    );
    errors
}

async fn email_in_use(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<bool> {
    diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
    diesel::select(diesel::dsl::exists(
        users::table.filter(lower(users::email).eq(email.trim().to_lowercase())),
    ))
    .get_result(conn)
    .await
}

async fn create_signup(
    conn: &mut AsyncPgConnection,
    form: &SignupForm,
    offered: &[u32],
    plan: &Plan,
    gateway: &str,
) -> Result<Signup, SignupError> {
    let username = Username::parse(&form.username).map_err(|why| invalid("username", why))?;
    let email = Email::parse(&form.email).map_err(|why| invalid("email", why))?;
    let company = form.company.trim();
    let account_id = accounts::create(
        conn,
        &NewAccount {
            name: if company.is_empty() {
                form.contact_name.trim()
            } else {
                company
            }
            .to_owned(),
            kind: AccountKind::Retail,
            parent: None,
            currency: plan.currency.clone(),
            contact_name: form.contact_name.trim().to_owned(),
            company: company.to_owned(),
            email: email.as_str().to_owned(),
            phone: form.phone.trim().to_owned(),
            address: form.address.trim().to_owned(),
        },
    )
    .await?;
    let user_id = users_mod::create(
        conn,
        &NewUser {
            username,
            email,
            password: form.password.clone(),
            role: Role::Client,
            account: Some(account_id),
            must_change_password: false,
        },
    )
    .await
    .map_err(|e| match e {
        CreateUserError::UsernameTaken => invalid("username", "is taken: choose another"),
        CreateUserError::EmailTaken => invalid("email", EMAIL_TAKEN),
        CreateUserError::Invalid(why) => invalid("password", why),
        CreateUserError::Database(e) => SignupError::Database(e),
    })?;
    let public_id = random_token()[..32].to_owned();
    let credit = starting_credit(&form.starting_credit, offered)
        .map_err(|why| invalid("starting_credit", why))?;
    let total =
        signup_total(plan, credit).ok_or_else(|| invalid("starting_credit", "is too large"))?;
    let order_id: i64 = diesel::insert_into(orders::table)
        .values((
            orders::public_id.eq(&public_id),
            orders::account_id.eq(account_id.0),
            orders::kind.eq("signup"),
            orders::plan_id.eq(plan.id),
            orders::currency.eq(&plan.currency),
            orders::total.eq(total.micros()),
            orders::gateway.eq(gateway),
            orders::checkout_token.eq(&form.checkout_token),
        ))
        .returning(orders::id)
        .get_result(conn)
        .await?;
    let lines = [
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
    ];
    let credit_line = [(
        "call_credit",
        "Starting call credit".to_owned(),
        credit.micros(),
    )];
    let credit_line = if credit.micros() > 0 {
        &credit_line[..]
    } else {
        &[]
    };
    for (kind, description, amount) in lines.iter().chain(credit_line).cloned() {
        diesel::insert_into(order_lines::table)
            .values((
                order_lines::order_id.eq(order_id),
                order_lines::kind.eq(kind),
                order_lines::description.eq(description),
                order_lines::amount.eq(amount),
            ))
            .execute(conn)
            .await?;
    }
    audit::record(
        conn,
        &Actor::system("storefront"),
        "order.create",
        &format!("order:{order_id}"),
        &format!("account:{} plan:{}", account_id.0, plan.slug),
    )
    .await?;
    Ok(Signup {
        order_public_id: public_id,
        account_id,
        user_id,
        new: true,
    })
}

fn invalid(field: &str, why: &str) -> SignupError {
    let mut errors = FieldErrors::default();
    errors.add(field, why);
    SignupError::Invalid(errors)
}

/// One order by its public id.
pub async fn by_public_id(
    conn: &mut AsyncPgConnection,
    public_id: &str,
) -> QueryResult<Option<Order>> {
    orders::table
        .filter(orders::public_id.eq(public_id))
        .select(Order::as_select())
        .first(conn)
        .await
        .optional()
}

/// An account's orders, newest first.
pub async fn of_account(
    conn: &mut AsyncPgConnection,
    account: AccountId,
) -> QueryResult<Vec<Order>> {
    orders::table
        .filter(orders::account_id.eq(account.0))
        .order(orders::id.desc())
        .select(Order::as_select())
        .load(conn)
        .await
}

/// Every order, newest first, for staff.
pub async fn list(
    conn: &mut AsyncPgConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Order>> {
    let mut query = orders::table
        .order(orders::id.desc())
        .limit(limit)
        .select(Order::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(orders::id.lt(before));
    }
    query.load(conn).await
}

/// An order's lines.
pub async fn lines(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Vec<OrderLine>> {
    order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::id)
        .select((
            order_lines::kind,
            order_lines::description,
            order_lines::amount,
        ))
        .load(conn)
        .await
}

/// Remembers the checkout session that request number `attempt` opened for
/// an order, and moves the count on so a later replacement asks anew. The
/// other half of a double submit, which was given the same session under
/// the same key, finds the count moved and changes nothing.
pub async fn opened_checkout(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    attempt: i32,
    session: &str,
) -> QueryResult<()> {
    diesel::update(
        orders::table
            .find(order_id)
            .filter(orders::checkout_attempt.eq(attempt)),
    )
    .set((
        orders::gateway_session_id.eq(session),
        orders::checkout_attempt.eq(attempt + 1),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}

/// The gateway refused request number `attempt` for an order: the next
/// request is another one.
pub async fn checkout_refused(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    attempt: i32,
) -> QueryResult<()> {
    diesel::update(
        orders::table
            .find(order_id)
            .filter(orders::checkout_attempt.eq(attempt)),
    )
    .set(orders::checkout_attempt.eq(attempt + 1))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Whether the gateway reported the payment `reference` declined.
pub async fn payment_declined(
    conn: &mut AsyncPgConnection,
    gateway: &str,
    reference: &str,
) -> QueryResult<bool> {
    payment_reported(conn, gateway, reference, Outcome::Declined).await
}

/// Whether the gateway reported the payment `reference` made.
pub async fn payment_succeeded(
    conn: &mut AsyncPgConnection,
    gateway: &str,
    reference: &str,
) -> QueryResult<bool> {
    payment_reported(conn, gateway, reference, Outcome::Succeeded).await
}

async fn payment_reported(
    conn: &mut AsyncPgConnection,
    gateway: &str,
    reference: &str,
    outcome: Outcome,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        payments::table
            .filter(payments::gateway.eq(gateway))
            .filter(payments::reference.eq(reference))
            .filter(payments::outcome.eq(outcome.as_str())),
    ))
    .get_result(conn)
    .await
}

/// Moves an order to a new state.
pub async fn set_state(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    state: &str,
) -> QueryResult<()> {
    diesel::update(orders::table.find(order_id))
        .set(orders::state.eq(state))
        .execute(conn)
        .await
        .map(|_| ())
}

/// How a payment attempt ended at the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Declined,
    NeedsAuthentication,
    /// The card asked for authentication (3-D Secure) and it failed: the
    /// bank never decided on the charge.
    AuthenticationFailed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Declined => "declined",
            Outcome::NeedsAuthentication => "needs_authentication",
            Outcome::AuthenticationFailed => "authentication_failed",
        }
    }
}

/// A payment as a gateway reported it (a webhook, the test gateway).
#[derive(Clone, Debug)]
pub struct PaymentReport {
    pub gateway: String,
    /// The gateway's id for this payment: the same payment reported twice
    /// carries the same reference.
    pub reference: String,
    pub amount: Money,
    pub currency: String,
    pub outcome: Outcome,
    pub detail: String,
    pub stripe_customer: Option<String>,
    pub stripe_payment_method: Option<String>,
    /// The card paid with, when the gateway kept it for later charges.
    pub card: Option<CardOnFile>,
}

/// A card kept for off-session charges, as the panel shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardOnFile {
    /// The gateway's id of it (`pm_…`; `test_pm_4242` on the test gateway).
    pub payment_method: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
}

/// Keeps a card for an account's automatic top-ups, replacing the one it had.
pub async fn save_card(
    conn: &mut AsyncPgConnection,
    account: i64,
    customer: Option<&str>,
    card: &CardOnFile,
) -> QueryResult<()> {
    diesel::update(accounts_table::table.find(account))
        .set((
            accounts_table::stripe_customer_id.eq(customer),
            accounts_table::stripe_payment_method_id.eq(&card.payment_method),
            accounts_table::card_brand.eq(&card.brand),
            accounts_table::card_last4.eq(&card.last4),
            accounts_table::card_exp_month.eq(card.exp_month),
            accounts_table::card_exp_year.eq(card.exp_year),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The Stripe customer an account's saved card belongs to, if any.
pub async fn stripe_customer(
    conn: &mut AsyncPgConnection,
    account: i64,
) -> QueryResult<Option<String>> {
    accounts_table::table
        .find(account)
        .select(accounts_table::stripe_customer_id)
        .first(conn)
        .await
}

/// Forgets an account's saved card: no automatic top-up can charge it.
pub async fn remove_card(conn: &mut AsyncPgConnection, account: i64) -> QueryResult<()> {
    diesel::update(accounts_table::table.find(account))
        .set((
            accounts_table::stripe_payment_method_id.eq(None::<String>),
            accounts_table::card_brand.eq(None::<String>),
            accounts_table::card_last4.eq(None::<String>),
            accounts_table::card_exp_month.eq(None::<i32>),
            accounts_table::card_exp_year.eq(None::<i32>),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Why an amount to add was refused.
pub fn check_top_up(amount: &str, min: u32, max: u32, currency: &str) -> Result<Money, String> {
    let parsed = Money::parse_decimal(amount).map_err(|e| format!("The amount {e}."))?;
    let (low, high) = (
        Money(i64::from(min) * crate::money::MICROS_PER_UNIT),
        Money(i64::from(max) * crate::money::MICROS_PER_UNIT),
    );
    if parsed.micros() % 10_000 != 0 {
        return Err("The amount must be in whole cents.".into());
    }
    if parsed < low || parsed > high {
        return Err(format!(
            "The amount must be between {} and {}.",
            low.format(currency),
            high.format(currency)
        ));
    }
    Ok(parsed)
}

/// Creates an order that adds `amount` to an account's balance, awaiting
/// payment through `gateway`.
pub async fn create_top_up(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    amount: Money,
    currency: &str,
    gateway: &str,
) -> QueryResult<Order> {
    conn.transaction(async |conn| {
        let order: Order = diesel::insert_into(orders::table)
            .values((
                orders::public_id.eq(&random_token()[..32]),
                orders::account_id.eq(account.0),
                orders::kind.eq("top_up"),
                orders::currency.eq(currency),
                orders::total.eq(amount.micros()),
                orders::gateway.eq(gateway),
            ))
            .returning(Order::as_select())
            .get_result(conn)
            .await?;
        diesel::insert_into(order_lines::table)
            .values((
                order_lines::order_id.eq(order.id),
                order_lines::kind.eq("call_credit"),
                order_lines::description.eq("Call credit"),
                order_lines::amount.eq(amount.micros()),
            ))
            .execute(conn)
            .await?;
        Ok(order)
    })
    .await
}

/// What recording a payment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentResult {
    /// Money credited and charged, the PBX queued for provisioning.
    Paid { pbx_id: i64 },
    /// Funds added to the balance.
    FundsAdded,
    /// The order had been paid before; nothing changed.
    AlreadyPaid,
    /// Nothing was charged; the order still waits for payment.
    Declined,
    /// The card asks for authentication first.
    NeedsAuthentication,
    /// Authentication failed; nothing was charged.
    AuthenticationFailed,
    /// The amount or currency differs from the order: nothing is fulfilled,
    /// the money is kept as credit on the balance and staff are told.
    Mismatch,
    /// The order was paid already and this is another payment: kept as
    /// credit on the balance, staff told.
    Credited,
}

/// Why a payment could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no order {0}")]
    UnknownOrder(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Records a payment and, when it pays the order, fulfils it in the same
/// database transaction: the ledger credits the payment and debits the setup
/// fee and first month (keys derived from the order), the order becomes
/// paid, the PBX is created with a fresh GUI password sealed with `key`, and
/// its provisioning job and the staff's notice are queued.
pub async fn record_payment(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    staff_address: &str,
    public_id: &str,
    report: &PaymentReport,
) -> Result<PaymentResult, PaymentError> {
    conn.transaction(async |conn| {
        let order: Order = orders::table
            .filter(orders::public_id.eq(public_id))
            .select(Order::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| PaymentError::UnknownOrder(public_id.to_owned()))?;
        let first_report = diesel::insert_into(payments::table)
            .values((
                payments::order_id.eq(order.id),
                payments::gateway.eq(&report.gateway),
                payments::reference.eq(&report.reference),
                payments::amount.eq(report.amount.micros()),
                payments::currency.eq(&report.currency),
                payments::outcome.eq(report.outcome.as_str()),
                payments::detail.eq(&report.detail),
            ))
            .on_conflict((payments::gateway, payments::reference))
            .do_nothing()
            .execute(conn)
            .await?
            == 1;
        match report.outcome {
            Outcome::Declined => return Ok(PaymentResult::Declined),
            Outcome::NeedsAuthentication => return Ok(PaymentResult::NeedsAuthentication),
            Outcome::AuthenticationFailed => return Ok(PaymentResult::AuthenticationFailed),
            Outcome::Succeeded => {}
        }
        if order.state != "awaiting_payment" {
            if !first_report {
                return Ok(PaymentResult::AlreadyPaid);
            }
            // Money arrived a second time (another tab, a second checkout):
            // it is the customer's, so it goes to their balance, and staff hear of it.
            keep_as_credit(conn, staff_address, &order, report, "A second payment arrived for an order that was already paid").await?;
            return Ok(PaymentResult::Credited);
        }
        if report.amount.micros() != order.total || report.currency != order.currency {
            tracing::error!(order = %order.public_id, paid = report.amount.micros(), total = order.total, "payment does not match the order");
            if first_report {
                keep_as_credit(conn, staff_address, &order, report, "A payment arrived whose amount or currency differs from its order").await?;
            }
            return Ok(PaymentResult::Mismatch);
        }
        if let Some(card) = &report.card {
            save_card(conn, order.account_id, report.stripe_customer.as_deref(), card).await?;
        }
        if order.kind == "top_up" {
            // A suspended account is restored as soon as the money is in.
            queue::review_standing(conn, order.account_id).await?;
            return add_funds(conn, &order).await.map(|()| PaymentResult::FundsAdded);
        }
        fulfil(conn, key, staff_address, &order, report).await.map(|pbx_id| PaymentResult::Paid { pbx_id })
    })
    .await
}

/// Credits a payment that fulfils nothing to the customer's balance (when
/// it is in the account's currency) and tells staff either way.
async fn keep_as_credit(
    conn: &mut AsyncPgConnection,
    staff_address: &str,
    order: &Order,
    report: &PaymentReport,
    why: &str,
) -> Result<(), PaymentError> {
    let credited = if report.currency == order.currency && report.amount.micros() > 0 {
        let customer = ledger::customer_account(conn, AccountId(order.account_id)).await?;
        let payments_book = ledger::book(conn, Book::Payments, &order.currency).await?;
        ledger::post(
            conn,
            &NewTransaction {
                idempotency_key: format!("payment:{}:{}", report.gateway, report.reference),
                kind: "payment".into(),
                memo: format!("Payment kept as credit (order {})", &order.public_id[..8]),
                currency: order.currency.clone(),
                posted_by: None,
                entries: vec![(customer, report.amount), (payments_book, -report.amount)],
            },
        )
        .await
        .map_err(ledger_failure)?;
        true
    } else {
        false
    };
    outbox::queue(
        conn,
        &outbox::payment_kept(
            staff_address,
            why,
            &order.public_id,
            Money(order.total),
            report.amount,
            &report.currency,
            credited,
        ),
        Some(&format!(
            "payment-kept:{}:{}",
            report.gateway, report.reference
        )),
    )
    .await?;
    Ok(())
}

fn ledger_failure(error: ledger::LedgerError) -> PaymentError {
    match error {
        ledger::LedgerError::Database(e) => PaymentError::Database(e),
        other => {
            tracing::error!(error = %other, "the ledger refused an order's posting");
            PaymentError::Database(diesel::result::Error::RollbackTransaction)
        }
    }
}

/// Credits a paid top-up to the balance (its key derived from the order,
/// so a second report of the payment credits nothing) and sends the receipt.
async fn add_funds(conn: &mut AsyncPgConnection, order: &Order) -> Result<(), PaymentError> {
    let account = AccountId(order.account_id);
    let customer = ledger::customer_account(conn, account).await?;
    let payments_book = ledger::book(conn, Book::Payments, &order.currency).await?;
    let amount = Money(order.total);
    ledger::post(
        conn,
        &NewTransaction {
            idempotency_key: format!("order:{}:payment", order.id),
            kind: "payment".into(),
            memo: format!("Funds added (order {})", &order.public_id[..8]),
            currency: order.currency.clone(),
            posted_by: None,
            entries: vec![(customer, amount), (payments_book, -amount)],
        },
    )
    .await
    .map_err(ledger_failure)?;
    diesel::update(orders::table.find(order.id))
        .set((
            orders::state.eq("fulfilled"),
            orders::paid_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    let email: String = accounts_table::table
        .find(order.account_id)
        .select(accounts_table::email)
        .first(conn)
        .await?;
    if !email.is_empty() {
        let receipt = outbox::client_notice(
            &email,
            &format!("Receipt: {} added to your balance", amount.format(&order.currency)),
            &[format!(
                "Thank you: we received your payment of {} and added it to your balance (order {}).",
                amount.format(&order.currency),
                &order.public_id[..8]
            )],
            None,
        );
        outbox::queue(conn, &receipt, Some(&format!("receipt:{}", order.id))).await?;
    }
    Ok(())
}

async fn fulfil(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    staff_address: &str,
    order: &Order,
    report: &PaymentReport,
) -> Result<i64, PaymentError> {
    let account = AccountId(order.account_id);
    let customer = ledger::customer_account(conn, account).await?;
    let payments_book = ledger::book(conn, Book::Payments, &order.currency).await?;
    let revenue = ledger::book(conn, Book::Revenue, &order.currency).await?;
    let total = Money(order.total);
    // Starting call credit stays on the balance; the rest pays the plan.
    let credit = crate::money::checked_sum(
        lines(conn, order.id)
            .await?
            .iter()
            .filter(|l| l.kind == "call_credit")
            .map(|l| Money(l.amount)),
    )
    .unwrap_or(Money::ZERO);
    let charged = total.checked_sub(credit).unwrap_or(total);
    let plan_id = order.plan_id.ok_or(diesel::result::Error::NotFound)?;
    let plan = plans::get(conn, plan_id)
        .await?
        .ok_or(diesel::result::Error::NotFound)?;
    let post = |key: String, kind: &str, memo: String, entries| NewTransaction {
        idempotency_key: key,
        kind: kind.to_owned(),
        memo,
        currency: order.currency.clone(),
        posted_by: None,
        entries,
    };
    if total.micros() > 0 {
        let payment = post(
            format!("order:{}:payment", order.id),
            "payment",
            format!("Payment for order {}", &order.public_id[..8]),
            vec![(customer, total), (payments_book, -total)],
        );
        ledger::post(conn, &payment).await.map_err(ledger_failure)?;
    }
    if charged.micros() > 0 {
        let charges = post(
            format!("order:{}:charges", order.id),
            "charge",
            format!("Setup and first month of {}", plan.name),
            vec![(customer, -charged), (revenue, charged)],
        );
        ledger::post(conn, &charges).await.map_err(ledger_failure)?;
    }
    diesel::update(orders::table.find(order.id))
        .set((orders::state.eq("paid"), orders::paid_at.eq(Utc::now())))
        .execute(conn)
        .await?;
    if report.card.is_none()
        && (report.stripe_customer.is_some() || report.stripe_payment_method.is_some())
    {
        diesel::update(accounts_table::table.find(order.account_id))
            .set((
                accounts_table::stripe_customer_id.eq(&report.stripe_customer),
                accounts_table::stripe_payment_method_id.eq(&report.stripe_payment_method),
            ))
            .execute(conn)
            .await?;
    }
    let pbx_id = pbxes_mod::create_for_order(conn, key, order, plan.id).await?;
    let (name, email): (String, String) = accounts_table::table
        .find(order.account_id)
        .select((accounts_table::name, accounts_table::email))
        .first(conn)
        .await?;
    outbox::queue(
        conn,
        &outbox::new_signup(
            staff_address,
            &name,
            &email,
            &plan.name,
            total.format(&order.currency).as_str(),
        ),
        Some(&format!("new-signup:{}", order.id)),
    )
    .await?;
    Ok(pbx_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_credit_is_one_of_the_amounts_offered_or_none() {
        let offered = [0, 10, 25, 50];
        assert_eq!(starting_credit("", &offered), Ok(Money::ZERO));
        assert_eq!(starting_credit("0", &offered), Ok(Money::ZERO));
        assert_eq!(starting_credit("25", &offered), Ok(Money(25_000_000)));
        assert_eq!(starting_credit(" 25.00 ", &offered), Ok(Money(25_000_000)));
        for refused in ["30", "-10", "25.01", "abc", "1e3", "99999999999999999999"] {
            assert!(starting_credit(refused, &offered).is_err(), "{refused}");
        }
        assert!(starting_credit("10", &[0, 25]).is_err());
    }
}
